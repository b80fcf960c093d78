"""The Gradio Space (spaces_demo/app.py), started once on 127.0.0.1: every tab through `gradio_client`, bad inputs,
a real headless browser (Debian's chromium driven by playwright) and a load run with its memory bound."""

import asyncio
import io
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw
from playwright.sync_api import expect


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "spaces_demo"))

import app as space  # noqa: E402
import space_load  # noqa: E402


CHROMIUM = Path("/usr/bin/chromium")
LOAD_REQUESTS = 60  # benchmarks/space_load.py runs 200; this many fit the test budget and show the same bound
SHAPES = "red circle, blue square, yellow circle, green square, purple circle"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`(url, pid)` of the app running the default model (or `UNIPERCEIVER_MODEL`)."""
    with space_load.running_app(log_path=tmp_path_factory.mktemp("app") / "app.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(served) -> Client:
    return Client(served[0], verbose=False, download_files=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The app's own example files: drawn shapes, handwritten digits and a clip of a red circle moving left."""
    return space.write_examples(tmp_path_factory.mktemp("examples"))


def ranked(label_output: dict, given: list[str] | None = None) -> list[tuple[str, float]]:
    """`gr.Label`'s value as `(label, confidence)` pairs, checked to be best first with the top one named first."""
    pairs = [(entry["label"], entry["confidence"]) for entry in label_output["confidences"]]
    scores = [score for _, score in pairs]
    assert scores == sorted(scores, reverse=True)
    assert label_output["label"] == pairs[0][0]
    assert all(0.0 <= score <= 1.0 for score in scores)
    if given is not None:  # the best five distinct candidates (all of them, summing to one, when there are fewer)
        labels = [label for label, _ in pairs]
        assert len(set(labels)) == len(labels) == min(len(given), 5) and set(labels) <= set(given)
        if len(given) <= 5:
            assert sum(scores) == pytest.approx(1.0, abs=1e-4)
    return pairs


# -- every tab, through the API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["image", "video", "text"])
def test_classify_ranks_the_typed_labels_for_each_kind_of_input(client, files, kind):
    labels = {"image": SHAPES, "video": ", ".join(space.MOTIONS), "text": ", ".join(space.TOPICS)}[kind]
    inputs = {
        "image": (handle_file(files["drawn: red circle"]), None, ""),
        "video": (None, handle_file(files["clip"]), ""),
        "text": (None, None, space.TEXT),
    }[kind]
    output = client.predict(*inputs, labels, "an emoji of {}", [], api_name="/classify")
    ranked(output, [label.strip() for label in labels.split(",")])


def test_classify_against_exemplar_images_ranks_the_identical_picture_first(client, files):
    exemplars = [handle_file(files[name]) for name in ("handwritten seven", "handwritten three", "drawn: blue square")]
    three = handle_file(files["handwritten three"])
    output = client.predict(three, None, "", "", "{}", exemplars, api_name="/classify")
    pairs = ranked(output, ["handwritten_seven", "handwritten_three", "blue_square"])
    assert pairs[0][0] == "handwritten_three"  # the same pixels give cosine similarity 1, the most there is


def test_a_repeated_label_list_costs_one_forward_pass_of_the_input(files, monkeypatch):
    from transformers import pipeline

    perceive = pipeline("zero-shot-perception", model=os.environ.get("UNIPERCEIVER_MODEL", str(space.DEFAULT_MODEL)))
    handlers = space.Handlers(perceive, {})
    calls = []
    forward = perceive.model.get_features
    monkeypatch.setattr(perceive.model, "get_features", lambda *a, **k: calls.append(1) or forward(*a, **k))
    image = {"path": files["drawn: red circle"]}
    first = handlers.classify(image, None, "", SHAPES, "{}", []).answer()
    encoded_labels = len(calls) - 1
    second = handlers.classify(image, None, "", SHAPES, "{}", []).answer()
    assert encoded_labels >= 1 and len(calls) == encoded_labels + 2
    assert first == second


def test_sketch_classifies_a_drawing_on_a_transparent_canvas(client, tmp_path):
    drawing = Image.new("RGBA", (320, 320), (0, 0, 0, 0))  # the sketch pad's strokes lie on a transparent canvas
    ImageDraw.Draw(drawing).line([(110, 60), (210, 60), (150, 270)], fill=(17, 17, 17, 255), width=24)
    drawing.save(tmp_path / "seven.png")
    editor_value = {
        "background": None,
        "layers": [],
        "composite": handle_file(str(tmp_path / "seven.png")),
        "id": None,
    }
    ranked(client.predict(editor_value, ", ".join(space.DIGITS), api_name="/sketch"), space.DIGITS)


def test_text_to_images_shows_the_best_gallery_pictures_ranked(client):
    found = client.predict("a handwritten digit seven", api_name="/text_to_images")
    assert len(found) == space.SHOWN
    captions = [picture["caption"] for picture in found]
    assert [caption.split(". ")[0] for caption in captions] == [str(rank) for rank in range(1, space.SHOWN + 1)]
    scores = [float(caption.rsplit("(", 1)[1].rstrip(")")) for caption in captions]
    assert scores == sorted(scores, reverse=True)
    names = [caption.split(". ", 1)[1].rsplit(" (", 1)[0] for caption in captions]
    assert set(names) <= set(space.gallery_pictures()) and len(set(names)) == space.SHOWN


def test_image_to_texts_ranks_the_gallery_names_or_typed_texts(client, files):
    output = client.predict(handle_file(files["drawn: blue square"]), "", api_name="/image_to_texts")
    ranked(output, list(space.gallery_pictures()))
    typed = ["a dog face", "a red apple", "a rocket"]
    ranked(client.predict(handle_file(files["emoji: red apple"]), ", ".join(typed), api_name="/image_to_texts"), typed)


def test_text_to_images_searches_an_index_folder_of_image_files(files, tmp_path):
    """`UNIPERCEIVER_INDEX`: a folder from `uniperceiver-hf extract` + `index` over image paths (ids = the paths)."""
    import datasets
    from transformers import pipeline

    from uniperceiver_hf.tools import cli

    model = os.environ.get("UNIPERCEIVER_MODEL", str(space.DEFAULT_MODEL))
    pictures = [path for name, path in files.items() if name != "clip"]
    datasets.Dataset.from_dict({"path": pictures}).save_to_disk(str(tmp_path / "pictures"))
    features = tmp_path / "features"
    cli.main(
        [
            "extract",
            "--model",
            model,
            "--dataset",
            str(tmp_path / "pictures"),
            "--column",
            "path",
            "--id-column",
            "path",
            "--output",
            str(features),
        ]
    )
    index = str(cli.main(["index", "--features", str(features), "--output", str(tmp_path / "index")]))
    handlers = space.Handlers(pipeline("zero-shot-perception", model=model), {}, space.index_folder(index))
    found = handlers.text_to_images("a dog face").answer()
    assert len(found) == space.SHOWN and {path for path, _ in found} <= set(pictures)
    assert [caption.split(". ")[0] for _, caption in found] == [str(rank) for rank in range(1, space.SHOWN + 1)]
    assert Path(space.picture_folder(index)) == Path(pictures[0]).resolve().parent
    (tmp_path / "by-row").mkdir()
    (tmp_path / "by-row" / "ids.json").write_text("[0, 1, 2]")  # ids of `extract` without --id-column
    with pytest.raises(SystemExit, match="its ids must be image file paths"):
        space.index_folder(str(tmp_path / "by-row"))
    with pytest.raises(SystemExit, match="is no index folder"):
        space.index_folder(str(tmp_path / "missing"))


def test_the_gallery_holds_emoji_as_the_header_promises():
    assert set(space.EMOJI) <= set(space.gallery_pictures())
    assert all(picture.size == (64, 64) for picture in space.emoji_pictures().values())


def test_each_tab_shows_the_model_cards_figures(tmp_path):
    """The lines are read from the card, so a retrained model's card changes them."""
    lines = space.expected_figures(str(space.DEFAULT_MODEL))
    assert set(lines) == set(space.CARD_FIGURES)
    assert "digit classification" in lines["sketch"] and "%" in lines["sketch"]
    assert "no figure" in lines["fill-mask"]
    card = (space.DEFAULT_MODEL / "README.md").read_text()
    digits = re.search(r"name: digit classification\n(?:.*\n)*?\s*value: ([0-9.]+)", card).group(1)
    assert card.count(f"value: {digits}\n") == 1, digits
    (tmp_path / "README.md").write_text(card.replace(f"value: {digits}\n", "value: 0.1234\n"))
    assert "digit classification 12%" in space.expected_figures(str(tmp_path))["sketch"]
    assert "no figure" in space.expected_figures(str(tmp_path / "no-card"))["classify"]


def test_caption_respects_the_length_and_is_deterministic(client, files):
    image = handle_file(files["drawn: red circle"])
    short = client.predict(image, 1, 3, api_name="/caption")
    assert 1 <= len(short.split()) <= 3  # three tokens at most; a token is a word or part of one
    assert client.predict(image, 2, 21, api_name="/caption") == client.predict(image, 2, 21, api_name="/caption")


def test_vqa_ranks_the_candidate_answers(client, files):
    output = client.predict(
        handle_file(files["handwritten seven"]), space.QUESTION, ", ".join(space.DIGITS), api_name="/vqa"
    )
    ranked(output, space.DIGITS)


def test_fill_mask_fills_every_mask_with_its_best_word(client):
    filled, words = client.predict("a [MASK] circle and a [MASK] square", api_name="/fill_mask")
    pairs = ranked(words)
    assert len(pairs) == 10  # five words for each of the two masks, all shown
    assert not any("<|" in label for label, _ in pairs)  # special tokens are no words
    first = next(label for label, _ in pairs if label.startswith("1: "))[3:]
    second = next(label for label, _ in pairs if label.startswith("2: "))[3:]
    assert filled == f"a [{first}] circle and a [{second}] square"


# -- bad input: a message naming what is wrong, never a traceback -----------------------------------------------------


def png_bytes(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def write_video(path: Path, frames: int, fps: int) -> str:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return str(path)


def bad_file(tmp_path: Path, kind: str) -> str:
    """A file that must be refused: too large, too many pixels, corrupt, truncated, too long or too many frames."""
    path = tmp_path / {
        "video": "bad.mp4",
        "big video": "big.mp4",
        "long video": "long.mp4",
        "many frames": "many.mp4",
    }.get(kind, f"{kind.replace(' ', '_')}.png")
    if kind == "big image":
        path.write_bytes(png_bytes() + bytes(11 * space.MEGABYTE))
    elif kind == "many pixels":
        Image.new("L", (5000, 4000)).save(path)
    elif kind == "corrupt image":
        path.write_bytes(b"this is not an image")
    elif kind == "truncated image":
        path.write_bytes(png_bytes((64, 64))[:60])
    elif kind == "video":
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    elif kind == "big video":
        path.write_bytes(bytes(21 * space.MEGABYTE))
    elif kind == "long video":
        return write_video(path, frames=31, fps=1)
    elif kind == "many frames":
        return write_video(path, frames=space.MAX_VIDEO_FRAMES + 10, fps=120)
    return str(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("big image", "The image is 11.0 MB; the limit is 10 MB."),
        ("many pixels", "The image has 5000 x 4000 pixels; the limit is 16,777,216 pixels"),
        ("corrupt image", "The image is not a readable image file"),
        ("truncated image", "The image is not a readable image file"),
    ],
)
def test_bad_images_get_a_message(client, tmp_path, kind, message):
    with pytest.raises(AppError, match=message.replace("(", r"\(").replace(".", r"\.")):
        client.predict(handle_file(bad_file(tmp_path, kind)), None, "", SHAPES, "{}", [], api_name="/classify")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("video", "The video is not a readable video file"),
        ("big video", "The video is 21.0 MB; the limit is 20 MB."),
        ("long video", "The video lasts 31 s; the limit is 30 s."),
        ("many frames", f"The video has 910 frames; the limit is {space.MAX_VIDEO_FRAMES}."),
    ],
)
def test_bad_videos_get_a_message(client, tmp_path, kind, message):
    with pytest.raises(AppError, match=message.replace(".", r"\.")):
        client.predict(None, handle_file(bad_file(tmp_path, kind)), "", "moving left", "{}", [], api_name="/classify")


@pytest.mark.parametrize(
    ("text", "labels", "template", "message"),
    [
        ("a fortune", "", "{}", "The label list is empty"),
        ("a fortune", " , \n ,", "{}", "The label list is empty"),
        ("a fortune", ", ".join(f"label {i}" for i in range(65)), "{}", "The label list has 65 labels; the limit"),
        ("a fortune", "x" * 101, "{}", "has 101 characters; the limit is 100."),
        ("x" * 501, "a, b", "{}", "The text has 501 characters; the limit is 500."),
        ("", "a, b", "{}", "Give exactly one input: an image, a video or a text \\(got nothing\\)."),
        ("a fortune", "a, b", "a photo", "The prompt template 'a photo' must hold exactly one {}"),
    ],
)
def test_bad_texts_and_labels_get_a_message(client, text, labels, template, message):
    with pytest.raises(AppError, match=message):
        client.predict(None, None, text, labels, template, [], api_name="/classify")


def test_other_bad_requests_get_a_message(client, files, tmp_path):
    image = handle_file(files["drawn: red circle"])
    Image.new("RGBA", (32, 32), (255, 255, 255, 0)).save(tmp_path / "blank.png")
    blank = {"background": None, "layers": [], "composite": handle_file(str(tmp_path / "blank.png")), "id": None}
    cases = [
        ("/classify", (image, None, "a text", SHAPES, "{}", []), "got an image, a text"),
        ("/classify", (image, None, "", SHAPES, "{}", [image]), "Give either labels or exemplar images, not both."),
        ("/classify", (image, None, "", "", "{}", [image] * 17), "17 exemplar images were given; the limit is 16."),
        ("/sketch", ({"background": None, "layers": [], "composite": None, "id": None}, "one"), space.EMPTY_SKETCH),
        ("/sketch", (blank, "one"), space.EMPTY_SKETCH),
        ("/caption", (None, 2, 21), "Upload an image to caption."),
        ("/caption", (image, 2, 200), "The maximum length is 200 tokens; this model writes 1 to 64."),
        ("/vqa", (image, "   ", "a, b"), "The question is empty."),
        ("/vqa", (image, "what is it?", ""), "The answer list is empty"),
        ("/fill_mask", ("no mask here",), r"The text holds no \[MASK\]"),
        ("/text_to_images", ("",), "The query is empty."),
    ]
    for api_name, arguments, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(*arguments, api_name=api_name)


# -- batching: requests that share candidates share a model call --------------------------------------------------


def test_the_batcher_runs_waiting_calls_with_the_same_candidates_as_one_and_keeps_errors_apart():
    runs = []

    def run(items):
        runs.append(list(items))
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    async def answers(calls):
        batcher = space.Batcher(ThreadPoolExecutor(space.CONCURRENCY))
        results = await asyncio.gather(*map(batcher, calls), return_exceptions=True)
        assert batcher.waiting == {}  # nothing left behind
        return results

    items = [f"item {index}" for index in range(12)]
    calls = [space.Call("labels", item, run) for item in items] + [space.Call("other labels", "alone", run)]
    assert asyncio.run(answers(calls)) == [item.upper() for item in items] + ["ALONE"]
    assert ["alone"] in runs  # another candidate set never joins a batch
    sizes = [len(batch) for batch in runs]
    assert max(sizes) > 1 and max(sizes) <= space.MAX_BATCH and sum(sizes) == len(calls)
    runs.clear()
    calls = [space.Call("labels", item, run) for item in ["a", "b", "c", "bad", "d", "e"]]
    results = asyncio.run(answers(calls))
    assert results[:3] == ["A", "B", "C"] and results[4:] == ["D", "E"]
    assert isinstance(results[3], ValueError) and str(results[3]) == "bad item"
    assert ["bad"] in runs and any(len(batch) > 1 and "bad" in batch for batch in runs)  # tried together first


def same_answer(first, second) -> bool:
    """Two outputs of one tab equal up to float rounding (a batch may sum in another order)."""
    if isinstance(first, list):  # a gallery: its captions (the pictures' cache paths differ between calls)
        return [picture["caption"] for picture in first] == [picture["caption"] for picture in second]
    pairs = list(zip(first["confidences"], second["confidences"], strict=True))
    return all(
        a["label"] == b["label"] and a["confidence"] == pytest.approx(b["confidence"], abs=1e-5) for a, b in pairs
    )


def test_concurrent_requests_get_the_answers_of_lone_requests_and_their_own_errors(served, client, files, tmp_path):
    digits = ", ".join(space.DIGITS)
    good = [
        ("/classify", (handle_file(files["drawn: red circle"]), None, "", SHAPES, "{}", [])),
        ("/classify", (handle_file(files["drawn: blue square"]), None, "", SHAPES, "{}", [])),
        ("/classify", (None, None, space.TEXT, SHAPES, "{}", [])),
        ("/classify", (None, handle_file(files["clip"]), "", SHAPES, "{}", [])),
        ("/vqa", (handle_file(files["handwritten seven"]), space.QUESTION, digits)),
        ("/vqa", (handle_file(files["handwritten three"]), space.QUESTION, digits)),
        ("/image_to_texts", (handle_file(files["emoji: red apple"]), "")),
        ("/text_to_images", ("a dog face",)),
        ("/text_to_images", ("red circle",)),
    ]
    bad = [
        ("/classify", (handle_file(bad_file(tmp_path, "corrupt image")), None, "", SHAPES, "{}", [])),
        ("/classify", (None, None, "a fortune", "", "{}", [])),
        ("/vqa", (handle_file(files["handwritten seven"]), "   ", digits)),
    ]
    messages = ["The image is not a readable image file", "The label list is empty", "The question is empty."]
    alone = [client.predict(*arguments, api_name=api_name) for api_name, arguments in good]
    # Each bad request between good ones of its tab, all in flight at once. Each comes from its own client, as from
    # users' own browsers: one client's jobs share one event stream, which gradio_client 2.7 sometimes ends early for
    # a job under many concurrent submits (CancelledError with the job's answer still queued).
    order = good[:1] + bad[:1] + good[1:3] + bad[1:2] + good[3:5] + bad[2:] + good[5:]
    users = [Client(served[0], verbose=False, download_files=False) for _ in order]
    jobs = [user.submit(*arguments, api_name=api_name) for user, (api_name, arguments) in zip(users, order)]
    outputs, errors = [], []
    for job in jobs:
        try:
            outputs.append(job.result())
        except AppError as error:
            errors.append(str(error))
    assert len(outputs) == len(good) and all(same_answer(*pair) for pair in zip(outputs, alone, strict=True))
    assert len(errors) == len(bad) and all(message in error for message, error in zip(messages, errors, strict=True))


def test_the_encoded_gallery_ranks_as_the_gallery_pictures_do():
    from transformers import pipeline

    perceive = pipeline("zero-shot-perception", model=os.environ.get("UNIPERCEIVER_MODEL", str(space.DEFAULT_MODEL)))
    gallery = space.gallery_pictures()
    for query in ("a dog face", "a handwritten digit seven"):
        encoded = space.Handlers(perceive, gallery).text_to_images(query).answer()
        pictures = space.Handlers(perceive, gallery, encode_gallery=False).text_to_images(query).answer()
        assert [caption for _, caption in encoded] == [caption for _, caption in pictures]


# -- in a real browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(served):
    """A headless Debian chromium page on the app (skipped where chromium is absent, except in CI)."""
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} is missing: `apt-get install chromium` (Debian) to run the browser test"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # No background connections: this machine's closed network refuses them, many at a time.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-sync",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(served[0])
        page.locator("#classify-button").wait_for()
        yield page
        browser.close()


def run_tab(page, button: str, result: str) -> str:
    """Clicks `button` in the open tab and waits for `result`'s text (a label's top class or a textbox's value)."""
    page.locator(f"#{button}").click()
    field = page.locator(f"#{result} textarea")
    if field.count():
        page.wait_for_function("element => element.value.length > 0", arg=field.element_handle())
        return field.input_value()
    top = page.locator(f'#{result} [data-testid="label-output-value"]')
    top.wait_for()
    return top.inner_text()


def upload(page, component: str, path: str) -> None:
    """Uploads `path` into an image component and waits for its preview."""
    page.locator(f"#{component} input[type=file]").set_input_files(path)
    page.locator(f"#{component} img").wait_for()


def screenshot(page, tab: str, folder: Path) -> None:
    """The whole page with `tab` open, as `<tab>.png` in `folder` (and where `SPACE_SCREENSHOTS_DIR` says)."""
    path = folder / f"{tab.lower().replace(' ', '-')}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("SPACE_SCREENSHOTS_DIR"):
        os.makedirs(os.environ["SPACE_SCREENSHOTS_DIR"], exist_ok=True)
        shutil.copy(path, os.environ["SPACE_SCREENSHOTS_DIR"])


def test_in_the_browser_upload_type_labels_and_read_the_top_label(page, client, files, tmp_path_factory):
    page.get_by_role("tab", name="Classify", exact=True).click()
    upload(page, "classify-image", files["drawn: red circle"])
    page.locator("#classify-labels textarea").fill(SHAPES)
    top = run_tab(page, "classify-button", "classify-result")
    expected = client.predict(
        handle_file(files["drawn: red circle"]), None, "", SHAPES, "{}", [], api_name="/classify"
    )
    assert top == expected["label"]
    screenshot(page, "Classify", tmp_path_factory.getbasetemp())


def test_in_the_browser_caption_an_uploaded_image(page, client, files, tmp_path_factory):
    page.get_by_role("tab", name="Caption", exact=True).click()
    upload(page, "caption-image", files["handwritten seven"])
    caption = run_tab(page, "caption-button", "caption-result")
    assert caption == client.predict(handle_file(files["handwritten seven"]), 2, 21, api_name="/caption")
    screenshot(page, "Caption", tmp_path_factory.getbasetemp())


def test_in_the_browser_draw_on_the_sketch_pad(page, tmp_path_factory):
    page.get_by_role("tab", name="Sketch", exact=True).click()
    expect(page.locator("#sketch-pad").get_by_role("button", name="Brush", exact=True)).to_have_class(
        re.compile("highlight")
    )
    stroke(page, [(-60, -90), (60, -90), (-10, 100)])  # a seven
    assert run_tab(page, "sketch-button", "sketch-result") in space.DIGITS
    screenshot(page, "Sketch", tmp_path_factory.getbasetemp())


def stroke(page, points) -> None:
    """A pen stroke through `points` (offsets from the drawing area's centre)."""
    box = page.locator("#sketch-pad canvas").last.bounding_box()  # the drawing area sits at its centre
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x + points[0][0], y + points[0][1])
    page.mouse.down()
    for dx, dy in points[1:]:
        page.mouse.move(x + dx, y + dy, steps=2)  # each step re-renders the canvas in software
    page.mouse.up()


def test_in_the_browser_the_sketch_pad_draws_again_after_clear_canvas(page):
    """Gradio drops the brush on "clear canvas"; the page picks it again, so a new drawing is not "empty"."""
    page.get_by_role("tab", name="Sketch", exact=True).click()
    brush = page.locator("#sketch-pad").get_by_role("button", name="Brush", exact=True)
    expect(brush).to_have_class(re.compile("highlight"))  # picked when the tab opens
    stroke(page, [(-60, -90), (60, -90), (-10, 100)])
    page.locator("#sketch-pad").get_by_role("button", name="Clear canvas").click()
    expect(brush).to_have_class(re.compile("highlight"))  # and again after the clear
    stroke(page, [(0, -100), (0, 100)])  # a one
    assert run_tab(page, "sketch-button", "sketch-result") in space.DIGITS


def test_in_the_browser_enter_submits_and_a_failed_request_clears_the_old_result(page):
    page.get_by_role("tab", name="Fill the mask", exact=True).click()
    page.locator("#fill-mask-text textarea").fill("a [MASK] circle")
    page.locator("#fill-mask-text textarea").press("Enter")
    field = page.locator("#fill-mask-filled textarea")
    page.wait_for_function("element => element.value.length > 0", arg=field.element_handle())
    assert field.input_value().startswith("a [")
    page.locator("#fill-mask-text textarea").fill("no mask here")
    page.locator("#fill-mask-text textarea").press("Enter")
    page.get_by_text("The text holds no [MASK]").first.wait_for()
    assert field.input_value() == ""
    toast = page.get_by_text("The text holds no [MASK]").first.bounding_box()
    title = page.get_by_role("heading", name="Uni-Perceiver").bounding_box()
    assert toast["y"] > title["y"] + title["height"]  # the message never covers the title


def test_in_the_browser_a_phone_screen_never_scrolls_sideways(page, served):
    phone = page.context.browser.new_page(viewport={"width": 390, "height": 844})
    try:
        phone.set_default_timeout(60_000)
        phone.goto(served[0])
        phone.locator("#classify-button").wait_for()
        # Any box that scrolls sideways (the page, or an examples table in its own scrolling box).
        sideways = phone.evaluate(
            """() => [document.documentElement, ...document.querySelectorAll('*')].filter(element => {
                const overflow = getComputedStyle(element).overflowX;
                const scrolls = element === document.documentElement || overflow === 'auto' || overflow === 'scroll';
                return scrolls && element.scrollWidth > element.clientWidth + 1 && element.offsetParent !== null;
            }).map(element => element.id || element.className)"""
        )
    finally:
        phone.close()
    assert sideways == []


def test_in_the_browser_retrieval_vqa_and_fill_mask_tabs_show_results(page, files, tmp_path_factory):
    page.get_by_role("tab", name="Retrieve", exact=True).click()
    page.locator("#retrieve-query textarea").fill("a handwritten digit seven")
    page.locator("#retrieve-images-button").click()
    page.locator("#retrieve-images img").first.wait_for()
    upload(page, "retrieve-image", files["drawn: blue square"])
    assert run_tab(page, "retrieve-texts-button", "retrieve-texts") in space.gallery_pictures()
    screenshot(page, "Retrieve", tmp_path_factory.getbasetemp())
    page.get_by_role("tab", name="Ask", exact=True).click()
    upload(page, "vqa-image", files["handwritten three"])
    assert run_tab(page, "vqa-button", "vqa-result") in space.DIGITS
    screenshot(page, "Ask", tmp_path_factory.getbasetemp())
    page.get_by_role("tab", name="Fill the mask", exact=True).click()
    page.locator("#fill-mask-text textarea").fill(space.MASKED_TEXT)
    assert "[" in run_tab(page, "fill-mask-button", "fill-mask-filled")
    screenshot(page, "Fill the mask", tmp_path_factory.getbasetemp())


# -- load ------------------------------------------------------------------------------------------------------------


def test_load_every_request_succeeds_and_memory_stays_flat(served, files):
    url, pid = served
    result = space_load.run_load(url, pid, files, requests=LOAD_REQUESTS, concurrency=8)
    assert result.failures == []
    assert len(result.outputs) == LOAD_REQUESTS
    for output in result.outputs:
        assert isinstance(output, list) or ranked(output)
    assert result.rss_after <= 1.10 * result.rss_after_warmup
