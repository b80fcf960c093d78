"""`examples/evaluate_zero_shot.py` on small local datasets, against the same predictions made directly."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


pytest.importorskip("datasets")
pytest.importorskip("evaluate")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import evaluate_zero_shot  # noqa: E402
from transformers import pipeline  # noqa: E402

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor, save_for_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = UniPerceiverConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64
    )
    folder = tmp_path_factory.mktemp("model")
    save_for_pipeline(UniPerceiverModel(config).eval(), UniPerceiverProcessor(), folder)
    return str(folder)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for index in range(4):
        pixels = np.random.default_rng(index).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        paths.append(str(folder / f"{index}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return str(path)


def run(model_dir, *args):
    return evaluate_zero_shot.main(["--model", model_dir, *args])


def test_image_classification_on_an_image_folder(model_dir, image_files, tmp_path):
    for index, path in enumerate(image_files):
        target = tmp_path / ("cat" if index % 2 else "dog") / f"{index}.png"
        target.parent.mkdir(exist_ok=True)
        Image.open(path).save(target)
    scores = run(model_dir, "--task", "image-classification", "--dataset", str(tmp_path), "--batch-size", "3")
    pipe = pipeline("zero-shot-perception", model=model_dir)
    images = [Image.open(tmp_path / ("cat" if i % 2 else "dog") / f"{i}.png") for i in range(4)]
    predicted = [result[0]["label"] for result in pipe(images, candidate_labels=["cat", "dog"])]
    expected = np.mean([p == ("cat" if i % 2 else "dog") for i, p in enumerate(predicted)])
    assert scores["accuracy"] == pytest.approx(expected)


def test_text_classification_and_vqa(model_dir, image_files, tmp_path):
    sst2 = write_jsonl(
        tmp_path / "sst2.jsonl",
        [{"sentence": "a charming film", "label": 1}, {"sentence": "dull and long", "label": 0}],
    )
    scores = run(model_dir, "--task", "text-classification", "--dataset", sst2, "--glue-task", "sst2")
    assert scores["accuracy"] in (0.0, 0.5, 1.0)

    vqa = write_jsonl(
        tmp_path / "vqa.jsonl",
        [
            {"image": image_files[0], "question": "what color is it?", "answers": ["red"] * 6 + ["blue"] * 4},
            {"image": image_files[1], "question": "how many?", "answers": ["2"] * 10},
        ],
    )
    scores = run(model_dir, "--task", "vqa", "--dataset", vqa)
    pipe = pipeline("zero-shot-perception", model=model_dir)
    answers = ["2", "blue", "red"]
    first = pipe(
        {"image": Image.open(image_files[0]).convert("RGB"), "question": "what color is it?"}, candidate_labels=answers
    )[0]["label"]
    second = pipe(
        {"image": Image.open(image_files[1]).convert("RGB"), "question": "how many?"}, candidate_labels=answers
    )[0]["label"]
    expected = ({"red": 1.0, "blue": 1.0}.get(first, 0.0) + (1.0 if second == "2" else 0.0)) / 2
    assert scores["vqa_accuracy"] == pytest.approx(expected)


def test_retrieval_and_captioning(model_dir, image_files, tmp_path):
    rows = [{"image": path, "captions": [f"picture number {i}", f"noise {i}"]} for i, path in enumerate(image_files)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    recall = run(model_dir, "--task", "retrieval", "--dataset", data)
    assert set(recall) == {"i2t_recall@1", "t2i_recall@1"}  # 4 images: only K = 1 fits
    assert all(0.0 <= value <= 1.0 for value in recall.values())
    captions = run(model_dir, "--task", "captioning", "--dataset", data, "--max-new-tokens", "3", "--num-beams", "1")
    assert set(captions) == {"bleu_4", "cider"} and 0.0 <= captions["bleu_4"] <= 1.0 and captions["cider"] >= 0.0


def test_bad_arguments(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "x.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(ValueError, match="--glue-task"):
        run(model_dir, "--task", "text-classification", "--dataset", data)
    unsupported = tmp_path / "x.xml"
    unsupported.write_text("<a/>")
    with pytest.raises(ValueError, match="--dataset"):
        run(model_dir, "--task", "text-classification", "--dataset", str(unsupported), "--glue-task", "sst2")


def test_class_labels_are_matched_by_name_from_a_saved_folder(model_dir, image_files, tmp_path):
    import datasets

    names = ["dog", "cat"]  # the dataset's order differs from the `--labels` order below
    features = datasets.Features(image=datasets.Image(), label=datasets.ClassLabel(names=names))
    rows = {"image": [Image.open(path) for path in image_files], "label": [0, 1, 1, 0]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    scores = run(
        model_dir,
        "--task",
        "image-classification",
        "--dataset",
        str(tmp_path / "saved"),
        "--labels",
        "cat",
        "dog",
        "bird",
        "--batch-size",
        "3",
    )
    pipe = pipeline("zero-shot-perception", model=model_dir)
    predicted = [
        r[0]["label"] for r in pipe([Image.open(p) for p in image_files], candidate_labels=["cat", "dog", "bird"])
    ]
    expected = np.mean([p == names[label] for p, label in zip(predicted, rows["label"])])
    assert scores["accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="missing: \\['dog'\\]"):
        run(
            model_dir,
            "--task",
            "image-classification",
            "--dataset",
            str(tmp_path / "saved"),
            "--labels",
            "cat",
            "bird",
        )
