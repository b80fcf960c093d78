"""`uniperceiver-hf index` and galleries in the API: index search equals brute force, the pipeline and retrieval
read index folders, and an index of another model is refused."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import pipeline

from uniperceiver_hf import TargetSet
from uniperceiver_hf.galleries_uniperceiver import GalleryIndex
from uniperceiver_hf.retrieval_uniperceiver import recall_at_k, search
from uniperceiver_hf.tools import cli
from uniperceiver_hf.tools.extract import extract, load_features, load_model
from uniperceiver_hf.tools.index import build_index, build_index_folder, choose_kind


MODEL = str(Path(__file__).resolve().parents[2] / "models" / "uniperceiver-tiny-emoji")
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
THINGS = ["apple", "car", "dog", "house", "star", "tree", "fish", "boat", "cat", "ball"]


@pytest.fixture(scope="module")
def caption_features(tmp_path_factory) -> Path:
    """`extract` output of 60 captions ("a red apple", ...) in 4 shards, with string ids."""
    import datasets

    root = tmp_path_factory.mktemp("index_data")
    captions = [f"a {colour} {thing}" for colour in COLOURS for thing in THINGS]
    rows = {"text": captions, "key": [f"c{i:02d}" for i in range(len(captions))]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(root / "captions"))
    return extract(MODEL, str(root / "captions"), "text", root / "features", id_column="key", shard_size=16)


@pytest.fixture(scope="module")
def exact_index(caption_features, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("index") / "exact"
    return cli.main(["index", "--features", str(caption_features), "--output", str(output)])


def query_features(model, processor, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return model.get_features(**processor(text=texts, return_tensors="pt"))


def test_the_kind_follows_the_gallery_size():
    assert [choose_kind(n) for n in (60, 100_000, 100_001, 5_000_000, 5_000_001)] == [
        "exact", "exact", "hnsw", "hnsw", "ivfpq"
    ]  # fmt: skip


def test_index_search_equals_brute_force(caption_features, exact_index, tmp_path):
    model, processor = load_model(MODEL)
    ids, features = load_features(caption_features)
    queries = torch.cat([query_features(model, processor, ["a red car", "a blue dog", "green"]), features[:7]])
    expected_scores, expected_rows = (queries @ features.T).topk(10)
    info = json.loads((exact_index / "index.json").read_text())
    assert info["kind"] == "exact" and info["count"] == 60 and info["modality"] == "text"
    gallery = TargetSet.load(exact_index, model)
    assert gallery.index is not None and gallery.labels == ids and len(gallery) == 60
    scores, rows = gallery.search(queries, 10)
    assert torch.equal(rows, expected_rows)
    torch.testing.assert_close(scores, expected_scores, atol=1e-5, rtol=0)

    hnsw = build_index_folder(caption_features, tmp_path / "hnsw", kind="hnsw")
    scores, rows = GalleryIndex.load(hnsw).search(queries, 10)
    assert torch.equal(rows, expected_rows)  # 60 rows, efSearch 256: the graph search visits them all
    torch.testing.assert_close(scores, expected_scores, atol=1e-5, rtol=0)


def test_ivfpq_approximates_the_exact_ranking(tmp_path):
    """On 4,000 clustered vectors (64 clusters, width 64), IVF-PQ with exact re-ranking finds the true top 10."""
    generator = np.random.default_rng(0)
    centres = generator.standard_normal((64, 64)).astype(np.float32)
    vectors = centres[generator.integers(0, 64, 4000)] + 0.3 * generator.standard_normal((4000, 64))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    index, info = build_index(lambda: iter(np.array_split(vectors, 5)), 64, 4000, kind="ivfpq", train_size=4000)
    assert info["kind"] == "ivfpq" and info["search"]["pq_m"] == 8 and index.ntotal == 4000
    gallery = GalleryIndex(index, list(range(4000)), {"fingerprint": "x", **info})
    queries = torch.from_numpy(vectors[:200])
    _, rows = gallery.search(queries, 10)
    _, exact = (queries @ torch.from_numpy(vectors).T).topk(10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows.tolist(), exact.tolist())])
    assert overlap >= 0.95, overlap
    with pytest.raises(ValueError, match="needs >= 256 rows, got 100"):
        build_index(lambda: iter([vectors[:100]]), 64, 100, kind="ivfpq")


def test_the_pipeline_retrieval_and_recall_read_an_index_folder(caption_features, exact_index):
    model, processor = load_model(MODEL)
    ids, features = load_features(caption_features)
    pipe = pipeline("zero-shot-perception", model=MODEL)
    texts = ["a red car", "a purple tree"]
    results = pipe(texts, candidate_set=str(exact_index), top_k=5)
    expected_scores, expected_rows = (query_features(model, processor, texts) @ features.T).topk(5)
    for result, scores, rows in zip(results, expected_scores.tolist(), expected_rows.tolist()):
        assert [r["label"] for r in result] == [ids[i] for i in rows]
        np.testing.assert_allclose([r["score"] for r in result], scores, atol=1e-5)
    assert len(pipe("a dog", candidate_set=exact_index)) == 10  # the default top_k of an index

    gallery = TargetSet.load(exact_index, model)
    queries = features[:12]
    scores, rows = search(queries, gallery, top_k=5, chunk_size=5)
    torch.testing.assert_close(scores, (queries @ features.T).topk(5).values, atol=1e-5, rtol=0)
    ranked_ids = [[gallery.labels[i] for i in row] for row in rows.tolist()]
    assert recall_at_k(ranked_ids, [{ids[q]} for q in range(12)], ks=(1, 5)) == {"recall@1": 1.0, "recall@5": 1.0}


def test_an_index_of_another_model_is_refused(caption_features, exact_index, tiny_model, tmp_path):
    with pytest.raises(ValueError, match="encoded by model [0-9a-f]{16}, not by the given model"):
        TargetSet.load(exact_index, tiny_model)
    tiny_model.save_pretrained(tmp_path / "tiny")
    pipe = pipeline("zero-shot-perception", model=str(tmp_path / "tiny"))
    with pytest.raises(ValueError, match="encoded by model"):
        pipe("a dog", candidate_set=str(exact_index))
    with pytest.raises(ValueError, match="is not an index folder"):
        pipe("a dog", candidate_set=str(tmp_path))
    with pytest.raises(ValueError, match="exists and is not an empty folder; nothing was written"):
        build_index_folder(caption_features, exact_index)
    with pytest.raises(ValueError, match="nothing to save"):
        TargetSet.load(exact_index, check_fingerprint=False).save(tmp_path / "set.safetensors")
