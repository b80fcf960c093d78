"""Prompt tuning (paper section 3.3 and appendix C): a frozen pre-trained model plus a few task tensors.

Four groups of parameters are learned, everything else stays frozen: the `<SPE>` bias (`s_token_bias`), every
LayerNorm (`norm1`/`norm2` of each layer, the embedding LayerNorm(s), `ln_post`), deep prompts in every layer, and
for classification a linear head with a learned similarity weight. `prepare_prompt_tuning` builds such a model
from a pre-trained one; `few_shot_subset` draws the few-shot training data (1 % per class for ImageNet-1k).

Parameter counts at base size (paper Table 9 and facts document section 7):

| group | paper | released code | here |
|---|---|---|---|
| SPE | 768 | 768 | 768 |
| Layer Norm | 41,472 (27 LNs) | 39,936 (26 LNs: one shared embedding LN) | `layer_norms="paper"` or `"released"` |
| Prompt | 184,320 | 92,160 shared / 184,320 unshared | `share_prompt_tokens` |
| Linear head | 768 x classes | 768 x classes + classes + 1 | 768 x classes + classes (bias) + 1 (`similarity_weight`) |

The paper's table counts only the head's weight matrix; the head also has a bias per class and the scalar
similarity weight alpha of eq. 4, which the paper initialises (to 0 and 1) but does not count.

It sits at the package root, with the model code, because it only reshapes a `UniPerceiverModel` (the prompt
parameters are the model's own) and needs no `training/` code: the adapters and any trainer build on it.
"""

import copy
import math
import random
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .modeling_uniperceiver import (
    UniPerceiverEncoderLayer,
    UniPerceiverModel,
    UniPerceiverSimilarityHead,
    UniPerceiverTextEmbeddings,
)
from .moe_uniperceiver import UniPerceiverMoEGate


SPE = "SPE"
LAYER_NORM = "Layer Norm"
PROMPT = "Prompt"
LINEAR_HEAD = "Linear head"
OTHER = "other"
# The four learned groups of appendix C, in the order of Table 9.
PROMPT_TUNING_GROUPS = (SPE, LAYER_NORM, PROMPT, LINEAR_HEAD)
# `layer_norms` setting -> `share_embedding_layer_norm` of the config.
_LAYER_NORM_LAYOUTS = {"paper": False, "released": True}


@dataclass(frozen=True)
class PromptTuningSettings:
    """What prompt tuning adds to a pre-trained model (paper appendix C; defaults are the paper's).

    Args:
        num_prompt_tokens: deep prompts per layer (keys/values only, prefix-tuning style); the paper uses 10.
        share_prompt_tokens: one set of prompts for inputs and targets (the released classification and captioning
            configs), or a separate target set (the paper's Table 9 count, the released retrieval configs).
        spe_bias: learn the `<SPE>` bias `s_token_bias`, shared by inputs and targets.
        num_classes: classes of the linear head added to the similarity logits (0: no head, for tasks that are not
            classification).
        layer_norms: `"paper"`: the text and visual tokenizers have their own embedding LayerNorm (27 LNs at base
            size; the visual one starts as a copy of the pre-trained shared LN); `"released"`: the one shared
            embedding LN of the released code (26 LNs).
        drop_path_rate: stochastic depth while tuning (the released prompt-tuning recipes use 0).
    """

    num_prompt_tokens: int = 10
    share_prompt_tokens: bool = False
    spe_bias: bool = True
    num_classes: int = 0
    layer_norms: str = "paper"
    drop_path_rate: float = 0.0

    def __post_init__(self):
        for name in ("num_prompt_tokens", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")
        for name in ("share_prompt_tokens", "spe_bias"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be a bool, got {getattr(self, name)!r}.")
        if self.layer_norms not in _LAYER_NORM_LAYOUTS:
            raise ValueError(f"`layer_norms` must be one of {sorted(_LAYER_NORM_LAYOUTS)}, got {self.layer_norms!r}.")
        if not isinstance(self.drop_path_rate, (int, float)) or not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"`drop_path_rate` must be in [0, 1), got {self.drop_path_rate!r}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "PromptTuningSettings":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown prompt-tuning settings {unknown}; expected {[f.name for f in fields(cls)]}.")
        return cls(**values)

    @classmethod
    def from_config(cls, config) -> "PromptTuningSettings":
        """The settings a prompt-tuned model's config carries."""
        return cls(
            num_prompt_tokens=config.num_prompt_tokens,
            share_prompt_tokens=config.share_prompt_tokens,
            spe_bias=config.use_spe_bias,
            num_classes=config.num_prompt_classes,
            layer_norms="released" if config.share_embedding_layer_norm else "paper",
            drop_path_rate=config.drop_path_rate,
        )

    def config_for(self, base_config):
        """`base_config` (architecture, attention implementation...) with these prompt-tuning fields."""
        config = copy.deepcopy(base_config)
        config.num_prompt_tokens = self.num_prompt_tokens
        config.share_prompt_tokens = self.share_prompt_tokens
        config.use_spe_bias = self.spe_bias
        config.num_prompt_classes = self.num_classes
        config.share_embedding_layer_norm = _LAYER_NORM_LAYOUTS[self.layer_norms]
        config.drop_path_rate = float(self.drop_path_rate)
        return config


def parameter_groups(model: UniPerceiverModel) -> dict[str, str]:
    """The appendix-C group of every parameter name (`SPE`, `Layer Norm`, `Prompt`, `Linear head`), or `other`
    for the parameters that prompt tuning keeps frozen (Uni-Perceiver-MoE's experts and gates among them). Found by module type, so no name pattern can miss one."""
    group_of: dict[int, str] = {}
    # The LayerNorm inside an MoE gate is part of the routing, not one of the paper's tuned LayerNorms: frozen.
    routing = {id(p) for m in model.modules() if isinstance(m, UniPerceiverMoEGate) for p in m.parameters()}
    for module in model.modules():
        if isinstance(module, nn.LayerNorm) and not any(id(p) in routing for p in module.parameters()):
            members, group = list(module.parameters()), LAYER_NORM
        elif isinstance(module, UniPerceiverTextEmbeddings):
            members, group = [module.spe_bias], SPE
        elif isinstance(module, UniPerceiverEncoderLayer):
            members, group = [module.prompt_embeddings, module.target_prompt_embeddings], PROMPT
        elif isinstance(module, UniPerceiverSimilarityHead) and module.classifier is not None:
            members, group = [*module.classifier.parameters(), module.similarity_weight], LINEAR_HEAD
        else:
            continue
        group_of.update({id(parameter): group for parameter in members if parameter is not None})
    return {name: group_of.get(id(parameter), OTHER) for name, parameter in model.named_parameters()}


def trainable_parameter_breakdown(model: UniPerceiverModel) -> dict[str, int]:
    """Trainable (`requires_grad`) parameter counts per appendix-C group, plus `other` (0 after
    `prepare_prompt_tuning`). Compare with paper Table 9 (see the module docstring)."""
    counts = dict.fromkeys((*PROMPT_TUNING_GROUPS, OTHER), 0)
    parameters = dict(model.named_parameters())
    for name, group in parameter_groups(model).items():
        if parameters[name].requires_grad:
            counts[group] += parameters[name].numel()
    return counts


def prepare_prompt_tuning(
    model: UniPerceiverModel, settings: PromptTuningSettings | None = None, generator: torch.Generator | None = None
) -> UniPerceiverModel:
    """A new model for prompt tuning `model` (appendix C): `model`'s config plus `settings`, its pre-trained weights,
    and only the four groups trainable.

    New tensors start as in appendix C: prompts ~ N(0, `initializer_range`) (drawn from `generator`, or torch's
    global generator), the `<SPE>` bias and the linear head at zero, the similarity weight at one; with
    `layer_norms="paper"` the visual embedding LayerNorm starts as a copy of the shared one. Prompt-tuning tensors
    that `model` may already have are not carried over. The LayerNorms are copies; the frozen tensors are `model`'s
    own (shared storage, nothing copied), so training the result never changes `model`, but changing `model` in
    place changes the result's frozen weights.
    """
    if not isinstance(model, UniPerceiverModel):
        raise TypeError(f"`model` must be a UniPerceiverModel, got {type(model).__name__}.")
    settings = PromptTuningSettings() if settings is None else settings
    if not isinstance(settings, PromptTuningSettings):
        raise TypeError(f"`settings` must be PromptTuningSettings, got {type(settings).__name__}.")
    config = settings.config_for(model.config)
    with torch.device("meta"):
        tuned = UniPerceiverModel(config)
    pretrained = model.state_dict()
    device, dtype = model.device, model.dtype
    # A separate visual embedding LN that `model` lacks starts from the pre-trained shared one.
    sources = {f"embeddings.visual_layer_norm.{k}": f"embeddings.layer_norm.{k}" for k in ("weight", "bias")}
    state = {}
    for name, group in parameter_groups(tuned).items():
        shape = tuned.get_parameter(name).shape
        if group == OTHER:
            state[name] = pretrained[name]
        elif group == LAYER_NORM:
            state[name] = pretrained[name if name in pretrained else sources[name]].clone()
        elif group == PROMPT:
            fresh = torch.empty(shape).normal_(0.0, config.initializer_range, generator=generator)
            state[name] = fresh.to(device=device, dtype=dtype)
        else:  # the <SPE> bias and the linear head start at zero, the similarity weight at one
            fill = 1.0 if tuned.get_parameter(name) is tuned.head.similarity_weight else 0.0
            state[name] = torch.full(shape, fill, device=device, dtype=dtype)
    tuned.load_state_dict(state, strict=True, assign=True)
    for name, group in parameter_groups(tuned).items():
        tuned.get_parameter(name).requires_grad_(group != OTHER)
    return tuned.train(model.training)


def few_shot_subset(dataset, fraction: float, label_column: str | None = None, seed: int = 0):
    """An exact, reproducible `fraction` of a `datasets.Dataset` (the few-shot data of prompt tuning: 1 % per class
    for ImageNet-1k, facts document section 7).

    With `label_column`, each class keeps `round(fraction * its count)` examples (rounded half up, at least 1);
    otherwise the whole dataset keeps `round(fraction * len)` (at least 1). The same seed gives the same rows;
    the kept rows stay in their original order.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
        raise ValueError(f"`fraction` must be in (0, 1], got {fraction!r}.")
    if not hasattr(dataset, "select") or not hasattr(dataset, "column_names"):
        raise TypeError(f"`dataset` must be a datasets.Dataset, got {type(dataset).__name__}.")
    if label_column is not None and label_column not in dataset.column_names:
        raise ValueError(f"`label_column` {label_column!r} is not a column of the dataset {dataset.column_names}.")
    if len(dataset) == 0:
        raise ValueError("`dataset` is empty.")
    rng = random.Random(seed)
    if label_column is None:
        classes = {None: list(range(len(dataset)))}
    else:
        classes = {}
        for index, label in enumerate(dataset[label_column]):
            try:
                classes.setdefault(label, []).append(index)
            except TypeError as error:
                raise ValueError(
                    f"`label_column` {label_column!r} must hold one hashable label per row, got {label!r}."
                ) from error
    kept = []
    # Classes in a fixed order (by first occurrence), so the draws do not depend on hashing.
    for indices in classes.values():
        count = max(1, math.floor(fraction * len(indices) + 0.5))
        kept.extend(rng.sample(indices, count))
    return dataset.select(sorted(kept))


__all__ = [
    "PROMPT_TUNING_GROUPS",
    "PromptTuningSettings",
    "few_shot_subset",
    "parameter_groups",
    "prepare_prompt_tuning",
    "trainable_parameter_breakdown",
]
