"""`examples/data/build_corpus.py`: a tiny build from the fixtures in tests/fixtures/corpus/, never the system packages.

The emoji font is replaced by a drawn disc (`disc_glyph`) and scikit-learn's digits by random 8x8 arrays, so every
test runs where fonts-noto-color-emoji, unicode-data, fortunes and scikit-learn are absent; the few checks against the
real files skip with a reason when those are missing.
"""

import json
import random
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest


datasets = pytest.importorskip("datasets")
av = pytest.importorskip("av")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
sys.path.insert(0, str(EXAMPLES))
import build_corpus as corpus_module  # noqa: E402
from build_corpus import (  # noqa: E402
    COLOURS,
    CORPUS_NAME,
    DIGIT_NAMES,
    MOTIONS,
    SPLITS,
    Emoji,
    MissingSourceError,
    build_corpus,
    choose_heldout,
    clean_fortune,
    draw_glyph,
    fortune_pairs,
    motion_path,
    parse_emoji_test,
    read_fortune_databases,
    split_digit_samples,
    split_pair,
    with_article,
)


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "corpus"
EMOJI_TEST = FIXTURES / "emoji-test.txt"
FORTUNES = FIXTURES / "fortunes"
SIZE = 32
TINY = {
    "size": SIZE,
    "renders": 3,
    "frames": 4,
    "videos_per_class": 3,
    "heldout_fraction": 0.1,
    "heldout_motion": "fading out",
    "max_text_chars": 200,
    "min_text_records": 3,
    "seed": 0,
}


def disc_glyph(emoji: Emoji):
    """A test stand-in for the font: a disc in a colour fixed by the name; "fox" has no glyph."""
    from PIL import Image, ImageDraw

    if emoji.name == "fox":
        return None
    hue = zlib.crc32(emoji.name.encode())
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([2, 2, 37, 37], fill=(hue % 256, hue // 256 % 256, hue // 65536 % 256, 255))
    return image


def fake_digits() -> tuple[np.ndarray, np.ndarray]:
    """Four 8x8 samples of each digit, each sample distinct."""
    pixels = np.random.RandomState(0).randint(0, 17, size=(40, 8, 8)).astype(np.uint8)
    return pixels, np.repeat(np.arange(10), 4)


def tiny_build(folder: Path, **changes) -> dict:
    arguments = {
        **TINY,
        "emoji_test": EMOJI_TEST,
        "fortunes_dir": FORTUNES,
        "render_glyph": disc_glyph,
        "digits": fake_digits(),
        **changes,
    }
    return build_corpus(folder, **arguments)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "corpus"
    return folder, tiny_build(folder)


def nearest_colour(rgb) -> str:
    return min(COLOURS, key=lambda name: sum((a - int(b)) ** 2 for a, b in zip(COLOURS[name], rgb)))


def names(dataset, column="label") -> list[str]:
    return [dataset.features[column].int2str(value) for value in dataset[column]]


def test_parse_emoji_test_keeps_fully_qualified_base_emoji():
    emoji = parse_emoji_test(EMOJI_TEST)
    assert [item.name for item in emoji] == [
        "grinning face",
        "grinning face with big eyes",
        "slightly smiling face",
        "smiling face",
        "face blowing a kiss",
        "kissing face",
        "face in clouds",
        "waving hand",
        "raised hand",
        "person",
        "man",
        "person: blond hair",
        "woman",
        "dog face",
        "dog",
        "cat",
        "fox",
        "rose",
        "sunflower",
        "twelve o'clock",
        "keycap: #",
        "flag: germany",
        "flag: france",
    ]
    assert emoji[0] == Emoji("\U0001f600", "grinning face", "smileys & emotion", "face smiling")
    assert emoji[3].characters == "\u263a\ufe0f"  # the fully-qualified form, not the unqualified "263A"
    assert emoji[6].characters == "\U0001f636\u200d\U0001f32b\ufe0f"
    assert [(item.group, item.subgroup) for item in emoji if item.name in ("dog face", "flag: germany")] == [
        ("animals & nature", "animal mammal"),
        ("flags", "country flag"),
    ]
    assert not {"skin", "hair"} & {
        word for item in emoji if item.name != "person: blond hair" for word in item.name.split()
    }
    assert "component" not in {item.group for item in emoji}


def test_parse_emoji_test_rejects_a_malformed_line(tmp_path):
    path = tmp_path / "emoji-test.txt"
    path.write_text("1F600 ; fully-qualified # grinning face without a header\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        parse_emoji_test(path)


@pytest.mark.skipif(not Path(corpus_module.EMOJI_TEST).is_file(), reason="unicode-data (emoji-test.txt) not installed")
def test_parse_the_real_emoji_test():
    emoji = parse_emoji_test(corpus_module.EMOJI_TEST)
    assert len(emoji) > 1500 and len({item.group for item in emoji}) == 9
    assert {"dog face", "red apple", "flag: germany"} <= {item.name for item in emoji}
    assert not [item.name for item in emoji if "skin tone" in item.name or item.name.endswith(" red hair")]


@pytest.mark.skipif(not Path(corpus_module.EMOJI_FONT).is_file(), reason="fonts-noto-color-emoji not installed")
def test_noto_renderer_draws_one_colour_glyph():
    renderer = corpus_module.NotoGlyphRenderer(corpus_module.EMOJI_FONT)
    glyph = renderer(Emoji("\U0001f436", "dog face", "animals & nature", "animal mammal"))
    assert glyph.mode == "RGBA" and min(glyph.size) > 80
    colours = np.asarray(glyph)[..., :3][np.asarray(glyph)[..., 3] > 0]
    assert colours.std(axis=0).max() > 20  # in colour, not a one-colour mask
    assert renderer(Emoji("\U0001f436\U0001f436", "two dogs", "g", "s")) is None  # two glyphs, not one


def test_with_article():
    assert with_article("dog face") == "a dog face"
    assert with_article("eight o'clock") == "an eight o'clock"
    assert with_article("one o'clock") == "a one o'clock"
    assert with_article("sparkles") == "sparkles"
    assert with_article("face with crossed-out eyes") == "a face with crossed-out eyes"
    assert with_article("people holding hands") == "people holding hands"
    assert with_article("bus") == "a bus"


def test_choose_heldout_takes_a_share_of_every_group():
    emoji = [
        Emoji(str(i), f"{group} {i}", group, "s")
        for group, count in (("a", 40), ("b", 9), ("c", 1))
        for i in range(count)
    ]
    heldout = choose_heldout(emoji, 0.1, random.Random(3))
    by_group = {group: sum(name.startswith(group + " ") for name in heldout) for group in "abc"}
    assert by_group == {"a": 4, "b": 1, "c": 1}
    assert heldout == [item.name for item in emoji if item.name in heldout]  # file order
    assert heldout == choose_heldout(emoji, 0.1, random.Random(3))


def test_files_counts_and_features(built):
    folder, corpus = built
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "corpus.json",
        "digits",
        "emoji",
        "emoji_heldout",
        "text",
        "videos",
        "videos_heldout",
    ]
    assert not list(folder.parent.glob(".corpus.building-*"))
    card = json.loads((folder / "corpus.json").read_text())
    assert card["name"] == CORPUS_NAME and card["parameters"]["renders"] == 3
    assert card["skipped_emoji"] == ["fox"]
    assert card["counts"] == {
        "emoji": {"train": 16, "validation": 16, "test": 16},  # 22 drawn, 6 held out; 1/1/1 renders each
        "emoji_heldout": {"train": 6, "validation": 6, "test": 6},
        "digits": {"train": 20, "validation": 10, "test": 10},  # 4 samples a digit -> 2/1/1
        "videos": {"train": 7, "validation": 7, "test": 7},  # 3 clips per motion -> 1/1/1
        "videos_heldout": {"train": 1, "validation": 1, "test": 1},
        "text": {"train": 6, "validation": 2, "test": 2},  # 5 usable records in each of 2 databases -> 3/1/1
    }
    for name, dataset in corpus.items():
        loaded = datasets.load_from_disk(str(folder / name))
        assert list(loaded) == list(SPLITS)
        for split in SPLITS:
            assert loaded[split].features == dataset[split].features
            assert loaded[split].num_rows == card["counts"][name][split]
    emoji = corpus["emoji"]["train"].features
    assert list(emoji) == ["image", "label", "group", "subgroup", "caption", "question", "answer"]
    assert isinstance(emoji["image"], datasets.Image)
    assert emoji["group"].names == [
        "smileys & emotion",
        "people & body",
        "animals & nature",
        "travel & places",
        "symbols",
        "flags",
    ]
    assert "animal mammal" in emoji["subgroup"].names and "face smiling" in emoji["subgroup"].names
    assert list(corpus["emoji_heldout"]["test"].features) == list(emoji)
    assert list(corpus["digits"]["train"].features) == ["image", "label", "caption", "question", "answer"]
    assert corpus["digits"]["train"].features["label"].names == list(DIGIT_NAMES)
    assert list(corpus["videos"]["train"].features) == ["video", "label", "caption", "name", "question", "answer"]
    assert list(corpus["text"]["train"].features) == ["text", "text_pair", "label"]
    assert corpus["text"]["train"].features["label"].names == ["computers", "science"]  # "tiny" has too few
    readme = (folder / "README.md").read_text()
    for needed in (
        "SIL Open Font License 1.1",
        "Unicode terms of use",
        "BSD-3-Clause",
        "fortunes-min",
        '"fading out"',
        "--renders 3",
        *card["heldout_emoji"],
    ):
        assert needed in readme


def test_heldout_emoji_never_in_pretraining(built):
    folder, corpus = built
    heldout = json.loads((folder / "corpus.json").read_text())["heldout_emoji"]
    assert len(heldout) == 6  # one per group: 10% of at most 7 names rounds to 1
    assert corpus["emoji_heldout"]["test"].features["label"].names == heldout
    pretraining = corpus["emoji"]["train"].features["label"].names
    assert not set(heldout) & set(pretraining) and "fox" not in pretraining + heldout
    assert {"twelve o'clock", "keycap: #"} <= set(heldout)  # alone in their groups, held out all the same
    for split in SPLITS:
        assert not set(heldout) & {*corpus["videos"][split]["name"], *corpus["videos_heldout"][split]["name"]}
        assert sorted(names(corpus["emoji_heldout"][split])) == sorted(heldout)


def test_emoji_renders_split_and_qa_match_the_drawing(built):
    _, corpus = built
    pretraining = corpus["emoji"]["train"].features["label"].names
    for split in SPLITS:
        dataset = corpus["emoji"][split]
        assert sorted(names(dataset)) == sorted(pretraining)  # every emoji once per split (3 renders -> 1/1/1)
        kinds = {"name": 0, "group": 0, "background": 0}
        for row in dataset:
            image = np.asarray(row["image"])
            assert image.shape == (SIZE, SIZE, 3)
            name = dataset.features["label"].int2str(row["label"])
            background = nearest_colour(image[0, 0])  # a disc never reaches the corner
            if "colour" in row["question"]:
                assert row["answer"] == background
                kinds["background"] += 1
            elif "group" in row["question"]:
                assert row["answer"] == dataset.features["group"].int2str(row["group"])
                kinds["group"] += 1
            else:
                assert row["answer"] == name
                kinds["name"] += 1
            assert name in row["caption"]
            if "background" in row["caption"]:
                assert f"on a {background} background" in row["caption"]
            assert (image != image[0, 0]).any()  # the glyph is drawn
        assert min(kinds.values()) >= 5  # the kinds take turns
    bytes_per_split = [{row["image"].tobytes() for row in corpus["emoji"][split]} for split in SPLITS]
    assert not (bytes_per_split[0] & bytes_per_split[1] or bytes_per_split[1] & bytes_per_split[2])


def test_digit_samples_split_per_digit_and_never_shared():
    targets = np.repeat(np.arange(10), [20, 7, 3, 4, 5, 6, 7, 8, 9, 10])
    splits = split_digit_samples(targets, random.Random(0))
    assert sorted(sum(splits.values(), [])) == list(range(len(targets)))  # each sample in exactly one split
    assert [int((targets[splits[split]] == 0).sum()) for split in SPLITS] == [14, 3, 3]
    assert [int((targets[splits[split]] == 2).sum()) for split in SPLITS] == [1, 1, 1]
    assert splits == split_digit_samples(targets, random.Random(0))
    assert splits != split_digit_samples(targets, random.Random(1))
    # More train drawings list each train sample that many times and change neither the cut nor the other splits.
    repeated = split_digit_samples(targets, random.Random(0), train_renders=3)
    assert sorted(repeated["train"]) == sorted(splits["train"] * 3)
    assert all(repeated[split] == splits[split] for split in ("validation", "test"))


def test_digit_renders_draw_train_samples_again(tmp_path):
    corpus = tiny_build(tmp_path / "corpus", digit_renders=3)
    digits = corpus["digits"]
    assert [len(digits[split]) for split in SPLITS] == [60, 10, 10]  # 4 samples a digit -> 2x3 / 1 / 1
    assert sorted(digits["train"]["label"]) == sorted(list(range(10)) * 6)
    drawings = {np.asarray(image).tobytes() for image in digits["train"]["image"]}
    assert len(drawings) == 60  # every drawing of a sample differs (ink, paper, size, place, turn)
    card = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert card["parameters"]["digit_renders"] == 3 and card["counts"]["digits"]["train"] == 60


def test_digits_rows(built):
    _, corpus = built
    for split in SPLITS:
        dataset = corpus["digits"][split]
        for row in dataset:
            digit = DIGIT_NAMES[row["label"]]
            assert row["answer"] == digit and digit in row["caption"]
            assert row["question"] in corpus_module.DIGIT_QUESTIONS
            image = np.asarray(row["image"])
            colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
            if " on " in row["caption"]:  # the most common colour is the named background
                background = row["caption"].split(" on ")[-1].split()[-2 if "background" in row["caption"] else -1]
                assert background == nearest_colour(colours[counts.argmax()])
                assert background in corpus_module.PAPER_COLOURS  # dark ink on light paper
                assert any(ink in row["caption"].split() for ink in corpus_module.INK_COLOURS)
        assert sorted(dataset["label"]) == sorted(list(range(10)) * (2 if split == "train" else 1))


def test_motion_paths_move_the_right_way_and_stay_inside():
    rng = random.Random(0)
    for motion in MOTIONS:
        for _ in range(20):
            path = motion_path(motion, 64, 8, rng)
            first, last = path[0], path[-1]
            for place in path:
                half = corpus_module._turned_extent(place["side"], place["angle"]) / 2
                assert half - 1e-6 <= place["x"] <= 64 - half + 1e-6 and half - 1e-6 <= place["y"] <= 64 - half + 1e-6
            change = {key: last[key] - first[key] for key in first}
            expected = {
                "moving left": change["x"] < -0.3 * 64,
                "moving right": change["x"] > 0.3 * 64,
                "moving up": change["y"] < -0.3 * 64,
                "moving down": change["y"] > 0.3 * 64,
                "growing": last["side"] > 2.5 * first["side"],
                "shrinking": first["side"] > 2.5 * last["side"],
                "turning": abs(change["angle"]) >= 120,
                "fading out": last["opacity"] <= 0.1,
            }
            assert expected[motion], (motion, change)
            moved = {key for key, value in change.items() if abs(value) > 1e-9}
            assert len(moved) == 1


def test_heldout_motion_and_clips(built):
    folder, corpus = built
    pretraining = [motion for motion in MOTIONS if motion != "fading out"]
    for split in SPLITS:
        videos, heldout = corpus["videos"][split], corpus["videos_heldout"][split]
        assert videos.features["label"].names == pretraining
        assert sorted(names(videos)) == sorted(pretraining)
        assert heldout.features["label"].names == [*pretraining, "fading out"]
        assert names(heldout) == ["fading out"]
        for dataset, clip_folder in ((videos, "videos"), (heldout, "videos_heldout")):
            for row in dataset:
                motion = dataset.features["label"].int2str(row["label"])
                path = Path(row["video"])
                assert path.is_absolute() and path.parent == folder / clip_folder / "clips" and path.is_file()
                assert row["caption"].endswith(motion) or f"{motion} on a" in row["caption"]
                assert row["name"] in row["caption"]
                assert row["answer"] in (motion, row["name"])
    row = next(row for row in corpus["videos"]["train"] if row["label"] == 0)  # moving left
    with av.open(row["video"]) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (SIZE, SIZE, 3)
    centres = []
    for frame in frames:
        mask = np.abs(frame.astype(int) - frame[0, 0]).sum(-1) > 60
        centres.append(np.nonzero(mask)[1].mean())
    assert all(b < a for a, b in zip(centres, centres[1:]))


def test_draw_glyph_places_and_fades():
    glyph = disc_glyph(Emoji("x", "dog", "g", "s"))
    image = np.asarray(draw_glyph(glyph, 32, (0, 0, 0), side=16, x=8, y=24)).astype(int)
    ys, xs = np.nonzero(image.sum(-1) > 0)
    assert abs(xs.mean() + 0.5 - 8) < 1 and abs(ys.mean() + 0.5 - 24) < 1 and 8 < np.ptp(xs) + 1 <= 16
    faded = np.asarray(draw_glyph(glyph, 32, (0, 0, 0), side=16, x=8, y=24, opacity=0.25)).astype(int)
    assert abs(faded.sum() / image.sum() - 0.25) < 0.03


def test_fortunes_reading_cleaning_and_pairs():
    databases = read_fortune_databases(FORTUNES)
    assert sorted(databases) == ["computers", "science", "tiny"]  # not science.dat, not off/
    assert len(databases["science"]) == 9
    assert clean_fortune("The _\x08m_\x08o_\x08o_\x08n is a ____\x08\x08\x08\x08rock.") == "The moon is a rock."
    assert (
        clean_fortune("Gravity is a habit.\n\t\t-- Someone,\n\t\t   on a quiet afternoon\n") == "Gravity is a habit."
    )
    unindented_dashes = "A critic hates\n-- he hates everyone.\n\t\t-- An author"
    assert clean_fortune(unindented_dashes) == "A critic hates -- he hates everyone."
    two = clean_fortune(databases["computers"][2])
    assert two == "Only great masters of patience can debug on a Friday. Most engineers are great masters of patience."
    assert split_pair("Dr. Rivers counted the stars twice. The second count was larger, so she started a third.") == (
        "Dr. Rivers counted the stars twice.",
        "The second count was larger, so she started a third.",
    )
    assert split_pair("Every experiment teaches something, even the one that explodes.") == (
        "Every experiment teaches something,",
        "even the one that explodes.",
    )
    assert split_pair("Short.") is None and split_pair("Too short. To split.") is None
    pairs = fortune_pairs(FORTUNES, max_chars=200, min_records=3)
    assert sorted(pairs) == ["computers", "science"] and [len(pairs[name]) for name in sorted(pairs)] == [5, 5]
    cleaned = {clean_fortune(record) for records in databases.values() for record in records}
    for first, second in pairs["science"] + pairs["computers"]:
        assert f"{first} {second}" in cleaned  # the two halves of one record
    assert not any("anonymous" in first + second or "|" in first for first, second in pairs["computers"])
    assert fortune_pairs(FORTUNES, max_chars=200, min_records=6) == {}


def test_text_splits_disjoint(built):
    _, corpus = built
    texts = [set(corpus["text"][split]["text"]) for split in SPLITS]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    for split in SPLITS:
        assert sorted(names(corpus["text"][split])) == sorted(
            ["computers", "science"] * (3 if split == "train" else 1)
        )


def test_same_seed_same_data_other_seed_other_data(built, tmp_path):
    folder, corpus = built
    again = tiny_build(tmp_path / "again")
    for name in corpus:
        for split in SPLITS:
            first, second = corpus[name][split], again[name][split]
            for column in first.features:
                if column == "image":
                    assert [i.tobytes() for i in first[column]] == [i.tobytes() for i in second[column]]
                elif column != "video":
                    assert list(first[column]) == list(second[column]), (name, split, column)
    other = tiny_build(tmp_path / "other", seed=1)
    assert list(other["emoji"]["test"]["caption"]) != list(corpus["emoji"]["test"]["caption"])
    assert (
        json.loads((tmp_path / "other" / "corpus.json").read_text())["heldout_emoji"]
        != json.loads((folder / "corpus.json").read_text())["heldout_emoji"]
    )


def test_output_folder_rules(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="overwrite"):
        tiny_build(tmp_path / "busy")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        tiny_build(tmp_path / "busy", overwrite=True)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    tiny_build(tmp_path / "mine", videos_per_class=1, renders=3)
    tiny_build(tmp_path / "mine", overwrite=True)
    assert json.loads((tmp_path / "mine" / "corpus.json").read_text())["parameters"]["videos_per_class"] == 3
    assert not list(tmp_path.glob(".*.building-*"))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"size": 33}, "even"),
        ({"renders": 2}, "renders"),
        ({"digit_renders": 0}, "digit_renders"),
        ({"heldout_motion": "jumping"}, "heldout_motion"),
        ({"heldout_fraction": 0.9}, "heldout_fraction"),
        ({"min_text_records": 50}, "min_text_records"),
        ({"digits": (np.zeros((3, 4, 4)), np.zeros(3))}, "digits"),
    ],
)
def test_bad_arguments(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_build(tmp_path / "corpus", **changes)
    assert not (tmp_path / "corpus").exists()


def test_missing_sources_are_named_with_their_packages(tmp_path, monkeypatch):
    with pytest.raises(MissingSourceError) as error:
        build_corpus(
            tmp_path / "c",
            emoji_font=tmp_path / "no.ttf",
            emoji_test=tmp_path / "no.txt",
            fortunes_dir=tmp_path / "none",
            digits=fake_digits(),
        )
    message = str(error.value)
    for needed in (
        "no.ttf",
        "fonts-noto-color-emoji",
        "no.txt",
        "unicode-data",
        "fortunes-min",
        "--fortunes-dir",
        "apt-get install fonts-noto-color-emoji unicode-data fortunes-min",
    ):
        assert needed in message
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now raises ImportError
    with pytest.raises(MissingSourceError, match="pip install scikit-learn"):
        tiny_build(tmp_path / "c", digits=None)
    assert not (tmp_path / "c").exists()


def test_cli_fails_clearly_without_the_packages(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        ["build_corpus.py", "--output", str(tmp_path / "c"), "--emoji-test", str(tmp_path / "missing.txt")],
    )
    with pytest.raises(SystemExit) as exit_info:
        corpus_module.main()
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "missing.txt" in stderr and "unicode-data" in stderr
    assert not (tmp_path / "c").exists()
