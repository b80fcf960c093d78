"""Builds a faiss index from the output of `uniperceiver-hf extract`, for galleries too large for a matrix product.

    uniperceiver-hf index --features OUT --output INDEX_DIR [--kind auto|exact|hnsw|ivfpq] [...]
    python -m uniperceiver_hf.tools.index ...   (the same)

The kind follows the gallery's size unless `--kind` names one (features are L2-normalised, so every kind ranks by
inner product = cosine similarity):

| gallery | kind | faiss index | defaults |
|---|---|---|---|
| up to 100,000 | `exact` | `IndexFlatIP` | every row scored; results equal a brute-force search |
| up to 5,000,000 | `hnsw` | `IndexHNSWFlat` | M 32, efConstruction 80, efSearch 256 |
| beyond | `ivfpq` | `IndexRefineFlat(IndexIVFPQ)` | 4 sqrt(N) lists (a power of 2), D/8 sub-quantisers of 8 bits, nprobe 32; the 8 k best by PQ re-ranked exactly |

`hnsw` keeps the vectors and the graph in memory (about 4 D + 8 M x 2 bytes per row: 1.5 GB for a million rows at
D = 256). `ivfpq` holds D/8 bytes of PQ code per row in memory and the exact vectors in the file, memory-mapped:
a query reads only the rows it re-ranks, so the gallery may exceed RAM. Features are read one shard at a time. INDEX_DIR gets `index.faiss`, `ids.json` and `index.json` (the model fingerprint of
the features, the kind and its parameters); `TargetSet.load(INDEX_DIR, model)`, `pipeline(...,
candidate_set=INDEX_DIR)`, `retrieval_uniperceiver.search` and `uniperceiver-hf serve` read it.
"""

import argparse
import json
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..galleries_uniperceiver import IDS_FILE, INDEX_FILE, INFO_FILE
from .extract import iter_shards, read_manifest


DESCRIPTION = __doc__.split("\n\n")[0]
KINDS = ("exact", "hnsw", "ivfpq")
EXACT_UP_TO = 100_000
HNSW_UP_TO = 5_000_000
DEFAULTS = {
    "hnsw_m": 32,
    "ef_construction": 80,
    "ef_search": 256,
    "nprobe": 32,
    "rerank_factor": 8,
    "train_size": 100_000,
}


def choose_kind(count: int) -> str:
    """The default kind for a gallery of `count` rows (see the module docstring's table)."""
    return "exact" if count <= EXACT_UP_TO else "hnsw" if count <= HNSW_UP_TO else "ivfpq"


def ivf_lists(count: int) -> int:
    """4 sqrt(N) inverted lists, rounded to a power of 2, at most N / 39 (faiss wants >= 39 training rows each)."""
    lists = 2 ** round(math.log2(max(4 * math.sqrt(count), 1)))
    return max(1, min(lists, count // 39))


def empty_index(
    kind: str, dim: int, count: int, hnsw_m: int, ef_construction: int, ef_search: int, nprobe: int, rerank_factor: int
):
    """`(index, search parameters)` of one kind, untrained and empty."""
    import faiss

    if kind == "exact":
        return faiss.IndexFlatIP(dim), {}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        return index, {"efSearch": ef_search, "M": hnsw_m, "efConstruction": ef_construction}
    if count < 256:
        raise ValueError(f"`ivfpq` trains 256 centroids per sub-quantiser and needs >= 256 rows, got {count}.")
    if dim % 8:
        raise ValueError(f"`ivfpq` splits vectors into D/8 sub-vectors; D = {dim} is not a multiple of 8.")
    lists = ivf_lists(count)
    coarse = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, lists, dim // 8, 8, faiss.METRIC_INNER_PRODUCT)
    search = {"nprobe": min(nprobe, lists), "k_factor_rf": rerank_factor, "nlist": lists, "pq_m": dim // 8}
    return faiss.IndexRefineFlat(coarse), search


def training_sample(chunks: Iterable[np.ndarray], count: int, size: int) -> np.ndarray:
    """About `size` rows spread evenly over the gallery (every `count // size`-th row), read chunk by chunk."""
    stride, seen, picked = max(1, count // size), 0, []
    for chunk in chunks:
        offsets = np.arange((-seen) % stride, len(chunk), stride)
        picked.append(chunk[offsets])
        seen += len(chunk)
    return np.concatenate(picked)[:size]


def build_index(
    chunks,
    dim: int,
    count: int,
    kind: str = "auto",
    hnsw_m: int = DEFAULTS["hnsw_m"],
    ef_construction: int = DEFAULTS["ef_construction"],
    ef_search: int = DEFAULTS["ef_search"],
    nprobe: int = DEFAULTS["nprobe"],
    rerank_factor: int = DEFAULTS["rerank_factor"],
    train_size: int = DEFAULTS["train_size"],
):
    """`(index, info)` over the float32 `[n, D]` arrays that `chunks()` yields (a function, called once more to
    draw the training sample of `ivfpq`), `count` rows in all."""
    if kind == "auto":
        kind = choose_kind(count)
    if kind not in KINDS:
        raise ValueError(f"`kind` must be 'auto' or one of {KINDS}, got {kind!r}.")
    index, search = empty_index(kind, dim, count, hnsw_m, ef_construction, ef_search, nprobe, rerank_factor)
    start = time.perf_counter()
    if not index.is_trained:
        index.train(training_sample(chunks(), count, max(train_size, 39 * search["nlist"])))
    for chunk in chunks():
        index.add(np.ascontiguousarray(chunk, dtype=np.float32))
    if index.ntotal != count:
        raise ValueError(f"The features hold {index.ntotal} rows, not the {count} their manifest counts.")
    info = {"kind": kind, "search": search, "count": count, "dim": dim, "build_seconds": time.perf_counter() - start}
    return index, info


def build_index_folder(features: str | os.PathLike, output: str | os.PathLike, kind: str = "auto", **parameters):
    """Builds the index of an `extract` output folder into `output` (see the module docstring)."""
    import faiss

    manifest = read_manifest(features)
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ValueError(f"`output` {str(output)!r} exists and is not an empty folder; nothing was written.")
    ids: list = []

    def chunks():
        ids.clear()
        for shard_ids, shard_features in iter_shards(features):
            ids.extend(shard_ids)
            yield shard_features.float().numpy()

    index, info = build_index(chunks, manifest["dim"], manifest["num_rows"], kind, **parameters)
    output.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(output / (INDEX_FILE + ".tmp")))
    os.replace(output / (INDEX_FILE + ".tmp"), output / INDEX_FILE)
    (output / IDS_FILE).write_text(json.dumps(ids))
    source = {key: manifest[key] for key in ("fingerprint", "model", "column", "modality", "normalisation")}
    # Written last: a folder with index.json is complete.
    (output / INFO_FILE).write_text(json.dumps({**source, **info, "features": str(features)}, indent=2))
    return output


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--features", required=True, help="a folder written by `uniperceiver-hf extract`")
    parser.add_argument("--output", required=True, help="the index folder to write")
    parser.add_argument("--kind", choices=("auto", *KINDS), default="auto", help="default: by gallery size")
    parser.add_argument("--hnsw-m", type=int, default=DEFAULTS["hnsw_m"], help="HNSW neighbours per node")
    parser.add_argument("--ef-construction", type=int, default=DEFAULTS["ef_construction"])
    parser.add_argument("--ef-search", type=int, default=DEFAULTS["ef_search"], help="HNSW search depth")
    parser.add_argument("--nprobe", type=int, default=DEFAULTS["nprobe"], help="IVF lists visited per query")
    parser.add_argument(
        "--rerank-factor", type=int, default=DEFAULTS["rerank_factor"], help="IVF-PQ: k x this re-ranked exactly"
    )
    parser.add_argument("--train-size", type=int, default=DEFAULTS["train_size"], help="IVF-PQ training rows")
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers) -> None:
    """Registers `uniperceiver-hf index`."""
    add_arguments(subparsers.add_parser("index", help=DESCRIPTION, description=DESCRIPTION))


def run(args: argparse.Namespace) -> Path:
    parameters = {name: getattr(args, name) for name in DEFAULTS}
    output = build_index_folder(args.features, args.output, args.kind, **parameters)
    info = json.loads((output / INFO_FILE).read_text())
    print(f"Wrote {output}: {info['kind']} index of {info['count']} rows in {info['build_seconds']:.1f} s")
    return output


def main(argv: list[str] | None = None) -> Path:
    """`uniperceiver-hf index` on its own."""
    parser = add_arguments(argparse.ArgumentParser(prog="uniperceiver-hf index", description=DESCRIPTION))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()


__all__ = ["build_index", "build_index_folder", "choose_kind"]
