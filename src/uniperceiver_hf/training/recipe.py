"""Training recipes: the multi-task mixture of Uni-Perceiver pre-training (paper section 4.2, appendix E, Table 10)
as a YAML or JSON file, validated before any data is read.

A recipe lists tasks; each task is one dataset cast as one task type, with its batch size, sampling weight, loss
weight, label smoothing, logit scale and augmentation. A `training` section overrides `TrainingArguments` (the
paper's optimiser and schedule are the defaults, `PAPER_TRAINING_ARGUMENTS`) and a `model` section describes the
architecture trained from scratch. `monitor: true` logs the feature-collapse diagnostics of
`training.monitor.CollapseMonitorCallback` during training. Every error names the recipe file and the task entry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..configuration_uniperceiver import LOGIT_SCALE_TASKS
from ..pretraining_uniperceiver import TASK_TYPES, TaskType


VOCABULARY_MODES = ("exact", "sampled")

# The paper's optimisation (section 4.2): AdamW, lr 2e-4, weight decay 0.05 (none on norms, biases, embeddings and
# logit scales), gradient clipping 5.0, cosine schedule with linear warm-up (50k of 500k iterations). The released
# code's stage 1 differs (lr 1e-3, weight decay 0.2, clip 0.1, betas (0.9, 0.95), eps 1e-6, fp16): a recipe's
# `training` section expresses it.
PAPER_TRAINING_ARGUMENTS: dict[str, Any] = {
    "learning_rate": 2e-4,
    "weight_decay": 0.05,
    "max_grad_norm": 5.0,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.1,  # a float in [0, 1) is a fraction of the steps
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
}

# Image and video augmentation keys a task may set (see `collator.py` for their meaning and defaults).
AUGMENTATION_KEYS = {
    "image": {"crop", "short_side", "short_side_ratio", "flip", "rand_augment", "random_erasing", "mixup", "vqa_flip"},
    "video": {"train", "short_side_range", "flip"},
    "text": set(),
}


class RecipeError(ValueError):
    """A recipe that cannot run, with the file and task entry named."""


@dataclass
class DatasetSpec:
    """Where a task's examples come from: a Hub name or loader (`load_dataset(path, name, data_files=...)`) or a
    local `save_to_disk` folder, one split, optionally streamed."""

    path: str
    name: str | None = None
    split: str = "train"
    data_files: Any = None
    streaming: bool = False


@dataclass
class TaskSpec:
    """One entry of a recipe's `tasks` list."""

    name: str
    type: str
    dataset: DatasetSpec
    columns: dict[str, str] = field(default_factory=dict)  # role -> column name (default: the role itself)
    batch_size: int = 8
    sampling_weight: float = 1.0
    loss_weight: float = 1.0
    label_smoothing: float | None = None  # default: the task type's
    logit_scale: str | None = None  # default: the task type's
    classes: Any = None  # class names: a list, a text/JSON file, or None for the dataset's ClassLabel names
    answers: Any = None  # VQA answer list: a list, a file, or None for the answers found in the dataset
    glue_task: str | None = None  # text classification through a GLUE template and its label words
    max_length: int | None = None  # text length in ids (default: the original's per layout)
    num_frames: int | None = None  # video frames (default: the model's temporal table)
    frame_stride: int | None = None  # frames between samples at 30 fps (default: the original's 32)
    vocabulary: str = "exact"  # LM targets: the whole vocabulary ("exact") or a sample ("sampled")
    vocabulary_samples: int = 4096  # negatives drawn when `vocabulary` is "sampled"
    class_samples: int | None = None  # classes/answers: the batch's own plus this many others (None: all of them)
    class_exemplars: list[str] | None = None  # image files, one per class: the targets instead of the class names
    augmentation: dict[str, Any] = field(default_factory=dict)
    # In-batch retrieval against every process's examples (the original's FEATURE_GATHER); None: on when the recipe
    # has this task alone, off in a mixture (where processes train different tasks in the same step), as the original.
    gather_features: bool | None = None

    @property
    def task_type(self) -> TaskType:
        return TASK_TYPES[self.type]

    def column(self, role: str) -> str:
        return self.columns.get(role, role)

    @property
    def resolved_logit_scale(self) -> str:
        return self.logit_scale or self.task_type.logit_scale

    @property
    def resolved_label_smoothing(self) -> float:
        return self.task_type.label_smoothing if self.label_smoothing is None else self.label_smoothing


@dataclass
class Recipe:
    """A validated recipe: tasks, `TrainingArguments` overrides, the model to build and the seed."""

    tasks: list[TaskSpec]
    training: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = "<recipe>"
    monitor: bool = False  # log `CollapseMonitorCallback`'s per-task feature and gradient diagnostics

    @property
    def sampling_weights(self) -> list[float]:
        return [task.sampling_weight for task in self.tasks]

    @property
    def video_sampling(self) -> dict[str, int]:
        """`num_frames` and `sampling_stride` that every video task of the recipe trains with (the video
        processor's settings for using the trained model); empty when there is no video task or they differ."""
        settings = {(task.num_frames, task.frame_stride) for task in self.tasks if task.task_type.modality == "video"}
        if len(settings) != 1:
            return {}
        num_frames, stride = settings.pop()
        return {
            name: value
            for name, value in (("num_frames", num_frames), ("sampling_stride", stride))
            if value is not None
        }

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"{self.source}: no task named {name!r}; tasks are {[t.name for t in self.tasks]}.")

    def training_arguments(self, **overrides: Any) -> dict[str, Any]:
        """`TrainingArguments` keyword arguments: the paper's defaults, then the recipe's, then `overrides`.

        One task batch is one dataset item, so the per-device batch size is 1 (the task's `batch_size` sets the real
        batch). Each step uses one logit scale and one modality, so DDP must look for unused parameters.
        """
        return {
            **PAPER_TRAINING_ARGUMENTS,
            "seed": self.seed,
            **self.training,
            **overrides,
            "per_device_train_batch_size": 1,
            "remove_unused_columns": False,
            "ddp_find_unused_parameters": True,
            "train_sampling_strategy": "sequential",
        }


_TASK_FIELDS = {f.name for f in fields(TaskSpec)}
_DATASET_FIELDS = {f.name for f in fields(DatasetSpec)}


def _fail(source: str, where: str, message: str) -> RecipeError:
    return RecipeError(f"{source}, {where}: {message}")


def _number(source: str, where: str, name: str, value: Any, minimum: float, allow_equal: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(source, where, f"`{name}` must be a finite number, got {value!r}.")
    if value < minimum or (value == minimum and not allow_equal):
        relation = ">=" if allow_equal else ">"
        raise _fail(source, where, f"`{name}` must be {relation} {minimum}, got {value!r}.")
    return value


def _parse_task(entry: Any, index: int, source: str) -> TaskSpec:
    where = f"task {index}"
    if not isinstance(entry, dict):
        raise _fail(source, where, f"each task must be a mapping, got {type(entry).__name__}.")
    where = f"task {index} ({entry.get('name', 'unnamed')!s})"
    unknown = set(entry) - _TASK_FIELDS
    if unknown:
        raise _fail(source, where, f"unknown keys {sorted(unknown)}; a task takes {sorted(_TASK_FIELDS)}.")
    for key in ("name", "type", "dataset"):
        if key not in entry:
            raise _fail(source, where, f"`{key}` is required.")
    if entry["type"] not in TASK_TYPES:
        raise _fail(source, where, f"unknown task type {entry['type']!r}; expected one of {sorted(TASK_TYPES)}.")
    dataset = entry["dataset"]
    if isinstance(dataset, str):
        dataset = {"path": dataset}
    if not isinstance(dataset, dict) or "path" not in dataset:
        raise _fail(source, where, "`dataset` must be a path/name or a mapping with `path`.")
    if set(dataset) - _DATASET_FIELDS:
        raise _fail(source, where, f"unknown dataset keys {sorted(set(dataset) - _DATASET_FIELDS)}.")
    task = TaskSpec(**{**entry, "dataset": DatasetSpec(**dataset), "columns": dict(entry.get("columns") or {})})

    task_type = task.task_type
    optional_roles = {"text_pair"} if task.type == "text_classification" else set()
    unknown_roles = set(task.columns) - set(task_type.columns) - optional_roles
    if unknown_roles:
        raise _fail(
            source,
            where,
            f"`columns` maps unknown roles {sorted(unknown_roles)}; {task.type} reads {list(task_type.columns)}.",
        )
    if isinstance(task.batch_size, bool) or not isinstance(task.batch_size, int) or task.batch_size < 1:
        raise _fail(source, where, f"`batch_size` must be a positive integer, got {task.batch_size!r}.")
    if task_type.targets == "in_batch" and task.batch_size < 2:
        raise _fail(source, where, "in-batch retrieval needs `batch_size` >= 2 (the other examples are negatives).")
    _number(source, where, "sampling_weight", task.sampling_weight, 0.0, True)
    _number(source, where, "loss_weight", task.loss_weight, 0.0, True)
    if task.label_smoothing is not None:
        _number(source, where, "label_smoothing", task.label_smoothing, 0.0, True)
        if task.label_smoothing >= 1:
            raise _fail(source, where, f"`label_smoothing` must be in [0, 1), got {task.label_smoothing}.")
    if task.resolved_logit_scale not in LOGIT_SCALE_TASKS:
        raise _fail(
            source, where, f"`logit_scale` must be one of {list(LOGIT_SCALE_TASKS)}, got {task.logit_scale!r}."
        )
    if task.vocabulary not in VOCABULARY_MODES:
        raise _fail(source, where, f"`vocabulary` must be one of {list(VOCABULARY_MODES)}, got {task.vocabulary!r}.")
    if not isinstance(task.vocabulary_samples, int) or task.vocabulary_samples < 1:
        raise _fail(
            source, where, f"`vocabulary_samples` must be a positive integer, got {task.vocabulary_samples!r}."
        )
    if task.class_samples is not None:
        if task_type.targets not in ("classes", "answers"):
            raise _fail(source, where, "`class_samples` applies to classification and VQA tasks only.")
        if isinstance(task.class_samples, bool) or not isinstance(task.class_samples, int) or task.class_samples < 1:
            raise _fail(source, where, f"`class_samples` must be a positive integer, got {task.class_samples!r}.")
    if task.class_exemplars is not None:
        if task.type not in ("image_classification", "video_classification"):
            raise _fail(source, where, "`class_exemplars` applies to image and video classification only.")
        if not isinstance(task.class_exemplars, list) or not all(isinstance(p, str) for p in task.class_exemplars):
            raise _fail(source, where, "`class_exemplars` must be a list of image file paths, one per class.")
    for name in ("max_length", "num_frames", "frame_stride"):
        value = getattr(task, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise _fail(source, where, f"`{name}` must be a positive integer, got {value!r}.")
    if not isinstance(task.augmentation, dict):
        raise _fail(source, where, f"`augmentation` must be a mapping, got {task.augmentation!r}.")
    allowed = AUGMENTATION_KEYS[task_type.modality]
    if set(task.augmentation) - allowed:
        raise _fail(
            source,
            where,
            f"unknown augmentation keys {sorted(set(task.augmentation) - allowed)} for a "
            f"{task_type.modality} task; allowed: {sorted(allowed)}.",
        )
    if task.glue_task is not None and task.type != "text_classification":
        raise _fail(source, where, "`glue_task` applies to text_classification tasks only.")
    if task.gather_features is not None:
        if not isinstance(task.gather_features, bool):
            raise _fail(source, where, f"`gather_features` must be true or false, got {task.gather_features!r}.")
        if task_type.targets != "in_batch":
            raise _fail(source, where, "`gather_features` applies to in-batch retrieval tasks only.")
    return task


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    """A `Recipe` from the parsed mapping of a recipe file; raises `RecipeError` naming `source` and the entry."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping with a `tasks` list, got {type(data).__name__}.")
    unknown = set(data) - {"tasks", "training", "model", "seed", "description", "monitor"}
    if unknown:
        raise RecipeError(
            f"{source}: unknown top-level keys {sorted(unknown)}; expected tasks, training, model, "
            "seed, description, monitor."
        )
    entries = data.get("tasks")
    if not isinstance(entries, list) or not entries:
        raise RecipeError(f"{source}: `tasks` must be a non-empty list.")
    tasks = [_parse_task(entry, index, source) for index, entry in enumerate(entries)]
    names = [task.name for task in tasks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RecipeError(f"{source}: task names must be unique; repeated: {duplicates}.")
    for index, task in enumerate(tasks):
        if task.task_type.targets != "in_batch":
            continue
        if task.gather_features is None:
            task.gather_features = len(tasks) == 1
        elif task.gather_features and len(tasks) > 1:
            raise _fail(
                source,
                f"task {index} ({task.name})",
                "`gather_features: true` needs every process to train "
                "this task in the same step, which only a recipe with this task alone guarantees.",
            )
    if sum(task.sampling_weight for task in tasks) <= 0:
        raise RecipeError(f"{source}: the sampling weights of the tasks sum to zero; at least one must be > 0.")
    for key in ("training", "model"):
        if not isinstance(data.get(key, {}), dict):
            raise RecipeError(f"{source}: `{key}` must be a mapping.")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RecipeError(f"{source}: `seed` must be an integer, got {seed!r}.")
    monitor = data.get("monitor", False)
    if not isinstance(monitor, bool):
        raise RecipeError(f"{source}: `monitor` must be true or false, got {monitor!r}.")
    return Recipe(tasks, dict(data.get("training", {})), dict(data.get("model", {})), seed, source, monitor)


def load_recipe(path: str | Path) -> Recipe:
    """Reads a YAML (`.yaml`/`.yml`) or JSON recipe file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"Recipe file {str(path)!r} does not exist.")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as error:  # the parsers' own exception types differ; name the file either way
        raise RecipeError(f"Recipe file {str(path)!r} could not be parsed: {error}") from error
    return parse_recipe(data, str(path))


__all__ = [
    "PAPER_TRAINING_ARGUMENTS",
    "TASK_TYPES",
    "DatasetSpec",
    "Recipe",
    "RecipeError",
    "TaskSpec",
    "TaskType",
    "load_recipe",
    "parse_recipe",
]
