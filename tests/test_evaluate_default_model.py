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


def test_train_split_rows_classify_a_sample_of_each_train_split(training_corpus, tmp_path):
    import datasets

    from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor

    corpus = tmp_path / "corpus"
    images = datasets.load_from_disk(str(training_corpus / "images"))
    videos = datasets.load_from_disk(str(training_corpus / "videos"))
    for name, data in (("emoji", images), ("digits", images), ("videos", videos)):
        datasets.DatasetDict(train=data, test=data.select(range(2))).save_to_disk(str(corpus / name))
    model = UniPerceiverModel.from_pretrained(MODEL).eval()
    processor = UniPerceiverProcessor.from_pretrained(MODEL)

    rows = evaluation.train_split_rows(model, processor, corpus, limit=None)

    assert [row["task"] for row in rows] == [
        "emoji classification, train split (seen in pre-training)",
        "digit classification, train split (seen in pre-training)",
        "motion classification, train split (seen in pre-training)",
    ]
    assert all(row["section"] == "fit" and row["n"] == 2 and 0.0 <= row["value"] <= 1.0 for row in rows)
    assert [row["chance"] for row in rows] == [1 / 3, 1 / 3, 1 / 2]
    # The sample is evenly spaced over the train split: rows 0 and 6 of 12 images, rows 0 and 2 of 4 clips.
    sample = images.select([0, 6])
    expected = evaluation.classification_row(model, processor, sample, "digits", "fit")["value"]
    assert rows[1]["value"] == expected


def test_the_novel_task_rows_include_lora_beside_prompt_tuning_and_fine_tuning(tmp_path):
    """The novel-task code path, small: 3 drawn 'digits', 2 steps per tuning run, on the default model."""
    import datasets
    import numpy as np
    from PIL import Image

    names = ["zero", "one", "two"]
    colours = [(200, 30, 30), (30, 180, 30), (30, 30, 200)]

    def split(per_class: int) -> datasets.Dataset:
        images = [
            Image.fromarray(np.full((24, 24, 3), colours[c], np.uint8)) for c in range(3) for _ in range(per_class)
        ]
        labels = [c for c in range(3) for _ in range(per_class)]
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
        return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)

    splits = {"train": split(4), "validation": split(1), "test": split(1)}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "corpus" / "digits"))
    rows, logs = evaluation.novel_task(
        MODEL, tmp_path / "corpus", tmp_path / "out", steps=2, limit=3, draws=2, learning_rates=(1e-3, 3e-3)
    )
    settings = [row["setting"] for row in rows]
    assert settings == ["zero-shot"] + [
        f"{setting}, {fraction} of the data"
        for fraction in ("1%", "10%")
        for setting in ("prompt tuning", "LoRA", "fine-tuning")
    ]
    assert all(row["section"] == "novel task" and 0.0 <= row["value"] <= 1.0 for row in rows)
    # Prompt tuning says how it ran: one deep prompt per layer beside the default model's 17-token images.
    assert rows[1]["details"].startswith("1 deep prompt per layer") and "details" not in rows[2]
    for row in rows[1:]:  # each tuned setting: its rate chosen on validation, its value the mean of its draws
        by_rate = row["validation_by_learning_rate"]
        assert set(by_rate) == {"0.001", "0.003"} and row["validation"] == max(by_rate.values())
        assert by_rate[f"{row['learning_rate']:g}"] == row["validation"] and len(row["draws"]) == 2
        assert row["value"] == pytest.approx(sum(row["draws"]) / 2)
    assert set(logs) == {f"{s}, {f}" for s in ("prompt tuning", "LoRA", "fine-tuning") for f in ("1%", "10%")}
    assert all(any("train_loss" in entry for entry in history) for history in logs.values())


def test_prompt_tuning_keeps_the_papers_share_of_prompts_among_an_images_keys():
    from uniperceiver_hf import UniPerceiverConfig

    # 10 prompts beside a 224-px image's 197 tokens at base size; one beside the default model's 17 (64 px, 16-px
    # patches); 29 beside 577 (384 px).
    assert evaluation.paper_prompt_share(UniPerceiverConfig.from_preset("base")) == 10
    assert evaluation.paper_prompt_share(UniPerceiverConfig.from_pretrained(MODEL)) == 1
    assert evaluation.paper_prompt_share(UniPerceiverConfig.from_preset("base", image_size=384)) == 29


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--draws", "0"], "--draws"),
        (["--learning-rates", "1e-3,-1"], "--learning-rates"),
        (["--training-curves", "no/such/picture.png"], "--training-curves"),
        (["--training-log", "run", "--training-curves", "picture.png"], "not allowed with"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluation.main(
            ["--model", str(MODEL), "--corpus", str(tmp_path), "--output", str(tmp_path / "out"), *arguments]
        )
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_the_pictures_plot_the_pre_training_log_and_the_tuning(tmp_path):
    """The training picture has the pre-training run's three panels; the tuning picture its losses and the validation
    accuracy by learning rate of each tuned row."""
    pytest.importorskip("matplotlib")
    from PIL import Image

    log = [
        {"step": step, "loss": 2.0 / step, "loss/digits": 2.0 / step, "monitor/digits/input_cosine": 1.0 / step}
        for step in (1, 2, 3)
    ]
    evaluation.plot_training_curves(log, tmp_path / "training.png")
    rows = [
        dict(setting="zero-shot", validation=0.4),
        dict(setting="prompt tuning, 1% of the data", validation_by_learning_rate={"0.0003": 0.5, "0.001": 0.45}),
    ]
    evaluation.plot_tuning_curves({"prompt tuning, 1%": log}, rows, tmp_path / "tuning.png")
    with Image.open(tmp_path / "training.png") as training, Image.open(tmp_path / "tuning.png") as tuning:
        # 5 inches per panel at 110 dpi: three panels, then two.
        assert training.width == pytest.approx(3 * 550, abs=10) and tuning.width == pytest.approx(2 * 550, abs=10)


def test_vqa_rows_split_the_questions_by_the_fact_they_ask_for():
    """One row over every question, then one per kind (name, group, background colour), told apart by the answer;
    each kind's row scores only its own questions and the total is their weighted mean."""
    import datasets
    import numpy as np
    from PIL import Image

    from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor

    names, groups = ["red apple", "dog face", "rocket"], ["food & drink", "animals & nature", "travel & places"]
    facts = [  # (emoji, its group, question, answer): 3 name, 2 group and 1 background-colour questions
        (0, 0, "what is this?", "red apple"),
        (1, 1, "what is this?", "dog face"),
        (2, 2, "which emoji is this?", "rocket"),
        (0, 0, "which group is this in?", "food & drink"),
        (1, 1, "which group is this in?", "animals & nature"),
        (2, 2, "what colour is the background?", "blue"),
    ]
    features = datasets.Features(
        image=datasets.Image(),
        label=datasets.ClassLabel(names=names),
        group=datasets.ClassLabel(names=groups),
        question=datasets.Value("string"),
        answer=datasets.Value("string"),
    )
    rng = np.random.default_rng(0)
    data = datasets.Dataset.from_dict(
        dict(
            image=[Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in facts],
            label=[fact[0] for fact in facts],
            group=[fact[1] for fact in facts],
            question=[fact[2] for fact in facts],
            answer=[fact[3] for fact in facts],
        ),
        features=features,
    )
    assert [evaluation.vqa_kind(row, names, groups) for row in data] == ["name"] * 3 + ["group"] * 2 + [
        "background colour"
    ]
    model = UniPerceiverModel.from_pretrained(MODEL).eval()
    processor = UniPerceiverProcessor.from_pretrained(MODEL)

    answers = sorted({fact[3] for fact in facts})
    rows = evaluation.vqa_rows(model, processor, data, answers)

    assert [(row["task"], row["n"]) for row in rows] == [
        ("emoji VQA (answer list)", 6),
        ("emoji VQA, questions about the name", 3),
        ("emoji VQA, questions about the group", 2),
        ("emoji VQA, questions about the background colour", 1),
    ]
    assert [row["chance"] for row in rows] == [1 / 6, 1 / 3, 1 / 2, 1.0]
    assert all(row["section"] == "zero-shot" and row["chance_kind"] == "majority answer" for row in rows)
    assert rows[0]["value"] == pytest.approx(sum(row["value"] * row["n"] for row in rows[1:]) / 6)
    # The group questions alone: the same answers as in the group row, and no rows for the kinds that are absent.
    alone = evaluation.vqa_rows(model, processor, data.select([3, 4]), answers)
    assert [row["task"] for row in alone] == ["emoji VQA (answer list)", "emoji VQA, questions about the group"]
    assert alone[0]["value"] == alone[1]["value"] == rows[2]["value"]
    json.dumps(rows)
