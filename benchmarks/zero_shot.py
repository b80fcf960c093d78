"""Zero-shot serving costs of Uni-Perceiver on CPU: label caching, cached caption decoding, retrieval latency.

Uni-Perceiver answers every task by comparing an input's `<SPE>` feature with the features of candidate targets,
so in serving the candidates (label sets, the vocabulary, a caption gallery) are encoded once and reused. This
benchmark checks that the reuse actually pays off, at a TINY size (2 layers x 64, 4 heads) and at BASE size
(12 x 768, 12 heads, FFN 3072), with random weights, fp32, eval mode, under `torch.inference_mode()`:

1. Candidate-label caching in `pipeline("zero-shot-perception")`, with 1000 label strings and one uint8 image:
   the call that encodes the labels (cache cleared before it), the warm call with the same labels (cached), and
   the image alone (the image processor plus `model.get_features`), which is what a warm call cannot avoid.
   Target: warm <= 1.1x the image alone. The warm call's extra work is broken down (model fingerprint, the cache
   key built from the label texts, postprocessing of 1000 candidates, the rest) and, where the target is
   missed, profiled with cProfile.
2. Captioning one image, beam 2, exactly 20 steps (a frozen beam continues with EOT): (a) the key/value-cached
   decoder `UniPerceiverCaptioner.generate(use_cache=True)`, (b) full recomputation (`use_cache=False`), and
   (c) the original implementation's cache, rebuilt here from the model's public modules: it keeps every layer's
   INPUT hidden states and at each step re-projects the whole history through that layer's `layer_norm1` and
   the key/value rows of `self_attn.in_proj`. (c) must produce the same tokens as (a) (asserted on the tiny
   model). Target: (a) at least 6x faster than (b) at base size. The vocabulary target set (49,411 entries) is
   encoded once beforehand; that one-off time is reported on its own line. Then 16 distinct images are captioned
   in batches of 8 and one at a time (images/s side by side).
3. Retrieval over a gallery of 1000 generated ~10-word captions: the gallery encode (`TargetSet.encode`, batch
   size 256) and the latency of one image query (`get_features` + `search(top_k=10)`).

Every measurement is warmed up once, then timed round after round with the contenders of a section interleaved,
so that machine noise falls on all of them alike; medians are reported. At base size the long measurements
(the label-encoding call, full recomputation, the gallery encode) get at most 3 rounds.

    python benchmarks/zero_shot.py [--runs N] [--sizes tiny,base] [--sections pipeline,captioning,retrieval]
                                   [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import itertools
import pstats
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import transformers
from torch.nn import functional as F
from transformers import pipeline

from uniperceiver_hf import (
    TargetSet,
    UniPerceiverCaptioner,
    UniPerceiverConfig,
    UniPerceiverModel,
    UniPerceiverProcessor,
)
from uniperceiver_hf.pipeline_uniperceiver import _Candidates
from uniperceiver_hf.retrieval_uniperceiver import search
from uniperceiver_hf.targets_uniperceiver import model_fingerprint


SIZES = {
    "tiny": lambda: UniPerceiverConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256
    ),
    "base": lambda: UniPerceiverConfig.from_preset("base"),
}
LONG_RUNS_AT_BASE = 3  # rounds of the long measurements at base size
WARM_TARGET = 1.1  # warm pipeline call / image alone
CACHE_SPEEDUP_TARGET = 6.0  # cached decoding vs full recomputation, at base size

ADJECTIVES = ("red", "small", "old", "wooden", "striped", "green", "tall", "shiny", "broken", "yellow", "round",
              "fluffy", "dark", "bright", "empty", "plastic", "wild", "tiny", "giant", "metal", "blue", "soft",
              "frozen", "rusty", "spotted")  # fmt: skip
NOUNS = ("dog", "cat", "car", "tree", "house", "boat", "chair", "table", "bird", "horse", "bicycle", "lamp", "cup",
         "bridge", "flower", "train", "clock", "guitar", "kite", "apple", "bottle", "shoe", "window", "fence", "truck",
         "pizza", "umbrella", "phone", "book", "bench", "fish", "mountain", "river", "road", "bus", "sheep", "plane",
         "couch", "bear", "door")  # fmt: skip
FILLERS = ("a", "the", "on", "in", "near", "with", "is", "two", "under", "next", "to", "sitting", "standing",
           "parked", "beside", "of", "and", "holding", "street", "field")  # fmt: skip


@dataclass(frozen=True)
class Counts:
    labels: int = 1000
    caption_steps: int = 20
    num_beams: int = 2
    gallery: int = 1000
    caption_words: int = 10
    caption_images: int = 16  # captioned in batches of `caption_batch`, and one at a time
    caption_batch: int = 8
    random_vocabulary: bool = False  # random unit vectors in place of the encoded vocabulary (15 min at base)


@dataclass
class Timer:
    """One contender: `call` timed once per round (after `setup`, which is not timed)."""

    name: str
    call: Callable[[], object]
    runs: int
    setup: Callable[[], object] | None = None
    warmup_ms: list[float] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)
    result: object = None

    def once(self) -> float:
        if self.setup is not None:
            self.setup()
        start = time.perf_counter()
        self.result = self.call()
        return (time.perf_counter() - start) * 1e3

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)


def measure(timers: list[Timer], warmup: int = 1) -> dict[str, Timer]:
    """Warm each timer up, then time them interleaved, round after round, each for its own number of rounds."""
    for timer in timers:
        for _ in range(warmup):
            timer.warmup_ms.append(timer.once())
    for round_index in range(max(timer.runs for timer in timers)):
        for timer in timers:
            if round_index < timer.runs:
                timer.times_ms.append(timer.once())
    return {timer.name: timer for timer in timers}


def print_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    if title:
        print(title)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    print()


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


# ----------------------------------------------------------------------------------------------------------------------
# Inputs


def make_labels(count: int) -> list[str]:
    """`count` distinct short label strings ("striped kite", ...), the same on every run."""
    pairs = [f"{adjective} {noun}" for adjective, noun in itertools.product(ADJECTIVES, NOUNS)]
    random.Random(0).shuffle(pairs)
    labels = pairs[:count]
    labels += [f"{pairs[i % len(pairs)]} {i}" for i in range(len(labels), count)]
    return labels


def make_captions(count: int, words: int) -> list[str]:
    """`count` distinct captions of `words` random words from a fixed list."""
    vocabulary = ADJECTIVES + NOUNS + FILLERS
    generator = random.Random(1)
    captions: dict[str, None] = {}
    while len(captions) < count:
        captions[" ".join(generator.choice(vocabulary) for _ in range(words))] = None
    return list(captions)


def make_image() -> np.ndarray:
    """One 480x640 RGB photo-sized uint8 image of noise."""
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def build_model(size: str) -> UniPerceiverModel:
    torch.manual_seed(0)
    return UniPerceiverModel(SIZES[size]()).eval()


# ----------------------------------------------------------------------------------------------------------------------
# 1. Candidate-label caching in the pipeline


def bench_pipeline(size, model, processor, image, counts: Counts, runs: int, long_runs: int) -> dict:
    pipe = pipeline("zero-shot-perception", model=model, processor=processor)
    labels = make_labels(counts.labels)

    def pixels() -> torch.Tensor:  # what the pipeline's preprocess runs for an image against text candidates
        return processor.image_processor([image], preset="imagenet", return_tensors="pt")["pixel_values"]

    pixel_values = pixels()

    def cache_key() -> tuple:  # the key `_text_targets` builds on every call, hit or miss (template "{}")
        prompts = [[f"{label}" for label in labels]]
        return ("text", id(processor.tokenizer), tuple(map(tuple, prompts)))

    probabilities = torch.rand(len(labels)).softmax(-1)
    outputs = dict(probabilities=[probabilities], candidates=_Candidates("text", [labels], [labels], ["{}"]))

    call = lambda: pipe(image, candidate_labels=labels)  # noqa: E731
    timers = measure([
        Timer("cold", call, long_runs, setup=pipe._target_cache.clear),
        Timer("warm", call, runs),
        Timer("image", lambda: model.get_features(pixel_values=pixels()), runs),
        Timer("processor", pixels, runs),
        Timer("get_features", lambda: model.get_features(pixel_values=pixel_values), runs),
        Timer("fingerprint", lambda: model_fingerprint(model), runs),
        Timer("cache key", cache_key, runs),
        Timer("postprocess", lambda: pipe.postprocess(outputs), runs),
    ])  # fmt: skip
    cold, warm = timers["cold"].result, timers["warm"].result
    assert [r["label"] for r in cold] == [r["label"] for r in warm], "the cached call ranks labels differently"
    assert len(pipe._target_cache) == 1, "the warm calls did not reuse one cache entry"

    profile = None
    if timers["warm"].median / timers["image"].median > WARM_TARGET:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(runs):
            call()
        profiler.disable()
        profile = (pstats.Stats(profiler), runs)
    return dict(size=size, timers=timers, profile=profile, first_call_ms=timers["cold"].warmup_ms[0])


def report_pipeline(results: list[dict], counts: Counts) -> None:
    rows, parts = [], []
    for r in results:
        t = r["timers"]
        ratio = t["warm"].median / t["image"].median
        rows.append((
            r["size"], f"{len(t['cold'].times_ms)}/{len(t['warm'].times_ms)}", ms(r["first_call_ms"]),
            ms(t["cold"].median), ms(t["warm"].median), ms(t["image"].median), f"{ratio:.2f}x",
            "met" if ratio <= WARM_TARGET else "MISSED", f"{t['cold'].median / t['warm'].median:.1f}x",
        ))  # fmt: skip
        named = ("processor", "get_features", "fingerprint", "cache key", "postprocess")
        rest = t["warm"].median - sum(t[name].median for name in named)
        parts.append((r["size"], *(ms(t[name].median) for name in named), ms(rest), ms(t["warm"].median)))
    print_table(
        f"1. Pipeline candidate-label caching: {counts.labels} labels, one 480x640 uint8 image (median ms)",
        ("size", "rounds cold/warm", "first call in process", "cold-cache call", "warm call",
         "image alone (processor + model)", "warm / image alone", f"target <= {WARM_TARGET}x", "cold / warm"),
        rows,
    )  # fmt: skip
    print_table(
        "   Where the warm call's time goes (median ms of each part timed alone; rest = warm - parts)",
        ("size", "image processor", "get_features", "model_fingerprint", f"cache key ({counts.labels} labels)",
         f"postprocess ({counts.labels})", "rest (pipeline plumbing)", "warm call"),
        parts,
    )  # fmt: skip
    for r in results:
        if r["profile"] is None:
            continue
        stats, calls = r["profile"]
        print(f"   cProfile of {calls} warm calls at {r['size']} size (target missed): top functions by own time")
        entries = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:12]
        rows = []
        for (filename, line, function), (_, ncalls, tottime, cumtime, _) in entries:
            where = "/".join(filename.split("/")[-2:]) if filename != "~" else "built-in"
            rows.append((f"{where}:{line}({function})"[:90], ncalls // calls, ms(tottime * 1e3 / calls),
                         ms(cumtime * 1e3 / calls)))  # fmt: skip
        print_table("", ("function", "calls/call", "own ms/call", "cumulative ms/call"), rows)


# ----------------------------------------------------------------------------------------------------------------------
# 2. Caption decoding


class _ReprojectedPast:
    """One layer's past keys and values for a step, re-projected from the history; the step's own are appended."""

    def __init__(self, key: torch.Tensor, value: torch.Tensor):
        self.key, self.value = key, value

    def update(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.key, key], dim=1), torch.cat([self.value, value], dim=1)


class _History:
    """Every layer's input hidden states `[N, L, D]`: the original's cache, with the interface `generate` uses."""

    def __init__(self, states: list[torch.Tensor]):
        self.states = states

    @property
    def rows(self) -> int:
        return self.states[0].shape[0]

    def reorder(self, rows: torch.Tensor) -> None:
        self.states = [states[rows] for states in self.states]


class InputHistoryCaptioner(UniPerceiverCaptioner):
    """The original implementation's decoding cache, rebuilt from the model's public modules.

    It keeps every layer's input hidden states of the prefix, the visual tokens and the chosen words, and at every
    step turns the whole history into keys and values again: `layer_norm1`, then the key/value rows of
    `self_attn.in_proj`. Beam search is `UniPerceiverCaptioner.generate`'s; only the cache differs.
    """

    def layer_inputs(self, embeds, mask=None, past=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Runs the encoder layer by layer: the last hidden states and the input of every layer."""
        inputs, hidden = [], embeds
        for index, layer in enumerate(self.model.encoder.layers):
            inputs.append(hidden)
            hidden, _ = layer(hidden, mask, past_key_value=past[index] if past is not None else None)
        return hidden, inputs

    def start(self, pixel_values: torch.Tensor, max_new_tokens: int) -> _History:
        """Per-layer inputs of `[<SPE>, visual tokens]`: `history.states[l]` is the input of layer l."""
        embeds = self.model.embeddings(None, None, pixel_values.unsqueeze(1))
        return _History(self.layer_inputs(embeds)[1])

    def keys_values(self, history: _History) -> list[_ReprojectedPast]:
        size = self.model.config.hidden_size
        past = []
        for layer, states in zip(self.model.encoder.layers, history.states):
            projection = layer.self_attn.in_proj
            projected = F.linear(layer.layer_norm1(states), projection.weight[size:], projection.bias[size:])
            past.append(_ReprojectedPast(*projected.split(size, dim=-1)))
        return past

    def step(self, history: _History, previous_words, position) -> torch.Tensor:
        """As `UniPerceiverCaptioner.step`, with keys and values re-projected from the history every step."""
        first = history.states[0]
        embeds, mask = self.step_inputs(previous_words, position, *first.shape[:2], first.device, first.dtype)
        hidden, inputs = self.layer_inputs(embeds, mask, self.keys_values(history))
        if previous_words is not None:  # only the word joins the history, never the step <SPE>
            history.states = [torch.cat([h, new[:, :1]], dim=1) for h, new in zip(history.states, inputs)]
        return self._logits(hidden[:, -1])


def bench_captioning(size, model, processor, image, counts: Counts, runs: int, long_runs: int) -> dict:
    start = time.perf_counter()
    if counts.random_vocabulary:  # same shape, dtype and cost per step; only the chosen tokens differ
        embeds = F.normalize(torch.randn(model.config.vocab_size, model.config.projection_dim), dim=-1)
        vocabulary = TargetSet(embeds, fingerprint=model_fingerprint(model))
    else:
        vocabulary = TargetSet.vocabulary(model, show_progress=False)
    vocabulary_ms = (time.perf_counter() - start) * 1e3
    captioner = UniPerceiverCaptioner(model, vocabulary)
    history_captioner = InputHistoryCaptioner(model, vocabulary)
    pixel_values = processor.image_processor([image], preset="clip", return_tensors="pt")["pixel_values"]
    settings = dict(num_beams=counts.num_beams, max_new_tokens=counts.caption_steps, length_penalty=2.0)

    images = [np.random.default_rng(seed).integers(0, 256, (240, 320, 3), dtype=np.uint8)
              for seed in range(counts.caption_images)]  # fmt: skip
    many = processor.image_processor(images, preset="clip", return_tensors="pt")["pixel_values"]

    def in_batches(size: int) -> None:
        for start in range(0, len(many), size):
            captioner.generate(many[start : start + size], **settings)

    timers = measure([
        Timer("cached", lambda: captioner.generate(pixel_values, **settings, use_cache=True), runs),
        Timer("full", lambda: captioner.generate(pixel_values, **settings, use_cache=False), long_runs),
        Timer("history", lambda: history_captioner.generate(pixel_values, **settings), runs),
        Timer("batched", lambda: in_batches(counts.caption_batch), long_runs),
        Timer("one by one", lambda: in_batches(1), long_runs),
    ])  # fmt: skip
    cached = timers["cached"].result.beam_sequences
    assert cached.shape[-1] == counts.caption_steps
    same_full = torch.equal(cached, timers["full"].result.beam_sequences)
    same_history = torch.equal(cached, timers["history"].result.beam_sequences)
    if size == "tiny":
        assert same_history, "the input-history decoder (c) chose other tokens than the KV-cached decoder (a)"
    eos = model.config.eos_token_id
    return dict(size=size, timers=timers, vocabulary_ms=vocabulary_ms, same_full=same_full,
                same_history=same_history, eos_steps=int((cached[0, 0] == eos).sum()))  # fmt: skip


def report_captioning(results: list[dict], counts: Counts) -> None:
    rows = []
    for r in results:
        t = r["timers"]
        speedup_full = t["full"].median / t["cached"].median
        target = ("met" if speedup_full >= CACHE_SPEEDUP_TARGET else "MISSED") if r["size"] == "base" else "-"
        rows.append((
            r["size"], f"{len(t['cached'].times_ms)}/{len(t['full'].times_ms)}/{len(t['history'].times_ms)}",
            ms(t["cached"].median), ms(t["full"].median), ms(t["history"].median),
            f"{speedup_full:.2f}x", target, f"{t['history'].median / t['cached'].median:.2f}x",
            f"{ms(t['cached'].median / counts.caption_steps)}", "yes" if r["same_full"] else "NO",
            "yes" if r["same_history"] else "NO", r["eos_steps"],
        ))  # fmt: skip
    print_table(
        f"2. Captioning one 224 px image: {counts.caption_steps} steps, beam {counts.num_beams} "
        "(ms per caption, median)",
        ("size", "rounds a/b/c", "(a) KV cache", "(b) full recompute", "(c) input-history cache",
         "a vs b speed-up", f"target >= {CACHE_SPEEDUP_TARGET:.0f}x (base)", "a vs c speed-up",
         "(a) ms/step (incl. image encode)",
         "b same tokens as a", "c same tokens as a", "EOT steps in best beam"),
        rows,
    )  # fmt: skip
    print_table(
        f"   {counts.caption_images} images captioned ({counts.caption_steps} steps, beam {counts.num_beams}), "
        "images/s (median)",
        ("size", "rounds", f"batches of {counts.caption_batch}", "one at a time", "speed-up"),
        [(r["size"], len(r["timers"]["batched"].times_ms),
          f"{counts.caption_images / r['timers']['batched'].median * 1e3:.2f}",
          f"{counts.caption_images / r['timers']['one by one'].median * 1e3:.2f}",
          f"{r['timers']['one by one'].median / r['timers']['batched'].median:.2f}x") for r in results],
    )  # fmt: skip
    for r in results:
        if counts.random_vocabulary:
            print(f"   vocabulary: random unit vectors at {r['size']} size (--random-vocabulary)")
            continue
        print(f"   vocabulary target set ({49411:,} entries) encoded once at {r['size']} size: "
              f"{r['vocabulary_ms'] / 1e3:.1f} s (not part of the timings above)")  # fmt: skip
    print()


# ----------------------------------------------------------------------------------------------------------------------
# 3. Retrieval


def bench_retrieval(size, model, processor, image, counts: Counts, runs: int, long_runs: int) -> dict:
    captions = make_captions(counts.gallery, counts.caption_words)
    start = time.perf_counter()
    targets = processor.target_inputs(captions)
    tokenize_ms = (time.perf_counter() - start) * 1e3
    ids, mask = targets["target_input_ids"], targets["target_attention_mask"]

    def pixels() -> torch.Tensor:
        return processor.image_processor([image], preset="clip", return_tensors="pt")["pixel_values"]

    encode = lambda: TargetSet.encode(model, ids, mask, batch_size=256, show_progress=False)  # noqa: E731
    timers = measure([Timer("gallery", encode, long_runs)])
    gallery = timers["gallery"].result.embeds
    pixel_values = pixels()
    query_embeds = model.get_features(pixel_values=pixel_values)
    timers |= measure([
        Timer("query", lambda: search(model.get_features(pixel_values=pixel_values), gallery, top_k=10), runs),
        Timer("processor", pixels, runs),
        Timer("get_features", lambda: model.get_features(pixel_values=pixel_values), runs),
        Timer("search", lambda: search(query_embeds, gallery, top_k=10), runs),
    ])  # fmt: skip
    scores, indices = timers["query"].result
    assert indices.shape == (1, 10) and bool((scores[:, :-1] >= scores[:, 1:]).all())
    tokens = int(mask.sum()) / mask.shape[0] + 1  # + the prefix <SPE>
    return dict(size=size, timers=timers, tokenize_ms=tokenize_ms, tokens=tokens)


def report_retrieval(results: list[dict], counts: Counts) -> None:
    rows = []
    for r in results:
        t = r["timers"]
        rows.append((
            r["size"], f"{len(t['gallery'].times_ms)}/{len(t['query'].times_ms)}", f"{r['tokens']:.1f}",
            ms(r["tokenize_ms"]), ms(t["gallery"].median), f"{counts.gallery / t['gallery'].median * 1e3:.0f}",
            ms(t["processor"].median), ms(t["get_features"].median), f"{t['search'].median:.3f}",
            ms(t["query"].median), ms(t["query"].median + t["processor"].median),
        ))  # fmt: skip
    print_table(
        f"3. Retrieval: gallery of {counts.gallery} captions of {counts.caption_words} words, one image query, "
        "top 10 (median ms)",
        ("size", "rounds gallery/query", "tokens/caption", "tokenize gallery (once)", "gallery encode (batch 256)",
         "captions/s", "query: image processor", "get_features", "search", "get_features + search",
         "query incl. processor"),
        rows,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="timed rounds per measurement (default 5; 3 quick)")
    parser.add_argument("--sizes", default="tiny,base", help="comma-separated sizes among tiny,base (default both)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny size, 100 labels/captions, 5 caption steps")
    parser.add_argument(
        "--random-vocabulary",
        action="store_true",
        help="captioning against random unit vectors instead of the encoded vocabulary (same cost per "
        "step; skips its one-off encode, about 15 min at base on one core)",
    )
    parser.add_argument(
        "--sections",
        default="pipeline,captioning,retrieval",
        help="comma-separated sections to run (default all three)",
    )
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else (3 if args.quick else 5)
    sizes = ["tiny"] if args.quick else [s.strip() for s in args.sizes.split(",") if s.strip()]
    if runs < 1:
        parser.error("--runs must be >= 1")
    if not sizes or any(s not in SIZES for s in sizes):
        parser.error(f"--sizes must be a comma-separated subset of {','.join(SIZES)}, got {args.sizes!r}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    counts = (
        Counts(labels=100, caption_steps=5, gallery=100, caption_images=4, caption_batch=2) if args.quick else Counts()
    )
    counts = dataclasses.replace(counts, random_vocabulary=args.random_vocabulary)
    transformers.logging.set_verbosity_error()

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; fp32, eval, inference_mode, random weights"
    )
    for size in sizes:
        config = SIZES[size]()
        long_runs = min(runs, LONG_RUNS_AT_BASE) if size == "base" else runs
        print(f"{size}: {config.num_hidden_layers} layers x {config.hidden_size}, {config.num_attention_heads} heads, "
              f"FFN {config.intermediate_size}, 224 px images; 1 warm-up, median of {runs} rounds "
              f"({long_runs} for the cold-cache call, full recomputation and gallery encode)")  # fmt: skip
    print(
        f"counts: {counts.labels} labels, {counts.caption_steps} caption steps with beam {counts.num_beams}, "
        f"gallery of {counts.gallery} captions of {counts.caption_words} words\n"
    )

    processor = UniPerceiverProcessor()
    image = make_image()
    results = {"pipeline": [], "captioning": [], "retrieval": []}
    benches = {"pipeline": bench_pipeline, "captioning": bench_captioning, "retrieval": bench_retrieval}
    total = time.perf_counter()
    with torch.inference_mode():
        for size in sizes:
            model = build_model(size)
            long_runs = min(runs, LONG_RUNS_AT_BASE) if size == "base" else runs
            for name, bench in benches.items():
                if name not in args.sections.split(","):
                    continue
                start = time.perf_counter()
                results[name].append(bench(size, model, processor, image, counts, runs, long_runs))
                print(f"  {size}: {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"  total {time.perf_counter() - total:.0f} s\n")

    for name, report in (
        ("pipeline", report_pipeline),
        ("captioning", report_captioning),
        ("retrieval", report_retrieval),
    ):
        if results[name]:
            report(results[name], counts)


if __name__ == "__main__":
    main()
