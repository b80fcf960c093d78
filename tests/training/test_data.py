"""Multi-task data: the task schedule, per-task streams, the slot dataset and start-up checks of datasets."""

import datasets
import numpy as np
import pytest

from uniperceiver_hf.training.data import (
    MultiTaskDataset,
    TaskSchedule,
    TaskStream,
    load_recipe_datasets,
    load_task_dataset,
    task_classes,
)
from uniperceiver_hf.training.recipe import DatasetSpec, RecipeError, parse_recipe


def test_schedule_is_fixed_by_the_seed_and_follows_the_weights():
    weights = [2.0, 1.0, 0.0, 1.0]
    schedule = TaskSchedule(weights, 20000, seed=7)
    again = TaskSchedule(weights, 20000, seed=7)
    assert np.array_equal(schedule.tasks, again.tasks)
    assert not np.array_equal(schedule.tasks, TaskSchedule(weights, 20000, seed=8).tasks)
    frequencies = np.bincount(schedule.tasks, minlength=4) / 20000
    np.testing.assert_allclose(frequencies, [0.5, 0.25, 0.0, 0.25], atol=0.015)
    for task in (0, 1, 3):  # the k-th slot of a task takes the task's k-th batch
        slots = np.flatnonzero(schedule.tasks == task)
        assert [schedule.occurrence(int(slot)) for slot in slots[:50]] == list(range(50))


def test_schedule_rejects_bad_weights():
    with pytest.raises(ValueError, match="positive sum"):
        TaskSchedule([0.0, 0.0], 10, 0)


def _numbers(count: int) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"value": list(range(count))})


def test_map_style_stream_visits_every_example_once_per_epoch():
    stream = TaskStream(_numbers(12), batch_size=5, seed=3)
    seen = [row["value"] for k in range(5) for row in stream.batch(k)]  # 25 positions: 2 epochs and 1 more
    assert sorted(seen[:12]) == list(range(12)) and sorted(seen[12:24]) == list(range(12))
    assert seen[:12] != seen[12:24]  # each epoch is shuffled anew
    assert [r["value"] for r in TaskStream(_numbers(12), 5, 3).batch(3)] == seen[15:20]  # random access


def test_streamed_dataset_is_read_forward_and_restarts_when_going_back():
    streamed = _numbers(12).to_iterable_dataset()
    stream = TaskStream(streamed, batch_size=5, seed=3)
    batches = [[row["value"] for row in stream.batch(k)] for k in range(4)]
    assert sorted(sum(batches, [])[:12]) == list(range(12))
    fresh = TaskStream(_numbers(12).to_iterable_dataset(), batch_size=5, seed=3)
    assert [row["value"] for row in fresh.batch(2)] == batches[2]  # skipping ahead reaches the same batch
    assert [row["value"] for row in fresh.batch(1)] == batches[1]  # going back restarts the stream


def test_slot_dataset_is_deterministic(training_recipe_data):
    recipe = parse_recipe(training_recipe_data)
    loaded = load_recipe_datasets(recipe)
    first, second = MultiTaskDataset(recipe, loaded, 40), MultiTaskDataset(recipe, loaded, 40)
    for slot in (0, 7, 39):
        a, b = first[slot], second[slot]
        assert a["task"] == b["task"] and a["seed"] == b["seed"]
        assert len(a["examples"]) == recipe.task(a["task"]).batch_size
    assert len({first[slot]["seed"] for slot in range(40)}) == 40
    assert len({first[slot]["task"] for slot in range(40)}) > 5  # the mixture, not one task


def test_images_stay_undecoded_until_the_collator(training_corpus):
    loaded = load_task_dataset(DatasetSpec(path=str(training_corpus / "images")))
    assert set(loaded[0]["image"]) == {"bytes", "path"}


def test_missing_split_and_missing_dataset_are_named(training_corpus, tmp_path):
    with pytest.raises(RecipeError, match=r"split 'test' not in .*; it has \['train', 'validation'\]"):
        load_task_dataset(DatasetSpec(path=str(training_corpus / "text"), split="test"), "task 0 (lm)")
    with pytest.raises(RecipeError, match="task 0 \\(x\\): could not load dataset"):
        load_task_dataset(DatasetSpec(path=str(tmp_path / "nothing_here")), "task 0 (x)")


def test_missing_column_fails_before_training(training_recipe_data):
    data = {**training_recipe_data, "tasks": [dict(training_recipe_data["tasks"][2], columns={"caption": "captions"})]}
    with pytest.raises(RecipeError, match=r"task 0 \(img_ret\): missing columns \['captions'\]"):
        load_recipe_datasets(parse_recipe(data))


def test_class_lists_cover_the_labels(training_corpus):
    recipe = parse_recipe(
        {"tasks": [{"name": "c", "type": "image_classification", "dataset": str(training_corpus / "images")}]}
    )
    loaded = load_recipe_datasets(recipe)["c"]
    assert task_classes(recipe.tasks[0], loaded, "c") == ["red", "green", "blue"]
    short = parse_recipe(
        {
            "tasks": [
                {
                    "name": "c",
                    "type": "image_classification",
                    "classes": ["red", "green"],
                    "dataset": str(training_corpus / "images"),
                }
            ]
        }
    )
    with pytest.raises(RecipeError, match=r"range over \[0, 2\] but the class list has 2 names"):
        task_classes(short.tasks[0], loaded, "c")
