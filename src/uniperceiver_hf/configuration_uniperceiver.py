"""Configuration of Uni-Perceiver: every architectural choice of the official model, typed."""

import copy
import dataclasses
import difflib
import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The 11 per-task log-scales of the official predictor, in its order. Each task picks one by name
# (image classification -> "img_cls", video classification -> "video_cls", MLM and GLUE -> "text_mlm",
# captioning -> "caption", retrieval -> "retrieve", VQA -> "downstream").
LOGIT_SCALE_TASKS = (
    "img_cls",
    "video_cls",
    "text_mlm",
    "text_caption",
    "caption",
    "mlm",
    "retrieve",
    "tqa_mlm",
    "tqa_caption",
    "tqa_retrieve",
    "downstream",
)

# The config fields holding special token ids: each must lie inside the vocabulary.
SPECIAL_TOKEN_FIELDS = (
    "spe_token_id",
    "eos_token_id",
    "bos_token_id",
    "mask_token_id",
    "gen_token_id",
    "pad_token_id",
)

# Uni-Perceiver-MoE's task attributes (the official `MOE_TYPE: 'attribute'` table): an 8-bit row per task type and
# side (`"input"`, and `"target"` for retrieval), and per shared target set. Sequences of two parts (captioning) have
# one row per part. The gates read these rows, not the tokens; the bits' meanings are not documented.
OFFICIAL_TASK_ATTRIBUTES: dict[str, dict[str, list[list[int]]]] = {
    "image_classification": {"input": [[1, 0, 0, 1, 1, 0, 0, 0]]},
    "video_classification": {"input": [[1, 0, 0, 1, 1, 0, 0, 0]]},
    "text_mlm": {"input": [[0, 1, 0, 1, 0, 1, 0, 0]]},
    "image_caption": {"input": [[1, 1, 0, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 1, 0, 1]]},
    "video_caption": {"input": [[1, 1, 0, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 1, 0, 1]]},
    "image_retrieval": {"input": [[1, 0, 0, 1, 1, 0, 0, 0]], "target": [[1, 0, 0, 1, 0, 1, 1, 0]]},
    "video_retrieval": {"input": [[1, 0, 0, 1, 1, 0, 0, 0]], "target": [[1, 0, 0, 1, 0, 1, 1, 0]]},
    "text_classification": {"input": [[0, 1, 0, 1, 0, 1, 0, 0]]},
}
OFFICIAL_TARGET_SET_ATTRIBUTES: dict[str, list[list[int]]] = {
    **{name: [[1, 0, 0, 1, 0, 1, 1, 0]] for name in ("ImageNet1k", "ImageNet22k", "MomentsInTime", "Kinetics700")},
    "Kinetics400": [[1, 0, 0, 1, 0, 1, 1, 0]],
    "Vocab_Word": [[1, 1, 0, 1, 0, 1, 1, 0]],
    **{
        f"{glue}-target": [[1, 1, 0, 1, 0, 1, 1, 0]]
        for glue in ("CoLA", "MNLI", "MRPC", "QNLI", "QQP", "RTE", "SST-2")
    },
}
# The sub-layers that may hold experts: the attention projections (q|k|v and output) and the feed-forward linears.
MOE_SUBLAYERS = ("attention", "mlp")
# Gate noise policies for training (`vmoe`: Gaussian noise of std `moe_gate_noise_std / num_experts` on the logits).
MOE_GATE_NOISE = ("vmoe",)

# The config fields of Uni-Perceiver-MoE; a dense config does not write them.
MOE_FIELDS = (
    "num_experts",
    "moe_top_k",
    "moe_layers",
    "moe_sublayers",
    "moe_attribute_length",
    "moe_attribute_transform",
    "moe_attribute_transform_activation",
    "moe_share_gate_decisions",
    "moe_gate_noise",
    "moe_gate_noise_std",
    "moe_task_attributes",
    "moe_target_set_attributes",
)

# Released sizes (paper section 4.2 and the official configs). Head size is 64 in both.
PRESETS: dict[str, dict] = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, drop_path_rate=0.2
    ),
}


@strict
class UniPerceiverConfig(PreTrainedConfig):
    r"""
    Configuration of [`UniPerceiverModel`]. The defaults are the released BASE model (12 x 768, 12 heads, FFN 3072);
    `UniPerceiverConfig.from_preset("large")` gives the released LARGE model.

    Text, image and video share one pre-LN Transformer encoder. Every sequence starts with a prefix `<SPE>` whose
    output, after `ln_post` and the projection, is L2-normalised; logits are cosine similarities times a per-task
    scale `min(exp(logit_scale_<task>), logit_scale_max)`.

    Args:
        vocab_size: CLIP BPE ids (49408) plus `<|mask|>`, `<|gen|>`, `<|spe|>`.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder sizes.
        hidden_act: FFN activation; the original uses the exact erf GELU (`"gelu"`).
        layer_norm_eps: eps of every LayerNorm (PyTorch's default, not BERT's 1e-12).
        layer_scale_init_value: initial value of the per-channel residual scales (`gamma_1`, `gamma_2`);
            `None` disables layer scale.
        drop_path_rate: stochastic depth on both residual branches, the same rate in every layer (pre-training uses
            0.1 for base, 0.2 for large; prompt tuning uses 0).
        attention_dropout, hidden_dropout: dropout probabilities (0 in every released config).
        max_position_embeddings: text position table size (512 in the released configs; the paper says 256).
        type_vocab_size: rows of the text type table; only row 0 is ever added.
        image_size, patch_size, num_channels: the patch tokenizer (224 px, 16 px patches, RGB).
        num_frames: size of the learned temporal position table (frames a video may have).
        spatial_position_scale: the fixed 2-D sin-cos spatial table is built on coordinates times this factor
            (160/224 keeps the 224 px grid on the 160 px grid of the first pre-training stage).
        random_temporal_offset: in training mode, shift temporal positions by a random offset in
            `[0, num_frames - T]`, images included, as the original does; evaluation always uses offset 0.
        temporal_difference_embedding: not in the paper (default off): also embed each video frame's difference from
            the previous frame with a patch projection of its own (`difference_embedding`, no bias) and add it to the
            frame's patches, a two-frame tubelet in residual form, so that each token sees local motion; it starts
            at zero, so a new model computes exactly what it would without it. Images are unaffected.
        convolutional_stem: not in the paper (default off): tokenize each frame with log2(patch_size) stride-2 3x3
            convolutions (channel LayerNorm and GELU after each; channels doubling up to half the hidden size) and a
            1x1 projection, instead of one linear projection per patch, as in "Early convolutions help transformers
            see better" (Xiao et al., 2021): the same tokens, one per patch, built from overlapping local features.
            It needs a `patch_size` that is a power of two.
        spe_token_id, eos_token_id, bos_token_id, mask_token_id, gen_token_id, pad_token_id: special ids.
        projection_dim: output size of the projection after `ln_post` (`None`: the hidden size).
        logit_scale_tasks: names of the per-task log-scales.
        logit_scale_init_value: initial log-scale, log(1/0.07).
        logit_scale_max: cap on `exp(logit_scale)` applied at use time (the parameter itself is never clamped).
        num_prompt_tokens: deep prompts per layer for prompt tuning (0 disables them; the paper uses 10).
        share_prompt_tokens: one set of deep prompts for inputs and targets, or a separate set for targets.
        use_spe_bias: learn `s_token_bias`, added to the word embedding of every `<SPE>` (prompt tuning).
        num_prompt_classes: output size of the prompt-tuning linear head `fc_prompt` (0: no head).
        share_embedding_layer_norm: one embedding LayerNorm for text and visual tokens, as in the released code
            (`SHARE_LAYERNORM: True`); `False` gives the visual tokens their own (`visual_layer_norm`), the paper's
            27 tuned LayerNorms of appendix C instead of the code's 26 (facts document section 7).
        initializer_range: std of the normal init of embeddings and prompts.
        temporal_initializer_range: std of the normal init of the temporal position table (`None`:
            `initializer_range`, as the original). From scratch, N(0, 0.02) leaves frame order ~35x fainter than the
            patches and the fixed spatial table (per-entry RMS ~0.7), and motion is learned late if at all; 0.7 puts
            the frames on the spatial table's scale. Only the initialisation: loaded weights are unaffected.
        num_experts: experts per MoE sub-layer (Uni-Perceiver-MoE, NeurIPS 2022); 0 is the dense model, which has
            no MoE field in its saved config and ignores task attributes.
        moe_top_k: experts merged per attribute row (the official 2); with more than one, their gates are
            renormalised to sum to 1.
        moe_layers: indices of the layers with experts (the released models: the even ones, `MOE_EXPERT_LOCATION:
            'odd'` of the official configs).
        moe_sublayers: which sub-layers of those layers have experts: `"attention"` (the q|k|v and output
            projections) and/or `"mlp"` (both feed-forward linears).
        moe_attribute_length: size of a task-attribute row (8).
        moe_attribute_transform: the gate maps the attribute through Linear(length, hidden) + LayerNorm first
            (`TAG_Transform`); without, the router reads the attribute row itself.
        moe_attribute_transform_activation: a GELU between that Linear and its LayerNorm (`TAG_Transform_ACT`).
        moe_share_gate_decisions: the output projection reuses the q|k|v projection's decision and the second
            feed-forward linear the first's (`FFN_SHARE_GATE_DECISION`); their own gates are then not built.
        moe_gate_noise: `"vmoe"` adds Gaussian noise to the gate logits in training mode (the official MoE
            configs); `None` never does. Evaluation is never noisy.
        moe_gate_noise_std: the noise's std is this divided by `num_experts`.
        moe_task_attributes: attribute rows per task type and side (`{"image_caption": {"input": [[...], [...]]}}`);
            default: the official table (`OFFICIAL_TASK_ATTRIBUTES`) for an MoE model.
        moe_target_set_attributes: attribute rows per shared target set (`"ImageNet1k"`, `"Vocab_Word"`,
            `"SST-2-target"`, ...); default: the official table for an MoE model.
    """

    model_type = "uniperceiver"

    vocab_size: int = 49411
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    layer_scale_init_value: float | None = 1e-3
    drop_path_rate: float = 0.1
    attention_dropout: float = 0.0
    hidden_dropout: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    num_frames: int = 8
    spatial_position_scale: float = 160 / 224
    random_temporal_offset: bool = True
    temporal_difference_embedding: bool = False
    convolutional_stem: bool = False
    spe_token_id: int = 49410
    eos_token_id: int = 49407
    bos_token_id: int = 49406
    mask_token_id: int = 49408
    gen_token_id: int = 49409
    pad_token_id: int = 0
    projection_dim: int | None = None
    logit_scale_tasks: list[str] | tuple[str, ...] = LOGIT_SCALE_TASKS
    logit_scale_init_value: float = math.log(1 / 0.07)
    logit_scale_max: float = 100.0
    num_prompt_tokens: int = 0
    share_prompt_tokens: bool = True
    use_spe_bias: bool = False
    num_prompt_classes: int = 0
    share_embedding_layer_norm: bool = True
    initializer_range: float = 0.02
    temporal_initializer_range: float | None = None
    num_experts: int = 0
    moe_top_k: int = 2
    moe_layers: list[int] | tuple[int, ...] = ()
    moe_sublayers: list[str] | tuple[str, ...] = MOE_SUBLAYERS
    moe_attribute_length: int = 8
    moe_attribute_transform: bool = True
    moe_attribute_transform_activation: bool = False
    moe_share_gate_decisions: bool = True
    moe_gate_noise: str | None = None
    moe_gate_noise_std: float = 1.0
    moe_task_attributes: dict[str, dict[str, list[list[int]]]] | None = None
    moe_target_set_attributes: dict[str, list[list[int]]] | None = None

    def __post_init__(self, **kwargs):
        if self.projection_dim is None:
            self.projection_dim = self.hidden_size
        self.logit_scale_tasks = list(self.logit_scale_tasks)
        self.moe_layers = list(self.moe_layers)
        self.moe_sublayers = list(self.moe_sublayers)
        if self.num_experts:
            if self.moe_task_attributes is None:
                self.moe_task_attributes = copy.deepcopy(OFFICIAL_TASK_ATTRIBUTES)
            if self.moe_target_set_attributes is None:
                self.moe_target_set_attributes = copy.deepcopy(OFFICIAL_TARGET_SET_ATTRIBUTES)
        # Unknown keywords become plain attributes (transformers' rule); one that is a near-miss of a field is
        # almost certainly a typo that would otherwise leave the field at its default without a word.
        fields = [field.name for field in dataclasses.fields(self)]
        for key in kwargs:
            if close := difflib.get_close_matches(key, fields, n=1, cutoff=0.8):
                logger.warning(f"`{key}` is not a config field (did you mean `{close[0]}`?); it has no effect.")
        if __package__ == "uniperceiver_hf":
            # Saved folders declare the zero-shot-perception pipeline for remote code; transformers would then insist on
            # `trust_remote_code` for that task name even though the imported package registers the same pipeline. The
            # package's own class (never the remote copy) forgets the declaration, which every save writes again.
            kwargs.pop("custom_pipelines", None)
        super().__post_init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "UniPerceiverConfig":
        """The released `"base"` or `"large"` architecture, with optional field overrides."""
        if name not in PRESETS:
            raise ValueError(f"`name` must be one of {sorted(PRESETS)}, got {name!r}.")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        """`PreTrainedConfig.to_dict`; a dense config leaves the MoE fields out, so that its saved `config.json`
        is exactly what it was before MoE support (loading fills them with their dense defaults)."""
        output = super().to_dict()
        if not self.is_moe:
            for name in MOE_FIELDS:
                output.pop(name, None)
        return output

    @property
    def is_moe(self) -> bool:
        """Uni-Perceiver-MoE: some sub-layers hold experts chosen by task attributes."""
        return self.num_experts > 0

    def moe_layer_sublayers(self, layer_index: int) -> frozenset[str]:
        """The sub-layers (`"attention"`, `"mlp"`) of layer `layer_index` that hold experts (none when dense)."""
        if not self.is_moe or layer_index not in self.moe_layers:
            return frozenset()
        return frozenset(self.moe_sublayers)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_patches(self) -> int:
        """Patches per frame, i.e. rows of the spatial position table."""
        return (self.image_size // self.patch_size) ** 2

    def validate_architecture(self):
        """Rejects inconsistent values with a message naming the fields."""
        positive = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "image_size",
            "patch_size",
            "num_channels",
            "num_frames",
            "projection_dim",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {getattr(self, name)}.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"`hidden_size` ({self.hidden_size}) must be divisible by `num_attention_heads` "
                f"({self.num_attention_heads})."
            )
        if self.hidden_size % 4 != 0:
            raise ValueError(
                f"`hidden_size` ({self.hidden_size}) must be divisible by 4 for the 2-D sin-cos spatial positions."
            )
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"`image_size` ({self.image_size}) must be a multiple of `patch_size` ({self.patch_size})."
            )
        if self.convolutional_stem and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError(
                f"`patch_size` must be a power of two >= 2 with `convolutional_stem` on (one stride-2 convolution "
                f"per halving), got {self.patch_size}."
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"`hidden_act` must be one of transformers' activations, got {self.hidden_act!r}.")
        for name in ("drop_path_rate", "attention_dropout", "hidden_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)}.")
        # Comparisons are written so that NaN fails them too (NaN <= 0 is False).
        for name in ("layer_norm_eps", "logit_scale_max", "spatial_position_scale"):
            if not 0.0 < getattr(self, name) < math.inf:
                raise ValueError(f"`{name}` must be a positive finite number, got {getattr(self, name)}.")
        ranges = {"initializer_range": self.initializer_range}
        if self.temporal_initializer_range is not None:  # `None` defers to `initializer_range`
            ranges["temporal_initializer_range"] = self.temporal_initializer_range
        for name, value in ranges.items():
            if not 0.0 <= value < math.inf:
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value}.")
        for name in ("logit_scale_init_value", "layer_scale_init_value"):
            if getattr(self, name) is not None and not math.isfinite(getattr(self, name)):
                raise ValueError(f"`{name}` must be a finite number, got {getattr(self, name)}.")
        if not self.logit_scale_tasks or len(set(self.logit_scale_tasks)) != len(self.logit_scale_tasks):
            raise ValueError(f"`logit_scale_tasks` must be non-empty and unique, got {self.logit_scale_tasks}.")
        for name in ("num_prompt_tokens", "num_prompt_classes"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}.")
        for name in SPECIAL_TOKEN_FIELDS:
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(
                    f"`{name}` ({getattr(self, name)}) must be a valid id below `vocab_size` ({self.vocab_size})."
                )
        self._validate_moe()

    def _validate_moe(self):
        """The MoE fields: consistent among themselves and with the architecture."""
        if self.num_experts < 0:
            raise ValueError(f"`num_experts` must be >= 0 (0: the dense model), got {self.num_experts}.")
        if not self.is_moe:
            return
        if not 1 <= self.moe_top_k <= self.num_experts:
            raise ValueError(f"`moe_top_k` must be in [1, `num_experts` = {self.num_experts}], got {self.moe_top_k}.")
        bad_layers = [i for i in self.moe_layers if not 0 <= i < self.num_hidden_layers]
        if not self.moe_layers or bad_layers or len(set(self.moe_layers)) != len(self.moe_layers):
            raise ValueError(
                f"`moe_layers` must be distinct layer indices in [0, `num_hidden_layers` = {self.num_hidden_layers}), "
                f"at least one, got {self.moe_layers}."
            )
        if not self.moe_sublayers or any(name not in MOE_SUBLAYERS for name in self.moe_sublayers):
            raise ValueError(
                f"`moe_sublayers` must be a non-empty subset of {list(MOE_SUBLAYERS)}, got {self.moe_sublayers}."
            )
        if self.moe_attribute_length <= 0:
            raise ValueError(f"`moe_attribute_length` must be a positive integer, got {self.moe_attribute_length}.")
        if self.moe_gate_noise is not None and self.moe_gate_noise not in MOE_GATE_NOISE:
            raise ValueError(
                f"`moe_gate_noise` must be None or one of {list(MOE_GATE_NOISE)}, got {self.moe_gate_noise!r}."
            )
        if not 0.0 <= self.moe_gate_noise_std < math.inf:
            raise ValueError(f"`moe_gate_noise_std` must be a finite number >= 0, got {self.moe_gate_noise_std}.")
        tables = [
            (f"moe_task_attributes[{task!r}][{side!r}]", rows)
            for task, sides in self.moe_task_attributes.items()
            for side, rows in sides.items()
        ]
        tables += [
            (f"moe_target_set_attributes[{name!r}]", rows) for name, rows in self.moe_target_set_attributes.items()
        ]
        for name, rows in tables:
            if not rows or len(rows) > 2 or any(len(row) != self.moe_attribute_length for row in rows):
                raise ValueError(
                    f"`{name}` must hold one or two rows (two: a visual part then a text part) of "
                    f"`moe_attribute_length` = {self.moe_attribute_length} values, got {rows}."
                )
        for task, sides in self.moe_task_attributes.items():
            if not sides or any(side not in ("input", "target") for side in sides):
                raise ValueError(
                    f"`moe_task_attributes[{task!r}]` must map 'input' and/or 'target' to rows, got {sorted(sides)}."
                )


# `save_pretrained` copies this file and writes `auto_map`, so `trust_remote_code=True` works without the package.
UniPerceiverConfig.register_for_auto_class()

__all__ = [
    "LOGIT_SCALE_TASKS",
    "MOE_FIELDS",
    "MOE_GATE_NOISE",
    "MOE_SUBLAYERS",
    "OFFICIAL_TARGET_SET_ATTRIBUTES",
    "OFFICIAL_TASK_ATTRIBUTES",
    "PRESETS",
    "SPECIAL_TOKEN_FIELDS",
    "UniPerceiverConfig",
]
