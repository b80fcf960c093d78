"""Shared fixtures: the golden data of the official implementation and tiny configs."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


# Tests never download: set before any test module imports huggingface_hub or transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


GOLDEN_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "golden"


def require_golden_dir() -> Path:
    """The golden folder, or a skip where it is absent (a user's clone); in CI it must exist."""
    if not GOLDEN_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide the golden data at {GOLDEN_DIR}")
        pytest.skip(f"golden data not found at {GOLDEN_DIR} (it ships beside the project, not inside it)")
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return require_golden_dir()


@pytest.fixture(scope="session")
def golden_index(golden_dir) -> dict:
    return json.loads((golden_dir / "index.json").read_text())


@pytest.fixture(scope="session")
def goldens(golden_dir) -> dict[str, torch.Tensor]:
    return load_file(str(golden_dir / "goldens.safetensors"))


_PARITY_ROWS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def parity_rows(request) -> list:
    """Rows `(case, tensor, max abs diff)` that parity tests record; printed as a table after the run."""
    return request.config.stash.setdefault(_PARITY_ROWS, [])


def pytest_terminal_summary(terminalreporter, config):
    rows = config.stash.get(_PARITY_ROWS, [])
    if not rows:
        return
    terminalreporter.section("parity with the official implementation")
    width = max(len(case) for case, _, _ in rows)
    tensor_width = max(len(tensor) for _, tensor, _ in rows)
    terminalreporter.write_line(f"{'case'.ljust(width)} | {'tensor'.ljust(tensor_width)} | max abs diff")
    for case, tensor, diff in rows:
        terminalreporter.write_line(f"{case.ljust(width)} | {tensor.ljust(tensor_width)} | {diff:.2e}")


TINY_CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=32,
    patch_size=16,
    num_frames=4,
    max_position_embeddings=24,
    drop_path_rate=0.0,
)


@pytest.fixture
def tiny_config():
    """A random tiny architecture (2 x 32, 4 heads, 32 px images of 4 patches, 4 frames, 24 text positions)."""
    from uniperceiver_hf import UniPerceiverConfig

    return UniPerceiverConfig(**TINY_CONFIG)


@pytest.fixture
def tiny_model(tiny_config):
    from uniperceiver_hf import UniPerceiverModel

    torch.manual_seed(0)
    return UniPerceiverModel(tiny_config).eval()


def _write_test_video(path, num_frames: int, fps: int, codec: str, size: tuple[int, int]):
    """Encode a small synthetic video with PyAV; frame i has red = i % 256, blue = 7i % 256 and a light bar
    i % width pixels wide, so that every frame differs from its neighbours."""
    import av
    import numpy as np

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = np.zeros((height, width, 3), dtype=np.uint8)
            frame[..., 0] = i % 256
            frame[..., 2] = (7 * i) % 256
            frame[:, : i % width] = 200
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def make_video(tmp_path_factory):
    """`make_video(name, num_frames=300, fps=30, codec="libx264", size=(64, 48))` writes a synthetic video file."""

    def make(name: str, num_frames: int = 300, fps: int = 30, codec: str = "libx264", size=(64, 48)):
        return _write_test_video(tmp_path_factory.mktemp("video") / name, num_frames, fps, codec, size)

    return make


@pytest.fixture(scope="session")
def video_path(make_video):
    """A 10 s, 30 fps, 64x48 H.264 mp4 (300 frames)."""
    return make_video("clip.mp4")


GOLDEN_TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)


@pytest.fixture(scope="session")
def golden_model_dirs(golden_dir, tmp_path_factory) -> dict[str, Path]:
    """The official tiny checkpoint converted once with `uniperceiver_hf.tools.convert`:
    `{"plain": folder, "prompt": folder with the prompt-tuned keys of case h}`."""
    from uniperceiver_hf import UniPerceiverConfig
    from uniperceiver_hf.tools.convert import convert_checkpoint

    folders = {}
    for name, extra in (("plain", []), ("prompt", [golden_dir / "tiny_prompt_extra.safetensors"])):
        folders[name] = tmp_path_factory.mktemp(f"golden_{name}")
        config = UniPerceiverConfig(**GOLDEN_TINY_CONFIG)
        convert_checkpoint(golden_dir / "tiny_model_checkpoint.pth", folders[name], config, extra)
    return folders


@pytest.fixture(scope="session")
def moe_dir() -> Path:
    """The Uni-Perceiver-MoE golden folder (`UNIPERCEIVER_GOLDEN_MOE_DIR`, see `golden_moe.py`)."""
    from golden_moe import require_golden_moe_dir

    return require_golden_moe_dir()


@pytest.fixture(scope="session")
def moe_index(moe_dir) -> dict:
    return json.loads((moe_dir / "index.json").read_text())


@pytest.fixture(scope="session")
def moe_goldens(moe_dir) -> dict[str, torch.Tensor]:
    return load_file(str(moe_dir / "goldens.safetensors"))


@pytest.fixture(scope="session")
def moe_model_dir(moe_dir, moe_index, tmp_path_factory) -> Path:
    """The MoE golden checkpoint converted once (official `{'model': ...}` file, config from `index.json`)."""
    from golden_moe import moe_config_from_index

    from uniperceiver_hf.tools.convert import convert_checkpoint

    folder = tmp_path_factory.mktemp("golden_moe")
    convert_checkpoint(moe_dir / "tiny_moe_model_checkpoint.pth", folder, moe_config_from_index(moe_index))
    return folder


# ----------------------------------------------------------------------------------------------------------------------
# Training: a tiny multimodal corpus on disk and a recipe with every task type


@pytest.fixture(scope="session")
def training_corpus(tmp_path_factory, make_video) -> Path:
    """`save_to_disk` folders `images`, `videos` and `text` under one root, a few examples each.

    Images are 40x40 colour fields with a bright square on the left or right; videos are 12-frame clips; text
    has pairs and a topic label. Enough to run every task type for a few steps.
    """
    import datasets
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("training_corpus")
    colours = {"red": (200, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 200)}
    images, labels, captions, questions, answers = [], [], [], [], []
    for index in range(12):
        name = list(colours)[index % 3]
        side = "left" if index % 2 else "right"
        array = np.full((40, 40, 3), colours[name], dtype=np.uint8)
        column = slice(2, 12) if side == "left" else slice(28, 38)
        array[15:25, column] = 255
        images.append(Image.fromarray(array))
        labels.append(index % 3)
        captions.append([f"a {name} picture with a square on the {side}", f"{name} colour"])
        questions.append("where is the square ?")
        answers.append(side)
    features = datasets.Features(
        image=datasets.Image(),
        label=datasets.ClassLabel(names=list(colours)),
        caption=datasets.Sequence(datasets.Value("string")),
        question=datasets.Value("string"),
        answer=datasets.Value("string"),
    )
    rows = dict(image=images, label=labels, caption=captions, question=questions, answer=answers)
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(root / "images"))

    clips = [str(make_video(f"train_{i}.mp4", num_frames=12, fps=30, size=(40, 32))) for i in range(2)]
    videos = datasets.Dataset.from_dict(
        {
            "video": clips * 2,
            "label": [0, 1, 1, 0],
            "caption": [
                "a clip getting lighter",
                "a clip getting darker",
                "a slow clip getting darker",
                "a slow clip getting lighter",
            ],
        },
        features=datasets.Features(
            video=datasets.Value("string"),
            label=datasets.ClassLabel(names=["lighter", "darker"]),
            caption=datasets.Value("string"),
        ),
    )
    videos.save_to_disk(str(root / "videos"))

    words = ["red", "green", "blue", "square", "circle", "left", "right"]
    texts = [f"the {words[i % 7]} {words[(i + 2) % 7]} is near the {words[(i + 4) % 7]} one ." for i in range(12)]
    text = datasets.Dataset.from_dict(
        {
            "text": texts,
            "text_pair": [t.replace("near", "close to") for t in texts],
            "label": [i % 2 for i in range(12)],
        },
        features=datasets.Features(
            text=datasets.Value("string"),
            text_pair=datasets.Value("string"),
            label=datasets.ClassLabel(names=["colour", "shape"]),
        ),
    )
    datasets.DatasetDict(train=text, validation=text.select(range(4))).save_to_disk(str(root / "text"))
    return root


@pytest.fixture
def training_recipe_data(training_corpus) -> dict:
    """A recipe mapping with one task of every type on `training_corpus` and the tiny architecture."""
    return make_training_recipe(training_corpus)


def make_training_recipe(training_corpus: Path) -> dict:
    """The mapping behind `training_recipe_data` (for module-scoped fixtures)."""
    images, videos, text = (str(training_corpus / name) for name in ("images", "videos", "text"))
    small = {"crop": "short_side", "flip": 0.5}
    return {
        "seed": 0,
        "model": {**TINY_CONFIG, "num_frames": 4},
        "training": {
            "learning_rate": 1e-3,
            "warmup_steps": 0,
            "logging_steps": 1,
            "report_to": "none",
            "save_strategy": "no",
            "dataloader_num_workers": 0,
        },
        "tasks": [
            {"name": "img_cls", "type": "image_classification", "dataset": images, "batch_size": 4},
            {
                "name": "vid_cls",
                "type": "video_classification",
                "dataset": videos,
                "batch_size": 2,
                "num_frames": 2,
                "frame_stride": 2,
                "loss_weight": 0.05,
            },
            {
                "name": "img_ret",
                "type": "image_text_retrieval",
                "dataset": images,
                "batch_size": 4,
                "augmentation": small,
            },
            {
                "name": "vid_ret",
                "type": "video_text_retrieval",
                "dataset": videos,
                "batch_size": 2,
                "num_frames": 2,
                "frame_stride": 2,
            },
            {
                "name": "txt_ret",
                "type": "text_text_retrieval",
                "dataset": {"path": text, "split": "train"},
                "batch_size": 4,
            },
            {
                "name": "mlm",
                "type": "masked_lm",
                "dataset": {"path": text},
                "batch_size": 4,
                "vocabulary": "sampled",
                "vocabulary_samples": 64,
            },
            {
                "name": "img_mlm",
                "type": "image_masked_lm",
                "dataset": images,
                "batch_size": 4,
                "vocabulary": "sampled",
                "vocabulary_samples": 64,
            },
            {
                "name": "lm",
                "type": "causal_lm",
                "dataset": {"path": text},
                "batch_size": 4,
                "vocabulary": "sampled",
                "vocabulary_samples": 64,
            },
            {
                "name": "cap",
                "type": "image_caption",
                "dataset": images,
                "batch_size": 4,
                "vocabulary": "sampled",
                "vocabulary_samples": 64,
            },
            {
                "name": "vid_cap",
                "type": "video_caption",
                "dataset": videos,
                "batch_size": 2,
                "num_frames": 2,
                "frame_stride": 2,
                "vocabulary": "sampled",
                "vocabulary_samples": 64,
            },
            {"name": "vqa", "type": "vqa", "dataset": images, "batch_size": 4},
            {"name": "txt_cls", "type": "text_classification", "dataset": {"path": text}, "batch_size": 4},
        ],
    }


# ----------------------------------------------------------------------------------------------------------------------
# Hostile files: whatever reads them must refuse them without running their code


class _Payload:
    """Unpickling this calls `open(marker, "w")`: the marker file appears iff the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def hostile_files(tmp_path) -> tuple[dict[str, Path], Path]:
    """`({name: path}, marker)`: pickles carrying a payload (raw, inside a torch zip, named `.safetensors`, nested in
    a state dict), a truncated torch archive, a truncated safetensors file and random bytes. None of them may ever
    create `marker`."""
    import pickle

    from safetensors.torch import save_file

    marker = tmp_path / "PAYLOAD_RAN"
    payload = _Payload(marker)
    files = {
        name: tmp_path / name
        for name in (
            "raw_pickle.pth",
            "torch_zip.pth",
            "pickle.safetensors",
            "nested.pt",
            "truncated.pth",
            "truncated.safetensors",
            "random.bin",
        )
    }
    files["raw_pickle.pth"].write_bytes(pickle.dumps({"model": payload}))
    files["pickle.safetensors"].write_bytes(pickle.dumps(payload))
    torch.save(payload, files["torch_zip.pth"])
    torch.save({"model": {"token_embed.embeddings.weight": torch.zeros(2, 2), "extra": payload}}, files["nested.pt"])
    torch.save({"model": {"w": torch.zeros(64, 64)}}, tmp_path / "whole.pth")
    files["truncated.pth"].write_bytes((tmp_path / "whole.pth").read_bytes()[:300])
    save_file({"embeds": torch.zeros(64, 64)}, str(tmp_path / "whole.safetensors"))
    files["truncated.safetensors"].write_bytes((tmp_path / "whole.safetensors").read_bytes()[:100])
    files["random.bin"].write_bytes(bytes(range(256)) * 4)
    assert not marker.exists()
    return files, marker


# -- scripts run where the package is not installed (remote code, the Hub model code on its own) ----------------------


def without_package(script: str, blocked: tuple[str, ...] = ("uniperceiver_hf",)) -> str:
    """`script` behind an import hook that refuses the modules in `blocked` and everything under them: what a process
    on a machine without the package (or without those parts of it) can import."""
    hook = textwrap.dedent(
        f"""
        import importlib.abc as _abc, sys as _sys

        class _Blocked(_abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == blocked or name.startswith(blocked + ".") for blocked in {tuple(blocked)!r}):
                    raise ImportError(f"{{name}} is blocked in this process")

        _sys.meta_path.insert(0, _Blocked())
        """
    )
    return hook + textwrap.dedent(script)


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A bare environment for such a process: offline, with its own cache of remote-code modules under `tmp_path`."""
    return {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin", **extra}


def run_without_package(
    script: str, *args, tmp_path: Path, blocked: tuple[str, ...] = ("uniperceiver_hf",), timeout: float = 600
) -> str:
    """Runs `script` with `args` in a fresh Python process without the package (`without_package`, `isolated_env`);
    fails the test with the end of its stderr unless it exits with 0, and returns its stdout."""
    path = tmp_path / "without_package.py"
    path.write_text(without_package(script, blocked))
    run = subprocess.run(
        [sys.executable, str(path), *map(str, args)],
        env=isolated_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout
