"""Fine-tuning all parameters of a pre-trained Uni-Perceiver in the same unified formulation (paper section 3.3).

    python examples/finetune.py --model runs/shapes/final --recipe my_task.yaml --output-dir runs/finetuned

The downstream task is a recipe like the pre-training ones (usually one task: classification against its class
names, VQA against its answer list, retrieval, captioning), so the model keeps scoring inputs against targets
and nothing task-specific is added. `--fraction 0.01` trains on an exact, class-balanced 1 % of each task's
split (the few-shot settings of the paper). The training defaults are the paper's; set others with
`--set name=value` (see examples/pretrain.py).
"""

from pretrain import build_parser, run


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, help="train on this fraction of each task's data, per class")
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (a pre-trained folder) is required for fine-tuning.")
    run(args, data_fraction=args.fraction)


if __name__ == "__main__":
    main()
