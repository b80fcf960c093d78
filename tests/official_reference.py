"""An independent plain-torch statement of the official forward, over an official-layout state dict.

Written from the semantics in `shared/reference/golden/README.md` (not from our model), with PyTorch's own
multi-head attention as the original uses it, so that tests can check our model at sizes the goldens lack.
"""

import math

import torch
from torch.nn import functional as F


SPE = 49410


def random_official_state_dict(
    hidden: int,
    layers: int,
    ffn: int,
    vocab: int = 49411,
    positions: int = 32,
    grid: int = 2,
    frames: int = 4,
    patch: int = 16,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random weights in the official torch layout, every parameter large enough to matter."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.1, offset=0.0):
        return torch.randn(*shape, generator=generator) * scale + offset

    norm = {"weight": rand(hidden, offset=1.0), "bias": rand(hidden)}
    sd = {
        "token_embed.embeddings.weight": rand(vocab, hidden, scale=0.5),
        "token_embed.embeddings_pos.position_embeddings.weight": rand(positions, hidden, scale=0.5),
        "token_embed.embeddings_token_type.weight": rand(2, hidden, scale=0.5),
        "video_embed.embeddings.weight": rand(hidden, 3, patch, patch, scale=0.05),
        "video_embed.embeddings.bias": rand(hidden),
        "video_embed.embeddings_type.weight": rand(1, hidden),
        "video_embed.embeddings_st_pos.spatial_pos_embed.weight": rand(grid * grid, hidden, scale=0.5),
        "video_embed.embeddings_st_pos.temporal_pos_embed.weight": rand(frames, hidden, scale=0.5),
        "loss_prepare.ln_post.weight": rand(hidden, offset=1.0),
        "loss_prepare.ln_post.bias": rand(hidden),
        "loss_prepare.proj.weight": rand(hidden, hidden, scale=hidden**-0.5),
        "loss_prepare.proj.bias": rand(hidden),
    }
    for module in ("token_embed", "video_embed"):  # one shared LayerNorm, stored under both names
        sd[f"{module}.embeddings_norm.weight"] = norm["weight"]
        sd[f"{module}.embeddings_norm.bias"] = norm["bias"]
    for name in (
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
    ):
        sd[f"loss_prepare.logit_scale_{name}"] = torch.tensor(math.log(1 / 0.07)) + rand(())
    for i in range(layers):
        p = f"fused_encoder.layers.{i}."
        sd.update(
            {
                p + "self_attn.in_proj_weight": rand(3 * hidden, hidden, scale=hidden**-0.5),
                p + "self_attn.in_proj_bias": rand(3 * hidden),
                p + "self_attn.out_proj.weight": rand(hidden, hidden, scale=hidden**-0.5),
                p + "self_attn.out_proj.bias": rand(hidden),
                p + "linear1.weight": rand(ffn, hidden, scale=hidden**-0.5),
                p + "linear1.bias": rand(ffn),
                p + "linear2.weight": rand(hidden, ffn, scale=ffn**-0.5),
                p + "linear2.bias": rand(hidden),
                p + "norm1.weight": rand(hidden, offset=1.0),
                p + "norm1.bias": rand(hidden),
                p + "norm2.weight": rand(hidden, offset=1.0),
                p + "norm2.bias": rand(hidden),
                p + "gamma_1": rand(hidden, offset=0.5),
                p + "gamma_2": rand(hidden, offset=0.5),
            }
        )
    return sd


def reference_features(
    sd: dict[str, torch.Tensor],
    num_heads: int,
    input_ids: torch.Tensor | None = None,
    padding_mask: torch.Tensor | None = None,
    pixel_values: torch.Tensor | None = None,
    blocked: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised feature at the prefix <SPE>, last hidden states). `padding_mask`: 1 = pad (text only);
    `blocked`: an optional [S, S] bool attention mask over the fused sequence, True = blocked."""
    hidden = sd["token_embed.embeddings.weight"].shape[1]

    def norm(x, prefix):
        return F.layer_norm(x, (hidden,), sd[prefix + ".weight"], sd[prefix + ".bias"], eps)

    batch = (input_ids if input_ids is not None else pixel_values).shape[0]
    prefix = norm(sd["token_embed.embeddings.weight"][SPE].expand(batch, 1, hidden), "token_embed.embeddings_norm")
    pieces, pads = [prefix], [torch.zeros(batch, 1, dtype=torch.bool)]
    if pixel_values is not None:
        video = pixel_values if pixel_values.ndim == 5 else pixel_values[:, None]
        frames = video.shape[1]
        patches = F.conv2d(
            video.flatten(0, 1),
            sd["video_embed.embeddings.weight"],
            sd["video_embed.embeddings.bias"],
            stride=sd["video_embed.embeddings.weight"].shape[-1],
        )
        patches = patches.flatten(2).transpose(1, 2).reshape(batch, frames, -1, hidden)
        temporal = sd["video_embed.embeddings_st_pos.temporal_pos_embed.weight"][:frames, None]
        spatial = sd["video_embed.embeddings_st_pos.spatial_pos_embed.weight"][None]
        visual = norm((patches + temporal + spatial).reshape(batch, -1, hidden), "video_embed.embeddings_norm")
        pieces.append(visual)
        pads.append(torch.zeros(batch, visual.shape[1], dtype=torch.bool))
    if input_ids is not None:
        positions = position_ids if position_ids is not None else torch.arange(input_ids.shape[1]).expand_as(input_ids)
        text = (
            sd["token_embed.embeddings.weight"][input_ids]
            + sd["token_embed.embeddings_pos.position_embeddings.weight"][positions]
            + sd["token_embed.embeddings_token_type.weight"][0]
        )
        pieces.append(norm(text, "token_embed.embeddings_norm"))
        pads.append(padding_mask.bool() if padding_mask is not None else torch.zeros_like(input_ids, dtype=torch.bool))
    x, key_padding = torch.cat(pieces, 1), torch.cat(pads, 1)

    layers = {int(k.split(".")[2]) for k in sd if k.startswith("fused_encoder.layers.")}
    for i in sorted(layers):
        p = f"fused_encoder.layers.{i}."
        h = norm(x, p + "norm1").transpose(0, 1)
        attended, _ = F.multi_head_attention_forward(
            h,
            h,
            h,
            hidden,
            num_heads,
            sd[p + "self_attn.in_proj_weight"],
            sd[p + "self_attn.in_proj_bias"],
            None,
            None,
            False,
            0.0,
            sd[p + "self_attn.out_proj.weight"],
            sd[p + "self_attn.out_proj.bias"],
            training=False,
            key_padding_mask=key_padding,
            need_weights=False,
            attn_mask=blocked,
        )
        x = x + sd[p + "gamma_1"] * attended.transpose(0, 1)
        mlp = F.linear(
            F.gelu(F.linear(norm(x, p + "norm2"), sd[p + "linear1.weight"], sd[p + "linear1.bias"])),
            sd[p + "linear2.weight"],
            sd[p + "linear2.bias"],
        )
        x = x + sd[p + "gamma_2"] * mlp
    feature = F.linear(
        norm(x[:, 0], "loss_prepare.ln_post"), sd["loss_prepare.proj.weight"], sd["loss_prepare.proj.bias"]
    )
    return F.normalize(feature, dim=-1), x
