"""Target sets: batched encoding, saving, and refusing features of another model."""

import pytest
import torch

from uniperceiver_hf import UniPerceiverModel
from uniperceiver_hf.layouts_uniperceiver import pad_token_sequences
from uniperceiver_hf.targets_uniperceiver import TargetSet, model_fingerprint


@pytest.fixture
def labels():
    ids, mask = pad_token_sequences([[3, 49407], [4, 5, 6, 7, 49407], [8, 49407], [9, 10, 49407], [11, 49407]])
    return ids, mask


def test_batched_encoding_equals_one_batch(tiny_model, labels):
    ids, mask = labels
    target_set = TargetSet.encode(tiny_model, ids, mask, labels=list("abcde"), batch_size=2)
    with torch.no_grad():
        expected = tiny_model.get_features(ids, mask, is_target=True)
    torch.testing.assert_close(target_set.embeds, expected, atol=1e-6, rtol=1e-5)
    assert len(target_set) == 5 and target_set.labels == list("abcde")
    assert target_set.fingerprint == model_fingerprint(tiny_model)


def test_image_targets(tiny_model):
    images = torch.randn(3, 3, 32, 32)
    target_set = TargetSet.encode(tiny_model, pixel_values=images, batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(target_set.embeds, tiny_model.get_features(pixel_values=images, is_target=True))


def test_vocabulary_set_rows_are_id_then_eot(tiny_model):
    vocabulary = TargetSet.vocabulary(tiny_model, batch_size=8192)
    assert vocabulary.embeds.shape == (49411, 32)
    with torch.no_grad():
        row = tiny_model.get_features(torch.tensor([[269, 49407]]), is_target=True)
    torch.testing.assert_close(vocabulary.embeds[269], row[0], atol=1e-6, rtol=1e-5)


def test_save_load_and_stale_files(tiny_model, tiny_config, labels, tmp_path):
    target_set = TargetSet.encode(tiny_model, *labels, labels=list("abcde"))
    target_set.save(tmp_path / "labels.safetensors")
    loaded = TargetSet.load(tmp_path / "labels.safetensors", tiny_model)
    assert torch.equal(loaded.embeds, target_set.embeds) and loaded.labels == list("abcde")

    other = UniPerceiverModel(tiny_config).eval()
    with pytest.raises(ValueError, match="encoded by model"):
        TargetSet.load(tmp_path / "labels.safetensors", other)
    with torch.no_grad():
        tiny_model.head.projection.bias.add_(0.01)  # fine-tuned weights: the fingerprint changes
    with pytest.raises(ValueError, match="encode it again"):
        TargetSet.load(tmp_path / "labels.safetensors", tiny_model)


def saved_set(tmp_path, embeds, name="embeds", **metadata):
    """A safetensors file holding `embeds` under `name`, with `metadata`."""
    from safetensors.torch import save_file

    save_file({name: embeds}, str(tmp_path / "set.safetensors"), metadata=metadata or None)
    return tmp_path / "set.safetensors"


# name -> (call(model, tmp_path), error type, regex naming the argument)
BAD_TARGET_SET_CALLS = {
    "embeds not a tensor": (lambda m, tmp: TargetSet([[0.0, 1.0]]), TypeError, "embeds"),
    "embeds integer": (lambda m, tmp: TargetSet(torch.zeros(2, 4, dtype=torch.long)), TypeError, "embeds"),
    "embeds 1-D": (lambda m, tmp: TargetSet(torch.zeros(4)), ValueError, "embeds"),
    "embeds empty": (lambda m, tmp: TargetSet(torch.zeros(0, 4)), ValueError, "embeds"),
    "embeds NaN": (lambda m, tmp: TargetSet(torch.full((2, 4), float("nan"))), ValueError, "`embeds`.*NaN"),
    "labels a string": (lambda m, tmp: TargetSet(torch.zeros(2, 4), labels="ab"), TypeError, "labels"),
    "labels count": (lambda m, tmp: TargetSet(torch.zeros(2, 4), labels=["a"]), ValueError, "labels"),
    "batch_size zero": (
        lambda m, tmp: TargetSet.encode(m, torch.tensor([[3, 49407]]), batch_size=0),
        ValueError,
        "batch_size",
    ),
    "batch_size float": (
        lambda m, tmp: TargetSet.encode(m, torch.tensor([[3, 49407]]), batch_size=2.5),
        TypeError,
        "batch_size",
    ),
    "rows differ": (
        lambda m, tmp: TargetSet.encode(m, torch.tensor([[3, 49407]]), pixel_values=torch.zeros(2, 3, 8, 8)),
        ValueError,
        "input_ids.*pixel_values",
    ),
    "nothing to encode": (lambda m, tmp: TargetSet.encode(m), ValueError, "input_ids"),
    "load without the model": (
        lambda m, tmp: TargetSet.load(saved_set(tmp, torch.ones(2, 32))),
        ValueError,
        "`model`.*check_fingerprint=False",
    ),
    "load a missing file": (
        lambda m, tmp: TargetSet.load(tmp / "absent.safetensors", m),
        ValueError,
        "`path`.*absent",
    ),
    "load no embeds": (
        lambda m, tmp: TargetSet.load(saved_set(tmp, torch.ones(2, 32), name="weights"), m),
        ValueError,
        "`path`.*no 'embeds'",
    ),
    "load NaN embeds": (
        lambda m, tmp: TargetSet.load(saved_set(tmp, torch.full((2, 32), float("nan"))), m),
        ValueError,
        "`path`.*NaN",
    ),
    "load bad labels": (
        lambda m, tmp: TargetSet.load(saved_set(tmp, torch.ones(2, 32), labels="[unclosed"), m),
        ValueError,
        "`path`.*labels",
    ),
    "unfingerprinted set": (lambda m, tmp: TargetSet(torch.ones(2, 32)).check_model(m), ValueError, "fingerprint"),
}


@pytest.mark.parametrize("case", list(BAD_TARGET_SET_CALLS))
def test_bad_input(tiny_model, tmp_path, case):
    call, error, pattern = BAD_TARGET_SET_CALLS[case]
    with pytest.raises(error, match=pattern):
        call(tiny_model, tmp_path)


def test_hostile_files_are_refused_without_running_their_code(tiny_model, hostile_files):
    files, marker = hostile_files
    for path in files.values():
        with pytest.raises(ValueError, match=f"`path` '{path}'"):
            TargetSet.load(path, tiny_model)
    assert not marker.exists()


def test_loading_without_the_check_is_an_explicit_opt_out(tiny_model, tmp_path):
    TargetSet.encode(tiny_model, torch.tensor([[3, 49407]])).save(tmp_path / "set.safetensors")
    loaded = TargetSet.load(tmp_path / "set.safetensors", check_fingerprint=False)
    assert loaded.fingerprint == model_fingerprint(tiny_model) and len(loaded) == 1
