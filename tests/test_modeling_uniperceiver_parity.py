"""Parity with the official implementation: every golden case (a-h) through the public API.

The tiny official checkpoint is converted with `uniperceiver_hf.tools.convert` (conftest), reloaded with each attention
implementation, and run on the golden inputs. Logits must match to 1e-4, features and hidden states to 1e-5.
"""

import pytest
import torch

from uniperceiver_hf import UniPerceiverModel
from uniperceiver_hf.layouts_uniperceiver import caption_training_inputs, vocabulary_target_ids


LOGIT_TOL = 1e-4
HIDDEN_TOL = 1e-5


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def models(request, golden_model_dirs):
    """(plain model, prompt-tuned model) converted from the official tiny checkpoint, loaded with one attention."""
    loaded = []
    for name in ("plain", "prompt"):
        model = UniPerceiverModel.from_pretrained(golden_model_dirs[name], attn_implementation=request.param).eval()
        assert model.config._attn_implementation == request.param
        loaded.append(model)
    return loaded


def keep_mask(padding_mask: torch.Tensor) -> torch.Tensor:
    """Golden masks mark padding with 1; ours mark tokens with 1."""
    return 1 - padding_mask.long()


def images(goldens, preset: str) -> torch.Tensor:
    return torch.stack([goldens[f"pre/{preset}/img0"], goldens[f"pre/{preset}/img1"]])


def vocabulary(model) -> dict[str, torch.Tensor]:
    ids = vocabulary_target_ids(model.config.vocab_size, model.config.eos_token_id)
    return {"target_input_ids": ids}


class Recorder:
    """Collects `case | tensor | max abs diff` rows for the summary table and checks each tolerance."""

    def __init__(self, rows: list, case: str, implementation: str):
        self.rows, self.case, self.implementation = rows, case, implementation

    def __call__(self, tensor: str, ours: torch.Tensor, golden: torch.Tensor, tol: float, relative: bool = False):
        ours, golden = ours.detach().float(), golden.float()
        assert ours.shape == golden.shape, f"{self.case}/{tensor}: shape {tuple(ours.shape)} vs {tuple(golden.shape)}"
        diff = (ours - golden).abs().max().item()
        bound = tol * max(1.0, golden.abs().max().item()) if relative else tol
        self.rows.append((f"{self.case} [{self.implementation}]", tensor, diff))
        assert diff <= bound, f"{self.case}/{tensor}: max abs diff {diff:.3g} > {bound:.3g}"


@pytest.fixture
def check(request, models, parity_rows):
    case = request.node.name.split("[")[0].removeprefix("test_")
    return Recorder(parity_rows, case, models[0].config._attn_implementation)


def check_side(check, encoded, goldens, prefix: str, side: str):
    """Encoder input embeddings and last hidden states of one side."""
    check(
        f"{side}_encoder_input_embeds",
        encoded.hidden_states[0],
        goldens[f"{prefix}/{side}_encoder_input_embeds"],
        HIDDEN_TOL,
    )
    check(f"{side}_last_hidden", encoded.last_hidden_state, goldens[f"{prefix}/{side}_last_hidden"], HIDDEN_TOL)


@torch.no_grad()
def test_image_classification(models, goldens, check):
    model, key = models[0], "image_classification"
    inputs = model.encode(pixel_values=images(goldens, "imagenet_eval"), output_hidden_states=True)
    targets = model.encode(
        goldens[f"{key}/target_ids"],
        keep_mask(goldens[f"{key}/target_padding_mask"]),
        is_target=True,
        output_hidden_states=True,
    )
    check_side(check, inputs, goldens, key, "input")
    check_side(check, targets, goldens, key, "target")
    check("input_spe_hidden", inputs.feature_hidden_state, goldens[f"{key}/input_spe_hidden"], HIDDEN_TOL)
    check("target_spe_hidden", targets.feature_hidden_state, goldens[f"{key}/target_spe_hidden"], HIDDEN_TOL)
    check("input_feats", inputs.projected_features, goldens[f"{key}/input_feats"], HIDDEN_TOL)
    check("target_feats", targets.projected_features, goldens[f"{key}/target_feats"], HIDDEN_TOL)
    output = model(
        pixel_values=images(goldens, "imagenet_eval"),
        target_input_ids=goldens[f"{key}/target_ids"],
        target_attention_mask=keep_mask(goldens[f"{key}/target_padding_mask"]),
        task="img_cls",
    )
    check("logits", output.logits, goldens[f"{key}/logits"], LOGIT_TOL)


@torch.no_grad()
def test_image_text_retrieval(models, goldens, check):
    model, key = models[0], "image_text_retrieval"
    output = model(
        pixel_values=images(goldens, "clip_test"),
        target_input_ids=goldens[f"{key}/caption_ids"],
        target_attention_mask=keep_mask(goldens[f"{key}/caption_padding_mask"]),
        task="retrieve",
        output_hidden_states=True,
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check(
        "target_encoder_input_embeds",
        output.target_hidden_states[0],
        goldens[f"{key}/target_encoder_input_embeds"],
        HIDDEN_TOL,
    )
    check("target_last_hidden", output.target_last_hidden_state, goldens[f"{key}/target_last_hidden"], HIDDEN_TOL)
    check("eval_input_feats", output.input_embeds, goldens[f"{key}/eval_input_feats"], HIDDEN_TOL)
    check("eval_tgt_feats", output.target_embeds, goldens[f"{key}/eval_tgt_feats"], HIDDEN_TOL)
    check("logits_i2t", output.logits, goldens[f"{key}/logits_i2t"], LOGIT_TOL)
    check("logits_t2i", output.logits.T, goldens[f"{key}/logits_t2i"], LOGIT_TOL)


@pytest.mark.parametrize("key", ["text_classification_sst2", "text_pair_classification_rte"])
@torch.no_grad()
def test_text_classification(models, goldens, check, key):
    model = models[0]
    output = model(
        input_ids=goldens[f"{key}/input_ids"],
        attention_mask=keep_mask(goldens[f"{key}/input_padding_mask"]),
        feature_index=goldens[f"{key}/spe_index"],
        target_input_ids=goldens[f"{key}/target_ids"],
        task="text_mlm",
        output_hidden_states=True,
    )
    check.case = key
    check(
        "input_encoder_input_embeds", output.hidden_states[0], goldens[f"{key}/input_encoder_input_embeds"], HIDDEN_TOL
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check("target_last_hidden", output.target_last_hidden_state, goldens[f"{key}/target_last_hidden"], HIDDEN_TOL)
    features = model.encode(
        goldens[f"{key}/input_ids"],
        keep_mask(goldens[f"{key}/input_padding_mask"]),
        feature_index=goldens[f"{key}/spe_index"],
    )
    check("input_feats", features.projected_features, goldens[f"{key}/input_feats"], HIDDEN_TOL)
    check("logits", output.logits, goldens[f"{key}/logits"], LOGIT_TOL)


@torch.no_grad()
def test_text_mlm(models, goldens, check):
    model, key = models[0], "text_mlm"
    labels = goldens[f"{key}/mlm_labels"]
    vocab = model.encode(vocabulary(model)["target_input_ids"], is_target=True, output_hidden_states=True)
    rows = goldens[f"{key}/target_rows_index"]
    check(
        "target_encoder_input_embeds_rows",
        vocab.hidden_states[0][rows],
        goldens[f"{key}/target_encoder_input_embeds_rows"],
        HIDDEN_TOL,
    )
    check(
        "target_last_hidden_rows", vocab.last_hidden_state[rows], goldens[f"{key}/target_last_hidden_rows"], HIDDEN_TOL
    )
    check(
        "vocab_target_feats_rows",
        vocab.projected_features[rows],
        goldens[f"{key}/vocab_target_feats_rows"],
        HIDDEN_TOL,
    )
    targets = labels[labels != -1]
    torch.testing.assert_close(targets, goldens[f"{key}/masked_targets"], rtol=0, atol=0)
    output = model(
        input_ids=goldens[f"{key}/input_ids"],
        feature_index=labels != -1,
        target_embeds=vocab.embeds,
        task="text_mlm",
        labels=targets,
        output_hidden_states=True,
    )
    check(
        "input_encoder_input_embeds", output.hidden_states[0], goldens[f"{key}/input_encoder_input_embeds"], HIDDEN_TOL
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check("logits", output.logits, goldens[f"{key}/logits"], LOGIT_TOL)
    expected_loss = torch.nn.functional.cross_entropy(goldens[f"{key}/logits"], targets)
    check("loss", output.loss, expected_loss, LOGIT_TOL)


@torch.no_grad()
def test_image_caption_train(models, goldens, check, golden_index):
    model, key = models[0], "image_caption_train"
    samples = golden_index["cases"][key]["samples"]
    layout = caption_training_inputs([sample["caption_ids"] for sample in samples], model.config.spe_token_id)
    torch.testing.assert_close(layout["input_ids"], goldens[f"{key}/text_ids"], rtol=0, atol=0)
    # The official [L, L] mask (True = blocked) plus its key padding, against the one the model builds.
    fused = model._attention_mask(layout["attention_mask"], 1 + 196, torch.float32)
    official = goldens[f"{key}/attn_mask_call0"][None] | goldens[f"{key}/input_key_padding_mask"].bool()[:, None, :]
    assert torch.equal(fused[:, 0] < 0, official)

    vocab = model.get_features(vocabulary(model)["target_input_ids"], is_target=True)
    pixel_values = images(goldens, "clip_test")
    output = model(
        input_ids=layout["input_ids"],
        attention_mask=layout["attention_mask"],
        position_ids=layout["position_ids"],
        pixel_values=pixel_values,
        feature_index=layout["feature_index"],
        target_embeds=vocab,
        task="caption",
        labels=layout["labels"],
        output_hidden_states=True,
    )
    torch.testing.assert_close(layout["labels"], goldens[f"{key}/train_targets"], rtol=0, atol=0)
    check(
        "input_encoder_input_embeds", output.hidden_states[0], goldens[f"{key}/input_encoder_input_embeds"], HIDDEN_TOL
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check("train_logits", output.logits, goldens[f"{key}/train_logits"], LOGIT_TOL)
    # The official eval branch reads the last fused position only.
    last = torch.full((2,), layout["input_ids"].shape[1] - 1)
    eval_output = model(
        input_ids=layout["input_ids"],
        attention_mask=layout["attention_mask"],
        position_ids=layout["position_ids"],
        pixel_values=pixel_values,
        feature_index=last,
        target_embeds=vocab,
        task="caption",
    )
    check("eval_logits_last_pos", eval_output.logits, goldens[f"{key}/eval_logits_last_pos"], LOGIT_TOL)


@torch.no_grad()
def test_video_classification(models, goldens, check):
    model, key = models[0], "video_classification"
    output = model(
        pixel_values=goldens["pre/video/test_views"],
        target_input_ids=goldens[f"{key}/target_ids"],
        target_attention_mask=keep_mask(goldens[f"{key}/target_key_padding_mask"][:, 1:]),
        task="video_cls",
        output_hidden_states=True,
    )
    check(
        "input_encoder_input_embeds", output.hidden_states[0], goldens[f"{key}/input_encoder_input_embeds"], HIDDEN_TOL
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check("target_last_hidden", output.target_last_hidden_state, goldens[f"{key}/target_last_hidden"], HIDDEN_TOL)
    # Logits reach ~60 with the scale capped at 100: compared relative to their magnitude.
    check("logits", output.logits, goldens[f"{key}/logits"], LOGIT_TOL, relative=True)
    probabilities = output.logits.softmax(-1).mean(0, keepdim=True)
    check("view_avg_probs", probabilities, goldens[f"{key}/view_avg_probs"], LOGIT_TOL)


@torch.no_grad()
def test_vqa(models, goldens, check, golden_index):
    model, key = models[0], "vqa"
    feature_index = torch.tensor([sample["spe_index"] for sample in golden_index["cases"][key]["samples"]])
    output = model(
        input_ids=goldens[f"{key}/question_ids"],
        attention_mask=keep_mask(goldens[f"{key}/question_padding_mask"]),
        pixel_values=images(goldens, "clip_test"),
        feature_index=feature_index,
        target_input_ids=goldens[f"{key}/target_ids"],
        target_attention_mask=keep_mask(goldens[f"{key}/target_key_padding_mask"][:, 1:]),
        task="downstream",
        output_hidden_states=True,
    )
    check(
        "input_encoder_input_embeds", output.hidden_states[0], goldens[f"{key}/input_encoder_input_embeds"], HIDDEN_TOL
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check("target_last_hidden", output.target_last_hidden_state, goldens[f"{key}/target_last_hidden"], HIDDEN_TOL)
    check("logits", output.logits, goldens[f"{key}/logits"], LOGIT_TOL)


@torch.no_grad()
def test_prompt_tuned_image_classification(models, goldens, check):
    model, key = models[1], "prompt_tuned_image_classification"
    target_ids = goldens["image_classification/target_ids"]
    target_mask = keep_mask(goldens["image_classification/target_padding_mask"])
    output = model(
        pixel_values=images(goldens, "imagenet_eval"),
        target_input_ids=target_ids,
        target_attention_mask=target_mask,
        task="img_cls",
        output_hidden_states=True,
    )
    check(
        "input_encoder_input_embeds", output.hidden_states[0], goldens[f"{key}/input_encoder_input_embeds"], HIDDEN_TOL
    )
    check("input_last_hidden", output.last_hidden_state, goldens[f"{key}/input_last_hidden"], HIDDEN_TOL)
    check(
        "target_encoder_input_embeds",
        output.target_hidden_states[0],
        goldens[f"{key}/target_encoder_input_embeds"],
        HIDDEN_TOL,
    )
    check("target_last_hidden", output.target_last_hidden_state, goldens[f"{key}/target_last_hidden"], HIDDEN_TOL)
    features = model.encode(pixel_values=images(goldens, "imagenet_eval"))
    check("input_feats", features.projected_features, goldens[f"{key}/input_feats"], HIDDEN_TOL)
    check("logits", output.logits, goldens[f"{key}/logits"], LOGIT_TOL)


# ----------------------------------------------------------------------------------------------------------------------
# Another resolution: the official 384-px rule on the golden tiny model


def official_384_table(dim: int) -> torch.Tensor:
    """What the official 384-px fine-tuning (`in1k_training_384inputsize.yaml`) uses: `CHECKPOINT_FILETER: False`
    drops the stored 196-row table and `MAEParamsInit` builds the 24x24 sin-cos table with `POSEMBED_SCALE = 160/384`
    (written here independently, in NumPy: rows of [sin(a w), cos(a w), sin(b w), cos(b w)], a the patch row)."""
    import numpy as np

    quarter = dim // 4
    omega = 1.0 / 10000 ** (np.arange(quarter) / quarter)
    coords = np.arange(24) * (160 / 384)
    a, b = np.meshgrid(coords, coords, indexing="ij")
    a, b = np.outer(a.ravel(), omega), np.outer(b.ravel(), omega)
    return torch.from_numpy(np.concatenate([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], axis=1)).float()


@torch.no_grad()
def test_384_px_follows_the_official_rule(golden_dir, golden_model_dirs, tmp_path):
    from official_reference import reference_features
    from safetensors.torch import load_file

    official = load_file(str(golden_dir / "tiny_model.safetensors"))
    table = official_384_table(official["token_embed.embeddings.weight"].shape[1])
    official["video_embed.embeddings_st_pos.spatial_pos_embed.weight"] = table
    pixels = torch.randn(2, 3, 384, 384, generator=torch.Generator().manual_seed(0))
    expected, _ = reference_features(official, num_heads=4, pixel_values=pixels)

    native = UniPerceiverModel.from_pretrained(golden_model_dirs["plain"]).eval()
    at_384 = UniPerceiverModel.from_pretrained(golden_model_dirs["plain"], image_size=384).eval()
    assert at_384.config.spatial_position_scale == pytest.approx(160 / 384)
    torch.testing.assert_close(at_384.embeddings.visual.spatial_position_embeddings, table, atol=1e-6, rtol=0)
    torch.testing.assert_close(at_384.get_features(pixel_values=pixels), expected, atol=1e-5, rtol=1e-5)
    interpolated = native.get_features(pixel_values=pixels, interpolate_pos_encoding=True)
    torch.testing.assert_close(interpolated, expected, atol=1e-5, rtol=1e-5)
    # At the native size the flag changes nothing, bit for bit.
    small = torch.randn(1, 3, 224, 224)
    assert torch.equal(
        native.get_features(pixel_values=small, interpolate_pos_encoding=True), native.get_features(pixel_values=small)
    )
    # The resized model saves and reloads as a 384-px model; the flag is needed for another size than the config's.
    at_384.save_pretrained(tmp_path)
    reloaded = UniPerceiverModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.image_size == 384 and reloaded.config.spatial_position_scale == pytest.approx(160 / 384)
    torch.testing.assert_close(reloaded.get_features(pixel_values=pixels), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        native.get_features(pixel_values=pixels)
    with pytest.raises(ValueError, match="multiples of the patch size"):
        native.get_features(pixel_values=torch.randn(1, 3, 200, 200), interpolate_pos_encoding=True)


def test_other_size_mismatches_stay_errors(golden_model_dirs):
    with pytest.raises(RuntimeError, match="max_position_embeddings|position_embeddings"):
        UniPerceiverModel.from_pretrained(golden_model_dirs["plain"], max_position_embeddings=64)
