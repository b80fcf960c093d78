"""Prompt tuning of Uni-Perceiver (paper section 3.3, appendix C), or a LoRA adapter with PEFT.

    python examples/prompt_tune.py --model runs/shapes/final --recipe my_task.yaml --output-dir runs/tuned \
        [--fraction 0.01] [--linear-head] [--layer-norms paper|released] [--share-prompts]
    python examples/prompt_tune.py --method lora --model runs/shapes/final --recipe my_task.yaml \
        --output-dir runs/lora [--fraction 0.01] [--lora-rank 8] [--lora-alpha 16]
    python examples/prompt_tune.py --dry-run --model-size base [--layer-norms paper|released] [--share-prompts]
                                   [--num-classes 1000]

Training freezes the pre-trained model and learns only deep prompts, the `<SPE>` bias, the LayerNorms and, for a
classification task with `--linear-head`, the linear head of eq. 4. The result is a small adapter file
(`--output-dir/adapter.safetensors`) that loads onto the unchanged base: `pipe(..., adapter=...)` or
`model(..., adapter=...)` with `UniPerceiverAdapter.load(path)`. The recipe describes the task as for
pre-training; unless its `training` section says otherwise, the released prompt-tuning optimisation applies
(`PROMPT_TUNING_TRAINING`: lr 1e-4, no weight decay, clip 0.1, 500 warm-up steps).

`--method lora` trains a LoRA adapter (`peft`, the `peft` extra) on `LORA_TARGET_MODULES` of every layer instead: the
fused q|k|v projection `in_proj` (`[3 x hidden, hidden]`), the attention output `out_proj` and the MLP's `fc1` and
`fc2`. It is saved the PEFT way (`--output-dir/lora`: `adapter_config.json` + `adapter_model.safetensors`) and loads
with `PeftModel.from_pretrained(UniPerceiverModel.from_pretrained(model), path)` (`merge_and_unload()` folds it in).
Its optimisation defaults (`LORA_TRAINING`) give way to the recipe's `training` section too.

`--dry-run` builds the model on the meta device (no weights, no data, instant), applies `prepare_prompt_tuning`
with the given settings and prints the trainable parameters per group beside the paper's Table 9.
"""

import argparse
import sys
from pathlib import Path

import torch
from pretrain import training_options

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.adapters_uniperceiver import UniPerceiverAdapter
from uniperceiver_hf.configuration_uniperceiver import PRESETS
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.prompt_tuning_uniperceiver import (
    LAYER_NORM,
    LINEAR_HEAD,
    OTHER,
    PROMPT,
    SPE,
    PromptTuningSettings,
    prepare_prompt_tuning,
    trainable_parameter_breakdown,
)
from uniperceiver_hf.training.data import load_task_dataset, task_classes
from uniperceiver_hf.training.recipe import RecipeError, load_recipe
from uniperceiver_hf.training.trainer import train_recipe


# The released prompt-tuning recipe (facts document section 7: ImageNet-1k, 1 % of the data): lr 1e-4, 500 warm-up
# iterations, no weight decay, gradient clipping 0.1; drop path 0 is the settings' default.
PROMPT_TUNING_TRAINING = {"learning_rate": 1e-4, "warmup_steps": 500, "weight_decay": 0.0, "max_grad_norm": 0.1}

# Paper Table 9 (base size). Its linear head counts only the weight matrix, 768 per class.
PAPER_TABLE_9 = {SPE: 768, LAYER_NORM: 41_472, PROMPT: 184_320}
PAPER_HEAD_PER_CLASS = 768

# LoRA's `target_modules` (suffixes of module names, as PEFT matches them): the fused q|k|v projection, the attention
# output and the two MLP linears of every layer. Uni-Perceiver-MoE's expert linears are not `nn.Linear`s: PEFT
# refuses them, so LoRA applies to dense models.
LORA_TARGET_MODULES = ["in_proj", "out_proj", "fc1", "fc2"]
# LoRA moves few parameters from a zero start (B = 0): a larger learning rate than fine-tuning, no weight decay.
LORA_TRAINING = {"learning_rate": 5e-4, "warmup_steps": 0.1, "weight_decay": 0.0, "max_grad_norm": 1.0}


def breakdown_table(counts: dict[str, int], num_classes: int, paper: bool) -> str:
    """The trainable parameters per group beside Table 9 (paper column only for the base size)."""
    paper_column = dict(PAPER_TABLE_9, **{LINEAR_HEAD: PAPER_HEAD_PER_CLASS * num_classes}) if paper else {}
    rows = [(group, counts[group], paper_column.get(group)) for group in (SPE, LAYER_NORM, PROMPT, LINEAR_HEAD)]
    rows.append((OTHER, counts[OTHER], 0 if paper else None))
    rows.append(("total", sum(counts.values()), sum(paper_column.values()) if paper else None))
    lines = [
        f"| {'group':<11} | {'this model':>10} | {'paper Table 9':>13} |",
        f"|{'-' * 13}|{'-' * 11}:|{'-' * 14}:|",
    ]
    for group, ours, theirs in rows:
        lines.append(f"| {group:<11} | {ours:>10,} | {format(theirs, ',') if theirs is not None else '-':>13} |")
    return "\n".join(lines)


def dry_run(args) -> dict[str, int]:
    with torch.device("meta"):
        base = UniPerceiverModel(UniPerceiverConfig.from_preset(args.model_size))
    settings = PromptTuningSettings(
        num_prompt_tokens=args.num_prompt_tokens,
        share_prompt_tokens=args.share_prompts,
        num_classes=args.num_classes,
        layer_norms=args.layer_norms,
    )
    counts = trainable_parameter_breakdown(prepare_prompt_tuning(base, settings))
    total = sum(p.numel() for p in base.parameters())
    print(f"Uni-Perceiver {args.model_size} ({total:,} parameters), {settings}")
    print(breakdown_table(counts, args.num_classes, paper=args.model_size == "base"))
    if args.num_classes:
        print(f"The linear head also has {args.num_classes:,} biases and 1 similarity weight, which Table 9 omits.")
    print(f"Trainable: {sum(counts.values()):,} of {total:,} ({100 * sum(counts.values()) / total:.2f} %).")
    return counts


def linear_head_classes(recipe) -> list[str]:
    """The class names the linear head scores: those of the recipe's one classification task."""
    if len(recipe.tasks) != 1 or recipe.tasks[0].task_type.targets != "classes":
        raise RecipeError(f"{recipe.source}: --linear-head needs exactly one classification task in the recipe.")
    task = recipe.tasks[0]
    where = f"{recipe.source}, task 0 ({task.name})"
    return task_classes(task, load_task_dataset(task.dataset, where), where)


def train(args) -> Path:
    """Prompt-tunes `--model` on `--recipe` and saves the adapter; returns its path."""
    recipe = load_recipe(args.recipe)
    recipe.training = {**PROMPT_TUNING_TRAINING, **recipe.training}
    labels = linear_head_classes(recipe) if args.linear_head else None
    if not Path(args.model).is_dir():
        raise RecipeError(f"--model {args.model!r} is not a folder.")
    base = UniPerceiverModel.from_pretrained(args.model)
    processor = UniPerceiverProcessor.from_pretrained(args.model)
    settings = PromptTuningSettings(
        num_prompt_tokens=args.num_prompt_tokens,
        share_prompt_tokens=args.share_prompts,
        num_classes=len(labels) if labels else 0,
        layer_norms=args.layer_norms,
    )
    torch.manual_seed(recipe.seed)
    tuned = prepare_prompt_tuning(base, settings)
    print(breakdown_table(trainable_parameter_breakdown(tuned), settings.num_classes, paper=False))
    trainer = train_recipe(
        recipe,
        args.output_dir,
        model=UniPerceiverForPreTraining.wrap(tuned),
        processor=processor,
        **training_options(args, save_final=False, data_fraction=args.fraction),
    )
    path = Path(args.output_dir) / "adapter.safetensors"
    if trainer.is_world_process_zero():
        UniPerceiverAdapter.from_model(tuned, base, labels=labels).save(path)
    trainer.accelerator.wait_for_everyone()
    return path


def lora_model(base: UniPerceiverModel, rank: int = 8, alpha: int = 16):
    """`base` with LoRA adapters on `LORA_TARGET_MODULES` (a `peft.PeftModel`; only the adapters are trainable)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGET_MODULES)
    return get_peft_model(base, config)


def train_lora(args) -> Path:
    """Trains a LoRA adapter of `--model` on `--recipe` and saves it the PEFT way; returns its folder."""
    recipe = load_recipe(args.recipe)
    recipe.training = {**LORA_TRAINING, **recipe.training}
    if not Path(args.model).is_dir():
        raise RecipeError(f"--model {args.model!r} is not a folder.")
    torch.manual_seed(recipe.seed)
    peft_model = lora_model(UniPerceiverModel.from_pretrained(args.model), args.lora_rank, args.lora_alpha)
    peft_model.print_trainable_parameters()
    trainer = train_recipe(
        recipe,
        args.output_dir,
        # The adapters sit inside the model's own modules: the pre-training head trains them like any weight.
        model=UniPerceiverForPreTraining.wrap(peft_model.get_base_model()),
        processor=UniPerceiverProcessor.from_pretrained(args.model),
        **training_options(args, save_final=False, data_fraction=args.fraction),
    )
    path = Path(args.output_dir) / "lora"
    if trainer.is_world_process_zero():
        peft_model.save_pretrained(path)
    trainer.accelerator.wait_for_everyone()
    return path


def main(argv: list[str] | None = None) -> dict[str, int] | Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the trainable-parameter breakdown and exit")
    parser.add_argument(
        "--method", choices=("prompt", "lora"), default="prompt", help="prompt tuning (default) or a LoRA adapter"
    )
    parser.add_argument("--lora-rank", type=int, default=8, help="LoRA's r")
    parser.add_argument("--lora-alpha", type=int, default=16, help="LoRA's alpha (scaling alpha / r)")
    parser.add_argument("--model", help="the pre-trained folder to tune (frozen)")
    parser.add_argument("--recipe", help="the task(s) to tune on, as a pre-training recipe")
    parser.add_argument("--output-dir", help="checkpoints and adapter.safetensors go here")
    parser.add_argument("--fraction", type=float, help="train on this fraction of the data, per class (few-shot)")
    parser.add_argument("--linear-head", action="store_true", help="add the linear head of eq. 4 (classification)")
    parser.add_argument("--max-steps", type=int, help="override the recipe's max_steps")
    parser.add_argument("--resume", nargs="?", const=True, default=None, help="resume from a checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a TrainingArguments field")
    parser.add_argument("--model-size", choices=sorted(PRESETS), default="base")
    parser.add_argument(
        "--layer-norms",
        choices=("paper", "released"),
        default="paper",
        help="paper: separate text/visual embedding LNs (27 at base); released: one shared (26)",
    )
    parser.add_argument("--share-prompts", action="store_true", help="one prompt set for inputs and targets")
    parser.add_argument(
        "--num-prompt-tokens",
        type=int,
        default=10,
        help="deep prompts per layer: the paper's 10 sit beside a 224-px image's 197 tokens; on small inputs keep "
        "that share (1 for 64-px images in 16-px patches: 10 random prompts cost the default model 12.7 points of "
        "zero-shot accuracy before tuning starts)",
    )
    parser.add_argument("--num-classes", type=int, default=1000, help="classes of the linear head (0: none)")
    args = parser.parse_args(argv)
    if args.method == "lora" and (args.linear_head or args.dry_run):
        parser.error("--method lora takes neither --linear-head nor --dry-run")
    if args.dry_run:
        return dry_run(args)
    if not (args.model and args.recipe and args.output_dir):
        parser.error("training needs --model, --recipe and --output-dir (or pass --dry-run)")
    try:
        path = train_lora(args) if args.method == "lora" else train(args)
    except RecipeError as error:
        sys.exit(f"error: {error}")
    print(f"Saved the adapter to {path}")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
