"""Converts official Uni-Perceiver checkpoints into folders that `AutoModel.from_pretrained` loads.

    uniperceiver-hf convert --checkpoint PATH --output DIR [--config base|large|PATH.json]
    python -m uniperceiver_hf.convert ...   (the same, as the model cards quote it)

Handles the "torch" layout (`{'model': state_dict}`, what `tools/convert_checkpoint.py` and
`tools/convertmoe.ipynb` write), a bare state dict, the trainer's checkpoints (`{'model': ..., 'trainer': ...}`)
and the DeepSpeed "ds" layout (`{'module': ...}`), plus the prompt-tuned keys. Uni-Perceiver-MoE checkpoints come
in the same layouts (experts inside the state dict) or in DeepSpeed's MoE layout: a folder (or its `latest` tag)
holding `mp_rank_00_model_states.pt` without the experts and one `expert_{E}_mp_rank_00_model_states.pt` per
expert id; the MoE config (experts, their layers and sub-layers, the gate's transform) is read from the keys.
Loading is strict: any unknown, missing or mis-shaped key is an error listing them all (the official loader
silently kept random weights for mis-shaped keys), and a missing expert file or expert is named.
"""

import argparse
import json
import logging
import re
from pathlib import Path

import torch

from ..configuration_uniperceiver import LOGIT_SCALE_TASKS, PRESETS, UniPerceiverConfig
from ..files_uniperceiver import read_safetensors, read_torch_file
from ..modeling_uniperceiver import UniPerceiverModel
from ..pipeline_uniperceiver import save_for_pipeline
from ..processing_uniperceiver import UniPerceiverProcessor
from .hub import converted_model_card


logger = logging.getLogger(__name__)
DESCRIPTION = __doc__.split("\n\n")[0]

# Official name (torch layout) -> our name. `{i}` is a layer index. Several official names may map to one of
# ours: the shared embedding LayerNorm is stored under both modalities, `s_token_bias` under two modules.
_STATIC_KEYS = {
    "token_embed.embeddings.weight": "embeddings.text.word_embeddings.weight",
    "token_embed.embeddings_pos.position_embeddings.weight": "embeddings.text.position_embeddings.weight",
    "token_embed.embeddings_token_type.weight": "embeddings.text.token_type_embeddings.weight",
    "s_token_bias": "embeddings.text.spe_bias",
    "token_embed.s_token_bias": "embeddings.text.spe_bias",
    "token_embed.embeddings_norm.weight": "embeddings.layer_norm.weight",
    "token_embed.embeddings_norm.bias": "embeddings.layer_norm.bias",
    "video_embed.embeddings_norm.weight": "embeddings.layer_norm.weight",
    "video_embed.embeddings_norm.bias": "embeddings.layer_norm.bias",
    "video_embed.embeddings.weight": "embeddings.visual.patch_embedding.weight",
    "video_embed.embeddings.bias": "embeddings.visual.patch_embedding.bias",
    "video_embed.embeddings_st_pos.spatial_pos_embed.weight": "embeddings.visual.spatial_position_embeddings",
    "video_embed.embeddings_st_pos.temporal_pos_embed.weight": "embeddings.visual.temporal_position_embeddings.weight",
    "loss_prepare.ln_post.weight": "head.layer_norm.weight",
    "loss_prepare.ln_post.bias": "head.layer_norm.bias",
    "loss_prepare.proj.weight": "head.projection.weight",
    "loss_prepare.proj.bias": "head.projection.bias",
    "fc_prompt.weight": "head.classifier.weight",
    "fc_prompt.bias": "head.classifier.bias",
    "similarity_weight": "head.similarity_weight",
}
_LAYER_KEYS = {
    "norm1.weight": "layer_norm1.weight",
    "norm1.bias": "layer_norm1.bias",
    "norm2.weight": "layer_norm2.weight",
    "norm2.bias": "layer_norm2.bias",
    "self_attn.in_proj_weight": "self_attn.in_proj.weight",
    "self_attn.in_proj_bias": "self_attn.in_proj.bias",
    "self_attn.out_proj.weight": "self_attn.out_proj.weight",
    "self_attn.out_proj.bias": "self_attn.out_proj.bias",
    # Uni-Perceiver-MoE names every layer's attention projections this way, also where they have no experts.
    "self_attn.qkv_proj.weight": "self_attn.in_proj.weight",
    "self_attn.qkv_proj.bias": "self_attn.in_proj.bias",
    "self_attn.dense.weight": "self_attn.out_proj.weight",
    "self_attn.dense.bias": "self_attn.out_proj.bias",
    "linear1.weight": "mlp.fc1.weight",
    "linear1.bias": "mlp.fc1.bias",
    "linear2.weight": "mlp.fc2.weight",
    "linear2.bias": "mlp.fc2.bias",
    "gamma_1": "layer_scale1.gamma",
    "gamma_2": "layer_scale2.gamma",
    "deep_prompt_embedding.embedding.weight": "prompt_embeddings",
    "deep_prompt_embedding.target_embedding.weight": "target_prompt_embeddings",
}
_LAYER_PATTERN = re.compile(r"^fused_encoder\.layers\.(\d+)\.(.+)$")
# Uni-Perceiver-MoE: the official sub-layers that can hold experts -> ours. The DeepSpeed renames give the output
# projection its dense name, so both spellings occur.
_MOE_SUBLAYERS = {
    "self_attn.qkv_proj": "self_attn.in_proj",
    "self_attn.dense": "self_attn.out_proj",
    "self_attn.out_proj": "self_attn.out_proj",
    "linear1": "mlp.fc1",
    "linear2": "mlp.fc2",
}
_MOE_SUBLAYER = "|".join(re.escape(name) for name in _MOE_SUBLAYERS)
_EXPERT_PATTERN = re.compile(
    rf"^fused_encoder\.layers\.(\d+)\.({_MOE_SUBLAYER})\.experts\.deepspeed_experts\.(\d+)\.(weight|bias)$"
)
# Expert tensors stacked by `_stack_experts`, `[E, ...]`, under this name.
_STACKED_PATTERN = re.compile(rf"^fused_encoder\.layers\.(\d+)\.({_MOE_SUBLAYER})\.experts\.(weight|bias)$")
# The gate: `tag_transform` is Linear (0), optionally GELU (1), then LayerNorm (1, or 2 after the GELU); `wg` routes.
_GATE_PATTERN = re.compile(
    rf"^fused_encoder\.layers\.(\d+)\.({_MOE_SUBLAYER})\.gate\.(tag_transform\.(\d)\.(weight|bias)|wg\.weight)$"
)
_LOGIT_SCALE_PATTERN = re.compile(r"^loss_prepare\.logit_scale_(\w+)$")
# Unused at runtime in the torch layout: the DeepSpeed conversion already folded it into the patch bias.
_VISUAL_TYPE_KEY = "video_embed.embeddings_type.weight"

# The tensors whose shapes give the architecture's sizes (`infer_config`).
_SIZE_KEYS = (
    "token_embed.embeddings.weight",
    "token_embed.embeddings_pos.position_embeddings.weight",
    "token_embed.embeddings_token_type.weight",
    "video_embed.embeddings.weight",
    "video_embed.embeddings_st_pos.spatial_pos_embed.weight",
    "video_embed.embeddings_st_pos.temporal_pos_embed.weight",
    "loss_prepare.proj.weight",
)
# The first feed-forward linear of some layer (a plain one, or the stacked experts of an MoE layer) gives the FFN size.
_FFN_PATTERN = re.compile(r"^fused_encoder\.layers\.\d+\.linear1\.(experts\.)?weight$")

# The DeepSpeed layout's names, renamed in this order by substring (official `tools/convert_checkpoint.py`).
_DS_RENAMES = (
    ("attention.self.qkv_proj.weight", "self_attn.in_proj_weight"),
    ("attention.self.qkv_proj.bias", "self_attn.in_proj_bias"),
    ("attention.output.dense", "self_attn.out_proj"),
    ("attention_output.residual_scale", "gamma_1"),
    ("ffn.dense.", "linear1."),
    ("ffn.dense2.", "linear2."),
    ("ffn_output.residual_scale", "gamma_2"),
    ("LayerNormModules.0.", "norm1."),
    ("LayerNormModules.1.", "norm2."),
    ("predictor.", "loss_prepare."),
)
# Uni-Perceiver-MoE's DeepSpeed names, renamed after the dense ones.
_DS_MOE_RENAMES = (
    ("attention.self.qkv_proj.", "self_attn.qkv_proj."),
    (".deepspeed_moe.gate.", ".gate."),
    (".deepspeed_moe.experts.", ".experts."),
)
# DeepSpeed's file names: the engine's model states, and (MoE layout) one file per expert id.
_DS_MAIN_FILE = "mp_rank_00_model_states.pt"
_DS_EXPERT_FILE = re.compile(r"^expert_(\d+)_mp_rank_00_model_states\.pt$")


def official_to_hf_name(name: str) -> str | None:
    """Our parameter name for an official (torch-layout) key, or None if the key is not one we know. Experts are
    named after stacking (`_stack_experts`): `fused_encoder.layers.{i}.linear1.experts.weight` `[E, out, in]`."""
    if name in _STATIC_KEYS:
        return _STATIC_KEYS[name]
    if match := _STACKED_PATTERN.match(name):
        index, sublayer, kind = match.groups()
        return f"encoder.layers.{index}.{_MOE_SUBLAYERS[sublayer]}.{kind}"
    if match := _GATE_PATTERN.match(name):
        index, sublayer, _, position, kind = match.groups()
        part = "router.weight"
        if position is not None:
            part = f"attribute_projection.{kind}" if position == "0" else f"attribute_norm.{kind}"
        return f"encoder.layers.{index}.{_MOE_SUBLAYERS[sublayer]}.gate.{part}"
    if match := _LAYER_PATTERN.match(name):
        index, rest = match.groups()
        return f"encoder.layers.{index}.{_LAYER_KEYS[rest]}" if rest in _LAYER_KEYS else None
    if match := _LOGIT_SCALE_PATTERN.match(name):
        return f"head.logit_scales.{match.group(1)}"
    return None


def _tensors_only(state_dict: dict, path: Path) -> dict[str, torch.Tensor]:
    not_tensors = {key: type(value).__name__ for key, value in state_dict.items() if not torch.is_tensor(value)}
    if not_tensors:
        raise ValueError(f"`checkpoint` {str(path)!r} holds values that are not tensors: {not_tensors}.")
    return state_dict


def _deepspeed_file(path: Path) -> Path:
    """The model-states file of a DeepSpeed checkpoint folder: the folder of a tag, or its parent with `latest`."""
    if (path / "latest").is_file():
        tag = (path / "latest").read_text().strip()
        if not tag or not (path / tag).is_dir():
            raise ValueError(
                f"`checkpoint` {str(path)!r}: its `latest` names the tag {tag!r}, which is not a folder there."
            )
        path = path / tag
    if not (path / _DS_MAIN_FILE).is_file():
        raise ValueError(
            f"`checkpoint` {str(path)!r} is not a file, nor a DeepSpeed checkpoint folder (a `latest` tag file or "
            f"{_DS_MAIN_FILE} in it)."
        )
    return path / _DS_MAIN_FILE


def _expert_files(folder: Path, main: dict, main_path: Path) -> dict[str, torch.Tensor]:
    """The tensors of DeepSpeed's MoE layout: one `expert_{E}_mp_rank_00_model_states.pt` per expert id beside the
    main file. Every id up to the main file's `num_experts` must be there."""
    found = {int(m.group(1)): folder / f.name for f in folder.iterdir() if (m := _DS_EXPERT_FILE.match(f.name))}
    declared = main.get("num_experts")
    declared = max(declared) if isinstance(declared, (list, tuple)) and declared else declared
    expected = range(declared) if isinstance(declared, int) and declared > 0 else range(max(found, default=-1) + 1)
    missing = [f"expert_{e}_mp_rank_00_model_states.pt" for e in expected if e not in found]
    if missing or not found:
        raise ValueError(
            f"`checkpoint` {str(main_path)!r} is a Uni-Perceiver-MoE checkpoint whose experts are stored in separate "
            f"files (DeepSpeed's MoE layout), but {missing or 'all of them'} "
            f"{'is' if len(missing) == 1 else 'are'} missing from {str(folder)!r}."
        )
    tensors = {}
    for expert in expected:
        payload = read_torch_file(found[expert], "checkpoint")
        if not isinstance(payload, dict):
            raise ValueError(f"`checkpoint` expert file {str(found[expert])!r} holds a {type(payload).__name__}.")
        tensors.update(_tensors_only(payload.get("module", payload), found[expert]))
    return tensors


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads an official checkpoint file or DeepSpeed folder (never unpickling arbitrary objects) and returns its
    state dict in the official torch layout's names (experts still one tensor each; see `_stack_experts`)."""
    path = Path(path)
    if path.is_dir():
        path = _deepspeed_file(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path, "checkpoint")[0]
    obj = read_torch_file(path, "checkpoint")
    if not isinstance(obj, dict):
        raise ValueError(f"`checkpoint` {str(path)!r} holds a {type(obj).__name__}, not a state dict.")
    container = next((name for name in ("model", "module") if isinstance(obj.get(name), dict)), None)
    state_dict = _tensors_only(obj[container] if container else obj, path)
    if container != "module":
        return state_dict
    has_gates = any(".deepspeed_moe.gate." in key for key in state_dict)
    if has_gates and not any(".deepspeed_moe.experts." in key for key in state_dict):
        state_dict = {**state_dict, **_expert_files(path.parent, obj, path)}
    return _from_deepspeed(state_dict)


def _from_deepspeed(module: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The DeepSpeed layout in torch-layout names, as `tools/convert_checkpoint.py` (dense model) and
    `tools/convertmoe.ipynb` (MoE) do it."""
    state_dict = {}
    for key, tensor in module.items():
        if key.startswith("visual_embed."):  # an old, separate image tokenizer that the model no longer has
            continue
        if key.startswith("encoder."):
            key = "fused_" + key
        for old, new in _DS_RENAMES + _DS_MOE_RENAMES:
            key = key.replace(old, new)
        if key.endswith(("gamma_1", "gamma_2")):
            tensor = tensor.reshape(-1)  # residual scales are stored [1, 1, D]
        state_dict[key] = tensor.float()
    # The visual modality embedding is added once, into the patch bias; the torch layout already has it there.
    type_embedding = state_dict.pop(_VISUAL_TYPE_KEY, None)
    if type_embedding is not None and "video_embed.embeddings.bias" in state_dict:  # else: a missing key, listed later
        state_dict["video_embed.embeddings.bias"] = state_dict["video_embed.embeddings.bias"] + type_embedding[0]
    return state_dict


def _stack_experts(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each MoE sub-layer's `experts.deepspeed_experts.{e}.weight/bias` stacked into one `[E, ...]` tensor
    (`...experts.weight`), our layout; a sub-layer that lacks some expert ids is an error naming them."""
    groups: dict[tuple[str, str, str], dict[int, torch.Tensor]] = {}
    stacked = {}
    for key, tensor in state_dict.items():
        if match := _EXPERT_PATTERN.match(key):
            index, sublayer, expert, kind = match.groups()
            groups.setdefault((index, sublayer, kind), {})[int(expert)] = tensor
        else:
            stacked[key] = tensor
    if not groups:
        return stacked
    num_experts = max(max(experts) for experts in groups.values()) + 1
    gaps = {
        f"fused_encoder.layers.{index}.{sublayer} {kind}": sorted(set(range(num_experts)) - set(experts))
        for (index, sublayer, kind), experts in groups.items()
        if len(experts) != num_experts
    }
    if gaps:
        raise ValueError(
            f"The checkpoint does not fit the model: every MoE sub-layer needs all {num_experts} experts; "
            f"missing expert ids: {gaps}."
        )
    shapes = {
        name: {tuple(t.shape) for t in experts.values()}
        for name, experts in groups.items()
        if len({tuple(t.shape) for t in experts.values()}) > 1
    }
    if shapes:
        raise ValueError(f"The checkpoint does not fit the model: experts of one sub-layer differ in shape: {shapes}.")
    for (index, sublayer, kind), experts in groups.items():
        stacked[f"fused_encoder.layers.{index}.{sublayer}.experts.{kind}"] = torch.stack(
            [experts[e] for e in range(num_experts)]
        )
    return stacked


def _moe_fields(state_dict: dict[str, torch.Tensor]) -> dict:
    """The Uni-Perceiver-MoE config the (stacked) keys imply; `num_experts=0` for a dense checkpoint."""
    layers, sublayers, num_experts = set(), set(), 0
    for key, tensor in state_dict.items():
        if match := _STACKED_PATTERN.match(key):
            layers.add(int(match.group(1)))
            sublayers.add("attention" if match.group(2).startswith("self_attn") else "mlp")
            num_experts = tensor.shape[0]
    if not num_experts:
        return {"num_experts": 0}
    gates = [key for key in state_dict if _GATE_PATTERN.match(key)]
    projection = next((key for key in gates if ".tag_transform.0.weight" in key), None)
    router = next((key for key in gates if key.endswith(".wg.weight")), None)
    if router is None:
        raise ValueError("The checkpoint does not fit the model: it has experts but no gate (`...gate.wg.weight`).")
    return dict(
        num_experts=num_experts,
        moe_layers=sorted(layers),
        moe_sublayers=[name for name in ("attention", "mlp") if name in sublayers],
        moe_attribute_transform=projection is not None,
        moe_attribute_transform_activation=any(".tag_transform.2." in key for key in gates),
        moe_attribute_length=(state_dict[projection] if projection else state_dict[router]).shape[1],
    )


def infer_config(
    state_dict: dict[str, torch.Tensor], base: UniPerceiverConfig | None = None, num_attention_heads: int | None = None
) -> UniPerceiverConfig:
    """The config the tensors imply. Fields the tensors cannot tell (heads, eps, activation, drop path...) come
    from `base`, or from the released preset of the same hidden size; a `base` that disagrees with the tensors is
    an error naming the field."""

    missing = [key for key in _SIZE_KEYS if key not in state_dict]
    ffn_key = next((key for key in sorted(state_dict) if _FFN_PATTERN.match(key)), None)
    if ffn_key is None:
        missing.append("fused_encoder.layers.0.linear1.weight")
    if missing:
        raise ValueError(
            "The checkpoint does not fit the model (it does not look like a Uni-Perceiver checkpoint):\n  "
            f"missing keys: {missing} (the sizes are read from them; first keys present: {sorted(state_dict)[:5]})."
        )

    def shape(key: str) -> tuple[int, ...]:
        return tuple(state_dict[key].shape)

    vocab_size, hidden_size = shape("token_embed.embeddings.weight")
    layers = {int(m.group(1)) for key in state_dict if (m := _LAYER_PATTERN.match(key))}
    spatial_rows = shape("video_embed.embeddings_st_pos.spatial_pos_embed.weight")[0]
    patch_size = shape("video_embed.embeddings.weight")[-1]
    grid = int(round(spatial_rows**0.5))
    if grid * grid != spatial_rows:
        raise ValueError(f"`checkpoint` spatial position table has {spatial_rows} rows, not a square grid.")
    prompt_key = "fused_encoder.layers.0.deep_prompt_embedding.embedding.weight"
    tasks_present = [m.group(1) for key in state_dict if (m := _LOGIT_SCALE_PATTERN.match(key))]
    # Sizes: a given config must agree with them.
    sizes = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=max(layers) + 1 if layers else 0,
        intermediate_size=shape(ffn_key)[-2],
        max_position_embeddings=shape("token_embed.embeddings_pos.position_embeddings.weight")[0],
        type_vocab_size=shape("token_embed.embeddings_token_type.weight")[0],
        num_channels=shape("video_embed.embeddings.weight")[1],
        patch_size=patch_size,
        image_size=grid * patch_size,
        num_frames=shape("video_embed.embeddings_st_pos.temporal_pos_embed.weight")[0],
        projection_dim=shape("loss_prepare.proj.weight")[0],
    )
    # What the checkpoint carries on top of the architecture (prompt tuning, which log-scales it learned):
    # always taken from the tensors, so `--config base` also converts a prompt-tuned checkpoint.
    carried = dict(
        logit_scale_tasks=[t for t in LOGIT_SCALE_TASKS if t in tasks_present]
        + [t for t in tasks_present if t not in LOGIT_SCALE_TASKS],
        num_prompt_tokens=shape(prompt_key)[0] if prompt_key in state_dict else 0,
        share_prompt_tokens="fused_encoder.layers.0.deep_prompt_embedding.target_embedding.weight" not in state_dict,
        use_spe_bias="s_token_bias" in state_dict or "token_embed.s_token_bias" in state_dict,
        num_prompt_classes=shape("fc_prompt.weight")[0] if "fc_prompt.weight" in state_dict else 0,
        **_moe_fields(state_dict),
    )
    has_layer_scale = "fused_encoder.layers.0.gamma_1" in state_dict
    if base is None:
        preset = next((p for p in PRESETS.values() if p["hidden_size"] == hidden_size), None)
        if preset is None and num_attention_heads is None:
            raise ValueError(
                f"The checkpoint has hidden size {hidden_size}, not a released size; the number of attention heads "
                "cannot be read from the tensors: pass `config` (a JSON file) or `num_attention_heads`."
            )
        heads = {} if num_attention_heads is None else {"num_attention_heads": num_attention_heads}
        layer_scale = {} if has_layer_scale else {"layer_scale_init_value": None}
        return UniPerceiverConfig(**{**(preset or {}), **heads, **layer_scale, **sizes, **carried})
    disagreements = [
        f"{name}: config {getattr(base, name)!r}, checkpoint {value!r}"
        for name, value in sizes.items()
        if getattr(base, name) != value
    ]
    if (base.layer_scale_init_value is not None) != has_layer_scale:
        disagreements.append("layer_scale_init_value: layer scale present in only one of config and checkpoint")
    if disagreements:
        raise ValueError("`config` does not match the checkpoint's tensors:\n  " + "\n  ".join(disagreements))
    return UniPerceiverConfig.from_dict({**base.to_dict(), **carried})


def official_state_dict_to_hf(
    state_dict: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Renames an official state dict to ours and checks it against `expected` (our model's state dict).

    Raises one error listing every unknown, missing and mis-shaped key. The gates of the output projection and the
    second feed-forward linear, which the official code stores but never uses when decisions are shared, are
    dropped when the model has no place for them.
    """
    converted: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    unknown = []
    for name, tensor in state_dict.items():
        if name == _VISUAL_TYPE_KEY:
            continue
        ours = official_to_hf_name(name)
        if ours is None:
            unknown.append(name)
            continue
        if ours not in expected and _GATE_PATTERN.match(name) and (".out_proj.gate." in ours or ".fc2.gate." in ours):
            continue
        if ours in converted and not torch.equal(converted[ours], tensor):
            # Two names of one shared tensor disagree. For the shared embedding LayerNorm the official model
            # loads `video_embed` last, so that copy wins; any other disagreement has no defined winner.
            video_name = next((n for n in (name, sources[ours]) if n.startswith("video_embed.")), None)
            if video_name is None:
                raise ValueError(
                    f"`checkpoint` holds different values under {sources[ours]} and {name}, which "
                    "name one shared parameter."
                )
            logger.warning(
                "%s and %s differ; keeping %s as the official loader does.", sources[ours], name, video_name
            )
            if video_name != name:
                continue
        converted[ours], sources[ours] = tensor, name
    missing = sorted(set(expected) - set(converted))
    mis_shaped = [
        f"{sources[key]} -> {key}: checkpoint {tuple(tensor.shape)}, model {tuple(expected[key].shape)}"
        for key, tensor in converted.items()
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape)
    ]
    unexpected = sorted(set(converted) - set(expected))
    problems = []
    if unknown:
        problems.append(f"unknown keys: {unknown}")
    if unexpected:
        problems.append(f"keys the config has no place for: {[sources[k] for k in unexpected]}")
    if missing:
        problems.append(f"missing keys: {missing}")
    if mis_shaped:
        problems.append(f"mis-shaped keys: {mis_shaped}")
    if problems:
        raise ValueError("The checkpoint does not fit the model:\n  " + "\n  ".join(problems))
    return {key: tensor.float().contiguous() for key, tensor in converted.items()}


def _resolve_config(config: str | Path | UniPerceiverConfig | None) -> UniPerceiverConfig | None:
    if config is None or isinstance(config, UniPerceiverConfig):
        return config
    if str(config) in PRESETS:
        return UniPerceiverConfig.from_preset(str(config))
    path = Path(config)
    if not path.is_file():
        raise ValueError(f"`config` must be one of {sorted(PRESETS)} or a JSON file; {str(config)!r} is neither.")
    return UniPerceiverConfig.from_dict(json.loads(path.read_text()))


def convert_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path | None = None,
    config: str | Path | UniPerceiverConfig | None = None,
    extra_checkpoints: list[str | Path] = (),
    num_attention_heads: int | None = None,
) -> UniPerceiverModel:
    """Loads an official checkpoint (plus `extra_checkpoints`, e.g. prompt-tuned keys stored separately) into a
    `UniPerceiverModel`; with `output_dir`, saves it there with its processor, the pipeline's code and a model card
    (README.md) that attributes the reported results to the authors."""
    if output_dir is not None and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ValueError(f"`output_dir` {str(output_dir)!r} exists and is not a folder; nothing was converted.")
    state_dict = dict(read_checkpoint(checkpoint))
    for extra in extra_checkpoints:
        state_dict.update(read_checkpoint(extra))
    state_dict = _stack_experts(state_dict)
    resolved = infer_config(state_dict, _resolve_config(config), num_attention_heads)
    model = UniPerceiverModel(resolved).eval()
    converted = official_state_dict_to_hf(state_dict, model.state_dict())
    model.load_state_dict(converted, strict=True)
    if output_dir is not None:
        # The processor (tokenizer files included) and the pipeline's code travel with the weights.
        save_for_pipeline(model, UniPerceiverProcessor(), output_dir)
        converted_model_card(Path(checkpoint).name, model.config).save(Path(output_dir) / "README.md")
    return model


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The converter's options, shared by `uniperceiver-hf convert` and `python -m uniperceiver_hf.convert`."""
    parser.add_argument("--checkpoint", required=True, help="official .pth / .pt / .safetensors file")
    parser.add_argument("--output", required=True, help="folder to write the model, processor and pipeline code to")
    parser.add_argument("--config", help="'base', 'large' or a config JSON (default: inferred from the tensors)")
    parser.add_argument("--extra", action="append", default=[], help="more state-dict files merged on top")
    parser.add_argument("--num-attention-heads", type=int, help="heads, for a hidden size that is not released")
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers) -> None:
    """Registers `uniperceiver-hf convert`."""
    add_arguments(subparsers.add_parser("convert", help=DESCRIPTION, description=DESCRIPTION))


def run(args: argparse.Namespace) -> None:
    model = convert_checkpoint(args.checkpoint, args.output, args.config, args.extra, args.num_attention_heads)
    config = model.config
    print(
        f"Wrote {args.output}: {config.num_hidden_layers} layers x {config.hidden_size}, "
        f"{config.num_attention_heads} heads, {sum(p.numel() for p in model.parameters()):,} parameters."
    )


def main(argv: list[str] | None = None) -> None:
    """`uniperceiver-hf convert` on its own (`python -m uniperceiver_hf.convert`)."""
    parser = add_arguments(argparse.ArgumentParser(prog="uniperceiver-hf convert", description=DESCRIPTION))
    run(parser.parse_args(argv))
