"""Multi-task pre-training of Uni-Perceiver from a recipe (paper section 3.2, 4.2 and appendix E).

    python examples/pretrain.py --recipe examples/recipes/shapes_local.yaml --output-dir runs/shapes
    torchrun --nproc_per_node=8 examples/pretrain.py --recipe examples/recipes/paper_table10.yaml --output-dir runs/paper
    accelerate launch --config_file my_fsdp_or_deepspeed.yaml examples/pretrain.py --recipe ... --output-dir ...

Each step and process trains one task drawn by the recipe's sampling weights; gradients are averaged across
processes as usual. The model starts from scratch (the recipe's `model` section) or from `--model DIR`. Checkpoints
go to `--output-dir/checkpoint-N` (`--resume` continues the latest one with the same task sequence); the trained
model, processor and pipeline code are saved to `--output-dir/final`, ready for
`pipeline("zero-shot-perception", model=...)`. Any `TrainingArguments` field can be set on the command line as
`--set name=value` (YAML syntax for the value), e.g. `--set bf16=true --set activation_checkpointing=true`.
"""

import argparse
import sys
from pathlib import Path

import yaml

from uniperceiver_hf import UniPerceiverProcessor
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.recipe import RecipeError, load_recipe
from uniperceiver_hf.training.trainer import train_recipe


def parse_settings(pairs: list[str]) -> dict:
    """`name=value` pairs as `TrainingArguments` overrides, values parsed as YAML (`true`, `1e-4`, `[1, 2]`)."""
    settings = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise SystemExit(f"--set takes name=value, got {pair!r}.")
        settings[name.strip()] = yaml.safe_load(value)
    return settings


def training_options(args, **own) -> dict:
    """What a script passes to `train_recipe`: its `--set` pairs plus its own options (`--max-steps`, `--resume`,
    `own`); a name given both ways must agree, so `--set max_steps=100` is the same as `--max-steps 100`."""
    options = parse_settings(args.set)
    for name, value in {"max_steps": args.max_steps, "resume_from_checkpoint": args.resume, **own}.items():
        if value is None:
            continue
        if name in options and options[name] != value:
            raise SystemExit(f"--set {name}={options[name]!r} disagrees with the script's own {name} ({value!r}).")
        options[name] = value
    return options


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--recipe", required=True, help="YAML or JSON recipe (see examples/recipes/)")
    parser.add_argument("--output-dir", required=True, help="checkpoints and the final model go here")
    parser.add_argument("--model", help="start from this pre-trained folder instead of the recipe's `model` section")
    parser.add_argument("--max-steps", type=int, help="override the recipe's max_steps")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        help="resume from the latest checkpoint in --output-dir, or from the one given",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a TrainingArguments field, e.g. --set bf16=true",
    )
    return parser


def run(args, **extra) -> None:
    """Loads the recipe (and `--model`), trains and saves; a recipe or folder problem exits with its message."""
    try:
        recipe = load_recipe(args.recipe)
        model = processor = None
        if args.model:
            if not Path(args.model).is_dir():
                raise RecipeError(f"--model {args.model!r} is not a folder.")
            model = UniPerceiverForPreTraining.from_pretrained(args.model)
            processor = UniPerceiverProcessor.from_pretrained(args.model)
        trainer = train_recipe(
            recipe,
            args.output_dir,
            model=model,
            processor=processor,
            **training_options(args, **extra),
        )
    except RecipeError as error:
        sys.exit(f"error: {error}")
    if trainer.is_world_process_zero():
        print(f"Saved the model to {Path(args.output_dir) / 'final'}")


def main(argv: list[str] | None = None) -> None:
    run(build_parser(__doc__.splitlines()[0]).parse_args(argv))


if __name__ == "__main__":
    main()
