"""Sequence layouts as tensors: padding, the caption training layout (paper appendix B), the vocabulary set."""

import pytest
import torch

from uniperceiver_hf.layouts_uniperceiver import caption_training_inputs, pad_token_sequences, vocabulary_target_ids


def test_pad_token_sequences():
    ids, mask = pad_token_sequences([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, _ = pad_token_sequences([[1], [2, 3]], pad_id=-100)
    assert ids.tolist() == [[1, -100], [2, 3]]
    for bad in ([], [[1], []]):
        with pytest.raises(ValueError, match="sequences"):
            pad_token_sequences(bad)


def test_caption_training_layout():
    layout = caption_training_inputs([[11, 12, 49407], [13, 49407]], spe_token_id=49410)
    assert layout["input_ids"].tolist() == [[11, 12, 49407, 49410, 49410, 49410], [13, 49407, 0, 49410, 49410, 0]]
    assert layout["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2]] * 2
    # Rows are queries, columns keys: words are causal, spe_i sees the words before i and itself only.
    assert layout["attention_mask"][0].tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [1, 0, 0, 0, 1, 0],
        [1, 1, 0, 0, 0, 1],
    ]
    # Padded keys (the third word and the third <SPE> of the short caption) are never visible.
    assert layout["attention_mask"][1][:, [2, 5]].sum() == 0
    assert layout["feature_index"].tolist() == [[False] * 3 + [True] * 3, [False] * 3 + [True, True, False]]
    assert layout["labels"].tolist() == [11, 12, 49407, 13, 49407]


def test_vocabulary_target_ids():
    ids = vocabulary_target_ids(5, eos_token_id=4)
    assert ids.tolist() == [[0, 4], [1, 4], [2, 4], [3, 4], [4, 4]] and ids.dtype == torch.long
