"""Uni-Perceiver's image preprocessing, exact to the original's evaluation transforms, with PIL and NumPy only.

The original uses two torchvision evaluation pipelines, both with ImageNet mean/std:

- `"imagenet"` (ImageNet classification, `imagenet.py::build_transform`): resize the short side to 256 with PIL
  bicubic, centre-crop 224;
- `"clip"` (captioning, retrieval and VQA, `custom_transforms.py::clip_transforms`): resize the short side to 224
  with PIL bicubic, centre-crop 224.

This processor reproduces them with PIL (same resize filter, same rounding of the output size and of the crop
offsets), so that a converted checkpoint sees the pixels it was trained on; no torchvision is needed. The preset
is chosen per call (`preset="clip"`), and `UniPerceiverProcessor` picks the original's preset for each task.

Training augmentation (`do_train_augmentation=True`), as the original's training transforms:
`"imagenet"` takes a random resized crop (area 8-100 %, aspect ratio 3/4-4/3, bicubic) and a horizontal flip
with probability 0.5; `"clip"` resizes the short side, takes a random crop and a horizontal flip. RandAugment,
colour jitter, random erasing and mixup of the original ImageNet recipe are not part of the processor.
Randomness comes from torch's global generator (seed it with `torch.manual_seed`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    PILImageResampling,
    SizeDict,
)
from transformers.processing_utils import ImagesKwargs, Unpack


# Name -> (resize of the short side, centre-crop size) of the original's two evaluation transforms at 224 px; a
# model trained at another `image_size` scales both (e.g. "imagenet" at 64 px: short side 73, crop 64).
IMAGE_PRESETS: dict[str, tuple[int, int]] = {"imagenet": (256, 224), "clip": (224, 224)}

# Pixels an image (or all frames of a video clip) may have after the short-side resize, before the crop: about
# 400 MB as float32 RGB. Only extreme aspect ratios reach it (an image longer than about 500 times its short side;
# a 100,000 x 2 strip would need 3.3 billion pixels); such inputs are refused rather than allocated.
MAX_RESIZED_PIXELS = 32_000_000


def check_pixel_budget(height: int, width: int, argument: str, frames: int = 1) -> None:
    """Refuses a resize to `frames` x `height` x `width` pixels beyond `MAX_RESIZED_PIXELS`, before allocating it."""
    if frames * height * width > MAX_RESIZED_PIXELS:
        clip = f" x {frames} frames" if frames > 1 else ""
        raise ValueError(
            f"`{argument}`: resizing to {height} x {width} pixels{clip} exceeds the budget of {MAX_RESIZED_PIXELS:,} "
            "pixels (`MAX_RESIZED_PIXELS`): the aspect ratio is too extreme. Crop the input to the region of interest."
        )


class UniPerceiverImageProcessorKwargs(ImagesKwargs, total=False):
    """
    preset (`str`, *optional*):
        `"imagenet"` (short side 256, crop 224) or `"clip"` (short side 224, crop 224); sets `size` and `crop_size`
        unless they are passed too.
    do_train_augmentation (`bool`, *optional*):
        Replace the centre crop by the original's random training crops and a random horizontal flip.
    image_size (`int`, *optional*):
        The model's input size; the presets are scaled from 224 px to it.
    """

    preset: str | None
    do_train_augmentation: bool | None
    image_size: int | None


def _preset_sizes(preset: str, image_size: int = 224) -> tuple[dict[str, int], dict[str, int]]:
    if preset not in IMAGE_PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(IMAGE_PRESETS)}, got {preset!r}.")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"`image_size` must be a positive integer, got {image_size!r}.")
    short_side, crop = IMAGE_PRESETS[preset]
    short_side = short_side if image_size == crop else round(short_side * image_size / crop)
    return {"shortest_edge": short_side}, {"height": image_size, "width": image_size}


def short_side_resize_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(new_height, new_width) with the short side at `short_side` and the long side truncated, as torchvision."""
    if width <= height:
        return int(short_side * height / width), short_side
    return short_side, int(short_side * width / height)


def center_crop_offsets(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """(top, left) of a centre crop, rounded half to even as torchvision's `CenterCrop` (not floor division)."""
    return int(round((height - crop_height) / 2.0)), int(round((width - crop_width) / 2.0))


def _uniform(low: float, high: float) -> float:
    return float(torch.empty(1).uniform_(low, high).item())


def _randint(low: int, high: int) -> int:
    """A random integer in [low, high] (both included)."""
    return int(torch.randint(low, high + 1, (1,)).item())


def random_resized_crop_box(
    height: int, width: int, scale: Sequence[float], ratio: Sequence[float]
) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) of a random crop covering `scale` of the area with aspect in `ratio`.

    Ten draws are tried; if none fits, the largest centred crop whose aspect ratio lies in `ratio` is used
    (the behaviour of torchvision's and timm's RandomResizedCrop).
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(scale[0], scale[1])
        aspect = math.exp(_uniform(*log_ratio))
        crop_width = int(round(math.sqrt(target_area * aspect)))
        crop_height = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            return _randint(0, height - crop_height), _randint(0, width - crop_width), crop_height, crop_width
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_width, crop_height = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        crop_width, crop_height = int(round(height * max(ratio))), height
    else:
        crop_width, crop_height = width, height
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


class UniPerceiverImageProcessor(PilBackend):
    r"""
    Image processor of Uni-Perceiver: the original's `"imagenet"` and `"clip"` evaluation transforms (PIL bicubic
    short-side resize, torchvision-rounded centre crop, ImageNet mean/std) and its training crops.

    Accepts PIL images (any mode: RGB, grayscale, palette, RGBA and LA lose their alpha as with PIL's
    `convert("RGB")`, CMYK, 16-bit and 32-bit grayscale), NumPy arrays and torch tensors (HWC or CHW, 1, 3 or 4
    channels; `uint8` and `uint16` are scaled by their range, floating-point arrays must already be in [0, 1]),
    paths to image files, and lists of any of these, of any sizes. Images with 0 pixels, non-finite values or an
    unreadable path raise a `ValueError` naming `images`.

    Args:
        preset (`str`, *optional*, defaults to `"imagenet"`):
            The default transform, `"imagenet"` or `"clip"` (see `IMAGE_PRESETS`); a call can pass another one.
        do_train_augmentation (`bool`, *optional*, defaults to `False`):
            Use the original's random training crops and flip instead of the centre crop.
        random_resized_crop_scale (`tuple[float, float]`, *optional*, defaults to `(0.08, 1.0)`):
            Area range of the `"imagenet"` training crop.
        random_resized_crop_ratio (`tuple[float, float]`, *optional*, defaults to `(3/4, 4/3)`):
            Aspect-ratio range of the `"imagenet"` training crop.
        flip_probability (`float`, *optional*, defaults to 0.5):
            Probability of the training-time horizontal flip.
        **kwargs: the usual image-processor options (`size`, `crop_size`, `resample`, `image_mean`, ...).
    """

    valid_kwargs = UniPerceiverImageProcessorKwargs
    model_input_names = ["pixel_values"]

    resample = PILImageResampling.BICUBIC
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    preset = "imagenet"
    do_train_augmentation = False
    random_resized_crop_scale = (0.08, 1.0)
    random_resized_crop_ratio = (3 / 4, 4 / 3)
    flip_probability = 0.5
    image_size = 224

    def __init__(
        self, preset: str = "imagenet", image_size: int = 224, **kwargs: Unpack[UniPerceiverImageProcessorKwargs]
    ):
        size, crop_size = _preset_sizes(preset, image_size)
        kwargs.setdefault("size", size)
        kwargs.setdefault("crop_size", crop_size)
        super().__init__(preset=preset, image_size=image_size, **kwargs)

    def preprocess(self, images: Any, *args: Any, **kwargs: Unpack[UniPerceiverImageProcessorKwargs]) -> BatchFeature:
        """Preprocess an image or a batch; `preset=` switches between the original's two transforms per call."""
        if kwargs.get("preset") is not None:
            size, crop_size = _preset_sizes(kwargs["preset"], kwargs.get("image_size") or self.image_size)
            if kwargs.get("size") is None:
                kwargs["size"] = size
            if kwargs.get("crop_size") is None:
                kwargs["crop_size"] = crop_size
        return super().preprocess(images, *args, **kwargs)

    # -- input handling ------------------------------------------------------------------------------------------

    def _prepare_images_structure(self, images: Any, expected_ndims: int = 3) -> list[Any]:
        """A flat list of single images; a list of lists (one list per example) is flattened in order."""
        if images is None:
            raise ValueError("`images` is None; pass an image or a list of images.")
        if _is_single_image(images):
            return [images]
        if isinstance(images, (list, tuple)):
            flat: list[Any] = []
            for item in images:
                if _is_single_image(item):
                    flat.append(item)
                elif isinstance(item, (list, tuple)) and all(_is_single_image(x) for x in item):
                    flat.extend(item)
                else:
                    raise ValueError(
                        "`images` must be images (PIL, NumPy, torch or file paths) or lists of them; "
                        f"got an item of type {type(item).__name__}."
                    )
            if not flat:
                raise ValueError("`images` is an empty list.")
            return flat
        if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
            return list(images)
        raise ValueError(f"`images` must be an image or a list of images, got {type(images).__name__}.")

    def process_image(
        self,
        image: Any,
        do_convert_rgb: bool | None = None,
        input_data_format: str | ChannelDimension | None = None,
        **kwargs: Any,
    ) -> Image.Image | np.ndarray:
        """One image as the working format of `_preprocess`: an RGB `PIL.Image` (8-bit inputs, kept in PIL so the
        resize is PIL's, as in the original) or a float32 HWC array in [0, 1] (16-bit and float inputs)."""
        if isinstance(image, (str, os.PathLike)):
            image = _open_image_file(image)
        if isinstance(image, Image.Image):
            return _pil_to_working(image)
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        return _array_to_working(np.asarray(image), input_data_format)

    # -- processing ----------------------------------------------------------------------------------------------

    def _preprocess(
        self,
        images: list[Image.Image | np.ndarray],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | int | None,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | Sequence[float],
        image_std: float | Sequence[float],
        return_tensors: str | None = None,
        preset: str | None = None,
        do_train_augmentation: bool | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        resample = PILImageResampling(resample if resample is not None else self.resample)
        mean = np.asarray(image_mean, dtype=np.float32)
        std = np.asarray(image_std, dtype=np.float32)
        pixel_values = []
        for image in images:
            planes = [image] if isinstance(image, Image.Image) else _float_planes(image)
            if do_train_augmentation:
                planes = self._train_crop(planes, size, crop_size, resample, random_resized=preset == "imagenet")
            else:
                if do_resize:
                    planes = _resize(planes, size, resample)
                if do_center_crop:
                    planes = _center_crop(planes, crop_size.height, crop_size.width)
            array = _planes_to_array(planes, rescale_factor if do_rescale else None)
            if do_normalize:
                array = (array - mean) / std
            pixel_values.append(np.ascontiguousarray(array.transpose(2, 0, 1)))
        if return_tensors is not None:
            pixel_values = np.stack(pixel_values)
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def _train_crop(
        self,
        planes: list[Image.Image],
        size: SizeDict,
        crop_size: SizeDict,
        resample: PILImageResampling,
        random_resized: bool,
    ) -> list[Image.Image]:
        """The original's training crops: a random resized crop (ImageNet) or short-side resize + random crop
        (image-text data), then a random horizontal flip."""
        out_height, out_width = crop_size.height, crop_size.width
        width, height = planes[0].size
        if random_resized:
            top, left, crop_height, crop_width = random_resized_crop_box(
                height, width, self.random_resized_crop_scale, self.random_resized_crop_ratio
            )
            planes = [
                p.crop((left, top, left + crop_width, top + crop_height)).resize((out_width, out_height), resample)
                for p in planes
            ]
        else:
            planes = _resize(planes, size, resample)
            width, height = planes[0].size
            top, left = _randint(0, max(height - out_height, 0)), _randint(0, max(width - out_width, 0))
            planes = [p.crop((left, top, left + out_width, top + out_height)) for p in planes]
        if _uniform(0.0, 1.0) < self.flip_probability:
            planes = [p.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for p in planes]
        return planes


def _is_single_image(value: Any) -> bool:
    if isinstance(value, (Image.Image, str, os.PathLike)):
        return True
    return isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim in (2, 3)


def _open_image_file(path: str | os.PathLike) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened
    except (OSError, ValueError) as error:
        raise ValueError(f"`images`: cannot read an image from {str(path)!r} ({error}).") from error


def _check_size(height: int, width: int) -> None:
    if height == 0 or width == 0:
        raise ValueError(f"`images` contains an image with 0 pixels (height {height}, width {width}).")


def _pil_to_working(image: Image.Image) -> Image.Image | np.ndarray:
    _check_size(image.height, image.width)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # PIL's convert("RGB") would clip 16-bit values at 255; scale the full range instead.
        return _array_to_working(np.asarray(image, dtype=np.float32) / 65535.0, None)
    if image.mode == "F":
        return _array_to_working(np.asarray(image, dtype=np.float32), None)
    return image if image.mode == "RGB" else image.convert("RGB")


def _array_to_working(array: np.ndarray, input_data_format: str | ChannelDimension | None) -> Image.Image | np.ndarray:
    """An array (HW, HWC or CHW; 1, 3 or 4 channels) as an RGB PIL image (uint8) or a float32 HWC array."""
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(f"`images` arrays must be HW, HWC or CHW, got shape {array.shape}.")
    if input_data_format is not None:
        channels_first = ChannelDimension(input_data_format) == ChannelDimension.FIRST
    else:
        channels_first = array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4)
    if channels_first:
        array = array.transpose(1, 2, 0)
    _check_size(array.shape[0], array.shape[1])
    channels = array.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"`images` must have 1, 3 or 4 channels, got an array of shape {array.shape}.")
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    elif channels == 4:
        array = array[..., :3]  # drop alpha, as PIL's convert("RGB")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"`images` arrays must be uint8, uint16, bool or floating point, got dtype {array.dtype}.")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("`images` contains NaN or infinite pixel values.")
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(
            "`images` floating-point arrays must hold values in [0, 1]; got "
            f"[{array.min():.4g}, {array.max():.4g}] (pass uint8 arrays for 0-255 data)."
        )
    return array


def _float_planes(array: np.ndarray) -> list[Image.Image]:
    """A float32 HWC array as three PIL `F` images, so that resizing uses PIL's filters at float precision."""
    return [Image.fromarray(np.ascontiguousarray(array[:, :, c])) for c in range(3)]


def _resize(planes: list[Image.Image], size: SizeDict, resample: PILImageResampling) -> list[Image.Image]:
    width, height = planes[0].size
    if size.shortest_edge:
        new_height, new_width = short_side_resize_shape(height, width, size.shortest_edge)
    elif size.height and size.width:
        new_height, new_width = size.height, size.width
    else:
        raise ValueError(f"`size` must hold `shortest_edge` or `height` and `width`, got {dict(size)}.")
    check_pixel_budget(new_height, new_width, "images")
    if (new_width, new_height) == (width, height):
        return planes
    return [p.resize((new_width, new_height), resample) for p in planes]


def _center_crop(planes: list[Image.Image], crop_height: int, crop_width: int) -> list[Image.Image]:
    """Centre crop; a crop larger than the image is padded with zeros, as torchvision's `CenterCrop`."""
    width, height = planes[0].size
    top, left = center_crop_offsets(height, width, crop_height, crop_width)
    return [p.crop((left, top, left + crop_width, top + crop_height)) for p in planes]


def _planes_to_array(planes: list[Image.Image], rescale_factor: float | None) -> np.ndarray:
    """Back to a float32 HWC array. An 8-bit image is divided by `1 / rescale_factor` in float32, the arithmetic of
    torchvision's `ToTensor` (multiplying by 1/255 differs in the last bit for half of the values); float planes
    are already in [0, 1] and are clipped to it after the resize, as PIL clips 8-bit results."""
    if len(planes) == 1:
        array = np.asarray(planes[0], dtype=np.float32)
        return array / np.float32(1.0 / rescale_factor) if rescale_factor else array
    return np.clip(np.stack([np.asarray(p, dtype=np.float32) for p in planes], axis=-1), 0.0, 1.0)


UniPerceiverImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = ["IMAGE_PRESETS", "MAX_RESIZED_PIXELS", "UniPerceiverImageProcessor", "check_pixel_budget"]
