"""Retrieval: top-k search and recall@K in both directions, on hand-made features."""

import pytest
import torch
from torch.nn import functional as F

from uniperceiver_hf.retrieval_uniperceiver import image_text_recall, recall_at_k, search


def test_search_ranks_by_cosine_in_chunks():
    gallery = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    queries = F.normalize(torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.9]]), dim=-1)
    scores, indices = search(queries, gallery, top_k=2, chunk_size=2)
    assert indices.tolist() == [[0, 2], [1, 2], [2, 0]]
    torch.testing.assert_close(scores, (queries @ gallery.T).topk(2).values)


def test_image_text_recall():
    images = torch.eye(3)
    # Captions 0, 1 belong to image 0; 2, 3 to image 1; 4, 5 to image 2. Caption 5 looks like image 0.
    texts = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1.0, 0], [0, 0.8, 0.2], [0.1, 0, 0.9], [0.95, 0, 0.05]])
    recall = image_text_recall(images, F.normalize(texts, dim=-1), [0, 0, 1, 1, 2, 2], ks=(1, 2))
    # i2t: every image's best caption is its own (image 2's best is caption 4).
    assert recall["i2t_recall@1"] == 1.0 and recall["i2t_recall@2"] == 1.0
    # t2i: caption 5 ranks image 0 first and image 2 second.
    assert recall["t2i_recall@1"] == pytest.approx(5 / 6) and recall["t2i_recall@2"] == 1.0
    assert recall["mean_recall"] == pytest.approx((1 + 1 + 5 / 6 + 1) / 4)


# name -> (call, error type, regex naming the argument)
BAD_RETRIEVAL_CALLS = {
    "top_k zero": (lambda: search(torch.zeros(2, 3), torch.zeros(4, 3), top_k=0), ValueError, "top_k"),
    "top_k beyond the gallery": (
        lambda: search(torch.zeros(2, 3), torch.zeros(4, 3), top_k=5),
        ValueError,
        "top_k.*gallery",
    ),
    "top_k float": (lambda: search(torch.zeros(2, 3), torch.zeros(4, 3), top_k=1.5), TypeError, "top_k"),
    "chunk_size zero": (
        lambda: search(torch.zeros(2, 3), torch.zeros(4, 3), top_k=1, chunk_size=0),
        ValueError,
        "chunk_size",
    ),
    "empty gallery": (lambda: search(torch.zeros(2, 3), torch.zeros(0, 3), top_k=1), ValueError, "top_k"),
    "widths differ": (lambda: search(torch.zeros(2, 3), torch.zeros(4, 2)), ValueError, "same D"),
    "ks beyond the ranking": (
        lambda: recall_at_k(torch.zeros(2, 3, dtype=torch.long), [{0}, {1}], ks=(5,)),
        ValueError,
        "ks",
    ),
    "ks empty": (lambda: recall_at_k(torch.zeros(2, 3, dtype=torch.long), [{0}, {1}], ks=()), ValueError, "ks"),
    "ks zero": (lambda: recall_at_k(torch.zeros(2, 3, dtype=torch.long), [{0}, {1}], ks=(0, 1)), ValueError, "ks"),
    "positives count": (lambda: recall_at_k(torch.zeros(2, 3, dtype=torch.long), [{0}]), ValueError, "positives"),
    "ground truth count": (lambda: image_text_recall(torch.eye(2), torch.eye(2), [0]), ValueError, "text_to_image"),
    "ground truth beyond the gallery": (
        lambda: image_text_recall(torch.eye(2), torch.eye(2), [0, 2]),
        ValueError,
        r"text_to_image.*\[0, 2\).*\[2\]",
    ),
    "ground truth negative": (
        lambda: image_text_recall(torch.eye(2), torch.eye(2), [-1, 0]),
        ValueError,
        "text_to_image",
    ),
    "ground truth not integers": (
        lambda: image_text_recall(torch.eye(2), torch.eye(2), [0.0, 1.0]),
        ValueError,
        "text_to_image",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RETRIEVAL_CALLS))
def test_bad_input(case):
    call, error, pattern = BAD_RETRIEVAL_CALLS[case]
    with pytest.raises(error, match=pattern):
        call()
