"""Build the shapes corpus: a tiny, fully synthetic, deterministic multimodal corpus for local training runs and tests.

    python examples/data/build_shapes_corpus.py --output DIR [--size 64 --images-per-class 20 --videos-per-class 6
        --frames 8 --texts 600 --seed 0] [--overwrite]

Everything is drawn with PIL and encoded with PyAV; nothing is downloaded. Three `datasets.DatasetDict`s with
train / validation / test splits (70/15/15 per class or topic) are written with `save_to_disk`:

| folder | columns | tasks it serves |
|---|---|---|
| DIR/images | image, label (24 "colour shape" classes), shape, colour, caption, question, answer | image classification, image-text retrieval, captioning, VQA |
| DIR/videos | video (absolute path of an mp4 in DIR/videos/clips/), label (6 motions), caption | video classification, video-text retrieval, video captioning |
| DIR/text | text, text_pair (a paraphrase of the same fact), label (topic) | masked / causal LM, text-text retrieval, text classification |

plus DIR/README.md (the data card) and DIR/corpus.json (the parameters and counts). Every random choice comes from
`random.Random` streams seeded by `--seed`, one per dataset: the same arguments give the same bytes.
The video paths are absolute: after moving the folder, rebuild it (seconds) or rewrite the column.
"""

import argparse
import json
import math
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import av
import datasets
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
}
CLASS_NAMES = tuple(f"{colour} {shape}" for colour in COLOURS for shape in SHAPES)
MOTIONS = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")
TOPICS = ("colour", "position", "size", "motion")
SPLITS = ("train", "validation", "test")
FPS = 8
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down, for smooth edges

CAPTION_TEMPLATES = (
    "a {colour} {shape} on a {tone} background",
    "a {colour} {shape} in the {vertical} {horizontal}",
    "a picture of a {colour} {shape}",
    "a {tone} background with a {colour} {shape}",
)
# One question per image; the kinds take turns over each split's rows, the wording is drawn.
QUESTIONS = {
    "shape": ("what shape is this?", "which shape is in the picture?"),
    "colour": ("what colour is the shape?", "what colour is the {shape}?"),
    "horizontal": ("is the shape on the left or the right?", "is the {shape} on the left or the right?"),
    "vertical": ("is the shape at the top or the bottom?", "is the {shape} at the top or the bottom?"),
    "tone": ("is the background light or dark?",),
}
VIDEO_CAPTION_TEMPLATES = ("a {colour} {shape} {motion}", "a {colour} {shape} {motion} on a {tone} background")

POSITIONS = ("above", "below", "to the left of", "to the right of")
SIZES = ("bigger", "smaller")
INVERSE = {"above": "below", "below": "above", "to the left of": "to the right of",
           "to the right of": "to the left of", "bigger": "smaller", "smaller": "bigger"}
MOTION_PHRASES = {
    "left": ("moves to the left", "is moving left", "goes left"),
    "right": ("moves to the right", "is moving right", "goes right"),
    "up": ("moves up", "is moving up", "goes up"),
    "down": ("moves down", "is moving down", "goes down"),
    "grow": ("grows", "is growing", "gets bigger"),
    "shrink": ("shrinks", "is shrinking", "gets smaller"),
}
SPEEDS = ("slowly", "quickly")


@dataclass(frozen=True)
class Scene:
    """One shape on a plain background; coordinates in pixels of the final image, angle in degrees."""

    shape: str
    colour: tuple[int, int, int]
    background: tuple[int, int, int]
    x: float
    y: float
    radius: float
    angle: float = 0.0


def shape_vertices(shape: str, x: float, y: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Corners of a regular square, triangle (apex up) or five-pointed star inscribed in the circle (x, y, radius)."""
    count, radii, start = {"square": (4, (1.0,), 45.0), "triangle": (3, (1.0,), -90.0),
                           "star": (10, (1.0, 0.45), -90.0)}[shape]
    points = []
    for k in range(count):
        theta = math.radians(start + angle + k * 360.0 / count)
        r = radius * radii[k % len(radii)]
        points.append((x + r * math.cos(theta), y + r * math.sin(theta)))
    return points


def render(scene: Scene, size: int) -> Image.Image:
    """The scene as a `size` x `size` RGB image."""
    scale = SUPERSAMPLE
    canvas = Image.new("RGB", (size * scale, size * scale), scene.background)
    draw = ImageDraw.Draw(canvas)
    x, y, r = scene.x * scale, scene.y * scale, scene.radius * scale
    if scene.shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=scene.colour)
    else:
        draw.polygon(shape_vertices(scene.shape, x, y, r, scene.angle), fill=scene.colour)
    return canvas.resize((size, size), Image.Resampling.BOX)


def split_sizes(count: int) -> tuple[int, int, int]:
    """70/15/15 (train, validation, test), with one validation and one test item as soon as there are three."""
    held_out = max(1, round(0.15 * count)) if count >= 3 else 0
    return count - 2 * held_out, held_out, held_out


def split_items(items: list) -> dict[str, list]:
    """Cut one class's items (drawn independently, so any cut is a random one) 70/15/15 in order."""
    train, validation, _ = split_sizes(len(items))
    return {"train": items[:train], "validation": items[train:train + validation],
            "test": items[train + validation:]}


def with_articles(sentence: str) -> str:
    """"a orange star" -> "an orange star": the templates write "a" before every colour and shape."""
    return re.sub(r"\ba (?=[aeiou])", "an ", sentence)


def _jitter(rgb: tuple[int, int, int], amount: int, rng: random.Random) -> tuple[int, int, int]:
    return tuple(min(255, max(0, value + rng.randint(-amount, amount))) for value in rgb)


def random_background(rng: random.Random) -> tuple[str, tuple[int, int, int]]:
    """A light or dark, slightly tinted grey, and its tone word."""
    tone = rng.choice(("light", "dark"))
    level = rng.randint(185, 235) if tone == "light" else rng.randint(20, 70)
    return tone, _jitter((level, level, level), 8, rng)


def random_image_scene(shape: str, colour: str, size: int, rng: random.Random) -> tuple[Scene, dict[str, str]]:
    """A shape placed clearly in one quadrant (centre at least 8% of the side off the middle lines), with its facts."""
    tone, background = random_background(rng)
    radius = rng.uniform(0.15, 0.25) * size
    horizontal, vertical = rng.choice(("left", "right")), rng.choice(("top", "bottom"))
    near, far = (radius + 1, 0.42 * size), (0.58 * size, size - radius - 1)
    x = rng.uniform(*(near if horizontal == "left" else far))
    y = rng.uniform(*(near if vertical == "top" else far))
    angle = rng.uniform(-20.0, 20.0) if rng.random() < 0.5 else 0.0
    scene = Scene(shape, _jitter(COLOURS[colour], 15, rng), background, x, y, radius, angle)
    facts = {"shape": shape, "colour": colour, "tone": tone, "horizontal": horizontal, "vertical": vertical}
    return scene, facts


def build_images(size: int, images_per_class: int, rng: random.Random) -> datasets.DatasetDict:
    """`images_per_class` drawings of each colour-shape class, each with a caption and one question about it."""
    features = datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(CLASS_NAMES)),
        "shape": datasets.ClassLabel(names=list(SHAPES)),
        "colour": datasets.ClassLabel(names=list(COLOURS)),
        "caption": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
    })
    rows = {split: [] for split in SPLITS}
    for colour in COLOURS:
        for shape in SHAPES:
            drawn = [random_image_scene(shape, colour, size, rng) for _ in range(images_per_class)]
            for split, items in split_items(drawn).items():
                rows[split].extend(items)
    splits = {}
    for split in SPLITS:
        rng.shuffle(rows[split])
        columns = {name: [] for name in features}
        for index, (scene, facts) in enumerate(rows[split]):
            kind = tuple(QUESTIONS)[index % len(QUESTIONS)]
            columns["image"].append(render(scene, size))
            columns["label"].append(CLASS_NAMES.index(f"{facts['colour']} {facts['shape']}"))
            columns["shape"].append(SHAPES.index(facts["shape"]))
            columns["colour"].append(tuple(COLOURS).index(facts["colour"]))
            columns["caption"].append(with_articles(rng.choice(CAPTION_TEMPLATES).format(**facts)))
            columns["question"].append(rng.choice(QUESTIONS[kind]).format(**facts))
            columns["answer"].append(facts[kind])
        splits[split] = datasets.Dataset.from_dict(columns, features=features)
    return datasets.DatasetDict(splits)


def random_clip(motion: str, size: int, frames: int, rng: random.Random) -> tuple[list[Scene], dict[str, str]]:
    """Per-frame scenes of one shape moving (35-50% of the side) or growing / shrinking (2.2-5x), and its facts."""
    shape, colour = rng.choice(SHAPES), rng.choice(tuple(COLOURS))
    tone, background = random_background(rng)
    angle = rng.uniform(-20.0, 20.0) if rng.random() < 0.5 else 0.0
    if motion in ("growing", "shrinking"):
        small, large = rng.uniform(0.06, 0.1) * size, rng.uniform(0.22, 0.3) * size
        x, y = rng.uniform(large + 1, size - large - 1), rng.uniform(large + 1, size - large - 1)
        radii = (small, large) if motion == "growing" else (large, small)
        start, end = (x, y, radii[0]), (x, y, radii[1])
    else:
        radius = rng.uniform(0.1, 0.15) * size
        low, high = radius + 1, size - radius - 1
        travel = rng.uniform(0.35, 0.5) * size
        near = rng.uniform(low, high - travel)
        across = rng.uniform(low, high)
        ends = (near + travel, near) if motion in ("moving left", "moving up") else (near, near + travel)
        if motion in ("moving left", "moving right"):
            start, end = (ends[0], across, radius), (ends[1], across, radius)
        else:
            start, end = (across, ends[0], radius), (across, ends[1], radius)
    base = Scene(shape, _jitter(COLOURS[colour], 15, rng), background, *start, angle)
    scenes = []
    for index in range(frames):
        t = index / (frames - 1)
        x, y, radius = (a + t * (b - a) for a, b in zip(start, end))
        scenes.append(replace(base, x=x, y=y, radius=radius))
    return scenes, {"shape": shape, "colour": colour, "tone": tone, "motion": motion}


def write_clip(path: Path, images: list[Image.Image]) -> None:
    """An H.264 mp4 (yuv420p, `FPS` frames a second) of the images, which must have even sides."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "18"})
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())


def build_videos(folder: Path, clip_root: Path, size: int, videos_per_class: int, frames: int,
                 rng: random.Random) -> datasets.DatasetDict:
    """Clips are written to `folder` but their `video` paths name `clip_root` (where the corpus ends up)."""
    features = datasets.Features({
        "video": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(MOTIONS)),
        "caption": datasets.Value("string"),
    })
    folder.mkdir(parents=True)
    splits = {split: {name: [] for name in features} for split in SPLITS}
    for label, motion in enumerate(MOTIONS):
        clips = [random_clip(motion, size, frames, rng) for _ in range(videos_per_class)]
        for split, items in split_items(clips).items():
            for number, (scenes, facts) in enumerate(items):
                name = f"{split}-{motion.replace(' ', '-')}-{number:03d}.mp4"
                write_clip(folder / name, [render(scene, size) for scene in scenes])
                splits[split]["video"].append(str(clip_root / name))
                splits[split]["label"].append(label)
                splits[split]["caption"].append(with_articles(rng.choice(VIDEO_CAPTION_TEMPLATES).format(**facts)))
    result = {}
    for split, columns in splits.items():
        order = list(range(len(columns["video"])))
        rng.shuffle(order)
        result[split] = datasets.Dataset.from_dict({k: [v[i] for i in order] for k, v in columns.items()},
                                                   features=features)
    return datasets.DatasetDict(result)


def text_facts(topic: str) -> list[tuple]:
    """Every fact a topic's sentences can state."""
    if topic == "colour":
        return [(s1, c1, s2, c2) for s1 in SHAPES for s2 in SHAPES if s1 != s2
                for c1 in COLOURS for c2 in COLOURS if c1 != c2]
    if topic in ("position", "size"):
        relations = POSITIONS if topic == "position" else SIZES
        return [(a, relation, b) for a in CLASS_NAMES for b in CLASS_NAMES if a != b for relation in relations]
    return [(a, motion, speed) for a in CLASS_NAMES for motion in MOTION_PHRASES for speed in SPEEDS]


def describe(topic: str, fact: tuple, rng: random.Random) -> tuple[str, str]:
    """A sentence stating the fact and a differently worded one stating the same fact."""
    if topic == "colour":
        s1, c1, s2, c2 = fact
        text = f"the {s1} is {c1} and the {s2} is {c2} ."
        pair = rng.choice((f"the {c1} shape is a {s1} and the {c2} shape is a {s2} .",
                           f"the {s2} is {c2} while the {s1} is {c1} ."))
    elif topic == "position":
        a, relation, b = fact
        text = rng.choice((f"the {a} is {relation} the {b} .", f"there is a {a} {relation} the {b} ."))
        pair = rng.choice((f"the {b} is {INVERSE[relation]} the {a} .",
                           f"there is a {b} {INVERSE[relation]} the {a} .", f"the {a} sits {relation} the {b} ."))
    elif topic == "size":
        a, relation, b = fact
        text = f"the {a} is {relation} than the {b} ."
        pair = rng.choice((f"the {b} is {INVERSE[relation]} than the {a} .",
                           f"the {a} looks {relation} than the {b} ."))
    else:
        a, motion, speed = fact
        first, second = rng.sample(MOTION_PHRASES[motion], 2)
        text, pair = f"a {a} {first} {speed} .", f"the {a} {second} {speed} ."
    return with_articles(text), with_articles(pair)


def max_texts() -> int:
    """The most sentence pairs with distinct facts an even share per topic allows (the smallest topic's size)."""
    return len(TOPICS) * min(len(text_facts(topic)) for topic in TOPICS)


def build_text(texts: int, rng: random.Random) -> datasets.DatasetDict:
    """`texts` distinct facts, shared out evenly over the topics, each split 70/15/15."""
    features = datasets.Features({
        "text": datasets.Value("string"),
        "text_pair": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(TOPICS)),
    })
    rows = {split: [] for split in SPLITS}
    per_topic, extra = divmod(texts, len(TOPICS))
    for label, topic in enumerate(TOPICS):
        facts = rng.sample(text_facts(topic), per_topic + (label < extra))
        for split, items in split_items(facts).items():
            rows[split].extend((*describe(topic, fact, rng), label) for fact in items)
    result = {}
    for split in SPLITS:
        rng.shuffle(rows[split])
        result[split] = datasets.Dataset.from_dict(
            {name: [row[i] for row in rows[split]] for i, name in enumerate(features)}, features=features)
    return datasets.DatasetDict(result)


def _check_count(name: str, value, minimum: int, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum else f">= {minimum}"
        raise ValueError(f"`{name}`={value!r}: expected an integer {bound}.")


def _prepare_output(output: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless `overwrite`, and even then one that is not a shapes corpus."""
    if output.exists() and not output.is_dir():
        raise ValueError(f"`output`={str(output)!r} is a file; expected a folder (new or empty).")
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not overwrite:
        raise ValueError(f"`output`={str(output)!r} already exists and is not empty; pass `--overwrite` "
                         "(overwrite=True) to replace a shapes corpus there, or choose a new folder.")
    if not (output / "corpus.json").is_file():
        raise ValueError(f"`output`={str(output)!r} is not empty and holds no corpus.json, so it is not a shapes "
                         "corpus; refusing to overwrite it.")


def data_card(parameters: dict, counts: dict) -> str:
    """DIR/README.md: what the corpus holds, its counts, how to rebuild it and its licence."""
    arguments = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in parameters.items())
    rows = "\n".join(f"| {name} | " + " | ".join(str(counts[name][split]) for split in SPLITS) + " |"
                     for name in counts)
    return f"""# Shapes corpus

A tiny, fully synthetic multimodal corpus for quick local training runs and tests of uniperceiver-hf.
Every image, clip and sentence is generated by `examples/data/build_shapes_corpus.py`: shapes
({", ".join(SHAPES)}) in colours ({", ".join(COLOURS)}) drawn with PIL on light or dark grey backgrounds.

| dataset | {" | ".join(SPLITS)} |
|---|---|---|---|
{rows}

- `images/` (`datasets.load_from_disk`): `image` (Image, {parameters["size"]}x{parameters["size"]} RGB), `label`
  (ClassLabel, {len(CLASS_NAMES)} names such as "red circle"), `shape` (ClassLabel, {len(SHAPES)}), `colour`
  (ClassLabel, {len(COLOURS)}), `caption`, `question`, `answer` (strings; the answers describe the drawn image:
  shape, colour, left/right, top/bottom, light/dark background).
- `videos/`: `video` (absolute path of an H.264 mp4 in `videos/clips/`, {parameters["frames"]} frames at {FPS} fps),
  `label` (ClassLabel: {", ".join(MOTIONS)}), `caption` ("a red circle moving left").
  The paths are absolute: after moving the folder, rebuild it or rewrite the column.
- `text/`: `text`, `text_pair` (a paraphrase of the same fact, for text-text retrieval), `label` (ClassLabel topic:
  {", ".join(TOPICS)}).

Splits are 70/15/15 per class (images, videos) or per topic (text), fixed by the seed.

## Rebuild

    python examples/data/build_shapes_corpus.py --output DIR {arguments}

The same arguments give the same files.

## Licence

Generated data; no third-party data, images or text. Released under the project's licence (Apache-2.0).
"""


def build_shapes_corpus(output: str | os.PathLike, *, size: int = 64, images_per_class: int = 20,
                        videos_per_class: int = 6, frames: int = 8, texts: int = 600, seed: int = 0,
                        overwrite: bool = False) -> dict[str, datasets.DatasetDict]:
    """Build the corpus into `output` (see the module docstring) and return {"images", "videos", "text"}.

    The folder is built next to `output` and moved into place at the end, so a failed build leaves nothing behind
    and a replaced corpus stays intact until the new one is complete.
    """
    _check_count("size", size, 16)
    if size % 2:
        raise ValueError(f"`size`={size}: expected an even number (the clips are yuv420p, which halves the sides).")
    _check_count("images_per_class", images_per_class, 1)
    _check_count("videos_per_class", videos_per_class, 1)
    _check_count("frames", frames, 2)
    _check_count("texts", texts, 1, max_texts())
    _check_count("seed", seed, 0)
    output = Path(output).expanduser().resolve()
    _prepare_output(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"size": size, "images_per_class": images_per_class, "videos_per_class": videos_per_class,
                  "frames": frames, "texts": texts, "seed": seed}
    staging = output.with_name(f".{output.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed build in a process with the same id
    staging.mkdir()
    try:
        corpus = {
            "images": build_images(size, images_per_class, random.Random(f"{seed}-images")),
            "videos": build_videos(staging / "videos" / "clips", output / "videos" / "clips", size,
                                   videos_per_class, frames, random.Random(f"{seed}-videos")),
            "text": build_text(texts, random.Random(f"{seed}-text")),
        }
        for name, dataset in corpus.items():
            # One shard each: `datasets` otherwise writes an empty split (1-2 items per class) as no shard at all,
            # which `load_from_disk` cannot read back.
            dataset.save_to_disk(str(staging / name), num_shards={split: 1 for split in SPLITS})
        counts = {name: {split: dataset[split].num_rows for split in SPLITS} for name, dataset in corpus.items()}
        (staging / "README.md").write_text(data_card(parameters, counts))
        (staging / "corpus.json").write_text(json.dumps({"name": "shapes", "parameters": parameters,
                                                         "counts": counts}, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True,
                        help="folder to create (new, empty, or an old shapes corpus with --overwrite)")
    parser.add_argument("--size", type=int, default=64, help="image and frame side in pixels (even)")
    parser.add_argument("--images-per-class", type=int, default=20)
    parser.add_argument("--videos-per-class", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--texts", type=int, default=600, help=f"sentence pairs (at most {max_texts()})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing shapes corpus in --output")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    start = time.perf_counter()
    try:
        corpus = build_shapes_corpus(args.output, size=args.size, images_per_class=args.images_per_class,
                                     videos_per_class=args.videos_per_class, frames=args.frames, texts=args.texts,
                                     seed=args.seed, overwrite=args.overwrite)
    except ValueError as error:
        parser.error(str(error))
    for name, dataset in corpus.items():
        print(f"{name}: " + ", ".join(f"{split} {dataset[split].num_rows}" for split in SPLITS))
    print(f"wrote {Path(args.output).resolve()} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
