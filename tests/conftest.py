"""Shared fixtures: the golden data of the official implementation and tiny configs."""

import json
import os
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
    """The official tiny checkpoint converted once with `uniperceiver_hf.convert`:
    `{"plain": folder, "prompt": folder with the prompt-tuned keys of case h}`."""
    from uniperceiver_hf import UniPerceiverConfig
    from uniperceiver_hf.convert import convert_checkpoint

    folders = {}
    for name, extra in (("plain", []), ("prompt", [golden_dir / "tiny_prompt_extra.safetensors"])):
        folders[name] = tmp_path_factory.mktemp(f"golden_{name}")
        config = UniPerceiverConfig(**GOLDEN_TINY_CONFIG)
        convert_checkpoint(golden_dir / "tiny_model_checkpoint.pth", folders[name], config, extra)
    return folders
