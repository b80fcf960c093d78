"""`UniPerceiverTrainer`: `transformers.Trainer` for the multi-task mixture, and `train_recipe`, which runs one.

What the Trainer does not know about Uni-Perceiver lives here: the slot order of `MultiTaskDataset` is the task
schedule (so the sampler is sequential), weight decay skips norms, biases, embeddings, logit scales, layer scales
and prompts (paper section 4.2), per-task losses are logged beside the total, and with several processes the
vocabulary of exact language modelling is sharded across them (appendix E). Works the same under `python`,
`torchrun` and `accelerate launch`.

Speed: by default (`embedding_update="rowwise"`) the token table gets sparse gradients during training and
`RowwiseAdamW` updates only the rows a step looked up (see `training/optim.py` for the exact semantics);
`"dense"` is the plain AdamW of every parameter. Padded texts are encoded in up to `length_groups` groups of similar
length (default 4), which skips most padded tokens of class-name target sets and fortunes. Video clips are decoded
once and kept in memory, up to `video_cache_mb` (default 512) per data-loading process. On a CPU the trainer
uses every core it may run on, split between the processes of the machine, and prints the thread count when
training starts.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback, TrainingArguments

from ..configuration_uniperceiver import UniPerceiverConfig
from ..modeling_uniperceiver import UniPerceiverModel
from ..pipeline_uniperceiver import save_for_pipeline
from ..pretraining_uniperceiver import UniPerceiverForPreTraining
from ..processing_uniperceiver import UniPerceiverProcessor
from ..prompt_tuning_uniperceiver import few_shot_subset
from .collator import UniPerceiverCollator
from .data import MultiTaskDataset, load_recipe_datasets
from .monitor import CollapseMonitorCallback
from .optim import RowwiseAdamW, clip_grad_norm_, sparse_embedding_gradients
from .recipe import Recipe, RecipeError


EMBEDDING_UPDATES = ("rowwise", "dense")
# Options of a recipe's `training` section (or `train_recipe` keyword arguments) that are the trainer's, not
# `TrainingArguments` fields, with their defaults; `video_cache_mb` goes to the collator (`UniPerceiverCollator`).
TRAINER_OPTIONS = {"embedding_update": "rowwise", "length_groups": 4, "video_cache_mb": 512}
TRAINING_ARGUMENT_NAMES = {field.name for field in fields(TrainingArguments) if field.init}

# Parameters that are embeddings in all but name: no weight decay on them.
_NO_DECAY_NAMES = ("spe_bias", "prompt_embeddings", "target_prompt_embeddings", "spatial_position_embeddings")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def no_weight_decay_parameter_names(model: nn.Module) -> set[str]:
    """Norms, biases, embeddings, logit scales, layer scales, the similarity weight and prompts: the original's
    `no_weight_decay()` list and the paper's "no decay on norms, biases, embeddings and logit scales"."""
    names = set()
    for module_name, module in model.named_modules():
        for parameter_name, parameter in module.named_parameters(recurse=False):
            if (
                isinstance(module, (nn.LayerNorm, nn.Embedding))
                or parameter.ndim <= 1
                or parameter_name in _NO_DECAY_NAMES
            ):
                names.add(f"{module_name}.{parameter_name}" if module_name else parameter_name)
    return names


class _KeepSpecialTokenIds(TrainerCallback):
    """Undoes `Trainer.train`'s alignment of the config's pad/bos/eos ids with the tokenizer's: Uni-Perceiver pads
    with id 0 under a mask, as the original, while the CLIP tokenizer names `<|endoftext|>` its pad token."""

    def __init__(self, config):
        self.config = config
        self.ids = {name: getattr(config, name) for name in ("pad_token_id", "bos_token_id", "eos_token_id")}

    def on_train_begin(self, args, state, control, **kwargs):
        for name, value in self.ids.items():
            setattr(self.config, name, value)


class _ReportThreads(TrainerCallback):
    """Prints, once per run, how many CPU threads each process computes with (a one-thread run is ~2x slower on
    two cores, and nothing else in the logs would show it)."""

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            print(
                f"Training with {torch.get_num_threads()} torch thread(s) per process, {args.world_size} "
                f"process(es), {available_cpus()} CPU(s) available.",
                flush=True,
            )


class UniPerceiverTrainer(Trainer):
    """A Trainer over a `MultiTaskDataset`: one task batch per step and process, per-task losses in the logs.

    Args:
        task_names: the recipe's task names, in order (the logged `loss/<task>` entries).
        embedding_update: `"rowwise"` (default): during `train()` the word-embedding table gets sparse gradients and
            AdamW updates only the rows the step looked up (`RowwiseAdamW`: those rows get exactly the dense AdamW
            update, untouched rows stay unchanged); the model is switched back to dense gradients when training
            ends, so its outputs and saved files never change. `"dense"`: plain AdamW on every row every step.
        length_groups: during `train()` a padded text side is encoded in at most this many groups of similar length
            (default 4; 1: one padded batch). The same losses and gradients up to float rounding, for fewer padded
            tokens (`length_groups_uniperceiver`); restored when training ends.
        Everything else as `transformers.Trainer`.
    """

    def __init__(
        self,
        *args: Any,
        task_names: list[str] | None = None,
        embedding_update: str = TRAINER_OPTIONS["embedding_update"],
        length_groups: int = TRAINER_OPTIONS["length_groups"],
        **kwargs: Any,
    ):
        if embedding_update not in EMBEDDING_UPDATES:
            raise ValueError(f"`embedding_update` must be one of {list(EMBEDDING_UPDATES)}, got {embedding_update!r}.")
        if isinstance(length_groups, bool) or not isinstance(length_groups, int) or length_groups < 1:
            raise ValueError(f"`length_groups` must be an integer >= 1 (1: off), got {length_groups!r}.")
        super().__init__(*args, **kwargs)
        self.add_callback(_KeepSpecialTokenIds(self.model.config))
        self.add_callback(_ReportThreads())
        self.task_names = list(task_names or [])
        self.embedding_update = embedding_update
        self.length_groups = length_groups
        self._task_stats = torch.zeros(len(self.task_names), 2, dtype=torch.float64)  # loss sum, steps

    def train(self, *args: Any, **kwargs: Any):
        encoders = [module for module in self.model.modules() if isinstance(module, UniPerceiverModel)]
        saved = [encoder.length_groups for encoder in encoders]
        tables = sparse_embedding_gradients(self.model, True) if self.embedding_update == "rowwise" else []
        for encoder in encoders:
            encoder.length_groups = self.length_groups
        try:
            return super().train(*args, **kwargs)
        finally:
            for table in tables:
                table.sparse = False
            for encoder, value in zip(encoders, saved):
                encoder.length_groups = value

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """The Trainer's optimiser (its parameter groups, `optim` and AdamW settings); with row-wise embedding updates
        the `RowwiseAdamW` of the same settings, which needs an AdamW `optim`."""
        if self.embedding_update == "rowwise" and self.optimizer is None and self.optimizer_cls_and_kwargs is None:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
            if optimizer_cls is not torch.optim.AdamW:
                raise ValueError(
                    f"`embedding_update='rowwise'` needs an AdamW `optim` (adamw_torch or "
                    f"adamw_torch_fused), got {self.args.optim!r}; or set `embedding_update: dense`."
                )
            self.optimizer_cls_and_kwargs = (RowwiseAdamW, optimizer_kwargs)
        return super().create_optimizer(model)

    def _has_sparse_gradients(self, model: nn.Module) -> bool:
        return any(p.grad is not None and p.grad.is_sparse for p in model.parameters())

    def _clip_grad_norm(self, model):
        # torch's `clip_grad_norm_` cannot take the token table's sparse gradient.
        if not self._has_sparse_gradients(model):
            return super()._clip_grad_norm(model)
        self.accelerator.unscale_gradients()
        return clip_grad_norm_(model.parameters(), self.args.max_grad_norm)

    def _get_grad_norm(self, model, grad_norm=None):
        if grad_norm is None and self._has_sparse_gradients(model):
            grad_norm = clip_grad_norm_(model.parameters(), float("inf"))
        return super()._get_grad_norm(model, grad_norm=grad_norm)

    def _get_train_sampler(self, train_dataset=None) -> SequentialSampler:
        # Slot i of the dataset is step i's task batch: shuffling happens inside each task's stream instead.
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        excluded = no_weight_decay_parameter_names(model)
        return [name for name, _ in model.named_parameters() if name not in excluded]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        name = inputs.get("task_name")
        if name in self.task_names and model.training:
            row = self.task_names.index(name)
            self._task_stats[row, 0] += float(outputs["task_loss"])
            self._task_stats[row, 1] += 1
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds `loss/<task>` (mean unweighted loss since the last log, over all processes) and `steps/<task>`,
        and the `monitor/...` diagnostics of a `CollapseMonitorCallback`, if one is registered."""
        if "loss" in logs:
            for callback in self.callback_handler.callbacks:
                if isinstance(callback, CollapseMonitorCallback):
                    logs.update(callback.logs())
        if "loss" in logs and self.task_names:
            stats = self._task_stats.to(self.args.device)
            if self.args.world_size > 1:
                torch.distributed.all_reduce(stats)
            for name, (total, steps) in zip(self.task_names, stats.tolist()):
                if steps:
                    logs[f"loss/{name}"] = total / steps
                    logs[f"steps/{name}"] = int(steps)
            self._task_stats.zero_()
        super().log(logs, start_time)


def build_config(recipe: Recipe) -> UniPerceiverConfig:
    """The architecture a recipe trains from scratch: `model: {preset: base, <field>: value, ...}`."""
    settings = dict(recipe.model)
    preset = settings.pop("preset", None)
    try:
        return UniPerceiverConfig.from_preset(preset, **settings) if preset else UniPerceiverConfig(**settings)
    except Exception as error:  # strict dataclass validation errors are not all ValueErrors
        raise RecipeError(f"{recipe.source}: invalid `model` section: {error}") from error


def recipe_processor(recipe: Recipe, config: UniPerceiverConfig) -> UniPerceiverProcessor:
    """The processor of a model of `config` trained on `recipe`, sampling clips as the recipe's video tasks do."""
    processor = UniPerceiverProcessor.for_model_config(config)
    # The saved model samples clips as its video tasks trained (frames and stride), not by the original's Kinetics
    # defaults (8 frames 32 apart), which would cycle through a short clip's frames out of order.
    for name, value in recipe.video_sampling.items():
        setattr(processor.video_processor, name, value)
    return processor


def train_recipe(
    recipe: Recipe,
    output_dir: str | Path,
    model: UniPerceiverForPreTraining | None = None,
    processor: UniPerceiverProcessor | None = None,
    max_steps: int | None = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list | None = None,
    save_final: bool = True,
    data_fraction: float | None = None,
    **training_overrides: Any,
) -> UniPerceiverTrainer:
    """Trains a model on a recipe and saves the result as a pipeline-ready folder `output_dir/final`, and the run's
    log as `output_dir/trainer_state.json`.

    Every dataset, column and class list is checked before the first step. `model` defaults to a new model of the
    recipe's `model` section, `processor` to `UniPerceiverProcessor.for_model_config(model.config)` sampling clips as
    the recipe's video tasks do;
    `training_overrides` are `TrainingArguments` fields on top of the recipe's `training` section (whose defaults
    are the paper's optimisation). `TRAINER_OPTIONS` (`embedding_update`, `length_groups`, see
    `UniPerceiverTrainer`; `video_cache_mb`, see `UniPerceiverCollator`) may be set in either place too.
    A recipe with `monitor: true` adds a `CollapseMonitorCallback` (unless `callbacks` hold one).
    `data_fraction` keeps an exact, reproducible fraction of every task's split, per class where the task has
    classes (the paper's 1 % / 10 % few-shot settings).
    """
    overrides = dict(training_overrides)
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    arguments = recipe.training_arguments(output_dir=str(output_dir), **overrides)
    options = {name: arguments.pop(name, default) for name, default in TRAINER_OPTIONS.items()}
    video_cache_mb = options.pop("video_cache_mb")  # the collator's
    unknown = sorted(set(arguments) - TRAINING_ARGUMENT_NAMES)
    if unknown:
        raise RecipeError(
            f"{recipe.source}: unknown training settings {unknown} (in `training` or given as overrides, e.g. "
            f"`--set`); expected `TrainingArguments` fields or {sorted(TRAINER_OPTIONS)}."
        )
    task_datasets = load_recipe_datasets(recipe)
    if data_fraction is not None:
        task_datasets = {
            task.name: few_shot_subset(
                task_datasets[task.name],
                data_fraction,
                label_column=task.column("label") if "label" in task.task_type.columns else None,
                seed=recipe.seed,
            )
            for task in recipe.tasks
        }
    if model is None:
        torch.manual_seed(recipe.seed)
        model = UniPerceiverForPreTraining(build_config(recipe))
    if processor is None:
        processor = recipe_processor(recipe, model.config)
    collator = UniPerceiverCollator(recipe, task_datasets, processor, model.config, video_cache_mb=video_cache_mb)
    if "use_cpu" not in arguments and not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        # Without an accelerator, TrainingArguments only joins the process group torchrun / accelerate launch set
        # up when told to use the CPU; otherwise each process would silently train alone.
        arguments["use_cpu"] = True
    if arguments.get("use_cpu") and "OMP_NUM_THREADS" not in os.environ:
        # Every core this process may run on, shared with the other processes of this machine (torchrun sets
        # OMP_NUM_THREADS itself; a value set by the user is kept).
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, available_cpus() // local_processes))
    args = TrainingArguments(**arguments)
    if args.max_steps <= 0:
        raise RecipeError(
            f"{recipe.source}: set `max_steps` (in `training` or as an argument); the mixture is endless."
        )
    slots = args.max_steps * args.gradient_accumulation_steps * max(1, args.world_size)
    dataset = MultiTaskDataset(recipe, task_datasets, slots)
    if args.world_size > 1 and any(
        t.task_type.targets == "vocabulary" and t.vocabulary == "exact" for t in recipe.tasks
    ):
        model.vocabulary_process_group = torch.distributed.new_group()
    callbacks = list(callbacks or [])
    if recipe.monitor and not any(isinstance(callback, CollapseMonitorCallback) for callback in callbacks):
        callbacks.append(CollapseMonitorCallback())
    trainer = UniPerceiverTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=processor,
        callbacks=callbacks,
        task_names=[task.name for task in recipe.tasks],
        **options,
    )
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    if trainer.is_world_process_zero():
        # The whole run's log (losses, per-task and monitor values) beside the checkpoints, for plots and reports.
        trainer.state.save_to_json(str(Path(output_dir) / "trainer_state.json"))
    if save_final:
        if trainer.is_world_process_zero():
            save_for_pipeline(
                trainer.accelerator.unwrap_model(trainer.model).uniperceiver, processor, Path(output_dir) / "final"
            )
        trainer.accelerator.wait_for_everyone()
    return trainer


__all__ = [
    "EMBEDDING_UPDATES",
    "TRAINER_OPTIONS",
    "UniPerceiverTrainer",
    "build_config",
    "no_weight_decay_parameter_names",
    "recipe_processor",
    "train_recipe",
]
