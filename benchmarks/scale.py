"""Dataset scale in one run: extraction throughput (1 process, torchrun with 2, Ray with 2 actors), the cost of a
resume after `kill -9`, faiss indexes over a gallery of a million vectors, and the search service under load.

    python benchmarks/scale.py [--model models/uniperceiver-tiny-emoji] [--corpus data/corpus/emoji]
        [--items 2000] [--memory-items 20000] [--gallery-size 1000000] [--queries 1000] [--kinds hnsw ivfpq]
        [--skip-extraction] [--skip-gallery]

Extraction encodes the first `--items` training images of the corpus (`examples/data/build_corpus.py`), every
process with one thread (`OMP_NUM_THREADS=1`), so that 2 processes measure scaling rather than thread contention;
wall times include starting the processes and loading the model. The gallery is the corpus's real image features
replicated with noise: each of the split's features plus Gaussian noise (sigma 0.02 per dimension, about 0.3 in
norm, then re-normalised) until `--gallery-size` rows; the queries are noisy copies of the test split's features.
The memory run extracts `--memory-items` images (the split's, repeated) in one process and samples its resident
memory: the growth from the first shard to the peak must stay small (issue 22: <= 200 MB over 20,000 images), as
one shard at a time is held.
Recall@10 of an approximate index is the overlap of its top 10 with the exact top 10. The service answers 200 text
queries, 8 at a time, over the exact index of the corpus's own features.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import torch


ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def extraction_command(model, dataset, output, *extra):
    return [
        "-m", "uniperceiver_hf.tools.extract", "--model", model, "--dataset", str(dataset), "--column", "image",
        "--output", str(output), "--shard-size", "100", "--batch-size", "50", "--no-progress", *extra,
    ]  # fmt: skip


def timed(arguments) -> float:
    start = time.perf_counter()
    subprocess.run(arguments, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def extraction(args, work: Path) -> list[tuple[str, str]]:
    import datasets

    subset = work / "subset"
    split = datasets.load_from_disk(args.corpus)["train"]
    split.select(range(min(args.items, len(split)))).save_to_disk(str(subset))
    count = min(args.items, len(split))
    rows = []
    one = timed([sys.executable, *extraction_command(args.model, subset, work / "one")])
    rows.append(("extraction, 1 process", f"{count / one:.0f} items/s (1.00x)"))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "0"]
    two = timed([*torchrun, *extraction_command(args.model, subset, work / "two")])
    rows.append(("extraction, torchrun 2 processes", f"{count / two:.0f} items/s ({one / two:.2f}x)"))
    ray = timed([sys.executable, *extraction_command(args.model, subset, work / "ray", "--engine", "ray")])
    rows.append(("extraction, Ray 2 actors (local Ray started)", f"{count / ray:.0f} items/s ({one / ray:.2f}x)"))

    # Resume: kill -9 once half the shards are written, then run the same command again.
    output, half = work / "resumed", (count // 100) // 2
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *extraction_command(args.model, subset, output)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while len(list(output.glob("shard-*.safetensors"))) < half and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = time.perf_counter() - start + timed([sys.executable, *extraction_command(args.model, subset, output)])
    rows.append(("kill -9 at half, then resume: total time", f"{resumed / one:.2f}x the uninterrupted run"))
    return rows


def extraction_memory(args, work: Path) -> list[tuple[str, str]]:
    """Resident memory of one extraction process over `--memory-items` images (the split's images repeated to that
    many rows), sampled every 50 ms: after its first shard and its peak to the end."""
    import datasets

    split = datasets.load_from_disk(args.corpus)["train"]
    repeats = -(-args.memory_items // len(split))
    rows = datasets.concatenate_datasets([split] * repeats).select(range(args.memory_items))
    rows.save_to_disk(str(work / "memory_subset"))
    output = work / "memory"
    command = [sys.executable, *extraction_command(args.model, work / "memory_subset", output)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched, first, peak = psutil.Process(process.pid), None, 0.0
    while process.poll() is None:
        try:
            rss = watched.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            break
        if first is None and any(output.glob("shard-*.safetensors")):
            first = rss
        peak = max(peak, rss) if first is not None else peak
        time.sleep(0.05)
    if process.returncode != 0 or first is None:
        raise RuntimeError(f"the memory run failed (exit status {process.returncode})")
    return [
        (
            f"extraction memory, {args.memory_items:,} images in one process",
            f"RSS {first:.0f} MB after the first shard, peak {peak:.0f} MB after it (+{peak - first:.0f} MB)",
        )
    ]


def gallery(args, work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gallery [N, D], queries [Q, D], the corpus features) as float32, L2-normalised."""
    from uniperceiver_hf.tools.extract import extract, load_features

    features = {}
    for split in ("train", "test"):
        out = extract(args.model, args.corpus, "image", work / f"corpus_{split}", split=split, progress=False)
        features[split] = load_features(out)[1].numpy()
    generator = np.random.default_rng(0)

    def noisy(base: np.ndarray, count: int) -> np.ndarray:
        rows = base[np.arange(count) % len(base)] + 0.02 * generator.standard_normal((count, base.shape[1]))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    return noisy(features["train"], args.gallery_size), noisy(features["test"], args.queries), features["train"]


def indexes(args, gallery_rows: np.ndarray, queries: np.ndarray) -> list[tuple[str, str]]:
    from uniperceiver_hf.galleries_uniperceiver import GalleryIndex
    from uniperceiver_hf.tools.index import build_index

    rows, process = [], psutil.Process()
    count, dim = gallery_rows.shape
    chunks = lambda: iter(np.array_split(gallery_rows, max(1, count // 100_000)))  # noqa: E731
    results = {}
    for kind in ("exact", *args.kinds):
        before = process.memory_info().rss
        index, info = build_index(chunks, dim, count, kind=kind)
        grown = (process.memory_info().rss - before) / 2**20
        gallery = GalleryIndex(index, list(range(count)), {"fingerprint": "", **info})
        gallery.search(torch.from_numpy(queries[:10]), 10)  # warm-up
        start = time.perf_counter()
        _, found = gallery.search(torch.from_numpy(queries), 10)
        qps = len(queries) / (time.perf_counter() - start)
        results[kind] = (found.numpy(), qps)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.numpy(), results["exact"][0])])
        speed = qps / results["exact"][1]
        rows.append(
            (
                f"{kind} index of {count:,} x {dim}",
                f"build {info['build_seconds']:.0f} s, +{grown:.0f} MB, {qps:.0f} queries/s ({speed:.1f}x exact), "
                f"recall@10 {recall:.3f}",
            )
        )
        del index, gallery
    return rows


def service_load(args, work: Path, corpus_features: np.ndarray) -> list[tuple[str, str]]:
    """200 text queries, 8 at a time, against the exact index of the corpus's image features."""
    from uniperceiver_hf.tools.index import build_index_folder
    from uniperceiver_hf.tools.serve import SearchService, make_server, search_service

    index_dir = build_index_folder(work / "corpus_train", work / "corpus_index", kind="exact")
    server = make_server(SearchService(index_dir, args.model), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    words = ["dog", "cat", "car", "red apple", "smiling face", "tree", "star", "house"]
    process, latencies, memory = psutil.Process(), [], {}

    def query(i: int) -> None:
        start = time.perf_counter()
        search_service(url, text=f"a {words[i % len(words)]} number {i}", top_k=10)
        latencies.append(time.perf_counter() - start)
        if len(latencies) in (20, 200):
            memory[len(latencies)] = process.memory_info().rss / 2**20

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(query, range(200)))
    elapsed = time.perf_counter() - start
    server.shutdown()
    p50, p95 = statistics.quantiles(latencies, n=20)[9], statistics.quantiles(latencies, n=20)[18]
    return [
        (
            "search service, 200 text queries 8 at a time",
            f"{200 / elapsed:.1f} requests/s, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, RSS "
            f"{memory.get(20, 0):.0f} MB after 20, {memory.get(200, 0):.0f} MB after 200",
        )
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "uniperceiver-tiny-emoji"))
    parser.add_argument("--corpus", default=str(ROOT / "data" / "corpus" / "emoji"))
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--gallery-size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", nargs="*", default=["hnsw", "ivfpq"], choices=["hnsw", "ivfpq"])
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--memory-items", type=int, default=20_000, help="images of the memory run (0: skip it)")
    parser.add_argument("--skip-gallery", action="store_true", help="no index, no service")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="scale_benchmark_"))
    try:
        rows = [] if args.skip_extraction else extraction(args, work)
        rows += extraction_memory(args, work) if args.memory_items else []
        if not args.skip_gallery:
            gallery_rows, queries, corpus_features = gallery(args, work)
            rows += indexes(args, gallery_rows, queries)
            del gallery_rows
            rows += service_load(args, work, corpus_features)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(json.dumps(dict(rows)))


if __name__ == "__main__":
    main()
