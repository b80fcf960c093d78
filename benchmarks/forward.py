"""Forward-pass speed of Uni-Perceiver against CLIP at the same size, on CPU.

Uni-Perceiver BASE and CLIP-B/16 do the same work per token (12 pre-LN layers of 768 wide, 12 heads, FFN 3072) and
see sequences of the same length: 197 tokens per 224 px image (a prefix token plus 196 patches) and L + 1 tokens per
text of L ids (ours adds the prefix `<SPE>`, so CLIP is given L + 1 ids). CLIP's transformers implementation is
therefore a fair yardstick: our model should be at least as fast, and bf16 should be well ahead of fp32.

Measured in one run, with random weights, in fp32 and bf16: our model with SDPA and with eager attention (and, with
`--compile`, `torch.compile(model.get_features, fullgraph=True)` of the SDPA model; its compilation happens in the
warm-up and is not timed), and `CLIPVisionModel` / `CLIPTextModel` with SDPA, on a batch of images and a batch of short texts (all-ones attention
masks, as a padded batch would pass). Every contender is warmed up, then timed once per round, round after round,
so that machine noise falls on all of them alike; the median over rounds is reported. Peak memory is not reported:
on CPU the only cheap probe, the process' max RSS, never goes down and so cannot be attributed to one model.

With `--moe`, Uni-Perceiver-MoE at the same size (8 experts in the attention and feed-forward linears of every
other layer, as MoE BASE) runs beside the dense model with SDPA, on the same inputs and each input's default task
attribute; its merged expert weights are computed on the first (warm-up) call and reused, as at inference.

    python benchmarks/forward.py [--runs N] [--warmup N] [--threads N] [--quick] [--compile] [--moe] [--dtypes fp32,bf16]
"""

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import transformers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel


@dataclass(frozen=True)
class Setup:
    """Encoder sizes (shared by both models) and batches."""

    encoder: dict
    image_size: int
    images: int
    texts: int
    text_ids: int


SETUPS = {
    "base": Setup(
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
        image_size=224,
        images=8,
        texts=32,
        text_ids=16,
    ),
    "quick": Setup(
        dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
        image_size=64,
        images=2,
        texts=4,
        text_ids=8,
    ),
}
PATCH_SIZE = 16
VOCAB_SIZE = 49408  # CLIP's BPE vocabulary; random ids are drawn below it so both models accept them
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
CLIP = "CLIP (sdpa)"
COMPILED = "ours (sdpa, compiled)"
MOE = "ours MoE (sdpa)"


@dataclass
class Contender:
    input: str
    dtype: str
    model: str
    call: Callable[[], object]
    times_ms: list[float]


def build_models(setup: Setup, moe: bool = False) -> dict[str, dict[str, torch.nn.Module]]:
    """fp32 models in eval mode: `{input: {model name: model}}`; ours serves both inputs with one set of weights."""
    encoder, visual = setup.encoder, dict(image_size=setup.image_size, patch_size=PATCH_SIZE)
    ours = {}
    for impl in ("sdpa", "eager"):
        model = UniPerceiverModel(UniPerceiverConfig(**encoder, **visual, attn_implementation=impl))
        if ours:  # same weights for both attention implementations
            model.load_state_dict(next(iter(ours.values())).state_dict())
        assert model.config._attn_implementation == impl, model.config._attn_implementation
        ours[f"ours ({impl})"] = model.eval()
    clip_vision = CLIPVisionModel(CLIPVisionConfig(**encoder, **visual, attn_implementation="sdpa"))
    clip_text = CLIPTextModel(
        CLIPTextConfig(**encoder, vocab_size=VOCAB_SIZE, max_position_embeddings=77, attn_implementation="sdpa")
    )
    if moe:
        layers = list(range(0, encoder["num_hidden_layers"], 2))
        config = UniPerceiverConfig(**encoder, **visual, num_experts=8, moe_layers=layers, attn_implementation="sdpa")
        ours[MOE] = UniPerceiverModel(config).eval()
    return {
        "image": {**ours, CLIP: clip_vision.eval()},
        "text": {**ours, CLIP: clip_text.eval()},
    }


def make_inputs(setup: Setup) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """fp32 inputs, `{input: {"ours" | "CLIP": kwargs}}`; CLIP's texts get one id more, matching our prefix."""
    pixels = torch.randn(setup.images, 3, setup.image_size, setup.image_size)
    ids = torch.randint(0, VOCAB_SIZE, (setup.texts, setup.text_ids + 1))
    mask = torch.ones_like(ids)
    return {
        "image": {"ours": dict(pixel_values=pixels), "CLIP": dict(pixel_values=pixels)},
        "text": {
            "ours": dict(input_ids=ids[:, 1:], attention_mask=mask[:, 1:]),
            "CLIP": dict(input_ids=ids, attention_mask=mask),
        },
    }


def make_call(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], dtype: torch.dtype, compiled: bool = False
) -> Callable[[], object]:
    inputs = {name: value.to(dtype) if value.is_floating_point() else value for name, value in inputs.items()}
    if isinstance(model, UniPerceiverModel):
        # One compiled function per input kind: the image and text graphs are compiled separately.
        features = torch.compile(model.get_features, fullgraph=True) if compiled else model.get_features
        return lambda: features(**inputs)
    return lambda: model(**inputs)


def build_contenders(setup: Setup, dtypes: list[str], compile_sdpa: bool, moe: bool = False) -> list[Contender]:
    """Every (input, dtype, model); the bf16 models are cast copies of the fp32 ones."""
    models = build_models(setup, moe)
    inputs = make_inputs(setup)
    contenders = []
    for dtype_name, dtype in ((name, DTYPES[name]) for name in dtypes):
        cast = {}  # one cast per model object, so ours stays shared between inputs
        for input_name, named_models in models.items():
            for name, model in named_models.items():
                if id(model) not in cast:
                    cast[id(model)] = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
                kwargs = inputs[input_name]["CLIP" if name == CLIP else "ours"]
                call = make_call(cast[id(model)], kwargs, dtype)
                contenders.append(Contender(input_name, dtype_name, name, call, []))
                if compile_sdpa and name == "ours (sdpa)":
                    call = make_call(cast[id(model)], kwargs, dtype, compiled=True)
                    contenders.append(Contender(input_name, dtype_name, COMPILED, call, []))
    return contenders


def measure(contenders: list[Contender], warmup: int, runs: int) -> None:
    """Warm every contender up, then time each once per round for `runs` rounds."""
    for contender in contenders:
        for _ in range(warmup):
            contender.call()
    for round_index in range(runs):
        for contender in contenders:
            start = time.perf_counter()
            contender.call()
            contender.times_ms.append((time.perf_counter() - start) * 1e3)
        print(f"  round {round_index + 1}/{runs} done", flush=True)


def median(contender: Contender) -> float:
    return statistics.median(contender.times_ms)


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * width for width in widths), *rows):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    print()


def report(contenders: list[Contender]) -> None:
    by_key = {(c.input, c.dtype, c.model): c for c in contenders}
    rows = []
    for c in contenders:
        clip = by_key[(c.input, c.dtype, CLIP)]
        rows.append((c.input, c.dtype, c.model, f"{median(c):.2f}", f"{median(c) / median(clip):.2f}x"))
    rows.sort(key=lambda row: (row[0], list(DTYPES).index(row[1])))
    print_table(("input", "dtype", "model", "median ms", "ratio vs CLIP (same input, same dtype)"), rows)

    compiled = [c for c in contenders if c.model == COMPILED]
    if compiled:
        print_table(
            ("input", "dtype", "eager ms (sdpa)", "compiled ms", "compiled speed-up"),
            [
                (
                    c.input,
                    c.dtype,
                    f"{median(by_key[(c.input, c.dtype, 'ours (sdpa)')]):.2f}",
                    f"{median(c):.2f}",
                    f"{median(by_key[(c.input, c.dtype, 'ours (sdpa)')]) / median(c):.2f}x",
                )
                for c in compiled
            ],
        )

    moe = [c for c in contenders if c.model == MOE]
    if moe:
        print_table(
            ("input", "dtype", "dense ms (sdpa)", "MoE ms (sdpa)", "MoE / dense"),
            [
                (
                    c.input,
                    c.dtype,
                    f"{median(by_key[(c.input, c.dtype, 'ours (sdpa)')]):.2f}",
                    f"{median(c):.2f}",
                    f"{median(c) / median(by_key[(c.input, c.dtype, 'ours (sdpa)')]):.2f}x",
                )
                for c in moe
            ],
        )

    speedups = []
    for c in contenders:
        if c.dtype == "fp32" and (c.input, "bf16", c.model) in by_key:
            bf16 = by_key[(c.input, "bf16", c.model)]
            speedups.append(
                (c.input, c.model, f"{median(c):.2f}", f"{median(bf16):.2f}", f"{median(c) / median(bf16):.2f}x")
            )
    speedups.sort(key=lambda row: row[0])
    if speedups:
        print_table(("input", "model", "fp32 ms", "bf16 ms", "bf16 speed-up vs fp32"), speedups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per contender first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny model and batches, for a smoke run")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(fullgraph=True) of ours")
    parser.add_argument("--moe", action="store_true", help="also time Uni-Perceiver-MoE at the same size")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated among fp32,bf16 (default both)")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    name = "quick" if args.quick else "base"
    setup = SETUPS[name]

    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    print(
        f"{name}: {setup.encoder}, {setup.images} images of {setup.image_size} px, {setup.texts} texts of "
        f"{setup.text_ids} ids (+1 prefix); warmup {args.warmup}, median of {args.runs} rounds\n"
    )
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not dtypes or any(d not in DTYPES for d in dtypes):
        parser.error(f"--dtypes must be a comma-separated subset of {','.join(DTYPES)}")
    contenders = build_contenders(setup, dtypes, args.compile, args.moe)
    with torch.inference_mode():
        measure(contenders, args.warmup, args.runs)
    print()
    report(contenders)


if __name__ == "__main__":
    main()
