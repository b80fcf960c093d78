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

import math
import os
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

import corpus_writing as writing
import datasets
from corpus_writing import FPS, SPLITS
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
INVERSE = {
    "above": "below",
    "below": "above",
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "bigger": "smaller",
    "smaller": "bigger",
}
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
    count, radii, start = {
        "square": (4, (1.0,), 45.0),
        "triangle": (3, (1.0,), -90.0),
        "star": (10, (1.0, 0.45), -90.0),
    }[shape]
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


def with_articles(sentence: str) -> str:
    """ "a orange star" -> "an orange star": the templates write "a" before every colour and shape."""
    return re.sub(r"\ba (?=[aeiou])", "an ", sentence)


def random_background(rng: random.Random) -> tuple[str, tuple[int, int, int]]:
    """A light or dark, slightly tinted grey, and its tone word."""
    tone = rng.choice(("light", "dark"))
    level = rng.randint(185, 235) if tone == "light" else rng.randint(20, 70)
    return tone, writing.jitter_colour((level, level, level), 8, rng)


def random_image_scene(shape: str, colour: str, size: int, rng: random.Random) -> tuple[Scene, dict[str, str]]:
    """A shape placed clearly in one quadrant (centre at least 8% of the side off the middle lines), with its facts."""
    tone, background = random_background(rng)
    radius = rng.uniform(0.15, 0.25) * size
    horizontal, vertical = rng.choice(("left", "right")), rng.choice(("top", "bottom"))
    near, far = (radius + 1, 0.42 * size), (0.58 * size, size - radius - 1)
    x = rng.uniform(*(near if horizontal == "left" else far))
    y = rng.uniform(*(near if vertical == "top" else far))
    angle = rng.uniform(-20.0, 20.0) if rng.random() < 0.5 else 0.0
    scene = Scene(shape, writing.jitter_colour(COLOURS[colour], 15, rng), background, x, y, radius, angle)
    facts = {"shape": shape, "colour": colour, "tone": tone, "horizontal": horizontal, "vertical": vertical}
    return scene, facts


def build_images(size: int, images_per_class: int, rng: random.Random) -> datasets.DatasetDict:
    """`images_per_class` drawings of each colour-shape class, each with a caption and one question about it."""
    features = writing.image_features(label=CLASS_NAMES, shape=SHAPES, colour=COLOURS)
    rows = {split: [] for split in SPLITS}
    for colour in COLOURS:
        for shape in SHAPES:
            drawn = [random_image_scene(shape, colour, size, rng) for _ in range(images_per_class)]
            for split, items in writing.split_items(drawn).items():
                rows[split].extend(items)

    def make_row(index: int, row: tuple[Scene, dict[str, str]]) -> dict:
        scene, facts = row
        kind = tuple(QUESTIONS)[index % len(QUESTIONS)]
        return {
            "image": render(scene, size),
            "label": CLASS_NAMES.index(f"{facts['colour']} {facts['shape']}"),
            "shape": SHAPES.index(facts["shape"]),
            "colour": tuple(COLOURS).index(facts["colour"]),
            "caption": with_articles(rng.choice(CAPTION_TEMPLATES).format(**facts)),
            "question": rng.choice(QUESTIONS[kind]).format(**facts),
            "answer": facts[kind],
        }

    return writing.shuffled_splits(rows, features, rng, make_row)


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
    base = Scene(shape, writing.jitter_colour(COLOURS[colour], 15, rng), background, *start, angle)
    scenes = []
    for index in range(frames):
        t = index / (frames - 1)
        x, y, radius = (a + t * (b - a) for a, b in zip(start, end))
        scenes.append(replace(base, x=x, y=y, radius=radius))
    return scenes, {"shape": shape, "colour": colour, "tone": tone, "motion": motion}


def build_videos(
    folder: Path, clip_root: Path, size: int, videos_per_class: int, frames: int, rng: random.Random
) -> datasets.DatasetDict:
    """Clips are written to `folder` but their `video` paths name `clip_root` (where the corpus ends up)."""
    features = writing.video_features(MOTIONS)
    folder.mkdir(parents=True)
    rows = {split: [] for split in SPLITS}
    for label, motion in enumerate(MOTIONS):
        clips = [random_clip(motion, size, frames, rng) for _ in range(videos_per_class)]
        for split, items in writing.split_items(clips).items():
            for number, (scenes, facts) in enumerate(items):
                name = writing.clip_file_name(split, motion, number)
                writing.write_clip(folder / name, [render(scene, size) for scene in scenes])
                caption = with_articles(rng.choice(VIDEO_CAPTION_TEMPLATES).format(**facts))
                rows[split].append((str(clip_root / name), label, caption))
    return writing.shuffled_splits(rows, features, rng)


def text_facts(topic: str) -> list[tuple]:
    """Every fact a topic's sentences can state."""
    if topic == "colour":
        return [
            (s1, c1, s2, c2)
            for s1 in SHAPES
            for s2 in SHAPES
            if s1 != s2
            for c1 in COLOURS
            for c2 in COLOURS
            if c1 != c2
        ]
    if topic in ("position", "size"):
        relations = POSITIONS if topic == "position" else SIZES
        return [(a, relation, b) for a in CLASS_NAMES for b in CLASS_NAMES if a != b for relation in relations]
    return [(a, motion, speed) for a in CLASS_NAMES for motion in MOTION_PHRASES for speed in SPEEDS]


def describe(topic: str, fact: tuple, rng: random.Random) -> tuple[str, str]:
    """A sentence stating the fact and a differently worded one stating the same fact."""
    if topic == "colour":
        s1, c1, s2, c2 = fact
        text = f"the {s1} is {c1} and the {s2} is {c2} ."
        pair = rng.choice(
            (f"the {c1} shape is a {s1} and the {c2} shape is a {s2} .", f"the {s2} is {c2} while the {s1} is {c1} .")
        )
    elif topic == "position":
        a, relation, b = fact
        text = rng.choice((f"the {a} is {relation} the {b} .", f"there is a {a} {relation} the {b} ."))
        pair = rng.choice(
            (
                f"the {b} is {INVERSE[relation]} the {a} .",
                f"there is a {b} {INVERSE[relation]} the {a} .",
                f"the {a} sits {relation} the {b} .",
            )
        )
    elif topic == "size":
        a, relation, b = fact
        text = f"the {a} is {relation} than the {b} ."
        pair = rng.choice(
            (f"the {b} is {INVERSE[relation]} than the {a} .", f"the {a} looks {relation} than the {b} .")
        )
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
    features = writing.text_pair_features(TOPICS)
    rows = {split: [] for split in SPLITS}
    per_topic, extra = divmod(texts, len(TOPICS))
    for label, topic in enumerate(TOPICS):
        facts = rng.sample(text_facts(topic), per_topic + (label < extra))
        for split, items in writing.split_items(facts).items():
            rows[split].extend((*describe(topic, fact, rng), label) for fact in items)
    return writing.shuffled_splits(rows, features, rng)


def data_card(parameters: dict, counts: dict) -> str:
    """DIR/README.md: what the corpus holds, its counts, how to rebuild it and its licence."""
    return f"""# Shapes corpus

A tiny, fully synthetic multimodal corpus for quick local training runs and tests of uniperceiver-hf.
Every image, clip and sentence is generated by `examples/data/build_shapes_corpus.py`: shapes
({", ".join(SHAPES)}) in colours ({", ".join(COLOURS)}) drawn with PIL on light or dark grey backgrounds.

{writing.counts_table(counts)}

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

    python examples/data/build_shapes_corpus.py --output DIR {writing.command_line_arguments(parameters)}

The same arguments give the same files.

## Licence

Generated data; no third-party data, images or text. Released under the project's licence (Apache-2.0).
"""


def build_shapes_corpus(
    output: str | os.PathLike,
    *,
    size: int = 64,
    images_per_class: int = 20,
    videos_per_class: int = 6,
    frames: int = 8,
    texts: int = 600,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, datasets.DatasetDict]:
    """Build the corpus into `output` (see the module docstring) and return {"images", "videos", "text"}.

    The folder is built next to `output` and moved into place at the end, so a failed build leaves nothing behind
    and a replaced corpus stays intact until the new one is complete.
    """
    writing.check_frame_size(size)
    writing.check_number("images_per_class", images_per_class, 1)
    writing.check_number("videos_per_class", videos_per_class, 1)
    writing.check_number("frames", frames, 2)
    writing.check_number("texts", texts, 1, max_texts())
    writing.check_number("seed", seed, 0)
    output = writing.prepare_output(output, overwrite, corpus="a shapes corpus")
    parameters = {
        "size": size,
        "images_per_class": images_per_class,
        "videos_per_class": videos_per_class,
        "frames": frames,
        "texts": texts,
        "seed": seed,
    }
    with writing.staged_output(output) as staging:
        corpus = {
            "images": build_images(size, images_per_class, random.Random(f"{seed}-images")),
            "videos": build_videos(
                staging / "videos" / "clips",
                output / "videos" / "clips",
                size,
                videos_per_class,
                frames,
                random.Random(f"{seed}-videos"),
            ),
            "text": build_text(texts, random.Random(f"{seed}-text")),
        }
        counts = writing.save_datasets(staging, corpus)
        writing.write_card_and_json(
            staging, data_card(parameters, counts), {"name": "shapes", "parameters": parameters, "counts": counts}
        )
    return corpus


def main() -> None:
    parser = writing.corpus_argument_parser(__doc__, "an old shapes corpus")
    parser.add_argument("--images-per-class", type=int, default=20)
    parser.add_argument("--videos-per-class", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--texts", type=int, default=600, help=f"sentence pairs (at most {max_texts()})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing shapes corpus in --output")
    writing.run_command_line(parser, build_shapes_corpus)


if __name__ == "__main__":
    main()
