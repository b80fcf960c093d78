"""The Uni-Perceiver Space: every kind of input (image, sketch, video, text) against every kind of candidate.

    python spaces_demo/app.py        # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)

It runs the package's default model (`models/uniperceiver-tiny-emoji`) or the converted folder or Hub id named by
`UNIPERCEIVER_MODEL`. The model and its vocabulary (for captions and masked words) are loaded once at start-up;
label and image candidates are encoded once and then served from the pipeline's cache, so a repeated label list
costs one forward pass of the input. Every bad input (too large, too long, corrupt, empty) gets a message in the page.
`UNIPERCEIVER_INDEX` names an index folder built by `uniperceiver-hf index` over image files (ids that are image
paths): the Retrieve tab's text query then searches it instead of the shipped gallery. Each tab shows the figure the
model card (the model folder's README.md) reports for its task, so that a toy model's miss is not taken for a bug.

Under load, the ranking tabs (classify, sketch, retrieval, VQA) answer the requests that wait for a model thread and
share candidates (labels and template, answer list, gallery) by one pipeline call, and the gallery's features are
encoded once at start-up; `UNIPERCEIVER_SPACE_BATCH=0` answers each request by its own call instead (the comparison
`benchmarks/space_load.py` prints).
"""

import asyncio
import functools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import av
import gradio as gr
import numpy as np
import torch
from huggingface_hub import ModelCard
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from transformers import pipeline

from uniperceiver_hf import TargetSet  # importing the package registers the Auto classes and the pipeline


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from zero_shot_classification import (  # noqa: E402  (the CLI demo's offline inputs: drawn, never downloaded)
    DIGITS,
    MOTIONS,
    SHAPE_LABELS,
    TEXT,
    TOPICS,
    drawn_shapes,
    handwritten_digits,
    moving_clip,
)


DEFAULT_MODEL = ROOT / "models" / "uniperceiver-tiny-emoji"
CONCURRENCY = 2  # model calls run at once: one per core of a free CPU Space, each on one torch thread
MAX_BATCH = 8  # requests answered by one model call at most
IN_FLIGHT = CONCURRENCY * MAX_BATCH  # requests the ranking tabs admit at once: a full batch for each model thread
RANKING_TABS = ("classify", "sketch", "text_to_images", "image_to_texts", "vqa")  # the batched endpoints
MEGABYTE = 1024 * 1024
MAX_IMAGE_BYTES = 10 * MEGABYTE
MAX_VIDEO_BYTES = 20 * MEGABYTE
MAX_UPLOAD = "50mb"  # Gradio refuses anything larger before it reaches a handler
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_VIDEO_SECONDS = 30
MAX_VIDEO_FRAMES = 900
MAX_LABELS = 64
MAX_LABEL_CHARS = 100
MAX_TEXT_CHARS = 500
MAX_EXEMPLARS = 16
SHOWN = 6  # pictures a text-to-image search shows
MASK = "[MASK]"
EMPTY_SKETCH = "The sketch pad is empty: draw a digit or a shape first."
QUESTION = "what number is this?"
MASKED_TEXT = f"a {MASK} circle on a light background"
# Well-known emoji and their CLDR names (the names the default model was trained on), drawn with Noto Color Emoji
# (Debian's fonts-noto-color-emoji; spaces_demo/packages.txt installs it on a Space).
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI = {"dog face": "\U0001f436", "red apple": "\U0001f34e", "automobile": "\U0001f697", "rocket": "\U0001f680"}
EMOJI_LABELS = "dog face, red apple, automobile, rocket, cat face, banana, bicycle, house"
# The model card's entries (their dataset config names) that each tab's task is measured by.
CARD_FIGURES = {
    "classify": ("emoji-classification", "digit-classification", "motion-classification"),
    "sketch": ("digit-classification",),
    "retrieve": ("emoji-retrieval-text-image-r-1", "emoji-retrieval-image-text-r-1"),
    "caption": ("emoji-captioning-bleu", "emoji-captioning-cider"),
    "vqa": ("emoji-vqa-answer-list",),
    "fill-mask": (),
}
# Wrapped gallery captions (Gradio cuts them at one line) and messages at the bottom, clear of the title.
CSS = """
.uniperceiver-gallery .caption-label { white-space: normal !important; max-width: 100% !important; }
.toast-wrap { top: auto !important; bottom: var(--size-4) !important; }
"""
# Gradio 6's sketch pad opens with no tool and drops its brush on "clear canvas", after which strokes draw nothing:
# the page picks the brush when the tab opens and after each clear (a click on an already picked brush would drop it).
PICK_BRUSH = """() => { setTimeout(() => {
    const brush = document.querySelector('#sketch-pad button[aria-label="Brush"]');
    if (brush && !brush.classList.contains('highlight')) brush.click();
}, 200); }"""


# -- reading what the user gave, with a friendly message for everything that is wrong --------------------------------


def file_path(payload, what: str, limit: int) -> str:
    """The path of an uploaded file (Gradio's raw `FileData`), refused when larger than `limit` bytes."""
    path = payload["path"]
    size = os.path.getsize(path)
    if size > limit:
        raise ValueError(f"The {what} is {size / MEGABYTE:.1f} MB; the limit is {limit // MEGABYTE} MB.")
    return path


def read_image(payload, what: str = "image") -> Image.Image:
    """An uploaded image as RGB, refused when too large in bytes or pixels, or when it cannot be decoded."""
    path = file_path(payload, what, MAX_IMAGE_BYTES)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"The {what} has {width} x {height} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels "
                    f"(e.g. 4096 x 4096). Scale it down first."
                )
            return on_white(image)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ValueError(
            f"The {what} is not a readable image file (corrupt, truncated or of an unknown format)."
        ) from None


def on_white(image: Image.Image) -> Image.Image:
    """RGB with any transparency flattened onto white (a sketch's strokes lie on a transparent canvas)."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def framed(drawing: Image.Image, margin: float = 0.2) -> Image.Image:
    """The drawing's ink cropped and centred on a square light canvas with a margin, as the training digits are
    framed (a small digit in a corner of a large pad would otherwise shrink to a few pixels at 64 px)."""
    ink = Image.eval(drawing.convert("L"), lambda value: 255 - value).getbbox()
    if ink is None:
        raise ValueError(EMPTY_SKETCH)
    cropped = drawing.crop(ink)
    side = round(max(cropped.size) * (1 + 2 * margin))
    canvas = Image.new("RGB", (side, side), (242, 242, 242))
    canvas.paste(cropped, ((side - cropped.width) // 2, (side - cropped.height) // 2))
    return canvas


def read_video(payload) -> str:
    """The path of an uploaded video, refused when too large, too long, with too many frames or undecodable."""
    path = file_path(payload, "video", MAX_VIDEO_BYTES)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError("The video file holds no video stream.")
            stream = container.streams.video[0]
            seconds = float(container.duration or 0) / av.time_base
            frames = stream.frames or round(seconds * float(stream.average_rate or 0))
            width, height = stream.codec_context.width, stream.codec_context.height
            next(container.decode(stream))  # one frame proves the stream decodes
    except (av.FFmpegError, StopIteration, OSError):
        raise ValueError(
            "The video is not a readable video file (corrupt, truncated or of an unknown format)."
        ) from None
    if seconds > MAX_VIDEO_SECONDS:
        raise ValueError(f"The video lasts {seconds:.0f} s; the limit is {MAX_VIDEO_SECONDS} s.")
    if frames > MAX_VIDEO_FRAMES:
        raise ValueError(f"The video has {frames} frames; the limit is {MAX_VIDEO_FRAMES}.")
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"The video's frames have {width} x {height} pixels; the limit is {MAX_IMAGE_PIXELS:,}.")
    return path


def read_text(text: str | None, what: str, limit: int = MAX_TEXT_CHARS) -> str:
    """A non-empty text of at most `limit` characters."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"The {what} is empty.")
    if len(text) > limit:
        raise ValueError(f"The {what} has {len(text):,} characters; the limit is {limit:,}.")
    return text


def read_labels(text: str | None, what: str = "label list") -> list[str]:
    """Labels typed one per line or separated by commas, without repeats; at least one, at most `MAX_LABELS`."""
    labels = list(dict.fromkeys(part.strip() for line in (text or "").splitlines() for part in line.split(",")))
    labels = [label for label in labels if label]
    if not labels:
        raise ValueError(f"The {what} is empty: type at least one label (one per line, or separated by commas).")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"The {what} has {len(labels)} labels; the limit is {MAX_LABELS}.")
    for label in labels:
        read_text(label, f"label {label[:20]!r}...", MAX_LABEL_CHARS)
    return labels


def read_template(template: str | None) -> str:
    """A prompt template holding one `{}` where the label goes (empty: the label alone)."""
    template = (template or "").strip() or "{}"
    if template.count("{}") != 1:
        raise ValueError(f"The prompt template {template!r} must hold exactly one {{}} where the label goes.")
    return read_text(template, "prompt template", MAX_LABEL_CHARS)


def one_input(image, video, text):
    """The one input given (an image, a video path or a text); refused when none or several are given."""
    given = [name for name, value in (("an image", image), ("a video", video), ("a text", text)) if value]
    if len(given) != 1:
        found = ", ".join(given) if given else "nothing"
        raise ValueError(f"Give exactly one input: an image, a video or a text (got {found}).")
    if image:
        return read_image(image)
    if video:
        return read_video(video)
    return read_text(text, "text")


def exemplars(files) -> tuple[list[Image.Image], list[str]]:
    """Uploaded exemplar images and their names (file names without suffix), at most `MAX_EXEMPLARS`."""
    if len(files) > MAX_EXEMPLARS:
        raise ValueError(f"{len(files)} exemplar images were given; the limit is {MAX_EXEMPLARS}.")
    images = [
        read_image(payload, f"exemplar image {payload.get('orig_name') or index}")
        for index, payload in enumerate(files, 1)
    ]
    names = [Path(payload.get("orig_name") or f"exemplar {index}").stem for index, payload in enumerate(files, 1)]
    return images, names


def expected_figures(model: str) -> dict[str, str]:
    """Each tab's line of expected results, read from the model card's `model-index` (the model folder's README.md),
    so that a retrained model's card updates them: `{tab: "Expected on the model card's test splits: ..."}`."""
    card_path = Path(model) / "README.md"
    results = (ModelCard.load(card_path).data.eval_results or []) if card_path.is_file() else []
    by_config = {result.dataset_config: result for result in results}
    lines = {}
    for tab, configs in CARD_FIGURES.items():
        found = [by_config[config] for config in configs if config in by_config]
        if not found:
            lines[tab] = (
                "The model card reports no figure for this task: treat the answers as a small model's guesses."
            )
            continue
        parts = []
        for result in found:
            percent = result.metric_type == "accuracy" or "recall" in result.metric_type
            value = f"{result.metric_value:.0%}" if percent else f"{result.metric_value:.2f}"
            chance = result.metric_name.split(", ", 1)[1] if ", " in (result.metric_name or "") else ""
            parts.append(f"{result.task_name} {value}" + (f" ({chance})" if chance else ""))
        lines[tab] = "Expected (model card, test splits): " + "; ".join(parts) + ". A miss may be the model's."
    return lines


def as_scores(results: list[dict], key: str = "label") -> dict[str, float]:
    """The pipeline's ranked `[{"label", "score"}]` as `gr.Label`'s `{label: confidence}`."""
    return {str(entry[key]): entry["score"] for entry in results}


# -- one model call for the requests that share candidates ----------------------------------------------------------


class Call(NamedTuple):
    """A request read and checked, waiting for the model: `run(items)` answers a list of items (one result each), and
    calls with equal `key` (the same candidates) can be answered by one `run` over all their items."""

    key: Hashable
    item: Any
    run: Callable[[list], list]

    def answer(self):
        """This request's result alone."""
        return self.run([self.item])[0]


def each_answer(run: Callable[[list], list], items: list) -> list:
    """`run(items)`, or when that raises a `ValueError`, each item run alone: an item that fails gets its own error
    (returned in its place) and the others their results, so that one bad input never fails its neighbours."""
    try:
        return run(items)
    except ValueError as error:
        if len(items) == 1:
            return [error]
        return [each_answer(run, [item])[0] for item in items]


class Batcher:
    """Answers `Call`s on the model threads, one model call for up to `MAX_BATCH` waiting calls with the same key.

    Calls queue under their key; a call that gets one of the `CONCURRENCY` model threads takes its own item and up to
    `MAX_BATCH - 1` others of its key, so whatever arrived while the threads were busy runs as one batch. Why not
    Gradio's `batch=True`: Gradio sends an exception raised by a batch to every request in it, and its `validator=`
    answers at join time (HTTP 422) instead of in the event's stream, so a bad input would fail its neighbours or
    lose the message the page and `gradio_client` show. Here each request is read and checked on its own first.
    """

    def __init__(self, pool: ThreadPoolExecutor):
        self.pool = pool
        self.threads = asyncio.Semaphore(CONCURRENCY)
        self.waiting: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}

    async def __call__(self, call: Call):
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(call.key, []).append((call.item, future))
        try:
            async with self.threads:
                queued = self.waiting.pop(call.key, [])
                mine = [entry for entry in queued if entry[1] is future]  # empty: an earlier call's batch took it
                others = [entry for entry in queued if entry[1] is not future]
                taken, left = (mine + others[: MAX_BATCH - 1], others[MAX_BATCH - 1 :]) if mine else ([], others)
                if left:
                    self.waiting[call.key] = left
                if taken:
                    # Shielded: a request that goes away mid-call must not leave the others of its batch waiting.
                    await asyncio.shield(self.run(call.run, taken))
            return await future
        except asyncio.CancelledError:
            self.forget(call.key, future)
            raise

    def forget(self, key: Hashable, future: asyncio.Future) -> None:
        """Drops the entry of a request that went away before its batch ran."""
        left = [entry for entry in self.waiting.get(key, []) if entry[1] is not future]
        if left:
            self.waiting[key] = left
        else:
            self.waiting.pop(key, None)

    async def run(self, run: Callable[[list], list], taken: list[tuple[Any, asyncio.Future]]) -> None:
        """One model call for `taken`, each future resolved with its own result or error."""
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.pool, each_answer, run, [item for item, _ in taken]
            )
        except Exception as error:  # noqa: BLE001 (a bug: every request of the batch gets it, none waits forever)
            results = [error] * len(taken)
        for (_, future), result in zip(taken, results):
            if future.done():  # its request went away meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


# -- the offline examples and the retrieval gallery ------------------------------------------------------------------


def emoji_pictures(size: int = 64) -> dict[str, Image.Image]:
    """`EMOJI` drawn as the corpus draws them: the glyph centred on a light square, named by its CLDR name."""
    if not EMOJI_FONT.is_file():
        raise SystemExit(f"{EMOJI_FONT} is missing: install Debian's fonts-noto-color-emoji.")
    font = ImageFont.truetype(str(EMOJI_FONT), 109)  # a bitmap font: this size only, scaled afterwards
    pictures = {}
    for name, character in EMOJI.items():
        glyph = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((8, 8), character, font=font, embedded_color=True)
        glyph = glyph.crop(glyph.getbbox()).resize((round(size * 0.75),) * 2, Image.Resampling.LANCZOS)
        canvas = Image.new("RGBA", (size, size), (242, 242, 242, 255))
        canvas.alpha_composite(glyph, ((size - glyph.width) // 2, (size - glyph.height) // 2))
        pictures[name] = canvas.convert("RGB")
    return pictures


def gallery_pictures() -> dict[str, Image.Image]:
    """The retrieval gallery shipped with the demo: emoji, drawn shapes and one handwritten scan of each digit."""
    shapes = {name.removeprefix("drawn: "): image for name, image in drawn_shapes().items()}
    return {**emoji_pictures(), **shapes, **handwritten_digits(tuple(range(10)))}


def write_examples(folder: Path) -> dict[str, str]:
    """The example files (emoji, drawn pictures and a clip of a red circle moving left), written once at start-up."""
    files = {}
    emoji = {f"emoji: {name}": picture for name, picture in emoji_pictures().items()}
    for name, image in {**emoji, **drawn_shapes(), **handwritten_digits((3, 7))}.items():
        files[name] = str(folder / f"{name.split(': ')[-1].replace(' ', '_')}.png")
        image.save(files[name])
    files["clip"] = str(folder / "red_circle_moving_left.mp4")
    write_clip(moving_clip(), files["clip"])
    return files


def write_clip(frames: np.ndarray, path: str, fps: int = 8) -> None:
    """`[T, H, W, 3]` uint8 frames as an H.264 mp4 (playable in browsers)."""
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


# -- the tabs' handlers ----------------------------------------------------------------------------------------------


class Handlers:
    """One method per tab, each turning the page's raw values into a pipeline call and a displayable result.

    The tabs that rank candidates (classify, sketch, both retrievals, VQA) return their request as a `Call`, which
    `Batcher` answers together with others sharing its candidates (`call.answer()` answers it alone); caption and
    fill-mask return their result.
    """

    def __init__(
        self, perceive, gallery: dict[str, Image.Image], index: str | None = None, encode_gallery: bool = True
    ):
        self.perceive = perceive
        self.gallery = gallery
        self.index = index  # an index folder over image files, searched by text queries in place of `gallery`
        self.gallery_set = self.encoded(gallery) if encode_gallery and gallery else None

    def encoded(self, gallery: dict[str, Image.Image]) -> TargetSet:
        """The gallery's features, encoded once as the pipeline encodes image candidates of a text query (a query
        with `candidate_images` would preprocess every picture again to look their features up)."""
        pixels = self.perceive.processor.image_processor(list(gallery.values()), preset="clip", return_tensors="pt")
        model = self.perceive.model
        return TargetSet.encode(model, pixel_values=pixels["pixel_values"], labels=list(gallery), task="retrieve")

    def rank(self, items: list, **candidates) -> list[dict[str, float]]:
        """Each item's candidates as `gr.Label`'s `{label: confidence}`, by one pipeline call."""
        return [as_scores(ranked) for ranked in self.perceive(items, **candidates)]

    def ranking(self, key: tuple, item, **candidates) -> Call:
        """`item` against `candidates`: a call that shares one model call with others of the same `key`."""
        return Call(key, item, functools.partial(self.rank, **candidates))

    def classify(self, image, video, text, labels, template, exemplar_files) -> Call:
        """An image, a video or a text against typed labels (through the template) or uploaded exemplar images."""
        item = one_input(image, video, text)
        if exemplar_files and (labels or "").strip():
            raise ValueError("Give either labels or exemplar images, not both.")
        if exemplar_files:
            images, names = exemplars(exemplar_files)
            return self.ranking((object(),), item, candidate_images=images, candidate_names=names)  # runs alone
        labels, template = read_labels(labels), read_template(template)
        return self.ranking(
            ("labels", tuple(labels), template), item, candidate_labels=labels, hypothesis_template=template
        )

    def sketch(self, drawing, labels) -> Call:
        """A drawing from the sketch pad against typed labels."""
        if not drawing or not drawing.get("composite"):
            raise ValueError(EMPTY_SKETCH)
        sketch = framed(read_image(drawing["composite"], "sketch"))
        labels = read_labels(labels)
        return self.ranking(("labels", tuple(labels), "{}"), sketch, candidate_labels=labels)

    def text_to_images(self, query) -> Call:
        """The gallery's (or the index's) best `SHOWN` pictures for a text: `(picture, "rank. name (score)")` pairs,
        best first."""
        return Call(("text_to_images",), {"text": read_text(query, "query")}, self.find_pictures)

    def find_pictures(self, queries: list[dict]) -> list[list[tuple]]:
        """`text_to_images`'s pictures for each query, by one pipeline call."""
        if self.index is not None:
            return [
                [
                    (entry["label"], f"{rank}. {Path(entry['label']).stem} ({entry['score']:.2f})")
                    for rank, entry in enumerate(ranked, 1)
                ]
                for ranked in self.perceive(queries, candidate_set=self.index, top_k=SHOWN)
            ]
        if self.gallery_set is None:
            gallery = dict(candidate_images=list(self.gallery.values()), candidate_names=list(self.gallery))
        else:  # scored as the pipeline scores image candidates of a text
            gallery = dict(candidate_set=self.gallery_set, logit_scale_task="retrieve")
        return [
            [
                (self.gallery[entry["label"]], f"{rank}. {entry['label']} ({entry['score']:.2f})")
                for rank, entry in enumerate(ranked, 1)
            ]
            for ranked in self.perceive(queries, top_k=SHOWN, **gallery)
        ]

    def image_to_texts(self, image, texts) -> Call:
        """Typed texts (or, when none are typed, the gallery's names) ranked by similarity to an image."""
        if not image:
            raise ValueError("Upload an image to search the texts with.")
        candidates = read_labels(texts, "text list") if (texts or "").strip() else list(self.gallery)
        key = ("retrieve", tuple(candidates))
        return self.ranking(key, read_image(image), candidate_labels=candidates, logit_scale_task="retrieve")

    def caption(self, image, num_beams, max_length):
        """A caption decoded by beam search over the whole vocabulary (encoded once at start-up)."""
        if not image:
            raise ValueError("Upload an image to caption.")
        limit = caption_limit(self.perceive.model)
        if not 1 <= int(max_length) <= limit:
            raise ValueError(f"The maximum length is {int(max_length)} tokens; this model writes 1 to {limit}.")
        (result,) = self.perceive.caption(read_image(image), num_beams=int(num_beams), max_new_tokens=int(max_length))
        return result["generated_text"]

    def vqa(self, image, question, answers) -> Call:
        """A question about an image, answered by ranking the candidate answers."""
        if not image:
            raise ValueError("Upload an image to ask about.")
        query = {"image": read_image(image), "question": read_text(question, "question", MAX_LABEL_CHARS)}
        answers = read_labels(answers, "answer list")
        return self.ranking(("answers", tuple(answers)), query, candidate_labels=answers)

    def fill_mask(self, text):
        """Each `[MASK]` predicted against the vocabulary: the sentence with the best words, and each mask's top 5."""
        text = read_text(text, "text")
        if MASK not in text:
            raise ValueError(f"The text holds no {MASK}: write {MASK} where a word is to be predicted.")
        # The special tokens (`<|endoftext|>`, ...) are no words: ask for as many more and leave them out.
        specials = set(self.perceive.processor.tokenizer.all_special_tokens) | {""}
        predictions = self.perceive.fill_mask(text.replace(MASK, "<|spe|>"), top_k=5 + len(specials))
        predictions = [[word for word in words if word["token"] not in specials][:5] for words in predictions]
        parts = text.split(MASK)
        filled = parts[0] + "".join(f"[{words[0]['token']}]{part}" for words, part in zip(predictions, parts[1:]))
        scores = {}
        for index, words in enumerate(predictions, 1):
            prefix = f"{index}: " if len(predictions) > 1 else ""
            scores.update({f"{prefix}{word['token']}": word["score"] for word in words})
        return filled, scores


def caption_limit(model) -> int:
    """The most tokens a caption may have: the model's text positions (`max_new_tokens` may not exceed them)."""
    return model.config.max_position_embeddings


def index_folder(folder: str) -> str:
    """`UNIPERCEIVER_INDEX`: an index folder whose ids are image files (the pictures the Retrieve tab shows)."""
    ids_path = Path(folder) / "ids.json"
    if not ids_path.is_file():
        raise SystemExit(
            f"UNIPERCEIVER_INDEX={folder!r} is no index folder (no ids.json): build one with `uniperceiver-hf index`."
        )
    ids = json.loads(ids_path.read_text())
    if not ids or not all(isinstance(i, str) and Path(i).is_file() for i in ids[:10]):
        raise SystemExit(
            f"UNIPERCEIVER_INDEX={folder!r}: its ids must be image file paths (extract with `--id-column` naming "
            "a column of paths), so that the tab can show the pictures found."
        )
    return folder


def picture_folder(index: str) -> str:
    """The folder holding every picture of an index (the common parent of its ids), which the page may serve."""
    ids = json.loads((Path(index) / "ids.json").read_text())
    return os.path.commonpath([str(Path(i).resolve().parent) for i in ids])


# -- the page --------------------------------------------------------------------------------------------------------


def image_input(label: str, elem_id: str) -> gr.Image:
    """An image upload whose raw file reaches the handler (so that a corrupt file gets our message, not Gradio's)."""
    return gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], elem_id=elem_id, height=220)


def build_demo(
    handlers: Handlers,
    examples: dict[str, str],
    model_name: str,
    figures: dict[str, str] | None = None,
    batch: bool = True,
) -> gr.Blocks:
    """The page: one tab per task, each with a line of the model card's figures for it and examples that work with
    one click. Enter in a one-line box submits like the tab's button; a new request first clears the old result,
    so that an error never leaves a stale answer on screen. `batch=False` answers every request by its own model
    call (`UNIPERCEIVER_SPACE_BATCH=0`, what `benchmarks/space_load.py` compares with)."""
    pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="model")
    batcher = Batcher(pool)
    figures = figures or {}

    def alone(handler):
        """`handler` with a returned `Call` answered by its own model call."""

        def answered(*args):
            result = handler(*args)
            return result.answer() if isinstance(result, Call) else result

        return answered

    def serve(handler):
        """A tab's handler as Gradio calls it: the request is read on the model threads, a returned `Call` is
        answered by the batcher (or alone), and a `ValueError` (ours or the pipeline's, which name the argument)
        becomes a message in the page. Why a fixed pool of `CONCURRENCY` threads: glibc gives each new thread that
        allocates its own memory arena, so work spread over Gradio's dozens of worker threads keeps raising the
        resident memory; a fixed pool keeps it flat."""
        read = handler if batch else alone(handler)

        async def served(*args):
            try:
                result = await asyncio.get_running_loop().run_in_executor(pool, read, *args)
                return await batcher(result) if isinstance(result, Call) else result
            except ValueError as error:
                raise gr.Error(str(error), print_exception=False) from None

        return served

    def wire(triggers, handler, inputs, outputs, api_name):
        """`handler` on every trigger, after an instant step that empties `outputs`.

        Concurrency: a batched ranking tab admits `IN_FLIGHT` requests at once (all such tabs together), so that
        requests waiting for a model thread wait in the batcher, where they can share a call, rather than in
        Gradio's queue; the model itself never runs more than `CONCURRENCY` calls at once. Unbatched tabs (and every
        tab with `batch=False`) admit `CONCURRENCY` each: more would only wait for the model threads."""
        cleared = (None,) * len(outputs) if isinstance(outputs, list) else None
        ranking = batch and api_name in RANKING_TABS
        limits = dict(concurrency_limit=IN_FLIGHT, concurrency_id="ranking") if ranking else {}
        gr.on(triggers, lambda: cleared, None, outputs, queue=False, api_visibility="private").then(
            serve(handler), inputs, outputs, api_name=api_name, preprocess=False, **limits
        )

    def expected(tab: str) -> None:
        if tab in figures:
            gr.Markdown(figures[tab], elem_id=f"{tab}-expected")

    digit_answers = ", ".join(DIGITS)
    with gr.Blocks(title="Uni-Perceiver") as demo:
        gr.Markdown(
            f"# Uni-Perceiver: one Transformer for images, video and text\n"
            f"Every task is *pick the candidate whose features are most similar to the input's*. Model: `{model_name}` "
            f"(64-px images; it knows emoji names, handwritten digits, motions of clips and fortune-cookie text)."
        )
        with gr.Tab("Classify", id="classify"):
            expected("classify")
            with gr.Row():
                image = image_input("Image", "classify-image")
                video = gr.Video(label="Video", sources=["upload"], elem_id="classify-video", height=220)
                text = gr.Textbox(label="Text", lines=4, elem_id="classify-text")
            with gr.Row():
                labels = gr.Textbox(
                    label="Labels (one per line or comma-separated)",
                    lines=3,
                    placeholder=EMOJI_LABELS,
                    elem_id="classify-labels",
                )
                template = gr.Textbox(label="Prompt template", value="{}", elem_id="classify-template")
                exemplar_files = gr.File(
                    label="... or exemplar images as candidates",
                    file_count="multiple",
                    file_types=["image"],
                    elem_id="classify-exemplars",
                )
            button = gr.Button("Classify", variant="primary", elem_id="classify-button")
            result = gr.Label(label="Ranked candidates", num_top_classes=5, elem_id="classify-result")
            inputs = [image, video, text, labels, template, exemplar_files]
            wire([button.click, template.submit], handlers.classify, inputs, result, "classify")
            # Labelled examples: a table of six columns would scroll sideways on a phone.
            gr.Examples(
                [
                    [examples["emoji: dog face"], None, None, EMOJI_LABELS, "{}", None],
                    [examples["drawn: red circle"], None, None, ", ".join(SHAPE_LABELS), "{}", None],
                    [examples["handwritten seven"], None, None, digit_answers, "{}", None],
                    [None, examples["clip"], None, ", ".join(MOTIONS), "{}", None],
                    [None, None, TEXT, ", ".join(TOPICS), "{}", None],
                    [
                        examples["handwritten three"],
                        None,
                        None,
                        "",
                        "{}",
                        [examples["handwritten seven"], examples["handwritten three"], examples["drawn: blue square"]],
                    ],
                ],
                inputs,
                example_labels=[
                    "emoji: a dog face",
                    "drawn red circle vs colours and shapes",
                    "handwritten seven vs digit names",
                    "clip of a moving circle vs motions",
                    "fortune text vs topics",
                    "handwritten three vs exemplar images",
                ],
            )
        with gr.Tab("Sketch", id="sketch") as sketch_tab:
            expected("sketch")
            pad = gr.Sketchpad(
                label="Draw a digit or a shape",
                type="filepath",
                canvas_size=(320, 320),
                brush=gr.Brush(default_size=24, colors=["#111111", "#dc2323", "#2850d7"]),
                elem_id="sketch-pad",
            )
            gr.on(
                [sketch_tab.select, pad.clear], None, None, None, js=PICK_BRUSH, queue=False, api_visibility="private"
            )
            sketch_labels = gr.Textbox(label="Labels", value=digit_answers, elem_id="sketch-labels")
            sketch_button = gr.Button("Classify the sketch", variant="primary", elem_id="sketch-button")
            sketch_result = gr.Label(label="Ranked labels", num_top_classes=5, elem_id="sketch-result")
            wire(
                [sketch_button.click, sketch_labels.submit],
                handlers.sketch,
                [pad, sketch_labels],
                sketch_result,
                "sketch",
            )
        with gr.Tab("Retrieve", id="retrieve"):
            expected("retrieve")
            if handlers.index is None:
                gr.Gallery(
                    [(picture, name) for name, picture in handlers.gallery.items()],
                    label="The gallery searched",
                    columns=8,
                    height="auto",
                    allow_preview=False,
                    elem_classes="uniperceiver-gallery",
                )
            else:
                gr.Markdown(f"Text queries search the index folder `{handlers.index}`.")
            with gr.Row():
                with gr.Column():
                    query = gr.Textbox(label="Text query", elem_id="retrieve-query")
                    query_button = gr.Button("Find pictures", variant="primary", elem_id="retrieve-images-button")
                    found = gr.Gallery(
                        label="Pictures, best first",
                        columns=3,
                        height="auto",
                        elem_id="retrieve-images",
                        elem_classes="uniperceiver-gallery",
                    )
                    wire([query_button.click, query.submit], handlers.text_to_images, [query], found, "text_to_images")
                    gr.Examples([["a dog face"], ["a handwritten digit seven"], ["red circle"]], [query])
                with gr.Column():
                    picture = image_input("Image query", "retrieve-image")
                    candidate_texts = gr.Textbox(
                        label="Texts to rank (empty: the gallery's names)",
                        lines=2,
                        placeholder="a dog face, a red apple, a rocket",
                        elem_id="retrieve-candidates",
                    )
                    picture_button = gr.Button("Find texts", variant="primary", elem_id="retrieve-texts-button")
                    texts = gr.Label(label="Texts, best first", num_top_classes=5, elem_id="retrieve-texts")
                    wire(
                        [picture_button.click],
                        handlers.image_to_texts,
                        [picture, candidate_texts],
                        texts,
                        "image_to_texts",
                    )
                    gr.Examples(
                        [[examples["emoji: red apple"], ""], [examples["drawn: blue square"], ""]],
                        [picture, candidate_texts],
                        example_labels=["emoji: a red apple", "drawn blue square"],
                    )
        with gr.Tab("Caption", id="caption"):
            expected("caption")
            limit = caption_limit(handlers.perceive.model)
            with gr.Row():
                caption_image = image_input("Image", "caption-image")
                with gr.Column():
                    beams = gr.Slider(1, 5, value=2, step=1, label="Beam size", elem_id="caption-beams")
                    length = gr.Slider(
                        1,
                        limit,
                        value=min(21, limit),
                        step=1,
                        label="Maximum length (tokens)",
                        elem_id="caption-length",
                    )
            caption_button = gr.Button("Caption", variant="primary", elem_id="caption-button")
            caption = gr.Textbox(label="Caption", elem_id="caption-result")
            wire([caption_button.click], handlers.caption, [caption_image, beams, length], caption, "caption")
            gr.Examples(
                [
                    [examples["emoji: automobile"], 2, 21],
                    [examples["drawn: red circle"], 2, 21],
                    [examples["handwritten seven"], 3, 10],
                ],
                [caption_image, beams, length],
                example_labels=["emoji: an automobile", "drawn red circle", "handwritten seven"],
            )
        with gr.Tab("Ask", id="vqa"):
            expected("vqa")
            with gr.Row():
                vqa_image = image_input("Image", "vqa-image")
                with gr.Column():
                    question = gr.Textbox(label="Question", value=QUESTION, elem_id="vqa-question")
                    answers = gr.Textbox(label="Candidate answers", value=digit_answers, elem_id="vqa-answers")
            vqa_button = gr.Button("Answer", variant="primary", elem_id="vqa-button")
            answer = gr.Label(label="Ranked answers", num_top_classes=5, elem_id="vqa-result")
            wire(
                [vqa_button.click, question.submit, answers.submit],
                handlers.vqa,
                [vqa_image, question, answers],
                answer,
                "vqa",
            )
            gr.Examples(
                [
                    [examples["handwritten seven"], QUESTION, digit_answers],
                    [examples["emoji: rocket"], "what is this?", "a rocket, a dog face, a red apple, an automobile"],
                    [
                        examples["drawn: blue square"],
                        "what colour is the background?",
                        "yellow, blue, red, green, white",
                    ],
                ],
                [vqa_image, question, answers],
                example_labels=[
                    "handwritten seven: what number?",
                    "emoji rocket: what is it?",
                    "blue square: colour?",
                ],
            )
        with gr.Tab("Fill the mask", id="fill-mask"):
            expected("fill-mask")
            masked = gr.Textbox(
                label=f"Text with {MASK} where a word is missing", value=MASKED_TEXT, elem_id="fill-mask-text"
            )
            fill_button = gr.Button("Fill", variant="primary", elem_id="fill-mask-button")
            filled = gr.Textbox(label="Best words", elem_id="fill-mask-filled")
            words = gr.Label(label="Words per mask", num_top_classes=10, elem_id="fill-mask-result")
            wire([fill_button.click, masked.submit], handlers.fill_mask, [masked], [filled, words], "fill_mask")
            gr.Examples(
                [[MASKED_TEXT], [f"a {MASK} face"], [f"a handwritten digit {MASK}"], [f"a dog {MASK} in the park"]],
                [masked],
            )
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def load_pipeline(model: str):
    """The pipeline on `model` with its vocabulary encoded (about 30 s on one core for the 49,411 words)."""
    perceive = pipeline("zero-shot-perception", model=model)
    perceive.vocabulary()
    return perceive


def main() -> None:
    model = os.environ.get("UNIPERCEIVER_MODEL", str(DEFAULT_MODEL))
    if model == str(DEFAULT_MODEL) and not (DEFAULT_MODEL / "config.json").is_file():
        raise SystemExit(f"The default model is missing from {DEFAULT_MODEL}; set UNIPERCEIVER_MODEL to a model.")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
    print(f"Loading {model} and encoding its vocabulary ...", flush=True)
    index = os.environ.get("UNIPERCEIVER_INDEX")
    batch = os.environ.get("UNIPERCEIVER_SPACE_BATCH", "1") != "0"
    pictures = gallery_pictures()
    handlers = Handlers(load_pipeline(model), pictures, index_folder(index) if index else None, encode_gallery=batch)
    with tempfile.TemporaryDirectory(prefix="uniperceiver-space-") as example_folder:
        files = write_examples(Path(example_folder))
        demo = build_demo(handlers, files, Path(model).name, expected_figures(model), batch=batch)
        # An index's pictures are files outside the app: Gradio serves only the folders it is told of.
        allowed = [example_folder] + ([picture_folder(index)] if index else [])
        demo.launch(max_file_size=MAX_UPLOAD, allowed_paths=allowed, css=CSS)


if __name__ == "__main__":
    main()
