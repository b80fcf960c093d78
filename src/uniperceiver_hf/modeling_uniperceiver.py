"""Uni-Perceiver: one shared pre-LN Transformer for text, images and video (Zhu et al., CVPR 2022).

Every task is "pick the candidate target whose representation is most similar to the input's" (paper eq. 1-2):
input and target sequences are encoded by the same weights, read out at a `<SPE>` position, passed through
`ln_post` and a projection, L2-normalised, and compared by cosine similarity times a per-task scale.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, logging
from transformers.utils.output_capturing import capture_outputs

from .configuration_uniperceiver import SPECIAL_TOKEN_FIELDS, UniPerceiverConfig
from .length_groups_uniperceiver import encode_in_groups, plan_length_groups, text_lengths
from .moe_uniperceiver import MoERouting, UniPerceiverMoELinear, resolve_attribute
from .validation_uniperceiver import check_labels, check_side, check_target_embeds
from .versions_uniperceiver import explain_untested_transformers


logger = logging.get_logger(__name__)

# ----------------------------------------------------------------------------------------------------------------------
# Outputs


@dataclass
class UniPerceiverEncoderOutput(ModelOutput):
    """
    One side (input or target) encoded and read out.

    Args:
        embeds (`[N, projection_dim]`): the L2-normalised features; what similarities are computed from.
        projected_features (`[N, projection_dim]`): the read-out hidden states after `ln_post` and the projection,
            before normalisation (the prompt-tuning linear head reads these).
        feature_hidden_state (`[N, hidden_size]`): the raw hidden states at the read-out positions.
        last_hidden_state (`[B, S, hidden_size]`): output of the last layer for the whole fused sequence
            (`S = 1 + visual tokens + text tokens`; the prefix `<SPE>` is position 0).
        hidden_states (tuple of `[B, S, hidden_size]`): the embedding output (the encoder input) and every layer's
            output, when `output_hidden_states=True` (or the ones it selects, when it is a list of indices).
        attentions (tuple of `[B, heads, S, P + S]`): every layer's attention weights (`P` deep prompts first), when
            `output_attentions=True` with eager attention (SDPA does not compute them).
    """

    embeds: torch.FloatTensor | None = None
    projected_features: torch.FloatTensor | None = None
    feature_hidden_state: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class UniPerceiverOutput(ModelOutput):
    """
    Similarity of inputs against candidate targets.

    Args:
        loss (`[]`): cross-entropy of `logits` against `labels` (target indices), when `labels` are given.
        logits (`[N_inputs, N_targets]`): scaled cosine similarities (plus the prompt-tuning linear head, if any).
        input_embeds (`[N_inputs, projection_dim]`): normalised input features.
        target_embeds (`[N_targets, projection_dim]`): normalised target features.
        last_hidden_state (`[B, S, hidden_size]`): last layer output of the input side.
        target_last_hidden_state (`[B_t, S_t, hidden_size]`): last layer output of the target side (`None` when
            `target_embeds` were passed in).
        hidden_states, target_hidden_states: per-layer outputs, when `output_hidden_states=True`.
        attentions, target_attentions: per-layer attention weights, when `output_attentions=True` (eager attention).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    input_embeds: torch.FloatTensor | None = None
    target_embeds: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    target_last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    target_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    target_attentions: tuple[torch.FloatTensor, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Embeddings (the modality-specific tokenizers of paper appendix A)


def sincos_2d_position_table(
    grid_size: int | tuple[int, int], dim: int, scale: float | tuple[float, float]
) -> torch.Tensor:
    """The fixed 2-D sin-cos spatial table: row k encodes patch (k // columns, k % columns), times `scale`.

    Each row is `[sin(a w), cos(a w), sin(b w), cos(b w)]` with `a` the patch row, `b` the column and
    `w_i = 1 / 10000^(i / (dim/4))`, as the official MAE-style initialisation builds it. `grid_size` and `scale` may
    be (rows, columns) pairs (a non-square input at another resolution, see `resized_position_scale`).
    """
    rows_count, columns_count = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    row_scale, column_scale = (scale, scale) if isinstance(scale, (int, float)) else scale
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    row_coords = torch.arange(rows_count, dtype=torch.float64) * row_scale
    column_coords = torch.arange(columns_count, dtype=torch.float64) * column_scale
    rows, cols = torch.meshgrid(row_coords, column_coords, indexing="ij")
    rows = rows.flatten()[:, None] * omega[None]
    cols = cols.flatten()[:, None] * omega[None]
    return torch.cat([rows.sin(), rows.cos(), cols.sin(), cols.cos()], dim=1).float()


def resized_position_scale(scale: float, native_grid: int, new_grid: int) -> float:
    """The spatial scale of a `new_grid` table for a model trained on `native_grid` with `scale`.

    The official code runs at another resolution by building a new fixed table whose coordinates keep the span of
    the training grid: its 384-px fine-tuning (`in1k_training_384inputsize.yaml`) sets `POSEMBED_SCALE = 160/384`
    (the 224-px models use 160/224, the 160-px pre-training grid 1) and drops the stored 196-row table
    (`CHECKPOINT_FILETER: False`), so the 576-row table is the sin-cos table of the 24x24 grid times 160/384, i.e.
    `scale * native_grid / new_grid`. (Only with `CHECKPOINT_FILETER: True`, which no released fine-tuning uses,
    would it interpolate the stored table bilinearly instead.)
    """
    return scale * native_grid / new_grid


class UniPerceiverTextEmbeddings(nn.Module):
    """BPE word + text position + text type (row 0) embeddings, summed; the shared LayerNorm comes after."""

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.spe_token_id = config.spe_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        # Prompt tuning learns one vector added wherever `<SPE>` appears (paper appendix C, "<SPE>" group).
        self.spe_bias = nn.Parameter(torch.zeros(1, config.hidden_size)) if config.use_spe_bias else None

    def forward(
        self,
        input_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Word embeddings plus the `<SPE>` bias, or `inputs_embeds` in their place (no bias: the ids are unknown).
        With `position_ids` the position and type embeddings are added (text tokens); without, nothing is (the
        prefix `<SPE>`)."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
            if self.spe_bias is not None:
                is_spe = (input_ids == self.spe_token_id).unsqueeze(-1).to(inputs_embeds.dtype)
                inputs_embeds = inputs_embeds + is_spe * self.spe_bias
        if position_ids is None:
            return inputs_embeds
        # Only row 0 of the type table is ever used, for inputs and targets alike.
        token_types = self.token_type_embeddings(torch.zeros_like(position_ids))
        return inputs_embeds + self.position_embeddings(position_ids) + token_types


class UniPerceiverChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a `[B, C, H, W]` map, at every position."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden_states.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class UniPerceiverConvolutionalStem(nn.Module):
    """`config.convolutional_stem` (an option, not the paper's): stride-2 3x3 convolutions, each with a channel
    LayerNorm and GELU, halve the frame log2(patch_size) times while the channels double up to half the hidden size;
    a 1x1 projection then gives one token per patch, as the linear patch projection does. Convolutions build local
    features before attention, which lets a small Transformer trained from scratch learn from fewer images (Xiao et
    al., 2021, "Early convolutions help transformers see better"); half-width channels keep its cost small."""

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        stages = config.patch_size.bit_length() - 1
        widths = [config.num_channels] + [max(config.hidden_size >> (stages - stage), 8) for stage in range(stages)]
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[stage], widths[stage + 1], kernel_size=3, stride=2, padding=1, bias=False),
                UniPerceiverChannelLayerNorm(widths[stage + 1], eps=config.layer_norm_eps),
                nn.GELU(),
            )
            for stage in range(stages)
        )
        self.projection = nn.Conv2d(widths[-1], config.hidden_size, kernel_size=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            pixel_values = stage(pixel_values)
        return self.projection(pixel_values)


class UniPerceiverVisualEmbeddings(nn.Module):
    """16x16 patches of every frame, plus temporal + fixed spatial positions; frame-major, raster order.

    The visual type embedding of the paper is folded into the patch bias by the official checkpoint conversion,
    so it is not a separate parameter here. With `config.temporal_difference_embedding` (an option, not the
    paper's) a frame's patches also get the patch projection of its difference from the previous frame; with
    `config.convolutional_stem` (not the paper's either) the patches are tokenized by `UniPerceiverConvolutionalStem`.
    """

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.config = config
        self.patch_embedding = (
            UniPerceiverConvolutionalStem(config)
            if config.convolutional_stem
            else nn.Conv2d(
                config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
            )
        )
        # Fixed (never trained) but stored, as in the official state dict.
        self.spatial_position_embeddings = nn.Parameter(
            torch.zeros(config.num_patches, config.hidden_size), requires_grad=False
        )
        self.temporal_position_embeddings = nn.Embedding(config.num_frames, config.hidden_size)
        # No bias: the first frame's difference is zero, so it (and an image) gets nothing from this projection.
        self.difference_embedding = (
            nn.Conv2d(
                config.num_channels,
                config.hidden_size,
                kernel_size=config.patch_size,
                stride=config.patch_size,
                bias=False,
            )
            if config.temporal_difference_embedding
            else None
        )

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """`pixel_values` `[B, T, 3, H, W]`. At the config's resolution the stored spatial table is used; at another
        one (`interpolate_pos_encoding=True`) the table of that grid is built as the official code does at 384 px
        (see `resized_position_scale`)."""
        batch_size, num_frames = pixel_values.shape[:2]
        frames = pixel_values.to(self.spatial_position_embeddings.dtype)
        patches = self.patch_embedding(frames.flatten(0, 1))
        if self.difference_embedding is not None and num_frames > 1:
            # Slices rather than `Tensor.diff`, which the ONNX exporter does not know.
            differences = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, 1:] - frames[:, :-1]], dim=1)
            patches = patches + self.difference_embedding(differences.flatten(0, 1))
        grid = patches.shape[-2:]
        patches = patches.flatten(2).transpose(1, 2).unflatten(0, (batch_size, num_frames))  # [B, T, N, D]
        spatial = self.spatial_position_embeddings
        native_grid = self.config.image_size // self.config.patch_size
        if interpolate_pos_encoding and tuple(grid) != (native_grid, native_grid):
            scale = self.config.spatial_position_scale
            scales = tuple(resized_position_scale(scale, native_grid, size) for size in grid)
            spatial = sincos_2d_position_table(tuple(grid), self.config.hidden_size, scales).to(spatial)
        offset = 0
        if self.training and self.config.random_temporal_offset and num_frames < self.config.num_frames:
            # Training-time augmentation of the original: shift the clip inside the temporal table.
            offset = int(torch.randint(0, self.config.num_frames - num_frames + 1, ()).item())
        temporal = self.temporal_position_embeddings(torch.arange(offset, offset + num_frames, device=patches.device))
        positions = temporal[:, None, :] + spatial[None, :, :]
        return (patches + positions).flatten(1, 2)


class UniPerceiverEmbeddings(nn.Module):
    """Builds the fused encoder input `[<SPE>, visual tokens, text tokens]` with one LayerNorm shared by all.

    The prefix `<SPE>` is `LayerNorm(E[<SPE>])` with no position or type embedding: this is how the released
    checkpoints were trained (`OLD_CHECKPONT` in the official configs). With `share_embedding_layer_norm=False` the
    visual tokens get their own `visual_layer_norm` (the paper's unshared tokenizer LayerNorms, appendix C).
    """

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.spe_token_id = config.spe_token_id
        self.text = UniPerceiverTextEmbeddings(config)
        self.visual = UniPerceiverVisualEmbeddings(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.visual_layer_norm = (
            None if config.share_embedding_layer_norm else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )
        self.dropout = nn.Dropout(config.hidden_dropout)

    def prefix(self, batch_size: int, device: torch.device) -> torch.Tensor:
        spe = torch.full((1, 1), self.spe_token_id, dtype=torch.long, device=device)
        return self.text(spe).expand(batch_size, 1, -1)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        add_prefix: bool = True,
        inputs_embeds: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> torch.Tensor:
        """`add_prefix=False` embeds tokens that continue a cached sequence (caption decoding). `inputs_embeds`
        (`[B, L, hidden_size]`) replace the word embeddings of `input_ids`. `interpolate_pos_encoding`: pixels at
        another resolution than the config's (see `UniPerceiverVisualEmbeddings`)."""
        has_text = input_ids is not None or inputs_embeds is not None
        reference = next(x for x in (input_ids, inputs_embeds, pixel_values) if x is not None)
        pieces = [
            self.prefix(reference.shape[0], reference.device) if add_prefix else None,
            self.visual(pixel_values, interpolate_pos_encoding) if pixel_values is not None else None,
            self.text(input_ids, position_ids, inputs_embeds) if has_text else None,
        ]
        dtype = self.layer_norm.weight.dtype
        if self.visual_layer_norm is None:
            present = [piece.to(dtype) for piece in pieces if piece is not None]
            return self.dropout(self.layer_norm(torch.cat(present, dim=1)))
        # Unshared: the prefix and the text keep `layer_norm`, the visual tokens get their own.
        norms = (self.layer_norm, self.visual_layer_norm, self.layer_norm)
        normed = [norm(piece.to(dtype)) for piece, norm in zip(pieces, norms) if piece is not None]
        return self.dropout(torch.cat(normed, dim=1))


# ----------------------------------------------------------------------------------------------------------------------
# Encoder


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Readable reference attention: softmax(q k^T * scaling + additive mask) v, over `[B, H, S, head_dim]`."""
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


class UniPerceiverQKVProjection(nn.Linear):
    """The fused q|k|v projection `[3D, D]`; its own class so that q, k and v are initialised as three `[D, D]`
    matrices, as the official initialisation does."""


class UniPerceiverAttention(nn.Module):
    """Multi-head self-attention with a fused q|k|v projection (the layout of the official `in_proj_weight`).

    `prefix_states` (already normalised) are prepended to the keys and values only: the deep prompts of prompt
    tuning never act as queries and produce no outputs (paper appendix C). `past_key_value` is a layer's cache of
    the keys and values of earlier tokens of the same sequence (caption decoding; see
    `captioning_uniperceiver.KeyValueCache`): `past_key_value.update(key, value)` stores the new tokens' keys and
    values after the earlier ones and returns all of them. The new ones are also returned, so that a caller can build
    a cache from them. Key order: prompts, past, new. Returns the output, the attention
    weights (eager attention only; recorded by `output_attentions`) and the new keys/values.

    With `moe=True` (Uni-Perceiver-MoE) both projections hold experts chosen by the task attribute (`routing`); the
    output projection reuses the q|k|v projection's decision when the config shares decisions. Cached keys and
    values were computed with the routing of their own positions, which is what the official decoder does.
    """

    def __init__(self, config: UniPerceiverConfig, moe: bool = False):
        super().__init__()
        self.config = config
        self.hidden_size = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.is_moe = moe
        if moe:
            hidden = config.hidden_size
            self.in_proj = UniPerceiverMoELinear(config, hidden, 3 * hidden, decides=True, fused_parts=3)
            self.out_proj = UniPerceiverMoELinear(config, hidden, hidden, decides=not config.moe_share_gate_decisions)
        else:
            self.in_proj = UniPerceiverQKVProjection(config.hidden_size, 3 * config.hidden_size)
            self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        prefix_states: torch.Tensor | None = None,
        past_key_value=None,
        routing: MoERouting | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
        batch_size, length, _ = hidden_states.shape
        decisions = None
        if self.is_moe:
            projected, decisions = self.in_proj(hidden_states, routing)
        else:
            projected = self.in_proj(hidden_states)
        query, key, value = projected.split(self.hidden_size, dim=-1)
        present = (key, value)
        if past_key_value is not None:
            key, value = past_key_value.update(key, value)
        if prefix_states is not None:
            # The prompts' query rows are computed too (a few rows), so that `in_proj` runs only through its forward.
            # With experts, the prompts (which precede the whole sequence) take the first part's routing.
            if self.is_moe:
                prefix_projected = self.in_proj(prefix_states, routing.first_part())[0]
            else:
                prefix_projected = self.in_proj(prefix_states)
            _, prefix_key, prefix_value = prefix_projected.split(self.hidden_size, dim=-1)
            key = torch.cat([prefix_key.expand(batch_size, -1, -1), key], dim=1)
            value = torch.cat([prefix_value.expand(batch_size, -1, -1), value], dim=1)

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch_size, x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, weights = attention_interface(
            self,
            heads(query),
            heads(key),
            heads(value),
            attention_mask,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
        )
        output = output.reshape(batch_size, length, self.hidden_size)
        if self.is_moe:
            shared = decisions if self.config.moe_share_gate_decisions else None
            return self.out_proj(output, routing, shared)[0], weights, present
        return self.out_proj(output), weights, present


class UniPerceiverMLP(nn.Module):
    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation(self.fc1(hidden_states))))


class UniPerceiverMoEMLP(nn.Module):
    """The feed-forward block with experts in both linears (Uni-Perceiver-MoE); the second reuses the first's
    decision when the config shares decisions."""

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.share_decisions = config.moe_share_gate_decisions
        self.fc1 = UniPerceiverMoELinear(config, config.hidden_size, config.intermediate_size, decides=True)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.fc2 = UniPerceiverMoELinear(
            config, config.intermediate_size, config.hidden_size, decides=not config.moe_share_gate_decisions
        )

    def forward(self, hidden_states: torch.Tensor, routing: MoERouting) -> torch.Tensor:
        hidden_states, decisions = self.fc1(hidden_states, routing)
        hidden_states = self.dropout(self.activation(hidden_states))
        return self.fc2(hidden_states, routing, decisions if self.share_decisions else None)[0]


class UniPerceiverLayerScale(nn.Module):
    """Per-channel residual scale (`gamma_1`/`gamma_2` of the original, initialised to 1e-3)."""

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((config.hidden_size,), float(config.layer_scale_init_value)))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states * self.gamma


class UniPerceiverDropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per example in training, rescaling the survivors."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1.0 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        mask = hidden_states.new_empty(shape).bernoulli_(keep_prob)
        return hidden_states * mask / keep_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class UniPerceiverEncoderLayer(GradientCheckpointingLayer):
    """Pre-LN block: `x + gamma_1 * Attn(LN1(x))`, then `x + gamma_2 * MLP(LN2(x))`, with drop path on each branch.

    In a Uni-Perceiver-MoE layer (`layer_index` in `config.moe_layers`) the chosen sub-layers hold experts, routed
    by `routing`; the other sub-layers, and every layer of a dense model, ignore it.
    """

    def __init__(self, config: UniPerceiverConfig, layer_index: int = 0):
        super().__init__()
        experts = config.moe_layer_sublayers(layer_index)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = UniPerceiverAttention(config, moe="attention" in experts)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.moe_mlp = "mlp" in experts
        self.mlp = UniPerceiverMoEMLP(config) if self.moe_mlp else UniPerceiverMLP(config)
        use_scale = config.layer_scale_init_value is not None
        self.layer_scale1 = UniPerceiverLayerScale(config) if use_scale else nn.Identity()
        self.layer_scale2 = UniPerceiverLayerScale(config) if use_scale else nn.Identity()
        self.drop_path = UniPerceiverDropPath(config.drop_path_rate)
        self.attention_dropout = nn.Dropout(config.hidden_dropout)
        # Deep prompts (prompt tuning, paper appendix C): per-layer learned keys/values, independent of the
        # previous layer's output; optionally a separate set for the target side.
        prompts, separate = config.num_prompt_tokens, not config.share_prompt_tokens
        self.prompt_embeddings = nn.Parameter(torch.zeros(prompts, config.hidden_size)) if prompts else None
        self.target_prompt_embeddings = (
            nn.Parameter(torch.zeros(prompts, config.hidden_size)) if prompts and separate else None
        )

    def prompts(self, is_target: bool) -> torch.Tensor | None:
        if is_target and self.target_prompt_embeddings is not None:
            return self.target_prompt_embeddings
        return self.prompt_embeddings

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        is_target: bool = False,
        past_key_value=None,
        routing: MoERouting | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns the new hidden states and this layer's keys/values of the new tokens."""
        prompts = self.prompts(is_target)
        # Prompts go through this layer's first LayerNorm, like the tokens they are attended with.
        prefix = self.layer_norm1(prompts.to(hidden_states.dtype)).unsqueeze(0) if prompts is not None else None
        attended, _, present = self.self_attn(
            self.layer_norm1(hidden_states), attention_mask, prefix, past_key_value, routing
        )
        hidden_states = hidden_states + self.drop_path(self.layer_scale1(self.attention_dropout(attended)))
        normed = self.layer_norm2(hidden_states)
        fed = self.mlp(normed, routing) if self.moe_mlp else self.mlp(normed)
        hidden_states = hidden_states + self.drop_path(self.layer_scale2(fed))
        return hidden_states, present


class UniPerceiverEncoder(nn.Module):
    """The stack of encoder layers. There is no final LayerNorm: `ln_post` in the head acts on read-outs only.

    Per-layer hidden states and attention weights are recorded by the model's `_can_record_outputs` hooks.
    """

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            [UniPerceiverEncoderLayer(config, index) for index in range(config.num_hidden_layers)]
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        is_target: bool = False,
        past_key_values: list | None = None,
        routing: MoERouting | None = None,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Returns the last hidden states and each layer's keys/values of the new tokens. `routing` gives the task
        attribute of every position (Uni-Perceiver-MoE; ignored by dense layers)."""
        presents = []
        for index, layer in enumerate(self.layers):
            past = past_key_values[index] if past_key_values is not None else None
            hidden_states, present = layer(
                hidden_states, attention_mask, is_target=is_target, past_key_value=past, routing=routing
            )
            presents.append(present)
        return hidden_states, presents


# ----------------------------------------------------------------------------------------------------------------------
# Similarity head


class UniPerceiverLogitScales(nn.ParameterDict):
    """The per-task log-scales by task name; called with a name, returns `min(exp(logit_scale_<task>),
    logit_scale_max)`: a use-time cap, the parameter itself is never clamped."""

    def __init__(self, config: UniPerceiverConfig):
        super().__init__(
            {name: nn.Parameter(torch.tensor(config.logit_scale_init_value)) for name in config.logit_scale_tasks}
        )
        self.logit_scale_max = config.logit_scale_max

    # A `ParameterDict` refuses calls; this one is a module with a forward, so that hooks (offloading) see its use.
    __call__ = nn.Module.__call__

    def forward(self, task: str) -> torch.Tensor:
        if not isinstance(task, str) or task not in self:
            raise ValueError(f"`task` must be one of {list(self)}, got {task!r}.")
        return self[task].exp().clamp(max=self.logit_scale_max)


class UniPerceiverSimilarityHead(nn.Module):
    """Read-out head: `ln_post`, projection, L2 normalisation and the per-task logit scales (paper eq. 2).

    With prompt tuning it also holds the linear head of paper eq. 4; as in the official code it is added in logit
    space: `similarity_weight * scaled_cosine + fc_prompt(projected input feature)`.
    """

    def __init__(self, config: UniPerceiverConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.hidden_size, config.projection_dim)
        self.logit_scales = UniPerceiverLogitScales(config)
        classes = config.num_prompt_classes
        self.classifier = nn.Linear(config.projection_dim, classes) if classes else None
        self.similarity_weight = nn.Parameter(torch.tensor(1.0)) if classes else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        target_embeds: torch.Tensor | None = None,
        task: str | None = None,
        use_classifier_head: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Read-out hidden states `[N, hidden_size]` -> (normalised features, projected features, logits).

        With `target_embeds` (`[N_targets, projection_dim]`, normalised) the logits are the cosine similarities
        times the scale of `task`, plus the prompt-tuning linear head when `use_classifier_head`; otherwise `None`.
        """
        projected = self.projection(self.layer_norm(hidden_states))
        embeds = F.normalize(projected, dim=-1)
        if target_embeds is None:
            return embeds, projected, None
        logits = embeds @ target_embeds.to(embeds).T * self.logit_scales(task)
        if use_classifier_head:
            logits = self.similarity_weight * logits + self.classifier(projected)
        return embeds, projected, logits


# ----------------------------------------------------------------------------------------------------------------------
# Models


def _requested_outputs(
    config: UniPerceiverConfig, output_hidden_states: bool | list[int] | None, output_attentions: bool | None
) -> dict:
    """The `output_*` arguments that were given; `capture_outputs` takes the config's value for the others.

    Attention maps exist only with eager attention: SDPA never materialises the weights, and asking for them there
    says so (once) rather than leaving an empty tuple unexplained, as transformers' own SDPA function does."""
    wants_attentions = output_attentions if output_attentions is not None else config.output_attentions
    if wants_attentions and config._attn_implementation != "eager":
        logger.warning_once(
            f"`output_attentions=True` needs eager attention: {config._attn_implementation!r} attention does not compute "
            'the attention weights, so `attentions` stays empty. Load the model with `attn_implementation="eager"` '
            '(or call `model.set_attn_implementation("eager")`) to get them; the outputs are the same.'
        )
    flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
    return {name: value for name, value in flags.items() if value is not None}


class UniPerceiverPreTrainedModel(PreTrainedModel):
    config: UniPerceiverConfig
    config_class = UniPerceiverConfig
    base_model_prefix = "uniperceiver"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    # Kept whole by `device_map`: the head combines its own parameters (scales, projection, prompt-tuning head).
    _no_split_modules = ["UniPerceiverEncoderLayer", "UniPerceiverEmbeddings", "UniPerceiverSimilarityHead"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True
    # `output_hidden_states` and `output_attentions` are recorded by hooks on these modules (transformers 5's
    # output capturing): the layer outputs (after the embedding output) and the attention weights.
    _can_record_outputs = {"hidden_states": UniPerceiverEncoderLayer, "attentions": UniPerceiverAttention}

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> "UniPerceiverPreTrainedModel":
        """`PreTrainedModel.from_pretrained`; a failure under an untested transformers release names that release.

        Another `image_size` than the checkpoint's (`from_pretrained(path, image_size=384)`, or a `config` with it)
        gets the spatial table of its grid the way the official 384-px fine-tuning builds it (`resized_position_scale`:
        the fixed sin-cos table of the new grid, its coordinates scaled to keep the span of the checkpoint's grid),
        and the loaded config records that scale. A `spatial_position_scale` passed with it is taken as given. Every
        other size mismatch is an error, as in transformers, unless `ignore_mismatched_sizes=True`.
        """
        wants_info = kwargs.pop("output_loading_info", False)
        ignore_mismatched = kwargs.pop("ignore_mismatched_sizes", False)
        explicit_scale = "spatial_position_scale" in kwargs
        with explain_untested_transformers(f"`{cls.__name__}`"):
            model, info = super().from_pretrained(
                *args, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
            )
        spatial_suffix = "embeddings.visual.spatial_position_embeddings"
        others = {(key, tuple(old), tuple(new)) for key, old, new in info["mismatched_keys"]}
        spatial = {entry for entry in others if entry[0].endswith(spatial_suffix)}
        others -= spatial
        if others and not ignore_mismatched:
            listed = "; ".join(f"{key}: checkpoint {old}, model {new}" for key, old, new in sorted(others))
            raise RuntimeError(
                f"Size mismatch when loading `{cls.__name__}`: {listed}. Pass `ignore_mismatched_sizes=True` to "
                "initialise those weights anew."
            )
        for _, old, _ in spatial:
            model._resize_spatial_positions(math.isqrt(old[0]), explicit_scale)
        if spatial:
            info["mismatched_keys"] = {
                entry for entry in info["mismatched_keys"] if entry[0] not in {k for k, *_ in spatial}
            }
        return (model, info) if wants_info else model

    def _resize_spatial_positions(self, checkpoint_grid: int, explicit_scale: bool) -> None:
        """Rebuilds the spatial table after a checkpoint of `checkpoint_grid` x `checkpoint_grid` patches was loaded
        into this config's grid (see `from_pretrained`)."""
        config = self.config
        grid = config.image_size // config.patch_size
        if not explicit_scale:
            config.spatial_position_scale = resized_position_scale(
                config.spatial_position_scale, checkpoint_grid, grid
            )
        table = sincos_2d_position_table(grid, config.hidden_size, config.spatial_position_scale)
        for module in self.modules():
            if isinstance(module, UniPerceiverVisualEmbeddings):
                with torch.no_grad():
                    module.spatial_position_embeddings.copy_(table)

    def _init_weights(self, module: nn.Module):
        """The official MAE-style initialisation: xavier linears, N(0, 0.02) embeddings, LN 1/0, zero biases."""
        std = self.config.initializer_range
        if isinstance(module, UniPerceiverQKVProjection):
            # xavier-uniform on each of q, k, v separately, not on the fused [3D, D] matrix.
            bound = math.sqrt(6.0 / (2 * module.in_features))
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)
        elif isinstance(module, UniPerceiverMoELinear):
            # Every expert as its dense counterpart: xavier-uniform per part (q, k, v separately), zero bias.
            bound = math.sqrt(6.0 / (module.in_features + module.out_features // module.fused_parts))
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            # xavier-uniform as if each convolution (the patch projection, a stem's) were a linear layer over its
            # flattened window.
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            bound = math.sqrt(6.0 / (fan_in + module.out_channels))
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, UniPerceiverLayerScale):
            init.constant_(module.gamma, self.config.layer_scale_init_value)
        elif isinstance(module, UniPerceiverVisualEmbeddings):
            table = sincos_2d_position_table(
                self.config.image_size // self.config.patch_size,
                self.config.hidden_size,
                self.config.spatial_position_scale,
            )
            init.copy_(module.spatial_position_embeddings, table)
            temporal_std = self.config.temporal_initializer_range
            if temporal_std is not None:  # after the generic nn.Embedding init above (children are visited first)
                init.normal_(module.temporal_position_embeddings.weight, mean=0.0, std=temporal_std)
            if module.difference_embedding is not None:  # zero: the model starts as the one without it
                init.zeros_(module.difference_embedding.weight)
        elif isinstance(module, UniPerceiverTextEmbeddings) and module.spe_bias is not None:
            init.zeros_(module.spe_bias)
        elif isinstance(module, UniPerceiverEncoderLayer):
            for prompts in (module.prompt_embeddings, module.target_prompt_embeddings):
                if prompts is not None:
                    init.normal_(prompts, mean=0.0, std=std)
        elif isinstance(module, nn.ParameterDict):  # the per-task log-scales of the similarity head
            for scale in module.values():
                init.constant_(scale, self.config.logit_scale_init_value)
        elif isinstance(module, UniPerceiverSimilarityHead) and module.classifier is not None:
            # The prompt-tuning linear head starts at zero and the similarity weight at one (appendix C).
            init.zeros_(module.classifier.weight)
            init.zeros_(module.classifier.bias)
            init.ones_(module.similarity_weight)


class UniPerceiverModel(UniPerceiverPreTrainedModel):
    r"""
    The Uni-Perceiver encoder with its similarity head.

    `forward` encodes an input side and a target side with the same weights and returns their similarity logits
    `[N_inputs, N_targets]`; `get_features` encodes one side only (for caching target sets and retrieval).

    A side is any of: text (`input_ids`), an image (`pixel_values` `[B, 3, H, W]`), a video (`[B, T, 3, H, W]`),
    or visual + text together (VQA, captioning). The model prepends the prefix `<SPE>`; token ids must not.
    """

    def __init__(self, config: UniPerceiverConfig):
        super().__init__(config)
        self.embeddings = UniPerceiverEmbeddings(config)
        self.encoder = UniPerceiverEncoder(config)
        self.head = UniPerceiverSimilarityHead(config)
        # At most this many groups of similar text length per padded side (1: one padded batch, as the original);
        # the same features for fewer padded tokens, see `length_groups_uniperceiver`. The trainer raises it.
        self.length_groups = 1
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.text.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings.text.word_embeddings = value

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """As `PreTrainedModel.save_pretrained` (so also `push_to_hub`), plus what `pipeline(model=folder,
        trust_remote_code=True)` needs without this package: the pipeline's code, declared in `custom_pipelines`,
        the CLIP-semantics class of `AutoModelForZeroShotImageClassification` and the captioner of
        `AutoModelForImageTextToText` (declared in `auto_map`), the files
        `SentenceTransformer(folder, trust_remote_code=True)` reads, and the processor for this model's config when
        the folder holds none (save your own before or after)."""
        from .zero_shot_uniperceiver import save_folder_files  # it builds on this module

        if kwargs.get("is_main_process", True):
            save_folder_files(self, save_directory)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """As `PreTrainedModel.resize_token_embeddings`, but a smaller table that would drop a special id is refused:
        the model prepends `<SPE>` to every sequence and the processor writes the other special ids."""
        if new_num_tokens is not None:
            size = new_num_tokens
            if isinstance(pad_to_multiple_of, int) and pad_to_multiple_of > 0:
                size = math.ceil(size / pad_to_multiple_of) * pad_to_multiple_of
            current = self.get_input_embeddings().num_embeddings
            dropped = {
                name: getattr(self.config, name)
                for name in SPECIAL_TOKEN_FIELDS
                if size <= getattr(self.config, name) < current
            }
            if dropped:
                raise ValueError(
                    f"`new_num_tokens` ({new_num_tokens}) would drop the special ids {dropped} from the "
                    f"{current}-entry vocabulary; keep at least {max(dropped.values()) + 1} tokens, or move those "
                    "ids inside the new size (config and tokenizer) first."
                )
        return super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)

    # -- one side -------------------------------------------------------------------------------------------------

    def _attention_mask(
        self, attention_mask: torch.Tensor | None, num_prefix: int, dtype: torch.dtype
    ) -> torch.Tensor | None:
        """The additive `[B, 1, S_q, P + S_k]` mask for the fused sequence (P deep prompts, never masked).

        `num_prefix` counts the tokens before the text: the prefix `<SPE>` and the visual tokens.
        A `[B, L]` mask only hides padded keys. A `[B, L, L]` mask gives text-to-text visibility (the caption
        layout of paper appendix B); then the prefix and visual tokens see only each other, text sees them all.
        """
        if attention_mask is None:
            return None
        batch_size = attention_mask.shape[0]
        device = attention_mask.device
        if attention_mask.ndim == 2:
            keep = torch.cat([attention_mask.new_ones(batch_size, num_prefix), attention_mask], dim=1).bool()
            allowed = keep[:, None, None, :]
        else:
            length = attention_mask.shape[-1]
            total = num_prefix + length
            allowed = torch.zeros(batch_size, total, total, dtype=torch.bool, device=device)
            allowed[:, :, :num_prefix] = True
            allowed[:, num_prefix:, num_prefix:] = attention_mask.bool()
            allowed = allowed[:, None]
        return self.additive_attention_mask(allowed, dtype)

    def additive_attention_mask(self, allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A boolean `[B, 1, S_q, S_k]` visibility (True = may attend) as the additive mask the attention takes,
        with the always-visible deep-prompt columns prepended."""
        if self.config.num_prompt_tokens:
            prompt_columns = allowed.new_ones(*allowed.shape[:-1], self.config.num_prompt_tokens)
            allowed = torch.cat([prompt_columns, allowed], dim=-1)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return mask.masked_fill(~allowed, torch.finfo(dtype).min)

    def routing(
        self,
        attribute,
        is_target: bool,
        task: str | None,
        pixel_values: torch.Tensor | None,
        has_text: bool,
        num_prefix: int,
        argument: str = "attribute",
    ) -> MoERouting | None:
        """The task-attribute routing of one side (Uni-Perceiver-MoE), `None` for a dense model (which ignores
        `attribute`). See `moe_uniperceiver.resolve_attribute`; a two-row attribute splits the fused sequence after
        its `num_prefix` prefix and visual tokens."""
        if not self.config.is_moe:
            return None
        visual = None if pixel_values is None else ("video" if pixel_values.ndim == 5 else "image")
        rows = resolve_attribute(
            self.config,
            attribute,
            is_target=is_target,
            task=task,
            visual=visual,
            has_text=has_text,
            argument=argument,
        )
        return MoERouting(rows, num_prefix)

    @capture_outputs
    def _encode_side(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        feature_index: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        is_target: bool,
        output_hidden_states: bool | list[int] | None = None,
        output_attentions: bool | None = None,
        attribute=None,
        task: str | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> UniPerceiverEncoderOutput:
        """Embeddings, encoder and read-out of one side, without the head. `capture_outputs` reads the `output_*`
        flags (falling back to the config) and records the hidden states and attention weights they ask for. With
        `length_groups > 1` and nothing recorded, a padded text is encoded in groups of similar length
        (`length_groups_uniperceiver`)."""
        prefix = "target_" if is_target else ""
        check_side(
            self.config,
            prefix,
            input_ids,
            attention_mask,
            position_ids,
            pixel_values,
            feature_index,
            inputs_embeds,
            interpolate_pos_encoding,
        )
        if pixel_values is not None and pixel_values.ndim == 4:
            pixel_values = pixel_values.unsqueeze(1)
        text = input_ids if input_ids is not None else inputs_embeds
        if text is not None and position_ids is None:
            position_ids = torch.arange(text.shape[1], device=text.device).expand(text.shape[:2])

        encode = partial(
            self._encode_rows,
            is_target=is_target,
            attribute=attribute,
            task=task,
            interpolate_pos_encoding=interpolate_pos_encoding,
        )
        text_arguments = dict(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, inputs_embeds=inputs_embeds
        )
        recording = any(
            flag if flag is not None else getattr(self.config, name)
            for name, flag in (
                ("output_hidden_states", output_hidden_states),
                ("output_attentions", output_attentions),
            )
        )
        groups = None
        if self.length_groups > 1 and attention_mask is not None and not recording:
            lengths = text_lengths(attention_mask, feature_index)
            groups = plan_length_groups(lengths, self.length_groups)
        if groups is None:
            feature_hidden_state, last_hidden_state = encode(
                **text_arguments, pixel_values=pixel_values, feature_index=feature_index
            )
        else:
            feature_hidden_state, last_hidden_state = encode_in_groups(
                encode, groups, lengths, text_arguments, {"pixel_values": pixel_values}, feature_index
            )
        return UniPerceiverEncoderOutput(
            feature_hidden_state=feature_hidden_state, last_hidden_state=last_hidden_state
        )

    def _encode_rows(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        feature_index: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        is_target: bool,
        attribute,
        task: str | None,
        interpolate_pos_encoding: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings, encoder and read-out of checked rows: `(feature_hidden_state, last_hidden_state)`."""
        text = input_ids if input_ids is not None else inputs_embeds
        embeds = self.embeddings(
            input_ids,
            position_ids,
            pixel_values,
            inputs_embeds=inputs_embeds,
            interpolate_pos_encoding=interpolate_pos_encoding,
        )
        num_prefix = embeds.shape[1] - (text.shape[1] if text is not None else 0)
        mask = self._attention_mask(attention_mask, num_prefix, embeds.dtype)
        argument = "target_attribute" if is_target else "attribute"
        routing = self.routing(attribute, is_target, task, pixel_values, text is not None, num_prefix, argument)
        last_hidden_state, _ = self.encoder(embeds, mask, is_target=is_target, routing=routing)

        if feature_index is None:
            feature_hidden_state = last_hidden_state[:, 0]
        elif feature_index.dtype == torch.bool:
            feature_hidden_state = last_hidden_state[:, num_prefix:][feature_index]
        else:
            rows = torch.arange(last_hidden_state.shape[0], device=last_hidden_state.device)
            feature_hidden_state = last_hidden_state[rows, num_prefix + feature_index]
        return feature_hidden_state, last_hidden_state

    def encode(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        feature_index: torch.Tensor | None = None,
        is_target: bool = False,
        output_hidden_states: bool | list[int] | None = None,
        output_attentions: bool | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attribute=None,
        task: str | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> UniPerceiverEncoderOutput:
        """Encodes one side and reads out its features.

        Args:
            input_ids (`[B, L]`): text ids without the prefix `<SPE>` (the model adds it).
            attention_mask (`[B, L]` or `[B, L, L]`): 1 for tokens, 0 for padding; or text-to-text visibility.
            position_ids (`[B, L]`): text positions (default `0..L-1`; the caption layout repeats them).
            pixel_values (`[B, 3, H, W]` or `[B, T, 3, H, W]`): an image or a video.
            feature_index: where to read the feature. `None`: the prefix `<SPE>`. `[B]` integers: one position
                inside the text per example (VQA, GLUE). `[B, L]` booleans: every selected text position, flattened
                in row-major order (masked LM, caption training).
            is_target: use the target-side deep prompts (prompt tuning with unshared prompts).
            output_hidden_states, output_attentions: record them (default: the config's); `output_hidden_states`
                may also be a list of indices into the hidden states, which keeps only those.
            inputs_embeds (`[B, L, hidden_size]`): word embeddings in place of `input_ids` (positions and types are
                still added; the prompt-tuning `<SPE>` bias is not, as the ids are unknown).
            attribute: Uni-Perceiver-MoE only (a dense model ignores it): the side's task attribute, a name of the
                config's tables (`"image_classification"`, `"ImageNet1k"`, `"Vocab_Word"`, `"image_caption"`, ...),
                or one or two rows. Default: chosen from `task` and the side's modalities
                (`moe_uniperceiver.default_attribute`).
            task: the official logit-scale name of the task (`img_cls`, `retrieve`, `caption`, ...); here it only
                picks the default `attribute`.
            interpolate_pos_encoding: accept pixels at another resolution than the config's `image_size` (a multiple
                of `patch_size`; as transformers' ViT and CLIP): the spatial table of that grid is built the way the
                official code fine-tunes at 384 px (`resized_position_scale`). At the native size nothing changes.
        """
        side = self._encode_side(
            input_ids,
            attention_mask,
            position_ids,
            pixel_values,
            feature_index,
            inputs_embeds,
            is_target,
            return_dict=True,
            attribute=attribute,
            task=task,
            interpolate_pos_encoding=interpolate_pos_encoding,
            **_requested_outputs(self.config, output_hidden_states, output_attentions),
        )
        embeds, projected, _ = self.head(side.feature_hidden_state)
        return replace(side, embeds=embeds, projected_features=projected)

    def get_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        feature_index: torch.Tensor | None = None,
        is_target: bool = False,
        attribute=None,
        task: str | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> torch.Tensor:
        """The L2-normalised features `[N, projection_dim]` of one side (see `encode` for the arguments)."""
        return self.encode(
            input_ids,
            attention_mask,
            position_ids,
            pixel_values,
            feature_index,
            is_target,
            attribute=attribute,
            task=task,
            interpolate_pos_encoding=interpolate_pos_encoding,
        ).embeds

    # CLIP's names, as thin aliases of `encode` returning what transformers' CLIP returns: a `BaseModelOutputWithPooling`
    # whose `pooler_output` is the features `[B, projection_dim]` (here L2-normalised: those of `get_features`). As in
    # CLIP's zero-shot use, visual features default to the input side and text features to the candidate side (they
    # differ only for prompt-tuned models with separate target prompts); `is_target` chooses.

    def _pooled(self, encoded: UniPerceiverEncoderOutput, return_dict: bool | None) -> BaseModelOutputWithPooling:
        output = BaseModelOutputWithPooling(
            last_hidden_state=encoded.last_hidden_state,
            pooler_output=encoded.embeds,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        is_target: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        attribute=None,
        interpolate_pos_encoding: bool = False,
    ) -> BaseModelOutputWithPooling | tuple:
        """Images `[B, 3, H, W]`: `pooler_output` holds their features `[B, projection_dim]`."""
        encoded = self.encode(
            pixel_values=pixel_values,
            is_target=is_target,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            attribute=attribute,
            interpolate_pos_encoding=interpolate_pos_encoding,
        )
        return self._pooled(encoded, return_dict)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        is_target: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        attribute=None,
        interpolate_pos_encoding: bool = False,
    ) -> BaseModelOutputWithPooling | tuple:
        """Videos `[B, T, 3, H, W]` (transformers' name for video pixels): `pooler_output` holds their features."""
        encoded = self.encode(
            pixel_values=pixel_values_videos,
            is_target=is_target,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            attribute=attribute,
            interpolate_pos_encoding=interpolate_pos_encoding,
        )
        return self._pooled(encoded, return_dict)

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        is_target: bool = True,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        attribute=None,
    ) -> BaseModelOutputWithPooling | tuple:
        """Texts `[B, L]` (ids without the prefix `<SPE>`): `pooler_output` holds their features."""
        encoded = self.encode(
            input_ids,
            attention_mask,
            is_target=is_target,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            attribute=attribute,
        )
        return self._pooled(encoded, return_dict)

    # -- both sides -----------------------------------------------------------------------------------------------

    def default_task(self, pixel_values: torch.Tensor | None, input_ids: torch.Tensor | None) -> str:
        """The original's logit scale for an input of these modalities: image -> `img_cls`, video -> `video_cls`,
        text only -> `text_mlm`, visual + text (VQA) -> `downstream`."""
        if pixel_values is None:
            return "text_mlm"
        if input_ids is not None:
            return "downstream"
        return "video_cls" if pixel_values.ndim == 5 else "img_cls"

    def _input_side_only(
        self, side: dict, labels: torch.Tensor | None, return_dict: bool
    ) -> UniPerceiverOutput | tuple:
        """`forward` without a target side: the input side's features (the feature-extraction pipelines' call)."""
        has_text = side["input_ids"] is not None or side["inputs_embeds"] is not None
        if has_text and side["pixel_values"] is not None and side["feature_index"] is None:
            # CLIP's `model(input_ids=texts, pixel_values=images)` must not silently become fused sequences.
            raise ValueError(
                "`input_ids` with `pixel_values` and no target side: this model reads them as ONE fused sequence per "
                "example (visual + text, as VQA) and needs candidates (`target_input_ids`, `target_pixel_values` or "
                "`target_embeds`). To score images against texts as CLIP does, load the model with "
                "`AutoModelForZeroShotImageClassification`; for the fused sequence's features call `get_features`."
            )
        if labels is not None:
            raise ValueError("`labels` index candidate targets; pass a target side with them.")
        encoded = self.encode(**side)
        output = UniPerceiverOutput(
            input_embeds=encoded.embeds,
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return output if return_dict else output.to_tuple()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        feature_index: torch.Tensor | None = None,
        target_input_ids: torch.Tensor | None = None,
        target_attention_mask: torch.Tensor | None = None,
        target_position_ids: torch.Tensor | None = None,
        target_pixel_values: torch.Tensor | None = None,
        target_embeds: torch.Tensor | None = None,
        task: str | None = None,
        labels: torch.Tensor | None = None,
        use_classifier_head: bool | None = None,
        output_hidden_states: bool | list[int] | None = None,
        return_dict: bool | None = None,
        adapter=None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        attribute=None,
        target_attribute=None,
        interpolate_pos_encoding: bool = False,
    ) -> UniPerceiverOutput | tuple:
        r"""
        Scores every input against every candidate target.

        Without a target side (no `target_*` tensors and no `target_embeds`) it encodes the input side only and
        returns its features as `input_embeds` (`logits` stays `None`): what transformers' `feature-extraction` and
        `image-feature-extraction` pipelines call. Texts and images together are one fused sequence here (VQA); for
        CLIP's reading (texts and images as two batches scored against each other) load
        `AutoModelForZeroShotImageClassification` (`UniPerceiverForZeroShotImageClassification`).

        Args:
            input_ids, attention_mask, position_ids, pixel_values, feature_index: the input side (see `encode`).
            target_input_ids, target_attention_mask, target_position_ids, target_pixel_values: the target side,
                read out at its prefix `<SPE>`.
            target_embeds (`[N_targets, projection_dim]`): pre-computed normalised target features (e.g. a cached
                vocabulary or label set), instead of the target side tensors.
            task: which logit scale to use, by the original's names (`img_cls`, `video_cls`, `text_mlm`, `caption`,
                `retrieve`, `downstream`, ...). Default: picked from the input modalities (see `default_task`).
            labels (`[N_inputs]`): index of the correct target per input row (-100 to ignore) for the loss.
            use_classifier_head: add the prompt-tuning linear head (default: whenever the model has one).
            adapter: a `UniPerceiverAdapter` (prompt-tuned tensors for this model's weights): the call runs on this
                model with the adapter applied (built once per base and adapter, sharing this model's frozen tensors).
            inputs_embeds (`[B, L, hidden_size]`): word embeddings of the input text in place of `input_ids` (see
                `encode`). The target side takes `target_embeds` (finished features) instead.
            output_hidden_states, output_attentions: record them for both sides (default: the config's).
            attribute, target_attribute: Uni-Perceiver-MoE only: the task attributes of the input and target sides
                (see `encode`); by default chosen from `task` and each side's modalities. A dense model ignores them.
            interpolate_pos_encoding: accept pixels (both sides) at another resolution than the config's (see
                `encode`).
        """
        if adapter is not None:
            return adapter.apply(self)(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                pixel_values=pixel_values,
                feature_index=feature_index,
                target_input_ids=target_input_ids,
                target_attention_mask=target_attention_mask,
                target_position_ids=target_position_ids,
                target_pixel_values=target_pixel_values,
                target_embeds=target_embeds,
                task=task,
                labels=labels,
                use_classifier_head=use_classifier_head,
                output_hidden_states=output_hidden_states,
                return_dict=return_dict,
                inputs_embeds=inputs_embeds,
                output_attentions=output_attentions,
                attribute=attribute,
                target_attribute=target_attribute,
                interpolate_pos_encoding=interpolate_pos_encoding,
            )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        text = input_ids if input_ids is not None else inputs_embeds
        task = task if task is not None else self.default_task(pixel_values, text)
        recording = _requested_outputs(self.config, output_hidden_states, output_attentions)
        target_sides = (target_input_ids, target_attention_mask, target_pixel_values, target_embeds)
        if all(t is None for t in target_sides):
            return self._input_side_only(
                dict(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    pixel_values=pixel_values,
                    feature_index=feature_index,
                    inputs_embeds=inputs_embeds,
                    attribute=attribute,
                    task=task,
                    interpolate_pos_encoding=interpolate_pos_encoding,
                    **recording,
                ),
                labels,
                return_dict,
            )

        inputs = self._encode_side(
            input_ids,
            attention_mask,
            position_ids,
            pixel_values,
            feature_index,
            inputs_embeds,
            is_target=False,
            return_dict=True,
            attribute=attribute,
            task=task,
            interpolate_pos_encoding=interpolate_pos_encoding,
            **recording,
        )
        targets = None
        if target_embeds is None:
            targets = self.encode(
                target_input_ids,
                target_attention_mask,
                target_position_ids,
                target_pixel_values,
                is_target=True,
                attribute=target_attribute,
                task=task,
                interpolate_pos_encoding=interpolate_pos_encoding,
                **recording,
            )
            target_embeds = targets.embeds
        elif any(t is not None for t in (target_input_ids, target_attention_mask, target_pixel_values)):
            raise ValueError("Pass either `target_embeds` or the target side tensors, not both.")
        else:
            target_embeds = check_target_embeds(self.config, target_embeds)

        use_classifier_head = self.head.classifier is not None if use_classifier_head is None else use_classifier_head
        if use_classifier_head:
            if self.head.classifier is None:
                raise ValueError("`use_classifier_head=True` but the model has no prompt-tuning linear head.")
            if target_embeds.shape[0] != self.config.num_prompt_classes:
                raise ValueError(
                    f"The prompt-tuning linear head scores {self.config.num_prompt_classes} classes but "
                    f"{target_embeds.shape[0]} targets were given; pass the class targets in order, or "
                    "`use_classifier_head=False`."
                )
        input_embeds, _, logits = self.head(inputs.feature_hidden_state, target_embeds, task, use_classifier_head)

        loss = None
        if labels is not None:
            check_labels(labels, *logits.shape)
            loss = F.cross_entropy(logits.float(), labels.to(logits.device), ignore_index=-100)

        output = UniPerceiverOutput(
            loss=loss,
            logits=logits,
            input_embeds=input_embeds,
            target_embeds=target_embeds,
            last_hidden_state=inputs.last_hidden_state,
            target_last_hidden_state=targets.last_hidden_state if targets is not None else None,
            hidden_states=inputs.hidden_states,
            target_hidden_states=targets.hidden_states if targets is not None else None,
            attentions=inputs.attentions,
            target_attentions=targets.attentions if targets is not None else None,
        )
        return output if return_dict else output.to_tuple()


UniPerceiverModel.register_for_auto_class("AutoModel")

__all__ = [
    "UniPerceiverEncoderOutput",
    "UniPerceiverModel",
    "UniPerceiverOutput",
    "UniPerceiverPreTrainedModel",
    "sincos_2d_position_table",
]
