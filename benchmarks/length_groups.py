"""Forward and backward of each task of a recipe, padded texts in one batch against length groups (the trainer's
`length_groups`), on the recipe's own batches.

For every task the script collates `--batches` training batches as the trainer would (same schedule, same seeds),
then times forward + backward of the recipe's model (random weights, training mode, sparse token-table gradients
as the trainer's default) with `length_groups` 1 and `--groups` alternating batch by batch, so both see the same
machine load: median of `--repeats` passes over the batches after one untimed pass. It also prints the share of
real tokens in each padded text, which is what the groups can save.

    python examples/data/build_corpus.py --output data/corpus --renders 6 --digit-renders 8 --videos-per-class 300
    python benchmarks/length_groups.py --recipe examples/recipes/default_model.yaml   # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from uniperceiver_hf.length_groups_uniperceiver import text_lengths
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.collator import UniPerceiverCollator
from uniperceiver_hf.training.data import MultiTaskDataset, load_recipe_datasets
from uniperceiver_hf.training.optim import sparse_embedding_gradients
from uniperceiver_hf.training.recipe import load_recipe
from uniperceiver_hf.training.trainer import TRAINER_OPTIONS, build_config, recipe_processor


MAX_SLOTS = 5000  # schedule slots searched for each task's batches


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def recipe_benchmark_parser(
    description: str,
    batches: int,
    repeats: int,
    batches_help: str = "training batches per task",
    repeats_help: str = "timed passes over them, after an untimed one",
) -> argparse.ArgumentParser:
    """The arguments of the benchmarks that time a recipe's own batches (this one, convolutional_stem.py and
    video_cache.py): `--recipe`, and `--batches` and `--repeats`, each refused below 1 by name."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument(
        "--recipe", default="examples/recipes/default_model.yaml", help="the recipe whose tasks to time"
    )
    parser.add_argument("--batches", type=positive_int, default=batches, help=f"{batches_help} ({batches})")
    parser.add_argument("--repeats", type=positive_int, default=repeats, help=f"{repeats_help} ({repeats})")
    return parser


def recipe_batches(recipe, per_task: int) -> tuple[UniPerceiverForPreTraining, dict[str, list[dict]]]:
    """The recipe's model (random weights, seeded) and the first `per_task` training batches of each task."""
    config = build_config(recipe)
    datasets = load_recipe_datasets(recipe)
    collator = UniPerceiverCollator(recipe, datasets, recipe_processor(recipe, config), config)
    slots = MultiTaskDataset(recipe, datasets, MAX_SLOTS)
    batches: dict[str, list[dict]] = {task.name: [] for task in recipe.tasks}
    for slot in range(MAX_SLOTS):
        item = slots[slot]
        if len(batches[item["task"]]) < per_task:
            batches[item["task"]].append(collator([item]))
        if all(len(found) == per_task for found in batches.values()):
            break
    torch.manual_seed(recipe.seed)
    return UniPerceiverForPreTraining(config).train(), batches


def real_share(batches: list[dict]) -> str:
    """Real tokens over padded ones in the padded texts of a task's batches (input / target)."""
    shares = []
    for key in ("attention_mask", "target_attention_mask"):
        real = padded = 0
        for batch in batches:
            mask = batch.get(key)
            if mask is not None:
                index = batch.get("feature_index") if key == "attention_mask" else None
                real += float(text_lengths(mask, index).sum())
                padded += mask.shape[0] * mask.shape[1]
        shares.append(f"{real / padded:.0%}" if padded else "-")
    return " / ".join(shares)


def main() -> None:
    parser = recipe_benchmark_parser(__doc__, batches=4, repeats=2)
    parser.add_argument("--groups", type=int, default=TRAINER_OPTIONS["length_groups"],
                        help=f"length groups against one padded batch (the trainer's {TRAINER_OPTIONS['length_groups']})")  # fmt: skip
    args = parser.parse_args()
    if args.groups < 2:
        parser.error(f"--groups must be >= 2 (1 is the baseline), got {args.groups}")

    model, batches = recipe_batches(load_recipe(args.recipe), args.batches)
    sparse_embedding_gradients(model, True)
    print(f"{args.recipe}: torch {torch.__version__}, {torch.get_num_threads()} threads, {args.batches} batches per task, "
          f"median of {args.repeats} timed passes; forward + backward, random weights, training mode\n")  # fmt: skip
    header = ("task", "real tokens (input / target)", "one batch, s", f"{args.groups} groups, s", "speed-up")
    rows = []
    for task, found in batches.items():
        times = {1: [], args.groups: []}
        for repeat in range(args.repeats + 1):
            for batch in found:
                for groups in times:
                    model.uniperceiver.length_groups = groups
                    start = time.perf_counter()
                    model.zero_grad(set_to_none=True)
                    model(**batch).loss.backward()
                    if repeat:
                        times[groups].append(time.perf_counter() - start)
        plain, grouped = statistics.median(times[1]), statistics.median(times[args.groups])
        rows.append((task, real_share(found), f"{plain:.3f}", f"{grouped:.3f}", f"{plain / grouped:.2f}x"))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    main()
