"""Does int8 keep the answers? Top-1 agreement with float32 on the default model's test splits, and file sizes.

    python benchmarks/int8_agreement.py [--model models/uniperceiver-tiny-emoji] [--corpus data/corpus] [--limit N]
                                        [--onnx-variants]

Five variants answer every test item of the corpus (emoji pictures against every emoji name, handwritten digits
against the ten digit names, clips against the motions, fortunes against their topics), through the pipeline:
torch float32 (the reference), torch int8 (`from_pretrained(..., quantization_config=TorchAoConfig(
Int8DynamicActivationInt8WeightConfig()))`: int8 weights, activations quantised per token at run time), torch int8
weights (`TorchAoConfig(Int8WeightOnlyConfig())`: int8 weights, float32 activations), onnxruntime float32 and
onnxruntime int8 (`uniperceiver-hf export onnx --int8`). The table gives each variant's
top-1 agreement with torch float32, its accuracy and the share of float32's right answers it keeps, split by
split, then the files' sizes. Speed is
benchmarks/serve.py's. Needs the `onnx` and `torchao` extras and the built corpus (examples/data/build_corpus.py).

`--onnx-variants` adds the other ways onnxruntime quantises the same graphs (`ONNX_VARIANTS`: per-channel, 7-bit or
unsigned weights; the text graph, which encodes the labels, kept in float32; int8 weights with float32 activations
through `MatMulNBits`, which needs the `onnx_ir` package), each with its image graph's speed at batch 32 beside
onnxruntime float32's (timed round robin, median of 60 runs): whether any of them keeps float32's answers at
int8's speed.
"""

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from serve import torch_int8  # the sibling benchmark (benchmarks/ is the script's folder)
from transformers import pipeline

import uniperceiver_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from uniperceiver_hf import UniPerceiverORTModel, UniPerceiverProcessor
from uniperceiver_hf.onnx_uniperceiver import GRAPHS, graph_file
from uniperceiver_hf.tools.onnx_export import export_onnx


ROOT = Path(__file__).resolve().parents[1]
# (corpus folder, input column, what the labels are): every test split the default model's card reports on.
SPLITS = {
    "emoji": ("emoji", "image"),
    "digits": ("digits", "image"),
    "motions": ("videos", "video"),
    "topics": ("text", "text"),
}


# onnxruntime int8 beyond the export's own (`quantize_dynamic`: int8 weights, per-tensor activations at run time):
# name -> `quantize_dynamic` settings, or "weights only" for MatMulNBits. `float32` lists graphs left in float32.
ONNX_VARIANTS = {
    "onnxruntime int8, per-channel weights": dict(per_channel=True),
    "onnxruntime int8, 7-bit weights (reduce_range)": dict(reduce_range=True),
    "onnxruntime int8, uint8 weights": dict(weight_type="QUInt8"),
    "onnxruntime int8, labels' text graph in float32": dict(float32=("text",)),
    "onnxruntime int8 weights only (MatMulNBits, float32 activations)": "weights only",
}


def quantize_variant(folder: Path, settings) -> None:
    """Rewrites the `*.int8.onnx` of an export folder as `settings` (a value of `ONNX_VARIANTS`) says."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for graph in GRAPHS:
        source, target = folder / graph_file(graph), folder / graph_file(graph, int8=True)
        if settings == "weights only":
            import onnx
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            quantizer = MatMulNBitsQuantizer(onnx.load(source), bits=8, block_size=128, is_symmetric=True)
            quantizer.process()
            quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
        elif graph in settings.get("float32", ()):
            shutil.copyfile(source, target)
        else:
            options = {key: value for key, value in settings.items() if key != "float32"}
            options["weight_type"] = getattr(QuantType, options.get("weight_type", "QInt8"))
            quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul", "Gemm", "Gather"], **options)


def image_speedups(models: dict[str, UniPerceiverORTModel], runs: int = 60) -> dict[str, float]:
    """Each model's speed on the image graph over the first's (seconds of the first / its seconds), a batch of 32
    random images, timed round robin in a shuffled order so that all see the same load; median of `runs`."""
    size = next(iter(models.values())).config.image_size
    pixels = torch.from_numpy(np.random.default_rng(0).standard_normal((32, 3, size, size), np.float32))
    times = {name: [] for name in models}
    order, rng = list(models), random.Random(0)
    for _ in range(runs + 1):  # the first round warms up
        rng.shuffle(order)  # a fixed order would favour some places in it (measured: up to 10 % for one graph twice)
        for name in order:
            start = time.perf_counter()
            models[name].get_features(pixel_values=pixels)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values[1:]) for name, values in times.items()}
    first = next(iter(medians.values()))
    return {name: first / seconds for name, seconds in medians.items()}


def graphs_size(folder: Path, int8: bool = False) -> int:
    """Bytes of an export folder's graphs (image, text and video), float32 or int8."""
    return sum((folder / graph_file(graph, int8)).stat().st_size for graph in GRAPHS)


def onnx_variants(exported: Path, processor, baseline: dict[str, UniPerceiverORTModel]) -> tuple[dict, dict, dict]:
    """Pipelines of the `ONNX_VARIANTS` that can be built here, their image speed-ups over onnxruntime float32
    (beside the export's own int8's) and their int8 files' sizes; a variant that cannot be built is reported and
    left out. `baseline`: the export's own float32 model first, then its int8 one, already loaded. Each variant
    overwrites the folder's `*.int8.onnx`: the sessions hold the graphs once loaded."""
    models = dict(baseline)
    pipes, sizes = {}, {}
    for name, settings in ONNX_VARIANTS.items():
        try:
            quantize_variant(exported, settings)
        except ImportError as error:
            print(f"{name}: left out ({error})", file=sys.stderr)
            continue
        models[name] = UniPerceiverORTModel.from_pretrained(exported, int8=True)
        pipes[name] = pipeline("zero-shot-perception", model=models[name], processor=processor)
        sizes[name] = graphs_size(exported, int8=True)
    speedups = image_speedups(models)
    speedups.pop(next(iter(baseline)))
    return pipes, speedups, sizes


def top1(pipe, split: datasets.Dataset, column: str, names: list[str], batch_size: int = 64) -> list[str]:
    inputs = [{"text": value} for value in split[column]] if column == "text" else list(split[column])
    return [ranked[0]["label"] for ranked in pipe(inputs, candidate_labels=names, batch_size=batch_size)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "uniperceiver-tiny-emoji"))
    parser.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    parser.add_argument("--limit", type=int, help="at most this many test items per split")
    parser.add_argument(
        "--onnx-variants", action="store_true", help="also onnxruntime's other int8 settings (ONNX_VARIANTS)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="int8-agreement-") as folder:
        exported = export_onnx(args.model, folder, int8=True)
        processor = UniPerceiverProcessor.from_pretrained(exported)
        variants = {
            "torch fp32": pipeline("zero-shot-perception", model=args.model),
            "torch int8 (torchao)": pipeline(
                "zero-shot-perception", model=torch_int8(args.model), processor=processor
            ),
            "torch int8 weights (torchao)": pipeline(
                "zero-shot-perception", model=torch_int8(args.model, weights_only=True), processor=processor
            ),
            "onnxruntime fp32": pipeline(
                "zero-shot-perception", model=UniPerceiverORTModel.from_pretrained(exported), processor=processor
            ),
            "onnxruntime int8": pipeline(
                "zero-shot-perception",
                model=UniPerceiverORTModel.from_pretrained(exported, int8=True),
                processor=processor,
            ),
        }
        sizes = {
            "torch fp32 (model.safetensors)": (Path(args.model) / "model.safetensors").stat().st_size,
            "onnxruntime fp32 (image + text + video .onnx)": graphs_size(exported),
            "onnxruntime int8 (the .int8.onnx)": graphs_size(exported, int8=True),
        }
        speedups, variant_sizes = {}, {}
        if args.onnx_variants:
            baseline = {name: variants[name].model for name in ("onnxruntime fp32", "onnxruntime int8")}
            pipes, speedups, variant_sizes = onnx_variants(exported, processor, baseline)
            variants.update(pipes)
        results = {}
        for task, (folder_name, column) in SPLITS.items():
            split = datasets.load_from_disk(str(Path(args.corpus) / folder_name))["test"]
            if args.limit:
                split = split.select(range(min(args.limit, len(split))))
            names = split.features["label"].names
            truth = [names[label] for label in split["label"]]
            answers = {name: top1(pipe, split, column, names) for name, pipe in variants.items()}
            reference = answers["torch fp32"]
            right = [index for index, (a, b) in enumerate(zip(reference, truth)) if a == b]
            for name, tops in answers.items():
                agreement = sum(a == b for a, b in zip(tops, reference)) / len(tops)
                accuracy = sum(a == b for a, b in zip(tops, truth)) / len(tops)
                kept = sum(tops[index] == truth[index] for index in right) / max(1, len(right))
                results[(task, name)] = (agreement, accuracy, kept, len(tops))
            print(f"{task}: done ({len(split)} items, {len(names)} labels)", file=sys.stderr, flush=True)

    print("| split | variant | top-1 agreement with torch fp32 | accuracy | fp32's right answers kept | items |")
    print("|---|---|---|---|---|---|")
    for (task, name), (agreement, accuracy, kept, count) in results.items():
        print(f"| {task} | {name} | {agreement:.2%} | {accuracy:.2%} | {kept:.2%} | {count} |")
    overall = {}
    for name in variants:
        rows = [value for (task, variant), value in results.items() if variant == name]
        overall[name] = sum(a * n for a, _, _, n in rows) / sum(n for *_, n in rows)
    print("\n| variant | top-1 agreement, all splits |\n|---|---|")
    for name, agreement in overall.items():
        print(f"| {name} | {agreement:.2%} |")
    print("\n| files | MB |\n|---|---|")
    for name, size in {**sizes, **variant_sizes}.items():
        print(f"| {name} | {size / 1e6:.1f} |")
    if speedups:
        print("\n| onnxruntime variant | image graph, batch 32: speed vs onnxruntime fp32 |\n|---|---|")
        for name, speedup in speedups.items():
            print(f"| {name} | {speedup:.2f}x |")
    print("torch int8 is quantised at load time from the float32 file (no file of its own).")
    return {"results": results, "overall": overall, "sizes": {**sizes, **variant_sizes}, "speedups": speedups}


if __name__ == "__main__":
    main()
