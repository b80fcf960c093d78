"""Prompt tuning: unshared embedding LayerNorms, `prepare_prompt_tuning`, Table 9 counts, few-shot subsets, dry run."""

import sys
from pathlib import Path

import pytest
import torch

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel
from uniperceiver_hf.prompt_tuning_uniperceiver import (
    PromptTuningSettings,
    few_shot_subset,
    parameter_groups,
    prepare_prompt_tuning,
    trainable_parameter_breakdown,
)
from uniperceiver_hf.targets_uniperceiver import model_fingerprint


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import prompt_tune  # noqa: E402


@pytest.fixture
def model(tiny_config):
    """The tiny model with residual scales at 1, so that features depend visibly on every tensor."""
    torch.manual_seed(0)
    config = UniPerceiverConfig(**{**tiny_config.to_diff_dict(), "layer_scale_init_value": 1.0})
    return UniPerceiverModel(config).eval()


def inputs(config, seed=0):
    """Two images with a question-like text (visual + text in one sequence) and three text targets."""
    generator = torch.Generator().manual_seed(seed)
    size = config.image_size
    return dict(
        pixel_values=torch.randn(2, 3, size, size, generator=generator),
        input_ids=torch.randint(1, 1000, (2, 5), generator=generator),
        target_input_ids=torch.randint(1, 1000, (3, 4), generator=generator),
        task="downstream",
    )


def base_meta(**overrides):
    with torch.device("meta"):
        return UniPerceiverModel(UniPerceiverConfig.from_preset("base", **overrides))


# -- share_embedding_layer_norm -----------------------------------------------------------------------------------


def test_unshared_embedding_layer_norm_is_a_separate_visual_module(model):
    assert model.embeddings.visual_layer_norm is None
    config = UniPerceiverConfig(**{**model.config.to_diff_dict(), "share_embedding_layer_norm": False})
    unshared = UniPerceiverModel(config).eval()
    missing, unexpected = unshared.load_state_dict(model.state_dict(), strict=False)
    assert sorted(missing) == ["embeddings.visual_layer_norm.bias", "embeddings.visual_layer_norm.weight"]
    assert not unexpected
    embeddings = unshared.embeddings
    embeddings.visual_layer_norm.load_state_dict(embeddings.layer_norm.state_dict())
    batch = inputs(model.config)
    with torch.no_grad():
        torch.testing.assert_close(unshared(**batch).logits, model(**batch).logits, rtol=0, atol=0)
        shift = torch.linspace(-1, 1, config.hidden_size)  # not a constant: the next LayerNorm would remove it
        embeddings.visual_layer_norm.bias.add_(shift)
        changed = unshared(**batch)
        text_only = dict(input_ids=batch["input_ids"], target_input_ids=batch["target_input_ids"])
        torch.testing.assert_close(unshared(**text_only).logits, model(**text_only).logits, rtol=0, atol=0)
    assert not torch.allclose(changed.logits, model(**batch).logits)
    # The prefix <SPE> and the text tokens keep the shared LayerNorm; only the visual tokens moved.
    hidden = unshared.embeddings(batch["input_ids"], torch.arange(5).expand(2, 5), batch["pixel_values"][:, None])
    reference = model.embeddings(batch["input_ids"], torch.arange(5).expand(2, 5), batch["pixel_values"][:, None])
    patches = config.num_patches
    torch.testing.assert_close(hidden[:, 0], reference[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(hidden[:, 1 + patches :], reference[:, 1 + patches :], rtol=0, atol=0)
    torch.testing.assert_close(hidden[:, 1 : 1 + patches], reference[:, 1 : 1 + patches] + shift)


# -- Table 9 -------------------------------------------------------------------------------------------------------


def test_paper_layout_gives_table_9_at_base_size():
    settings = PromptTuningSettings(layer_norms="paper", share_prompt_tokens=False, num_classes=1000)
    counts = trainable_parameter_breakdown(prepare_prompt_tuning(base_meta(), settings))
    # The paper counts 768 x classes for the head; the head also has a bias per class and the weight alpha.
    assert counts == {
        "SPE": 768,
        "Layer Norm": 41_472,
        "Prompt": 184_320,
        "Linear head": 768 * 1000 + 1000 + 1,
        "other": 0,
    }
    assert counts["SPE"] + counts["Layer Norm"] + counts["Prompt"] == 226_560  # the paper's "227K"


def test_released_layout_gives_the_released_code_counts():
    settings = PromptTuningSettings(layer_norms="released", share_prompt_tokens=True)
    counts = trainable_parameter_breakdown(prepare_prompt_tuning(base_meta(), settings))
    assert counts == {"SPE": 768, "Layer Norm": 39_936, "Prompt": 92_160, "Linear head": 0, "other": 0}


def test_groups_cover_every_layer_norm_and_nothing_else_is_trainable():
    tuned = prepare_prompt_tuning(base_meta(), PromptTuningSettings(num_classes=10))
    groups = parameter_groups(tuned)
    layer_norms = sorted(name for name, group in groups.items() if group == "Layer Norm")
    assert len(layer_norms) == 2 * 27
    assert "embeddings.visual_layer_norm.weight" in layer_norms and "head.layer_norm.bias" in layer_norms
    assert sorted(n for n, g in groups.items() if g == "Linear head") == [
        "head.classifier.bias",
        "head.classifier.weight",
        "head.similarity_weight",
    ]
    assert {n for n, p in tuned.named_parameters() if p.requires_grad} == {
        n for n, g in groups.items() if g != "other"
    }
    assert not any("logit_scales" in n for n, p in tuned.named_parameters() if p.requires_grad)


# -- prepare_prompt_tuning -----------------------------------------------------------------------------------------


def test_prepare_loads_the_pretrained_weights_and_initialises_as_appendix_c(model):
    fingerprint = model_fingerprint(model)
    settings = PromptTuningSettings(num_prompt_tokens=64, num_classes=3)
    tuned = prepare_prompt_tuning(model, settings, generator=torch.Generator().manual_seed(0))
    config = tuned.config
    assert (config.num_prompt_tokens, config.share_prompt_tokens, config.use_spe_bias) == (64, False, True)
    assert (config.num_prompt_classes, config.share_embedding_layer_norm, config.drop_path_rate) == (3, False, 0.0)
    assert not tuned.training and model.config.num_prompt_tokens == 0
    assert torch.equal(tuned.embeddings.text.spe_bias, torch.zeros(1, 32))
    assert torch.equal(tuned.head.classifier.weight, torch.zeros(3, 32))
    assert torch.equal(tuned.head.classifier.bias, torch.zeros(3))
    assert tuned.head.similarity_weight.item() == 1.0
    prompts = torch.stack(
        [p for layer in tuned.encoder.layers for p in (layer.prompt_embeddings, layer.target_prompt_embeddings)]
    )
    assert prompts.shape == (4, 64, 32)
    assert abs(prompts.std().item() - 0.02) < 0.001 and abs(prompts.mean().item()) < 0.001
    again = prepare_prompt_tuning(model, settings, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        again.encoder.layers[1].target_prompt_embeddings, tuned.encoder.layers[1].target_prompt_embeddings
    )
    # The visual LN starts as a copy of the shared one; LNs are copies, frozen tensors are shared.
    assert torch.equal(tuned.embeddings.visual_layer_norm.weight, model.embeddings.layer_norm.weight)
    for name in ("embeddings.layer_norm.weight", "encoder.layers.0.layer_norm1.bias", "head.layer_norm.weight"):
        assert torch.equal(tuned.get_parameter(name), model.get_parameter(name))
        assert tuned.get_parameter(name).data_ptr() != model.get_parameter(name).data_ptr()
    frozen = "encoder.layers.0.self_attn.in_proj.weight"
    assert tuned.get_parameter(frozen).data_ptr() == model.get_parameter(frozen).data_ptr()
    assert model.get_parameter(frozen).requires_grad  # the base's own flags are untouched
    assert model_fingerprint(model) == fingerprint


def test_prepare_without_new_tensors_reproduces_the_base(model):
    settings = PromptTuningSettings(num_prompt_tokens=0, num_classes=0)
    tuned = prepare_prompt_tuning(model, settings)
    batch = inputs(model.config)
    with torch.no_grad():
        torch.testing.assert_close(tuned(**batch).logits, model(**batch).logits, rtol=0, atol=0)


def test_a_training_step_moves_only_the_four_groups_and_never_the_base(model):
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    tuned = prepare_prompt_tuning(model, PromptTuningSettings(num_classes=3)).train()
    optimizer = torch.optim.SGD([p for p in tuned.parameters() if p.requires_grad], lr=1.0)
    batch = inputs(model.config)
    tuned(**batch, labels=torch.tensor([0, 2])).loss.backward()
    optimizer.step()
    groups = parameter_groups(tuned)
    assert all(p.grad is None for n, p in tuned.named_parameters() if groups[n] == "other")
    assert tuned.head.classifier.weight.abs().sum() > 0
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_prepare_and_settings_refuse_bad_arguments(model):
    with pytest.raises(TypeError, match="UniPerceiverModel"):
        prepare_prompt_tuning(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="settings"):
        prepare_prompt_tuning(model, {"num_classes": 3})
    with pytest.raises(ValueError, match="layer_norms.*'paper', 'released'.*'both'"):
        PromptTuningSettings(layer_norms="both")
    with pytest.raises(ValueError, match="num_classes.*-1"):
        PromptTuningSettings(num_classes=-1)
    with pytest.raises(ValueError, match="drop_path_rate"):
        PromptTuningSettings(drop_path_rate=1.5)
    with pytest.raises(ValueError, match=r"Unknown prompt-tuning settings \['prompts'\]"):
        PromptTuningSettings.from_dict({"prompts": 3})
    settings = PromptTuningSettings(share_prompt_tokens=True, num_classes=7, layer_norms="released")
    assert PromptTuningSettings.from_dict(settings.to_dict()) == settings
    assert PromptTuningSettings.from_config(settings.config_for(model.config)) == settings


# -- few_shot_subset -----------------------------------------------------------------------------------------------


@pytest.fixture
def labelled():
    datasets = pytest.importorskip("datasets")
    labels = [0] * 100 + [1] * 10 + [2] * 3 + [3] * 250
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0)).tolist()
    return datasets.Dataset.from_dict({"label": [labels[i] for i in order], "row": list(range(len(labels)))})


def test_few_shot_subset_keeps_an_exact_fraction_per_class(labelled):
    subset = few_shot_subset(labelled, 0.05, label_column="label", seed=3)
    labels = list(subset["label"])
    counts = {label: labels.count(label) for label in range(4)}
    assert counts == {0: 5, 1: 1, 2: 1, 3: 13}  # 0.5 rounds up; at least one per class
    rows = list(subset["row"])
    assert rows == sorted(rows) and len(set(rows)) == len(rows)
    assert list(few_shot_subset(labelled, 0.05, label_column="label", seed=3)["row"]) == rows
    assert list(few_shot_subset(labelled, 0.05, label_column="label", seed=4)["row"]) != rows
    assert len(few_shot_subset(labelled, 1.0, label_column="label")) == len(labelled)
    assert len(few_shot_subset(labelled, 0.1)) == 36  # no label column: a fraction of the whole set
    assert len(few_shot_subset(labelled, 0.0001)) == 1


def test_few_shot_subset_refuses_bad_arguments(labelled):
    for fraction in (0, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="fraction"):
            few_shot_subset(labelled, fraction)
    with pytest.raises(ValueError, match="'labels' is not a column"):
        few_shot_subset(labelled, 0.1, label_column="labels")
    with pytest.raises(TypeError, match="datasets.Dataset"):
        few_shot_subset([1, 2, 3], 0.5)


# -- examples/prompt_tune.py --------------------------------------------------------------------------------------


def test_dry_run_prints_the_breakdown_beside_table_9(capsys):
    counts = prompt_tune.main(["--dry-run", "--model-size", "base"])
    assert counts == {"SPE": 768, "Layer Norm": 41_472, "Prompt": 184_320, "Linear head": 769_001, "other": 0}
    printed = capsys.readouterr().out
    assert "| Layer Norm  |     41,472 |        41,472 |" in printed
    assert "| Linear head |    769,001 |       768,000 |" in printed
    counts = prompt_tune.main(["--dry-run", "--layer-norms", "released", "--share-prompts", "--num-classes", "0"])
    assert counts == {"SPE": 768, "Layer Norm": 39_936, "Prompt": 92_160, "Linear head": 0, "other": 0}
    assert "| Prompt      |     92,160 |       184,320 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        prompt_tune.main([])
