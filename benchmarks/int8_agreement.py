"""Does int8 keep the answers? Top-1 agreement with float32 on the default model's test splits, and file sizes.

    python benchmarks/int8_agreement.py [--model models/uniperceiver-tiny-emoji] [--corpus data/corpus] [--limit N]

Five variants answer every test item of the corpus (emoji pictures against every emoji name, handwritten digits
against the ten digit names, clips against the motions, fortunes against their topics), through the pipeline:
torch float32 (the reference), torch int8 (`from_pretrained(..., quantization_config=TorchAoConfig(
Int8DynamicActivationInt8WeightConfig()))`: int8 weights, activations quantised per token at run time), torch int8
weights (`TorchAoConfig(Int8WeightOnlyConfig())`: int8 weights, float32 activations), onnxruntime float32 and
onnxruntime int8 (`uniperceiver-hf export onnx --int8`). The table gives each variant's
top-1 agreement with torch float32, its accuracy and the share of float32's right answers it keeps, split by
split, then the files' sizes. Speed is
benchmarks/serve.py's. Needs the `onnx` and `torchao` extras and the built corpus (examples/data/build_corpus.py).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import datasets
from serve import torch_int8  # the sibling benchmark (benchmarks/ is the script's folder)
from transformers import pipeline

import uniperceiver_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from uniperceiver_hf import UniPerceiverORTModel, UniPerceiverProcessor
from uniperceiver_hf.tools.onnx_export import export_onnx


ROOT = Path(__file__).resolve().parents[1]
# (corpus folder, input column, what the labels are): every test split the default model's card reports on.
SPLITS = {
    "emoji": ("emoji", "image"),
    "digits": ("digits", "image"),
    "motions": ("videos", "video"),
    "topics": ("text", "text"),
}


def top1(pipe, split: datasets.Dataset, column: str, names: list[str], batch_size: int = 64) -> list[str]:
    inputs = [{"text": value} for value in split[column]] if column == "text" else list(split[column])
    return [ranked[0]["label"] for ranked in pipe(inputs, candidate_labels=names, batch_size=batch_size)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "uniperceiver-tiny-emoji"))
    parser.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    parser.add_argument("--limit", type=int, help="at most this many test items per split")
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
        sizes = {
            "torch fp32 (model.safetensors)": (Path(args.model) / "model.safetensors").stat().st_size,
            "onnxruntime fp32 (image + text + video .onnx)": sum(
                (exported / f"{graph}.onnx").stat().st_size for graph in ("image", "text", "video")
            ),
            "onnxruntime int8 (the .int8.onnx)": sum(
                (exported / f"{graph}.int8.onnx").stat().st_size for graph in ("image", "text", "video")
            ),
        }

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
    for name, size in sizes.items():
        print(f"| {name} | {size / 1e6:.1f} |")
    print("torch int8 is quantised at load time from the float32 file (no file of its own).")
    return {"results": results, "overall": overall, "sizes": sizes}


if __name__ == "__main__":
    main()
