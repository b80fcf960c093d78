"""Do the package's from-scratch settings learn a dataset they have never seen? One command builds one, trains, scores.

    python examples/check_from_scratch.py --build shapes --output-dir runs/check_shapes
    python examples/check_from_scratch.py --dataset path/to/save_to_disk_folder --output-dir runs/check_mine

A recipe is written with exactly the `model` and `training` sections of `examples/recipes/shapes_local.yaml` (what a
user copies to start from scratch) and one `image_classification` task on the dataset's `train` split; it is trained
through `examples/pretrain.py`, and the `test` split is classified zero-shot by class name with
`pipeline("zero-shot-perception")`. The dataset is a `save_to_disk` `DatasetDict` with `train` and `test` splits,
an `image` column and a ClassLabel `label` whose names are the classes (short English phrases). Printed: top-1
accuracy against chance, the training wall time, and the recipe used. The goal (issue 20): >= 90 % top-1 for 8
classes of 60 training images each, in at most 10 minutes on 2 CPU cores.

`--build` draws one of three datasets offline, unlike anything the package's corpora hold:
- `shapes`: 8 outlined or filled figures in colours ("orange star", "hollow green triangle", ...), randomly placed,
  sized and rotated on noisy backgrounds;
- `emoji`: 8 emoji of Noto Color Emoji (`apt-get install fonts-noto-color-emoji`) named by their meaning ("a ripe
  banana", ...), small and off-centre on dark, textured backgrounds, unlike the corpus builder's renderings;
- `digits`: scikit-learn's handwritten digits 0-7 ("the digit zero", ...), thickened, as light ink on dark.
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter, ImageFont


ROOT = Path(__file__).resolve().parents[1]
SHAPES_RECIPE = ROOT / "examples" / "recipes" / "shapes_local.yaml"
SIZE = 96
TRAIN_PER_CLASS, TEST_PER_CLASS = 60, 25

SHAPE_CLASSES = {
    "orange star": ("star", (245, 140, 20), True),
    "hollow green triangle": ("triangle", (30, 170, 60), False),
    "blue cross": ("cross", (40, 70, 220), True),
    "pink ring": ("ring", (240, 90, 180), False),
    "black arrow": ("arrow", (15, 15, 15), True),
    "yellow diamond": ("diamond", (235, 215, 30), True),
    "red heart": ("heart", (215, 30, 40), True),
    "purple moon": ("moon", (130, 50, 190), True),
}
EMOJI_CLASSES = {
    "a ripe banana": "\U0001f34c",
    "a slice of pizza": "\U0001f355",
    "a snowman": "\u2603\ufe0f",
    "a rocket": "\U0001f680",
    "an orange cat": "\U0001f408",
    "an umbrella": "\u2602\ufe0f",
    "a guitar": "\U0001f3b8",
    "a light bulb": "\U0001f4a1",
}
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven"]
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"


def noisy_background(rng: random.Random, dark: bool = False) -> Image.Image:
    base = [rng.randrange(10, 90) if dark else rng.randrange(150, 256) for _ in range(3)]
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 12, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(np.array(base) + noise, 0, 255).astype(np.uint8))


def shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Outline points of a figure of radius `r`, turned by `angle` radians."""
    if kind == "star":
        points = [(r * (1 if i % 2 == 0 else 0.45), math.pi * i / 5) for i in range(10)]
    elif kind == "triangle":
        points = [(r, 2 * math.pi * i / 3) for i in range(3)]
    elif kind == "diamond":
        points = [(r * (1 if i % 2 == 0 else 0.6), math.pi * i / 2) for i in range(4)]
    elif kind == "cross":
        w = 0.35
        corners = [
            (w, 1),
            (w, w),
            (1, w),
            (1, -w),
            (w, -w),
            (w, -1),
            (-w, -1),
            (-w, -w),
            (-1, -w),
            (-1, w),
            (-w, w),
            (-w, 1),
        ]
        points = [(r * math.hypot(x, y), math.atan2(y, x)) for x, y in corners]
    elif kind == "arrow":
        corners = [(1, 0), (0.2, 0.7), (0.2, 0.25), (-1, 0.25), (-1, -0.25), (0.2, -0.25), (0.2, -0.7)]
        points = [(r * math.hypot(x, y), math.atan2(y, x)) for x, y in corners]
    elif kind == "heart":
        points = []
        for i in range(40):
            t = 2 * math.pi * i / 40
            x, y = (
                16 * math.sin(t) ** 3,
                13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t),
            )
            points.append((r / 16 * math.hypot(x, y), math.atan2(-y, x)))
    else:
        raise ValueError(f"`kind` must be a known figure, got {kind!r}.")
    return [(cx + d * math.cos(a + angle), cy + d * math.sin(a + angle)) for d, a in points]


def draw_shape(name: str, rng: random.Random) -> Image.Image:
    kind, colour, filled = SHAPE_CLASSES[name]
    image = noisy_background(rng)
    draw = ImageDraw.Draw(image)
    r = rng.uniform(0.18, 0.36) * SIZE
    cx, cy = rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r)
    colour = tuple(min(255, max(0, c + rng.randint(-25, 25))) for c in colour)
    width = max(2, int(r / 5))
    if kind == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=width)
    elif kind == "moon":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        offset = r * 0.55
        angle = rng.uniform(0, 2 * math.pi)
        ox, oy = cx + offset * math.cos(angle), cy + offset * math.sin(angle)
        draw.ellipse((ox - r * 0.85, oy - r * 0.85, ox + r * 0.85, oy + r * 0.85), fill=image.getpixel((1, 1)))
    else:
        points = shape_polygon(
            kind, cx, cy, r, rng.uniform(0, 2 * math.pi) if kind != "heart" else rng.uniform(-0.4, 0.4)
        )
        if filled:
            draw.polygon(points, fill=colour)
        else:
            draw.line(points + points[:1], fill=colour, width=width, joint="curve")
    return image


def draw_emoji(name: str, rng: random.Random, font: ImageFont.FreeTypeFont) -> Image.Image:
    glyph = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(glyph).text((0, 0), EMOJI_CLASSES[name], font=font, embedded_color=True)
    glyph = glyph.crop(glyph.getbbox())
    side = int(rng.uniform(0.3, 0.6) * SIZE)
    glyph = glyph.resize((side, side), Image.Resampling.LANCZOS).rotate(rng.uniform(-25, 25), expand=True)
    image = noisy_background(rng, dark=True)
    x, y = rng.randrange(0, SIZE - glyph.width + 1), rng.randrange(0, SIZE - glyph.height + 1)
    image.paste(glyph, (x, y), glyph)
    return image


def draw_digit(scan: np.ndarray, rng: random.Random) -> Image.Image:
    ink = Image.fromarray((scan * (255 / 16)).astype(np.uint8), "L")
    side = int(rng.uniform(0.45, 0.8) * SIZE)
    ink = ink.resize((side, side), Image.Resampling.BICUBIC).filter(ImageFilter.MaxFilter(3))
    image = noisy_background(rng, dark=True)
    colour = tuple(rng.randrange(170, 256) for _ in range(3))
    image.paste(colour, (rng.randrange(0, SIZE - side + 1), rng.randrange(0, SIZE - side + 1)), ink)
    return image


def build_dataset(kind: str, output: Path, seed: int = 0):
    """Draws `kind` ("shapes", "emoji" or "digits") as a DatasetDict with train/test splits in `output`."""
    import datasets

    rng = random.Random(seed)
    if kind == "shapes":
        names = list(SHAPE_CLASSES)
        draw = draw_shape
    elif kind == "emoji":
        if not os.path.isfile(EMOJI_FONT):
            sys.exit(f"--build emoji needs {EMOJI_FONT}: apt-get install fonts-noto-color-emoji")
        font = ImageFont.truetype(EMOJI_FONT, 109)
        names = list(EMOJI_CLASSES)

        def draw(name, rng):
            return draw_emoji(name, rng, font)
    elif kind == "digits":
        from sklearn.datasets import load_digits

        scans = load_digits()
        names = [f"the digit {name}" for name in DIGIT_NAMES]
        pools = {name: [s for s, t in zip(scans.images, scans.target) if t == i] for i, name in enumerate(names)}
        rng.shuffle(pools[names[0]])

        def draw(name, rng, counter={}):
            index = counter[name] = counter.get(name, -1) + 1
            return draw_digit(pools[name][index % len(pools[name])], rng)
    else:
        raise ValueError(f"`kind` must be shapes, emoji or digits, got {kind!r}.")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    splits = {}
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        rows = [(draw(name, rng), label) for label, name in enumerate(names) for _ in range(count)]
        splits[split] = datasets.Dataset.from_dict(
            {"image": [image for image, _ in rows], "label": [label for _, label in rows]}, features=features
        )
    dataset = datasets.DatasetDict(splits)
    dataset.save_to_disk(str(output))
    return dataset


def write_recipe(dataset: Path, path: Path, settings: Path = SHAPES_RECIPE) -> dict:
    """The `model` and `training` sections of `settings` with one image classification task on `dataset`."""
    base = yaml.safe_load(settings.read_text())
    task = {
        "name": "classification",
        "type": "image_classification",
        "batch_size": 32,
        "dataset": str(dataset),
    }
    recipe = {
        "seed": base.get("seed", 0),
        "monitor": True,
        "model": base["model"],
        "training": base["training"],
        "tasks": [task],
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return recipe


def evaluate(model_dir: Path, dataset: Path) -> tuple[float, int]:
    """Top-1 of the test split, zero-shot against the class names, through `pipeline("zero-shot-perception")`,
    and the number of classes."""
    import datasets
    from transformers import pipeline

    import uniperceiver_hf  # noqa: F401  (registers the pipeline)

    test = datasets.load_from_disk(str(dataset))["test"]
    names = test.features["label"].names
    pipe = pipeline("zero-shot-perception", model=str(model_dir))
    predictions = pipe([row["image"] for row in test], candidate_labels=names)
    hits = [prediction[0]["label"] == names[label] for prediction, label in zip(predictions, test["label"])]
    return sum(hits) / len(hits), len(names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a save_to_disk DatasetDict (train/test, image, ClassLabel label)")
    source.add_argument("--build", choices=("shapes", "emoji", "digits"), help="draw this dataset first")
    parser.add_argument("--output-dir", required=True, help="the dataset (with --build), recipe and run go here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn dataset")
    parser.add_argument(
        "--settings",
        default=str(SHAPES_RECIPE),
        help="the recipe whose `model` and `training` sections are checked (default: shapes_local)",
    )
    args = parser.parse_args(argv)

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    dataset = Path(args.dataset) if args.dataset else output / "dataset"
    if args.build:
        build_dataset(args.build, dataset, args.seed)
    recipe = write_recipe(dataset.resolve(), output / "recipe.yaml", Path(args.settings))
    start = time.time()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "pretrain.py"),
            "--recipe",
            str(output / "recipe.yaml"),
            "--output-dir",
            str(output / "run"),
        ],
        check=True,
    )
    wall = time.time() - start
    accuracy, classes = evaluate(output / "run" / "final", dataset)
    result = {
        "dataset": str(dataset),
        "accuracy": accuracy,
        "chance": 1 / classes,
        "train_wall_s": round(wall, 1),
        "max_steps": recipe["training"]["max_steps"],
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    (output / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
