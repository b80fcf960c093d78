"""Prompt-tuning adapters: file round trip, refusal of a foreign base, shared frozen tensors, swapping, the
`adapter=` argument of the model and of the pipeline."""

import inspect

import pytest
import torch
from safetensors.torch import save_file
from transformers import pipeline

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor, modeling_uniperceiver
from uniperceiver_hf.adapters_uniperceiver import UniPerceiverAdapter
from uniperceiver_hf.prompt_tuning_uniperceiver import PromptTuningSettings, parameter_groups, prepare_prompt_tuning
from uniperceiver_hf.targets_uniperceiver import model_fingerprint


FROZEN = "encoder.layers.0.self_attn.in_proj.weight"


@pytest.fixture
def base(tiny_config):
    """The tiny model with residual scales at 1, so that features depend visibly on every tensor."""
    torch.manual_seed(0)
    config = UniPerceiverConfig(**{**tiny_config.to_diff_dict(), "layer_scale_init_value": 1.0})
    return UniPerceiverModel(config).eval()


def tuned_from(base, seed, **settings):
    """`prepare_prompt_tuning`, then every tuned tensor moved at random as if trained."""
    tuned = prepare_prompt_tuning(base, PromptTuningSettings(**settings)).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in tuned.parameters():
            if parameter.requires_grad:
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return tuned


def batch(config, num_targets):
    generator = torch.Generator().manual_seed(1)
    return dict(
        pixel_values=torch.randn(2, 3, config.image_size, config.image_size, generator=generator),
        target_input_ids=torch.randint(1, 1000, (num_targets, 4), generator=generator),
    )


def test_round_trip_keeps_only_the_tuned_tensors(base, tmp_path):
    tuned = tuned_from(base, 0, num_classes=3)
    adapter = UniPerceiverAdapter.from_model(tuned, model_fingerprint(base), labels=["cat", "dog", "fox"])
    groups = parameter_groups(tuned)
    assert set(adapter.tensors) == {name for name, group in groups.items() if group != "other"}
    path = tmp_path / "pets.safetensors"
    adapter.save(path)
    loaded = UniPerceiverAdapter.load(path)
    assert loaded.settings == adapter.settings == PromptTuningSettings(num_classes=3)
    assert loaded.labels == ["cat", "dog", "fox"] and loaded.base_fingerprint == model_fingerprint(base)
    assert loaded.tensors.keys() == adapter.tensors.keys()
    assert all(torch.equal(loaded.tensors[name], adapter.tensors[name]) for name in adapter.tensors)
    assert str(path) in repr(loaded)
    # The file holds a few thousand values, not the model's.
    assert sum(t.numel() for t in loaded.tensors.values()) < sum(p.numel() for p in base.parameters()) / 10
    assert UniPerceiverAdapter.from_model(tuned, base).base_fingerprint == model_fingerprint(base)


def test_applied_adapter_reproduces_the_tuned_model_and_shares_the_frozen_tensors(base):
    untouched = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    inputs = batch(base.config, 3)
    with torch.no_grad():
        base_logits = base(**inputs).logits
    tuned = tuned_from(base, 0, num_classes=3)
    adapter = UniPerceiverAdapter.from_model(tuned, model_fingerprint(base))
    adapted = adapter.apply(base)
    assert adapted is adapter.apply(base)  # built once per base
    assert adapted.get_parameter(FROZEN).data_ptr() == base.get_parameter(FROZEN).data_ptr()
    assert not any(parameter.requires_grad for parameter in adapted.parameters())
    assert not any(parameter.is_meta for parameter in adapted.parameters())
    with torch.no_grad():
        expected = tuned(**inputs).logits
        torch.testing.assert_close(adapted(**inputs).logits, expected, rtol=0, atol=0)
        torch.testing.assert_close(base(**inputs, adapter=adapter).logits, expected, rtol=0, atol=0)
        torch.testing.assert_close(base(**inputs).logits, base_logits, rtol=0, atol=0)
    assert not torch.allclose(expected, base_logits)
    assert all(torch.equal(tensor, untouched[name]) for name, tensor in base.state_dict().items())


def test_two_adapters_swap_on_one_base(base):
    first = tuned_from(base, 1, num_classes=3, share_prompt_tokens=True, layer_norms="released")
    second = tuned_from(base, 2, num_classes=5)
    adapters = [UniPerceiverAdapter.from_model(model, base) for model in (first, second)]
    reference = UniPerceiverModel(base.config)
    reference.load_state_dict(base.state_dict())
    reference.eval()
    with torch.no_grad():
        for _ in range(2):  # back and forth: each call uses its own adapter only
            for tuned, adapter in zip((first, second), adapters):
                inputs = batch(base.config, tuned.config.num_prompt_classes)
                torch.testing.assert_close(
                    base(**inputs, adapter=adapter).logits, tuned(**inputs).logits, rtol=0, atol=0
                )
                torch.testing.assert_close(base(**inputs).logits, reference(**inputs).logits, rtol=0, atol=0)
    pointers = {adapter.apply(base).get_parameter(FROZEN).data_ptr() for adapter in adapters}
    assert pointers == {base.get_parameter(FROZEN).data_ptr()}


def test_adapted_model_follows_the_base(base):
    adapter = UniPerceiverAdapter.from_model(tuned_from(base, 0), base)
    assert not adapter.apply(base).training
    base.train()
    assert adapter.apply(base).training
    base.eval()
    first = adapter.apply(base)
    base.double()  # new tensors, same fingerprint: the adapted model is rebuilt on them
    rebuilt = adapter.apply(base)
    assert rebuilt is not first and rebuilt.dtype == torch.float64
    assert rebuilt.get_parameter(FROZEN).data_ptr() == base.get_parameter(FROZEN).data_ptr()


def test_a_foreign_base_is_refused_naming_both_fingerprints(base, tiny_model, tmp_path):
    adapter = UniPerceiverAdapter.from_model(tuned_from(base, 0), base)
    path = tmp_path / "task.safetensors"
    adapter.save(path)
    with torch.no_grad():
        base.head.projection.bias.add_(0.01)  # the base changed after tuning
    message = rf"{path}.*{adapter.base_fingerprint}.*{model_fingerprint(base)}"
    with pytest.raises(ValueError, match=message):
        UniPerceiverAdapter.load(path).apply(base)
    with pytest.raises(ValueError, match="fingerprint"):
        tiny_model(**batch(tiny_model.config, 2), adapter=adapter)
    with pytest.raises(TypeError, match="UniPerceiverModel"):
        adapter.apply(torch.nn.Linear(2, 2))


def test_load_names_the_file_for_bad_files(base, tmp_path):
    with pytest.raises(ValueError, match=r"absent\.safetensors.*does not exist"):
        UniPerceiverAdapter.load(tmp_path / "absent.safetensors")
    text = tmp_path / "notes.safetensors"
    text.write_text("not a tensor file")
    with pytest.raises(ValueError, match=r"notes\.safetensors.*not a readable safetensors"):
        UniPerceiverAdapter.load(text)
    whole = tmp_path / "whole.safetensors"
    UniPerceiverAdapter.from_model(tuned_from(base, 0), base).save(whole)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(whole.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"truncated\.safetensors.*not a readable safetensors"):
        UniPerceiverAdapter.load(truncated)
    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(2)}, str(bare))
    with pytest.raises(ValueError, match=r"bare\.safetensors.*not a saved UniPerceiverAdapter"):
        UniPerceiverAdapter.load(bare)


def test_bad_adapters_are_refused(base):
    settings = PromptTuningSettings(num_classes=2)
    with pytest.raises(ValueError, match="labels.*3 entries.*2 classes"):
        UniPerceiverAdapter({"a": torch.zeros(1)}, settings, "abc", labels=["x", "y", "z"])
    with pytest.raises(ValueError, match="base_fingerprint"):
        UniPerceiverAdapter({"a": torch.zeros(1)}, settings, "")
    adapter = UniPerceiverAdapter.from_model(tuned_from(base, 0, num_classes=2), base)
    adapter.tensors["head.classifier.bias"] = torch.zeros(4)
    with pytest.raises(ValueError, match=r"wrong shape.*head\.classifier\.bias: adapter \(4,\), model \(2,\)"):
        adapter.apply(base)
    del adapter.tensors["head.classifier.bias"]
    with pytest.raises(ValueError, match=r"missing \['head\.classifier\.bias'\]"):
        adapter.apply(base)


def test_modeling_knows_adapters_only_by_duck_typing():
    assert "adapters_uniperceiver" not in inspect.getsource(modeling_uniperceiver)


def test_pipeline_call_with_an_adapter(tiny_config):
    torch.manual_seed(0)
    config = UniPerceiverConfig(
        **{
            **tiny_config.to_diff_dict(),
            "image_size": 224,
            "max_position_embeddings": 64,
            "layer_scale_init_value": 1.0,
        }
    )
    base = UniPerceiverModel(config).eval()
    tuned = tuned_from(base, 0, num_classes=3)
    adapter = UniPerceiverAdapter.from_model(tuned, base, labels=["red", "green", "blue"])
    pipe = pipeline("zero-shot-perception", model=base, processor=UniPerceiverProcessor())
    tuned_pipe = pipeline("zero-shot-perception", model=tuned, processor=UniPerceiverProcessor())
    image = torch.rand(64, 48, 3).mul(255).to(torch.uint8).numpy()
    labels = adapter.labels
    plain = pipe(image, candidate_labels=labels)
    with_adapter = pipe(image, candidate_labels=labels, adapter=adapter)
    assert with_adapter == tuned_pipe(image, candidate_labels=labels)
    assert with_adapter != plain
    assert pipe(image, candidate_labels=labels) == plain  # the next call without the adapter is the base again
