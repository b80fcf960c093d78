"""examples/check_from_scratch.py: the unseen dataset it draws and the recipe it trains with (the run itself, minutes
of training, is measured by the script, not here)."""

import sys
from pathlib import Path

import datasets
import yaml


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import check_from_scratch  # noqa: E402

from uniperceiver_hf.training.recipe import parse_recipe  # noqa: E402


def test_drawn_shapes_dataset_has_eight_named_classes_of_sixty_training_images(tmp_path):
    check_from_scratch.build_dataset("shapes", tmp_path / "shapes", seed=0)
    drawn = datasets.load_from_disk(str(tmp_path / "shapes"))
    names = drawn["train"].features["label"].names
    assert names == list(check_from_scratch.SHAPE_CLASSES)
    assert drawn["train"].num_rows == 8 * 60 and drawn["test"].num_rows == 8 * check_from_scratch.TEST_PER_CLASS
    for split in ("train", "test"):
        counts = [drawn[split]["label"].count(label) for label in range(8)]
        assert len(set(counts)) == 1, (split, counts)
    first = drawn["train"][0]["image"]
    assert first.mode == "RGB" and first.size == (check_from_scratch.SIZE, check_from_scratch.SIZE)


def test_recipe_is_the_settings_model_and_training_sections_with_one_plain_classification_task(tmp_path):
    recipe = check_from_scratch.write_recipe(tmp_path / "dataset", tmp_path / "recipe.yaml")
    settings = yaml.safe_load(check_from_scratch.SHAPES_RECIPE.read_text())
    assert recipe["model"] == settings["model"] and recipe["training"] == settings["training"]
    (task,) = recipe["tasks"]
    # What a user writes: no augmentation or loss settings of its own, so the task type's defaults apply.
    assert task == {"name": "classification", "type": "image_classification", "batch_size": 32,
                    "dataset": str(tmp_path / "dataset")}  # fmt: skip
    parsed = parse_recipe(yaml.safe_load((tmp_path / "recipe.yaml").read_text()))
    assert parsed.monitor is True and [t.type for t in parsed.tasks] == ["image_classification"]
