"""`CollapseMonitorCallback`: what tells feature collapse from progress while Uni-Perceiver trains.

Every task scores inputs against targets by the cosine of their `<SPE>` features (paper eq. 1-2). When the features
of all inputs (or of all targets) point the same way, every logit is the same, the softmax is uniform and the loss
sits at log(number of candidates) however long the run goes. The losses alone cannot tell that state from slow
progress; these numbers can, per task, averaged over the steps since the last log:

- `monitor/<task>/input_cosine`, `monitor/<task>/target_cosine`: mean pairwise cosine of the batch's normalised input
  and target features (1: all identical, 0: orthogonal on average);
- `monitor/<task>/logit_std`: spread of the logits over the candidates of one input, averaged over inputs;
- `monitor/<task>/accuracy`: top-1 of the training batch (retrieval: the diagonal is the answer);
- `monitor/<task>/grad_norm/<block>`: gradient norm of the token table (`word_embeddings`), the rest of the
  embeddings (`embeddings`), each encoder layer (`layer_<i>`) and the similarity head (`head`), measured after
  clipping, just before the optimiser step.

A recipe turns it on with `monitor: true` (top level); the values go through the Trainer's log, so they land in
`trainer_state.json`'s `log_history` beside the losses. Each process reports its own steps.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn
from transformers import TrainerCallback

from ..modeling_uniperceiver import UniPerceiverModel


def mean_pairwise_cosine(embeds: torch.Tensor) -> float:
    """Mean cosine over all pairs `i != j` of the rows of `[N, D]` features (normalised here), in O(N D):
    `(|sum_i e_i|^2 - N) / (N (N - 1))`. `nan` for fewer than two rows."""
    count = embeds.shape[0]
    if count < 2:
        return float("nan")
    normed = nn.functional.normalize(embeds.detach().float(), dim=-1)
    total = normed.sum(0)
    return float((total @ total - count) / (count * (count - 1)))


def mean_logit_std(logits: torch.Tensor) -> float:
    """Standard deviation of each row of `[N, C]` logits (one input against its candidates), averaged over rows."""
    if logits.shape[-1] < 2:
        return float("nan")
    return float(logits.detach().float().std(dim=-1).mean())


def batch_accuracy(logits: torch.Tensor, labels: torch.Tensor | None) -> float:
    """Top-1 of `[N, C]` logits against target indices (-100 ignored), soft targets (their argmax), or, without
    labels, the diagonal of square in-batch retrieval logits; `nan` when nothing is counted."""
    logits = logits.detach()
    if labels is None:
        if logits.shape[0] != logits.shape[1]:
            return float("nan")
        labels = torch.arange(logits.shape[0], device=logits.device)
    elif labels.is_floating_point():
        labels = labels.argmax(-1)
    labels = labels.to(logits.device)
    counted = labels != -100
    if not counted.any():
        return float("nan")
    return float((logits.argmax(-1)[counted] == labels[counted]).float().mean())


def block_of(parameter_name: str) -> str:
    """The block a parameter of `UniPerceiverModel` belongs to, for the per-block gradient norms."""
    parts = parameter_name.split(".")
    if parts[0] == "embeddings":
        return "word_embeddings" if "word_embeddings" in parts else "embeddings"
    if parts[:2] == ["encoder", "layers"]:
        return f"layer_{parts[2]}"
    return parts[0]


class CollapseMonitorCallback(TrainerCallback):
    """Logs per-task feature spread, logit spread, batch accuracy and per-block gradient norms (module docstring).

    Hooks the model's `UniPerceiverModel` when training begins to read each step's features and logits, and the
    task name from the keyword arguments of the outer model's call (`task_name`, as `UniPerceiverCollator` sets
    it; `"all"` without one). With gradient accumulation a step's gradient norms count for the task of its last
    micro-batch. `UniPerceiverTrainer.log` adds `logs()` to every log entry.

    Args:
        gradient_norms: measure the per-block gradient norms (one pass over the gradients per step).
    """

    def __init__(self, gradient_norms: bool = True):
        self.gradient_norms = gradient_norms
        self._sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        self._task = "all"
        self._labels = None
        self._handles: list = []
        self._inner: UniPerceiverModel | None = None

    def _add(self, key: str, value: float) -> None:
        if value == value:  # skips nan
            entry = self._sums[key]
            entry[0] += value
            entry[1] += 1

    def _remember_call(self, module, args, kwargs) -> None:
        self._task = kwargs.get("task_name") or "all"
        self._labels = kwargs.get("labels")

    def _record_outputs(self, module, args, kwargs, output) -> None:
        if not module.training or output.logits is None:
            return
        prefix = f"monitor/{self._task}"
        self._add(f"{prefix}/input_cosine", mean_pairwise_cosine(output.input_embeds))
        self._add(f"{prefix}/target_cosine", mean_pairwise_cosine(output.target_embeds))
        self._add(f"{prefix}/logit_std", mean_logit_std(output.logits))
        self._add(f"{prefix}/accuracy", batch_accuracy(output.logits, self._labels))

    def attach(self, model: nn.Module) -> None:
        """Hooks `model` (a `UniPerceiverModel` or any module holding one, possibly wrapped)."""
        self.detach()
        inner = next((m for m in model.modules() if isinstance(m, UniPerceiverModel)), None)
        if inner is None:
            raise ValueError(f"`model` must be or hold a UniPerceiverModel, got {type(model).__name__}.")
        self._inner = inner
        # The outermost unwrapped module sees the task name and the labels (DDP keeps it as `.module`).
        outer = model.module if hasattr(model, "module") else model
        self._handles.append(outer.register_forward_pre_hook(self._remember_call, with_kwargs=True))
        self._handles.append(inner.register_forward_hook(self._record_outputs, with_kwargs=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def record_gradient_norms(self) -> None:
        """Adds this step's per-block gradient norms (call after backward, before the optimiser step)."""
        squares: dict[str, float] = defaultdict(float)
        for name, parameter in self._inner.named_parameters():
            gradient = parameter.grad
            if gradient is None:
                continue
            if gradient.is_sparse:
                gradient = gradient.coalesce().values()
            squares[block_of(name)] += float(gradient.detach().float().pow(2).sum())
        for block, square in squares.items():
            self._add(f"monitor/{self._task}/grad_norm/{block}", square**0.5)

    def logs(self) -> dict[str, float]:
        """The means since the last call, by key; resets them."""
        means = {key: total / count for key, (total, count) in self._sums.items() if count}
        self._sums.clear()
        return means

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self.attach(model)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.gradient_norms and self._inner is not None:
            self.record_gradient_norms()

    def on_train_end(self, args, state, control, **kwargs):
        self.detach()


__all__ = ["CollapseMonitorCallback", "batch_accuracy", "block_of", "mean_logit_std", "mean_pairwise_cosine"]
