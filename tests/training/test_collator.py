"""The collator: every task type's inputs, seeding, vocabulary targets, the VQA flip, the appendix-B mask and the
decoded-video cache."""

import pytest
import torch

import uniperceiver_hf.video_processing_uniperceiver as video_module
from uniperceiver_hf import UniPerceiverProcessor
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.collator import DecodedVideoCache, UniPerceiverCollator
from uniperceiver_hf.training.data import MultiTaskDataset, load_recipe_datasets
from uniperceiver_hf.training.recipe import RecipeError, parse_recipe
from uniperceiver_hf.training.trainer import build_config


EXPECTED_KEYS = {
    "img_cls": {"pixel_values", "target_input_ids", "target_attention_mask", "labels"},
    "vid_cls": {"pixel_values", "target_input_ids", "target_attention_mask", "labels"},
    "img_ret": {"pixel_values", "target_input_ids", "target_attention_mask", "gather_features"},
    "vid_ret": {"pixel_values", "target_input_ids", "target_attention_mask", "gather_features"},
    "txt_ret": {"input_ids", "attention_mask", "target_input_ids", "target_attention_mask", "gather_features"},
    "mlm": {"input_ids", "attention_mask", "feature_index", "labels", "target_input_ids", "target_attention_mask"},
    "img_mlm": {
        "pixel_values",
        "input_ids",
        "attention_mask",
        "feature_index",
        "labels",
        "target_input_ids",
        "target_attention_mask",
    },
    "lm": {
        "input_ids",
        "attention_mask",
        "position_ids",
        "feature_index",
        "labels",
        "target_input_ids",
        "target_attention_mask",
    },
    "cap": {
        "pixel_values",
        "input_ids",
        "attention_mask",
        "position_ids",
        "feature_index",
        "labels",
        "target_input_ids",
        "target_attention_mask",
    },
    "vid_cap": {
        "pixel_values",
        "input_ids",
        "attention_mask",
        "position_ids",
        "feature_index",
        "labels",
        "target_input_ids",
        "target_attention_mask",
    },
    "vqa": {
        "pixel_values",
        "input_ids",
        "attention_mask",
        "feature_index",
        "labels",
        "target_input_ids",
        "target_attention_mask",
    },
    "txt_cls": {"input_ids", "attention_mask", "target_input_ids", "target_attention_mask", "labels"},
}
META = {"task_name", "task_type", "logit_scale", "loss_weight", "label_smoothing"}


@pytest.fixture
def setup(training_recipe_data):
    def make(data=None, train=True, **options):
        recipe = parse_recipe(data or training_recipe_data)
        loaded = load_recipe_datasets(recipe)
        config = build_config(recipe)
        collator = UniPerceiverCollator(recipe, loaded, UniPerceiverProcessor(), config, train=train, **options)
        return recipe, MultiTaskDataset(recipe, loaded, 4), collator, config

    return make


def _item(recipe, dataset, name, seed=1, batch=0):
    index = [task.name for task in recipe.tasks].index(name)
    return {"task": name, "examples": dataset.streams[index].batch(batch), "seed": seed}


def test_every_task_type_builds_its_inputs(setup):
    recipe, dataset, collator, config = setup()
    for task in recipe.tasks:
        batch = collator([_item(recipe, dataset, task.name)])
        assert set(batch) == EXPECTED_KEYS[task.name] | META, task.name
        assert batch["task_type"] == task.type and batch["logit_scale"] == task.resolved_logit_scale
        if "pixel_values" in batch:
            frames = (2,) if task.task_type.modality == "video" else ()
            assert batch["pixel_values"].shape == (task.batch_size, *frames, 3, config.image_size, config.image_size)
    assert collator([_item(recipe, dataset, "vid_cls")])["loss_weight"] == 0.05
    assert collator([_item(recipe, dataset, "mlm")])["label_smoothing"] == 0.0
    assert collator([_item(recipe, dataset, "img_cls")])["label_smoothing"] == 0.1
    assert collator([_item(recipe, dataset, "img_ret")])["gather_features"] is False  # a mixture: local negatives


def test_same_seed_same_batch_other_seed_other_augmentation(setup):
    recipe, dataset, collator, _ = setup()
    for name in ("img_cls", "mlm", "vid_cls"):
        first, again = collator([_item(recipe, dataset, name)]), collator([_item(recipe, dataset, name)])
        for key, value in first.items():
            if torch.is_tensor(value):
                assert torch.equal(value, again[key]), (name, key)
    other = collator([_item(recipe, dataset, "img_cls", seed=2)])
    assert not torch.equal(other["pixel_values"], collator([_item(recipe, dataset, "img_cls")])["pixel_values"])


def test_image_classification_defaults_to_mixup_soft_targets(setup):
    recipe, dataset, collator, _ = setup()
    labels = collator([_item(recipe, dataset, "img_cls")])["labels"]
    assert labels.shape == (4, 3) and labels.is_floating_point()
    torch.testing.assert_close(labels.sum(-1), torch.ones(4))


def test_evaluation_mode_is_deterministic_without_augmentation(setup):
    recipe, dataset, collator, _ = setup(train=False)
    first = collator([_item(recipe, dataset, "img_cls", seed=1)])
    second = collator([_item(recipe, dataset, "img_cls", seed=2)])
    assert torch.equal(first["pixel_values"], second["pixel_values"])
    assert first["labels"].dtype == torch.long  # no mixup


def test_sampled_vocabulary_keeps_the_words_and_reindexes_labels(setup, training_recipe_data):
    recipe, dataset, collator, config = setup()
    batch = collator([_item(recipe, dataset, "cap")])
    words = torch.cat(
        [
            row[mask.bool()]
            for row, mask in zip(
                batch["input_ids"][:, : batch["input_ids"].shape[1] // 2],
                batch["feature_index"][:, batch["input_ids"].shape[1] // 2 :],
            )
        ]
    )
    candidates = batch["target_input_ids"]
    assert torch.equal(candidates[batch["labels"], 0], words)  # each label points at its own word
    assert len(set(candidates[:, 0].tolist())) == len(candidates)  # unique candidates
    assert len(candidates) == len(set(words.tolist())) + 64
    assert (candidates[:, 1] == config.eos_token_id).all()


def test_exact_vocabulary_leaves_the_targets_to_the_model(setup, training_recipe_data):
    data = dict(training_recipe_data)
    data["tasks"] = [dict(task, vocabulary="exact") if task["name"] == "mlm" else task for task in data["tasks"]]
    recipe, dataset, collator, _ = setup(data)
    batch = collator([_item(recipe, dataset, "mlm")])
    assert "target_input_ids" not in batch
    assert batch["labels"].max() < 49411 and batch["labels"].numel() == batch["feature_index"].sum()


def test_vqa_flip_swaps_left_and_right_in_the_answer(setup, training_recipe_data):
    def labels_with(probability):
        data = dict(training_recipe_data)
        data["tasks"] = [
            dict(task, augmentation={"vqa_flip": probability}) if task["name"] == "vqa" else task
            for task in data["tasks"]
        ]
        recipe, dataset, collator, _ = setup(data)
        return collator([_item(recipe, dataset, "vqa")])["labels"], collator.classes["vqa"]

    kept, answers = labels_with(0.0)
    flipped, _ = labels_with(1.0)
    assert answers == ["left", "right"]
    assert torch.equal(flipped, 1 - kept)


def test_a_label_beyond_the_class_list_fails_at_start_up(setup, training_recipe_data):
    data = dict(training_recipe_data)
    data["tasks"] = [dict(training_recipe_data["tasks"][0], classes=["red", "green"])]
    with pytest.raises(RecipeError, match=r"task 0 \(img_cls\): labels in column 'label' range over \[0, 2\]"):
        setup(data)


def test_caption_training_mask_matches_appendix_b_entry_by_entry(setup):
    """The fused mask of the caption layout (facts document section 5.5): S + I see only each other; word i sees
    S + I and words <= i; spe_i sees S + I, words < i and itself; padding is never seen."""
    recipe, dataset, collator, config = setup()
    batch = collator([_item(recipe, dataset, "cap")])
    model = UniPerceiverForPreTraining(config).uniperceiver
    prefix = 1 + (config.image_size // config.patch_size) ** 2
    allowed = model._attention_mask(batch["attention_mask"], prefix, torch.float32)[:, 0] == 0
    length = batch["input_ids"].shape[1] // 2
    for row in range(batch["input_ids"].shape[0]):
        real = int(batch["feature_index"][row].sum())  # words of this caption (EOT included)
        visible = allowed[row]
        for query in range(prefix + 2 * length):
            for key in range(prefix + 2 * length):
                if query < prefix:
                    expected = key < prefix
                elif key < prefix:
                    expected = True
                else:
                    q_block, q = divmod(query - prefix, length)
                    k_block, k = divmod(key - prefix, length)
                    if k >= real:
                        expected = False  # padded key
                    elif q_block == 0:  # a word
                        expected = k_block == 0 and k <= q
                    else:  # an spe
                        expected = (k_block == 0 and k < q) or (k_block == 1 and k == q)
                if query >= prefix and (query - prefix) % length >= real:
                    continue  # padded queries are never read out
                assert bool(visible[query, key]) == expected, (row, query, key)
    words = batch["input_ids"][:, :length][batch["feature_index"][:, length:]]
    assert torch.equal(batch["target_input_ids"][batch["labels"], 0], words)  # spe_i predicts word i


def test_class_samples_keep_the_batch_classes_and_reindex_labels(setup, training_recipe_data):
    data = dict(training_recipe_data)
    data["tasks"] = [
        dict(task, class_samples=1, augmentation={"mixup": None}) if task["name"] == "img_cls" else task
        for task in data["tasks"]
    ]
    recipe, dataset, collator, _ = setup(data)
    item = _item(recipe, dataset, "img_cls")
    batch = collator([item])
    own = sorted({example["label"] for example in item["examples"]})
    assert len(batch["target_input_ids"]) == min(len(own) + 1, 3)
    full = collator.targets["img_cls"]["target_input_ids"]
    for label, example in zip(batch["labels"].tolist(), item["examples"]):
        assert torch.equal(batch["target_input_ids"][label], full[example["label"]])


def test_class_exemplars_are_image_targets(setup, training_recipe_data, tmp_path):
    from PIL import Image

    paths = []
    for index, colour in enumerate(["red", "green", "blue"]):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.new("RGB", (40, 40), colour).save(paths[-1])
    data = dict(training_recipe_data)
    data["tasks"] = [dict(training_recipe_data["tasks"][0], class_exemplars=paths)]
    recipe, dataset, collator, config = setup(data)
    batch = collator([_item(recipe, dataset, "img_cls")])
    assert batch["target_pixel_values"].shape == (3, 3, config.image_size, config.image_size)
    output = UniPerceiverForPreTraining(config)(**batch)
    assert output.logits.shape == (4, 3) and torch.isfinite(output.loss)
    data["tasks"] = [dict(training_recipe_data["tasks"][0], class_exemplars=paths[:2])]
    with pytest.raises(RecipeError, match="2 `class_exemplars` for 3 classes"):
        setup(data)


def test_the_video_cache_decodes_each_clip_once_and_gives_the_same_batches(setup, monkeypatch):
    """Frames sampled from memory are the frames decoded from the file, with training's random starts and crops;
    a budget smaller than one clip stores nothing and decodes the files as without a cache."""
    decoded = []
    decode = video_module.decode_video_frames
    monkeypatch.setattr(
        video_module, "decode_video_frames", lambda path, indices: decoded.append(path) or decode(path, indices)
    )
    recipe, dataset, uncached, _ = setup(video_cache_mb=0)
    assert uncached.video_cache is None
    items = [_item(recipe, dataset, "vid_cls", seed=seed, batch=batch) for seed, batch in ((1, 0), (2, 0), (3, 1))]
    paths = [[example["video"] for example in item["examples"]] for item in items]
    expected = [uncached([item])["pixel_values"] for item in items]
    assert not torch.equal(expected[0], expected[1])  # the same clips, other starts and crops

    cached = setup(video_cache_mb=1)[2]
    decoded.clear()
    for index, item in enumerate(items):
        assert torch.equal(cached([item])["pixel_values"], expected[index]), index
        if index == 0:
            assert all(path in cached.video_cache for path in paths[0])
    assert sorted(decoded) == sorted({path for batch in paths for path in batch})  # each clip decoded once
    assert len(cached.video_cache) == len(decoded)

    tiny = setup(video_cache_mb=0.01)[2]  # 10 KiB: less than one 12-frame 40x32 clip (45 KiB)
    for index, item in enumerate(items):
        assert torch.equal(tiny([item])["pixel_values"], expected[index]), index
    assert len(tiny.video_cache) == 0 and tiny.video_cache.used_bytes == 0
    with pytest.raises(ValueError, match="`video_cache_mb` must be a finite number of megabytes >= 0"):
        setup(video_cache_mb=-1)


def test_a_full_video_cache_keeps_its_clips_and_stores_no_more(make_video):
    first, second = (str(make_video(f"cache_{i}.mp4", num_frames=6, size=(32, 24))) for i in range(2))
    cache = DecodedVideoCache(6 * 24 * 32 * 3)  # one clip's frames
    frames, fps = cache.get(first)
    assert frames.shape == (6, 24, 32, 3) and fps == 30.0 and cache.used_bytes == cache.max_bytes
    assert cache.get(second) is None and second not in cache  # decoded from its file at every use
    assert cache.get(first)[0] is frames and len(cache) == 1
