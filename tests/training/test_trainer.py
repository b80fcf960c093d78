"""The Trainer side: weight decay groups, per-task logs, a pipeline-ready result, exact resume, two processes."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback, pipeline

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverProcessor
from uniperceiver_hf.pretraining_uniperceiver import UniPerceiverForPreTraining
from uniperceiver_hf.training.data import TaskSchedule
from uniperceiver_hf.training.recipe import RecipeError, parse_recipe
from uniperceiver_hf.training.trainer import no_weight_decay_parameter_names, train_recipe


TESTS = Path(__file__).resolve().parent


def _subset(data: dict, *names: str, **changes) -> dict:
    tasks = {task["name"]: task for task in data["tasks"]}
    return {**data, **changes, "tasks": [tasks[name] for name in names]}


def test_no_weight_decay_on_norms_biases_embeddings_scales_and_prompts(tiny_config):
    config = UniPerceiverConfig(**{**tiny_config.to_dict(), "num_prompt_tokens": 2, "use_spe_bias": True})
    model = UniPerceiverForPreTraining(config)
    excluded = no_weight_decay_parameter_names(model)
    decayed = {name for name, _ in model.named_parameters()} - excluded
    prefix = "uniperceiver."
    for name in (
        "embeddings.text.word_embeddings.weight",
        "embeddings.text.position_embeddings.weight",
        "embeddings.visual.temporal_position_embeddings.weight",
        "embeddings.layer_norm.weight",
        "encoder.layers.0.self_attn.in_proj.bias",
        "encoder.layers.0.layer_scale1.gamma",
        "head.logit_scales.img_cls",
        "encoder.layers.1.prompt_embeddings",
        "embeddings.text.spe_bias",
    ):
        assert prefix + name in excluded, name
    assert decayed == {
        prefix + name
        for name in ["embeddings.visual.patch_embedding.weight", "head.projection.weight"]
        + [
            f"encoder.layers.{i}.{part}.weight"
            for i in range(2)
            for part in ("self_attn.in_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")
        ]
    }


def test_train_recipe_logs_per_task_losses_and_saves_a_pipeline_folder(training_recipe_data, tmp_path):
    data = _subset(training_recipe_data, "img_cls", "txt_ret", "cap")
    trainer = train_recipe(parse_recipe(data), tmp_path / "run", max_steps=6)
    step_logs = [row for row in trainer.state.log_history if "loss" in row]
    assert len(step_logs) == 6
    for row in step_logs:  # one task per step, its loss logged under its name
        (name,) = [key[len("loss/") :] for key in row if key.startswith("loss/")]
        assert row[f"loss/{name}"] == pytest.approx(row["loss"] / (0.05 if name == "vid_cls" else 1.0), rel=1e-5)
    classify = pipeline("zero-shot-perception", model=str(tmp_path / "run" / "final"))
    scores = classify(torch.zeros(40, 40, 3, dtype=torch.uint8).numpy(), candidate_labels=["red", "blue"])
    assert {row["label"] for row in scores} == {"red", "blue"}


class _RecordLengthGroups(TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.seen.append(model.uniperceiver.length_groups)


def test_padded_texts_train_in_length_groups_and_the_model_is_restored_afterwards(training_recipe_data, tmp_path):
    recipe = parse_recipe(_subset(training_recipe_data, "txt_ret"))
    for option, expected in (({}, 4), ({"length_groups": 1}, 1)):
        record = _RecordLengthGroups()
        trainer = train_recipe(recipe, tmp_path / f"run{expected}", max_steps=2, save_final=False,
                               callbacks=[record], **option)  # fmt: skip
        assert record.seen == [expected, expected]
        assert trainer.model.uniperceiver.length_groups == 1  # as built: one padded batch outside training
    with pytest.raises(ValueError, match="`length_groups` must be an integer >= 1"):
        train_recipe(recipe, tmp_path / "bad", max_steps=1, save_final=False, length_groups=0)


def test_video_cache_mb_reaches_the_collator(training_recipe_data, tmp_path):
    """A `training` setting (or `--set`) like the trainer's options, passed to the collator, not the Trainer."""
    recipe = parse_recipe(_subset(training_recipe_data, "vid_cls"))
    trainer = train_recipe(recipe, tmp_path / "run", max_steps=1, save_final=False)
    assert trainer.data_collator.video_cache.max_bytes == 512 * 2**20 and len(trainer.data_collator.video_cache) > 0
    data = _subset(training_recipe_data, "vid_cls")
    data["training"] = {**data["training"], "video_cache_mb": 0}
    trainer = train_recipe(parse_recipe(data), tmp_path / "off", max_steps=1, save_final=False)
    assert trainer.data_collator.video_cache is None
    with pytest.raises(ValueError, match="`video_cache_mb` must be a finite number of megabytes >= 0"):
        train_recipe(recipe, tmp_path / "bad", max_steps=1, save_final=False, video_cache_mb="big")


def test_the_saved_processor_samples_clips_as_the_video_tasks_trained(training_recipe_data, tmp_path):
    """Both video tasks train on 2 frames 2 apart: the saved model's processor samples clips that way, not by the
    original's Kinetics defaults (8 frames 32 apart); a recipe whose video tasks disagree keeps the defaults."""
    train_recipe(parse_recipe(_subset(training_recipe_data, "vid_cls", "vid_ret")), tmp_path / "run", max_steps=1)
    video = UniPerceiverProcessor.from_pretrained(tmp_path / "run" / "final").video_processor
    assert (video.num_frames, video.sampling_stride) == (2, 2)
    mixed = _subset(training_recipe_data, "vid_cls", "vid_ret")
    mixed["tasks"] = [mixed["tasks"][0], {**mixed["tasks"][1], "frame_stride": 4}]
    assert parse_recipe(mixed).video_sampling == {}
    assert parse_recipe(_subset(training_recipe_data, "img_cls")).video_sampling == {}


class _Crash(TrainerCallback):
    """Stops the process the hard way after a given step, as a kill would (the checkpoint before it survives)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("simulated kill")


def test_resume_after_a_kill_repeats_the_uninterrupted_run(training_recipe_data, tmp_path):
    data = _subset(training_recipe_data, "img_cls", "mlm", "cap", "vqa")
    data["model"] = {**data["model"], "drop_path_rate": 0.2}  # model randomness must be restored too
    data["training"] = {**data["training"], "save_strategy": "steps", "save_steps": 3}

    def run(output, **kwargs):
        return train_recipe(parse_recipe(data), output, max_steps=6, save_final=False, **kwargs)

    straight = run(tmp_path / "straight")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path / "killed", callbacks=[_Crash(4)])
    assert (tmp_path / "killed" / "checkpoint-3").is_dir() and not (tmp_path / "killed" / "checkpoint-6").exists()
    resumed = run(tmp_path / "killed", resume_from_checkpoint=True)

    def losses(trainer):
        return {
            row["step"]: (row["loss"], [k for k in row if k.startswith("loss/")])
            for row in trainer.state.log_history
            if "loss" in row
        }

    expected, got = losses(straight), losses(resumed)  # steps 1-3 come from the checkpoint's state, 4-6 are rerun
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert got[step][1] == expected[step][1]  # the same task
        assert got[step][0] == pytest.approx(expected[step][0], abs=1e-6)
    for (name, a), b in zip(straight.model.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_start_up_errors_come_before_any_step(training_recipe_data, tmp_path):
    broken = _subset(training_recipe_data, "img_cls")
    broken["tasks"] = [dict(broken["tasks"][0], columns={"label": "category"})]
    with pytest.raises(RecipeError, match=r"task 0 \(img_cls\): missing columns \['category'\]"):
        train_recipe(parse_recipe(broken), tmp_path / "run", max_steps=2)
    endless = _subset(training_recipe_data, "img_cls")
    with pytest.raises(RecipeError, match="set `max_steps`"):
        train_recipe(parse_recipe(endless), tmp_path / "run")
    with pytest.raises(RecipeError, match=r"unknown training settings \['monitor'\].*`TrainingArguments` fields"):
        train_recipe(parse_recipe(endless), tmp_path / "run", max_steps=2, monitor=True)  # a recipe key, not one
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_train_different_tasks_and_stay_identical(training_corpus, tmp_path):
    """torchrun with gloo on CPU: rank 0 and rank 1 draw different tasks in each step (one of them masked LM with
    the exact vocabulary, encoded half by each rank), and DDP leaves identical weights on both."""
    weights = [1.0, 1.0]  # img_cls, mlm as in the script
    seed = next(s for s in range(1000) if TaskSchedule(weights, 4, s).tasks.tolist() in ([0, 1, 1, 0], [1, 0, 0, 1]))
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        torchrun,
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        str(TESTS / "distributed_pretraining_script.py"),
        str(training_corpus),
        str(tmp_path),
        str(seed),
    ]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["tasks"][:2] != ranks[1]["tasks"][:2]
    assert {ranks[0]["tasks"][0], ranks[1]["tasks"][0]} == {"img_cls", "mlm"}
    assert ranks[0]["checksum"] == ranks[1]["checksum"] and ranks[0]["abs_checksum"] == ranks[1]["abs_checksum"]
    first_log = next(row for row in ranks[0]["logs"] if "loss" in row)
    assert first_log["steps/img_cls"] == 1 and first_log["steps/mlm"] == 1  # per-task logs gather both ranks


def test_streamed_datasets_bf16_and_gradient_checkpointing(training_recipe_data, tmp_path):
    data = _subset(training_recipe_data, "img_cls", "mlm")
    data["tasks"] = [
        dict(
            task,
            dataset={
                "path": task["dataset"]["path"] if isinstance(task["dataset"], dict) else task["dataset"],
                "streaming": True,
            },
        )
        for task in data["tasks"]
    ]
    trainer = train_recipe(
        parse_recipe(data), tmp_path / "run", max_steps=3, save_final=False, bf16=True, activation_checkpointing=True
    )
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert trainer.model.uniperceiver.encoder.layers[0].gradient_checkpointing
