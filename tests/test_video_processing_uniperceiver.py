"""UniPerceiverVideoProcessor: the original's sampling and transforms, PyAV decoding of only the needed frames,
fallbacks and errors."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

import uniperceiver_hf.video_processing_uniperceiver as video_module
from uniperceiver_hf import UniPerceiverVideoProcessor
from uniperceiver_hf.video_processing_uniperceiver import (
    decode_all_video_frames,
    decode_video_frames,
    decoded_video_bytes,
    sample_frame_indices,
    short_side_resize_shape,
    spatial_crop_offsets,
)


@pytest.fixture(scope="module")
def processor() -> UniPerceiverVideoProcessor:
    return UniPerceiverVideoProcessor()


def all_frames(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_matches_golden_views(processor, goldens, parity_rows):
    """The 8 golden frames (192x256) as uint8 THWC, float TCHW and a list of PIL images -> `test_views`."""
    frames = goldens["pre/video/frames_uint8_thwc"]
    golden = goldens["pre/video/test_views"]
    inputs = {
        "uint8_thwc": frames.numpy(),
        "float_tchw": frames.permute(0, 3, 1, 2).float() / 255,
        "pil_list": [Image.fromarray(f) for f in frames.numpy()],
    }
    for name, video in inputs.items():
        pixel_values = processor(video)["pixel_values"]
        diff = (pixel_values[0] - golden).abs().max().item()
        parity_rows.append(("video 3 views", name, diff))
        assert pixel_values.shape == (1, 3, 8, 3, 224, 224) and diff <= 1e-6
    single = processor(frames.numpy(), num_spatial_crops=1)["pixel_values"]
    assert single.shape == (1, 8, 3, 224, 224)
    torch.testing.assert_close(single[0], golden[1], rtol=0, atol=1e-6)  # 298 px: centre offsets agree (37)


def test_sampling_rules(goldens):
    assert sample_frame_indices(300, 30.0, 8, 32) == goldens["pre/video/val_frame_indices"].flatten().tolist()
    assert sample_frame_indices(600, 60.0, 8, 32) == [64 * i for i in range(8)]  # stride scaled by fps / 30
    assert sample_frame_indices(100, 30.0, 8, 32) == [0, 32, 64, 96, 28, 60, 92, 24]  # short video: wraps around
    torch.manual_seed(0)
    for _ in range(50):
        indices = sample_frame_indices(300, 30.0, 8, 32, start=None)
        assert 0 <= indices[0] < 300 - 225 and np.all(np.diff(indices) == 32)
    assert sample_frame_indices(100, 30.0, 8, 32, start=None)[0] == 0  # too short for a random start
    assert short_side_resize_shape(192, 256, 224) == (224, 298)
    assert short_side_resize_shape(300, 200, 224) == (336, 224)
    assert spatial_crop_offsets(224, 299, 224, 224, 3) == [(0, 0), (0, 38), (0, 75)]  # ceil(37.5) = 38
    assert spatial_crop_offsets(224, 299, 224, 224, 1) == [(0, 38)]  # round(37.5) = 38
    assert spatial_crop_offsets(224, 297, 224, 224, 1) == [(0, 36)]  # round(36.5) = 36, ceil would give 37
    assert spatial_crop_offsets(300, 224, 224, 224, 3) == [(0, 0), (38, 0), (76, 0)]  # portrait: top/centre/bottom


def test_file_equals_decoded_frames(processor, video_path):
    frames = all_frames(video_path)
    assert frames.shape == (300, 48, 64, 3)
    from_file = processor(str(video_path))["pixel_values"]
    from_all_frames = processor(frames)["pixel_values"]  # sampled with the same rule
    from_sampled = processor(frames[0:225:32], do_sample_frames=False)["pixel_values"]
    assert from_file.shape == (1, 3, 8, 3, 224, 224)
    assert torch.equal(from_file, from_all_frames) and torch.equal(from_file, from_sampled)


def test_decodes_only_the_needed_frames(video_path, monkeypatch):
    """8 frames at stride 32 need frames 0..224 of 300: decoding stops there. A later clip seeks first."""
    expected = all_frames(video_path)[[280, 290]]
    with av.open(str(video_path)) as container:
        keyframes = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
    last_keyframe = max(k for k in keyframes if k <= 280)
    assert last_keyframe > 0
    decoded = []
    real_open = av.open

    class CountingContainer:
        def __init__(self, container):
            self._container = container

        def __getattr__(self, name):
            return getattr(self._container, name)

        def decode(self, *args, **kwargs):
            for frame in self._container.decode(*args, **kwargs):
                decoded.append(frame.pts)
                yield frame

    monkeypatch.setattr(video_module.av, "open", lambda *a, **k: CountingContainer(real_open(*a, **k)))
    decode_video_frames(video_path, lambda total, fps: sample_frame_indices(total, fps, 8, 32))
    assert len(decoded) == 225
    decoded.clear()
    frames = decode_video_frames(video_path, lambda total, fps: sample_frame_indices(total, fps, 2, 10, start=280))
    assert len(decoded) == 290 - last_keyframe + 1  # from the keyframe before frame 280, not from frame 0
    assert np.array_equal(frames.numpy(), expected)


@pytest.mark.parametrize("start", [5, 37, 150, 250])
def test_seeking_gives_the_same_frames(video_path, start):
    expected = all_frames(video_path)[sample_frame_indices(300, 30.0, 8, 32, start=start)]
    frames = decode_video_frames(video_path, lambda total, fps: sample_frame_indices(total, fps, 8, 32, start=start))
    assert np.array_equal(frames.numpy(), expected)


def test_other_container_and_short_video(make_video):
    """An MPEG-4 AVI of 100 frames: the clip wraps around, as the original."""
    path = make_video("short.avi", num_frames=100, codec="mpeg4")
    frames = decode_video_frames(path, lambda total, fps: sample_frame_indices(total, fps, 8, 32))
    assert np.array_equal(frames.numpy(), all_frames(path)[[0, 32, 64, 96, 28, 60, 92, 24]])


def test_missing_frames_repeat_the_last_decoded_one(video_path):
    """A container that reports more frames than it delivers: the frames past the end are the last decoded one."""
    frames = decode_video_frames(video_path, lambda total, fps: [0, 299, 305, 310])
    decoded = all_frames(video_path)
    assert np.array_equal(frames.numpy(), decoded[[0, 299, 299, 299]])


def test_all_frames_sample_as_the_file(make_video):
    """`decode_all_video_frames`: every frame and the frame rate; the processor samples them (`video_fps`,
    `do_sample_frames=True`) as it samples the file, training's random start and crop included."""
    path = make_video("all_frames.mp4", num_frames=40, fps=25)
    frames, fps = decode_all_video_frames(path)
    assert frames.shape == (40, 48, 64, 3) and frames.dtype == torch.uint8 and fps == 25.0
    assert torch.equal(frames, decode_video_frames(path, lambda total, fps: range(total)))
    assert np.array_equal(frames.numpy(), all_frames(path))
    for train in (False, True):
        processor = UniPerceiverVideoProcessor(num_frames=4, sampling_stride=8, do_train_augmentation=train)
        torch.manual_seed(0)
        from_file = processor([str(path), str(path)])["pixel_values"]
        torch.manual_seed(0)
        from_memory = torch.cat(
            [processor(frames, video_fps=fps, do_sample_frames=True)["pixel_values"] for _ in range(2)]
        )
        assert torch.equal(from_file, from_memory), train


def test_decoded_bytes_from_the_header(make_video, tmp_path):
    """`decoded_video_bytes` tells a clip's decoded size before decoding it; None for what is not a video."""
    path = make_video("sized.mp4", num_frames=12, fps=25)
    assert decoded_video_bytes(path) == decode_all_video_frames(path)[0].numpy().nbytes == 12 * 48 * 64 * 3
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert decoded_video_bytes(text) is None
    assert decoded_video_bytes(tmp_path / "missing.mp4") is None


def test_frame_arrays_given_as_they_are(processor):
    rng = np.random.default_rng(0)
    short = rng.integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    padded = processor(short, do_sample_frames=False, num_spatial_crops=1)["pixel_values"]
    expected = processor(short[[0, 1, 2, 2, 2, 2, 2, 2]], num_spatial_crops=1)["pixel_values"]
    assert torch.equal(padded, expected)  # fewer frames than the clip: the last one is repeated
    wrapped = processor(short, num_spatial_crops=1)["pixel_values"]  # sampled: indices wrap modulo 3
    assert torch.equal(wrapped, processor(short[[i * 32 % 3 for i in range(8)]], num_spatial_crops=1)["pixel_values"])
    with pytest.raises(ValueError, match="videos"):
        processor(rng.integers(0, 256, (9, 40, 50, 3), dtype=np.uint8), do_sample_frames=False)


def test_temporal_views(processor, video_path):
    """K400's 4 temporal views: 32 frames at stride 8 dealt into 4 clips; clip 0 is the single-view clip."""
    views = processor(str(video_path), num_temporal_views=4)["pixel_values"]
    single = processor(str(video_path))["pixel_values"]
    assert views.shape == (1, 12, 8, 3, 224, 224)
    for spatial in range(3):
        assert torch.equal(views[0, spatial * 4], single[0, spatial])
    frames = all_frames(video_path)
    second = processor(frames[8:256:32], do_sample_frames=False)["pixel_values"]  # clip 1: frames 8, 40, ...
    assert torch.equal(views[0, 1], second[0, 0])


def test_batches(processor, video_path, goldens):
    frames = goldens["pre/video/frames_uint8_thwc"].numpy()
    batch = processor([str(video_path), frames, [Image.fromarray(f) for f in frames]])["pixel_values"]
    assert batch.shape == (3, 3, 8, 3, 224, 224)
    assert torch.equal(batch[1], batch[2])
    assert processor(np.stack([frames, frames]), return_tensors="np")["pixel_values"].shape == (2, 3, 8, 3, 224, 224)


def test_train_augmentation(video_path):
    processor = UniPerceiverVideoProcessor(do_train_augmentation=True)
    torch.manual_seed(0)
    first = processor([str(video_path), str(video_path)])["pixel_values"]
    torch.manual_seed(0)
    again = processor([str(video_path), str(video_path)])["pixel_values"]
    assert first.shape == (2, 8, 3, 224, 224) and torch.equal(first, again)
    assert not torch.equal(first[0], first[1])  # different start, scale, crop or flip


def test_bad_input(processor, tmp_path, video_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 100)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video_path.read_bytes()[:2000])
    bad_inputs = {
        "missing file": tmp_path / "missing.mp4",
        "empty file": empty,
        "text file": text,
        "random bytes": corrupt,
        "truncated mp4": truncated,
        "None": None,
        "empty list": [],
        "no frames": np.zeros((0, 8, 8, 3), np.uint8),
        "0-pixel frames": np.zeros((4, 0, 8, 3), np.uint8),
        "NaN frames": np.full((8, 8, 8, 3), np.nan, np.float32),
        "frames of two sizes": [np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)],
        "mixed types": [str(video_path), 3],
        "3-D array": np.zeros((8, 8, 3), np.uint8),
    }
    for name, videos in bad_inputs.items():
        with pytest.raises(ValueError, match="videos"):
            processor(videos)
            pytest.fail(name)


def test_save_and_load(tmp_path, goldens):
    processor = UniPerceiverVideoProcessor(num_spatial_crops=1, num_frames=4, sampling_stride=16)
    processor.save_pretrained(tmp_path)
    loaded = UniPerceiverVideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    frames = goldens["pre/video/frames_uint8_thwc"].numpy()
    assert loaded(frames)["pixel_values"].shape == (1, 4, 3, 224, 224)
