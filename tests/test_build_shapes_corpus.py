"""`examples/data/build_shapes_corpus.py`: a tiny build checked against its own pixels, clips and sentences."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest


datasets = pytest.importorskip("datasets")
av = pytest.importorskip("av")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "data"))
import build_shapes_corpus as corpus_module  # noqa: E402
from build_shapes_corpus import (  # noqa: E402
    CLASS_NAMES,
    COLOURS,
    MOTIONS,
    SHAPES,
    SPLITS,
    TOPICS,
    build_shapes_corpus,
)
from corpus_writing import split_sizes  # noqa: E402

from uniperceiver_hf.video_processing_uniperceiver import decode_video_frames  # noqa: E402


TINY = {"size": 32, "images_per_class": 3, "videos_per_class": 3, "frames": 6, "texts": 40, "seed": 0}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "shapes"
    return folder, build_shapes_corpus(folder, **TINY)


def shape_pixels(image) -> tuple[np.ndarray, np.ndarray]:
    """The shape's mask (pixels far from the corner's background colour) and the image as int array."""
    array = np.asarray(image, dtype=np.int64)
    distance = np.abs(array - array[0, 0]).sum(-1)
    return distance > 60, array


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return xs.mean() + 0.5, ys.mean() + 0.5  # pixel i covers [i, i + 1)


def decode(path: str) -> list[np.ndarray]:
    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_split_sizes():
    assert split_sizes(20) == (14, 3, 3)
    assert split_sizes(6) == (4, 1, 1)
    assert split_sizes(3) == (1, 1, 1)
    assert split_sizes(2) == (2, 0, 0)


def test_files_counts_and_features(built):
    folder, corpus = built
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "corpus.json", "images", "text", "videos"]
    assert not list(folder.parent.glob(".shapes.building-*"))  # the staging folder was moved into place
    card = json.loads((folder / "corpus.json").read_text())
    assert card["parameters"] == TINY
    assert "--images-per-class 3" in (folder / "README.md").read_text()
    expected = {"images": 24, "videos": 6, "text": None}
    for name, per_class in expected.items():
        loaded = datasets.load_from_disk(str(folder / name))
        assert list(loaded) == list(SPLITS)
        for split in SPLITS:
            assert loaded[split].features == corpus[name][split].features
            assert loaded[split].num_rows == card["counts"][name][split]
            if per_class:
                assert loaded[split].num_rows == per_class  # 3 per class -> 1/1/1
    assert card["counts"]["text"] == {"train": 24, "validation": 8, "test": 8}  # 10 per topic -> 6/2/2
    images = corpus["images"]["train"].features
    assert isinstance(images["image"], datasets.Image)
    assert images["label"].names == list(CLASS_NAMES) and len(CLASS_NAMES) == 24 and CLASS_NAMES[0] == "red circle"
    assert images["shape"].names == list(SHAPES) and images["colour"].names == list(COLOURS)
    assert [images[c].dtype for c in ("caption", "question", "answer")] == ["string"] * 3
    assert corpus["videos"]["train"].features["label"].names == list(MOTIONS)
    assert list(corpus["text"]["train"].features) == ["text", "text_pair", "label"]
    assert corpus["text"]["train"].features["label"].names == list(TOPICS)


def test_same_seed_same_bytes_other_seed_differs(built, tmp_path):
    _, corpus = built
    again = build_shapes_corpus(tmp_path / "again", **TINY)
    for name in ("images", "text"):
        assert again[name]["train"].data.table.equals(corpus[name]["train"].data.table)
    first = corpus["images"]["train"].cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]
    second = again["images"]["train"].cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]
    assert first == second
    assert again["videos"]["train"]["caption"] == corpus["videos"]["train"]["caption"]
    clip, clip_again = (Path(built["videos"]["test"][0]["video"]) for built in (corpus, again))
    assert clip_again.read_bytes() == clip.read_bytes()
    other = build_shapes_corpus(tmp_path / "other", **{**TINY, "seed": 1})
    assert other["images"]["train"]["caption"] != corpus["images"]["train"]["caption"]
    assert other["text"]["train"]["text"] != corpus["text"]["train"]["text"]


def test_image_splits_disjoint_and_labels_consistent(built):
    _, corpus = built
    seen = set()
    for split in SPLITS:
        rows = corpus["images"][split].cast_column("image", datasets.Image(decode=False))
        images = {row["image"]["bytes"] for row in rows}
        assert len(images) == rows.num_rows and not images & seen
        seen |= images
        assert sorted(rows["label"]) == list(range(24))  # one image of each class per split
        for label, shape, colour in zip(rows["label"], rows["shape"], rows["colour"]):
            assert CLASS_NAMES[label] == f"{list(COLOURS)[colour]} {SHAPES[shape]}"


def test_captions_and_answers_match_the_pixels(built):
    _, corpus = built
    palette = np.array(list(COLOURS.values()))
    kinds = set()
    for split in SPLITS:
        for row in corpus["images"][split]:
            shape, colour = SHAPES[row["shape"]], list(COLOURS)[row["colour"]]
            image = row["image"]
            assert image.size == (32, 32) and image.mode == "RGB"
            mask, array = shape_pixels(image)
            x, y = centroid(mask)
            strong = np.abs(array - array[0, 0]).sum(-1) > 0.75 * np.abs(array - array[0, 0]).sum(-1).max()
            drawn_colour = list(COLOURS)[np.argmin(((palette - array[strong].mean(0)) ** 2).sum(-1))]
            assert drawn_colour == colour
            facts = {
                "shape": shape,
                "colour": colour,
                "horizontal": "left" if x < 16 else "right",
                "vertical": "top" if y < 16 else "bottom",
                "tone": "light" if array[0, 0].mean() > 128 else "dark",
            }
            assert abs(x - 16) > 1.5 and abs(y - 16) > 1.5  # clearly on one side (the centre is 2.56 px off)
            question, answer = row["question"], row["answer"]
            kind = (
                "horizontal"
                if "left or the right" in question
                else "vertical"
                if "top or the bottom" in question
                else "tone"
                if "background" in question
                else "colour"
                if "colour" in question
                else "shape"
            )
            kinds.add(kind)
            assert answer == facts[kind], (question, answer, facts)
            assert f"{colour} {shape}" in row["caption"]
            for word in ("light", "dark", "left", "right", "top", "bottom"):
                if re.search(rf"\b{word}\b", row["caption"]):
                    assert word in facts.values(), (row["caption"], facts)
    assert kinds == {"shape", "colour", "horizontal", "vertical", "tone"}


def test_videos_decode_and_move_as_labelled(built):
    folder, corpus = built
    for split in SPLITS:
        for row in corpus["videos"][split]:
            path = row["video"]
            assert Path(path).is_absolute() and Path(path).parent == folder / "videos" / "clips"
            motion = MOTIONS[row["label"]]
            assert row["caption"].split(" on a ")[0].endswith(motion)
            frames = decode(path)
            assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
            via_processor = decode_video_frames(path, lambda total, fps: range(total))
            assert via_processor.shape == (6, 32, 32, 3)
            masks = [shape_pixels(frame)[0] for frame in frames]
            xs, ys = zip(*(centroid(mask) for mask in masks))
            areas = [int(mask.sum()) for mask in masks]
            along = {
                "moving left": -np.array(xs),
                "moving right": np.array(xs),
                "moving up": -np.array(ys),
                "moving down": np.array(ys),
            }
            if motion in along:
                track = along[motion]
                assert track[-1] - track[0] > 0.3 * 32 and np.all(np.diff(track) > 0), (motion, xs, ys)
                across = ys if motion in ("moving left", "moving right") else xs
                assert np.ptp(across) < 1.5
            else:
                growth = np.array(areas) if motion == "growing" else -np.array(areas)
                assert np.all(np.diff(growth) >= 0) and abs(areas[-1] - areas[0]) > 1.5 * min(areas), (motion, areas)
                assert np.ptp(xs) < 1.5 and np.ptp(ys) < 1.5


OBJECT = rf"((?:{'|'.join(COLOURS)}) (?:{'|'.join(SHAPES)}))"
CANONICAL = {
    "above": "above",
    "below": "above",
    "to the left of": "to the left of",
    "to the right of": "to the left of",
    "bigger": "bigger",
    "smaller": "bigger",
}


def parse(sentence: str) -> tuple[str, tuple]:
    """(topic, the fact in one canonical form) of a generated sentence, read independently of the generator."""
    relation = r"(above|below|to the left of|to the right of)"
    match = re.fullmatch(rf"the {OBJECT} (?:is|sits) {relation} the {OBJECT} \.", sentence) or re.fullmatch(
        rf"there is an? {OBJECT} {relation} the {OBJECT} \.", sentence
    )
    topic = "position"
    if not match:
        topic = "size"
        match = re.fullmatch(rf"the {OBJECT} (?:is|looks) (bigger|smaller) than the {OBJECT} \.", sentence)
    if match:
        a, rel, b = match.groups()
        return topic, (a, rel, b) if CANONICAL[rel] == rel else (b, CANONICAL[rel], a)
    match = re.fullmatch(rf"(?:an?|the) {OBJECT} (.+) (slowly|quickly) \.", sentence)
    if match:
        obj, phrase, speed = match.groups()
        direction = next(
            word
            for word, keys in {
                "left": ("left",),
                "right": ("right",),
                "up": ("up",),
                "down": ("down",),
                "grow": ("grow", "bigger"),
                "shrink": ("shrink", "smaller"),
            }.items()
            if any(key in phrase for key in keys)
        )
        return "motion", (obj, direction, speed)
    shapes, colours = "|".join(SHAPES), "|".join(COLOURS)
    pairs = re.findall(rf"the ({shapes}) is ({colours})", sentence)
    pairs += [(s, c) for c, s in re.findall(rf"the ({colours}) shape is an? ({shapes})", sentence)]
    assert len(pairs) == 2, sentence
    return "colour", tuple(sorted(pairs))


def test_text_pairs_state_the_same_fact_and_topic(built):
    _, corpus = built
    facts = []
    for split in SPLITS:
        rows = corpus["text"][split]
        for text, pair, label in zip(rows["text"], rows["text_pair"], rows["label"]):
            assert text != pair
            assert parse(text) == parse(pair), (text, pair)
            assert parse(text)[0] == TOPICS[label]
            assert " a orange" not in text + pair and " a a" not in text + pair
            facts.append(parse(text))
    assert len(set(facts)) == len(facts) == 40  # distinct facts, so the splits share none
    topics = [topic for topic, _ in facts]
    assert all(topics.count(topic) == 10 for topic in TOPICS)


def test_refuses_existing_folders_unless_overwriting_a_corpus(built, tmp_path):
    folder, _ = built
    before = (folder / "corpus.json").stat().st_mtime_ns
    with pytest.raises(ValueError, match="already exists and is not empty; pass `--overwrite`"):
        build_shapes_corpus(folder, **TINY)
    assert (folder / "corpus.json").stat().st_mtime_ns == before
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a shapes corpus"):
        build_shapes_corpus(stranger, overwrite=True, **TINY)
    assert (stranger / "keep.txt").read_text() == "mine"
    small = {**TINY, "images_per_class": 1, "videos_per_class": 1, "texts": 4}
    target = tmp_path / "rebuilt"
    build_shapes_corpus(target, **small)
    first = (target / "videos" / "clips" / "train-growing-000.mp4").read_bytes()
    build_shapes_corpus(target, overwrite=True, **{**small, "seed": 3})
    assert json.loads((target / "corpus.json").read_text())["parameters"]["seed"] == 3
    assert (target / "videos" / "clips" / "train-growing-000.mp4").read_bytes() != first


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("size", 33, "`size`=33: expected an even number"),
        ("size", 8, "`size`=8: expected an integer >= 16"),
        ("images_per_class", 0, "`images_per_class`=0"),
        ("frames", 1, "`frames`=1"),
        ("texts", 10_000, "`texts`=10000: expected an integer between 1 and 1152"),
        ("seed", 1.5, "`seed`=1.5"),
    ],
)
def test_bad_arguments(tmp_path, argument, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_shapes_corpus(tmp_path / "x", **{**TINY, argument: value})
    assert not (tmp_path / "x").exists()


def test_command_line(tmp_path, monkeypatch, capsys):
    target = tmp_path / "cli"
    arguments = [
        "--output",
        str(target),
        "--size",
        "16",
        "--images-per-class",
        "1",
        "--videos-per-class",
        "1",
        "--frames",
        "2",
        "--texts",
        "4",
    ]
    monkeypatch.setattr(sys, "argv", ["build_shapes_corpus.py", *arguments])
    corpus_module.main()
    assert "images: train 24, validation 0, test 0" in capsys.readouterr().out
    assert datasets.load_from_disk(str(target / "videos"))["train"].num_rows == 6
    with pytest.raises(SystemExit):
        corpus_module.main()
    assert "already exists and is not empty" in capsys.readouterr().err
