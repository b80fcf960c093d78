"""The training step of a recipe's image and video tasks with the linear patch projection against the convolutional
stem (`convolutional_stem`), on the recipe's own batches.

Two models of the recipe's size (random weights, training mode, sparse token-table gradients as the trainer's
default) differ only in `convolutional_stem`; forward + backward of each task's first `--batches` training batches
(collated as the trainer would) alternate between them batch by batch, so both see the same machine load: median of
`--repeats` passes after an untimed one. The last rows weigh every task of the recipe by its sampling weight (tasks
without pixels cost the same in both models): what the stem costs a step of the whole mixture.

    python examples/data/build_corpus.py --output data/corpus --renders 6 --digit-renders 8 --videos-per-class 300
    python benchmarks/convolutional_stem.py --recipe examples/recipes/default_model.yaml   # ~3 min on 2 cores
"""

from __future__ import annotations

import statistics
import time

import torch

# The sibling benchmark (benchmarks/ is the script's folder).
from length_groups import recipe_batches, recipe_benchmark_parser

from uniperceiver_hf import UniPerceiverConfig
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.optim import sparse_embedding_gradients
from uniperceiver_hf.training.recipe import load_recipe


def step_seconds(model: UniPerceiverForPreTraining, batch: dict) -> float:
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    return time.perf_counter() - start


def main() -> None:
    args = recipe_benchmark_parser(__doc__, batches=4, repeats=3).parse_args()

    recipe = load_recipe(args.recipe)
    recipe_model, batches = recipe_batches(recipe, args.batches)
    models = {}
    for stem in (False, True):
        if recipe_model.config.convolutional_stem == stem:
            models[stem] = recipe_model
        else:
            torch.manual_seed(recipe.seed)
            config = UniPerceiverConfig(**{**recipe_model.config.to_dict(), "convolutional_stem": stem})
            models[stem] = UniPerceiverForPreTraining(config).train()
        sparse_embedding_gradients(models[stem], True)
    weights = {task.name: task.sampling_weight for task in recipe.tasks}
    total_weight = sum(weights.values())

    print(f"{args.recipe}: torch {torch.__version__}, {torch.get_num_threads()} threads, {args.batches} batches per task, "
          f"median of {args.repeats} timed passes; forward + backward, random weights, training mode\n")  # fmt: skip
    header = ("task", "patch projection, s", "convolutional stem, s", "stem / patches")
    rows, mixture = [], dict.fromkeys(models, 0.0)
    for task, found in batches.items():
        times = {False: [], True: []}
        for repeat in range(args.repeats + 1):
            for batch in found:
                for stem, model in models.items():
                    seconds = step_seconds(model, batch)
                    if repeat:
                        times[stem].append(seconds)
        medians = {stem: statistics.median(found_times) for stem, found_times in times.items()}
        for stem in mixture:
            mixture[stem] += weights[task] / total_weight * medians[stem]
        if "pixel_values" in found[0]:
            rows.append(
                (task, f"{medians[False]:.3f}", f"{medians[True]:.3f}", f"{medians[True] / medians[False]:.2f}x")
            )
    rows.append(("mixture step (by weight)", f"{mixture[False]:.3f}", f"{mixture[True]:.3f}",
                 f"{mixture[True] / mixture[False]:.2f}x"))  # fmt: skip
    parameters = {
        stem: sum(p.numel() for p in model.uniperceiver.embeddings.visual.patch_embedding.parameters())
        for stem, model in models.items()
    }
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print(f"\nparameters of the tokenizer: patch projection {parameters[False]:,}, stem {parameters[True]:,}")


if __name__ == "__main__":
    main()
