"""Cached caption decoding: equal to full recomputation and to the official caption training layout."""

import pytest
import torch

from uniperceiver_hf import UniPerceiverModel
from uniperceiver_hf.captioning_uniperceiver import UniPerceiverCaptioner, strip_after_eos
from uniperceiver_hf.targets_uniperceiver import TargetSet


@pytest.fixture(scope="module")
def golden_captioner(golden_model_dirs):
    model = UniPerceiverModel.from_pretrained(golden_model_dirs["plain"]).eval()
    return UniPerceiverCaptioner(model)


@pytest.fixture
def tiny_captioner(tiny_model):
    return UniPerceiverCaptioner(tiny_model)


def pixels(config, batch=2, frames=None):
    generator = torch.Generator().manual_seed(3)
    size = (config.image_size, config.image_size)
    shape = (batch, 3, *size) if frames is None else (batch, frames, 3, *size)
    return torch.randn(shape, generator=generator)


def test_one_cached_step_equals_the_official_caption_training_layout(golden_captioner, goldens, golden_index):
    """Golden case e: every <SPE>_t of the training layout, teacher-forced through the cached decoder."""
    key = "image_caption_train"
    captions = [sample["caption_ids"] for sample in golden_index["cases"][key]["samples"]]
    length = max(len(c) for c in captions)
    caption_ids = torch.tensor([c + [0] * (length - len(c)) for c in captions])
    valid = torch.tensor([[i < len(c) for i in range(length)] for c in captions])
    pixel_values = torch.stack([goldens["pre/clip_test/img0"], goldens["pre/clip_test/img1"]])
    logits = golden_captioner.teacher_forced_logits(pixel_values, caption_ids)
    expected = goldens[f"{key}/train_logits"]
    assert (logits[valid] - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("num_beams", [1, 2, 3])
def test_cached_decoder_equals_full_recomputation(tiny_captioner, num_beams):
    images = pixels(tiny_captioner.model.config)
    cached = tiny_captioner.generate(images, num_beams=num_beams, max_new_tokens=6)
    recomputed = tiny_captioner.generate(images, num_beams=num_beams, max_new_tokens=6, use_cache=False)
    assert torch.equal(cached.beam_sequences, recomputed.beam_sequences)
    torch.testing.assert_close(cached.beam_scores, recomputed.beam_scores, atol=1e-4, rtol=1e-5)
    assert cached.beam_sequences.shape == (2, num_beams, 6) and cached.sequences.shape == (2, 6)


@torch.no_grad()
def test_every_cached_step_matches_recomputed_logits(tiny_captioner):
    config = tiny_captioner.model.config
    videos = pixels(config, frames=3)
    words = torch.tensor([[320, 736, 10712, 525], [1449, 537, 1579, 26972]])
    cached = tiny_captioner.teacher_forced_logits(videos, words)
    for position in range(words.shape[1]):
        recomputed = tiny_captioner.recompute_step(videos, words[:, :position])
        torch.testing.assert_close(cached[:, position], recomputed, atol=1e-4, rtol=1e-5)


@torch.no_grad()
def test_beam_scores_are_length_penalised_log_probabilities(tiny_captioner):
    config = tiny_captioner.model.config
    images = pixels(config, batch=1)
    output = tiny_captioner.generate(images, num_beams=2, max_new_tokens=5, length_penalty=2.0)
    for beam, score in zip(output.beam_sequences[0], output.beam_scores[0]):
        log_probs = tiny_captioner.teacher_forced_logits(images, beam[None]).log_softmax(-1)[0]
        tokens = beam.tolist()
        stop = tokens.index(config.eos_token_id) + 1 if config.eos_token_id in tokens else len(tokens)
        total = sum(log_probs[t, tokens[t]] for t in range(stop))  # frozen EOT continuations cost nothing
        words = sum(token != config.eos_token_id for token in tokens)
        torch.testing.assert_close(score, total / (words + 1) ** 2.0, atol=1e-4, rtol=1e-4)
    assert output.beam_scores[0, 0] >= output.beam_scores[0, 1]


def test_greedy_picks_the_argmax_each_step(tiny_captioner):
    images = pixels(tiny_captioner.model.config)
    output = tiny_captioner.generate(images, num_beams=1, max_new_tokens=4, length_penalty=0.0)
    logits = tiny_captioner.teacher_forced_logits(images, output.sequences)
    frozen = torch.zeros_like(output.sequences, dtype=torch.bool)
    frozen[:, 1:] = (output.sequences == tiny_captioner.model.config.eos_token_id).cumsum(-1)[:, :-1] > 0
    assert torch.equal(output.sequences[~frozen], logits.argmax(-1)[~frozen])


def test_strip_after_eos():
    assert strip_after_eos(torch.tensor([[5, 6, 49407, 49407], [7, 8, 9, 10]]), 49407) == [[5, 6], [7, 8, 9, 10]]


def test_vocabulary_must_come_from_the_same_model(tiny_model, tiny_config):
    other = UniPerceiverModel(tiny_config).eval()
    vocabulary = TargetSet.vocabulary(other)
    with pytest.raises(ValueError, match="encoded by model"):
        UniPerceiverCaptioner(tiny_model, vocabulary)
    with pytest.raises(ValueError, match="num_beams"):
        UniPerceiverCaptioner(other, vocabulary).generate(pixels(tiny_config), num_beams=0)


def image(captioner, value=0.0):
    size = captioner.model.config.image_size
    return torch.full((1, 3, size, size), value)


# (call(captioner), error type, regex naming the argument)
BAD_CAPTIONER_CALLS = {
    "num_beams zero": (lambda c: c.generate(image(c), num_beams=0), ValueError, "num_beams"),
    "num_beams float": (lambda c: c.generate(image(c), num_beams=2.0), TypeError, "num_beams"),
    "num_beams bool": (lambda c: c.generate(image(c), num_beams=True), TypeError, "num_beams"),
    "num_beams beyond the vocabulary": (
        lambda c: c.generate(image(c), num_beams=49412),
        ValueError,
        "num_beams.*49411.*vocabulary",
    ),
    "max_new_tokens zero": (lambda c: c.generate(image(c), max_new_tokens=0), ValueError, "max_new_tokens"),
    "max_new_tokens beyond the positions": (
        lambda c: c.generate(image(c), max_new_tokens=513),
        ValueError,
        "max_new_tokens.*512.*text positions",
    ),
    "length_penalty NaN": (lambda c: c.generate(image(c), length_penalty=float("nan")), ValueError, "length_penalty"),
    "pixel_values NaN": (lambda c: c.generate(image(c, float("nan")), max_new_tokens=1), ValueError, "pixel_values"),
    "pixel_values size": (lambda c: c.generate(torch.zeros(1, 3, 8, 8), max_new_tokens=1), ValueError, "pixel_values"),
    "vocabulary size": (
        lambda c: UniPerceiverCaptioner(c.model, TargetSet(c.vocabulary.embeds[:10])),
        ValueError,
        "vocabulary",
    ),
    "vocabulary of other weights": (
        lambda c: UniPerceiverCaptioner(c.model, TargetSet(c.vocabulary.embeds, fingerprint="0" * 16)),
        ValueError,
        "encoded by model",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CAPTIONER_CALLS))
def test_bad_input(golden_captioner, case):
    call, error, pattern = BAD_CAPTIONER_CALLS[case]
    with pytest.raises(error, match=pattern):
        call(golden_captioner)


def test_the_cache_is_allocated_once_and_reordered_only_when_beams_move(tiny_model, monkeypatch):
    from uniperceiver_hf.captioning_uniperceiver import KeyValueCache

    vocabulary = TargetSet(torch.nn.functional.normalize(torch.randn(tiny_model.config.vocab_size, 32), dim=-1))
    captioner = UniPerceiverCaptioner(tiny_model, vocabulary)
    reorders, allocations = [], []
    original_reorder, original_init = KeyValueCache.reorder, KeyValueCache.__init__
    monkeypatch.setattr(
        KeyValueCache, "reorder", lambda self, rows: reorders.append(rows) or original_reorder(self, rows)
    )
    monkeypatch.setattr(KeyValueCache, "__init__", lambda self, *a: allocations.append(1) or original_init(self, *a))
    images = pixels(tiny_model.config)
    greedy = captioner.generate(images, num_beams=1, max_new_tokens=5)
    assert reorders == [] and allocations == [1]  # one beam never moves
    beams = captioner.generate(images, num_beams=2, max_new_tokens=5)
    assert 1 <= len(reorders) <= 5  # the first step always spreads each image over its beams
    assert torch.equal(beams.beam_sequences, captioner.generate(images, 2, 5, use_cache=False).beam_sequences)
    assert greedy.sequences.shape == (2, 5)


def test_the_vocabulary_is_read_in_the_model_dtype(tiny_model):
    vocabulary = TargetSet(torch.nn.functional.normalize(torch.randn(tiny_model.config.vocab_size, 32), dim=-1))
    captioner = UniPerceiverCaptioner(tiny_model.to(torch.bfloat16), vocabulary)
    assert captioner.vocabulary_embeds.dtype == torch.bfloat16 and vocabulary.embeds.dtype == torch.float32
    assert captioner.generate(pixels(tiny_model.config).bfloat16(), num_beams=2, max_new_tokens=3).sequences.shape == (
        2,
        3,
    )
