"""`UniPerceiverForPreTraining`: every task type learns, losses are what the recipe says, weights round-trip."""

import pytest
import torch
from conftest import make_training_recipe

from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.losses_uniperceiver import retrieval_loss, similarity_cross_entropy
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.collator import UniPerceiverCollator
from uniperceiver_hf.training.data import MultiTaskDataset, load_recipe_datasets
from uniperceiver_hf.training.recipe import parse_recipe
from uniperceiver_hf.training.trainer import build_config


TASKS = [
    "img_cls",
    "vid_cls",
    "img_ret",
    "vid_ret",
    "txt_ret",
    "mlm",
    "img_mlm",
    "lm",
    "cap",
    "vid_cap",
    "vqa",
    "txt_cls",
]


@pytest.fixture(scope="module")
def batches(training_recipe_data):
    """One fixed batch per task of the shared test recipe, and the tiny config."""
    recipe = parse_recipe(training_recipe_data)
    loaded = load_recipe_datasets(recipe)
    config = build_config(recipe)
    collator = UniPerceiverCollator(recipe, loaded, UniPerceiverProcessor(), config)
    dataset = MultiTaskDataset(recipe, loaded, 2)
    built = {}
    for index, task in enumerate(recipe.tasks):
        built[task.name] = collator([{"task": task.name, "examples": dataset.streams[index].batch(0), "seed": 5}])
    return built, config


@pytest.fixture(scope="module")
def training_recipe_data(training_corpus):
    return make_training_recipe(training_corpus)


def _model(config, seed=0):
    torch.manual_seed(seed)
    return UniPerceiverForPreTraining(config).train()


@pytest.mark.parametrize("name", TASKS)
def test_loss_goes_down_on_a_fixed_batch(batches, name):
    built, config = batches
    model = _model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(**built[name]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_the_loss_is_the_task_cross_entropy_times_its_weight(batches):
    built, config = batches
    model = _model(config).eval()
    batch = dict(built["vqa"])
    output = model(**batch)
    by_hand = similarity_cross_entropy(output.logits, batch["labels"], 0.1)
    torch.testing.assert_close(output.task_loss, by_hand.detach())
    plain = similarity_cross_entropy(output.logits, batch["labels"], 0.0)
    assert not torch.isclose(plain, by_hand)  # label smoothing changes the loss
    heavier = model(**{**batch, "loss_weight": 0.25})
    torch.testing.assert_close(heavier.loss, output.task_loss * 0.25)
    torch.testing.assert_close(heavier.task_loss, output.task_loss)


def test_retrieval_scores_the_batch_against_its_own_targets(batches):
    built, config = batches
    model = _model(config).eval()
    output = model(**built["img_ret"])
    assert output.logits.shape == (4, 4)
    torch.testing.assert_close(output.task_loss, retrieval_loss(output.logits, 0.1).detach())


def test_exact_vocabulary_scores_every_word(batches):
    built, config = batches
    model = _model(config).eval()
    batch = {key: value for key, value in built["mlm"].items() if not key.startswith("target_")}
    words = built["mlm"]["target_input_ids"][built["mlm"]["labels"], 0]
    exact = model(**{**batch, "labels": words})
    assert exact.logits.shape == (len(words), config.vocab_size)
    sampled = model(**built["mlm"])  # the same features against the sampled candidates
    candidates = built["mlm"]["target_input_ids"][:, 0]
    torch.testing.assert_close(exact.logits[:, candidates], sampled.logits, atol=1e-5, rtol=1e-5)


def test_unknown_task_type_and_inputs_are_named(batches):
    built, config = batches
    model = _model(config)
    with pytest.raises(ValueError, match="`task_type` must be one of"):
        model(**{**built["img_cls"], "task_type": "segmentation"})
    with pytest.raises(TypeError, match=r"Unexpected inputs \['pixels'\]"):
        model(task_type="image_classification", pixels=torch.zeros(1))


def test_checkpoints_load_as_the_base_model_and_back(tmp_path, batches):
    _, config = batches
    model = _model(config)
    model.save_pretrained(tmp_path / "pretraining")
    base = UniPerceiverModel.from_pretrained(tmp_path / "pretraining")
    for name, tensor in model.uniperceiver.state_dict().items():
        assert torch.equal(tensor, base.state_dict()[name]), name
    base.save_pretrained(tmp_path / "base")
    again = UniPerceiverForPreTraining.from_pretrained(tmp_path / "base")
    assert torch.equal(again.uniperceiver.head.projection.weight, model.uniperceiver.head.projection.weight)
    wrapped = UniPerceiverForPreTraining.wrap(base)
    assert wrapped.uniperceiver is base
