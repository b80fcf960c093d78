"""UniPerceiverProcessor: every task layout equals the golden ids, masks, read-out positions and pixels; GLUE
templates, masked LM statistics, bad input, saving, AutoProcessor and remote code."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from uniperceiver_hf import UniPerceiverProcessor, UniPerceiverVideoProcessor
from uniperceiver_hf.processing_uniperceiver import GLUE_LABEL_WORDS, glue_task_key, truncate_keeping_last


SPE, EOT = 49410, 49407


@pytest.fixture(scope="module")
def processor() -> UniPerceiverProcessor:
    return UniPerceiverProcessor()


@pytest.fixture(scope="module")
def pngs(golden_dir, golden_index) -> list[Image.Image]:
    return [Image.open(golden_dir / name) for name in golden_index["preprocessing"]["images"]["files"][:2]]


def keep(padding_mask: torch.Tensor) -> torch.Tensor:
    """Golden padding masks are 1 at padding; ours are 1 at tokens."""
    return 1 - padding_mask.long()


def images(goldens, preset: str) -> torch.Tensor:
    return torch.stack([goldens[f"pre/{preset}/img0"], goldens[f"pre/{preset}/img1"]])


# -- the golden layouts ----------------------------------------------------------------------------------------


def test_image_classification_layout(processor, pngs, golden_index, goldens):
    inputs = processor(
        images=pngs,
        targets=golden_index["cases"]["image_classification"]["class_names"],
        labels=[1, 4],
        return_tensors="pt",
    )
    assert set(inputs) == {"pixel_values", "target_input_ids", "target_attention_mask", "task", "labels"}
    assert inputs["task"] == "img_cls" and inputs["labels"].tolist() == [1, 4]
    assert torch.equal(inputs["pixel_values"], images(goldens, "imagenet_eval"))
    assert torch.equal(inputs["target_input_ids"], goldens["image_classification/target_ids"])
    assert torch.equal(inputs["target_attention_mask"], keep(goldens["image_classification/target_padding_mask"]))


def test_retrieval_layout(processor, pngs, golden_index, goldens):
    captions = [c for pair in golden_index["cases"]["image_text_retrieval"]["captions"] for c in pair]
    inputs = processor(images=pngs, targets=captions, task="retrieve", return_tensors="pt")
    assert torch.equal(inputs["pixel_values"], images(goldens, "clip_test"))  # the "clip" preset
    assert torch.equal(inputs["target_input_ids"], goldens["image_text_retrieval/caption_ids"])
    assert torch.equal(inputs["target_attention_mask"], keep(goldens["image_text_retrieval/caption_padding_mask"]))
    assert inputs["target_input_ids"][3, -1] == EOT  # 49 ids + EOT
    # Text to image: captions as the input side, images as targets.
    reverse = processor(text=captions, target_images=pngs, task="retrieve", return_tensors="pt")
    assert torch.equal(reverse["input_ids"], goldens["image_text_retrieval/caption_ids"])
    assert torch.equal(reverse["target_pixel_values"], images(goldens, "clip_test"))


def test_glue_layouts(processor, golden_index, goldens):
    for case, task, pairs in (
        ("text_classification_sst2", "SST-2", False),
        ("text_pair_classification_rte", "RTE", True),
    ):
        info = golden_index["cases"][case]
        if pairs:
            inputs = processor.text_classification(task, [p[0] for p in info["pairs"]], [p[1] for p in info["pairs"]])
        else:
            inputs = processor.text_classification(task, info["sentences"])
        assert torch.equal(inputs["input_ids"], goldens[f"{case}/input_ids"])
        assert torch.equal(inputs["attention_mask"], keep(goldens[f"{case}/input_padding_mask"]))
        assert torch.equal(inputs["feature_index"], goldens[f"{case}/spe_index"])
        assert torch.equal(inputs["target_input_ids"], goldens[f"{case}/target_ids"])
        assert inputs["task"] == "text_mlm"


def test_masked_lm_layout(processor, golden_index, goldens):
    """The original's whole-word masking with `random.seed(3)`: same ids, masked positions and labels."""
    case = golden_index["cases"]["text_mlm"]
    corpus = case["corpus"]
    inputs = processor.masked_lm([corpus[0:2], corpus[1:3]], max_length=case["seq_len"], generator=random.Random(3))
    assert torch.equal(inputs["input_ids"], goldens["text_mlm/input_ids"])
    assert torch.equal(inputs["feature_index"], goldens["text_mlm/mlm_labels"] != -1)
    assert torch.equal(inputs["labels"], goldens["text_mlm/masked_targets"])
    assert inputs["attention_mask"].all() and inputs["task"] == "text_mlm"


def test_caption_training_layout(processor, pngs, golden_index, goldens):
    inputs = processor.caption_training(golden_index["cases"]["image_caption_train"]["captions"], images=pngs)
    assert torch.equal(inputs["pixel_values"], images(goldens, "clip_test"))
    assert torch.equal(inputs["input_ids"], goldens["image_caption_train/text_ids"])
    assert torch.equal(inputs["labels"], goldens["image_caption_train/train_targets"])
    golden_target = goldens["image_caption_train/target_idx"]
    assert torch.equal(inputs["feature_index"][:, 8:], golden_target != -1)
    # Text rows of the golden [L, L] mask (True = blocked) restricted to text keys, for the unpadded caption.
    text_visibility = ~goldens["image_caption_train/attn_mask_call0"][197:, 197:]
    assert torch.equal(inputs["attention_mask"][0].bool(), text_visibility)
    assert inputs["position_ids"][0].tolist() == list(range(8)) * 2 and inputs["task"] == "caption"


def test_video_classification_layout(processor, golden_index, goldens):
    frames = goldens["pre/video/frames_uint8_thwc"].numpy()
    class_names = golden_index["cases"]["video_classification"]["class_names"]
    inputs = processor(videos=frames, targets=class_names, labels=[2], return_tensors="pt")
    # The resize sums in an order that depends on the thread count: one thread lands 2e-7 from the golden views.
    torch.testing.assert_close(inputs["pixel_values"], goldens["pre/video/test_views"], atol=1e-6, rtol=0)  # 3 views
    assert torch.equal(inputs["target_input_ids"], goldens["video_classification/target_ids"])
    assert inputs["labels"].tolist() == [2, 2, 2] and inputs["task"] == "video_cls"


def test_vqa_layout(processor, pngs, golden_index, goldens):
    case = golden_index["cases"]["vqa"]
    inputs = processor.vqa(pngs, case["questions"], case["answers"])
    assert torch.equal(inputs["pixel_values"], images(goldens, "clip_test"))
    assert torch.equal(inputs["input_ids"], goldens["vqa/question_ids"])
    assert torch.equal(inputs["attention_mask"], keep(goldens["vqa/question_padding_mask"]))
    assert inputs["feature_index"].tolist() == [s["spe_index"] for s in case["samples"]]
    assert torch.equal(inputs["target_input_ids"], goldens["vqa/target_ids"])
    assert inputs["task"] == "downstream"


# -- the other layouts and their rules -------------------------------------------------------------------------

GLUE_EXAMPLES = {
    "sst2": ("A gripping, funny movie.", None),
    "cola": ("The book was written by him.", None),
    "rte": ("A man plays a guitar.", "A person makes music."),
    "mrpc": ("He said it was fine.", "He told us it was fine."),
    "qqp": ("How do I learn Python?", "What is the best way to learn Python."),
    "qnli": ("Where is the Eiffel tower.", "The Eiffel tower is in Paris."),
    "mnli": ("The cat sat on the mat.", "A cat is sitting."),
}


def expected_glue_ids(processor, task: str, first: str, second: str | None) -> tuple[list[int], int]:
    """The original `GLUE.py` recipe, written out string by string."""
    (encode_first,) = processor.encode([first])
    if task == "sst2":
        (ids,) = processor.encode([first + "  <|endoftext|> It is <|spe|>.   <|endoftext|>"])
        return ids, len(ids) - 3
    if task == "cola":
        (ids,) = processor.encode([first + " This is <|spe|>. <|endoftext|>"])
        return ids, len(ids) - 3
    middle = {
        "rte": " ? <|endoftext|> it is  ",
        "mrpc": " . ",
        "qqp": " <|endoftext|> ",
        "qnli": "  <|endoftext|> it is ",
        "mnli": "",
    }
    head = encode_first[:-1] if task != "mnli" and encode_first[-1] == 269 else encode_first
    head = head + processor.encode([middle[task]])[0]
    tail = processor.encode(["  <|spe|> , "])[0] + processor.encode([second + " <|endoftext|> "])[0]
    return head + tail, len(head)


@pytest.mark.parametrize("task", sorted(GLUE_EXAMPLES))
def test_glue_templates(processor, task):
    first, second = GLUE_EXAMPLES[task]
    inputs = processor.text_classification(task.upper(), first, second, labels=[1])
    ids, spe_index = expected_glue_ids(processor, task, first, second)
    assert inputs["input_ids"][0].tolist() == ids
    assert inputs["feature_index"].tolist() == [spe_index] and ids[spe_index] == SPE
    label_ids = processor.text_ids(list(GLUE_LABEL_WORDS[task]))
    assert inputs["target_input_ids"].shape[0] == len(label_ids) == (3 if task == "mnli" else 2)
    assert inputs["labels"].tolist() == [1]


def test_glue_names_and_truncation(processor):
    assert glue_task_key("MNLI_Match") == glue_task_key("mnli-mismatched") == "mnli"
    assert GLUE_LABEL_WORDS["sst2"] == ("bad", "wonderful") and GLUE_LABEL_WORDS["mnli"] == ("no", "maybe", "yes")
    long = " ".join(["word"] * 300)
    for task, second in (("rte", long), ("qnli", long), ("sst2", None)):
        inputs = processor.text_classification(task, long, second, max_length=64)
        ids = inputs["input_ids"][0]
        assert len(ids) == 64 and ids[inputs["feature_index"][0]] == SPE and ids[-1] == EOT
    rte = processor.text_classification("rte", long, long, max_length=64)
    assert rte["feature_index"].tolist() == [32]  # the second part takes half the length
    with pytest.raises(ValueError, match="task_name"):
        processor.text_classification("stsb", "a", "b")
    with pytest.raises(ValueError, match="second_sentences"):
        processor.text_classification("rte", "a sentence")
    with pytest.raises(ValueError, match="second_sentences"):
        processor.text_classification("sst2", "a", "b")
    with pytest.raises(ValueError, match="second_sentences"):
        processor.text_classification("rte", ["a", "b"], ["c"])


def test_truncation_keeps_the_last_id():
    assert truncate_keeping_last(list(range(10)), 4) == [0, 1, 2, 9]
    assert truncate_keeping_last([1, 2], 4) == [1, 2]
    assert truncate_keeping_last([1, 2, 3], None) == [1, 2, 3]


def test_vqa_rules(processor, pngs):
    long_question = "what " * 40 + "is it?"
    inputs = processor.vqa(pngs, [long_question, ""], ["yes", "no"])
    assert inputs["input_ids"][0].tolist() == processor.encode([long_question])[0][:21] + [SPE, EOT]
    assert inputs["input_ids"][1, :2].tolist() == [SPE, EOT]  # an empty question still has its slot
    assert inputs["feature_index"].tolist() == [21, 0]
    with pytest.raises(ValueError, match="questions"):
        processor.vqa(pngs, None)
    with pytest.raises(ValueError, match="questions"):
        processor.vqa(pngs, ["one question for two images"])


def test_masked_lm_rules(processor):
    """Whole words, about 15 % of them, 80 % `<SPE>` / 10 % random / 10 % kept, labels = original ids."""
    vocabulary = ["riverbank", "xoloitzcuintli", "antidisestablishment", "cat", "the", "photograph", "zebras"]
    words = [random.Random(i).choice(vocabulary) for i in range(2000)]
    text = " ".join(words)
    inputs = processor.masked_lm([text] * 4, max_length=100_000, generator=random.Random(0))
    original = torch.tensor([processor.encode([text])[0] + [EOT]] * 4)
    chosen = inputs["feature_index"]
    assert torch.equal(inputs["labels"], original[chosen])
    # Whole-word: a word of several sub-tokens ("riverbank" is "river" + "bank") is chosen with all of them or not.
    spans, position = [], 0
    for length in [len(ids) for ids in processor.encode(words)] + [1]:
        spans.append((position, position + length))
        position += length
    assert position == original.shape[1] and any(end - start > 1 for start, end in spans)
    for start, end in spans:
        assert (chosen[:, start:end] == chosen[:, start : start + 1]).all()
    fraction_chosen = chosen.float().mean().item()
    assert 0.13 < fraction_chosen < 0.17
    replaced = inputs["input_ids"][chosen]
    as_spe = (replaced == SPE).float().mean().item()
    kept = (replaced == original[chosen]).float().mean().item()
    assert 0.76 < as_spe < 0.84 and 0.07 < kept < 0.14
    assert (inputs["input_ids"][~chosen] == original[~chosen]).all()
    # Lines each end with EOT; the cut keeps the last id.
    short = processor.masked_lm([["one line", "two lines"]], max_length=3, mask_probability=0.0)
    one, two = processor.encode(["one line", "two lines"])
    assert len(one + two) + 2 > 3 and short["input_ids"].tolist() == [one[:2] + [EOT]]
    assert short["labels"].numel() == 0


def test_caption_rules(processor, pngs, goldens):
    long_caption = "word " * 80
    inputs = processor.caption_training([long_caption, "a cat"], images=pngs)
    assert inputs["input_ids"].shape == (2, 100)  # 49 words + EOT, then 50 <SPE>
    assert inputs["input_ids"][0, 49] == EOT and (inputs["input_ids"][0, 50:] == SPE).all()
    assert inputs["labels"].shape == (50 + 3,)
    text_only = processor.caption_training("a cat")
    assert "pixel_values" not in text_only and text_only["task"] == "text_caption"
    video = processor.caption_training(["a video"], videos=goldens["pre/video/frames_uint8_thwc"].numpy())
    torch.testing.assert_close(video["pixel_values"][0], goldens["pre/video/test_views"][1], atol=1e-6, rtol=0)


def test_plain_inputs(processor, pngs, goldens):
    assert set(processor(images=pngs)) == {"pixel_values"}
    frames = goldens["pre/video/frames_uint8_thwc"].numpy()
    video = processor(videos=frames, return_tensors="pt")
    assert set(video) == {"pixel_values"} and video["pixel_values"].shape == (3, 8, 3, 224, 224)
    single = processor(videos=frames, num_spatial_crops=1, return_tensors="pt")
    assert single["pixel_values"].shape == (1, 8, 3, 224, 224)
    text = processor(text=["A cat", "a dog and a bird"], return_tensors="pt")
    assert text["input_ids"].tolist() == [[320, 2368, EOT, 0, 0, 0], [320, 1929, 537, 320, 3329, EOT]]
    assert text["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    mixed_sizes = processor(
        images=[pngs[0], Image.new("RGB", (5, 700)), np.zeros((3, 3, 3), np.uint8)], return_tensors="pt"
    )
    assert mixed_sizes["pixel_values"].shape == (3, 3, 224, 224)
    assert processor(images=pngs, text=["q one", "q two"], targets=["a"])["task"] == "downstream"


def test_return_tensors_follows_transformers(processor, pngs):
    """`processor(...)` returns lists by default, as transformers' processors; the layout methods tensors."""
    plain = processor(images=pngs[:1], text=["a cat"], targets=["cat", "a dog"], labels=[1])
    assert plain["input_ids"] == [[320, 2368, EOT]] and plain["target_attention_mask"] == [[1, 1, 0], [1, 1, 1]]
    assert plain["labels"] == [1] and isinstance(plain["pixel_values"], list)
    assert plain["pixel_values"][0].shape == (3, 224, 224) and isinstance(plain["pixel_values"][0], np.ndarray)
    as_numpy = processor(images=pngs[:1], text=["a cat"], task="downstream", return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray) and as_numpy["pixel_values"].shape == (1, 3, 224, 224)
    assert isinstance(processor.vqa(pngs[:1], ["what?"])["input_ids"], torch.Tensor)
    assert processor.vqa(pngs[:1], ["what?"], return_tensors=None)["feature_index"] == [2]  # what ? <SPE> EOT
    assert isinstance(processor.masked_lm(["a b c"], return_tensors="np")["input_ids"], np.ndarray)


def test_standard_keyword_arguments_route_to_their_component(processor, pngs, goldens):
    texts = ["a cat", "a big black dog"]
    flat = processor(text=texts, max_length=3, padding="max_length", return_tensors="pt")
    nested = processor(
        text=texts, text_kwargs={"max_length": 3, "padding": "max_length"}, common_kwargs={"return_tensors": "pt"}
    )
    assert flat["input_ids"].tolist() == nested["input_ids"].tolist() == [[320, 2368, EOT], [320, 1205, EOT]]
    padded = processor(text=texts, max_length=6, padding="max_length")
    assert padded["input_ids"][0] == [320, 2368, EOT, 0, 0, 0] and len(padded["attention_mask"][1]) == 6
    whole = processor(text=texts, max_length=3, truncation=False, padding=False)
    assert [len(ids) for ids in whole["input_ids"]] == [3, 5]
    # Image and video options, flat or nested: `preset`, `do_normalize`, `num_spatial_crops`, ...
    clip = processor(images=pngs, preset="clip", return_tensors="pt")["pixel_values"]
    assert torch.equal(
        clip, processor(images=pngs, images_kwargs={"preset": "clip"}, return_tensors="pt")["pixel_values"]
    )
    raw = processor(images=pngs, do_normalize=False, return_tensors="pt")["pixel_values"]
    assert raw.min() >= 0 and raw.max() <= 1
    frames = goldens["pre/video/frames_uint8_thwc"].numpy()
    video = processor(
        videos=frames, videos_kwargs={"num_spatial_crops": 1, "do_normalize": False}, return_tensors="pt"
    )
    assert video["pixel_values"].shape == (1, 8, 3, 224, 224) and video["pixel_values"].min() >= 0
    with pytest.raises(ValueError, match="passed two times"):
        processor(text=texts, max_length=3, text_kwargs={"max_length": 4})
    assert isinstance(processor(text=texts, text_kwargs={}, return_tensors="pt")["input_ids"], torch.Tensor)


def test_vocabulary_targets(processor):
    targets = processor.vocabulary_targets()
    assert targets["target_input_ids"].shape == (49411, 2)
    assert targets["target_input_ids"][320].tolist() == [320, EOT] and targets["target_attention_mask"].all()


def still_image(tmp_path):
    path = tmp_path / "still.png"
    Image.new("RGB", (40, 30)).save(path)
    return str(path)


# (call(processor, images, tmp_path), error type, regex naming the argument)
BAD_PROCESSOR_CALLS = {
    "nothing": (lambda p, im, tmp: p(), ValueError, "images"),
    "all None": (lambda p, im, tmp: p(text=None, images=None), ValueError, "images"),
    "images and videos": (
        lambda p, im, tmp: p(images=im, videos=np.zeros((8, 8, 8, 3), np.uint8)),
        ValueError,
        "videos",
    ),
    "text not a string": (lambda p, im, tmp: p(text=["a", 3]), ValueError, "text"),
    "text empty list": (lambda p, im, tmp: p(text=[]), ValueError, "text"),
    "text blank": (lambda p, im, tmp: p(text=["a", "  "]), ValueError, "`text` item 1 is an empty string"),
    "text count": (lambda p, im, tmp: p(images=im, text=["only one"], task="downstream"), ValueError, "text"),
    "targets None item": (lambda p, im, tmp: p(images=im, targets=["cat", None]), ValueError, "targets"),
    "targets empty": (lambda p, im, tmp: p(images=im, targets=[]), ValueError, "targets"),
    "targets blank": (lambda p, im, tmp: p(images=im, targets=["cat", ""]), ValueError, "`targets` item 1"),
    "labels count": (lambda p, im, tmp: p(images=im, targets=["cat"], labels=[0]), ValueError, "labels"),
    "labels beyond targets": (
        lambda p, im, tmp: p(images=im, targets=["a", "b"], labels=[0, 2]),
        ValueError,
        "`labels` must be at least 0 and at most 1",
    ),
    "labels negative": (lambda p, im, tmp: p(images=im, targets=["a", "b"], labels=[-1, 0]), ValueError, "`labels`"),
    "labels float": (lambda p, im, tmp: p(images=im, targets=["a", "b"], labels=[0.5, 1]), TypeError, "`labels`"),
    "labels string": (lambda p, im, tmp: p(images=im, targets=["a", "b"], labels="01"), TypeError, "`labels`"),
    "image 0 pixels": (lambda p, im, tmp: p(images=[Image.new("RGB", (0, 0))]), ValueError, "images"),
    "image NaN": (lambda p, im, tmp: p(images=np.full((4, 4, 3), np.nan, np.float32)), ValueError, "images"),
    "image extreme aspect": (
        lambda p, im, tmp: p(images=Image.new("RGB", (100_000, 2))),
        ValueError,
        "`images`.*MAX_RESIZED_PIXELS",
    ),
    "image missing file": (lambda p, im, tmp: p(images=str(tmp / "missing.png")), ValueError, "images"),
    "images empty list": (lambda p, im, tmp: p(images=[]), ValueError, "images"),
    "video missing file": (lambda p, im, tmp: p(videos=str(tmp / "missing.mp4")), ValueError, "videos"),
    "video is a still image": (lambda p, im, tmp: p(videos=still_image(tmp)), ValueError, "`videos`.*still image"),
    "video extreme aspect": (
        lambda p, im, tmp: p(videos=np.zeros((8, 2, 40_000, 3), np.uint8)),
        ValueError,
        "`videos`.*MAX_RESIZED_PIXELS",
    ),
    "return_tensors": (
        lambda p, im, tmp: p(images=im, return_tensors="tf"),
        ValueError,
        "tf is not a valid TensorType",
    ),
    "padding max_length": (lambda p, im, tmp: p(text="a", padding="max_length"), ValueError, "max_length"),
    "unpadded tensors": (
        lambda p, im, tmp: p(text=["a", "a b c"], padding=False, return_tensors="pt"),
        ValueError,
        "padding",
    ),
    "captions None": (lambda p, im, tmp: p.caption_training(None, images=im), ValueError, "captions"),
    "caption max_length": (lambda p, im, tmp: p.caption_training(["a cat"], max_length=1), ValueError, "max_length"),
    "texts item": (lambda p, im, tmp: p.masked_lm([["line", 5]]), ValueError, "texts"),
    "mask_probability above 1": (
        lambda p, im, tmp: p.masked_lm(["a b"], mask_probability=1.5),
        ValueError,
        "mask_probability",
    ),
    "mask_probability NaN": (
        lambda p, im, tmp: p.masked_lm(["a b"], mask_probability=float("nan")),
        ValueError,
        "mask_probability",
    ),
    "masked_lm max_length": (lambda p, im, tmp: p.masked_lm(["a b"], max_length=1), ValueError, "max_length"),
    "questions None": (lambda p, im, tmp: p.vqa(im, None), ValueError, "questions"),
    "vqa max_length": (lambda p, im, tmp: p.vqa(im, ["q", "q"], max_length=1), ValueError, "max_length"),
    "vqa max_length type": (lambda p, im, tmp: p.vqa(im, ["q", "q"], max_length="23"), TypeError, "max_length"),
    "vqa labels beyond answers": (
        lambda p, im, tmp: p.vqa(im, ["q", "q"], ["yes"], labels=[0, 1]),
        ValueError,
        "`labels`.*at most 0",
    ),
    "glue task name": (lambda p, im, tmp: p.text_classification("imdb", ["a"]), ValueError, "task_name"),
    "glue pair missing": (lambda p, im, tmp: p.text_classification("rte", ["a"]), ValueError, "second_sentences"),
    "glue labels": (lambda p, im, tmp: p.text_classification("sst2", ["a", "b"], labels=[0, 2]), ValueError, "labels"),
    "glue max_length": (
        lambda p, im, tmp: p.text_classification("sst2", ["a"], max_length=3),
        ValueError,
        "max_length",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PROCESSOR_CALLS))
def test_bad_input(processor, pngs, tmp_path, case):
    call, error, pattern = BAD_PROCESSOR_CALLS[case]
    with pytest.raises(error, match=pattern):
        call(processor, pngs, tmp_path)


def test_blank_texts_in_task_layouts_are_the_originals_eot(processor):
    """The task layouts keep the original's rule: a blank text is EOT alone (training data has them)."""
    assert processor.caption_training(["", " "])["input_ids"][:, 0].tolist() == [EOT, EOT]
    assert processor.vqa(None, [""])["input_ids"].tolist() == [[SPE, EOT]]


def random_image(rng: random.Random):
    """An image of random kind (PIL mode, NumPy or torch), layout, size (0-70 px a side), dtype and values."""
    height, width = rng.choice([0, 1, 3, 70]), rng.choice([0, 1, 5, 64])
    channels = rng.choice([None, 1, 2, 3, 4])
    shape = (height, width) if channels is None else rng.choice([(height, width, channels), (channels, height, width)])
    array = np.random.default_rng(rng.randrange(2**32)).normal(0.5, rng.choice([0.1, 100]), shape)
    if rng.random() < 0.2 and array.size:
        array.flat[0] = rng.choice([np.nan, np.inf])
    dtype = rng.choice([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_])
    with np.errstate(invalid="ignore", over="ignore"):
        array = array.astype(dtype)
    kind = rng.choice(["numpy", "torch", "pil"])
    if kind == "torch":
        return torch.from_numpy(np.ascontiguousarray(array))
    if kind == "pil" and dtype == np.uint8 and channels in (None, 3, 4) and shape[-1] == (channels or width):
        return Image.fromarray(array)
    return array


def test_random_inputs_give_the_documented_outputs_or_a_clear_error(processor):
    """Property: random images, texts and targets give finite `pixel_values` `[B, 3, 224, 224]` and ids inside the
    vocabulary, or raise ValueError / TypeError (never another error)."""
    rng, outcomes = random.Random(0), {"ok": 0, "refused": 0}
    words = ["a", "", " ", "cat", "\u00e9t\u00e9", "&amp;", "<|spe|>", "x" * 300, "\x00", "\U0001f600"]
    for _ in range(60):
        kwargs = {}
        if rng.random() < 0.7:
            kwargs["images"] = [random_image(rng) for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.5:
            kwargs["text"] = rng.choice([rng.choice(words), [rng.choice(words) for _ in range(rng.randint(0, 2))], 7])
        if rng.random() < 0.6:
            kwargs["targets"] = rng.choice([rng.choice(words), [rng.choice(words) for _ in range(rng.randint(0, 3))]])
        try:
            inputs = processor(**kwargs, return_tensors="pt")
        except (ValueError, TypeError):
            outcomes["refused"] += 1
            continue
        outcomes["ok"] += 1
        if "pixel_values" in inputs:
            pixels = inputs["pixel_values"]
            assert pixels.shape[1:] == (3, 224, 224) and torch.isfinite(pixels).all(), kwargs
        for key in ("input_ids", "target_input_ids"):
            if key in inputs:
                assert inputs[key].min() >= 0 and inputs[key].max() < len(processor.tokenizer), kwargs
    assert outcomes["ok"] and outcomes["refused"], outcomes


def test_save_and_load(processor, tmp_path, pngs):
    from transformers import AutoProcessor
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert config["auto_map"]["AutoProcessor"] == "processing_uniperceiver.UniPerceiverProcessor"
    assert {"image_processor", "video_processor"} <= set(config)
    for loaded in (UniPerceiverProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is UniPerceiverProcessor
        expected = processor.vqa(pngs, ["what is it?", "and this?"], ["a cat"])
        actual = loaded.vqa(pngs, ["what is it?", "and this?"], ["a cat"])
        assert all(torch.equal(actual[k], expected[k]) for k in expected if k != "task")
        assert loaded.to_dict() == processor.to_dict() and "auto_map" in loaded.to_dict()
    # The real Auto class (`transformers.AutoVideoProcessor` is a torchvision placeholder) finds the video processor
    # for the requested backend: transformers 5.25's default "torchvision" and "pil" alike.
    for backend in ("torchvision", "pil"):
        video_processor = AutoVideoProcessor.from_pretrained(tmp_path, backend=backend)
        assert type(video_processor) is UniPerceiverVideoProcessor
        assert video_processor.to_dict() == processor.video_processor.to_dict()
    # Keyword arguments of `from_pretrained` reach the image and video processors.
    raw = UniPerceiverProcessor.from_pretrained(tmp_path, do_normalize=False)
    assert not raw.image_processor.do_normalize and not raw.video_processor.do_normalize


def test_remote_code_in_a_fresh_process(processor, tmp_path, pngs, golden_dir):
    """`trust_remote_code=True` loads the saved copies of our files (not the installed package) and gives the
    same tensors."""
    processor.save_pretrained(tmp_path)
    image = golden_dir / "synthetic_0_gradient_320x240.png"
    script = f"""
import json, torch
from transformers import AutoProcessor, AutoTokenizer
processor = AutoProcessor.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
inputs = processor.vqa([{str(image)!r}], ["What &amp; where?"], ["red"])
print(json.dumps({{
    "classes": [type(processor).__module__, type(tokenizer).__module__, type(processor.video_processor).__module__],
    "input_ids": inputs["input_ids"].tolist(),
    "pixel_sum": float(inputs["pixel_values"].double().sum()),
}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(module.startswith("transformers_modules.") for module in report["classes"])
    expected = processor.vqa([str(image)], ["What &amp; where?"], ["red"])
    assert report["input_ids"] == expected["input_ids"].tolist()
    assert report["pixel_sum"] == pytest.approx(float(expected["pixel_values"].double().sum()), abs=1e-6)


def test_the_clip_form_call_gives_two_independent_batches(processor, pngs):
    """`processor(text=labels, images=images)` (CLIP's form) gives the texts and the images as two batches of any
    sizes (what `AutoModelForZeroShotImageClassification` reads), encoded as candidates and `img_cls` images; with
    `task=` the same call still builds fused sequences."""
    inputs = processor(text=["a cat", "a dog", "a car"], images=pngs, padding=True, return_tensors="pt")
    assert inputs["pixel_values"].shape[0] == 2 and inputs["input_ids"].shape[0] == 3 and "task" not in inputs
    as_targets = processor(images=pngs, targets=["a cat", "a dog", "a car"], return_tensors="pt")
    assert torch.equal(inputs["input_ids"], as_targets["target_input_ids"])
    assert torch.equal(inputs["pixel_values"], as_targets["pixel_values"])
    fused = processor(text=["a cat", "a dog"], images=pngs, task="downstream", return_tensors="pt")
    assert fused["input_ids"].shape[0] == 2 and fused["task"] == "downstream"


def test_truncation_cuts_to_the_model_max_length(processor):
    assert processor.tokenizer.model_max_length == 512  # the released text position table
    long_text = " ".join(["word"] * 600)
    cut = processor(text=[long_text, "a cat"], truncation=True, return_tensors="pt")
    assert cut["input_ids"].shape == (2, 512) and cut["input_ids"][0, -1].item() == EOT  # the final EOT is kept
    assert len(processor(text=[long_text])["input_ids"][0]) == 601  # no truncation unless asked
