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


def test_bad_arguments():
    with pytest.raises(ValueError, match="top_k"):
        search(torch.zeros(2, 3), torch.zeros(4, 3), top_k=5)
    with pytest.raises(ValueError, match="same D"):
        search(torch.zeros(2, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="ks"):
        recall_at_k(torch.zeros(2, 3, dtype=torch.long), [{0}, {1}], ks=(5,))
    with pytest.raises(ValueError, match="text_to_image"):
        image_text_recall(torch.eye(2), torch.eye(2), [0])
