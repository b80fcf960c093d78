"""Multi-task training data: each step trains one task drawn by the sampling weights (paper section 4.2).

The schedule is a pure function of the recipe's seed: slot i of `MultiTaskDataset` is one task batch, its task is
drawn i.i.d. by the sampling weights, and its examples are the next batch of that task's shuffled stream. With
several processes the Trainer hands rank r the slots r, r + W, r + 2W, ..., so every rank draws its own task at
every step; because nothing depends on what ran before, resuming from a checkpoint replays exactly the same task
sequence, examples and augmentation. Examples stay raw here (image bytes, video paths, strings); the collator
decodes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .recipe import DatasetSpec, Recipe, RecipeError, TaskSpec


try:
    import datasets
except ImportError:  # the training extra; only needed when loading datasets
    datasets = None


def _require_datasets() -> None:
    if datasets is None:
        raise ImportError("Training data needs the `datasets` package: pip install 'uniperceiver-hf[train]'.")


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def load_task_dataset(spec: DatasetSpec, where: str = "dataset"):
    """A task's split: a local `save_to_disk` folder (a `DatasetDict` or one split) or `datasets.load_dataset`.

    Image columns are left undecoded (the collator decodes them per batch).
    """
    _require_datasets()
    path = Path(spec.path).expanduser()
    if path.is_dir() and _is_saved_dataset(path):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if spec.split not in loaded:
                raise RecipeError(f"{where}: split {spec.split!r} not in {str(path)!r}; it has {sorted(loaded)}.")
            loaded = loaded[spec.split]
        if spec.streaming:
            loaded = loaded.to_iterable_dataset()
    else:
        try:
            loaded = datasets.load_dataset(
                spec.path, spec.name, split=spec.split, data_files=spec.data_files, streaming=spec.streaming
            )
        except Exception as error:  # datasets raises many types (missing files, offline Hub, bad split)
            raise RecipeError(
                f"{where}: could not load dataset {spec.path!r} (split {spec.split!r}): {error}"
            ) from error
    features = loaded.features or {}
    for name, feature in features.items():
        if isinstance(feature, datasets.Image) and feature.decode:
            loaded = loaded.cast_column(name, datasets.Image(decode=False))
    return loaded


def _read_list(value: Any, where: str, what: str) -> list[str] | None:
    """A list given inline, or read from a JSON list / one-per-line text file."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise RecipeError(f"{where}: the {what} file {str(path)!r} does not exist.")
        text = path.read_text()
        value = (
            json.loads(text)
            if path.suffix == ".json"
            else [line.strip() for line in text.splitlines() if line.strip()]
        )
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        raise RecipeError(f"{where}: the {what} must be a non-empty list of non-empty strings.")
    return value


def task_classes(task: TaskSpec, dataset, where: str) -> list[str]:
    """Class names of a classification task: the recipe's list, or the dataset's `ClassLabel` names with
    underscores as spaces. Labels beyond the list are refused here, before training."""
    label_column = task.column("label")
    classes = _read_list(task.classes, where, "class list")
    feature = (dataset.features or {}).get(label_column)
    if classes is None:
        names = getattr(feature, "names", None)
        if not names:
            raise RecipeError(
                f"{where}: column {label_column!r} is not a ClassLabel; give the class names in `classes`."
            )
        classes = [name.replace("_", " ") for name in names]
    if isinstance(dataset, datasets.Dataset):
        labels = dataset[label_column]
        if labels and all(isinstance(label, int) for label in labels):
            if min(labels) < 0 or max(labels) >= len(classes):
                raise RecipeError(
                    f"{where}: labels in column {label_column!r} range over [{min(labels)}, {max(labels)}] but the "
                    f"class list has {len(classes)} names."
                )
        elif labels:
            missing = sorted({label for label in labels if label not in classes})
            if missing:
                raise RecipeError(
                    f"{where}: labels {missing[:5]} of column {label_column!r} are not in the class list."
                )
    return classes


def task_answers(task: TaskSpec, dataset, where: str) -> list[str]:
    """The VQA candidate answers: the recipe's list, or every answer found in a map-style dataset (sorted)."""
    answers = _read_list(task.answers, where, "answer list")
    if answers is not None:
        return answers
    if not isinstance(dataset, datasets.Dataset):
        raise RecipeError(f"{where}: a streamed VQA dataset needs its `answers` list in the recipe.")
    found = set()
    for value in dataset[task.column("answer")]:
        found.update([value] if isinstance(value, str) else value)
    return sorted(found)


def check_columns(task: TaskSpec, dataset, where: str) -> None:
    """Every column the task type reads must exist (named through the recipe's `columns` mapping)."""
    available = set(dataset.column_names or (dataset.features or {}))
    required = [task.column(role) for role in task.task_type.columns]
    if task.type == "text_classification" and "text_pair" in task.columns:
        required.append(task.column("text_pair"))
    missing = [column for column in required if column not in available]
    if missing:
        raise RecipeError(f"{where}: missing columns {missing}; the dataset has {sorted(available)}.")


class TaskSchedule:
    """Which task each slot trains: i.i.d. draws by the (unnormalised) sampling weights, fixed by the seed.

    `occurrence(slot)` is how many earlier slots drew the same task, i.e. which batch of that task's stream the
    slot takes.
    """

    def __init__(self, weights: list[float], num_slots: int, seed: int):
        weights = np.asarray(weights, dtype=np.float64)
        if num_slots < 1 or weights.ndim != 1 or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("`weights` must be non-negative with a positive sum and `num_slots` >= 1.")
        rng = np.random.default_rng([seed, 0x5EED])
        self.tasks = rng.choice(len(weights), size=num_slots, p=weights / weights.sum())
        self.occurrences = np.zeros(num_slots, dtype=np.int64)
        for task in range(len(weights)):
            where = self.tasks == task
            self.occurrences[where] = np.arange(int(where.sum()))

    def __len__(self) -> int:
        return len(self.tasks)

    def task_at(self, slot: int) -> int:
        return int(self.tasks[slot])

    def occurrence(self, slot: int) -> int:
        return int(self.occurrences[slot])


class TaskStream:
    """A task's examples as an endless sequence of epochs, each shuffled by the seed; `batch(k)` is the k-th batch.

    Map-style datasets are read at random positions. Streamed datasets are read forward (skipping what other ranks
    take); going back, as after a resume, restarts the stream and skips ahead.
    """

    def __init__(self, dataset, batch_size: int, seed: int):
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.streaming = not isinstance(dataset, datasets.Dataset)
        if not self.streaming and len(dataset) == 0:
            raise ValueError("`dataset` is empty.")
        self._permutations: dict[int, np.ndarray] = {}
        self._iterator = None
        self._position = 0  # next position of the streamed iterator
        self._epoch = 0

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))}
        return self._permutations[epoch]

    def _stream_epoch(self, epoch: int):
        self._epoch = epoch
        shuffled = self.dataset.shuffle(seed=self.seed + epoch, buffer_size=1000)
        return iter(shuffled)

    def _next_streamed(self) -> dict:
        while True:
            if self._iterator is None:
                self._iterator = self._stream_epoch(self._epoch)
            try:
                example = next(self._iterator)
                self._position += 1
                return example
            except StopIteration:
                if self._position == 0:
                    raise ValueError("A streamed dataset yielded no examples.") from None
                self._iterator = self._stream_epoch(self._epoch + 1)

    def batch(self, index: int) -> list[dict]:
        start = index * self.batch_size
        if not self.streaming:
            size = len(self.dataset)
            positions = range(start, start + self.batch_size)
            rows = [int(self._permutation(p // size)[p % size]) for p in positions]
            return [self.dataset[row] for row in rows]
        if start < self._position:
            self._iterator, self._position, self._epoch = None, 0, 0
        while self._position < start:
            self._next_streamed()
        return [self._next_streamed() for _ in range(self.batch_size)]


class MultiTaskDataset(torch.utils.data.Dataset):
    """Slot i -> `{"task": name, "examples": [...], "seed": int}`: one batch of one task (see the module docstring).

    Use it with a per-device batch size of 1 and a sequential sampler (`UniPerceiverTrainer` does both); the
    collator turns the slot into model inputs. Streamed tasks need `dataloader_num_workers=0` (read in order).
    """

    def __init__(self, recipe: Recipe, task_datasets: dict[str, Any], num_slots: int):
        self.recipe = recipe
        self.schedule = TaskSchedule(recipe.sampling_weights, num_slots, recipe.seed)
        self.streams = [
            TaskStream(task_datasets[task.name], task.batch_size, recipe.seed * 1000 + index)
            for index, task in enumerate(recipe.tasks)
        ]

    def __len__(self) -> int:
        return len(self.schedule)

    def __getitem__(self, slot: int) -> dict[str, Any]:
        task_index = self.schedule.task_at(slot)
        examples = self.streams[task_index].batch(self.schedule.occurrence(slot))
        seed = int(np.random.default_rng([self.recipe.seed, slot, 1]).integers(2**31))
        return {"task": self.recipe.tasks[task_index].name, "examples": examples, "seed": seed}


def load_recipe_datasets(recipe: Recipe) -> dict[str, Any]:
    """Loads and checks every task's dataset (columns, class lists) before training; errors name the task."""
    loaded = {}
    for index, task in enumerate(recipe.tasks):
        where = f"{recipe.source}, task {index} ({task.name})"
        dataset = load_task_dataset(task.dataset, where)
        check_columns(task, dataset, where)
        loaded[task.name] = dataset
    return loaded


__all__ = [
    "MultiTaskDataset",
    "TaskSchedule",
    "TaskStream",
    "check_columns",
    "load_recipe_datasets",
    "load_task_dataset",
    "task_answers",
    "task_classes",
]
