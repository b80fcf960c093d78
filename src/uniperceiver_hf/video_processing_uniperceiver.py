"""Uni-Perceiver's video preprocessing (the original's `video_raw.py` with `TIMESFORMER_AUG`), without torchvision.

Evaluation, as the original:

1. frames: `num_frames` (8) frames `sampling_stride` (32) frames apart at 30 fps; the stride is scaled by
   `fps / 30` for other frame rates, the clip starts at frame 0, and indices past the end wrap around (a short
   video loops). With `num_temporal_views=V` the original's multi-view scheme ("v2") samples `V * num_frames`
   frames at `stride / V` and deals them out into V interleaved clips.
2. each frame to float in [0, 1], the short side resized to 224 with torch's bilinear interpolation
   (`align_corners=False`, no antialiasing);
3. three spatial crops (left/centre/right, or top/centre/bottom for portrait video) for classification, or a
   single centre crop (captioning and retrieval);
4. normalised with mean = std = 0.5 (not ImageNet statistics).

Files are decoded with PyAV, only up to the last frame needed (after one seek when the clip starts later). A
frame the decoder cannot deliver (a container that reports more frames than it holds, or a stream that breaks
off) is replaced by the last decoded frame, as the original does. Missing, empty, corrupt and non-video files raise a
`ValueError` naming `videos`.

Training (`do_train_augmentation=True`): a random clip start, the short side resized to a random size in
[256, 320], a random horizontal flip and a random 224 crop (one view). Randomness comes from torch's global
generator.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from .image_processing_uniperceiver import check_pixel_budget


try:  # optional at import time (remote code, environments without PyAV); decoding files needs it
    import av
except ImportError:  # pragma: no cover - PyAV is a dependency of the package
    av = None

# Frame-threaded decoding only from PyAV 13: with it, PyAV 12 test runs that decode many clips hung twice at 0 % CPU
# (the floor CI; not pinned down further). One decoding thread gives the same frames, more slowly.
FRAME_THREADS = av is not None and int(av.__version__.split(".")[0]) >= 13


def sample_frame_indices(
    total_frames: int,
    fps: float,
    num_frames: int,
    sampling_stride: float,
    reference_fps: float = 30.0,
    start: int | None = 0,
) -> list[int]:
    """Frame indices of one clip, as the original: `int(i * stride * fps / reference_fps + start) % total_frames`.

    `start=None` draws a random start in `[0, total_frames - span)` (the original's training rule, where the
    span is `stride * (num_frames - 1) + 1` frames; a video shorter than that starts at 0).
    """
    if total_frames <= 0:
        raise ValueError(f"`total_frames` must be positive, got {total_frames}.")
    step = sampling_stride * fps / reference_fps
    if start is None:
        highest = total_frames - int(step * (num_frames - 1) + 1)
        start = int(torch.randint(0, highest, (1,)).item()) if highest > 0 else 0
    return [int(i * step + start) % total_frames for i in range(num_frames)]


def short_side_resize_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(new_height, new_width) with the short side at `short_side`, the long side floored (the original's rule)."""
    if width < height:
        return int(math.floor(height / width * short_side)), short_side
    return short_side, int(math.floor(width / height * short_side))


def spatial_crop_offsets(
    height: int, width: int, crop_height: int, crop_width: int, num_crops: int
) -> list[tuple[int, int]]:
    """(top, left) of each evaluation crop.

    Three crops follow the original's `uniform_crop`: centred offsets rounded up, with the first and last crop at
    the two ends of the long side. One crop is torchvision's `CenterCrop` (offsets rounded half to even), which
    the original uses for video captioning and retrieval.
    """
    if crop_height > height or crop_width > width:
        raise ValueError(f"A {crop_height}x{crop_width} crop does not fit a {height}x{width} frame; check `size`.")
    if num_crops == 1:
        return [(int(round((height - crop_height) / 2.0)), int(round((width - crop_width) / 2.0)))]
    if num_crops != 3:
        raise ValueError(f"`num_spatial_crops` must be 1 or 3, got {num_crops}.")
    top, left = math.ceil((height - crop_height) / 2), math.ceil((width - crop_width) / 2)
    if height > width:
        return [(0, left), (top, left), (height - crop_height, left)]
    return [(top, 0), (top, left), (top, width - crop_width)]


class UniPerceiverVideoProcessorKwargs(VideosKwargs, total=False):
    """
    The video processor's own per-call options, beside transformers' `VideosKwargs` it takes (`num_frames`,
    `do_sample_frames`, `size`, `crop_size`, `do_rescale`, `rescale_factor`, `do_normalize`, `image_mean`,
    `image_std`, `return_tensors`).

    sampling_stride (`int`, *optional*): frames between samples at `reference_fps`.
    num_spatial_crops (`int`, *optional*): 3 (classification) or 1 (centre crop).
    num_temporal_views (`int`, *optional*): interleaved clips per video.
    video_fps (`float`, *optional*): frame rate of frame arrays (default `reference_fps`).
    do_train_augmentation (`bool`, *optional*): the original's training sampling and crops.
    """

    sampling_stride: int | None
    num_spatial_crops: int | None
    num_temporal_views: int | None
    video_fps: float | None
    do_train_augmentation: bool | None


class UniPerceiverVideoProcessor(VideoProcessorMixin):
    r"""
    Video processor of Uni-Perceiver: the original's frame sampling, bilinear short-side resize, 1 or 3 spatial
    crops and mean/std 0.5, on PyAV, NumPy and torch (no torchvision).

    Videos can be paths to video files, arrays or tensors of frames (`[T, H, W, C]` or `[T, C, H, W]`; `uint8`,
    `uint16` or floats in [0, 1]; 1, 3 or 4 channels), lists of frames (PIL images or arrays), or a list of any of
    these for a batch. The output `pixel_values` is `[B, V, T, 3, H, W]` with V views (`num_spatial_crops *
    num_temporal_views`, spatial-major as in the original), or `[B, T, 3, H, W]` when there is a single view.

    Frame arrays are sampled like files (at `video_fps`, default 30) unless they hold exactly the frames of the
    clip (`num_frames * num_temporal_views`), which are used as given; `do_sample_frames=False` forces using the
    given frames, repeating the last one when there are fewer than the clip needs.

    Args:
        num_frames (`int`, *optional*, defaults to 8): frames per clip (`FRAMES_PER_CLIP`).
        sampling_stride (`int`, *optional*, defaults to 32): frames between samples at `reference_fps` (`STRIDE`).
        reference_fps (`float`, *optional*, defaults to 30): the frame rate at which `sampling_stride` holds.
        num_spatial_crops (`int`, *optional*, defaults to 3): 3 (classification) or 1 (centre crop).
        num_temporal_views (`int`, *optional*, defaults to 1): interleaved clips per video (K400 eval used 4).
        size (`dict`, *optional*, defaults to `{"shortest_edge": 224}`): evaluation short side.
        crop_size (`dict`, *optional*, defaults to `{"height": 224, "width": 224}`): crop size.
        do_rescale (`bool`, *optional*, defaults to `True`) and rescale_factor (`float`, *optional*, defaults to
            1/255): scale integer frames (`uint8`) to [0, 1]; `uint16` and float frames are scaled by their range.
        do_normalize (`bool`, *optional*, defaults to `True`), image_mean, image_std (`list[float]`, *optional*,
            defaults to 0.5 each): normalisation.
        do_train_augmentation (`bool`, *optional*, defaults to `False`): the original's training sampling and crops.
        train_short_side_range (`list[int]`, *optional*, defaults to `[256, 320]`): training short-side range.
        flip_probability (`float`, *optional*, defaults to 0.5): training horizontal-flip probability.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = UniPerceiverVideoProcessorKwargs

    def __init__(
        self,
        num_frames: int = 8,
        sampling_stride: int = 32,
        reference_fps: float = 30.0,
        num_spatial_crops: int = 3,
        num_temporal_views: int = 1,
        size: dict[str, int] | None = None,
        crop_size: dict[str, int] | None = None,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: Sequence[float] = (0.5, 0.5, 0.5),
        image_std: Sequence[float] = (0.5, 0.5, 0.5),
        do_train_augmentation: bool = False,
        train_short_side_range: Sequence[int] = (256, 320),
        flip_probability: float = 0.5,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.sampling_stride = sampling_stride
        self.reference_fps = reference_fps
        self.num_spatial_crops = num_spatial_crops
        self.num_temporal_views = num_temporal_views
        self.size = dict(size) if size is not None else {"shortest_edge": 224}
        self.crop_size = dict(crop_size) if crop_size is not None else {"height": 224, "width": 224}
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.do_train_augmentation = do_train_augmentation
        self.train_short_side_range = list(train_short_side_range)
        self.flip_probability = flip_probability

    def __call__(self, videos: Any, **kwargs: Unpack[UniPerceiverVideoProcessorKwargs]) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def preprocess(
        self,
        videos: Any,
        num_frames: int | None = None,
        sampling_stride: int | None = None,
        num_spatial_crops: int | None = None,
        num_temporal_views: int | None = None,
        do_sample_frames: bool | None = None,
        video_fps: float | None = None,
        do_train_augmentation: bool | None = None,
        size: dict[str, int] | None = None,
        crop_size: dict[str, int] | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """Sample, resize, crop and normalise a video or a batch of videos (see the class docstring).

        Args:
            videos: a video or a list of videos.
            num_frames, sampling_stride, num_spatial_crops, num_temporal_views, do_train_augmentation, size,
                crop_size, do_rescale, rescale_factor, do_normalize, image_mean, image_std: override the processor's
                settings for this call.
            do_sample_frames (`bool`, *optional*): for frame arrays, sample them (`True`) or use them as given
                (`False`); by default they are used as given when they hold exactly the clip's frames.
            video_fps (`float`, *optional*): frame rate of frame arrays (default `reference_fps`).
            return_tensors (`str`, *optional*, defaults to `"pt"`): `"pt"` (or `None`) for a torch tensor, `"np"`
                for a NumPy array.
        """
        num_frames = num_frames or self.num_frames
        sampling_stride = sampling_stride or self.sampling_stride
        train = self.do_train_augmentation if do_train_augmentation is None else do_train_augmentation
        views = 1 if train else (num_temporal_views or self.num_temporal_views)
        crops = 1 if train else (num_spatial_crops or self.num_spatial_crops)
        if num_frames < 1 or sampling_stride < 1 or views < 1:
            raise ValueError("`num_frames`, `sampling_stride` and `num_temporal_views` must be positive.")
        clip_length = num_frames * views
        # The original's multi-view scheme: V interleaved clips are one clip of V*T frames at stride / V.
        stride = sampling_stride // views
        rescale = self.do_rescale if do_rescale is None else do_rescale
        normalize = self.do_normalize if do_normalize is None else do_normalize
        transform = dict(
            short_side=(size or self.size)["shortest_edge"],
            crop_size=crop_size or self.crop_size,
            mean=(image_mean or self.image_mean) if normalize else None,
            std=(image_std or self.image_std) if normalize else None,
        )

        clips = []
        for video in _as_video_list(videos):
            if isinstance(video, (str, os.PathLike)):
                frames = decode_video_frames(
                    video,
                    lambda total, fps: sample_frame_indices(
                        total, fps, clip_length, stride, self.reference_fps, None if train else 0
                    ),
                )
            else:
                frames = _frames_to_tensor(video)
                frames = self._select_frames(
                    frames, clip_length, stride, do_sample_frames, video_fps or self.reference_fps, train
                )
            rescaled = _to_float(frames, (rescale_factor or self.rescale_factor) if rescale else None)
            clips.append(self._transform_clip(rescaled, crops, views, train, **transform))
        pixel_values = torch.stack(clips)
        if pixel_values.shape[1] == 1:
            pixel_values = pixel_values[:, 0]
        if return_tensors == "np":
            pixel_values = pixel_values.numpy()
        elif return_tensors not in (None, "pt"):
            raise ValueError(f"`return_tensors` must be 'pt', 'np' or None, got {return_tensors!r}.")
        return BatchFeature(data={"pixel_values": pixel_values})

    def _select_frames(
        self,
        frames: torch.Tensor,
        clip_length: int,
        stride: int,
        do_sample_frames: bool | None,
        fps: float,
        train: bool,
    ) -> torch.Tensor:
        """The clip's frames out of already-decoded frames `[N, H, W, C]`."""
        if do_sample_frames is None:
            do_sample_frames = frames.shape[0] != clip_length
        if do_sample_frames:
            indices = sample_frame_indices(
                frames.shape[0], fps, clip_length, stride, self.reference_fps, None if train else 0
            )
            return frames[indices]
        if frames.shape[0] > clip_length:
            raise ValueError(
                f"`videos` has a clip of {frames.shape[0]} frames but `do_sample_frames=False` takes at most "
                f"{clip_length}; let the processor sample them or pass fewer frames."
            )
        missing = clip_length - frames.shape[0]
        return torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])]) if missing else frames

    def _transform_clip(
        self,
        frames: torch.Tensor,
        crops: int,
        views: int,
        train: bool,
        short_side: int,
        crop_size: dict[str, int],
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
    ) -> torch.Tensor:
        """`[T, 3, H, W]` floats -> `[views, T / temporal views, 3, h, w]`, normalised unless `mean` is None."""
        crop_height, crop_width = crop_size["height"], crop_size["width"]
        if train:
            low, high = self.train_short_side_range
            frames = _resize_short_side(frames, int(round(float(torch.empty(1).uniform_(low, high)))))
            if float(torch.rand(1)) < self.flip_probability:
                frames = frames.flip(-1)
            height, width = frames.shape[-2:]
            top = int(torch.randint(0, max(height - crop_height, 0) + 1, (1,)))
            left = int(torch.randint(0, max(width - crop_width, 0) + 1, (1,)))
            offsets = [(top, left)]
        else:
            frames = _resize_short_side(frames, short_side)
            offsets = spatial_crop_offsets(*frames.shape[-2:], crop_height, crop_width, crops)
        clip = torch.stack([frames[..., top : top + crop_height, left : left + crop_width] for top, left in offsets])
        if mean is not None:
            mean, std = (torch.tensor(values, dtype=clip.dtype).view(3, 1, 1) for values in (mean, std))
            clip = (clip - mean) / std
        if views > 1:  # [S, T*V] -> [S, T, V] -> [S, V, T] -> [S*V, T]: clip v takes frames v, v+V, v+2V, ...
            spatial, length = clip.shape[:2]
            clip = clip.reshape(spatial, length // views, views, *clip.shape[2:]).transpose(1, 2)
            clip = clip.reshape(spatial * views, length // views, *clip.shape[3:])
        return clip


def _resize_short_side(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    height, width = frames.shape[-2:]
    if min(height, width) == short_side:
        return frames
    size = short_side_resize_shape(height, width, short_side)
    check_pixel_budget(*size, "videos", frames=frames.shape[0])
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False)


def _to_float(frames: torch.Tensor, rescale_factor: float | None) -> torch.Tensor:
    """`[T, H, W, 3]` uint8 or float -> `[T, 3, H, W]` float32; uint8 is divided by `1 / rescale_factor` in
    float32 (torchvision's `ToTensor` arithmetic for 1/255), or kept at 0-255 when `rescale_factor` is None."""
    is_uint8 = frames.dtype == torch.uint8
    frames = frames.permute(0, 3, 1, 2).float()
    if is_uint8 and rescale_factor is not None:
        frames = frames.div(float(np.float32(1.0 / rescale_factor)))
    return frames


def _is_frame(value: Any) -> bool:
    return isinstance(value, Image.Image) or (isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim in (2, 3))


def _as_video_list(videos: Any) -> list[Any]:
    """A batch of single videos (a path, a frames array or a list of frames each)."""
    if videos is None:
        raise ValueError("`videos` is None; pass a video path, an array of frames or a list of them.")
    if isinstance(videos, (str, os.PathLike)):
        return [videos]
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim == 4:
            return [videos]
        if videos.ndim == 5:
            return list(videos)
        raise ValueError(f"`videos` arrays must be [T, H, W, C] or [B, T, H, W, C], got shape {tuple(videos.shape)}.")
    if isinstance(videos, (list, tuple)):
        if not videos:
            raise ValueError("`videos` is an empty list.")
        if all(_is_frame(v) for v in videos):
            return [list(videos)]
        for video in videos:
            is_array = isinstance(video, (np.ndarray, torch.Tensor)) and video.ndim == 4
            is_frame_list = isinstance(video, (list, tuple)) and len(video) > 0 and all(_is_frame(v) for v in video)
            if not (isinstance(video, (str, os.PathLike)) or is_array or is_frame_list):
                raise ValueError(
                    "`videos` must be video paths, frame arrays [T, H, W, C] or lists of frames; got an item of "
                    f"type {type(video).__name__}."
                )
        return list(videos)
    raise ValueError(f"`videos` must be a video or a list of videos, got {type(videos).__name__}.")


def _frames_to_tensor(video: Any) -> torch.Tensor:
    """Frames (an array/tensor or a list of PIL images or arrays) as `[T, H, W, 3]`, uint8 or float32 in [0, 1]."""
    if isinstance(video, (list, tuple)):
        frames = [np.asarray(f.convert("RGB")) if isinstance(f, Image.Image) else _frame_array(f) for f in video]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise ValueError(f"`videos` has frames of different sizes in one video: {sorted(shapes)}.")
        array = np.stack(frames)
    else:
        array = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    if array.ndim != 4:
        raise ValueError(f"`videos` frames must stack to [T, H, W, C], got shape {array.shape}.")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)
    if array.shape[0] == 0:
        raise ValueError("`videos` contains a video with no frames.")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"`videos` contains frames with 0 pixels (shape {array.shape}).")
    channels = array.shape[-1]
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    elif channels == 4:
        array = array[..., :3]
    elif channels != 3:
        raise ValueError(f"`videos` frames must have 1, 3 or 4 channels, got shape {array.shape}.")
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    if array.dtype == np.uint16:
        return torch.from_numpy(array.astype(np.float32) / 65535.0)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"`videos` frames must be uint8, uint16 or floating point, got dtype {array.dtype}.")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("`videos` contains NaN or infinite pixel values.")
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("`videos` floating-point frames must hold values in [0, 1] (pass uint8 for 0-255 data).")
    return torch.from_numpy(array)


def _frame_array(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    array = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        array = array.transpose(1, 2, 0)
    return array


def _frame_rate(stream: Any) -> float:
    """A video stream's frames per second from its header (30 when the header does not say)."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else 30.0


def decoded_video_bytes(path: str | os.PathLike) -> int | None:
    """The bytes that a video file's frames take decoded to RGB uint8, from its header (the frame count, else the
    duration): None when the header does not tell or the file cannot be opened as a video."""
    if av is None:
        return None
    try:
        container = _open_container(os.fspath(path))
    except ValueError:
        return None
    try:
        stream = container.streams.video[0]
        frames = stream.frames
        if not frames and container.duration:
            frames = math.ceil(container.duration / av.time_base * _frame_rate(stream))
        return frames * stream.width * stream.height * 3 if frames else None
    finally:
        container.close()


def _open_container(path: str) -> Any:
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as error:
        raise ValueError(f"`videos`: cannot open {path!r} as a video ({error}).") from error
    if not container.streams.video:
        container.close()
        raise ValueError(f"`videos`: {path!r} has no video stream.")
    reader = container.format.name
    if reader == "image2" or reader.endswith("_pipe"):  # FFmpeg's still-image readers (png_pipe, jpeg_pipe, ...)
        container.close()
        raise ValueError(f"`videos`: {path!r} is a still image ({reader}), not a video; pass it as `images`.")
    return container


def decode_video_frames(path: str | os.PathLike, frame_indices: Any) -> torch.Tensor:
    """Decode the frames `frame_indices(total_frames, fps)` asks for from a video file, as `[N, H, W, 3]` uint8.

    Decoding stops after the last frame needed; a clip that starts later first seeks to the keyframe before it.
    Frames that cannot be decoded are replaced by the last decoded frame (the original's fallback).
    """
    if av is None:
        raise ImportError("Decoding video files needs PyAV: pip install av")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"`videos`: no such file {path!r}.")
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        fps = _frame_rate(stream)
        total = stream.frames
        if not total:  # unknown in the header: count the packets, then start again
            total = sum(1 for packet in container.demux(stream) if packet.size)
            container.close()
            container = _open_container(path)
            stream = container.streams.video[0]
        if not total:
            raise ValueError(f"`videos`: {path!r} holds no video frames.")
        indices = list(frame_indices(total, fps))
        decoded = _decode(container, stream, sorted(set(indices)), fps)
    finally:
        container.close()
    if not decoded:
        raise ValueError(f"`videos`: no frame could be decoded from {path!r}.")
    last = decoded[max(decoded)]
    return torch.from_numpy(np.stack([decoded.get(i, last) for i in indices]))


def decode_all_video_frames(path: str | os.PathLike) -> tuple[torch.Tensor, float]:
    """Every frame of a video file as `[N, H, W, 3]` uint8, and its frame rate.

    N is the frame count that `decode_video_frames` samples from (frames that cannot be decoded are replaced by the
    last decoded frame), so the processor samples these frames with `video_fps=fps, do_sample_frames=True` as it
    samples the file.
    """
    rate = []

    def every_frame(total: int, fps: float) -> range:
        rate.append(fps)
        return range(total)

    frames = decode_video_frames(path, every_frame)
    return frames, rate[0]


def _decode(container: Any, stream: Any, wanted: list[int], fps: float) -> dict[int, np.ndarray]:
    """Decode the frames at the sorted indices `wanted`: {index: HWC uint8 RGB}."""
    if FRAME_THREADS:
        stream.thread_type = "AUTO"
    start = stream.start_time or 0
    seek = wanted[0] > 0 and stream.time_base is not None
    if seek:
        # Land on the keyframe before the first wanted frame; positions then come from the timestamps.
        container.seek(start + int(wanted[0] / fps / stream.time_base), stream=stream, backward=True, any_frame=False)
    wanted_set, frames, count = set(wanted), {}, 0
    try:
        for frame in container.decode(stream):
            if not seek:
                index, count = count, count + 1
            elif frame.pts is not None:
                index = round(float((frame.pts - start) * stream.time_base) * fps)
            else:
                continue  # after a seek only timestamps give positions
            if index in wanted_set:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= wanted[-1]:
                break
    except av.FFmpegError:
        pass  # a stream that breaks off: keep what was decoded, the caller repeats the last frame
    return frames


# A saved video processor config carries `auto_map`, so that `trust_remote_code` loads this class without the package.
UniPerceiverVideoProcessor.register_for_auto_class("AutoVideoProcessor")

__all__ = ["UniPerceiverVideoProcessor", "decode_all_video_frames", "decode_video_frames", "sample_frame_indices"]
