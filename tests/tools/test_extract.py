"""`uniperceiver-hf extract`: shards equal to the pipeline's candidate features, resumable after `kill -9`, split
across torchrun processes, and refusing bad inputs without touching an existing output."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from uniperceiver_hf import TargetSet
from uniperceiver_hf.tools import cli
from uniperceiver_hf.tools.extract import extract, load_features, load_model


MODEL = str(Path(__file__).resolve().parents[2] / "models" / "uniperceiver-tiny-emoji")
NUM_IMAGES = 48
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def gradient_image(index: int, size: int) -> Image.Image:
    """A smooth colour field (small as a PNG) whose hue depends on `index`; large pictures make decoding slow
    enough for the kill test to land mid-run."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    red = (ramp[None, :] + 37 * index) % 256
    green = np.broadcast_to((ramp[:, None] * (1 + index % 3)) % 256, (size, size))
    blue = np.full((size, size), (53 * index) % 256, dtype=np.float32)
    return Image.fromarray(np.stack(np.broadcast_arrays(red, green, blue), -1).astype(np.uint8))


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory) -> Path:
    """A `save_to_disk` folder: 48 large gradient images with string ids and a caption each."""
    import datasets

    folder = tmp_path_factory.mktemp("extract_data") / "images"
    rows = {
        "image": [gradient_image(i, 1200) for i in range(NUM_IMAGES)],
        "key": [f"item-{i:03d}" for i in range(NUM_IMAGES)],
        "caption": [f"a picture number {i} of colour {['red', 'green', 'blue'][i % 3]}" for i in range(NUM_IMAGES)],
    }
    features = datasets.Features(
        image=datasets.Image(), key=datasets.Value("string"), caption=datasets.Value("string")
    )
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def reference(image_dataset, tmp_path_factory) -> Path:
    """One uninterrupted single-process run: 12 shards of 4 images."""
    output = tmp_path_factory.mktemp("extract_reference") / "out"
    return extract(MODEL, str(image_dataset), "image", output, shard_size=4, batch_size=3, progress=False)


def command(dataset: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--model", MODEL, "--dataset", str(dataset), "--column", "image", "--output", str(output),
        "--shard-size", "4", "--batch-size", "3", "--no-progress", *extra,
    ]  # fmt: skip


def test_features_equal_target_set_features_of_the_same_inputs(image_dataset, reference, tmp_path):
    import datasets

    model, processor = load_model(MODEL)
    split = datasets.load_from_disk(str(image_dataset))
    ids, features = load_features(reference)
    assert ids == list(range(NUM_IMAGES)) and features.dtype == torch.float32
    pixels = processor.image_processor(list(split["image"]), preset="clip", return_tensors="pt")["pixel_values"]
    expected = TargetSet.encode(model, pixel_values=pixels).embeds
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=0)
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["num_rows"] == NUM_IMAGES and manifest["num_shards"] == 12 and manifest["normalisation"] == "l2"

    # Texts, with ids from a column and float16 storage, through the `uniperceiver-hf` command.
    cli.main(
        ["extract", "--model", MODEL, "--dataset", str(image_dataset), "--column", "caption", "--id-column", "key"]
        + ["--output", str(tmp_path / "captions"), "--shard-size", "10", "--dtype", "float16", "--no-progress"]
    )
    ids, features = load_features(tmp_path / "captions")
    assert ids == list(split["key"]) and features.dtype == torch.float16
    targets = processor.target_inputs(list(split["caption"]))
    expected = TargetSet.encode(model, targets["target_input_ids"], targets["target_attention_mask"]).embeds
    torch.testing.assert_close(features.float(), expected, atol=1e-3, rtol=0)  # float16 storage


def test_a_run_killed_with_sigkill_resumes_to_every_id_once(image_dataset, reference, tmp_path):
    output = tmp_path / "out"
    arguments = [sys.executable, "-m", "uniperceiver_hf.tools.extract", *command(image_dataset, output)]
    process = subprocess.Popen(arguments, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (output / "shard-00001.safetensors").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the extraction wrote no shard in 300 s"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    done = sorted(p.name for p in output.glob("shard-*.safetensors"))
    assert 2 <= len(done) < 12, done  # killed mid-run

    result = subprocess.run(arguments, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(output.glob("*.tmp"))
    ids, features = load_features(output)
    reference_ids, reference_features = load_features(reference)
    assert ids == reference_ids == list(range(NUM_IMAGES))
    torch.testing.assert_close(features, reference_features, atol=1e-6, rtol=0)


def test_torchrun_with_two_processes_equals_one_process(image_dataset, reference, tmp_path):
    output = tmp_path / "out"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "0"]
    arguments = [*launcher, "-m", "uniperceiver_hf.tools.extract", *command(image_dataset, output)]
    result = subprocess.run(arguments, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0/2" in result.stdout and "rank 1/2" in result.stdout
    ids, features = load_features(output)
    reference_ids, reference_features = load_features(reference)
    assert ids == reference_ids
    torch.testing.assert_close(features, reference_features, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs, loopback only); Ray's startup is the slow part of its tests."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def test_the_ray_engine_equals_the_local_engine(image_dataset, reference, tmp_path, local_ray):
    output = cli.main(["extract", *command(image_dataset, tmp_path / "out", "--engine", "ray", "--ray-actors", "2")])
    ids, features = load_features(output)
    reference_ids, reference_features = load_features(reference)
    assert ids == reference_ids
    torch.testing.assert_close(features, reference_features, atol=1e-6, rtol=0)


def test_bad_inputs_are_refused_and_nothing_is_overwritten(image_dataset, reference, tmp_path, tiny_model):
    with pytest.raises(ValueError, match="`--column` 'picture' is not a column.*'image'"):
        extract(MODEL, str(image_dataset), "picture", tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="holds image items, not the `--modality` 'text'"):
        extract(MODEL, str(image_dataset), "image", tmp_path / "a", modality="text", progress=False)
    with pytest.raises(ValueError, match="holds text items, not the `--modality` 'video'"):
        extract(MODEL, str(image_dataset), "caption", tmp_path / "a", modality="video", progress=False)
    with pytest.raises(ValueError, match="`--id-column` 'name' is not a column"):
        extract(MODEL, str(image_dataset), "image", tmp_path / "a", id_column="name", progress=False)
    assert not (tmp_path / "a").exists()

    before = {path.name: path.read_bytes() for path in reference.iterdir()}
    with pytest.raises(
        ValueError, match=r"another run \(column: 'image' there, 'caption' now.*Nothing was overwritten"
    ):
        extract(MODEL, str(image_dataset), "caption", reference, shard_size=4, progress=False)
    other_model = tmp_path / "other_model"
    tiny_model.save_pretrained(other_model)
    with pytest.raises(ValueError, match="another run \\(fingerprint: '[0-9a-f]{16}' there"):
        extract(str(other_model), str(image_dataset), "image", reference, shard_size=4, progress=False)
    with pytest.raises(ValueError, match="shard_size: 4 there, 5 now"):
        extract(MODEL, str(image_dataset), "image", reference, shard_size=5, progress=False)
    assert {path.name: path.read_bytes() for path in reference.iterdir()} == before

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="non-empty folder without a manifest.json"):
        extract(MODEL, str(image_dataset), "image", tmp_path / "busy", progress=False)
    (reference / "shard-00003.safetensors").rename(tmp_path / "moved.safetensors")
    try:
        with pytest.raises(ValueError, match="misses 1 of 12 shards.*run the same command again"):
            load_features(reference)
    finally:
        (tmp_path / "moved.safetensors").rename(reference / "shard-00003.safetensors")
