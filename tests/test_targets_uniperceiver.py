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


def test_bad_arguments(tiny_model, labels):
    with pytest.raises(ValueError, match="labels"):
        TargetSet.encode(tiny_model, *labels, labels=["only one"])
    with pytest.raises(ValueError, match="batch_size"):
        TargetSet.encode(tiny_model, *labels, batch_size=0)
    with pytest.raises(ValueError, match="input_ids"):
        TargetSet.encode(tiny_model)
    with pytest.raises(ValueError, match="embeds"):
        TargetSet(torch.zeros(0, 4))
