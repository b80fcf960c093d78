"""Uni-Perceiver-MoE parity with the official implementation, on every case of the MoE golden folder.

The folder comes from `UNIPERCEIVER_GOLDEN_MOE_DIR` (see `golden_moe.py`). Everything about the model is read from its `index.json`: the
architecture (`model_config`), the attribute table and the cases, so that the same tests run unchanged on a
golden folder of another size. The official checkpoint is converted by `uniperceiver_hf.tools.convert`, loaded
with SDPA and with eager attention, and every recorded tensor is compared: gate logits, top-2 choices and
renormalised gate values of each deciding module, the encoder input, every layer's output, features and logits.
"""

import json
import re

import pytest
import torch
from conftest import TINY_CONFIG
from golden_moe import case_pixels, moe_config_from_index

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel
from uniperceiver_hf.captioning_uniperceiver import UniPerceiverCaptioner
from uniperceiver_hf.layouts_uniperceiver import caption_training_inputs, vocabulary_target_ids
from uniperceiver_hf.moe_uniperceiver import resolve_attribute
from uniperceiver_hf.targets_uniperceiver import TargetSet


LOGIT_TOL = 1e-4
HIDDEN_TOL = 1e-5
# Official deciding modules -> ours (the reused decisions have no gate of their own here).
DECIDING = {"self_attn.qkv_proj": "self_attn.in_proj", "linear1": "mlp.fc1"}


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def moe_model(request, moe_model_dir) -> UniPerceiverModel:
    model = UniPerceiverModel.from_pretrained(moe_model_dir, attn_implementation=request.param).eval()
    assert model.config._attn_implementation == request.param and model.config.is_moe
    return model


@pytest.fixture(scope="module")
def moe_vocabulary(moe_model) -> TargetSet:
    return TargetSet.vocabulary(moe_model)


def keep(padding_mask: torch.Tensor) -> torch.Tensor:
    """Golden masks mark padding with 1; ours mark tokens with 1."""
    return 1 - padding_mask.long()


class Checker:
    """Compares one case's tensors with the goldens and records the differences for the summary table."""

    def __init__(self, rows: list, case: str, goldens: dict, model: UniPerceiverModel, index: dict):
        self.rows, self.case, self.goldens, self.model, self.index = rows, case, goldens, model, index
        self.implementation = model.config._attn_implementation

    def __call__(self, tensor: str, ours: torch.Tensor, tol: float = HIDDEN_TOL, relative: bool = False):
        golden = self.goldens[f"{self.case}/{tensor}"]
        ours = ours.detach()
        assert ours.shape == golden.shape, f"{self.case}/{tensor}: shape {tuple(ours.shape)} vs {tuple(golden.shape)}"
        if not golden.is_floating_point():
            assert torch.equal(ours.to(golden.dtype), golden), f"{self.case}/{tensor} differs"
            diff = 0.0
        else:
            diff = (ours.float() - golden.float()).abs().max().item()
            bound = tol * max(1.0, golden.abs().max().item()) if relative else tol
            assert diff <= bound, f"{self.case}/{tensor}: max abs diff {diff:.3g} > {bound:.3g}"
        self.rows.append((f"{self.case} [{self.implementation}]", tensor, diff))

    def side(self, side: str, encoded, rows: slice | list | None = None):
        """The encoder input, every layer's output and the last hidden state of one side (`rows`: the stored
        subset of a vocabulary side)."""
        hidden = encoded.hidden_states
        pick = (lambda t: t[rows]) if rows is not None else (lambda t: t)
        self(f"{side}_encoder_input_embeds", pick(hidden[0]))
        for layer in range(self.model.config.num_hidden_layers):
            if f"{self.case}/{side}_layer{layer}_output" in self.goldens:
                self(f"{side}_layer{layer}_output", pick(hidden[layer + 1]))
        self(f"{side}_last_hidden", pick(encoded.last_hidden_state))

    def routing(self, side: str, is_target: bool, task: str, visual: str | None, has_text: bool):
        """The side's default attribute rows are the official ones, and each deciding gate's logits, top-k
        choices and renormalised values on them match."""
        recorded = self.index["cases"][self.case]["routing"][side]
        rows = resolve_attribute(
            self.model.config, None, is_target=is_target, task=task, visual=visual, has_text=has_text
        )
        assert [list(row) for row in rows] == [[float(x) for x in row] for row in recorded["attribute_rows"]]
        attributes = torch.tensor(rows)
        for name in recorded["moe"]:
            layer, module = re.fullmatch(r"fused_encoder\.layers\.(\d+)\.(.+)", name).groups()
            if module not in DECIDING:
                assert recorded["moe"][name]["reused_decision"] and self.model.config.moe_share_gate_decisions
                continue
            gate = self.model.encoder.layers[int(layer)].get_submodule(DECIDING[module]).gate
            logits, indices, values = gate(attributes)
            prefix = f"{side}_routing/{name}"
            self(f"{prefix}/gate_logits", logits)
            self(f"{prefix}/top_indices", indices.T)
            self(f"{prefix}/gate_values", values.T)


@pytest.fixture
def check(moe_model, moe_goldens, moe_index, parity_rows):
    """`check(case)`: a `Checker` of that case for the current model."""
    return lambda case: Checker(parity_rows, case, moe_goldens, moe_model, moe_index)


def test_moe_config_round_trips_and_the_converter_infers_it(moe_index, moe_model_dir, tmp_path):
    expected = moe_config_from_index(moe_index)
    loaded = UniPerceiverConfig.from_pretrained(moe_model_dir)
    for name in ("num_experts", "moe_top_k", "moe_layers", "moe_sublayers", "moe_attribute_length"):
        assert getattr(loaded, name) == getattr(expected, name), name
    assert loaded.moe_task_attributes == expected.moe_task_attributes
    assert loaded.moe_target_set_attributes == expected.moe_target_set_attributes
    loaded.save_pretrained(tmp_path)
    assert UniPerceiverConfig.from_pretrained(tmp_path).to_dict() == loaded.to_dict()


@torch.no_grad()
def test_moe_image_classification(moe_model, moe_goldens, moe_index, check):
    case, checker = "image_classification", check("image_classification")
    images = case_pixels(moe_goldens, moe_index, case)
    target_ids, target_mask = moe_goldens[f"{case}/target_ids"], keep(moe_goldens[f"{case}/target_padding_mask"])
    inputs = moe_model.encode(pixel_values=images, task="img_cls", output_hidden_states=True)
    targets = moe_model.encode(target_ids, target_mask, is_target=True, task="img_cls", output_hidden_states=True)
    checker.routing("input", False, "img_cls", "image", False)
    checker.routing("target", True, "img_cls", None, True)
    checker.side("input", inputs)
    checker.side("target", targets)
    checker("input_feats", inputs.projected_features)
    output = moe_model(
        pixel_values=images, target_input_ids=target_ids, target_attention_mask=target_mask, task="img_cls"
    )
    checker("logits", output.logits, LOGIT_TOL)
    # The official target-set name gives the same rows as the default.
    named = moe_model(
        pixel_values=images,
        target_input_ids=target_ids,
        target_attention_mask=target_mask,
        task="img_cls",
        attribute="image_classification",
        target_attribute=moe_index["cases"][case]["target_set_name"],
    )
    torch.testing.assert_close(named.logits, output.logits, rtol=0, atol=0)


@torch.no_grad()
def test_moe_image_text_retrieval_both_ways(moe_model, moe_goldens, moe_index, check):
    case, checker = "image_text_retrieval", check("image_text_retrieval")
    images = case_pixels(moe_goldens, moe_index, case)
    captions, mask = moe_goldens[f"{case}/caption_ids"], keep(moe_goldens[f"{case}/caption_padding_mask"])
    checker.routing("input", False, "retrieve", "image", False)
    checker.routing("target", True, "retrieve", None, True)
    output = moe_model(
        pixel_values=images,
        target_input_ids=captions,
        target_attention_mask=mask,
        task="retrieve",
        output_hidden_states=True,
    )
    inputs = moe_model.encode(pixel_values=images, task="retrieve", output_hidden_states=True)
    targets = moe_model.encode(captions, mask, is_target=True, task="retrieve", output_hidden_states=True)
    checker.side("input", inputs)
    checker.side("target", targets)
    checker("eval_input_feats", output.input_embeds)
    checker("eval_tgt_feats", output.target_embeds)
    checker("logits_i2t", output.logits, LOGIT_TOL)
    # Text to image: the captions are the input side now, and keep their (retrieval target) attribute.
    reverse = moe_model(input_ids=captions, attention_mask=mask, target_pixel_values=images, task="retrieve")
    checker("logits_t2i", reverse.logits, LOGIT_TOL)


@pytest.mark.parametrize("case", ["text_classification_sst2", "text_pair_classification_rte"])
@torch.no_grad()
def test_moe_text_classification(case, moe_model, moe_goldens, moe_index, check):
    checker = check(case)
    spec = moe_index["cases"][case]
    input_ids, mask = moe_goldens[f"{case}/input_ids"], keep(moe_goldens[f"{case}/input_padding_mask"])
    feature_index = torch.tensor(spec["spe_index"])
    checker.routing("input", False, "text_mlm", None, True)
    checker.routing("target", True, "text_mlm", None, True)
    inputs = moe_model.encode(input_ids, mask, feature_index=feature_index, task="text_mlm", output_hidden_states=True)
    targets = moe_model.encode(
        moe_goldens[f"{case}/target_ids"], is_target=True, task="text_mlm", output_hidden_states=True
    )
    checker.side("input", inputs)
    checker.side("target", targets)
    checker("input_feats", inputs.projected_features)
    output = moe_model(
        input_ids=input_ids,
        attention_mask=mask,
        feature_index=feature_index,
        target_input_ids=moe_goldens[f"{case}/target_ids"],
        task="text_mlm",
        attribute="text_classification",
        target_attribute=spec["target_set_name"],
    )
    checker("logits", output.logits, LOGIT_TOL)


@torch.no_grad()
def test_moe_text_mlm(moe_model, moe_goldens, moe_index, moe_vocabulary, check):
    case, checker = "text_mlm", check("text_mlm")
    spec = moe_index["cases"][case]
    labels = moe_goldens[f"{case}/labels"]
    checker.routing("input", False, "text_mlm", None, True)
    checker.routing("vocab_target", True, "text_mlm", None, True)
    kept = spec["vocab_rows_kept"]
    vocabulary = vocabulary_target_ids(moe_model.config.vocab_size, moe_model.config.eos_token_id)
    stored = moe_model.encode(vocabulary[kept], is_target=True, task="text_mlm", output_hidden_states=True)
    checker("vocab_target_encoder_input_embeds", stored.hidden_states[0])
    checker("vocab_target_last_hidden", stored.last_hidden_state)
    assert moe_vocabulary.attribute == [
        list(map(float, row)) for row in spec["routing"]["vocab_target"]["attribute_rows"]
    ]
    torch.testing.assert_close(moe_vocabulary.embeds[kept], stored.embeds, rtol=0, atol=HIDDEN_TOL)
    output = moe_model(
        input_ids=moe_goldens[f"{case}/input_ids"],
        feature_index=labels != -1,
        target_embeds=moe_vocabulary.embeds,
        task="text_mlm",
        labels=labels[labels != -1],
        output_hidden_states=True,
    )
    checker.side(
        "input", moe_model.encode(moe_goldens[f"{case}/input_ids"], task="text_mlm", output_hidden_states=True)
    )
    checker("targets", labels[labels != -1])
    checker("logits", output.logits, LOGIT_TOL)


@torch.no_grad()
def test_moe_image_caption_train(moe_model, moe_goldens, moe_index, moe_vocabulary, check):
    case, checker = "image_caption_train", check("image_caption_train")
    spec = moe_index["cases"][case]
    layout = caption_training_inputs(spec["caption_token_ids"], moe_model.config.spe_token_id)
    torch.testing.assert_close(layout["input_ids"], moe_goldens[f"{case}/text_ids"], rtol=0, atol=0)
    images = case_pixels(moe_goldens, moe_index, case)
    num_prefix = spec["routing"]["input"]["data_cum_length"][1]
    assert num_prefix == 1 + (moe_model.config.image_size // moe_model.config.patch_size) ** 2
    # The official [S, S] mask (1 = blocked) plus its key padding, against the one the model builds.
    fused = moe_model._attention_mask(layout["attention_mask"], num_prefix, torch.float32)
    blocked = (
        moe_goldens[f"{case}/attn_mask"].bool()[None] | moe_goldens[f"{case}/input_key_padding_mask"].bool()[:, None]
    )
    assert torch.equal(fused[:, 0] < 0, blocked)
    checker.routing("input", False, "caption", "image", True)
    checker.routing("vocab_target", True, "caption", None, True)
    arguments = dict(
        input_ids=layout["input_ids"],
        attention_mask=layout["attention_mask"],
        position_ids=layout["position_ids"],
        pixel_values=images,
        target_embeds=moe_vocabulary.embeds,
        task="caption",
    )
    output = moe_model(
        **arguments, feature_index=layout["feature_index"], labels=layout["labels"], output_hidden_states=True
    )
    inputs = moe_model.encode(
        layout["input_ids"],
        layout["attention_mask"],
        layout["position_ids"],
        images,
        task="caption",
        output_hidden_states=True,
    )
    checker.side("input", inputs)
    checker("train_targets", layout["labels"])
    checker("train_logits", output.logits, LOGIT_TOL)
    last = torch.full((images.shape[0],), layout["input_ids"].shape[1] - 1)
    checker("eval_logits_last_pos", moe_model(**arguments, feature_index=last).logits, LOGIT_TOL)


@torch.no_grad()
def test_moe_image_caption_decode(moe_model, moe_goldens, moe_index, moe_vocabulary, check):
    case, checker = "image_caption_decode", check("image_caption_decode")
    spec = moe_index["cases"][case]
    images = case_pixels(moe_goldens, moe_index, case)
    captioner = UniPerceiverCaptioner(moe_model, moe_vocabulary)
    for use_cache in (True, False):
        output = captioner.generate(
            images,
            num_beams=spec["beam_size"],
            max_new_tokens=spec["max_steps"],
            length_penalty=spec["len_penalty"],
            use_cache=use_cache,
        )
        checker("output_ids", output.sequences)
    # The chosen words' log-probabilities, step by step through the cache (caption row 1 for every step).
    logits = captioner.teacher_forced_logits(images, output.sequences)
    chosen = logits.float().log_softmax(-1).gather(-1, output.sequences[..., None])[..., 0]
    checker("output_logprobs", chosen, LOGIT_TOL)


@torch.no_grad()
def test_moe_video_classification(moe_model, moe_goldens, moe_index, check):
    case, checker = "video_classification", check("video_classification")
    video = case_pixels(moe_goldens, moe_index, case)
    target_ids, target_mask = moe_goldens[f"{case}/target_ids"], keep(moe_goldens[f"{case}/target_padding_mask"])
    checker.routing("input", False, "video_cls", "video", False)
    checker.routing("target", True, "video_cls", None, True)
    inputs = moe_model.encode(pixel_values=video, task="video_cls", output_hidden_states=True)
    targets = moe_model.encode(target_ids, target_mask, is_target=True, task="video_cls", output_hidden_states=True)
    checker.side("input", inputs)
    checker.side("target", targets)
    checker("input_feats", inputs.projected_features)
    output = moe_model(
        pixel_values=video, target_input_ids=target_ids, target_attention_mask=target_mask, task="video_cls"
    )
    # The scale is capped at 100: compared relative to the logits' magnitude.
    checker("logits", output.logits, LOGIT_TOL, relative=True)
    checker("view_avg_probs", output.logits.softmax(-1).mean(0, keepdim=True), LOGIT_TOL)


def test_moe_cases_are_all_covered(moe_index):
    covered = {
        "image_classification",
        "image_text_retrieval",
        "text_classification_sst2",
        "text_pair_classification_rte",
        "text_mlm",
        "image_caption_train",
        "image_caption_decode",
        "video_classification",
    }
    assert set(moe_index["cases"]) == covered


# ----------------------------------------------------------------------------------------------------------------------
# Behaviour on a tiny random MoE model (no golden data needed)


TINY_MOE = dict(TINY_CONFIG, num_experts=4, moe_layers=[1])  # the shared tiny architecture, with experts


@pytest.fixture
def tiny_moe():
    torch.manual_seed(0)
    return UniPerceiverModel(UniPerceiverConfig(**TINY_MOE)).eval()


def tiny_inputs():
    generator = torch.Generator().manual_seed(1)
    return dict(
        pixel_values=torch.randn(2, 3, 32, 32, generator=generator),
        target_input_ids=torch.tensor([[5, 6, 49407], [7, 49407, 0]]),
        target_attention_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]),
        task="img_cls",
    )


@torch.no_grad()
def test_moe_a_dense_model_ignores_attributes(tiny_model):
    plain = tiny_model(**tiny_inputs())
    routed = tiny_model(**tiny_inputs(), attribute="anything", target_attribute=[[1.0] * 3])
    assert torch.equal(plain.logits, routed.logits)
    assert "moe" not in json.dumps(tiny_model.config.to_dict()) and "num_experts" not in tiny_model.config.to_dict()


def test_moe_merged_weights_are_cached_at_inference_and_follow_parameter_changes(tiny_moe):
    fc1 = tiny_moe.encoder.layers[1].mlp.fc1
    with torch.no_grad():
        first = tiny_moe(**tiny_inputs()).logits
        assert len(fc1._merged) == 2  # the input's and the targets' rows
        cached = dict(fc1._merged)
        assert torch.equal(tiny_moe(**tiny_inputs()).logits, first)
        assert all(fc1._merged[key][0] is weights[0] for key, weights in cached.items())  # reused, not recomputed
        fc1.weight.mul_(1.5)  # an in-place change (an optimiser step, load_state_dict)
        changed = tiny_moe(**tiny_inputs()).logits
    fresh = tiny_moe(**tiny_inputs()).logits  # with gradients recorded: never cached
    assert not torch.equal(changed, first)
    torch.testing.assert_close(changed, fresh.detach(), rtol=0, atol=0)
    tiny_moe.load_state_dict({k: v.clone() for k, v in tiny_moe.state_dict().items()})
    tiny_moe.double()  # a replaced parameter (new storage and dtype)
    with torch.no_grad():
        torch.testing.assert_close(tiny_moe(**tiny_inputs()).logits.float(), changed, rtol=1e-5, atol=1e-5)
    tiny_moe.train()
    assert not fc1._merged and not fc1._decisions


def test_moe_training_noise_is_optional_and_every_expert_trains():
    torch.manual_seed(0)
    model = UniPerceiverModel(UniPerceiverConfig(**TINY_MOE, moe_gate_noise="vmoe", moe_gate_noise_std=8.0))
    gate = model.encoder.layers[1].self_attn.in_proj.gate
    attribute = torch.tensor([model.config.moe_task_attributes["image_classification"]["input"][0]])
    model.train()
    noisy = {tuple(gate(attribute)[2][0].tolist()) for _ in range(5)}
    model.eval()
    clean = {tuple(gate(attribute)[2][0].tolist()) for _ in range(5)}
    assert len(noisy) > 1 and len(clean) == 1
    model.train()
    output = model(**tiny_inputs(), labels=torch.tensor([0, 1]))
    output.loss.backward()
    experts = model.encoder.layers[1].mlp.fc1.weight
    assert experts.requires_grad and experts.grad is not None
    used = experts.grad.flatten(1).abs().sum(-1) > 0
    assert 1 <= int(used.sum()) <= model.config.num_experts


def test_moe_prompt_tuning_freezes_experts_and_gates(tiny_moe):
    from uniperceiver_hf.prompt_tuning_uniperceiver import prepare_prompt_tuning, trainable_parameter_breakdown

    tuned = prepare_prompt_tuning(tiny_moe)
    for name, parameter in tuned.named_parameters():
        if ".in_proj." in name or ".out_proj." in name or ".fc1." in name or ".fc2." in name:
            assert not parameter.requires_grad, name
    assert trainable_parameter_breakdown(tuned)["other"] == 0
    with torch.no_grad():
        assert tuned(**tiny_inputs()).logits.shape == (2, 2)


@torch.no_grad()
def test_moe_refuses_vqa_and_unknown_attributes_clearly(tiny_moe):
    question = dict(pixel_values=tiny_inputs()["pixel_values"], input_ids=torch.tensor([[5, 49410, 49407]] * 2))
    with pytest.raises(ValueError, match="VQA cannot run on a Uni-Perceiver-MoE model"):
        tiny_moe(**question, target_input_ids=torch.tensor([[5, 49407]]), task="downstream")
    with pytest.raises(ValueError, match="VQA has no task attribute"):
        tiny_moe.encode(**question)
    with pytest.raises(ValueError, match=r"`attribute` 'imagenet' is not in the model's task-attribute tables"):
        tiny_moe(**tiny_inputs(), attribute="imagenet")
    with pytest.raises(ValueError, match="`target_attribute` must be a task-attribute name or one or two rows of 8"):
        tiny_moe(**tiny_inputs(), target_attribute=[[1.0, 0.0]])
    # An explicit row works like the named one.
    named = tiny_moe(**tiny_inputs(), target_attribute="Kinetics400").logits
    rows = tiny_moe.config.moe_target_set_attributes["Kinetics400"]
    assert torch.equal(tiny_moe(**tiny_inputs(), target_attribute=torch.tensor(rows)).logits, named)


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(num_experts=-1), "num_experts"),
        (dict(moe_top_k=5), "moe_top_k"),
        (dict(moe_layers=[2]), "moe_layers"),
        (dict(moe_layers=[]), "moe_layers"),
        (dict(moe_sublayers=["ffn"]), "moe_sublayers"),
        (dict(moe_gate_noise="jitter"), "moe_gate_noise"),
        (dict(moe_target_set_attributes={"x": [[1, 0]]}), "moe_target_set_attributes['x']"),
        (dict(moe_task_attributes={"x": {"both": [[1] * 8]}}), "moe_task_attributes['x']"),
    ],
)
def test_moe_config_validation_names_the_field(overrides, field):
    from huggingface_hub.errors import StrictDataclassClassValidationError

    with pytest.raises(StrictDataclassClassValidationError, match=re.escape(f"`{field}")):
        UniPerceiverConfig(**{**TINY_MOE, **overrides})


@torch.no_grad()
def test_moe_pipeline_and_target_sets_use_each_side_attribute(tiny_moe, tmp_path):
    from PIL import Image
    from transformers import pipeline

    classify = pipeline("zero-shot-perception", model=tiny_moe)
    picture = Image.new("RGB", (40, 40), (200, 30, 30))
    scores = classify(picture, candidate_labels=["red", "blue"])
    processor = classify.processor
    targets = processor.target_inputs(["red", "blue"])
    pixel_values = processor.image_processor([picture], preset="imagenet", return_tensors="pt")["pixel_values"]
    # The pipeline's scores are the model's with the default attributes: image input, class-name targets.
    logits = tiny_moe(
        pixel_values=pixel_values,
        target_input_ids=targets["target_input_ids"],
        target_attention_mask=targets["target_attention_mask"],
        task="img_cls",
        attribute="image_classification",
        target_attribute="ImageNet1k",
    ).logits
    expected = dict(zip(["red", "blue"], logits.softmax(-1)[0].tolist()))
    for score in scores:
        assert score["score"] == pytest.approx(expected[score["label"]], abs=1e-6)
    # A saved target set records its attribute; one encoded for another side is refused by the pipeline.
    words = TargetSet.encode(
        tiny_moe,
        targets["target_input_ids"],
        targets["target_attention_mask"],
        labels=["red", "blue"],
        attribute="Vocab_Word",
    )
    words.save(tmp_path / "words.safetensors")
    loaded = TargetSet.load(tmp_path / "words.safetensors", tiny_moe)
    assert loaded.attribute == [list(map(float, tiny_moe.config.moe_target_set_attributes["Vocab_Word"][0]))]
    with pytest.raises(ValueError, match="`candidate_set` was encoded with the task attribute"):
        classify(picture, candidate_set=loaded)
    names = TargetSet.encode(
        tiny_moe, targets["target_input_ids"], targets["target_attention_mask"], labels=["red", "blue"], task="img_cls"
    )
    assert [s["label"] for s in classify(picture, candidate_set=names)] == [s["label"] for s in scores]
    with pytest.raises(ValueError, match="task attribute"):
        UniPerceiverCaptioner(tiny_moe, names)
    with pytest.raises(ValueError, match="VQA"):
        classify({"image": picture, "question": "what colour?"}, candidate_labels=["red", "blue"])
