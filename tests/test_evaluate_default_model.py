"""`examples/evaluate_default_model.py`: the re-rendered emoji row (30 well-known emoji drawn apart from the corpus
builder, classified through the pipeline against their names)."""

import json
import sys
from pathlib import Path

import pytest


pytest.importorskip("datasets")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import evaluate_default_model as evaluation  # noqa: E402


MODEL = ROOT / "models" / "uniperceiver-tiny-emoji"
FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
needs_sources = pytest.mark.skipif(
    not (Path(FONT).is_file() and Path(EMOJI_TEST).is_file()),
    reason=f"needs {FONT} (fonts-noto-color-emoji) and {EMOJI_TEST} (unicode-data)",
)


def test_the_sources_are_the_corpus_builders():
    builder = evaluation._corpus_builder()
    assert (builder.EMOJI_FONT, builder.EMOJI_TEST) == (FONT, EMOJI_TEST)
    assert len(evaluation.WELL_KNOWN_EMOJI) == len(set(evaluation.WELL_KNOWN_EMOJI)) == 30


@needs_sources
def test_the_30_names_exist_and_render_to_distinct_pictures():
    emoji = evaluation.well_known_emoji(EMOJI_TEST)
    assert list(emoji) == list(evaluation.WELL_KNOWN_EMOJI)
    images = evaluation.rerender_emoji(emoji, FONT)
    size = evaluation.RERENDER_SIZE
    assert len(images) == 30 and all(image.mode == "RGB" and image.size == (size, size) for image in images)
    assert len({image.tobytes() for image in images}) == 30
    for index, image in enumerate(images):  # plain background in the corner, a glyph in the middle
        background = list(evaluation.RERENDER_BACKGROUNDS.values())[index % len(evaluation.RERENDER_BACKGROUNDS)]
        assert image.getpixel((0, 0)) == background
        assert len(image.crop((size // 4, size // 4, 3 * size // 4, 3 * size // 4)).getcolors(size * size)) > 20
    assert [image.tobytes() for image in evaluation.rerender_emoji(emoji, FONT)] == [i.tobytes() for i in images]


def test_an_unknown_name_is_refused(monkeypatch, tmp_path):
    path = tmp_path / "emoji-test.txt"
    path.write_text(
        "# group: Smileys & Emotion\n# subgroup: face-smiling\n1F600 ; fully-qualified # 😀 E1.0 grinning face\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(evaluation, "WELL_KNOWN_EMOJI", ("grinning face", "dog face"))
    with pytest.raises(ValueError, match="dog face"):
        evaluation.well_known_emoji(path)


def test_missing_sources_skip_the_row(capsys, tmp_path):
    assert evaluation.rerendered_emoji(MODEL, font_path=str(tmp_path / "none.ttf"), emoji_test=EMOJI_TEST) is None
    assert "Skipping the re-rendered emoji row" in capsys.readouterr().out


@needs_sources
def test_the_row_on_the_default_model():
    row = evaluation.rerendered_emoji(MODEL)
    assert row["section"] == "robustness" and row["metric"] == "accuracy" and row["n"] == 30
    assert row["chance"] == pytest.approx(1 / 30)
    assert row["value"] == pytest.approx((30 - len(row["misses"])) / 30)
    assert set(row["misses"]) <= set(evaluation.WELL_KNOWN_EMOJI)
    assert set(row["misses"].values()) <= set(evaluation.WELL_KNOWN_EMOJI)
    json.dumps(row)
    assert "robustness" in evaluation.markdown([row])


@needs_sources
def test_no_name_is_held_out_in_the_default_corpus():
    """The row measures a change of rendering: its names are pre-training classes (checked where the corpus the
    default model was trained on, data/corpus, is present)."""
    heldout = ROOT / "data" / "corpus" / "emoji_heldout"
    if not heldout.is_dir():
        pytest.skip(f"no corpus at {heldout.parent} (examples/data/build_corpus.py --output data/corpus)")
    from datasets import load_from_disk

    names = set(load_from_disk(str(heldout))["test"].features["label"].names)
    assert not names & set(evaluation.WELL_KNOWN_EMOJI)
