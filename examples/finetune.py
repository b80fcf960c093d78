"""Fine-tuning all parameters of a pre-trained Uni-Perceiver in the same unified formulation (paper section 3.3).

    python examples/finetune.py --model runs/shapes/final --recipe my_task.yaml --output-dir runs/finetuned

The downstream task is a recipe like the pre-training ones (usually one task: classification against its class
names, VQA against its answer list, retrieval, captioning), so the model keeps scoring inputs against targets
and nothing task-specific is added. `--fraction 0.01` trains on an exact, class-balanced 1 % of each task's
split (the few-shot settings of the paper). The training defaults are the paper's; set others with
`--set name=value` (see examples/pretrain.py).
"""

import sys
from pathlib import Path

from pretrain import build_parser, parse_settings

from uniperceiver_hf import UniPerceiverProcessor
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.recipe_uniperceiver import RecipeError, load_recipe
from uniperceiver_hf.trainer_uniperceiver import train_recipe


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, help="train on this fraction of each task's data, per class")
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (a pre-trained folder) is required for fine-tuning.")
    try:
        recipe = load_recipe(args.recipe)
        if not Path(args.model).is_dir():
            raise RecipeError(f"--model {args.model!r} is not a folder.")
        model = UniPerceiverForPreTraining.from_pretrained(args.model)
        processor = UniPerceiverProcessor.from_pretrained(args.model)
        trainer = train_recipe(recipe, args.output_dir, model=model, processor=processor, max_steps=args.max_steps,
                     resume_from_checkpoint=args.resume, data_fraction=args.fraction, **parse_settings(args.set))
    except RecipeError as error:
        sys.exit(f"error: {error}")
    if trainer.is_world_process_zero():
        print(f"Saved the fine-tuned model to {Path(args.output_dir) / 'final'}")


if __name__ == "__main__":
    main()
