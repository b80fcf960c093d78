"""Uni-Perceiver-MoE's conditional mixture of experts (Zhu et al., NeurIPS 2022): the routing is decided by the task.

The gate of an MoE linear does not read the tokens but a small 0/1 task-attribute row (the config's attribute tables):
`logits = router(LayerNorm(Linear(attribute)))`, a softmax over the experts, the top-k kept and renormalised. As the
decision is the same for every token of a sequence part, the chosen experts are merged into one weight and bias
(`W = g_1 W_{i_1} + g_2 W_{i_2}`) and applied as a single linear layer. A sequence of two parts (captioning: the prefix
and the visual tokens, then the text) has two attribute rows and is split between them.

At inference the decisions and merged weights depend only on the attribute row and the parameters, so they are
computed once per row and kept (a few rows per layer), keyed on the parameters' storage and version counters: any
in-place change (`load_state_dict`, an optimiser step) or replacement (`.to(...)`) of a parameter computes them again.
"""

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .configuration_uniperceiver import UniPerceiverConfig


# Attribute rows whose merged weights each MoE linear keeps at inference (least recently used dropped first): a call
# needs one or two (input and target), captioning three (the two caption parts and the vocabulary).
MERGED_CACHE_SIZE = 4


@dataclass(frozen=True)
class MoERouting:
    """Which attribute row each position of a sequence uses.

    Args:
        rows: one or two attribute rows, as tuples of floats (hashable: they key the merged-weight cache).
        split: with two rows, the positions before `split` use the first row and the others the second
            (`data_cum_length[1]` of the official code: the prefix `<SPE>` and the visual tokens, then the text).
    """

    rows: tuple[tuple[float, ...], ...]
    split: int = 0

    def spans(self, length: int) -> list[tuple[int, int, tuple[float, ...]]]:
        """`(start, end, row)` for the non-empty parts of a sequence of `length` positions."""
        if len(self.rows) == 1:
            return [(0, length, self.rows[0])]
        split = min(max(self.split, 0), length)
        parts = [(0, split, self.rows[0]), (split, length, self.rows[1])]
        return [part for part in parts if part[1] > part[0]]

    def first_part(self) -> "MoERouting":
        """Every position uses the first row (deep prompts, which precede the whole sequence)."""
        return MoERouting(self.rows[:1])


@dataclass(frozen=True)
class MoEDecision:
    """The gate's choice for one attribute row: expert indices `[k]`, their weights `[k]` (fp32) and `key`, which
    identifies the row and the gate's parameter state (it keys the merged weights of the linears sharing it)."""

    indices: torch.Tensor
    gates: torch.Tensor
    key: tuple | None


def _state(parameters) -> tuple:
    """Where each parameter's storage is and how often it was modified in place: changes when either does."""
    return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in parameters)


def _caching(module: nn.Module) -> bool:
    """Decisions and merged weights may be kept: inference (no noise), no gradient to record, not being traced."""
    if module.training or torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return not (torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters()))


class UniPerceiverMoEGate(nn.Module):
    """The task gate (`TopKGate` with `TAG_Transform` of the official code): attribute rows `[R, length]` ->
    `(router logits [R, E], top-k indices [R, k], renormalised gate values [R, k])`, all in fp32."""

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.config = config
        self.top_k = config.moe_top_k
        width = config.moe_attribute_length
        if config.moe_attribute_transform:
            self.attribute_projection = nn.Linear(config.moe_attribute_length, config.hidden_size)
            self.attribute_activation = nn.GELU() if config.moe_attribute_transform_activation else nn.Identity()
            self.attribute_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            width = config.hidden_size
        else:
            self.attribute_projection = self.attribute_activation = self.attribute_norm = None
        self.router = nn.Linear(width, config.num_experts, bias=False)

    def forward(self, attributes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = attributes.to(self.router.weight.dtype)
        if self.attribute_projection is not None:
            hidden = self.attribute_norm(self.attribute_activation(self.attribute_projection(hidden)))
        # The official gate computes the logits in fp32 whatever the model's dtype.
        logits = F.linear(hidden.float(), self.router.weight.float())
        noisy = logits
        if self.training and self.config.moe_gate_noise == "vmoe":
            std = self.config.moe_gate_noise_std / self.config.num_experts
            noisy = logits + torch.randn_like(logits) * std
        indices = noisy.topk(self.top_k, dim=-1).indices
        gates = noisy.softmax(-1).gather(-1, indices)
        if self.top_k > 1:
            gates = gates / gates.sum(-1, keepdim=True).clamp(min=torch.finfo(gates.dtype).eps)
        return logits, indices, gates


class UniPerceiverMoELinear(nn.Module):
    """A linear layer with `num_experts` copies (`weight` `[E, out, in]`, `bias` `[E, out]`) merged per attribute row.

    With `gate` (a deciding layer) it routes by its own gate; without (a layer that shares a decision), the caller
    passes the decision of the layer it follows. `forward` returns the output and the decisions used.
    """

    def __init__(
        self, config: UniPerceiverConfig, in_features: int, out_features: int, decides: bool, fused_parts: int = 1
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        # A fused q|k|v projection (3 parts) is initialised as three square matrices, as its dense counterpart.
        self.fused_parts = fused_parts
        self.weight = nn.Parameter(torch.empty(config.num_experts, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(config.num_experts, out_features))
        self.gate = UniPerceiverMoEGate(config) if decides else None
        self._decisions: OrderedDict = OrderedDict()
        self._merged: OrderedDict = OrderedDict()

    def extra_repr(self) -> str:
        return f"experts={self.weight.shape[0]}, in_features={self.in_features}, out_features={self.out_features}"

    def train(self, mode: bool = True) -> "UniPerceiverMoELinear":
        # Training changes the weights at every step: the kept inference results would only hold memory.
        if mode:
            self._decisions.clear()
            self._merged.clear()
        return super().train(mode)

    def decide(self, rows: tuple[tuple[float, ...], ...]) -> list[MoEDecision]:
        """This layer's gate decisions, one per attribute row."""
        caching = _caching(self.gate)
        state = _state(self.gate.parameters()) if caching else None
        missing = [row for row in rows if not caching or (row, state) not in self._decisions]
        if missing:
            attributes = torch.tensor(missing, dtype=torch.float32, device=self.weight.device)
            _, indices, gates = self.gate(attributes)
            fresh = {
                row: MoEDecision(indices[i], gates[i], (row, state) if caching else None)
                for i, row in enumerate(missing)
            }
            if not caching:
                return [fresh[row] for row in rows]
            for row, decision in fresh.items():
                _remember(self._decisions, (row, state), decision)
        for row in rows:
            self._decisions.move_to_end((row, state))
        return [self._decisions[(row, state)] for row in rows]

    def merged(self, decision: MoEDecision) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight and bias of the decision's experts, each scaled by its gate value and summed."""
        key = None
        if decision.key is not None and _caching(self):
            key = (decision.key, _state((self.weight, self.bias)))
            if key in self._merged:
                self._merged.move_to_end(key)
                return self._merged[key]
        gates = decision.gates.to(self.weight.dtype)
        weight = (gates[:, None, None] * self.weight[decision.indices]).sum(0)
        bias = (gates[:, None] * self.bias[decision.indices]).sum(0)
        if key is not None:
            _remember(self._merged, key, (weight, bias))
        return weight, bias

    def forward(
        self,
        hidden_states: torch.Tensor,
        routing: MoERouting,
        decisions: list[MoEDecision] | None = None,
    ) -> tuple[torch.Tensor, list[MoEDecision]]:
        """`hidden_states` `[B, S, in]` -> `[B, S, out]`, each part of the sequence through its merged linear."""
        if routing is None:
            raise ValueError(
                "A Uni-Perceiver-MoE layer needs the task attribute of its sequence: call the model with `attribute` "
                "(or `task`), which builds the routing."
            )
        if decisions is None:
            decisions = self.decide(routing.rows)
        by_row = dict(zip(routing.rows, decisions))
        parts = [
            F.linear(hidden_states[:, start:end], *self.merged(by_row[row]))
            for start, end, row in routing.spans(hidden_states.shape[1])
        ]
        return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)), decisions


def _rows(value, config: UniPerceiverConfig, argument: str) -> tuple[tuple[float, ...], ...]:
    """Attribute rows given as a tensor or nested list, checked: one or two rows of `moe_attribute_length`."""
    rows = value.tolist() if torch.is_tensor(value) else value
    if isinstance(rows, (list, tuple)) and rows and not isinstance(rows[0], (list, tuple)):
        rows = [rows]  # a single row
    length = config.moe_attribute_length
    if (
        not isinstance(rows, (list, tuple))
        or not 1 <= len(rows) <= 2
        or any(not isinstance(row, (list, tuple)) or len(row) != length for row in rows)
    ):
        raise ValueError(
            f"`{argument}` must be a task-attribute name or one or two rows of {length} numbers, got {value!r}."
        )
    return tuple(tuple(float(x) for x in row) for row in rows)


def attribute_names(config: UniPerceiverConfig) -> list[str]:
    """Every name `resolve_attribute` accepts: the task types (optionally `:input` / `:target`) and target sets."""
    names = [f"{task}:{side}" for task, sides in config.moe_task_attributes.items() for side in sides]
    return sorted(config.moe_task_attributes) + names + sorted(config.moe_target_set_attributes)


def _named_rows(config: UniPerceiverConfig, name: str, is_target: bool, argument: str) -> tuple:
    if name in config.moe_target_set_attributes:
        return _rows(config.moe_target_set_attributes[name], config, argument)
    task, _, side = name.partition(":")
    side = side or ("target" if is_target else "input")
    sides = config.moe_task_attributes.get(task)
    if sides is None or side not in sides:
        raise ValueError(
            f"`{argument}` {name!r} is not in the model's task-attribute tables (a {side} side is looked up): "
            f"use one of {attribute_names(config)}, or pass the attribute rows."
        )
    return _rows(sides[side], config, argument)


# The official logit-scale names (`task`) whose inputs have no attribute row.
_UNROUTED_TASKS = {"downstream": "VQA"}


def default_attribute(task: str | None, is_target: bool, visual: str | None, has_text: bool) -> str:
    """The attribute the official code gives a side of these modalities for `task` (an official logit-scale name).

    Visual sides take the classification/retrieval input row (`image_classification`, the same as
    `image_retrieval`'s input), captioning inputs the two-part caption rows. Text takes the retrieval target row
    for `task="retrieve"`, the vocabulary's (`Vocab_Word`, also the GLUE label words') as the target of masked LM,
    GLUE and captioning, the class-name row (`ImageNet1k`, also Kinetics') as any other target, and `text_mlm`'s
    (also `text_classification`'s) as an input.
    """
    if task in _UNROUTED_TASKS:
        raise ValueError(
            f"{_UNROUTED_TASKS[task]} cannot run on a Uni-Perceiver-MoE model: the official code has no task attribute "
            "for it (its collator fails with KeyError('vqa')), so there are no trained experts to route it to."
        )
    if visual is not None and has_text:
        if task != "caption":
            raise ValueError(
                "A visual + text sequence on a Uni-Perceiver-MoE model is a caption (`task='caption'`); VQA has no "
                "task attribute in the official code. Pass `attribute` to route another layout explicitly."
            )
        return f"{visual}_caption:input"
    if visual is not None:
        return f"{visual}_retrieval:input" if task == "retrieve" else f"{visual}_classification:input"
    if task == "retrieve":
        return "image_retrieval:target"
    if is_target:
        return "Vocab_Word" if task in ("text_mlm", "caption", "mlm", "text_caption") else "ImageNet1k"
    return "text_mlm:input"


def resolve_attribute(
    config: UniPerceiverConfig,
    attribute,
    *,
    is_target: bool,
    task: str | None = None,
    visual: str | None = None,
    has_text: bool = False,
    argument: str = "attribute",
) -> tuple[tuple[float, ...], ...]:
    """The attribute rows of one side: `attribute` is a name (a target set such as `"ImageNet1k"`, or a task type
    such as `"image_caption"`, whose `"input"` or `"target"` rows are taken by the side, or `"task:side"`), one or
    two rows (a tensor or nested list), or `None` for the default of `task` and the side's modalities
    (`default_attribute`). `visual` is `"image"`, `"video"` or `None`."""
    if attribute is None:
        attribute = default_attribute(task, is_target, visual, has_text)
    if isinstance(attribute, str):
        return _named_rows(config, attribute, is_target, argument)
    return _rows(attribute, config, argument)


def moe_parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameter counts of an MoE model: `total` (everything stored), `deployment_per_row` (what one attribute row
    needs at inference: the non-expert parameters plus one merged copy of each MoE linear, no gates), and
    `merged_copy` (one such copy). A task whose sequences use `n` distinct rows needs
    `deployment_per_row + (n - 1) * merged_copy`: the official "167M at deployment" of MoE Base counts image-text
    tasks, two rows (the image side's and the text side's)."""
    total = sum(p.numel() for p in model.parameters())
    experts = gates = copy = 0
    for module in model.modules():
        if isinstance(module, UniPerceiverMoELinear):
            experts += module.weight.numel() + module.bias.numel()
            copy += module.weight[0].numel() + module.bias[0].numel()
            gates += sum(p.numel() for p in module.gate.parameters()) if module.gate is not None else 0
    return {"total": total, "deployment_per_row": total - experts - gates + copy, "merged_copy": copy}


def _remember(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    while len(cache) > MERGED_CACHE_SIZE:
        cache.popitem(last=False)


__all__ = [
    "MERGED_CACHE_SIZE",
    "MoEDecision",
    "MoERouting",
    "UniPerceiverMoEGate",
    "UniPerceiverMoELinear",
    "attribute_names",
    "default_attribute",
    "moe_parameter_counts",
    "resolve_attribute",
]
