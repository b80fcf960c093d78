"""Collating a recipe's video batches from the clip files against from memory (the trainer's `video_cache_mb`).

For every video task the script finds its first `--batches` training batches in the recipe's schedule (same slots,
same seeds as the trainer) and collates them with two collators, one that decodes every clip from its file
(`video_cache_mb=0`) and one with the trainer's default cache, alternating batch by batch so both see the same
machine load. The first pass fills the cache and is timed apart ("first use": each clip decoded whole once; the
tasks share the cache, as in training, so a later task's first pass finds the clips an earlier one stored); then
the median of `--repeats` passes. The last column weighs the saving by the task's share of the mixture's steps.

    python examples/data/build_corpus.py --output data/corpus --renders 6 --digit-renders 8 --videos-per-class 300
    python benchmarks/video_cache.py --recipe examples/recipes/default_model.yaml   # ~1 min
"""

from __future__ import annotations

import statistics
import time

import torch

# The sibling benchmark (benchmarks/ is the script's folder).
from length_groups import recipe_benchmark_parser

from uniperceiver_hf.training.collator import UniPerceiverCollator
from uniperceiver_hf.training.data import MultiTaskDataset, load_recipe_datasets
from uniperceiver_hf.training.recipe import load_recipe
from uniperceiver_hf.training.trainer import TRAINER_OPTIONS, build_config, recipe_processor


MAX_SLOTS = 5000  # schedule slots searched for each task's batches


def timed(collator: UniPerceiverCollator, item: dict) -> float:
    """Seconds to collate one schedule item, from the same random state every time."""
    torch.manual_seed(0)
    start = time.perf_counter()
    collator([item])
    return time.perf_counter() - start


def main() -> None:
    parser = recipe_benchmark_parser(
        __doc__,
        batches=8,
        repeats=3,
        batches_help="training batches per video task",
        repeats_help="timed passes after the one that fills the cache",
    )
    args = parser.parse_args()

    recipe = load_recipe(args.recipe)
    video_indices = [index for index, task in enumerate(recipe.tasks) if task.task_type.modality == "video"]
    video_tasks = [recipe.tasks[index] for index in video_indices]
    if not video_tasks:
        parser.error(f"{args.recipe} has no video task")
    config = build_config(recipe)
    datasets = load_recipe_datasets(recipe)
    processor = recipe_processor(recipe, config)
    cache_mb = TRAINER_OPTIONS["video_cache_mb"]
    collators = {
        "files": UniPerceiverCollator(recipe, datasets, processor, config, video_cache_mb=0),
        "memory": UniPerceiverCollator(recipe, datasets, processor, config, video_cache_mb=cache_mb),
    }
    slots = MultiTaskDataset(recipe, datasets, MAX_SLOTS)
    items: dict[str, list[dict]] = {task.name: [] for task in video_tasks}
    for slot in range(MAX_SLOTS):
        if slots.schedule.task_at(slot) in video_indices:
            item = slots[slot]
            if len(items[item["task"]]) < args.batches:
                items[item["task"]].append(item)
        if all(len(found) == args.batches for found in items.values()):
            break
    total_weight = sum(task.sampling_weight for task in recipe.tasks)

    print(f"{args.recipe}: torch {torch.__version__}, {torch.get_num_threads()} threads, {args.batches} batches per "
          f"task, median of {args.repeats} passes after the first; cache {cache_mb} MB\n")  # fmt: skip
    header = ("task", "clips", "from files, ms", "first use, ms", "from memory, ms", "speed-up", "ms per mixture step")
    rows = []
    for task in video_tasks:
        times: dict[str, list[float]] = {"files": [], "first": [], "memory": []}
        for repeat in range(args.repeats + 1):
            for item in items[task.name]:
                times["files"].append(timed(collators["files"], item))
                times["memory" if repeat else "first"].append(timed(collators["memory"], item))
        files, memory = statistics.median(times["files"]), statistics.median(times["memory"])
        share = task.sampling_weight / total_weight
        rows.append((task.name, str(len(items[task.name]) * task.batch_size), f"{files * 1e3:.1f}",
                     f"{statistics.median(times['first']) * 1e3:.1f}", f"{memory * 1e3:.1f}", f"{files / memory:.1f}x",
                     f"-{share * (files - memory) * 1e3:.1f}"))  # fmt: skip
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    cache = collators["memory"].video_cache
    print(f"\ncache: {len(cache)} clips, {cache.used_bytes / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
