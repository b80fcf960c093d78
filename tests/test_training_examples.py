"""The training scripts end to end on the tiny corpus: pre-train, prompt-tune into an adapter, fine-tune."""

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from uniperceiver_hf import UniPerceiverModel, UniPerceiverProcessor
from uniperceiver_hf.adapters_uniperceiver import UniPerceiverAdapter


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import finetune  # noqa: E402
import pretrain  # noqa: E402
import prompt_tune  # noqa: E402


def _write_recipe(path: Path, data: dict, *names: str) -> Path:
    tasks = {task["name"]: task for task in data["tasks"]}
    path.write_text(json.dumps({**data, "tasks": [tasks[name] for name in names]}))
    return path


@pytest.fixture(scope="module")
def pretrained(training_corpus, tmp_path_factory):
    """A tiny model pre-trained for a few steps by examples/pretrain.py."""
    from conftest import make_training_recipe

    root = tmp_path_factory.mktemp("pretrain")
    recipe = _write_recipe(root / "recipe.json", make_training_recipe(training_corpus), "img_cls", "img_ret", "cap")
    pretrain.main(
        [
            "--recipe",
            str(recipe),
            "--output-dir",
            str(root / "run"),
            "--set",
            "max_steps=4",
            "--set",
            "logging_steps=2",
        ]
    )
    return root / "run" / "final"


def test_pretrain_script_writes_a_model_the_pipeline_loads(pretrained):
    classify = pipeline("zero-shot-perception", model=str(pretrained))
    image = torch.full((40, 40, 3), 200, dtype=torch.uint8).numpy()
    assert len(classify(image, candidate_labels=["red", "green", "blue"])) == 3
    assert UniPerceiverProcessor.from_pretrained(pretrained).image_processor.crop_size["height"] == 32


def test_prompt_tuning_saves_an_adapter_that_serves_beside_the_base(pretrained, training_recipe_data, tmp_path):
    recipe = _write_recipe(tmp_path / "recipe.json", training_recipe_data, "img_cls")
    path = prompt_tune.main(
        [
            "--model",
            str(pretrained),
            "--recipe",
            str(recipe),
            "--output-dir",
            str(tmp_path / "pt"),
            "--linear-head",
            "--num-prompt-tokens",
            "2",
            "--max-steps",
            "3",
            "--set",
            "learning_rate=0.01",
        ]
    )
    adapter = UniPerceiverAdapter.load(path)
    assert adapter.labels == ["red", "green", "blue"] and adapter.settings.num_classes == 3
    assert path.stat().st_size < 200_000  # the tuned tensors only, not the model
    base = UniPerceiverModel.from_pretrained(pretrained).eval()
    processor = UniPerceiverProcessor.from_pretrained(pretrained)
    inputs = processor(
        images=[torch.zeros(40, 40, 3, dtype=torch.uint8).numpy()], targets=adapter.labels, return_tensors="pt"
    )
    with torch.no_grad():
        plain = base(**inputs).logits
        tuned = base(**inputs, adapter=adapter).logits
        again = base(**inputs).logits
    assert not torch.allclose(plain, tuned) and torch.equal(plain, again)  # the base itself is untouched


def test_lora_method_trains_saves_the_peft_way_and_loads_back(pretrained, training_recipe_data, tmp_path):
    from peft import PeftModel

    recipe = _write_recipe(tmp_path / "recipe.json", training_recipe_data, "img_cls")
    arguments = ["--model", str(pretrained), "--recipe", str(recipe), "--output-dir", str(tmp_path / "lora")]
    path = prompt_tune.main(
        [*arguments, "--method", "lora", "--lora-rank", "2", "--max-steps", "3", "--set", "learning_rate=0.01"]
    )
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in path.iterdir()}
    assert sorted(json.loads((path / "adapter_config.json").read_text())["target_modules"]) == sorted(
        prompt_tune.LORA_TARGET_MODULES
    )
    assert (path / "adapter_model.safetensors").stat().st_size < 100_000  # the adapters only
    base = UniPerceiverModel.from_pretrained(pretrained).eval()
    processor = UniPerceiverProcessor.from_pretrained(pretrained)
    image = torch.zeros(40, 40, 3, dtype=torch.uint8).numpy()
    inputs = processor(images=[image], targets=["red", "green", "blue"], return_tensors="pt")
    with torch.no_grad():
        plain = base(**inputs)
        tuned = PeftModel.from_pretrained(base, path).eval()
        adapted = tuned(**inputs)
        merged = tuned.merge_and_unload()(**inputs)
    # The trained adapter moves the features (3 steps on a briefly pre-trained model with 0.1 layer scales: a little).
    assert (adapted.input_embeds - plain.input_embeds).abs().max() > 5e-5  # float noise is ~1e-7
    torch.testing.assert_close(merged.logits, adapted.logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(SystemExit):
        prompt_tune.main([*arguments, "--method", "lora", "--linear-head"])


def test_finetune_script_trains_all_parameters_on_a_fraction(pretrained, training_recipe_data, tmp_path):
    recipe = _write_recipe(tmp_path / "recipe.json", training_recipe_data, "img_cls")
    finetune.main(
        [
            "--model",
            str(pretrained),
            "--recipe",
            str(recipe),
            "--output-dir",
            str(tmp_path / "ft"),
            "--fraction",
            "0.5",
            "--max-steps",
            "2",
            "--set",
            "learning_rate=0.01",
        ]
    )
    before = UniPerceiverModel.from_pretrained(pretrained)
    after = UniPerceiverModel.from_pretrained(tmp_path / "ft" / "final")
    changed = [
        name for name, tensor in after.state_dict().items() if not torch.equal(tensor, before.state_dict()[name])
    ]
    assert any("encoder.layers.0.mlp" in name for name in changed) and any(
        "patch_embedding" in name for name in changed
    )


def test_an_option_given_as_a_flag_and_by_set_must_agree(pretrained, training_recipe_data, tmp_path):
    recipe = str(_write_recipe(tmp_path / "recipe.json", training_recipe_data, "img_cls"))
    output = str(tmp_path / "out")
    with pytest.raises(SystemExit, match=r"--set max_steps=2 disagrees with the script's own max_steps \(3\)"):
        pretrain.main(["--recipe", recipe, "--output-dir", output, "--max-steps", "3", "--set", "max_steps=2"])
    with pytest.raises(SystemExit, match=r"--set data_fraction=0.1 disagrees with the script's own data_fraction"):
        finetune.main(
            ["--model", str(pretrained), "--recipe", recipe, "--output-dir", output, "--fraction", "0.5"]
            + ["--set", "data_fraction=0.1"]
        )
    assert not (tmp_path / "out" / "final").exists()


def test_scripts_report_recipe_errors_without_a_traceback(training_recipe_data, tmp_path):
    with pytest.raises(SystemExit, match="missing.yaml' does not exist"):
        pretrain.main(["--recipe", str(tmp_path / "missing.yaml"), "--output-dir", str(tmp_path / "out")])
    recipe = _write_recipe(tmp_path / "recipe.json", training_recipe_data, "img_cls")
    with pytest.raises(SystemExit, match="--model .*nothing' is not a folder"):
        finetune.main(
            ["--model", str(tmp_path / "nothing"), "--recipe", str(recipe), "--output-dir", str(tmp_path / "o")]
        )
    with pytest.raises(SystemExit, match="--linear-head needs exactly one classification task"):
        two = _write_recipe(tmp_path / "two.json", training_recipe_data, "img_cls", "cap")
        prompt_tune.main(
            ["--model", str(EXAMPLES), "--recipe", str(two), "--output-dir", str(tmp_path / "o"), "--linear-head"]
        )
