"""Losses: label smoothing, soft targets and in-batch retrieval against hand-computed values; vocabulary features;
retrieval with every process's features (two processes)."""

import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from uniperceiver_hf.layouts_uniperceiver import vocabulary_target_ids
from uniperceiver_hf.losses_uniperceiver import retrieval_loss, similarity_cross_entropy, vocabulary_embeds


TESTS = Path(__file__).resolve().parent


def _log_softmax_row(row):
    total = sum(math.exp(x) for x in row)
    return [x - math.log(total) for x in row]


def test_label_smoothing_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    labels = torch.tensor([0, 2])
    expected = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_p = _log_softmax_row(row)
        # (1 - e) * NLL + e * mean(-log p): the original's LabelSmoothingCrossEntropy.
        expected.append(0.9 * -log_p[label] + 0.1 * -sum(log_p) / 3)
    assert similarity_cross_entropy(logits, labels, 0.1).item() == pytest.approx(sum(expected) / 2, abs=1e-6)
    plain = sum(-_log_softmax_row(r)[label] for r, label in zip(logits.tolist(), labels.tolist())) / 2
    assert similarity_cross_entropy(logits, labels).item() == pytest.approx(plain, abs=1e-6)


def test_soft_targets_and_ignored_rows():
    logits = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    soft = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    expected = (
        sum(
            -sum(p * lp for p, lp in zip(target, _log_softmax_row(row)))
            for row, target in zip(logits.tolist(), soft.tolist())
        )
        / 2
    )
    assert similarity_cross_entropy(logits, soft).item() == pytest.approx(expected, abs=1e-6)
    only_first = similarity_cross_entropy(logits, torch.tensor([0, -100]))
    assert only_first.item() == pytest.approx(-_log_softmax_row([1.0, 0.0])[0], abs=1e-6)


def test_nothing_to_score_gives_a_connected_zero():
    logits = torch.zeros(0, 5, requires_grad=True)
    loss = similarity_cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None
    all_ignored = torch.randn(2, 3, requires_grad=True)
    assert similarity_cross_entropy(all_ignored, torch.tensor([-100, -100])).item() == 0.0


def test_retrieval_loss_is_both_directions_over_the_diagonal():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.5, 2.0, 1.0], [0.0, 0.0, 1.0]])
    i2t = sum(-_log_softmax_row(row)[i] for i, row in enumerate(logits.tolist())) / 3
    t2i = sum(-_log_softmax_row(row)[i] for i, row in enumerate(logits.T.tolist())) / 3
    assert retrieval_loss(logits).item() == pytest.approx(i2t + t2i, abs=1e-6)
    smoothed = retrieval_loss(logits, 0.1).item()
    by_hand = 0.0
    for matrix in (logits.tolist(), logits.T.tolist()):
        for i, row in enumerate(matrix):
            log_p = _log_softmax_row(row)
            by_hand += (0.9 * -log_p[i] + 0.1 * -sum(log_p) / 3) / 3
    assert smoothed == pytest.approx(by_hand, abs=1e-6)


@pytest.mark.parametrize(
    "logits, labels, message",
    [
        (torch.zeros(2, 3), torch.tensor([0]), "one index per logits row"),
        (torch.zeros(2, 3), torch.zeros(2, 2), "logits' shape"),
    ],
)
def test_bad_labels_are_named(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        similarity_cross_entropy(logits, labels)


def test_retrieval_needs_square_logits():
    with pytest.raises(ValueError, match=r"square \[B, B\]"):
        retrieval_loss(torch.zeros(2, 3))


def test_vocabulary_embeds_is_every_id_as_a_target(tiny_model):
    features = vocabulary_embeds(tiny_model)
    assert features.shape == (tiny_model.config.vocab_size, tiny_model.config.projection_dim)
    ids = vocabulary_target_ids(tiny_model.config.vocab_size)[[0, 269, 49410]]
    expected = tiny_model.get_features(input_ids=ids, attention_mask=torch.ones_like(ids), is_target=True)
    torch.testing.assert_close(features[[0, 269, 49410]], expected, atol=1e-5, rtol=1e-5)


def test_gathered_retrieval_in_two_processes_equals_one_process_with_the_whole_batch(tmp_path):
    """torchrun with gloo on CPU: each of 2 ranks scores its 3 examples against all 6 (`gather_features`); the mean of
    their losses and their averaged gradients equal one process's loss and gradients over the 6 examples."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [torchrun, "--nproc_per_node=2", f"--master_port={port}", str(TESTS / "distributed_gather_script.py"),
               str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["logits_shape"] == (3, 6)  # B x (W * B) pairs
    torch.testing.assert_close((ranks[0]["loss"] + ranks[1]["loss"]) / 2, ranks[0]["whole_loss"], atol=1e-5, rtol=0)
    whole = ranks[0]["whole_gradients"]
    for rank in ranks:
        assert rank["gradients"].keys() == whole.keys()
        for name, gradient in rank["gradients"].items():
            torch.testing.assert_close(gradient, whole[name], atol=1e-5, rtol=1e-4, msg=name)
