"""`pipeline("zero-shot-perception")`: layouts per modality, golden numbers, batching, caching and bad input."""

import textwrap

import numpy as np
import pytest
import torch
from conftest import TINY_CONFIG, run_without_package
from PIL import Image
from transformers import pipeline

from uniperceiver_hf import (
    UniPerceiverConfig,
    UniPerceiverImageProcessor,
    UniPerceiverModel,
    UniPerceiverProcessor,
    pipeline_uniperceiver,
)
from uniperceiver_hf.pipeline_uniperceiver import ZeroShotPerceptionPipeline, input_kind, save_for_pipeline
from uniperceiver_hf.targets_uniperceiver import TargetSet


@pytest.fixture(scope="module")
def golden_pipe(golden_model_dirs):
    model = UniPerceiverModel.from_pretrained(golden_model_dirs["plain"]).eval()
    return pipeline("zero-shot-perception", model=model, processor=UniPerceiverProcessor())


def make_tiny_pipe():
    """A random tiny model at the processor's 224 px and 8 frames."""
    torch.manual_seed(0)
    config = UniPerceiverConfig(**{**TINY_CONFIG, "image_size": 224, "num_frames": 8, "max_position_embeddings": 64})
    return pipeline("zero-shot-perception", model=UniPerceiverModel(config).eval(), processor=UniPerceiverProcessor())


@pytest.fixture
def tiny_pipe():
    return make_tiny_pipe()


@pytest.fixture(scope="module")
def shared_tiny_pipe():
    """`tiny_pipe` built once per module, for calls that must leave it unchanged (bad input)."""
    return make_tiny_pipe()


def png(golden_dir, index):
    return str(sorted(golden_dir.glob("synthetic_*.png"))[index])


def scores_in_order(result, labels):
    by_label = {entry["label"]: entry["score"] for entry in result}
    return torch.tensor([by_label[label] for label in labels])


def test_image_classification_reproduces_the_golden_probabilities(golden_pipe, golden_dir, goldens, golden_index):
    case = golden_index["cases"]["image_classification"]
    results = golden_pipe([png(golden_dir, 0), Image.open(png(golden_dir, 1))], candidate_labels=case["class_names"])
    expected = goldens["image_classification/logits"].softmax(-1)
    for result, row in zip(results, expected):
        torch.testing.assert_close(scores_in_order(result, case["class_names"]), row, atol=1e-5, rtol=1e-4)
        assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)


def test_vqa_and_text_classification_reproduce_golden_probabilities(golden_pipe, golden_dir, goldens, golden_index):
    vqa = golden_index["cases"]["vqa"]
    inputs = [{"image": png(golden_dir, i), "question": q} for i, q in enumerate(vqa["questions"])]
    for result, row in zip(golden_pipe(inputs, candidate_labels=vqa["answers"]), goldens["vqa/logits"].softmax(-1)):
        torch.testing.assert_close(scores_in_order(result, vqa["answers"]), row, atol=1e-5, rtol=1e-4)

    sst2 = golden_index["cases"]["text_classification_sst2"]
    results = golden_pipe(sst2["sentences"], glue_task="SST-2")
    for result, row in zip(results, goldens["text_classification_sst2/logits"].softmax(-1)):
        torch.testing.assert_close(scores_in_order(result, sst2["label_words"]), row, atol=1e-5, rtol=1e-4)

    rte = golden_index["cases"]["text_pair_classification_rte"]
    results = golden_pipe([tuple(pair) for pair in rte["pairs"]])  # pairs default to the RTE template
    for result, row in zip(results, goldens["text_pair_classification_rte/logits"].softmax(-1)):
        torch.testing.assert_close(scores_in_order(result, rte["label_words"]), row, atol=1e-5, rtol=1e-4)


def test_video_views_average_probabilities(tiny_pipe, video_path):
    labels = ["a", "b", "c"]
    result = tiny_pipe(str(video_path), candidate_labels=labels)
    model, processor = tiny_pipe.model, tiny_pipe.processor
    layout = processor(videos=[str(video_path)], targets=labels, return_tensors="pt")
    assert layout["pixel_values"].shape == (3, 8, 3, 224, 224)  # three spatial crops, one row each
    with torch.no_grad():
        logits = model(**layout).logits
    torch.testing.assert_close(scores_in_order(result, labels), logits.softmax(-1).mean(0), atol=1e-5, rtol=1e-4)


def test_one_model_call_per_batch_and_cached_candidates(tiny_pipe, monkeypatch):
    calls = []
    original = UniPerceiverModel.get_features

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("is_target", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UniPerceiverModel, "get_features", counting)
    images = [np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8) for i in range(3)]
    first = tiny_pipe(images, candidate_labels=["cat", "dog"])
    assert calls.count(False) == 1 and calls.count(True) == 1
    calls.clear()
    second = tiny_pipe(images, candidate_labels=["cat", "dog"])
    assert calls == [False]  # the label features come from the cache
    assert first == second
    calls.clear()
    tiny_pipe(images, candidate_labels=["dog", "cat"])  # other tokens: encoded again
    assert calls.count(True) == 1


def test_tiny_images_against_manual_model_call(tiny_pipe):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    result = tiny_pipe(image, candidate_labels=["red", "green", "blue"], hypothesis_template=["a {}", "the {} one"])
    processor, model = tiny_pipe.processor, tiny_pipe.model
    pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        features = model.get_features(pixel_values=pixels)
        ensemble = torch.stack(
            [
                TargetSet.encode(
                    model,
                    **{
                        k.removeprefix("target_"): v
                        for k, v in processor.target_inputs(
                            [template.format(c) for c in ["red", "green", "blue"]]
                        ).items()
                    },
                ).embeds
                for template in ["a {}", "the {} one"]
            ]
        ).mean(0)
        expected = features @ torch.nn.functional.normalize(ensemble, dim=-1).T * model.head.logit_scales("img_cls")
    torch.testing.assert_close(
        scores_in_order(result, ["red", "green", "blue"]), expected.softmax(-1)[0], atol=1e-5, rtol=1e-4
    )


def test_image_candidates_and_per_input_lists(tiny_pipe):
    rng = np.random.default_rng(1)
    exemplars = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(3)]
    result = tiny_pipe(exemplars[0], candidate_images=exemplars, candidate_names=["zero", "one", "two"])
    assert {r["label"] for r in result} == {"zero", "one", "two"}
    text_query = tiny_pipe("a photo", candidate_images=exemplars, top_k=2)
    assert len(text_query) == 2 and all(isinstance(r["label"], int) for r in text_query)
    pil = tiny_pipe("a photo", candidate_images=[Image.fromarray(e) for e in exemplars])
    assert sorted(r["label"] for r in pil) == [0, 1, 2]  # PIL candidates are labelled by their index
    per_input = tiny_pipe(["first text", "second text"], candidate_labels=[["a", "b"], ["c", "d", "e"]])
    assert [len(r) for r in per_input] == [2, 3] and {r["label"] for r in per_input[1]} == {"c", "d", "e"}


def test_one_candidate_scores_one(tiny_pipe):
    assert tiny_pipe("some text", candidate_labels=["only"]) == [{"label": "only", "score": 1.0}]


def unfingerprinted_set():
    return TargetSet(torch.nn.functional.normalize(torch.randn(2, 32), dim=-1), ["a", "b"])


# (call(pipe), regex naming the argument); every one is a ValueError.
BAD_PIPELINE_CALLS = {
    "no labels": (lambda pipe: pipe("a text", candidate_labels=[]), "non-empty"),
    "only commas": (lambda pipe: pipe("a text", candidate_labels=" , ,"), "candidate_labels.*non-empty"),
    "duplicate labels": (lambda pipe: pipe("a text", candidate_labels=["a", "a"]), "duplicates"),
    "blank label": (lambda pipe: pipe("a text", candidate_labels=["a", " "]), "candidate_labels.*empty label"),
    "mixed modalities": (
        lambda pipe: pipe("a text", candidate_labels=["a", np.zeros((8, 8, 3), np.uint8)]),
        "share one modality",
    ),
    "two kinds of candidates": (
        lambda pipe: pipe("a", candidate_labels=["a"], candidate_images=[np.zeros((8, 8, 3))]),
        "exactly one",
    ),
    "no candidates": (lambda pipe: pipe("a text"), "exactly one"),
    "template without {}": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template="a photo of"),
        "hypothesis_template",
    ),
    "template with two {}": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template="{} or {}"),
        "hypothesis_template.*exactly one",
    ),
    "template named field": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template="a {label}"),
        "hypothesis_template",
    ),
    "template indexed field": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template="a {0} {1}"),
        "hypothesis_template",
    ),
    "template unbalanced brace": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template="a {} {"),
        "hypothesis_template",
    ),
    "template not a string": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template=["{}", 5]),
        "hypothesis_template",
    ),
    "template empty list": (
        lambda pipe: pipe("a", candidate_labels=["a", "b"], hypothesis_template=[]),
        "hypothesis_template",
    ),
    "top_k zero": (lambda pipe: pipe("a text", candidate_labels=["a", "b"], top_k=0), "top_k"),
    "top_k string": (lambda pipe: pipe("a text", candidate_labels=["a", "b"], top_k="2"), "top_k"),
    "candidate_set type": (lambda pipe: pipe("a text", candidate_set=["a", "b"]), "candidate_set"),
    "candidate_set unfingerprinted": (lambda pipe: pipe("a text", candidate_set=unfingerprinted_set()), "fingerprint"),
    "candidate_names length": (
        lambda pipe: pipe("a text", candidate_labels=["a", "b"], candidate_names=["x"]),
        "candidate_names",
    ),
    "unknown scale": (lambda pipe: pipe("a text", candidate_labels=["a", "b"], logit_scale_task="nope"), "task"),
    "empty text": (lambda pipe: pipe("  ", candidate_labels=["a", "b"]), "empty"),
    "empty batch": (lambda pipe: pipe([], candidate_labels=["a"]), "empty list"),
    "fill_mask top_k zero": (lambda pipe: pipe.fill_mask("a <|spe|> .", top_k=0), "top_k"),
    "fill_mask top_k beyond the vocabulary": (lambda pipe: pipe.fill_mask("a <|spe|> .", top_k=49412), "top_k.*49411"),
    "fill_mask without a mask": (lambda pipe: pipe.fill_mask("no mask here"), "text"),
}


@pytest.mark.parametrize("case", list(BAD_PIPELINE_CALLS))
def test_bad_input(shared_tiny_pipe, case):
    call, pattern = BAD_PIPELINE_CALLS[case]
    with pytest.raises(ValueError, match=pattern):
        call(shared_tiny_pipe)


def test_comma_separated_labels_are_split_as_in_zero_shot_classification(tiny_pipe):
    result = tiny_pipe("a text", candidate_labels="cat, dog ,bird")
    assert sorted(entry["label"] for entry in result) == ["bird", "cat", "dog"]


def test_corrupt_image_in_a_batch_names_the_item(tiny_pipe, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    good = np.zeros((20, 20, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="item 1"):
        tiny_pipe([good, str(broken)], candidate_labels=["a", "b"])
    with pytest.raises(ValueError, match="empty list"):
        tiny_pipe([], candidate_labels=["a"])


def test_input_kinds(tmp_path):
    image_file = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(image_file)
    assert input_kind(str(image_file)) == "image" and input_kind("a cat") == "text"
    assert input_kind(("a", "b")) == "text_pair" and input_kind({"image": image_file, "question": "?"}) == "vqa"
    assert input_kind(np.zeros((8, 4, 4, 3))) == "video" and input_kind([Image.new("RGB", (4, 4))] * 2) == "video"
    with pytest.raises(ValueError, match="empty"):
        input_kind("   ")
    with pytest.raises(ValueError, match="dict input"):
        input_kind({"picture": 1})


def test_caption_and_fill_mask(tiny_pipe):
    image = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    captions = tiny_pipe.caption([image, image], max_new_tokens=4)
    # The same image twice: the same words, and scores equal up to the batch rows' float rounding.
    assert len(captions) == 2 and isinstance(captions[0]["generated_text"], str)
    assert captions[0]["generated_text"] == captions[1]["generated_text"]
    assert captions[0]["score"] == pytest.approx(captions[1]["score"], abs=1e-5)
    filled = tiny_pipe.fill_mask("a <|spe|> on the <|spe|> .", top_k=3)
    assert len(filled) == 2 and all(len(row) == 3 for row in filled)
    assert filled[0][0]["score"] >= filled[0][1]["score"]
    with pytest.raises(ValueError, match="<\\|spe\\|>"):
        tiny_pipe.fill_mask("no mask here")


REMOTE = textwrap.dedent(
    """
    import sys, json
    from transformers import pipeline
    image, results = sys.argv[1], []
    for index, folder in enumerate(sys.argv[2:]):
        # The one name users type, and (once) the folder's declared task inferred without a name.
        for task in ("zero-shot-perception",) + ((None,) if index == 0 else ()):
            pipe = pipeline(task, model=folder, trust_remote_code=True)
            results.append(pipe(image, candidate_labels=["tench", "goldfish", "kite"]))
    print(json.dumps(results))
    """
)


def test_every_save_route_runs_the_pipeline_with_and_without_the_package(
    golden_pipe, golden_dir, tmp_path, golden_model_dirs, monkeypatch
):
    image = png(golden_dir, 0)
    expected = golden_pipe(image, candidate_labels=["tench", "goldfish", "kite"])
    folders = {
        "converter": golden_model_dirs["plain"],
        "save_for_pipeline": tmp_path / "saved",
        "pipe.save_pretrained": tmp_path / "pipe",
        "model.save_pretrained": tmp_path / "model",
        "push_to_hub": tmp_path / "pushed",
    }
    save_for_pipeline(golden_pipe.model, golden_pipe.processor, folders["save_for_pipeline"])
    golden_pipe.save_pretrained(folders["pipe.save_pretrained"])
    golden_pipe.model.save_pretrained(folders["model.save_pretrained"])  # weights only: the folder is still complete
    # `push_to_hub` saves into a temporary folder and uploads it: the upload is redirected to a local copy here.
    from transformers.utils import hub

    monkeypatch.setattr(
        hub,
        "hf_api",
        lambda: type("Api", (), {"create_repo": lambda *a, **k: type("Repo", (), {"repo_id": "me/model"})})(),
    )
    monkeypatch.setattr(
        type(golden_pipe.model),
        "_upload_modified_files",
        lambda self, work_dir, *a, **k: __import__("shutil").copytree(work_dir, folders["push_to_hub"]),
    )
    golden_pipe.model.push_to_hub("me/model")
    for name, folder in folders.items():
        local = pipeline("zero-shot-perception", model=str(folder))  # the package imported: no remote code needed
        assert isinstance(local, ZeroShotPerceptionPipeline), name
        assert local(image, candidate_labels=["tench", "goldfish", "kite"]) == expected, name

    remote_folders = [
        folders[name] for name in ("model.save_pretrained", "converter", "pipe.save_pretrained", "push_to_hub")
    ]  # `save_for_pipeline` is the model's save too
    stdout = run_without_package(REMOTE, image, *remote_folders, tmp_path=tmp_path)
    for remote in __import__("json").loads(stdout.strip().splitlines()[-1]):
        assert [r["label"] for r in remote] == [r["label"] for r in expected]
        torch.testing.assert_close(
            torch.tensor([r["score"] for r in remote]), torch.tensor([r["score"] for r in expected])
        )


def test_a_model_object_finds_its_processor(tiny_config, tmp_path):
    config = UniPerceiverConfig(**{**tiny_config.to_diff_dict(), "max_position_embeddings": 64})
    processor = UniPerceiverProcessor(image_processor=UniPerceiverImageProcessor(image_size=32, do_normalize=False))
    save_for_pipeline(UniPerceiverModel(config).eval(), processor, tmp_path)
    from_folder = pipeline("zero-shot-perception", model=UniPerceiverModel.from_pretrained(tmp_path))
    assert from_folder.processor.image_processor.do_normalize is False  # the saved one, not a default
    in_memory = pipeline("zero-shot-perception", model=UniPerceiverModel(config).eval())
    assert in_memory.processor.image_processor.crop_size["height"] == 32  # built for the model's config
    assert len(in_memory(np.zeros((40, 40, 3), np.uint8), candidate_labels=["a", "b"])) == 2


def test_candidate_set_saved_and_reused(tiny_pipe, tmp_path, tiny_config):
    labels = ["red", "green", "blue"]
    targets = tiny_pipe.processor.target_inputs(labels)
    target_set = TargetSet.encode(
        tiny_pipe.model, targets["target_input_ids"], targets["target_attention_mask"], labels=labels
    )
    target_set.save(tmp_path / "colours.safetensors")
    image = np.random.default_rng(5).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    from_file = tiny_pipe(image, candidate_set=TargetSet.load(tmp_path / "colours.safetensors", tiny_pipe.model))
    from_labels = tiny_pipe(image, candidate_labels=labels)
    torch.testing.assert_close(scores_in_order(from_file, labels), scores_in_order(from_labels, labels))
    other = UniPerceiverModel(UniPerceiverConfig(**{**tiny_pipe.model.config.to_diff_dict()})).eval()
    with pytest.raises(ValueError, match="encoded by model"):
        pipeline("zero-shot-perception", model=other, processor=tiny_pipe.processor)(image, candidate_set=target_set)


def test_shared_candidate_images_are_preprocessed_once_per_call(tiny_pipe, monkeypatch):
    processor = tiny_pipe.processor.image_processor
    calls = []
    original = type(processor).__call__
    monkeypatch.setattr(type(processor), "__call__", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    exemplars = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(2)]
    results = tiny_pipe(["one", "two", "three"], candidate_images=exemplars)
    assert len(results) == 3 and len(calls) == 2  # one per candidate image, not per input and candidate


def count_input_batches(monkeypatch) -> list[int]:
    """Patches `get_features` to record the batch size of every input-side call."""
    sizes = []
    original = UniPerceiverModel.get_features

    def counting(self, *args, **kwargs):
        if not kwargs.get("is_target", False):
            sizes.append(next(v for v in kwargs.values() if torch.is_tensor(v)).shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UniPerceiverModel, "get_features", counting)
    return sizes


def assert_same_results(results, expected):
    """The same scores per input and label, to float tolerance (batch sizes differ)."""
    assert len(results) == len(expected)
    for result, reference in zip(results, expected):
        labels = [r["label"] for r in reference]
        torch.testing.assert_close(scores_in_order(result, labels), scores_in_order(reference, labels))


def test_batch_size_bounds_each_model_call_and_streams_keep_input_order(tiny_pipe, monkeypatch, capsys):
    datasets = pytest.importorskip("datasets")
    from transformers.pipelines.pt_utils import KeyDataset

    images = [np.random.default_rng(i).integers(0, 255, (36, 44, 3), dtype=np.uint8) for i in range(5)]
    labels = ["cat", "dog", "car"]
    expected = tiny_pipe(images, candidate_labels=labels)
    sizes = count_input_batches(monkeypatch)
    assert_same_results(tiny_pipe(images, candidate_labels=labels, batch_size=2), expected)
    assert sizes == [2, 2, 1]
    sizes.clear()
    streamed = tiny_pipe((image for image in images), candidate_labels=labels, batch_size=3, progress_bar=True)
    assert not isinstance(streamed, list) and sizes == []  # lazy: nothing runs until it is read
    assert_same_results(list(streamed), expected)
    assert sizes == [3, 2]
    assert "zero-shot-perception" in capsys.readouterr().err  # the progress bar
    dataset = datasets.Dataset.from_dict({"image": [Image.fromarray(image) for image in images]})
    for column in (KeyDataset(dataset, "image"), dataset["image"]):
        sizes.clear()
        assert_same_results(list(tiny_pipe(column, candidate_labels=labels, batch_size=4)), expected)
        assert sizes == [4, 1]
    with pytest.raises(ValueError, match="one column"):
        list(tiny_pipe(dataset, candidate_labels=labels))  # rows are dicts: pass a column
    with pytest.raises(ValueError, match="batch_size"):
        tiny_pipe(images, candidate_labels=labels, batch_size=0)
    # One candidate list per input follows its input into its batch; an error names the input by its position.
    per_input = tiny_pipe(["one", "two", "three"], candidate_labels=[["a"], ["b", "c"], ["d", "e", "f"]], batch_size=2)
    assert [sorted(r["label"] for r in result) for result in per_input] == [["a"], ["b", "c"], ["d", "e", "f"]]
    with pytest.raises(ValueError, match="`inputs` item 4"):
        tiny_pipe(images[:4] + ["missing.png"], candidate_labels=labels, batch_size=2)


def test_strings_that_look_like_files_are_refused_and_text_can_be_explicit(tiny_pipe):
    for location in ("missing.jpg", "clips/holiday.MP4", "https://example.com/cat.png", "./photo"):
        with pytest.raises(ValueError, match="looks like a file path or URL"):
            tiny_pipe(location, candidate_labels=["a", "b"])
    assert input_kind({"text": "cat.jpg"}) == "text" and input_kind("a photo of cat.jpg") == "text"
    assert {r["label"] for r in tiny_pipe({"text": "cat.jpg"}, candidate_labels=["a", "b"])} == {"a", "b"}


def test_top_k_beyond_the_candidates_returns_them_all(tiny_pipe):
    assert [len(r) for r in tiny_pipe(["one", "two"], candidate_labels=["a", "b"], top_k=5)] == [2, 2]


def test_long_texts_are_truncated_with_a_warning(tiny_pipe, monkeypatch):
    warnings = []
    monkeypatch.setattr(pipeline_uniperceiver.logger, "warning", warnings.append)
    long_text = " ".join(["word"] * 100)  # 101 ids for 64 text positions
    result = tiny_pipe(long_text, candidate_labels=["a", "b"])
    assert len(result) == 2 and len(warnings) == 1 and "truncated to the model's 64" in warnings[0]
    cut = tiny_pipe(" ".join(["word"] * 63), candidate_labels=["a", "b"])  # the first 63 ids and the EOT
    assert result == cut and len(warnings) == 1


def test_caption_runs_a_list_in_batches(tiny_pipe, monkeypatch):
    images = [np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8) for i in range(3)]
    one_by_one = [tiny_pipe.caption(image, max_new_tokens=3)[0] for image in images]
    sizes = []
    original = pipeline_uniperceiver.UniPerceiverCaptioner.generate
    monkeypatch.setattr(
        pipeline_uniperceiver.UniPerceiverCaptioner,
        "generate",
        lambda self, pixels, *a, **k: sizes.append(len(pixels)) or original(self, pixels, *a, **k),
    )
    batched = tiny_pipe.caption(images, max_new_tokens=3, batch_size=2)
    assert sizes == [2, 1] and [c["generated_text"] for c in batched] == [c["generated_text"] for c in one_by_one]
    torch.testing.assert_close(
        torch.tensor([c["score"] for c in batched]), torch.tensor([c["score"] for c in one_by_one])
    )


def test_label_lists_never_evict_the_vocabulary(tiny_pipe):
    tiny_pipe.target_cache_size = 1
    vocabulary = tiny_pipe.vocabulary()
    for labels in (["a cat", "a dog"], ["a car", "a bus"], ["red", "blue"]):
        tiny_pipe("a pet", candidate_labels=labels)
    assert len(tiny_pipe._target_cache) == 1 and tiny_pipe.vocabulary() is vocabulary
    with torch.no_grad():
        tiny_pipe.model.head.projection.bias.add_(0.1)  # other weights: encoded again
    assert tiny_pipe.vocabulary() is not vocabulary
