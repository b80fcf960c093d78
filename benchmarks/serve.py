"""Serving speed: torch float32, torch int8 (two kinds), onnxruntime float32 and int8, in one run, as ratios.

    python benchmarks/serve.py [--runs 3] [--threads 1] [--base-image-size 64] [--sizes default,base]

For each size (the default model, and BASE: 12 layers of 768, 12 heads, random weights) and each batch size (1 and
32), images/s and texts/s (16-id texts) of five variants computing the same features:

- torch fp32: `UniPerceiverModel.get_features`, eager (no compile), SDPA attention;
- torch int8: the same model loaded with `TorchAoConfig(Int8DynamicActivationInt8WeightConfig())` (torchao):
  int8 weights and activations quantised per token at run time;
- torch int8 weights: `TorchAoConfig(Int8WeightOnlyConfig())`: int8 weights (per output channel), float32
  activations, which keeps the answers where near-ties are many (benchmarks/int8_agreement.py);
- onnxruntime fp32 and int8: `uniperceiver-hf export onnx --int8` run by `UniPerceiverORTModel`.

Each run times every variant once, one after another (round robin), so that load on the machine falls on all alike;
the table gives the median over `--runs` and the ratio to torch fp32 on the same input. Fidelity beside it: the
lowest cosine similarity of each variant's features to torch fp32's, and (default model) the top-1 agreement with
torch fp32 on the digits test split against the ten digit names (benchmarks/int8_agreement.py covers every split).
BASE runs at `--base-image-size` px (64 by default, as the default model: 17 tokens per image; 224 gives the paper's
197 and takes about 12x longer). One thread each (`--threads`): per-core throughput, what a CPU Space has.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch
from transformers import AutoModel, TorchAoConfig

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverORTModel, UniPerceiverProcessor
from uniperceiver_hf.tools.onnx_export import export_onnx


ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "uniperceiver-tiny-emoji"
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, patch_size=16)
TEXT_LENGTH = 16


def torch_int8(folder, weights_only: bool = False):
    """The model with torchao's int8 linear layers, quantised at load time: int8 weights and activations quantised
    per token at run time, or (`weights_only`) int8 weights with float32 activations."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

    config = Int8WeightOnlyConfig() if weights_only else Int8DynamicActivationInt8WeightConfig()
    return AutoModel.from_pretrained(folder, quantization_config=TorchAoConfig(config)).eval()


def load_variants(folder: Path, exported: Path, threads: int) -> dict:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return {
        "torch fp32": UniPerceiverModel.from_pretrained(folder).eval(),
        "torch int8": torch_int8(folder),
        "torch int8 weights": torch_int8(folder, weights_only=True),
        "onnxruntime fp32": UniPerceiverORTModel.from_pretrained(exported, session_options=options),
        "onnxruntime int8": UniPerceiverORTModel.from_pretrained(exported, int8=True, session_options=options),
    }


def inputs_for(config, modality: str, batch_size: int) -> dict:
    generator = torch.Generator().manual_seed(batch_size)
    if modality == "image":
        size = config.image_size
        return {"pixel_values": torch.randn(batch_size, 3, size, size, generator=generator)}
    ids = torch.randint(400, 40000, (batch_size, TEXT_LENGTH), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def features(model, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model.get_features(**inputs, is_target="input_ids" in inputs)


def digits_agreement(variants: dict, processor) -> dict[str, float]:
    """Top-1 agreement with torch fp32 on the corpus's digits test split against the ten digit names."""
    import datasets

    split = datasets.load_from_disk(str(ROOT / "data" / "corpus" / "digits"))["test"]
    names = split.features["label"].names
    pixels = processor(images=list(split["image"]), return_tensors="pt")["pixel_values"]
    texts = processor(text=names, return_tensors="pt", padding=True)
    tops = {}
    for name, model in variants.items():
        image_features = torch.cat([features(model, {"pixel_values": chunk}) for chunk in pixels.split(64)])
        label_features = features(model, {"input_ids": texts["input_ids"], "attention_mask": texts["attention_mask"]})
        tops[name] = (image_features @ label_features.T).argmax(-1)
    return {name: (top == tops["torch fp32"]).float().mean().item() for name, top in tops.items()}


def measure(size: str, folder: Path, exported: Path, args) -> list[dict]:
    variants = load_variants(folder, exported, args.threads)
    config = variants["torch fp32"].config
    rows = []
    for modality in ("image", "text"):
        for batch_size in (1, 32):
            inputs = inputs_for(config, modality, batch_size)
            reference = features(variants["torch fp32"], inputs)
            cosine = {
                name: (features(model, inputs) * reference).sum(-1).min().item() for name, model in variants.items()
            }
            repeats = max(1, args.items // batch_size)  # calls per timing, so that batch 1 is not one call's noise
            times = {name: [] for name in variants}
            for _ in range(args.runs):
                for name, model in variants.items():
                    start = time.perf_counter()
                    for _ in range(repeats):
                        features(model, inputs)
                    times[name].append((time.perf_counter() - start) / (repeats * batch_size))
            for name in variants:
                rows.append(
                    dict(
                        size=size,
                        modality=modality,
                        batch=batch_size,
                        variant=name,
                        per_second=1 / statistics.median(times[name]),
                        ratio=statistics.median(times["torch fp32"]) / statistics.median(times[name]),
                        cosine=cosine[name],
                    )
                )
    if size == "default":
        agreement = digits_agreement(variants, UniPerceiverProcessor.from_pretrained(folder))
        for row in rows:
            row["agreement"] = agreement[row["variant"]]
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--items", type=int, default=32, help="items per timing at batch 1 (calls of one)")
    parser.add_argument("--sizes", default="default,base")
    parser.add_argument("--base-image-size", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="serve-benchmark-") as work:
        for size in args.sizes.split(","):
            folder = DEFAULT_MODEL
            if size == "base":
                folder = Path(work) / "base"
                config = UniPerceiverConfig(**BASE, image_size=args.base_image_size)
                torch.manual_seed(0)
                UniPerceiverModel(config).save_pretrained(folder)
            exported = export_onnx(folder, Path(work) / f"{size}-onnx", int8=True)
            rows += measure(size, folder, exported, args)
    print(f"\nmedian of {args.runs} interleaved runs, {args.threads} thread(s) each, texts of {TEXT_LENGTH} ids")
    print(
        "| size | input | batch | variant | items/s | vs torch fp32 | min cosine vs fp32 | top-1 agreement (digits) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        agreement = f"{row['agreement']:.2%}" if "agreement" in row else "-"
        print(
            f"| {row['size']} | {row['modality']} | {row['batch']} | {row['variant']} | {row['per_second']:.1f} | "
            f"{row['ratio']:.2f}x | {row['cosine']:.4f} | {agreement} |"
        )
    return rows


if __name__ == "__main__":
    main()
