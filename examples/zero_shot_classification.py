"""The main job: Uni-Perceiver perceiving images, a video and a text with no task-specific training.

    python examples/zero_shot_classification.py [--model DIR | --checkpoint PATH] [--images ...] [--labels ...]

Without options it runs the package's default model (`models/uniperceiver-tiny-emoji`, trained by
`examples/pretrain.py --recipe examples/recipes/default_model.yaml` on emoji, handwritten digits, moving-emoji clips
and fortunes) on inputs it makes itself, offline: drawn shapes against emoji names, handwritten digits against the
digit names and as a question, a drawn clip against the motions, a text against topics, captions and a retrieval.
`--images` (with `--labels`) scores and captions your own images instead. `--model` takes any converted
folder, `--checkpoint` an official checkpoint (converted on the fly).
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from transformers import pipeline

import uniperceiver_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from uniperceiver_hf.tools.convert import convert_checkpoint


DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "uniperceiver-tiny-emoji"
# Emoji names of the default model's pre-training data, which the drawn shapes resemble.
SHAPE_LABELS = ["red circle", "blue square", "yellow circle", "green square", "purple circle"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MOTIONS = ["moving left", "moving right", "moving up", "moving down", "growing", "shrinking", "turning"]
TOPICS = ["computers", "food", "law", "science", "startrek", "work"]
TEXT = "The only way to learn a new programming language is by writing programs in it."
SIZE = 128


def drawn_shapes() -> dict[str, Image.Image]:
    """A red circle, a blue square and a yellow circle, each on a plain grey or white background."""
    shapes = {}
    for name, shape, fill, background in (
        ("red circle", "ellipse", (220, 35, 35), (240, 240, 240)),
        ("blue square", "rectangle", (40, 80, 215), (240, 240, 240)),
        ("yellow circle", "ellipse", (245, 210, 40), (128, 128, 128)),
    ):
        image = Image.new("RGB", (SIZE, SIZE), background)
        getattr(ImageDraw.Draw(image), shape)((24, 24, SIZE - 24, SIZE - 24), fill=fill)
        shapes[f"drawn: {name}"] = image
    return shapes


def handwritten_digits(which: tuple[int, ...] = (3, 7)) -> dict[str, Image.Image]:
    """scikit-learn's handwritten digits (8 x 8 scans, upscaled), written in black on white."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 (installed with the demo's extras)

    digits = load_digits()
    images = {}
    for digit in which:
        scan = digits.images[list(digits.target).index(digit)]
        ink = Image.fromarray((scan * (255 / 16)).astype(np.uint8), "L").resize((80, 80), Image.Resampling.BILINEAR)
        image = Image.new("RGB", (SIZE, SIZE), (242, 242, 242))
        image.paste((22, 22, 22), (24, 24), ink)
        images[f"handwritten {DIGITS[digit]}"] = image
    return images


def moving_clip(frames: int = 16) -> np.ndarray:
    """A red circle crossing a white frame from right to left: `[T, H, W, 3]` uint8."""
    clip = []
    for index in range(frames):
        frame = Image.new("RGB", (SIZE, SIZE), (240, 240, 240))
        x = round((SIZE - 48) * (1 - index / (frames - 1)))
        ImageDraw.Draw(frame).ellipse((x, 40, x + 48, 88), fill=(220, 35, 35))
        clip.append(np.asarray(frame))
    return np.stack(clip)


def load_model_folder(args, workdir: Path) -> tuple[str, str]:
    """(folder to load, a sentence saying what it is)."""
    if args.model:
        return args.model, f"the model in {args.model}"
    if args.checkpoint:
        convert_checkpoint(args.checkpoint, workdir, args.config)
        return str(workdir), f"the official checkpoint {args.checkpoint}, converted on the fly"
    if not (DEFAULT_MODEL / "config.json").is_file():
        raise SystemExit(f"The default model is missing from {DEFAULT_MODEL}; pass --model or --checkpoint.")
    return str(DEFAULT_MODEL), f"the default model {DEFAULT_MODEL.name} (see its MODEL_CARD.md for what it can do)"


def show(title: str, names, results, top_k: int = 3) -> None:
    """Each input's best `top_k` candidates as a bar chart."""
    print(f"\n== {title}")
    for name, result in zip(names, results):
        print(f"{name}")
        width = max(len(entry["label"]) for entry in result[:top_k])
        for entry in result[:top_k]:
            print(f"    {entry['label']:<{width}}  {entry['score']:.3f}  {'#' * round(30 * entry['score'])}")


def show_captions(perceive, images: dict) -> None:
    """A caption for each image: beam search over the whole vocabulary (encoded once, on first use)."""
    print("\n== Captions (beam search over the vocabulary)")
    width = max(len(name) for name in images)
    for name, caption in zip(images, perceive.caption(list(images.values()))):
        print(f"{name:<{width}}  {caption['generated_text']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a converted or trained model folder (default: the shipped default model)")
    source.add_argument("--checkpoint", help="an official Uni-Perceiver checkpoint (.pth / .pt)")
    parser.add_argument("--config", help="with --checkpoint: 'base', 'large' or a config JSON")
    parser.add_argument("--images", nargs="+", help="image files (default: three drawn shapes)")
    parser.add_argument("--labels", nargs="+", default=SHAPE_LABELS, help="candidate labels for the images")
    parser.add_argument("--template", default="{}", help="prompt template for the labels, e.g. 'a photo of {}.'")
    args = parser.parse_args(argv)
    if args.model and not Path(args.model).is_dir():
        parser.error(f"--model: no such folder: {args.model}")
    if args.images:
        missing = [path for path in args.images if not Path(path).is_file()]
        if missing:
            parser.error(f"--images: no such file: {', '.join(missing)}")

    with tempfile.TemporaryDirectory() as workdir:
        folder, description = load_model_folder(args, Path(workdir))
        print(f"Model: {description}.")
        try:
            perceive = pipeline("zero-shot-perception", model=folder)
        except OSError as error:
            raise SystemExit(f"error: --model: cannot load {folder!r}: {error}") from None
    images = {path: path for path in args.images} if args.images else drawn_shapes()
    try:
        results = perceive(list(images.values()), candidate_labels=args.labels, hypothesis_template=args.template)
    except ValueError as error:  # an image that cannot be decoded, an empty label: say which, no traceback
        raise SystemExit(f"error: {error}") from None
    show("Images against labels", images, results)
    if args.images:
        show_captions(perceive, images)
        return

    digits = handwritten_digits()
    show(
        "Handwritten digits against the digit names", digits, perceive(list(digits.values()), candidate_labels=DIGITS)
    )
    questions = [{"image": image, "question": "what number is this?"} for image in digits.values()]
    show('Visual question answering: "what number is this?"', digits, perceive(questions, candidate_labels=DIGITS))
    show(
        "A clip against the motions",
        ["drawn: a red circle moving left"],
        [perceive(moving_clip(), candidate_labels=MOTIONS)],
    )
    show("A text against topics", [TEXT], [perceive(TEXT, candidate_labels=TOPICS)])
    gallery = {**images, **digits}
    show_captions(perceive, gallery)
    query = "a handwritten digit seven"
    ranked = perceive(query, candidate_images=list(gallery.values()), candidate_names=list(gallery))
    show(f'Retrieval: "{query}" against the pictures above', [query], [ranked])


if __name__ == "__main__":
    main()
