"""Model cards (default model and converted checkpoints) and the push-ready folder, loaded by repo id through a
Hub-style local cache in fresh processes, with and without the package."""

import copy
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from conftest import isolated_env, run_without_package, without_package
from huggingface_hub import ModelCard
from PIL import Image
from transformers import AutoModel, AutoProcessor, pipeline

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel, UniPerceiverProcessor, ZeroShotPerceptionPipeline
from uniperceiver_hf.pipeline_uniperceiver import REMOTE_TASK, save_for_pipeline
from uniperceiver_hf.sentence_transformers_uniperceiver import SENTENCE_TRANSFORMERS_FILES
from uniperceiver_hf.tools.hub import (
    DEFAULT_MODEL_NAME,
    card_pictures,
    converted_model_card,
    default_model_card,
    main,
    model_code_files,
    prepare_hub_folder,
    write_model_card_file,
)


# Made-up numbers in the shape `examples/evaluate_default_model.py` writes: for these tests only.
SAMPLE_CLAIMS = {
    "command": "python examples/evaluate_default_model.py --model runs/default/final --output runs/claims",
    "rows": [
        dict(task="emoji classification", metric="accuracy", value=0.4213, chance=0.0005, section="zero-shot", n=900),
        dict(task="digit classification", metric="accuracy", value=0.12, chance=0.1, section="zero-shot", n=269),
        dict(
            task="emoji retrieval, image->text R@1",
            metric="i2t_R@1",
            value=0.25,
            chance=0.0011,
            section="zero-shot",
            n=900,
        ),
        dict(
            task="emoji retrieval, image->text R@5",
            metric="i2t_R@5",
            value=0.5,
            chance=0.0056,
            section="zero-shot",
            n=900,
        ),
        dict(
            task="emoji VQA (answer list)",
            metric="accuracy",
            value=0.61,
            chance=0.3,
            chance_kind="majority answer",
            section="zero-shot",
            n=900,
        ),
        dict(task="emoji captioning, BLEU", metric="bleu", value=0.118, chance=None, section="zero-shot", n=900),
        dict(task="emoji captioning, CIDEr", metric="cider", value=1.234, chance=None, section="zero-shot", n=900),
        dict(
            task="held-out motion (never pre-trained)",
            metric="accuracy",
            value=0.3,
            chance=0.125,
            section="novel categories",
            n=100,
        ),
        dict(
            task="digit classification, train split (seen in pre-training)",
            metric="accuracy",
            value=0.95,
            chance=0.1,
            section="fit",
            n=269,
        ),
        dict(
            task="digits vs one exemplar image per class",
            setting="zero-shot",
            metric="accuracy",
            value=0.2,
            chance=0.1,
            section="novel task",
        ),
        dict(
            task="digits vs one exemplar image per class",
            setting="prompt tuning, 1% of the data",
            metric="accuracy",
            value=0.55,
            chance=0.1,
            section="novel task",
        ),
    ],
}


def measured(card: ModelCard) -> dict:
    return {(result.task_name, result.metric_type): result for result in card.data.eval_results}


def title(row: dict) -> str:
    return row["task"] + (f" ({row['setting']})" if "setting" in row else "")


def test_default_card_round_trips_every_measured_row(tmp_path):
    config = UniPerceiverConfig(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, image_size=64)
    card = default_model_card(SAMPLE_CLAIMS, "uniperceiver-tiny", config=config, model_id="org/uniperceiver-tiny")
    card.save(tmp_path / "README.md")
    for parsed in (ModelCard(str(card)), ModelCard.load(tmp_path / "README.md")):
        data = parsed.data
        assert (data.library_name, data.pipeline_tag, data.license) == (
            "transformers",
            "zero-shot-image-classification",
            "apache-2.0",
        )
        assert {"uni-perceiver", "multimodal", "zero-shot"} <= set(data.tags)
        assert data.datasets == ["emoji-digits-fortunes"]
        assert data.metrics == ["accuracy", "bleu", "cider", "recall"]
        results = measured(parsed)
        assert len(results) == len(data.eval_results) == len(SAMPLE_CLAIMS["rows"])
        for row in SAMPLE_CLAIMS["rows"]:
            result = results[title(row), row["metric"]]
            assert result.metric_value == pytest.approx(row["value"], abs=1e-4)
            split = "train" if row["section"] == "fit" else "test"  # "fit" rows score what pre-training saw
            assert result.dataset_split == split and row["section"] in result.dataset_name
    results = measured(card)
    assert results["emoji captioning, BLEU", "bleu"].task_type == "image-to-text"
    assert results["emoji VQA (answer list)", "accuracy"].task_type == "visual-question-answering"
    assert results["held-out motion (never pre-trained)", "accuracy"].metric_name == "accuracy, chance 12.5%"
    text = card.text
    assert "| zero-shot | emoji classification | accuracy | 42.1% | 0.1% | 900 |" in text
    assert "| zero-shot | emoji VQA (answer list) | accuracy | 61.0% | 30.0% (majority answer) | 900 |" in text
    assert "| emoji captioning, CIDEr | cider | 1.234 | - |" in text
    assert "At least twice the chance level: emoji classification; emoji retrieval, image->text R@1;" in text
    assert "Under 1.5 times the chance level, so not shown by this model: digit classification." in text
    for needle in (
        SAMPLE_CLAIMS["command"],
        "python examples/data/build_corpus.py --output data/corpus",
        "--recipe examples/recipes/default_model.yaml --output-dir runs/default",
        "zero-shot-perception",
        "trust_remote_code=True",
        'pipeline("zero-shot-perception", model="org/uniperceiver-tiny")',
        "not comparable",
        "64x64",
        "SIL Open Font License 1.1",
        "Unicode",
        "BSD-3-Clause",
        "fortunes",
        "English only",
        "arXiv:2112.01522",
    ):
        assert needle in text, needle


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("command"), "command"),
        (lambda c: c.update(rows=[]), "rows"),
        (lambda c: c["rows"][0].pop("chance"), r"rows'\]\[0\]"),
        (lambda c: c["rows"][1].update(value=25.0), "fraction"),
        (lambda c: c["rows"][2].update(chance=2), "chance"),
        (lambda c: c["rows"].append(dict(c["rows"][0])), "twice"),
        (lambda c: c.update(curves=""), "curves"),
        (lambda c: c.update(tuning_curves="pictures/tuning.png"), "tuning_curves"),
        (lambda c: c["rows"][0].update(details=" "), "details"),
    ],
)
def test_default_card_rejects_bad_claims(change, message):
    claims = copy.deepcopy(SAMPLE_CLAIMS)
    change(claims)
    with pytest.raises(ValueError, match=message):
        default_model_card(claims, "m")


def test_default_card_shows_the_training_curves_when_the_claims_name_them():
    assert "![Training curves]" not in default_model_card(SAMPLE_CLAIMS, "m").text
    card = default_model_card({**SAMPLE_CLAIMS, "curves": "training_curves.png"}, "m")
    assert "![Training curves](training_curves.png)" in card.text and "![Tuning curves]" not in card.text
    both = {**SAMPLE_CLAIMS, "curves": "training_curves.png", "tuning_curves": "tuning_curves.png"}
    assert card_pictures(default_model_card(both, "m")) == ["training_curves.png", "tuning_curves.png"]


def test_default_card_states_the_draws_and_learning_rate_of_tuned_rows():
    claims = copy.deepcopy(SAMPLE_CLAIMS)
    assert "draws" not in default_model_card(claims, "m").text
    tuned = claims["rows"][-1]  # prompt tuning on 1 %: 55 %, now the mean of three draws
    tuned.update(
        draws=[0.45, 0.55, 0.65],
        learning_rate=3e-4,
        validation=0.6,
        validation_by_learning_rate={"0.0003": 0.6, "0.001": 0.5, "0.003": 0.4},
        details="1 deep prompt per layer",
    )
    text = default_model_card(claims, "m").text
    assert "| 55.0% (mean of 3 draws, 45.0-65.0%) vs 20.0% (+35.0 points) | yes |" in text
    assert (
        "(prompt tuning, 1% of the data): 1 deep prompt per layer | **0.0003** (60.0%), 0.001 (50.0%), 0.003 (40.0%) "
        "| 45.0%, 55.0%, 65.0% | 55.0% |"
    ) in text
    assert "except the tuned novel-task rows, each a mean over 3 draws" in text


def test_converted_moe_card_states_total_and_deployment_parameters():
    layers = list(range(0, 12, 2))  # MoE BASE: experts on the even layers
    card = converted_model_card("moe.pt", UniPerceiverConfig(num_experts=8, moe_layers=layers)).text
    # The authors' figures: 167M at deployment for image-text tasks (two attribute rows), dense BASE 124.8M per row.
    for needle in (
        "Uni-Perceiver-MoE",
        "Stored parameters: **422.5M**",
        "**124.8M** for one row",
        "**167.3M** for image-text",
    ):
        assert needle in card, needle
    assert "78.0" not in card and "VQA is refused" in card
    dense = converted_model_card("base.pth", UniPerceiverConfig()).text
    assert "Uni-Perceiver-MoE" not in dense.split("## Results")[0]


def test_converted_card_attributes_the_authors_results():
    base = converted_model_card("uni-perceiver-base-L12-H768-224size-pretrained.pth", UniPerceiverConfig())
    parsed = ModelCard(str(base))
    assert parsed.data.library_name == "transformers" and parsed.data.eval_results is None
    text = parsed.text
    for needle in (
        "`uni-perceiver-base-L12-H768-224size-pretrained.pth`",
        "reported by the authors",
        "none was measured by uniperceiver-hf",
        "| ImageNet-1k | Acc@1 | 78.0 | 80.2 | 83.8 | Table 2 |",
        "| Kinetics-400 | Acc@1 | 74.5 | 74.8 | 77.7 |",
        "224x224 images",
        "only pick among the candidates",
        "LICENSE",
        "trust_remote_code=True",
        "@article",
    ):
        assert needle in text, needle
    large = converted_model_card("mp_rank_00_model_states.pt", UniPerceiverConfig.from_preset("large")).text
    assert "| ImageNet-1k (ILSVRC 2012 val) | Acc@1 | 82.7 | 84.2 | 86.2 |" in large
    assert "The paper's tables report the BASE model only." in large and "78.0" not in large
    tiny_config = UniPerceiverConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
    tiny = converted_model_card("tiny.pth", tiny_config).text
    assert "no results for this architecture" in tiny and "79.2" not in tiny
    with pytest.raises(TypeError, match="config"):
        converted_model_card("x.pth", {"hidden_size": 768})


def test_default_card_says_which_of_the_papers_claims_hold():
    text = default_model_card(SAMPLE_CLAIMS, "m").text
    assert "| the paper's claim | measured | holds here |" in text
    # 55 % after prompt tuning on 1 % against 20 % zero-shot: +35 points, the paper's claim holds.
    assert "beats zero-shot by 20 points or more | 55.0% vs 20.0% (+35.0 points) | yes |" in text
    assert "fine-tuning on 10 %" not in text  # not measured in these claims: not stated
    claims = copy.deepcopy(SAMPLE_CLAIMS)
    claims["rows"][-1]["value"] = 0.3
    assert "(+10.0 points) | no |" in default_model_card(claims, "m").text
    no_novel_task = {**SAMPLE_CLAIMS, "rows": [r for r in SAMPLE_CLAIMS["rows"] if r["section"] != "novel task"]}
    assert "the paper's claim" not in default_model_card(no_novel_task, "m").text


def test_the_cards_picture_travels_with_the_folder(tiny_model, tiny_config, tmp_path):
    """`export hub --claims` copies the picture written beside claims.json; a folder re-exported from its own card
    takes the pictures that card shows; a card kept elsewhere links into the model folder."""
    processor = UniPerceiverProcessor.for_model_config(tiny_config)
    save_for_pipeline(tiny_model, processor, tmp_path / "trained")
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()
    (claims_dir / "claims.json").write_text(json.dumps({**SAMPLE_CLAIMS, "curves": "training_curves.png"}))
    with pytest.raises(ValueError, match="pictures"):  # the claims name a picture that is not there
        main(["--model", str(tmp_path / "trained"), "--output", str(tmp_path / "a"), "--claims",
              str(claims_dir / "claims.json")])  # fmt: skip
    Image.new("RGB", (8, 4), "white").save(claims_dir / "training_curves.png")
    exported = main(["--model", str(tmp_path / "trained"), "--output", str(tmp_path / "model"), "--claims",
                     str(claims_dir / "claims.json")])  # fmt: skip
    assert card_pictures(ModelCard.load(exported / "README.md")) == ["training_curves.png"]
    assert (exported / "training_curves.png").read_bytes() == (claims_dir / "training_curves.png").read_bytes()
    again = prepare_hub_folder(exported, tmp_path / "push")
    assert (again / "training_curves.png").is_file()
    card = write_model_card_file(claims_dir / "claims.json", tmp_path / "MODEL_CARD.md", model=exported)
    assert "![Training curves](model/training_curves.png)" in card.text and card_pictures(card) == []


def test_converter_writes_the_converted_card(golden_model_dirs):
    card = ModelCard.load(golden_model_dirs["plain"] / "README.md")
    assert "converted from `tiny_model_checkpoint.pth`" in card.text
    assert "no results for this architecture" in card.text
    assert "prompt-tuned parameters" in ModelCard.load(golden_model_dirs["prompt"] / "README.md").text


def test_write_model_card_file(tmp_path):
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps(SAMPLE_CLAIMS))
    write_model_card_file(claims, tmp_path / "MODEL_CARD.md")
    card = ModelCard.load(tmp_path / "MODEL_CARD.md")
    assert f"# {DEFAULT_MODEL_NAME}\n" in card.text
    assert len(card.data.eval_results) == len(SAMPLE_CLAIMS["rows"])
    with pytest.raises(ValueError, match="claims_path"):
        write_model_card_file(tmp_path / "absent.json", tmp_path / "x.md")


def test_prepare_hub_folder_checks_its_arguments(tiny_model, tiny_config, tmp_path):
    processor = UniPerceiverProcessor.for_model_config(tiny_config)
    card = default_model_card(SAMPLE_CLAIMS, "tiny")
    with pytest.raises(ValueError, match="processor"):
        prepare_hub_folder(tiny_model, tmp_path / "a", card)
    with pytest.raises(ValueError, match="config.json"):
        prepare_hub_folder(tmp_path, tmp_path / "a", card)
    with pytest.raises(TypeError, match="ModelCard"):
        prepare_hub_folder(tiny_model, tmp_path / "a", "# a card", processor=processor)
    first = prepare_hub_folder(tiny_model, tmp_path / "a", card, processor=processor)
    with pytest.raises(ValueError, match="not empty"):
        prepare_hub_folder(tiny_model, first, card, processor=processor)
    second = prepare_hub_folder(first, tmp_path / "b")  # a folder's own README.md is reused
    assert (second / "README.md").read_text() == (first / "README.md").read_text()
    third = main(["--model", str(first), "--output", str(tmp_path / "d"), "--converted", "official.pth"])
    assert "converted from `official.pth`" in ModelCard.load(third / "README.md").text
    save_for_pipeline(tiny_model, processor, tmp_path / "no_card")
    with pytest.raises(ValueError, match="card"):
        prepare_hub_folder(tmp_path / "no_card", tmp_path / "c")


REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoModel, AutoProcessor, pipeline

    repo, image = sys.argv[1:]
    model = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
    pipe = pipeline(model=repo, trust_remote_code=True)
    labels = ["red", "green", "blue"]
    with torch.no_grad():
        logits = model(**processor(images=[image], targets=labels, return_tensors="pt")).logits
    print(json.dumps({
        "modules": [type(obj).__module__ for obj in (model, processor, pipe)],
        "logits": logits.tolist(),
        "scores": {r["label"]: r["score"] for r in pipe(image, candidate_labels=labels)},
    }))
    """
)
LABELS = ["red", "green", "blue"]


@torch.no_grad()
def outputs(model, processor, pipe, image: str) -> tuple[torch.Tensor, dict]:
    logits = model(**processor(images=[image], targets=LABELS, return_tensors="pt")).logits
    return logits, {r["label"]: r["score"] for r in pipe(image, candidate_labels=LABELS)}


def test_folder_loads_by_repo_id_from_a_hub_cache_with_and_without_the_package(
    tiny_model, tiny_config, tmp_path, monkeypatch
):
    trained = tmp_path / "trained"
    # What train_recipe leaves in `final`.
    save_for_pipeline(tiny_model, UniPerceiverProcessor.for_model_config(tiny_config), trained)
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps(SAMPLE_CLAIMS))
    folder = main(
        [
            "--model",
            str(trained),
            "--output",
            str(tmp_path / "push"),
            "--claims",
            str(claims),
            "--model-id",
            "org/tiny",
        ]
    )
    written = {p.name for p in folder.iterdir()}
    assert {
        "README.md",
        "model.safetensors",
        "config.json",
        "processor_config.json",
        "tokenizer.json",
        "configuration_uniperceiver.py",
        "modeling_uniperceiver.py",
        "processing_uniperceiver.py",
        "pipeline_uniperceiver.py",
    } <= written
    assert {p.name for p in folder.glob("*.py")} == {p.name for p in model_code_files()}
    assert set(SENTENCE_TRANSFORMERS_FILES) <= written  # `SentenceTransformer(folder, trust_remote_code=True)`
    config = json.loads((folder / "config.json").read_text())
    assert (
        set(config["auto_map"])
        == {"AutoConfig", "AutoModel", "AutoModelForZeroShotImageClassification", "AutoModelForImageTextToText"}
        and REMOTE_TASK in config["custom_pipelines"]
    )
    assert len(ModelCard.load(folder / "README.md").data.eval_results) == len(SAMPLE_CLAIMS["rows"])

    # A Hub cache as `huggingface_hub` lays it out: models--org--name/snapshots/<sha>/ and refs/main.
    sha = hashlib.sha1(b"uniperceiver tiny").hexdigest()
    repo = tmp_path / "hub" / "models--org--tiny"
    shutil.copytree(folder, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    image = str(tmp_path / "input.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)

    # Without the package, in a fresh process (started first: it runs while this process checks the rest).
    script = tmp_path / "remote.py"
    script.write_text(without_package(REMOTE_SCRIPT))
    env = isolated_env(tmp_path, HF_HOME=str(tmp_path / "home"), HF_HUB_CACHE=str(tmp_path / "hub"))
    remote = subprocess.Popen(
        [sys.executable, str(script), "org/tiny", image],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    local = pipeline("zero-shot-perception", model=str(folder))
    expected_logits, expected_scores = outputs(local.model, local.processor, local, image)
    # With the package imported (conftest set HF_HUB_OFFLINE): the same repo id, no remote code.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = AutoModel.from_pretrained("org/tiny").eval()
    processor = AutoProcessor.from_pretrained("org/tiny")
    pipe = pipeline("zero-shot-perception", model="org/tiny")
    assert (type(model), type(processor), type(pipe)) == (
        UniPerceiverModel,
        UniPerceiverProcessor,
        ZeroShotPerceptionPipeline,
    )
    logits, scores = outputs(model, processor, pipe, image)
    torch.testing.assert_close(logits, expected_logits)
    assert scores == pytest.approx(expected_scores, abs=1e-6)

    stdout, stderr = remote.communicate(timeout=300)
    assert remote.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert all(module.startswith("transformers_modules.org.tiny") for module in report["modules"])
    torch.testing.assert_close(torch.tensor(report["logits"]), expected_logits)
    assert report["scores"] == pytest.approx(expected_scores, abs=1e-6)


IMPORT_EVERY_FILE = textwrap.dedent(
    """
    import importlib, pathlib, sys
    code = pathlib.Path(sys.argv[1])
    sys.path.insert(0, str(code.parent))
    for path in sorted(code.glob("*.py")):
        importlib.import_module(f"{code.name}.{path.stem}")
    """
)


def test_every_code_file_of_the_hub_folder_imports_without_the_package(tiny_model, tiny_config, tmp_path):
    folder = prepare_hub_folder(
        tiny_model,
        tmp_path / "hub",
        converted_model_card("tiny.pth", tiny_config),
        processor=UniPerceiverProcessor.for_model_config(tiny_config),
    )
    # The folder's code as transformers imports it: flat siblings of one package (`transformers_modules.<repo>`).
    code = tmp_path / "hub_code"
    code.mkdir()
    (code / "__init__.py").write_text("")
    for path in folder.glob("*.py"):
        shutil.copyfile(path, code / path.name)
    run_without_package(IMPORT_EVERY_FILE, code, tmp_path=tmp_path, timeout=300)


def test_fp16_weights_are_stored_in_half_and_load_in_float(tiny_model, tiny_config, tmp_path):
    from safetensors import safe_open

    folder = prepare_hub_folder(
        tiny_model,
        tmp_path / "hub",
        converted_model_card("tiny.pth", tiny_config),
        processor=UniPerceiverProcessor(),
        fp16_weights=True,
    )
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.float16}
    loaded = UniPerceiverModel.from_pretrained(folder)
    assert loaded.dtype == torch.float32 and tiny_model.dtype == torch.float32  # the given model is not cast
    original = tiny_model.head.projection.weight
    torch.testing.assert_close(loaded.head.projection.weight, original.half().float())


def test_a_folder_without_remote_code_declares_none_and_loads_with_the_package(tiny_model, tiny_config, tmp_path):
    folder = prepare_hub_folder(
        tiny_model,
        tmp_path / "kept",
        converted_model_card("tiny.pth", tiny_config),
        processor=UniPerceiverProcessor(),
        remote_code=False,
    )
    assert not list(folder.glob("*.py"))
    for path in folder.glob("*.json"):
        assert "auto_map" not in path.read_text() and "custom_pipelines" not in path.read_text(), path.name
    assert isinstance(AutoProcessor.from_pretrained(folder), UniPerceiverProcessor)
    torch.testing.assert_close(
        AutoModel.from_pretrained(folder).head.projection.weight, tiny_model.head.projection.weight
    )
    scores = pipeline("zero-shot-perception", model=str(folder))("a red car", candidate_labels=["car", "tree"])
    assert sorted(entry["label"] for entry in scores) == ["car", "tree"]
    pushed = main(["--model", str(folder), "--output", str(tmp_path / "push")])  # the Hub copy gets its code back
    assert (pushed / "modeling_uniperceiver.py").is_file() and "auto_map" in (pushed / "config.json").read_text()
