"""Configuration of Uni-Perceiver: every architectural choice of the official model, typed."""

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

    def __post_init__(self, **kwargs):
        if self.projection_dim is None:
            self.projection_dim = self.hidden_size
        self.logit_scale_tasks = list(self.logit_scale_tasks)
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
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"`hidden_act` must be one of transformers' activations, got {self.hidden_act!r}.")
        for name in ("drop_path_rate", "attention_dropout", "hidden_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)}.")
        # Comparisons are written so that NaN fails them too (NaN <= 0 is False).
        for name in ("layer_norm_eps", "logit_scale_max", "spatial_position_scale"):
            if not 0.0 < getattr(self, name) < math.inf:
                raise ValueError(f"`{name}` must be a positive finite number, got {getattr(self, name)}.")
        if not 0.0 <= self.initializer_range < math.inf:
            raise ValueError(f"`initializer_range` must be a finite number >= 0, got {self.initializer_range}.")
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


# `save_pretrained` copies this file and writes `auto_map`, so `trust_remote_code=True` works without the package.
UniPerceiverConfig.register_for_auto_class()

__all__ = ["UniPerceiverConfig", "LOGIT_SCALE_TASKS", "PRESETS", "SPECIAL_TOKEN_FIELDS"]
