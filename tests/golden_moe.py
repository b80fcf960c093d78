"""The Uni-Perceiver-MoE golden folder: where it is, and our config for its model, both read from `index.json`.

The folder comes from `UNIPERCEIVER_GOLDEN_MOE_DIR` (default `../shared/reference/golden-moe` beside the project; a
relative path is taken from the project root), so that the same tests run on another golden folder of the same
layout and schema (another size, other expert layers).
"""

import os
import re
from pathlib import Path

import pytest
import torch

from uniperceiver_hf import UniPerceiverConfig


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def golden_moe_dir() -> Path:
    folder = Path(os.environ.get("UNIPERCEIVER_GOLDEN_MOE_DIR", "../shared/reference/golden-moe"))
    return folder if folder.is_absolute() else (PROJECT_ROOT / folder).resolve()


def require_golden_moe_dir() -> Path:
    """The folder, or a skip where it is absent (a user's clone); in CI it must exist."""
    folder = golden_moe_dir()
    if not (folder / "index.json").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide the MoE golden data at {folder}")
        pytest.skip(f"MoE golden data not found at {folder} (it ships beside the project, not inside it)")
    return folder


def moe_config_from_index(index: dict) -> UniPerceiverConfig:
    """Our config for the golden model, from `index.json` alone."""
    spec, moe = index["model_config"], index["model_config"]["moe"]
    table = index["attribute_table"]
    kinds = {"SA": "attention", "FFN": "mlp"}
    return UniPerceiverConfig(
        vocab_size=spec["vocab_size"],
        hidden_size=spec["hidden_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["num_attention_heads"],
        intermediate_size=spec["intermediate_size"],
        hidden_act=spec["hidden_act"].split()[0],
        layer_norm_eps=spec["layer_norm_eps"],
        layer_scale_init_value=1e-3 if spec["layer_scale"] else None,
        drop_path_rate=spec["drop_path"],
        max_position_embeddings=spec["max_text_positions"],
        type_vocab_size=spec["text_type_vocab_size"],
        image_size=spec["image_size"],
        patch_size=spec["patch_size"],
        num_frames=spec["video_max_frames"],
        spatial_position_scale=spec["posembed_scale"],
        num_experts=moe["NUM_EXPERTS"],
        moe_top_k=moe["TOP_K"],
        moe_layers=moe["moe_layer_indices"],
        moe_sublayers=[kinds[kind] for kind in ("SA", "FFN") if kind in moe["MOE_EXPERT_TYPE"].split(",")],
        moe_attribute_length=moe["ATTRIBUTE_LENGTH"],
        moe_attribute_transform=moe["TAG_Transform"],
        moe_attribute_transform_activation=moe["TAG_Transform_ACT"],
        moe_share_gate_decisions=moe["FFN_SHARE_GATE_DECISION"],
        moe_task_attributes={name: rows for name, rows in table.items() if isinstance(rows, dict)},
        moe_target_set_attributes={name: rows for name, rows in table.items() if isinstance(rows, list)},
    )


def visual_input(goldens: dict, index: dict, name: str) -> torch.Tensor:
    """A visual input by its `visual_inputs` name: a key of the goldens, possibly with a `[a:b]` slice."""
    key = index["visual_inputs"][name]
    match = re.fullmatch(r"(.+)\[(\d*):(\d*)\]", key)
    if match is None:
        return goldens[key]
    start, stop = (int(x) if x else None for x in match.groups()[1:])
    return goldens[match.group(1)][start:stop]


def case_pixels(goldens: dict, index: dict, case: str) -> torch.Tensor:
    """The visual input of a case (its `pixel_values` entry names a stored key, possibly sliced)."""
    key = index["cases"][case]["tensors"]["pixel_values"]["key"]
    name = next(name for name, stored in index["visual_inputs"].items() if stored == key)
    return visual_input(goldens, index, name)
