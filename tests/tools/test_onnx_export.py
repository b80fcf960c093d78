"""`uniperceiver-hf export onnx`: onnxruntime's features match torch's within 1e-4 (the default model and the converted
official tiny checkpoint, at other batch sizes and lengths than traced), the pipeline gives the same answers on the
exported graphs, the int8 graphs keep the answers, and what the graphs cannot serve is refused with a message."""

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverORTModel, UniPerceiverProcessor
from uniperceiver_hf.tools import cli
from uniperceiver_hf.tools.onnx_export import TOLERANCE, example_inputs, max_difference


ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "uniperceiver-tiny-emoji"
sys.path.insert(0, str(ROOT / "examples"))
from zero_shot_classification import DIGITS, drawn_shapes, handwritten_digits  # noqa: E402  (offline pictures)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return cli.main(
        ["export", "onnx", "--model", str(MODEL), "--output", str(tmp_path_factory.mktemp("onnx")), "--int8"]
    )


@pytest.fixture(scope="module")
def model() -> UniPerceiverModel:
    return UniPerceiverModel.from_pretrained(MODEL).eval()


@pytest.fixture(scope="module")
def pictures() -> dict:
    return {**drawn_shapes(), **handwritten_digits(tuple(range(10)))}


def test_the_folder_holds_three_graphs_their_int8_twins_and_what_loading_needs(exported):
    names = {path.name for path in exported.iterdir()}
    assert {"image.onnx", "text.onnx", "video.onnx", "image.int8.onnx", "text.int8.onnx", "video.int8.onnx"} <= names
    assert {"config.json", "processor_config.json", "tokenizer.json", "onnx.json"} <= names
    manifest = json.loads((exported / "onnx.json").read_text())
    assert max(manifest["max_abs_difference"].values()) <= TOLERANCE
    assert "TorchScript" in manifest["exporter"]


@pytest.mark.parametrize(("batch_size", "length"), [(1, 1), (5, 9), (2, 40)])
def test_onnxruntime_matches_torch_at_any_batch_size_and_length(exported, model, batch_size, length):
    runtime = UniPerceiverORTModel.from_pretrained(exported)
    generator = torch.Generator().manual_seed(batch_size)
    for graph in ("image", "text", "video"):
        inputs = example_inputs(model.config, graph, batch_size, length, generator)
        with torch.no_grad():
            expected = model.get_features(**inputs, is_target=graph == "text")
        assert runtime.get_features(**inputs).shape == expected.shape
        torch.testing.assert_close(runtime.get_features(**inputs), expected, atol=TOLERANCE, rtol=0)


def test_the_converted_official_tiny_checkpoint_exports_within_tolerance(golden_model_dirs, tmp_path):
    output = cli.main(["export", "onnx", "--model", str(golden_model_dirs["plain"]), "--output", str(tmp_path)])
    model = UniPerceiverModel.from_pretrained(golden_model_dirs["plain"]).eval()
    differences = max_difference(model, UniPerceiverORTModel.from_pretrained(output))
    assert set(differences) == {"image", "text", "video"} and max(differences.values()) <= TOLERANCE


@pytest.mark.parametrize("option", ["temporal_difference_embedding", "convolutional_stem"])
def test_the_visual_options_export_within_tolerance(tiny_config, tmp_path, option):
    """The config options that change the visual tokenizer (the frame differences, the convolutional stem)."""
    config = UniPerceiverConfig(**{**tiny_config.to_dict(), option: True})
    torch.manual_seed(0)
    model = UniPerceiverModel(config).eval()
    if option == "temporal_difference_embedding":
        with torch.no_grad():  # a trained projection, not its zero start
            model.embeddings.visual.difference_embedding.weight.normal_(0.0, 0.1)
    model.save_pretrained(tmp_path / "model")
    UniPerceiverProcessor.for_model_config(config).save_pretrained(tmp_path / "model")
    output = cli.main(["export", "onnx", "--model", str(tmp_path / "model"), "--output", str(tmp_path / "onnx")])
    runtime = UniPerceiverORTModel.from_pretrained(output)
    for frames in (1, 3):  # traced with 4 frames; a single frame has no difference to embed
        inputs = example_inputs(config, "video", 2, frames, torch.Generator().manual_seed(frames))
        with torch.no_grad():
            expected = model.get_features(**inputs)
        torch.testing.assert_close(runtime.get_features(**inputs), expected, atol=TOLERANCE, rtol=0)


def test_the_pipeline_gives_the_same_answers_on_the_exported_graphs(exported, pictures):
    on_onnx = pipeline(
        "zero-shot-perception",
        model=UniPerceiverORTModel.from_pretrained(exported),
        processor=UniPerceiverProcessor.from_pretrained(exported),
    )
    on_torch = pipeline("zero-shot-perception", model=str(MODEL))
    images, labels = list(pictures.values()), list(pictures)
    for ours, theirs in zip(on_onnx(images, candidate_labels=labels), on_torch(images, candidate_labels=labels)):
        assert [entry["label"] for entry in ours] == [entry["label"] for entry in theirs]
        assert [entry["score"] for entry in ours] == pytest.approx([entry["score"] for entry in theirs], abs=1e-4)
    query = {"text": "a handwritten digit seven"}
    ours = on_onnx(query, candidate_images=images, candidate_names=labels)
    theirs = on_torch(query, candidate_images=images, candidate_names=labels)
    assert [entry["label"] for entry in ours] == [entry["label"] for entry in theirs]


def test_int8_graphs_keep_the_top_answer(exported):
    """The ten handwritten digits against the digit names give float32's answers (benchmarks/int8_agreement.py
    measures the agreement on every test split of the default model)."""
    processor = UniPerceiverProcessor.from_pretrained(exported)
    fp32, int8 = (
        pipeline(
            "zero-shot-perception", model=UniPerceiverORTModel.from_pretrained(exported, int8=q), processor=processor
        )
        for q in (False, True)
    )
    images, labels = list(handwritten_digits(tuple(range(10))).values()), DIGITS
    tops = [[ranked[0]["label"] for ranked in pipe(images, candidate_labels=labels)] for pipe in (fp32, int8)]
    assert tops[1] == tops[0]
    assert (exported / "image.int8.onnx").stat().st_size < (exported / "image.onnx").stat().st_size


def test_what_the_graphs_cannot_serve_is_refused(exported, tmp_path):
    runtime = UniPerceiverORTModel.from_pretrained(exported)
    ids = torch.ones(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="need the torch model"):
        runtime.get_features(input_ids=ids, feature_index=ids == 1)
    with pytest.raises(ValueError, match="holds no onnx.json"):
        UniPerceiverORTModel.from_pretrained(tmp_path)


def test_a_moe_model_is_refused(moe_model_dir, tmp_path):
    with pytest.raises(ValueError, match="Uni-Perceiver-MoE"):
        cli.main(["export", "onnx", "--model", str(moe_model_dir), "--output", str(tmp_path)])
