"""The collapse monitor (its numbers, its log keys, the recipe switch) and the from-scratch initialisation."""

import pytest
import torch

from uniperceiver_hf.training.monitor import (
    CollapseMonitorCallback,
    batch_accuracy,
    block_of,
    mean_logit_std,
    mean_pairwise_cosine,
)
from uniperceiver_hf.training.recipe import RecipeError, parse_recipe
from uniperceiver_hf.training.trainer import train_recipe


def test_mean_pairwise_cosine_of_identical_orthogonal_and_opposite_rows():
    row = torch.randn(1, 8)
    assert mean_pairwise_cosine(row.expand(5, 8) * 3) == pytest.approx(1.0, abs=1e-6)
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_cosine(torch.cat([row, -row])) == pytest.approx(-1.0, abs=1e-6)
    features = torch.randn(6, 8)
    normed = torch.nn.functional.normalize(features, dim=-1)
    pairs = normed @ normed.T
    assert mean_pairwise_cosine(features) == pytest.approx(float(pairs[~torch.eye(6, dtype=bool)].mean()), abs=1e-6)


def test_logit_spread_accuracy_and_blocks():
    assert mean_logit_std(torch.ones(3, 4)) == 0.0
    assert mean_logit_std(torch.tensor([[0.0, 2.0], [1.0, 1.0]])) == pytest.approx(2**0.5 / 2)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    assert batch_accuracy(logits, torch.tensor([0, 0, -100])) == 0.5
    assert batch_accuracy(logits[:2], None) == 1.0  # in-batch retrieval: the diagonal
    assert batch_accuracy(logits, torch.tensor([[1.0, 0.0], [0.2, 0.8], [0.0, 1.0]])) == pytest.approx(2 / 3)
    assert block_of("embeddings.text.word_embeddings.weight") == "word_embeddings"
    assert block_of("embeddings.visual.patch_embedding.weight") == "embeddings"
    assert block_of("encoder.layers.3.mlp.fc1.weight") == "layer_3"
    assert block_of("head.logit_scales.img_cls") == "head"


def test_callback_on_a_model_call_and_gradient_norms(tiny_model):
    monitor = CollapseMonitorCallback()
    monitor.attach(tiny_model)
    tiny_model.train()
    input_ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    output = tiny_model(input_ids=input_ids, target_input_ids=input_ids, labels=torch.tensor([0, 1]))
    output.loss.backward()
    monitor.record_gradient_norms()
    logs = monitor.logs()
    for key in (
        "input_cosine",
        "target_cosine",
        "logit_std",
        "accuracy",
        "grad_norm/word_embeddings",
        "grad_norm/embeddings",
        "grad_norm/layer_0",
        "grad_norm/layer_1",
        "grad_norm/head",
    ):
        assert f"monitor/all/{key}" in logs, key
    assert logs["monitor/all/input_cosine"] == pytest.approx(mean_pairwise_cosine(output.input_embeds), abs=1e-6)
    assert monitor.logs() == {}  # reset after reading
    monitor.detach()
    tiny_model(input_ids=input_ids, target_input_ids=input_ids)
    assert monitor.logs() == {}
    with pytest.raises(ValueError, match="must be or hold a UniPerceiverModel"):
        monitor.attach(torch.nn.Linear(2, 2))


def test_recipe_monitor_switch_and_logged_keys(training_recipe_data, tmp_path):
    tasks = [task for task in training_recipe_data["tasks"] if task["name"] in ("img_cls", "txt_ret")]
    assert parse_recipe({"tasks": tasks}).monitor is False
    with pytest.raises(RecipeError, match="`monitor` must be true or false"):
        parse_recipe({"tasks": tasks, "monitor": "yes"})
    recipe = parse_recipe({**training_recipe_data, "tasks": tasks, "monitor": True})
    trainer = train_recipe(recipe, tmp_path / "run", max_steps=3, save_final=False)
    logged = [row for row in trainer.state.log_history if "loss" in row]
    for row in logged:
        (name,) = [key[len("loss/") :] for key in row if key.startswith("loss/")]
        for key in ("input_cosine", "target_cosine", "logit_std", "accuracy", "grad_norm/layer_0"):
            assert f"monitor/{name}/{key}" in row, (name, key)
