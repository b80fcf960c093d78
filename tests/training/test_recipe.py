"""Recipes: parsing, defaults, the shipped recipe files, and start-up errors that name the file and the entry."""

import json
from pathlib import Path

import pytest

from uniperceiver_hf.training.recipe import (
    PAPER_TRAINING_ARGUMENTS,
    TASK_TYPES,
    RecipeError,
    load_recipe,
    parse_recipe,
)


RECIPES = Path(__file__).resolve().parents[2] / "examples" / "recipes"


def _task(**fields):
    return {"name": "t", "type": "image_classification", "dataset": "some/dataset", **fields}


def test_defaults_follow_the_paper():
    recipe = parse_recipe({"tasks": [_task(), _task(name="lm", type="masked_lm")]})
    classification, lm = recipe.tasks
    assert classification.resolved_label_smoothing == 0.1 and lm.resolved_label_smoothing == 0.0
    assert classification.resolved_logit_scale == "img_cls" and lm.resolved_logit_scale == "text_mlm"
    assert classification.dataset.split == "train" and classification.column("image") == "image"
    arguments = recipe.training_arguments(output_dir="out")
    for key, value in PAPER_TRAINING_ARGUMENTS.items():
        assert arguments[key] == value
    assert arguments["ddp_find_unused_parameters"] is True and arguments["per_device_train_batch_size"] == 1


def test_recipe_training_section_overrides_the_paper_and_arguments_override_both():
    recipe = parse_recipe({"tasks": [_task()], "training": {"learning_rate": 1e-3, "max_grad_norm": 0.1}})
    arguments = recipe.training_arguments(output_dir="out", learning_rate=5e-4)
    assert arguments["learning_rate"] == 5e-4 and arguments["max_grad_norm"] == 0.1


@pytest.mark.parametrize(
    "tasks, message",
    [
        ([_task(type="image_segmentation")], r"task 0 \(t\): unknown task type 'image_segmentation'"),
        ([_task(sampling_weight=0.0)], "sampling weights of the tasks sum to zero"),
        ([_task(batch_size=0)], r"`batch_size` must be a positive integer"),
        ([_task(type="image_text_retrieval", batch_size=1)], "needs `batch_size` >= 2"),
        ([_task(loss_weight=-1)], r"`loss_weight` must be >= 0"),
        ([_task(label_smoothing=1.0)], r"`label_smoothing` must be in \[0, 1\)"),
        ([_task(logit_scale="nope")], "`logit_scale` must be one of"),
        ([_task(vocabulary="approximate")], "`vocabulary` must be one of"),
        ([_task(columns={"question": "q"})], "maps unknown roles"),
        ([_task(augmentation={"train": True})], "unknown augmentation keys"),
        ([_task(colour="red")], r"unknown keys \['colour'\]"),
        ([_task(), _task()], "task names must be unique"),
        ([{"type": "masked_lm", "dataset": "x"}], "`name` is required"),
        ([_task(glue_task="sst2")], "`glue_task` applies to text_classification"),
        ([_task(gather_features=True)], "`gather_features` applies to in-batch retrieval"),
        ([_task(type="image_text_retrieval", gather_features="yes")], "`gather_features` must be true or false"),
        (
            [_task(type="image_text_retrieval", gather_features=True), _task(name="u")],
            r"task 0 \(t\): `gather_features: true` needs every process to train this task in the same step",
        ),
    ],
)
def test_bad_entries_name_the_file_and_entry(tasks, message):
    with pytest.raises(RecipeError, match=message) as error:
        parse_recipe({"tasks": tasks}, source="mix.yaml")
    assert str(error.value).startswith("mix.yaml")


def test_gather_features_is_on_for_single_task_retrieval_and_off_in_a_mixture():
    """As the original's FEATURE_GATHER: on when retrieval is the only task, off in the multi-task mixture."""
    (alone,) = parse_recipe({"tasks": [_task(type="video_text_retrieval")]}).tasks
    assert alone.gather_features is True
    retrieval, classification = parse_recipe({"tasks": [_task(type="image_text_retrieval"), _task(name="c")]}).tasks
    assert retrieval.gather_features is False and classification.gather_features is None
    (off,) = parse_recipe({"tasks": [_task(type="text_text_retrieval", gather_features=False)]}).tasks
    assert off.gather_features is False


def test_bad_top_level():
    with pytest.raises(RecipeError, match="non-empty list"):
        parse_recipe({"tasks": []})
    with pytest.raises(RecipeError, match="unknown top-level keys"):
        parse_recipe({"tasks": [_task()], "optimizer": {}})


def test_load_recipe_reads_json_and_names_unreadable_files(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"tasks": [_task()], "seed": 3}))
    assert load_recipe(path).seed == 3
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tasks: [\n")
    with pytest.raises(RecipeError, match="could not be parsed"):
        load_recipe(broken)


def test_shipped_paper_recipe_is_table_10():
    recipe = load_recipe(RECIPES / "paper_table10.yaml")
    by_type = {}
    for task in recipe.tasks:
        by_type.setdefault(task.type, []).append(task)
    assert set(by_type) == {
        "image_classification",
        "video_classification",
        "masked_lm",
        "image_masked_lm",
        "causal_lm",
        "image_caption",
        "image_text_retrieval",
        "text_text_retrieval",
    }
    # Table 10's weights sum to one (0.333 image classification, 0.0925 + 0.0185 video, ...).
    assert sum(recipe.sampling_weights) == pytest.approx(1.0, abs=2e-3)
    imagenet = recipe.task("imagenet21k")
    assert (imagenet.batch_size, imagenet.sampling_weight, imagenet.resolved_label_smoothing) == (64, 0.333, 0.1)
    assert all(t.loss_weight == 0.05 for t in by_type["video_classification"])
    assert all(t.resolved_label_smoothing == 0.0 for t in by_type["masked_lm"] + by_type["image_caption"])
    assert len(by_type["image_text_retrieval"]) == 6 and all(
        t.batch_size == 128 for t in by_type["image_text_retrieval"]
    )


def test_shipped_recipes_parse():
    names = sorted(path.name for path in RECIPES.glob("*.yaml"))
    assert "paper_table10.yaml" in names and "released_code_stage1.yaml" in names and "shapes_local.yaml" in names
    for name in names:
        recipe = load_recipe(RECIPES / name)
        assert all(task.type in TASK_TYPES for task in recipe.tasks)
