"""Zero-shot image classification with Uni-Perceiver: scores a few images against a few text labels.

    python examples/zero_shot_classification.py [--model DIR | --checkpoint PATH] [--images ...] [--labels ...]

`--model` takes a converted folder, `--checkpoint` an official checkpoint (converted on the fly). Without either,
the example runs the tiny official test checkpoint that sits beside the project when it is there, or else a
randomly initialised tiny model; both give meaningless scores and the example says so. Without `--images` it
draws three simple pictures itself, so it runs offline with nothing downloaded.
"""

import argparse
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from transformers import pipeline

import uniperceiver_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.convert import convert_checkpoint
from uniperceiver_hf.pipeline_uniperceiver import save_for_pipeline

GOLDEN_CHECKPOINT = Path(__file__).resolve().parents[2] / "shared/reference/golden/tiny_model_checkpoint.pth"
DEFAULT_LABELS = ["a red circle", "a blue square", "green stripes"]


def drawn_images() -> dict[str, Image.Image]:
    """Three pictures matching the default labels."""
    circle = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(circle).ellipse((48, 48, 208, 208), fill=(220, 30, 30))
    square = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(square).rectangle((56, 56, 200, 200), fill=(30, 60, 220))
    stripes = Image.new("RGB", (256, 256), "white")
    for x in range(0, 256, 32):
        ImageDraw.Draw(stripes).rectangle((x, 0, x + 15, 255), fill=(30, 180, 60))
    return {"drawn: red circle": circle, "drawn: blue square": square, "drawn: green stripes": stripes}


def load_model_folder(args, workdir: Path) -> tuple[str, str]:
    """(folder to load, a sentence saying what it is)."""
    if args.model:
        return args.model, f"the converted model in {args.model}"
    if args.checkpoint:
        convert_checkpoint(args.checkpoint, workdir, args.config)
        return str(workdir), f"the official checkpoint {args.checkpoint}, converted on the fly"
    if GOLDEN_CHECKPOINT.is_file():
        tiny = UniPerceiverConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
        convert_checkpoint(GOLDEN_CHECKPOINT, workdir, tiny)
        return str(workdir), (
            f"the tiny official TEST checkpoint ({GOLDEN_CHECKPOINT}): random weights, so the scores are "
            "meaningless; pass --checkpoint with a released Uni-Perceiver checkpoint for real predictions"
        )
    torch.manual_seed(0)
    tiny = UniPerceiverConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    save_for_pipeline(UniPerceiverModel(tiny).eval(), UniPerceiverProcessor(), workdir)
    return str(workdir), (
        "a RANDOMLY INITIALISED tiny model (no checkpoint given or found), so the scores are meaningless; pass "
        "--checkpoint with a released Uni-Perceiver checkpoint for real predictions"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a converted model folder")
    source.add_argument("--checkpoint", help="an official Uni-Perceiver checkpoint (.pth / .pt)")
    parser.add_argument("--config", help="with --checkpoint: 'base', 'large' or a config JSON")
    parser.add_argument("--images", nargs="+", help="image files (default: three drawn pictures)")
    parser.add_argument("--labels", nargs="+", default=DEFAULT_LABELS, help="candidate labels")
    parser.add_argument("--template", default="{}", help="prompt template for the labels, e.g. 'a photo of {}.'")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        folder, description = load_model_folder(args, Path(workdir))
        print(f"Model: {description}.")
        classify = pipeline("zero-shot-perception", model=folder)
        images = {path: path for path in args.images} if args.images else drawn_images()
        results = classify(list(images.values()), candidate_labels=args.labels, hypothesis_template=args.template)
    width = max(len(label) for label in args.labels)
    for name, result in zip(images, results):
        print(f"\n{name}")
        for entry in result:
            print(f"  {entry['label']:<{width}}  {entry['score']:.3f}  {'#' * round(40 * entry['score'])}")


if __name__ == "__main__":
    main()
