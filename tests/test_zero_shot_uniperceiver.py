"""CLIP's semantics over the same weights: `AutoModelForZeroShotImageClassification`, CLIP's processor call and
transformers' standard pipelines (`zero-shot-image-classification`, `image-feature-extraction`,
`feature-extraction`), by task name and through `trust_remote_code`, against `zero-shot-perception`."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_without_package
from PIL import Image
from transformers import AutoModelForZeroShotImageClassification, AutoProcessor, pipeline

from uniperceiver_hf import (
    UniPerceiverForZeroShotImageClassification,
    UniPerceiverModel,
    UniPerceiverProcessor,
)


DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "uniperceiver-tiny-emoji"
LABELS = ["dog face", "red apple", "automobile", "cat face"]


def images() -> list[Image.Image]:
    """Two small pictures: a red disc on white and a striped field."""
    disc = np.full((80, 90, 3), 255, np.uint8)
    yy, xx = np.mgrid[:80, :90]
    disc[(yy - 40) ** 2 + (xx - 45) ** 2 < 600] = (220, 20, 30)
    stripes = np.zeros((70, 70, 3), np.uint8)
    stripes[:, ::8] = (30, 160, 40)
    return [Image.fromarray(disc), Image.fromarray(stripes)]


@pytest.fixture(scope="module")
def default_model():
    return UniPerceiverModel.from_pretrained(DEFAULT_MODEL).eval()


@pytest.fixture(scope="module")
def perception(default_model):
    return pipeline("zero-shot-perception", model=default_model)


def test_the_clip_snippet_runs_unchanged_and_scores_like_zero_shot_perception(perception):
    processor = AutoProcessor.from_pretrained(DEFAULT_MODEL)
    model = AutoModelForZeroShotImageClassification.from_pretrained(DEFAULT_MODEL).eval()
    assert isinstance(model, UniPerceiverForZeroShotImageClassification)
    inputs = processor(text=LABELS, images=images(), return_tensors="pt", padding=True)
    with torch.no_grad():
        outputs = model(**inputs)
    probs = outputs.logits_per_image.softmax(dim=1)
    assert probs.shape == (2, len(LABELS))
    torch.testing.assert_close(outputs.logits_per_text, outputs.logits_per_image.T)
    for image, row in zip(images(), probs):
        expected = perception(image, candidate_labels=LABELS)
        by_label = dict(zip(LABELS, row.tolist()))
        assert [r["label"] for r in expected] == sorted(LABELS, key=lambda label: -by_label[label])
        for result in expected:
            assert by_label[result["label"]] == pytest.approx(result["score"], abs=1e-5)
    # The embeddings are the package's features of each side.
    text_features = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    torch.testing.assert_close(outputs.text_embeds, text_features)
    torch.testing.assert_close(outputs.image_embeds, model.get_image_features(inputs["pixel_values"]).pooler_output)


def test_contrastive_loss_and_tuple_output(tiny_config):
    torch.manual_seed(0)
    model = UniPerceiverForZeroShotImageClassification(tiny_config).eval()
    ids = torch.randint(1, 100, (3, 5))
    pixels = torch.randn(3, 3, tiny_config.image_size, tiny_config.image_size)
    output = model(input_ids=ids, pixel_values=pixels, return_loss=True)
    diagonal = torch.arange(3)
    expected = (
        torch.nn.functional.cross_entropy(output.logits_per_image, diagonal)
        + torch.nn.functional.cross_entropy(output.logits_per_text, diagonal)
    ) / 2
    torch.testing.assert_close(output.loss, expected)
    as_tuple = model(input_ids=ids, pixel_values=pixels, return_dict=False)
    torch.testing.assert_close(as_tuple[0], output.logits_per_image)
    with pytest.raises(ValueError, match="pairs image i with text i"):
        model(input_ids=ids[:2], pixel_values=pixels, return_loss=True)
    with pytest.raises(ValueError, match="`input_ids` .* and `pixel_values` .* are both needed"):
        model(pixel_values=pixels)


def test_the_base_model_does_not_read_clip_inputs_as_fused_sequences(tiny_model, tiny_config):
    """`UniPerceiverModel(input_ids, pixel_values)` without candidates names the CLIP class instead of silently
    fusing; one side alone returns its features (what the feature-extraction pipelines call)."""
    ids = torch.randint(1, 100, (2, 5))
    pixels = torch.randn(2, 3, tiny_config.image_size, tiny_config.image_size)
    with pytest.raises(ValueError, match="AutoModelForZeroShotImageClassification"):
        tiny_model(input_ids=ids, pixel_values=pixels)
    with torch.no_grad():
        image_side = tiny_model(pixel_values=pixels)
        text_side = tiny_model(input_ids=ids)
    assert image_side.logits is None
    torch.testing.assert_close(image_side.input_embeds, tiny_model.get_image_features(pixels).pooler_output)
    torch.testing.assert_close(text_side.input_embeds, tiny_model.get_features(ids))


def standard_pipelines(model: str, **kwargs) -> dict:
    """The three standard pipelines' results on `images()` and `LABELS` (also run without the package)."""
    zero_shot = pipeline("zero-shot-image-classification", model=model, **kwargs)
    image_features = pipeline("image-feature-extraction", model=model, **kwargs)
    text_features = pipeline("feature-extraction", model=model, **kwargs)
    return {
        "zero_shot": [zero_shot(image, candidate_labels=LABELS, hypothesis_template="{}") for image in images()],
        "image_features": [image_features(image)[0] for image in images()],
        "text_features": [text_features(label)[0] for label in LABELS],
    }


REMOTE = """
import sys, json
sys.path.insert(0, sys.argv[1])
import zero_shot_pipelines
print(json.dumps(zero_shot_pipelines.standard_pipelines(sys.argv[2], trust_remote_code=True)))
"""


def check_against_the_package(results: dict, model: UniPerceiverModel, perception) -> None:
    processor = UniPerceiverProcessor.from_pretrained(DEFAULT_MODEL)
    for image, result in zip(images(), results["zero_shot"]):
        expected = perception(image, candidate_labels=LABELS)
        assert [r["label"] for r in result] == [r["label"] for r in expected]
        np.testing.assert_allclose([r["score"] for r in result], [r["score"] for r in expected], atol=1e-5)
    pixels = processor(images=images(), return_tensors="pt")["pixel_values"]
    texts = processor(text=LABELS, return_tensors="pt")
    with torch.no_grad():
        image_features = model.get_image_features(pixels).pooler_output
        text_features = model.get_text_features(texts["input_ids"], texts["attention_mask"]).pooler_output
    np.testing.assert_allclose(np.array(results["image_features"]), image_features.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.array(results["text_features"]), text_features.numpy(), atol=1e-5)


def test_standard_pipelines_by_task_name_and_through_remote_code(default_model, perception, tmp_path):
    check_against_the_package(standard_pipelines(str(DEFAULT_MODEL)), default_model, perception)

    # A saved folder (what the converter and the Hub export write) in a process without the package.
    folder = tmp_path / "saved"
    default_model.save_pretrained(folder)
    UniPerceiverProcessor.from_pretrained(DEFAULT_MODEL).save_pretrained(folder)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForZeroShotImageClassification"] == (
        "zero_shot_uniperceiver.UniPerceiverForZeroShotImageClassification"
    )
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    source = Path(__file__).read_text()
    (helpers / "zero_shot_pipelines.py").write_text(
        "import numpy as np\nfrom PIL import Image\nfrom transformers import pipeline\n"
        + f"LABELS = {LABELS!r}\n"
        + source[source.index("def images()") : source.index("@pytest.fixture")]
        + source[source.index("def standard_pipelines") : source.index("REMOTE = ")]
    )
    blocked = ("uniperceiver_hf", "test_zero_shot_uniperceiver")
    stdout = run_without_package(REMOTE, helpers, folder, tmp_path=tmp_path, blocked=blocked)
    check_against_the_package(json.loads(stdout.strip().splitlines()[-1]), default_model, perception)
