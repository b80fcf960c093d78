"""End to end: the processor builds every golden case from the raw strings, PNGs and frames, the converted
official tiny checkpoint runs on `model(**inputs)`, and the logits match the official implementation's."""

import random

import pytest
import torch
from PIL import Image

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.tools.convert import convert_checkpoint


LOGIT_TOL = 1e-4
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)


@pytest.fixture(scope="module")
def model(golden_dir, tmp_path_factory) -> UniPerceiverModel:
    out = tmp_path_factory.mktemp("converted")
    convert_checkpoint(golden_dir / "tiny_model_checkpoint.pth", out, UniPerceiverConfig(**TINY))
    return UniPerceiverModel.from_pretrained(out).eval()


@pytest.fixture(scope="module")
def processor() -> UniPerceiverProcessor:
    return UniPerceiverProcessor()


@pytest.fixture(scope="module")
def pngs(golden_dir, golden_index) -> list[Image.Image]:
    files = golden_index["preprocessing"]["images"]["files"][:2]
    return [Image.open(golden_dir / name) for name in files]


@pytest.fixture
def assert_close(request, parity_rows):
    """Compare with a golden tensor and record the max abs diff in the run's parity table."""
    case = "processor -> model " + request.node.name.removeprefix("test_")

    def check(ours: torch.Tensor, golden: torch.Tensor, tol: float = LOGIT_TOL, name: str = "logits") -> None:
        assert ours.shape == golden.shape, f"{name}: shape {tuple(ours.shape)} vs {tuple(golden.shape)}"
        diff = (ours.float() - golden.float()).abs().max().item()
        parity_rows.append((case, name, diff))
        assert diff <= tol, f"{name}: max abs diff {diff:.3g} > {tol:.3g}"

    return check


@torch.no_grad()
def test_a_image_classification(model, processor, pngs, golden_index, goldens, assert_close):
    inputs = processor(
        images=pngs, targets=golden_index["cases"]["image_classification"]["class_names"], return_tensors="pt"
    )
    assert inputs["task"] == "img_cls"
    assert_close(model(**inputs).logits, goldens["image_classification/logits"])


@torch.no_grad()
def test_b_image_text_retrieval(model, processor, pngs, golden_index, goldens, assert_close):
    captions = [c for pair in golden_index["cases"]["image_text_retrieval"]["captions"] for c in pair]
    inputs = processor(images=pngs, targets=captions, task="retrieve", return_tensors="pt")
    assert inputs["target_input_ids"].shape == (4, 50)  # the long caption is cut to 49 ids + EOT
    output = model(**inputs)
    assert_close(output.logits, goldens["image_text_retrieval/logits_i2t"])
    assert_close(output.input_embeds, goldens["image_text_retrieval/eval_input_feats"], 1e-5, "input features")
    assert_close(output.target_embeds, goldens["image_text_retrieval/eval_tgt_feats"], 1e-5, "target features")


@torch.no_grad()
def test_c_text_classification(model, processor, golden_index, goldens, assert_close):
    sst2 = golden_index["cases"]["text_classification_sst2"]
    inputs = processor.text_classification("SST-2", sst2["sentences"])
    assert_close(model(**inputs).logits, goldens["text_classification_sst2/logits"], name="SST-2 logits")

    pairs = golden_index["cases"]["text_pair_classification_rte"]["pairs"]
    inputs = processor.text_classification("RTE", [p[0] for p in pairs], [p[1] for p in pairs])
    assert_close(model(**inputs).logits, goldens["text_pair_classification_rte/logits"], name="RTE logits")


@torch.no_grad()
def test_d_masked_lm(model, processor, golden_index, goldens, assert_close):
    """The masking itself is the original's: `random.Random(3)` draws the golden masks."""
    case = golden_index["cases"]["text_mlm"]
    corpus = case["corpus"]
    inputs = processor.masked_lm([corpus[0:2], corpus[1:3]], max_length=case["seq_len"], generator=random.Random(3))
    torch.testing.assert_close(inputs["labels"], goldens["text_mlm/masked_targets"])
    inputs.update(processor.vocabulary_targets())
    assert_close(model(**inputs).logits, goldens["text_mlm/logits"])


@torch.no_grad()
def test_e_caption_training(model, processor, pngs, golden_index, goldens, assert_close):
    inputs = processor.caption_training(golden_index["cases"]["image_caption_train"]["captions"], images=pngs)
    torch.testing.assert_close(inputs["labels"], goldens["image_caption_train/train_targets"])
    inputs.update(processor.vocabulary_targets())
    assert_close(model(**inputs).logits, goldens["image_caption_train/train_logits"])


@torch.no_grad()
def test_f_video_classification(model, processor, golden_index, goldens, assert_close):
    frames = goldens["pre/video/frames_uint8_thwc"].numpy()  # the 8 sampled frames, used as given
    inputs = processor(
        videos=frames, targets=golden_index["cases"]["video_classification"]["class_names"], return_tensors="pt"
    )
    assert inputs["pixel_values"].shape == (3, 8, 3, 224, 224)  # 3 spatial views as rows
    logits = model(**inputs).logits
    # Logits reach ~60 with the scale capped at 100: compared relative to their magnitude.
    assert_close(logits, goldens["video_classification/logits"], LOGIT_TOL * 100)
    assert_close(
        logits.softmax(-1).mean(0, keepdim=True),
        goldens["video_classification/view_avg_probs"],
        name="view-averaged probabilities",
    )


@torch.no_grad()
def test_g_vqa(model, processor, pngs, golden_index, goldens, assert_close):
    case = golden_index["cases"]["vqa"]
    inputs = processor.vqa(pngs, case["questions"], case["answers"])
    assert inputs["feature_index"].tolist() == [s["spe_index"] for s in case["samples"]]
    assert_close(model(**inputs).logits, goldens["vqa/logits"])
