"""The converter on Uni-Perceiver-MoE checkpoints: every layout of the MoE golden folder gives the same model, the
MoE config is read from the keys, missing experts are named, and the written folder loads everywhere."""

import json
import shutil
import textwrap

import pytest
import torch
from conftest import run_without_package
from golden_moe import case_pixels, moe_config_from_index
from PIL import Image
from transformers import AutoModel, pipeline

import uniperceiver_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from uniperceiver_hf import UniPerceiverModel
from uniperceiver_hf.tools.convert import convert_checkpoint, main


@pytest.fixture(scope="module")
def reference(moe_dir, moe_index) -> UniPerceiverModel:
    return convert_checkpoint(moe_dir / "tiny_moe_model_checkpoint.pth", config=moe_config_from_index(moe_index))


def heads(moe_index) -> int:
    return moe_index["model_config"]["num_attention_heads"]


def assert_same_weights(model, reference):
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def expert_split_folder(moe_dir, folder, drop_expert: int | None = None):
    """DeepSpeed's MoE layout as the golden README describes it: the expert files, plus the main file derived from
    `ds_checkpoint` (its file without any expert tensor, with the MoE engine's top-level keys)."""
    tag = (moe_dir / "ds_checkpoint" / "latest").read_text().strip()
    engine = torch.load(moe_dir / "ds_checkpoint" / tag / "mp_rank_00_model_states.pt", weights_only=True)
    experts = sorted((moe_dir / "ds_checkpoint_expert_split" / tag).glob("expert_*_mp_rank_00_model_states.pt"))
    (folder / tag).mkdir(parents=True)
    (folder / "latest").write_text(tag)
    main_file = {
        key: engine[key] for key in engine if key not in ("buffer_names", "optimizer", "ds_config", "ds_version")
    }
    main_file["module"] = {k: v for k, v in engine["module"].items() if "expert" not in k}
    main_file["num_experts"] = len(experts)
    torch.save(main_file, folder / tag / "mp_rank_00_model_states.pt")
    for path in experts:
        if drop_expert is None or path.name != f"expert_{drop_expert}_mp_rank_00_model_states.pt":
            shutil.copy(path, folder / tag / path.name)
    return folder


def test_moe_every_layout_gives_the_same_model(moe_dir, moe_index, reference, tmp_path):
    split = expert_split_folder(moe_dir, tmp_path / "split")
    tag = (split / "latest").read_text().strip()
    layouts = [
        moe_dir / "tiny_moe_model.safetensors",
        moe_dir / "ds_checkpoint",  # the folder with `latest`
        moe_dir / "ds_checkpoint" / tag,  # its tag
        moe_dir / "ds_checkpoint" / tag / "mp_rank_00_model_states.pt",
        split,
        split / tag,
        split / tag / "mp_rank_00_model_states.pt",  # the main file finds its expert files beside it
    ]
    for layout in layouts:
        # No config: the MoE fields come from the keys, the heads from the argument (not a released size).
        model = convert_checkpoint(layout, num_attention_heads=heads(moe_index))
        assert_same_weights(model, reference)
        for name in ("num_experts", "moe_layers", "moe_sublayers", "moe_attribute_length", "moe_attribute_transform"):
            assert getattr(model.config, name) == getattr(reference.config, name), (layout, name)


def test_moe_missing_expert_files_and_keys_are_named(moe_dir, moe_index, tmp_path):
    split = expert_split_folder(moe_dir, tmp_path / "split", drop_expert=3)
    with pytest.raises(ValueError, match=r"\['expert_3_mp_rank_00_model_states.pt'\] is missing"):
        convert_checkpoint(split, num_attention_heads=heads(moe_index))
    tag = (split / "latest").read_text().strip()
    for path in (split / tag).glob("expert_*"):
        path.unlink()
    with pytest.raises(ValueError, match="experts are stored in separate files"):
        convert_checkpoint(split, num_attention_heads=heads(moe_index))
    state_dict = torch.load(moe_dir / "tiny_moe_model_checkpoint.pth", weights_only=True)["model"]
    missing = "fused_encoder.layers.0.linear1.experts.deepspeed_experts.5.weight"
    torch.save({"model": {k: v for k, v in state_dict.items() if k != missing}}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"missing expert ids: \{'fused_encoder.layers.0.linear1 weight': \[5\]\}"):
        convert_checkpoint(tmp_path / "partial.pth", num_attention_heads=heads(moe_index))
    gate = "fused_encoder.layers.0.linear1.gate.wg.weight"
    torch.save({"model": {k: v for k, v in state_dict.items() if k != gate}}, tmp_path / "no_gate.pth")
    with pytest.raises(ValueError, match=r"missing keys: \['encoder.layers.0.mlp.fc1.gate.router.weight'\]"):
        convert_checkpoint(tmp_path / "no_gate.pth", num_attention_heads=heads(moe_index))
    with pytest.raises(ValueError, match="nor a DeepSpeed checkpoint folder"):
        convert_checkpoint(tmp_path, num_attention_heads=heads(moe_index))


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from PIL import Image
    from transformers import AutoModel, pipeline

    folder, inputs_path, outputs_path = sys.argv[1:]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    inputs = torch.load(inputs_path, weights_only=True)
    with torch.no_grad():
        logits = model(**inputs, task="img_cls").logits
    classify = pipeline("zero-shot-perception", model=folder, trust_remote_code=True)
    scores = classify(Image.new("RGB", (64, 48), (200, 30, 30)), candidate_labels=["tench", "goldfish"])
    torch.save({"logits": logits, "labels": [s["label"] for s in scores]}, outputs_path)
    """
)


@torch.no_grad()
def test_moe_converted_folder_loads_with_auto_model_pipeline_and_remote_code(
    moe_dir, moe_index, moe_goldens, reference, tmp_path, capsys
):
    folder = tmp_path / "converted"
    main(
        [
            "--checkpoint",
            str(moe_dir / "ds_checkpoint"),
            "--output",
            str(folder),
            "--num-attention-heads",
            str(heads(moe_index)),
        ]
    )
    assert f"{moe_index['model_config']['num_hidden_layers']} layers x {moe_index['model_config']['hidden_size']}" in (
        capsys.readouterr().out
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["num_experts"] == moe_index["model_config"]["moe"]["NUM_EXPERTS"]
    assert "moe_uniperceiver.py" in {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "Uni-Perceiver-MoE" in card and "Stored parameters" in card and "At deployment" in card

    model = AutoModel.from_pretrained(folder).eval()
    assert_same_weights(model, reference)
    images = case_pixels(moe_goldens, moe_index, "image_classification")
    inputs = {
        "pixel_values": images,
        "target_input_ids": moe_goldens["image_classification/target_ids"][:2],
        "target_attention_mask": 1 - moe_goldens["image_classification/target_padding_mask"][:2].long(),
    }
    local = model(**inputs, task="img_cls").logits
    torch.testing.assert_close(local, moe_goldens["image_classification/logits"][:, :2], rtol=1e-4, atol=1e-4)
    classify = pipeline("zero-shot-perception", model=str(folder))
    picture = Image.new("RGB", (64, 48), (200, 30, 30))
    assert {s["label"] for s in classify(picture, candidate_labels=["tench", "goldfish"])} == {"tench", "goldfish"}

    torch.save(inputs, tmp_path / "inputs.pt")
    outputs = tmp_path / "outputs.pt"
    run_without_package(REMOTE_SCRIPT, folder, tmp_path / "inputs.pt", outputs, tmp_path=tmp_path, timeout=300)
    remote = torch.load(outputs, weights_only=True)
    assert torch.equal(remote["logits"], local)
    assert sorted(remote["labels"]) == ["goldfish", "tench"]
