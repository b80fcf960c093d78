"""The shipped default model (`models/uniperceiver-tiny-emoji`) and its card (`MODEL_CARD.md`)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image, ImageDraw
from safetensors import safe_open
from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline

from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.tools.hub import card_pictures


ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "uniperceiver-tiny-emoji"
CARD = ROOT / "MODEL_CARD.md"


def test_the_folder_holds_one_half_precision_weights_file_under_48_mb():
    weights = MODEL / "model.safetensors"
    assert weights.stat().st_size <= 48 * 2**20
    assert sorted(path.name for path in MODEL.iterdir()) == [
        "README.md",
        "config.json",
        "config_sentence_transformers.json",
        "model.safetensors",
        "modules.json",
        "processor_config.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_curves.png",
        "tuning_curves.png",
    ]
    with safe_open(str(weights), "pt") as file:
        assert {file.get_slice(name).get_dtype() for name in file.keys()} == {"F16"}


def test_auto_classes_load_it_by_path_in_float32():
    config = AutoConfig.from_pretrained(MODEL)
    assert config.vocab_size == 49411 and config.image_size == 64
    model = AutoModel.from_pretrained(MODEL)
    assert isinstance(model, UniPerceiverModel) and model.dtype == torch.float32
    processor = AutoProcessor.from_pretrained(MODEL)
    assert isinstance(processor, UniPerceiverProcessor)
    assert processor.image_processor.crop_size["height"] == 64


def test_it_tells_drawn_colours_and_shapes_apart_zero_shot():
    """Emoji names it was pre-trained on, for pictures drawn here (never in its data): the right name ranks first."""
    classify = pipeline("zero-shot-perception", model=str(MODEL))
    labels = ["red circle", "blue square", "green circle", "yellow square"]
    pictures = []
    for shape, colour in (("ellipse", (220, 35, 35)), ("rectangle", (40, 80, 215))):
        image = Image.new("RGB", (128, 128), (240, 240, 240))
        getattr(ImageDraw.Draw(image), shape)((24, 24, 104, 104), fill=colour)
        pictures.append(image)
    results = classify(pictures, candidate_labels=labels)
    assert [result[0]["label"] for result in results] == ["red circle", "blue square"]


def test_the_card_parses_and_carries_the_measured_table():
    card = ModelCard.load(CARD)
    data = card.data
    assert data.library_name == "transformers" and data.license == "apache-2.0"
    assert data.pipeline_tag == "zero-shot-image-classification" and "uni-perceiver" in data.tags
    assert data.datasets and data.metrics and data.model_name == "uniperceiver-tiny-emoji"
    assert len(data.eval_results) >= 15
    lines = [line.split(" | ") for line in card.text.splitlines() if line.startswith("| ") and "---" not in line]
    rows = [row for row in lines if len(row) == 6]  # the results table (the claims table has three columns)
    table = {(row[1], row[2]): row[3] for row in rows[1:]}  # (task, metric) -> result as shown
    for result in data.eval_results:  # every model-index entry is a row of the table (per cent, or a raw score)
        shown = table[(result.task_name, result.metric_type)]
        value = float(shown.rstrip("%")) / (100 if shown.endswith("%") else 1)
        assert value == pytest.approx(result.metric_value, abs=6e-4), (result.task_name, shown)
    assert "python examples/evaluate_default_model.py" in card.text
    # The Hub card travels with the weights and shows its pictures from beside it; the repository's copy links into
    # the model folder, the one place the pictures are kept.
    hub_card = (MODEL / "README.md").read_text()
    assert card_pictures(ModelCard.load(MODEL / "README.md")) == ["training_curves.png", "tuning_curves.png"]
    for picture in ("training_curves.png", "tuning_curves.png"):
        assert (MODEL / picture).is_file() and f"]({MODEL.name}/{picture})" not in hub_card
        hub_card = hub_card.replace(f"]({picture})", f"](models/{MODEL.name}/{picture})")
    assert card.content == hub_card
    assert "| the paper's claim | measured | holds here |" in card.text


def test_the_config_declares_no_code_it_does_not_ship():
    for path in MODEL.glob("*.json"):
        text = path.read_text()
        assert "auto_map" not in text and "custom_pipelines" not in text, path.name
    assert json.loads((MODEL / "config.json").read_text())["dtype"] == "float32"
    assert np.isfinite(AutoModel.from_pretrained(MODEL).head.projection.weight.detach().numpy()).all()


@pytest.mark.parametrize("labels", [[], ["red circle", ""]])
def test_an_empty_label_list_or_label_is_refused(labels):
    classify = pipeline("zero-shot-perception", model=str(MODEL))
    with pytest.raises(ValueError, match="label"):
        classify(Image.new("RGB", (64, 64)), candidate_labels=labels)
