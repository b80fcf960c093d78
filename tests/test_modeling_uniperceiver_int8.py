"""int8 torch models: `from_pretrained(..., quantization_config=TorchAoConfig(Int8DynamicActivationInt8WeightConfig()))`
(int8 weights and activations) or `TorchAoConfig(Int8WeightOnlyConfig())` (int8 weights) quantises every linear
layer (torchao's CPU path) and keeps the answers; the pipeline serves such a model."""

import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, TorchAoConfig, pipeline

from uniperceiver_hf import UniPerceiverProcessor
from uniperceiver_hf.targets_uniperceiver import model_fingerprint


ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "uniperceiver-tiny-emoji"
sys.path.insert(0, str(ROOT / "examples"))
from zero_shot_classification import DIGITS, handwritten_digits  # noqa: E402  (offline pictures)


KINDS = ("weights and activations", "weights only")


def int8_config(kind: str) -> TorchAoConfig:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

    return TorchAoConfig(Int8WeightOnlyConfig() if kind == "weights only" else Int8DynamicActivationInt8WeightConfig())


@pytest.mark.parametrize("kind", KINDS)
def test_every_linear_layer_of_a_tiny_model_is_int8_and_its_features_stay_close(tiny_model, tmp_path, kind):
    tiny_model.save_pretrained(tmp_path)
    quantized = AutoModel.from_pretrained(tmp_path, quantization_config=int8_config(kind)).eval()
    linears = [module for module in quantized.modules() if isinstance(module, torch.nn.Linear)]
    assert linears and all(type(module.weight) is not torch.nn.Parameter for module in linears)
    pixel_values = torch.randn(4, 3, tiny_model.config.image_size, tiny_model.config.image_size)
    with torch.no_grad():
        reference = tiny_model.eval().get_features(pixel_values=pixel_values)
        features = quantized.get_features(pixel_values=pixel_values)
    assert (reference * features).sum(-1).min() > 0.99  # cosine similarity of the unit features
    assert model_fingerprint(quantized) != model_fingerprint(tiny_model)


@pytest.mark.parametrize("kind", KINDS)
def test_the_pipeline_on_an_int8_model_keeps_the_top_answer(kind):
    """The ten handwritten digits against the digit names give float32's answers (benchmarks/int8_agreement.py
    measures the agreement on every test split of the default model)."""
    images, labels = list(handwritten_digits(tuple(range(10))).values()), DIGITS
    fp32 = pipeline("zero-shot-perception", model=str(MODEL))
    int8 = pipeline(
        "zero-shot-perception",
        model=AutoModel.from_pretrained(MODEL, quantization_config=int8_config(kind)).eval(),
        processor=UniPerceiverProcessor.from_pretrained(MODEL),
    )
    tops = [[ranked[0]["label"] for ranked in pipe(images, candidate_labels=labels)] for pipe in (fp32, int8)]
    assert tops[1] == tops[0]
