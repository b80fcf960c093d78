"""The official-checkpoint converter: every layout, and loud failures for anything that does not fit."""

import json

import pytest
import torch
from official_reference import random_official_state_dict
from safetensors.torch import load_file, save_file

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel
from uniperceiver_hf.tools.convert import _DS_RENAMES, convert_checkpoint, main, official_to_hf_name


TINY = UniPerceiverConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)


@pytest.fixture(scope="module")
def official(golden_dir) -> dict[str, torch.Tensor]:
    return load_file(str(golden_dir / "tiny_model.safetensors"))


@pytest.fixture(scope="module")
def reference_model(golden_dir) -> UniPerceiverModel:
    return convert_checkpoint(golden_dir / "tiny_model_checkpoint.pth", config=TINY)


def assert_same_weights(model, reference, atol=0.0):
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], atol=atol, rtol=0, msg=key)


def to_deepspeed(state_dict: dict[str, torch.Tensor], type_embedding: torch.Tensor) -> dict:
    """The official torch layout turned back into the DeepSpeed layout the released large checkpoints use."""
    module = {}
    for key, tensor in state_dict.items():
        for old, new in reversed(_DS_RENAMES):
            key = key.replace(new, old)
        key = key.replace("fused_encoder.", "encoder.")
        if key.endswith("residual_scale"):
            tensor = tensor.reshape(1, 1, -1)
        module[key] = tensor.half()  # DeepSpeed checkpoints are fp16; the converter casts to fp32
    # Un-fold the visual type embedding: the DeepSpeed weights keep it separate.
    module["video_embed.embeddings_type.weight"] = type_embedding.half()
    module["video_embed.embeddings.bias"] = (state_dict["video_embed.embeddings.bias"] - type_embedding[0]).half()
    module["visual_embed.patch_embed.weight"] = torch.zeros(3)  # an obsolete tokenizer the converter drops
    return {"module": module, "iteration": 1000, "ds_version": "0.5.8", "dp_world_size": 64}


def test_official_names_map_one_to_one():
    assert official_to_hf_name("fused_encoder.layers.11.self_attn.in_proj_weight") == (
        "encoder.layers.11.self_attn.in_proj.weight"
    )
    assert official_to_hf_name("loss_prepare.logit_scale_video_cls") == "head.logit_scales.video_cls"
    assert official_to_hf_name("token_embed.embeddings_norm.weight") == official_to_hf_name(
        "video_embed.embeddings_norm.weight"
    )
    assert official_to_hf_name("fused_encoder.layers.0.unknown") is None


@pytest.mark.parametrize("layout", ["bare", "trainer", "safetensors"])
def test_other_torch_layouts_give_the_same_model(layout, official, reference_model, tmp_path):
    if layout == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file(official, str(path))
    else:
        path = tmp_path / "model.pth"
        payload = official if layout == "bare" else {"model": official, "iteration": 7, "scheduler": {"step": 7}}
        torch.save(payload, path)
    assert_same_weights(convert_checkpoint(path, config=TINY), reference_model)


def test_deepspeed_layout_folds_the_type_embedding_once(official, reference_model, tmp_path):
    type_embedding = torch.randn(1, 64) * 0.1
    path = tmp_path / "mp_rank_00_model_states.pt"
    rounded = {k: v.half().float() for k, v in official.items()}
    torch.save(to_deepspeed(rounded, type_embedding), path)
    model = convert_checkpoint(path, config=TINY)
    expected = convert_checkpoint_from_dict(rounded, tmp_path)
    # fp16 storage: exact but for the fold, computed in fp32 from fp16 halves.
    assert_same_weights(model, expected, atol=2e-3)
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())


def convert_checkpoint_from_dict(state_dict, tmp_path):
    path = tmp_path / "rounded.pth"
    torch.save({"model": state_dict}, path)
    return convert_checkpoint(path, config=TINY)


def test_prompt_tuned_keys(golden_dir, tmp_path):
    model = convert_checkpoint(
        golden_dir / "tiny_model_checkpoint.pth", tmp_path, TINY, [golden_dir / "tiny_prompt_extra.safetensors"]
    )
    extra = load_file(str(golden_dir / "tiny_prompt_extra.safetensors"))
    config = model.config
    assert (config.num_prompt_tokens, config.share_prompt_tokens, config.use_spe_bias, config.num_prompt_classes) == (
        10,
        True,
        True,
        6,
    )
    assert torch.equal(model.embeddings.text.spe_bias, extra["s_token_bias"])
    assert torch.equal(model.head.classifier.weight, extra["fc_prompt.weight"])
    assert torch.equal(
        model.encoder.layers[1].prompt_embeddings,
        extra["fused_encoder.layers.1.deep_prompt_embedding.embedding.weight"],
    )
    reloaded = UniPerceiverModel.from_pretrained(tmp_path)
    assert reloaded.config.num_prompt_tokens == 10


def test_unshared_target_prompts(tmp_path):
    sd = random_official_state_dict(48, 2, 96)
    for i in range(2):
        sd[f"fused_encoder.layers.{i}.deep_prompt_embedding.embedding.weight"] = torch.randn(5, 48)
        sd[f"fused_encoder.layers.{i}.deep_prompt_embedding.target_embedding.weight"] = torch.randn(5, 48)
    path = tmp_path / "prompted.pth"
    torch.save({"model": sd}, path)
    model = convert_checkpoint(path, num_attention_heads=4)
    assert not model.config.share_prompt_tokens
    layer = model.encoder.layers[1]
    assert torch.equal(
        layer.prompts(is_target=True), sd["fused_encoder.layers.1.deep_prompt_embedding.target_embedding.weight"]
    )
    assert torch.equal(
        layer.prompts(is_target=False), sd["fused_encoder.layers.1.deep_prompt_embedding.embedding.weight"]
    )


def save(sd, tmp_path, name="bad.pth"):
    path = tmp_path / name
    torch.save({"model": sd}, path)
    return path


def test_unknown_missing_and_mis_shaped_keys_are_all_listed(official, tmp_path):
    sd = dict(official)
    sd["loss_prepare.some_new_head.weight"] = torch.zeros(3)
    del sd["loss_prepare.proj.bias"]
    sd["fused_encoder.layers.1.linear2.bias"] = torch.zeros(65)
    with pytest.raises(ValueError) as error:
        convert_checkpoint(save(sd, tmp_path), config=TINY)
    message = str(error.value)
    assert "unknown keys: ['loss_prepare.some_new_head.weight']" in message
    assert "missing keys: ['head.projection.bias']" in message
    assert (
        "fused_encoder.layers.1.linear2.bias -> encoder.layers.1.mlp.fc2.bias: checkpoint (65,), model (64,)"
        in message
    )


def test_config_that_disagrees_with_the_tensors(golden_dir):
    with pytest.raises(ValueError, match="hidden_size: config 768, checkpoint 64"):
        convert_checkpoint(golden_dir / "tiny_model_checkpoint.pth", config="base")


def test_heads_are_required_for_unreleased_sizes(golden_dir):
    with pytest.raises(ValueError, match="num_attention_heads"):
        convert_checkpoint(golden_dir / "tiny_model_checkpoint.pth")


def test_released_sizes_infer_everything(tmp_path):
    sd = random_official_state_dict(768, 1, 32, vocab=49411, positions=512, grid=14, frames=8)
    model = convert_checkpoint(save(sd, tmp_path))
    config = model.config
    assert (config.num_attention_heads, config.num_hidden_layers, config.intermediate_size) == (12, 1, 32)
    assert (config.image_size, config.max_position_embeddings, config.num_frames) == (224, 512, 8)


def test_checkpoint_of_another_model(tmp_path):
    sd = {"bert.embeddings.word_embeddings.weight": torch.zeros(10, 4), "classifier.weight": torch.zeros(2, 4)}
    with pytest.raises(ValueError, match="does not look like a Uni-Perceiver checkpoint"):
        convert_checkpoint(save(sd, tmp_path), config=TINY)


def test_moe_checkpoint_without_its_expert_files_is_refused_clearly(official, tmp_path):
    module = {**official, "encoder.layers.0.ffn.dense.deepspeed_moe.gate.wg.weight": torch.zeros(8, 64)}
    path = tmp_path / "moe.pt"
    torch.save({"module": module}, path)
    with pytest.raises(ValueError, match="Uni-Perceiver-MoE checkpoint whose experts are stored in separate files"):
        convert_checkpoint(path, config=TINY)


class NotATensor:
    pass


def test_files_that_need_unpickling_arbitrary_objects_are_refused(official, tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"model": official, "extra": NotATensor()}, path)
    with pytest.raises(ValueError, match="not a readable file of tensors") as error:
        convert_checkpoint(path, config=TINY)
    assert "weights_only" not in str(error.value)  # torch's advice to unpickle anyway is not passed on
    with pytest.raises(ValueError, match="is not a file"):
        convert_checkpoint(tmp_path / "absent.pth", config=TINY)


def test_command_line(golden_dir, tmp_path, capsys):
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(TINY.to_diff_dict()))
    out = tmp_path / "converted"
    main(
        [
            "--checkpoint",
            str(golden_dir / "tiny_model_checkpoint.pth"),
            "--output",
            str(out),
            "--config",
            str(config_path),
        ]
    )
    assert "2 layers x 64, 4 heads" in capsys.readouterr().out
    written = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "pipeline_uniperceiver.py",
    } <= written
    main(
        [
            "--checkpoint",
            str(golden_dir / "tiny_model_checkpoint.pth"),
            "--output",
            str(tmp_path / "b"),
            "--num-attention-heads",
            "4",
        ]
    )
    assert json.loads((tmp_path / "b" / "config.json").read_text())["num_attention_heads"] == 4


def test_disagreeing_copies_of_shared_tensors(official, tmp_path):
    sd = dict(official)
    sd["token_embed.embeddings_norm.weight"] = sd["token_embed.embeddings_norm.weight"] + 1.0
    model = convert_checkpoint(save(sd, tmp_path, "norm.pth"), config=TINY)
    # The official model loads the video copy of the shared LayerNorm last: it wins.
    assert torch.equal(model.embeddings.layer_norm.weight, official["video_embed.embeddings_norm.weight"])
    sd = dict(official)
    sd["s_token_bias"], sd["token_embed.s_token_bias"] = torch.zeros(1, 64), torch.ones(1, 64)
    with pytest.raises(ValueError, match="one shared parameter"):
        convert_checkpoint(save(sd, tmp_path, "bias.pth"), config=TINY)


def test_hostile_files_are_refused_without_running_their_code(hostile_files):
    files, marker = hostile_files
    for name, path in files.items():
        with pytest.raises(ValueError, match=f"`checkpoint` '{path}'") as error:
            convert_checkpoint(path, config=TINY)
        assert "weights_only=False" not in str(error.value), name
    assert not marker.exists()


def saved(obj, path):
    torch.save(obj, path)
    return path


def deepspeed_file_without(official, key, path):
    module = to_deepspeed({k: v.float() for k, v in official.items()}, torch.zeros(1, 64))["module"]
    module.pop(key)
    return saved({"module": module}, path)


# name -> (checkpoint file (official state dict, folder) -> path, `config`, regex the ValueError must match)
BAD_CHECKPOINTS = {
    "deepspeed missing the patch bias": (
        lambda sd, tmp: deepspeed_file_without(sd, "video_embed.embeddings.bias", tmp / "ds.pt"),
        TINY,
        r"missing keys: \['embeddings.visual.patch_embedding.bias'\]",
    ),
    "deepspeed missing a size key": (
        lambda sd, tmp: deepspeed_file_without(sd, "predictor.proj.weight", tmp / "ds.pt"),
        TINY,
        r"missing keys: \['loss_prepare.proj.weight'\]",
    ),
    "non-tensor value": (lambda sd, tmp: save({**sd, "epoch": 3}, tmp), TINY, r"not tensors: \{'epoch': 'int'\}"),
    "list instead of a dict": (
        lambda sd, tmp: saved([torch.zeros(1)], tmp / "list.pth"),
        TINY,
        "holds a list, not a state dict",
    ),
    "missing file": (lambda sd, tmp: tmp / "absent.pth", TINY, "`checkpoint`.*not a file"),
    "folder as checkpoint": (lambda sd, tmp: tmp, TINY, "`checkpoint`.*not a file, nor a DeepSpeed checkpoint folder"),
    "unknown config": (lambda sd, tmp: save(sd, tmp), "huge", "`config`.*huge"),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_bad_checkpoints(official, tmp_path, case):
    make_file, config, pattern = BAD_CHECKPOINTS[case]
    with pytest.raises(ValueError, match=pattern):
        convert_checkpoint(make_file(official, tmp_path), config=config)


def test_an_output_that_is_a_file_is_refused_before_converting(golden_dir, tmp_path, monkeypatch):
    output = tmp_path / "taken"
    output.write_text("not a folder")
    monkeypatch.setattr("uniperceiver_hf.tools.convert.read_checkpoint", lambda path: pytest.fail("converted first"))
    with pytest.raises(ValueError, match="`output_dir`.*not a folder"):
        main(["--checkpoint", str(golden_dir / "tiny_model_checkpoint.pth"), "--output", str(output)])
