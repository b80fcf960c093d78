"""Build the real offline corpus: colour emoji, handwritten digits, emoji clips and fortunes, from system packages.

    python examples/data/build_corpus.py --output DIR [--size 64 --renders 3 --digit-renders 1 --frames 8
        --videos-per-class 100 --heldout-fraction 0.1 --heldout-motion "fading out" --max-text-chars 400
        --min-text-records 100 --seed 0]
        [--emoji-font PATH --emoji-test PATH --fortunes-dir PATH] [--overwrite]

Nothing is downloaded. Its sources (issue 8; ../shared/ECOSYSTEM.md, "Real data"):

| source | Debian / PyPI package | used for |
|---|---|---|
| /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf | fonts-noto-color-emoji | the emoji pictures |
| /usr/share/unicode/emoji/emoji-test.txt | unicode-data | emoji names, groups, subgroups |
| /usr/share/games/fortunes (not off/) | fortunes, fortunes-min | English text |
| sklearn.datasets.load_digits | scikit-learn | 1,797 8x8 handwritten digits |

Six `datasets.DatasetDict`s with train / validation / test splits are written with `save_to_disk`:

| folder | columns | tasks it serves |
|---|---|---|
| emoji | image, label (emoji name), group, subgroup, caption, question, answer | classify, retrieve, caption, VQA |
| emoji_heldout | the same; `label` over the held-out names only | zero-shot classification of novel names |
| digits | image, label ("zero" .. "nine"), caption, question, answer | classify, retrieve, caption, VQA |
| videos | video (absolute mp4 path), label (motion), caption, name, question, answer | classify, retrieve, caption |
| videos_heldout | the same for the held-out motion; `label` over every motion name | zero-shot video classification |
| text | text, text_pair (the rest of the same fortune), label (fortune database) | MLM, retrieval, classify |

plus DIR/README.md (the data card) and DIR/corpus.json (parameters, counts, held-out lists). Every random choice comes
from `random.Random` streams seeded by `--seed`, one per dataset: the same arguments and sources give the same data.
The video paths are absolute: after moving the folder, rebuild it or rewrite the column.
"""

import math
import os
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import corpus_writing as writing
import datasets
import numpy as np
from corpus_writing import FPS, SPLITS
from PIL import Image, ImageDraw, ImageFont, features


CORPUS_NAME = "emoji-digits-fortunes"

EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
FORTUNES_DIR = "/usr/share/games/fortunes"
APT_INSTALL = "apt-get install fonts-noto-color-emoji unicode-data fortunes-min"
NOTO_BITMAP_SIZE = 109  # Noto Color Emoji is a bitmap (CBDT) font: Pillow opens it at this size only

# Skin-tone modifiers and hair-style components: emoji holding one are variants of a base emoji, left out.
VARIANT_CODEPOINTS = (range(0x1F3FB, 0x1F400), range(0x1F9B0, 0x1F9B4))

# Named colours for backgrounds (and digit ink); each draw jitters the value a little, the name stays right.
COLOURS = {
    "white": (242, 242, 242),
    "black": (22, 22, 22),
    "grey": (128, 128, 128),
    "red": (205, 35, 35),
    "orange": (240, 135, 25),
    "yellow": (240, 215, 45),
    "green": (45, 155, 65),
    "blue": (45, 85, 210),
    "purple": (125, 55, 170),
    "pink": (240, 150, 190),
    "brown": (115, 75, 40),
}
# Digits are written in a dark ink on a light paper colour: with the polarity fixed, a small model learns the
# shapes within minutes (random ink-on-background pairs leave it at chance for hundreds of steps).
PAPER_COLOURS = ("white", "yellow", "pink")
INK_COLOURS = ("black", "blue", "purple", "brown", "red")
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MOTIONS = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking", "turning", "fading out")

EMOJI_CAPTIONS = (
    "{a_name}",
    "an emoji of {a_name}",
    "an emoji of {a_name} on a {background} background",
    "{a_name} on a {background} background",
    "a picture of {a_name}",
)
# One question per image; the kinds take turns over each split's rows, the wording is drawn.
EMOJI_QUESTIONS = {
    "name": ("what is this?", "what is in the picture?", "which emoji is this?"),
    "group": ("which group is this in?", "which emoji group does this belong to?"),
    "background": ("what colour is the background?", "what is the background colour?"),
}
DIGIT_CAPTIONS = (
    "a handwritten {digit}",
    "a handwritten digit {digit}",
    "the number {digit} written in {ink} on {background}",
    "a {ink} {digit} on a {background} background",
)
DIGIT_QUESTIONS = ("what digit is this?", "which number is written here?", "what number is this?")
VIDEO_CAPTIONS = (
    "{a_name} {motion}",
    "{a_name} {motion} on a {background} background",
    "an emoji of {a_name} {motion}",
)
VIDEO_QUESTIONS = {
    "motion": ("what is it doing?", "how is the emoji moving?", "what happens to the emoji?"),
    "name": ("what is in the video?", "which emoji is this?"),
}

# Fortune cleaning and pairing.
ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "sr",
        "jr",
        "prof",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "vol",
        "mt",
        "gen",
        "col",
        "lt",
        "sgt",
        "rev",
        "inc",
        "co",
        "ltd",
        "u.s",
        "a.m",
        "p.m",
    }
)
SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
CLAUSE_END = re.compile(r"(?:[,;:]|\s--)\s+")
ATTRIBUTION = re.compile(r"^\s+(?:--|\u2015|\u2014)\s*\S")
OVERSTRIKE = re.compile(r"[^\x08]\x08")
MIN_PAIR_WORDS = 3


@dataclass(frozen=True)
class Emoji:
    """One fully-qualified emoji of emoji-test.txt: its characters, lower-case CLDR name, group and subgroup."""

    characters: str
    name: str
    group: str
    subgroup: str


GlyphRenderer = Callable[[Emoji], "Image.Image | None"]


class MissingSourceError(RuntimeError):
    """A system file or Python package the corpus is built from is missing."""


def clean_name(name: str) -> str:
    """CLDR name as a label: lower case, typographic quotes as ASCII ("o’clock" -> "o'clock")."""
    return name.translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})).lower()


def parse_emoji_test(path: str | os.PathLike) -> list[Emoji]:
    """The fully-qualified emoji of an emoji-test.txt, in its (CLDR) order, without skin-tone / hair variants.

    Lines read `1F436 ; fully-qualified # 🐶 E0.6 dog face` under `# group:` and `# subgroup:` headers; groups are
    lower-cased ("animals & nature"), subgroups get spaces for hyphens ("animal mammal").
    """
    emoji, group, subgroup = [], None, None
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip().lower()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip().replace("-", " ")
        elif line.strip() and not line.startswith("#"):
            codes, _, rest = line.partition(";")
            status, _, comment = rest.partition("#")
            if status.strip() != "fully-qualified":
                continue
            match = re.match(r"\s*\S+\s+E\d+\.\d+\s+(.+?)\s*$", comment)
            if match is None or group is None or subgroup is None:
                raise ValueError(
                    f"{path}, line {number}: expected `CODES ; fully-qualified # EMOJI E<version> NAME` "
                    f"under `# group:` and `# subgroup:` headers, got {line!r}."
                )
            codepoints = [int(code, 16) for code in codes.split()]
            if any(code in block for code in codepoints for block in VARIANT_CODEPOINTS):
                continue
            emoji.append(Emoji("".join(map(chr, codepoints)), clean_name(match.group(1)), group, subgroup))
    names = [item.name for item in emoji]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: emoji names are not unique once lower-cased.")
    return emoji


class NotoGlyphRenderer:
    """Renders an emoji with the Noto Color Emoji bitmap font, cropped to its pixels (RGBA).

    Returns None for an emoji the font does not draw as one glyph (no glyph, or a sequence it does not ligate, which
    happens for every ZWJ sequence and flag when Pillow lacks libraqm).
    """

    def __init__(self, path: str | os.PathLike):
        layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
        self.font = ImageFont.truetype(str(path), NOTO_BITMAP_SIZE, layout_engine=layout)
        self.advance = self.font.getlength("\U0001f600")

    def __call__(self, emoji: Emoji) -> Image.Image | None:
        if self.font.getlength(emoji.characters) > 1.5 * self.advance:
            return None
        _, _, right, bottom = self.font.getbbox(emoji.characters)
        canvas = Image.new("RGBA", (right, bottom), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), emoji.characters, font=self.font, embedded_color=True)
        box = canvas.getchannel("A").getbbox()
        return canvas.crop(box) if box else None


def prepare_glyph(glyph: Image.Image, size: int) -> Image.Image:
    """An RGBA glyph no larger than `size` on its longer side (every draw scales it down from there)."""
    if glyph.mode != "RGBA":
        raise ValueError(f"glyph renderer returned a {glyph.mode!r} image; expected 'RGBA'.")
    scale = size / max(glyph.size)
    if scale >= 1:
        return glyph
    return glyph.resize(
        (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.Resampling.LANCZOS
    )


def render_glyphs(emoji: Sequence[Emoji], render_glyph: GlyphRenderer, size: int) -> tuple[dict, list[str]]:
    """{name: glyph} for the emoji the renderer draws, and the names it does not (left out of the corpus)."""
    glyphs, skipped = {}, []
    for item in emoji:
        glyph = render_glyph(item)
        if glyph is None:
            skipped.append(item.name)
        else:
            glyphs[item.name] = prepare_glyph(glyph, size)
    return glyphs, skipped


def choose_heldout(emoji: Sequence[Emoji], fraction: float, rng: random.Random) -> list[str]:
    """`fraction` of each group's names (rounded, at least one), in file order: novel categories for zero-shot tests."""
    by_group: dict[str, list[str]] = {}
    for item in emoji:
        by_group.setdefault(item.group, []).append(item.name)
    chosen = set()
    for names in by_group.values():
        chosen.update(rng.sample(names, max(1, round(fraction * len(names)))))
    return [item.name for item in emoji if item.name in chosen]


def with_article(name: str) -> str:
    """ "dog face" -> "a dog face", "eight o'clock" -> "an eight o'clock", "sparkles" -> "sparkles" (plural head)."""
    head = re.split(r"\s(?:with|in|of|on|at|for|from|holding|and|over)\s|[:,(]", name)[0].split()[-1]
    if head in ("people", "men", "women", "children") or (
        head.endswith("s") and not head.endswith(("ss", "us", "is"))
    ):
        return name
    vowel = name[0] in "aeiou" and not name.startswith(("one", "uni", "use", "eu"))
    return ("an " if vowel else "a ") + name


def _luminance(rgb: tuple[int, int, int]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def random_colour(
    rng: random.Random, contrast_with: tuple[int, int, int] | None = None, among: Sequence[str] = tuple(COLOURS)
) -> tuple[str, tuple]:
    """A named colour of `among`, jittered by up to 12 per channel; with `contrast_with`, one at least 90 luminance
    levels away."""
    names = [
        name
        for name in among
        if contrast_with is None or abs(_luminance(COLOURS[name]) - _luminance(contrast_with)) >= 90
    ]
    name = rng.choice(names)
    return name, writing.jitter_colour(COLOURS[name], 12, rng)


def draw_glyph(
    glyph: Image.Image,
    size: int,
    background: tuple[int, int, int],
    *,
    side: float,
    x: float,
    y: float,
    angle: float = 0.0,
    opacity: float = 1.0,
) -> Image.Image:
    """A `size` x `size` RGB image: the glyph scaled to `side` pixels (longer side), turned `angle` degrees
    anticlockwise, with alpha times `opacity`, centred at (x, y) over a plain background."""
    scale = side / max(glyph.size)
    image = glyph.resize(
        (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.Resampling.LANCZOS
    )
    if angle:
        # Turned with premultiplied alpha, so transparent pixels do not bleed dark fringes into the edges.
        image = image.convert("RGBa").rotate(angle, Image.Resampling.BICUBIC, expand=True).convert("RGBA")
    if opacity < 1:
        image.putalpha(image.getchannel("A").point(lambda value: round(value * opacity)))
    canvas = Image.new("RGB", (size, size), background)
    canvas.paste(image, (round(x - image.width / 2), round(y - image.height / 2)), image)
    return canvas


def _turned_extent(side: float, angle: float) -> float:
    """The side of the box holding a `side` square turned by `angle` degrees."""
    radians = math.radians(angle)
    return side * (abs(math.cos(radians)) + abs(math.sin(radians)))


def random_emoji_image(glyph: Image.Image, size: int, rng: random.Random) -> tuple[Image.Image, str]:
    """The glyph at 45-85% of the side, turned up to 15 degrees half of the time, anywhere inside, on a named colour."""
    background, rgb = random_colour(rng)
    side = rng.uniform(0.45, 0.85) * size
    angle = rng.uniform(-15.0, 15.0) if rng.random() < 0.5 else 0.0
    half = min(_turned_extent(side, angle), size) / 2
    x, y = rng.uniform(half, size - half), rng.uniform(half, size - half)
    return draw_glyph(glyph, size, rgb, side=side, x=x, y=y, angle=angle), background


def emoji_features(names: Sequence[str], groups: Sequence[str], subgroups: Sequence[str]) -> datasets.Features:
    return writing.image_features(label=names, group=groups, subgroup=subgroups)


def build_emoji(
    emoji: Sequence[Emoji], glyphs: dict, features: datasets.Features, size: int, renders: int, rng: random.Random
) -> datasets.DatasetDict:
    """`renders` drawings of each emoji: the last two go to validation and test, the rest to train."""
    rows = {split: [] for split in SPLITS}
    for item in emoji:
        drawn = [(item, *random_emoji_image(glyphs[item.name], size, rng)) for _ in range(renders)]
        rows["train"].extend(drawn[:-2])
        rows["validation"].append(drawn[-2])
        rows["test"].append(drawn[-1])
    labels, groups, subgroups = (features[name].names for name in ("label", "group", "subgroup"))

    def make_row(index: int, row: tuple[Emoji, Image.Image, str]) -> dict:
        item, image, background = row
        facts = {"name": item.name, "a_name": with_article(item.name), "group": item.group, "background": background}
        kind = tuple(EMOJI_QUESTIONS)[index % len(EMOJI_QUESTIONS)]
        return {
            "image": image,
            "label": labels.index(item.name),
            "group": groups.index(item.group),
            "subgroup": subgroups.index(item.subgroup),
            "caption": rng.choice(EMOJI_CAPTIONS).format(**facts),
            "question": rng.choice(EMOJI_QUESTIONS[kind]),
            "answer": facts[kind],
        }

    return writing.shuffled_splits(rows, features, rng, make_row)


def load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits: pixels [N, 8, 8] in 0..16 and their digits [N]."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 (optional dependency, checked by check_sources)

    bunch = load_digits()
    return bunch.images.astype(np.uint8), bunch.target.astype(np.int64)


def random_digit_image(pixels: np.ndarray, size: int, rng: random.Random) -> tuple[Image.Image, str, str]:
    """The 8x8 digit upscaled (bilinear) to 55-80% of the side, turned up to 15 degrees, placed anywhere inside,
    in a named dark ink on a named light paper colour."""
    background, background_rgb = random_colour(rng, among=PAPER_COLOURS)
    ink, ink_rgb = random_colour(rng, contrast_with=COLOURS[background], among=INK_COLOURS)
    side = round(rng.uniform(0.55, 0.8) * size)
    mask = Image.fromarray((pixels.astype(np.float32) * (255 / 16)).round().astype(np.uint8), "L")
    mask = mask.resize((side, side), Image.Resampling.BILINEAR)
    mask = mask.rotate(rng.uniform(-15.0, 15.0), Image.Resampling.BICUBIC, expand=True)
    x, y = (rng.randint(0, max(0, size - extent)) for extent in mask.size)
    canvas = Image.new("RGB", (size, size), background_rgb)
    canvas.paste(Image.new("RGB", mask.size, ink_rgb), (x, y), mask)
    return canvas, ink, background


def split_digit_samples(targets: np.ndarray, rng: random.Random, train_renders: int = 1) -> dict[str, list[int]]:
    """Sample indices per split: each digit's samples shuffled and cut 70/15/15, so no sample is in two splits; a
    train sample is listed `train_renders` times (one drawing each)."""
    rows = {split: [] for split in SPLITS}
    for digit in range(len(DIGIT_NAMES)):
        samples = [int(index) for index in np.flatnonzero(targets == digit)]
        rng.shuffle(samples)
        for split, items in writing.split_items(samples).items():
            rows[split].extend(items * (train_renders if split == "train" else 1))
    return rows


def build_digits(
    pixels: np.ndarray, targets: np.ndarray, size: int, rng: random.Random, train_renders: int = 1
) -> datasets.DatasetDict:
    """`train_renders` drawings of each train sample and one of each validation and test sample; each digit's samples
    are cut 70/15/15, so no test sample is seen in training. scikit-learn has only 1,797 digits: more drawings of
    the same strokes (other ink, paper, size, place and turn) are the data augmentation a small model needs."""
    features = writing.image_features(label=DIGIT_NAMES)

    def make_row(_: int, sample: int) -> dict:
        image, ink, background = random_digit_image(pixels[sample], size, rng)
        digit = DIGIT_NAMES[int(targets[sample])]
        return {
            "image": image,
            "label": int(targets[sample]),
            "caption": rng.choice(DIGIT_CAPTIONS).format(digit=digit, ink=ink, background=background),
            "question": rng.choice(DIGIT_QUESTIONS),
            "answer": digit,
        }

    return writing.shuffled_splits(split_digit_samples(targets, rng, train_renders), features, rng, make_row)


def motion_path(motion: str, size: int, frames: int, rng: random.Random) -> list[dict[str, float]]:
    """Per-frame `draw_glyph` placements: a 35-50% of the side move, a 2.7-5x growth or shrink, a 120-240 degree
    turn either way, or a fade from opaque to at most 10% opacity; the glyph stays inside the frame throughout."""
    tilt = rng.uniform(-10.0, 10.0) if rng.random() < 0.5 else 0.0
    start = {"angle": tilt, "opacity": 1.0}
    end = dict(start)
    if motion.startswith("moving"):
        side = rng.uniform(0.35, 0.45) * size
        half = _turned_extent(side, tilt) / 2
        travel = min(rng.uniform(0.35, 0.5) * size, size - 2 * half)
        near, across = rng.uniform(half, size - half - travel), rng.uniform(half, size - half)
        first, last = (near + travel, near) if motion in ("moving left", "moving up") else (near, near + travel)
        along, other = ("x", "y") if motion in ("moving left", "moving right") else ("y", "x")
        start.update({"side": side, along: first, other: across})
        end.update({"side": side, along: last, other: across})
    elif motion in ("growing", "shrinking"):
        small, large = rng.uniform(0.15, 0.22) * size, rng.uniform(0.6, 0.75) * size
        half = _turned_extent(large, tilt) / 2
        x, y = rng.uniform(half, size - half), rng.uniform(half, size - half)
        sides = (small, large) if motion == "growing" else (large, small)
        start.update({"side": sides[0], "x": x, "y": y})
        end.update({"side": sides[1], "x": x, "y": y})
    elif motion == "turning":
        side = rng.uniform(0.45, 0.6) * size
        half = side * math.sqrt(2) / 2
        x, y = rng.uniform(half, size - half), rng.uniform(half, size - half)
        start.update({"side": side, "x": x, "y": y})
        end.update({"side": side, "x": x, "y": y, "angle": tilt + rng.choice((-1, 1)) * rng.uniform(120.0, 240.0)})
    elif motion == "fading out":
        side = rng.uniform(0.45, 0.7) * size
        half = _turned_extent(side, tilt) / 2
        x, y = rng.uniform(half, size - half), rng.uniform(half, size - half)
        start.update({"side": side, "x": x, "y": y})
        end.update({"side": side, "x": x, "y": y, "opacity": rng.uniform(0.0, 0.1)})
    else:
        raise ValueError(f"`motion`={motion!r}: expected one of {MOTIONS}.")
    return [
        {key: start[key] + index / (frames - 1) * (end[key] - start[key]) for key in start} for index in range(frames)
    ]


def build_videos(
    folder: Path,
    clip_root: Path,
    emoji: Sequence[Emoji],
    glyphs: dict,
    motions: Sequence[str],
    label_names: Sequence[str],
    size: int,
    frames: int,
    videos_per_class: int,
    rng: random.Random,
) -> datasets.DatasetDict:
    """`videos_per_class` clips of each motion (70/15/15), each a random emoji of `emoji` on a named background.

    Clips are written to `folder` but their `video` paths name `clip_root` (where the corpus ends up).
    """
    features = writing.video_features(label_names, "name", "question", "answer")
    folder.mkdir(parents=True)
    rows = {split: [] for split in SPLITS}
    for motion in motions:
        clips = list(range(videos_per_class))
        for split, numbers in writing.split_items(clips).items():
            for number in numbers:
                item = rng.choice(emoji)
                background, rgb = random_colour(rng)
                path = motion_path(motion, size, frames, rng)
                file_name = writing.clip_file_name(split, motion, number)
                images = [draw_glyph(glyphs[item.name], size, rgb, **place) for place in path]
                writing.write_clip(folder / file_name, images)
                rows[split].append((str(clip_root / file_name), motion, item, background))

    def make_row(index: int, row: tuple[str, str, Emoji, str]) -> dict:
        video, motion, item, background = row
        facts = {"name": item.name, "a_name": with_article(item.name), "motion": motion, "background": background}
        kind = tuple(VIDEO_QUESTIONS)[index % len(VIDEO_QUESTIONS)]
        return {
            "video": video,
            "label": list(label_names).index(motion),
            "caption": rng.choice(VIDEO_CAPTIONS).format(**facts),
            "name": item.name,
            "question": rng.choice(VIDEO_QUESTIONS[kind]).format(**facts),
            "answer": facts[kind],
        }

    return writing.shuffled_splits(rows, features, rng, make_row)


def read_fortune_databases(folder: str | os.PathLike) -> dict[str, list[str]]:
    """{database name: raw records} of the fortune files in `folder` (not its sub-folders such as off/, nor the
    .dat / .u8 indexes); records are separated by lines holding only "%"."""
    databases = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix not in (".dat", ".u8") and not path.name.startswith("."):
            records, lines = [], []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip() == "%":
                    records.append("\n".join(lines))
                    lines = []
                else:
                    lines.append(line)
            records.append("\n".join(lines))
            databases[path.name] = [record for record in records if record.strip()]
    return databases


def clean_fortune(record: str) -> str:
    """Overstrikes resolved ("_\\bn" -> "n"), every indented "-- author" attribution line (with its more deeply
    indented continuation lines) dropped, whitespace collapsed."""
    while "\x08" in record:
        stripped = OVERSTRIKE.sub("", record)
        record = stripped if stripped != record else record.replace("\x08", "")
    kept, attribution_indent = [], None
    for line in record.splitlines():
        indent = len(line.expandtabs()) - len(line.expandtabs().lstrip())
        if attribution_indent is not None and line.strip() and indent >= attribution_indent:
            continue  # the attribution's continuation line
        attribution_indent = indent if kept and ATTRIBUTION.match(line) else None
        if attribution_indent is None:
            kept.append(line)
    return " ".join(" ".join(kept).split())


def split_pair(text: str) -> tuple[str, str] | None:
    """The record cut in two at the sentence end nearest its middle, else at the clause break (",", ";", ":", " --")
    nearest it; both halves need at least three words. None if there is no such cut."""
    for pattern in (SENTENCE_END, CLAUSE_END):
        best = None
        for match in pattern.finditer(text):
            before = text[: match.start()].split()
            if not before:
                continue
            last = before[-1].lower().rstrip(".")
            abbreviation = last in ABBREVIATIONS or "." in last or (len(last) == 1 and last.isalpha())
            if pattern is SENTENCE_END and abbreviation:
                continue
            first, second = text[: match.end()].strip(), text[match.end() :].strip()
            if len(first.split()) < MIN_PAIR_WORDS or len(second.split()) < MIN_PAIR_WORDS:
                continue
            balance = abs(len(first) - len(second))
            if best is None or balance < best[0]:
                best = (balance, first, second)
        if best is not None:
            return best[1], best[2]
    return None


def _is_prose(text: str) -> bool:
    """Mostly letters and spaces (at least 75%): leaves out ASCII art, tables and code."""
    return sum(char.isalpha() or char == " " for char in text) >= 0.75 * len(text)


def fortune_pairs(folder: str | os.PathLike, max_chars: int, min_records: int) -> dict[str, list[tuple[str, str]]]:
    """{database: (first half, second half)} for the cleaned, prose, unique records of at most `max_chars`
    characters that split in two; databases with fewer than `min_records` such records are left out."""
    seen, pairs = set(), {}
    for database, records in read_fortune_databases(folder).items():
        kept = []
        for record in records:
            text = clean_fortune(record)
            if not text or len(text) > max_chars or not _is_prose(text) or text in seen:
                continue
            seen.add(text)
            pair = split_pair(text)
            if pair is not None:
                kept.append(pair)
        if len(kept) >= min_records:
            pairs[database] = kept
    return pairs


def build_text(pairs: dict[str, list[tuple[str, str]]], rng: random.Random) -> datasets.DatasetDict:
    """Each database's pairs, shuffled and cut 70/15/15, labelled with the database's name."""
    names = sorted(pairs)
    features = writing.text_pair_features(names)
    rows = {split: [] for split in SPLITS}
    for label, name in enumerate(names):
        items = list(pairs[name])
        rng.shuffle(items)
        for split, chosen in writing.split_items(items).items():
            rows[split].extend((text, pair, label) for text, pair in chosen)
    return writing.shuffled_splits(rows, features, rng)


def check_sources(*, emoji_font: str | None, emoji_test: str, fortunes_dir: str, need_sklearn: bool) -> None:
    """Fail before building anything, naming every missing file and the package that provides it."""
    missing = []
    if emoji_font is not None and not Path(emoji_font).is_file():
        missing.append(f"the emoji font {emoji_font} (Debian package fonts-noto-color-emoji; or pass --emoji-font)")
    if not Path(emoji_test).is_file():
        missing.append(f"the emoji list {emoji_test} (Debian package unicode-data; or pass --emoji-test)")
    if not Path(fortunes_dir).is_dir() or not read_fortune_databases(fortunes_dir):
        missing.append(
            f"fortune databases in {fortunes_dir} (Debian package fortunes-min or fortunes; or pass --fortunes-dir)"
        )
    if missing:
        raise MissingSourceError(
            "cannot build the corpus, missing "
            + "; ".join(missing)
            + f". Install the system packages with `{APT_INSTALL}`."
        )
    if need_sklearn:
        try:
            import sklearn  # noqa: F401, PLC0415 (only checked for here)
        except ImportError as error:
            raise MissingSourceError(
                "cannot build the corpus, missing scikit-learn (its handwritten digits): "
                "`pip install scikit-learn` (or the project's `train` extra)."
            ) from error


def data_card(parameters: dict, counts: dict, summary: dict) -> str:
    """DIR/README.md: sources and licences, what each dataset holds, counts, held-out lists, how to rebuild."""
    heldout = ", ".join(summary["heldout_emoji"])
    skipped = ", ".join(summary["skipped_emoji"]) or "none"
    pretraining_motions = ", ".join(summary["motions"])
    size, renders = parameters["size"], parameters["renders"]
    return f"""# Emoji, digits and fortunes: a real offline corpus

Real pictures, names and text that ship in Debian and PyPI packages, turned into image, video and text datasets for
pre-training and evaluating uniperceiver-hf offline. Built by `examples/data/build_corpus.py`; nothing is downloaded.

{writing.counts_table(counts)}

## Datasets (`datasets.load_from_disk(DIR/<name>)`)

- `emoji/`: `image` (Image, {size}x{size} RGB), `label` (ClassLabel, {summary["emoji_classes"]} lower-case CLDR
  names such as "dog face"), `group` (ClassLabel, {len(summary["groups"])}: {", ".join(summary["groups"])}),
  `subgroup` (ClassLabel, {len(summary["subgroups"])}, such as "animal mammal"), `caption` ("an emoji of a dog face on
  a blue background"), `question`, `answer` (about the name, the group or the background colour that was drawn: one of
  {", ".join(COLOURS)}). Each emoji is drawn {renders} times (scale 45-85% of the side, anywhere inside, turned up to
  15 degrees half of the time, on a named background colour): {renders - 2} render(s) in train, one in validation,
  one in test, so every emoji is in every split with different drawings.
- `emoji_heldout/`: the same columns for {len(summary["heldout_emoji"])} emoji names held out of every other
  dataset (10% of each group, at least one, chosen by the seed); `label` is a ClassLabel over these names only.
  All three splits exist (same render rule) for few-shot or prompt-tuning experiments; zero-shot evaluation
  uses `test`. Never pre-train on it.
- `digits/`: `image` ({size}x{size} RGB: scikit-learn's 8x8 digit upscaled bilinearly to 55-80% of the side,
  turned up to 15 degrees, anywhere inside, in a named ink colour on a contrasting named background), `label`
  (ClassLabel: {", ".join(DIGIT_NAMES)}), `caption` ("a handwritten seven"), `question` ("what digit is this?"),
  `answer` ("seven"). Each digit's samples are cut 70/15/15, so no test sample is in train; a train sample is drawn
  {parameters["digit_renders"]} time(s), a validation or test sample once.
- `videos/`: `video` (absolute path of an H.264 mp4 in `videos/clips/`, {parameters["frames"]} frames at {FPS} fps,
  {size}x{size}), `label` (ClassLabel: {pretraining_motions}), `caption` ("a dog face moving left"), `name` (the
  emoji's name), `question`, `answer` (the motion, or the emoji's name). {parameters["videos_per_class"]} clips per
  motion, cut 70/15/15, each a random pre-training emoji (never a held-out name) on a named background.
- `videos_heldout/`: clips of the held-out motion "{parameters["heldout_motion"]}", never in `videos/`, made the same
  way (clips in `videos_heldout/clips/`, three splits, zero-shot evaluation uses `test`). Its `label` ClassLabel
  lists every motion name ({", ".join(summary["all_motions"])}; the pre-training ones first, in the same order), so a
  zero-shot evaluation can score each clip against all of them.
- `text/`: `text` and `text_pair` (one fortune cut in two at the sentence end nearest its middle, or, for a single
  sentence, at the clause break nearest it: the two halves of the same record belong together, for text-text
  retrieval), `label` (ClassLabel of the fortune database: {", ".join(summary["text_databases"])}). Records were
  cleaned (overstrikes resolved, every indented "-- author" attribution line dropped from every record, whitespace
  collapsed); records over {parameters["max_text_chars"]} characters, mostly non-letters (ASCII art, tables) or
  repeated were dropped, and databases with fewer than {parameters["min_text_records"]} records left out. Each
  database is cut 70/15/15.

The video paths are absolute: after moving the folder, rebuild it or rewrite the column.

## Held out of pre-training

- Motion: "{parameters["heldout_motion"]}".
- Emoji names ({len(summary["heldout_emoji"])}): {heldout}.
- Emoji the font could not draw as one glyph (left out everywhere): {skipped}.

## Sources and licences

- Emoji pictures: glyphs of Noto Color Emoji (`{summary["sources"]["emoji_font"]}`, Debian package
  `fonts-noto-color-emoji`; the font is under the SIL Open Font License 1.1, Copyright 2013-2017 Google Inc.; the
  OFL does not extend to documents made with the font, such as these renderings). Debian states the upstream
  noto-emoji sources apart from the fonts are under Apache-2.0.
- Emoji names, groups and subgroups: `{summary["sources"]["emoji_test"]}` (Debian package `unicode-data`),
  Copyright Unicode, Inc., used under the Unicode terms of use (https://www.unicode.org/copyright.html, the Unicode
  data files licence). Modified here: names lower-cased, typographic quotes made ASCII, variants left out.
- Handwritten digits: {summary["sources"]["digits"]} (a copy of the test set of the UCI ML hand-written digits data,
  E. Alpaydin and C. Kaynak, 1998); scikit-learn is under the BSD-3-Clause licence.
- Text: the fortune databases in `{summary["sources"]["fortunes_dir"]}` (Debian packages `fortunes` and
  `fortunes-min`, not the `off/` folder), which Debian distributes under the BSD licence of the University of
  California (Copyright (c) 1991 The Regents of the University of California; /usr/share/doc/fortunes/copyright).
  Quotations keep whatever rights their authors have; they are short excerpts used for research.

The generated images, clips and questions are released under the project's licence (Apache-2.0), subject to the
terms above for the material they are made from.

## Rebuild

    apt-get install fonts-noto-color-emoji unicode-data fortunes-min fortunes && pip install scikit-learn
    python examples/data/build_corpus.py --output DIR {writing.command_line_arguments(parameters)}

The same arguments and package versions give the same data.
"""


def build_corpus(
    output: str | os.PathLike,
    *,
    size: int = 64,
    renders: int = 3,
    digit_renders: int = 1,
    frames: int = 8,
    videos_per_class: int = 100,
    heldout_fraction: float = 0.1,
    heldout_motion: str = "fading out",
    max_text_chars: int = 400,
    min_text_records: int = 100,
    seed: int = 0,
    emoji_font: str | os.PathLike = EMOJI_FONT,
    emoji_test: str | os.PathLike = EMOJI_TEST,
    fortunes_dir: str | os.PathLike = FORTUNES_DIR,
    overwrite: bool = False,
    render_glyph: GlyphRenderer | None = None,
    digits: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, datasets.DatasetDict]:
    """Build the corpus into `output` (see the module docstring) and return its datasets by folder name.

    `render_glyph` (an `Emoji` -> RGBA image or None) replaces the Noto font and `digits` ((pixels [N, 8, 8] in
    0..16, digits [N])) replaces scikit-learn's, so that tests run without the system packages. The folder is built
    next to `output` and moved into place at the end, so a failed build leaves nothing behind and a replaced corpus
    stays intact until the new one is complete.
    """
    writing.check_frame_size(size)
    writing.check_number("renders", renders, 3)
    writing.check_number("digit_renders", digit_renders, 1)
    writing.check_number("frames", frames, 2)
    writing.check_number("videos_per_class", videos_per_class, 1)
    writing.check_number("heldout_fraction", heldout_fraction, 0.01, 0.5, kind=float)
    if heldout_motion not in MOTIONS:
        raise ValueError(f"`heldout_motion`={heldout_motion!r}: expected one of {MOTIONS}.")
    writing.check_number("max_text_chars", max_text_chars, 20)
    writing.check_number("min_text_records", min_text_records, 3)
    writing.check_number("seed", seed, 0)
    if digits is not None and (
        len(digits) != 2 or np.shape(digits[0])[1:] != (8, 8) or len(digits[0]) != len(digits[1])
    ):
        raise ValueError("`digits`: expected (pixels [N, 8, 8] in 0..16, digits [N]).")
    emoji_font = None if render_glyph is not None else str(emoji_font)
    check_sources(
        emoji_font=emoji_font, emoji_test=str(emoji_test), fortunes_dir=str(fortunes_dir), need_sklearn=digits is None
    )
    output = writing.prepare_output(output, overwrite, corpus="a corpus built by this script", name=CORPUS_NAME)

    emoji = parse_emoji_test(emoji_test)
    if not emoji:
        raise ValueError(f"`emoji_test`={str(emoji_test)!r} lists no fully-qualified emoji.")
    glyphs, skipped = render_glyphs(emoji, render_glyph or NotoGlyphRenderer(emoji_font), size)
    emoji = [item for item in emoji if item.name in glyphs]
    groups = list(dict.fromkeys(item.group for item in emoji))
    subgroups = list(dict.fromkeys(item.subgroup for item in emoji))
    heldout = choose_heldout(emoji, heldout_fraction, random.Random(f"{seed}-heldout"))
    pretraining = [item for item in emoji if item.name not in heldout]
    novel = [item for item in emoji if item.name in heldout]
    motions = [motion for motion in MOTIONS if motion != heldout_motion]
    all_motions = [*motions, heldout_motion]
    pairs = fortune_pairs(fortunes_dir, max_text_chars, min_text_records)
    if not pairs:
        raise ValueError(
            f"`fortunes_dir`={str(fortunes_dir)!r}: no database has {min_text_records} usable records "
            "(`min_text_records`)."
        )
    pixels, targets = digits if digits is not None else load_sklearn_digits()

    parameters = {
        "size": size,
        "renders": renders,
        "digit_renders": digit_renders,
        "frames": frames,
        "videos_per_class": videos_per_class,
        "heldout_fraction": heldout_fraction,
        "heldout_motion": heldout_motion,
        "max_text_chars": max_text_chars,
        "min_text_records": min_text_records,
        "seed": seed,
        "emoji_font": emoji_font,
        "emoji_test": str(emoji_test),
        "fortunes_dir": str(fortunes_dir),
    }
    with writing.staged_output(output) as staging:
        corpus = {
            "emoji": build_emoji(
                pretraining,
                glyphs,
                emoji_features([item.name for item in pretraining], groups, subgroups),
                size,
                renders,
                random.Random(f"{seed}-emoji"),
            ),
            "emoji_heldout": build_emoji(
                novel,
                glyphs,
                emoji_features(heldout, groups, subgroups),
                size,
                renders,
                random.Random(f"{seed}-emoji-heldout"),
            ),
            "digits": build_digits(
                np.asarray(pixels), np.asarray(targets), size, random.Random(f"{seed}-digits"), digit_renders
            ),
            "videos": build_videos(
                staging / "videos" / "clips",
                output / "videos" / "clips",
                pretraining,
                glyphs,
                motions,
                motions,
                size,
                frames,
                videos_per_class,
                random.Random(f"{seed}-videos"),
            ),
            "videos_heldout": build_videos(
                staging / "videos_heldout" / "clips",
                output / "videos_heldout" / "clips",
                pretraining,
                glyphs,
                [heldout_motion],
                all_motions,
                size,
                frames,
                videos_per_class,
                random.Random(f"{seed}-videos-heldout"),
            ),
            "text": build_text(pairs, random.Random(f"{seed}-text")),
        }
        counts = writing.save_datasets(staging, corpus)
        summary = {
            "emoji_classes": len(pretraining),
            "heldout_emoji": heldout,
            "skipped_emoji": skipped,
            "groups": groups,
            "subgroups": subgroups,
            "motions": motions,
            "all_motions": all_motions,
            "text_databases": sorted(pairs),
            "sources": {
                "emoji_font": emoji_font or "a custom glyph renderer",
                "emoji_test": str(emoji_test),
                "fortunes_dir": str(fortunes_dir),
                "digits": "caller-given digits" if digits is not None else "sklearn.datasets.load_digits",
            },
        }
        writing.write_card_and_json(
            staging,
            data_card(parameters, counts, summary),
            {"name": CORPUS_NAME, "parameters": parameters, "counts": counts, **summary},
        )
    return corpus


def main() -> None:
    parser = writing.corpus_argument_parser(__doc__, "a corpus of this script")
    parser.add_argument(
        "--renders",
        type=int,
        default=3,
        help="drawings per emoji (>= 3): one for validation, one for test, the rest for train",
    )
    parser.add_argument(
        "--digit-renders",
        type=int,
        default=1,
        help="drawings of each train digit (validation and test digits are drawn once)",
    )
    parser.add_argument("--frames", type=int, default=8, help=f"frames per clip ({FPS} fps)")
    parser.add_argument("--videos-per-class", type=int, default=100, help="clips per motion (70/15/15)")
    parser.add_argument(
        "--heldout-fraction",
        type=float,
        default=0.1,
        help="share of each emoji group's names held out of pre-training (at least one per group)",
    )
    parser.add_argument(
        "--heldout-motion",
        default="fading out",
        choices=MOTIONS,
        help="motion held out of `videos` (its clips form `videos_heldout`)",
    )
    parser.add_argument("--max-text-chars", type=int, default=400, help="longest fortune kept, after cleaning")
    parser.add_argument(
        "--min-text-records",
        type=int,
        default=100,
        help="fewest usable records for a fortune database to be a text class",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--emoji-font", default=EMOJI_FONT, help="Noto Color Emoji (fonts-noto-color-emoji)")
    parser.add_argument("--emoji-test", default=EMOJI_TEST, help="emoji-test.txt (unicode-data)")
    parser.add_argument("--fortunes-dir", default=FORTUNES_DIR, help="fortune databases (fortunes-min, fortunes)")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus of this script in --output")
    writing.run_command_line(parser, build_corpus, errors=(ValueError, MissingSourceError))


if __name__ == "__main__":
    main()
