"""Auto classes, save/load round trips and `trust_remote_code` loading in a process without the package."""

import json
import textwrap

import torch
from conftest import run_without_package
from safetensors import safe_open
from transformers import AutoConfig, AutoModel

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel


def example_inputs(config):
    generator = torch.Generator().manual_seed(0)
    return dict(
        input_ids=torch.tensor([[5, 6, 49410, 49407], [7, 49410, 49407, 0]]),
        attention_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        pixel_values=torch.randn(2, 3, config.image_size, config.image_size, generator=generator),
        feature_index=torch.tensor([2, 1]),
        target_input_ids=torch.tensor([[8, 49407], [9, 49407], [11, 49407]]),
        task="downstream",
    )


def test_auto_classes_resolve_after_import(tiny_config, tmp_path):
    assert type(AutoConfig.for_model("uniperceiver")) is UniPerceiverConfig
    assert type(AutoModel.from_config(tiny_config)) is UniPerceiverModel
    UniPerceiverModel(tiny_config).save_pretrained(tmp_path)
    assert type(AutoModel.from_pretrained(tmp_path)) is UniPerceiverModel


@torch.no_grad()
def test_save_and_load_round_trip_is_bitwise(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    loaded, info = UniPerceiverModel.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not keys for keys in info.values()), info
    inputs = example_inputs(tiny_model.config)
    before, after = tiny_model(**inputs), loaded.eval()(**inputs)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.last_hidden_state, after.last_hidden_state)

    # The one LayerNorm shared by text and visual embeddings is one tensor in the file, and one module after loading.
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as weights:
        norms = [key for key in weights.keys() if key.startswith("embeddings.") and "layer_norm" in key]
    assert norms == ["embeddings.layer_norm.bias", "embeddings.layer_norm.weight"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_uniperceiver.UniPerceiverConfig",
        "AutoModel": "modeling_uniperceiver.UniPerceiverModel",
        "AutoModelForZeroShotImageClassification": "zero_shot_uniperceiver.UniPerceiverForZeroShotImageClassification",
        "AutoModelForImageTextToText": "image_text_to_text_uniperceiver.UniPerceiverForImageTextToText",
    }
    written = {p.name for p in tmp_path.iterdir()}
    assert {
        "configuration_uniperceiver.py",
        "modeling_uniperceiver.py",
        "zero_shot_uniperceiver.py",
        "image_text_to_text_uniperceiver.py",
        "captioning_uniperceiver.py",
    } <= written


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoModel

    folder, inputs_path, outputs_path = sys.argv[1:]
    try:
        import uniperceiver_hf  # noqa: F401
        raise SystemExit("the package must not be importable here")
    except ImportError:
        pass
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    inputs = torch.load(inputs_path, weights_only=True)
    with torch.no_grad():
        output = model(**inputs, task="downstream")
    torch.save({"logits": output.logits, "last_hidden_state": output.last_hidden_state}, outputs_path)
    """
)


@torch.no_grad()
def test_trust_remote_code_in_a_fresh_process_without_the_package(tiny_model, tmp_path):
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    inputs = {k: v for k, v in example_inputs(tiny_model.config).items() if k != "task"}
    torch.save(inputs, tmp_path / "inputs.pt")
    outputs = tmp_path / "outputs.pt"
    run_without_package(REMOTE_SCRIPT, folder, tmp_path / "inputs.pt", outputs, tmp_path=tmp_path, timeout=300)
    remote = torch.load(outputs, weights_only=True)
    local = tiny_model(**inputs, task="downstream")
    assert torch.equal(remote["logits"], local.logits)
    assert torch.equal(remote["last_hidden_state"], local.last_hidden_state)
