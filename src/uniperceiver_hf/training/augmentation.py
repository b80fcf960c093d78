"""Training-time image augmentation of Uni-Perceiver (paper appendix E; facts document section 4), PIL/NumPy/torch only.

The ImageNet recipe of the original is timm's `create_transform`: random resized crop (bicubic), horizontal flip,
RandAugment `"rand-m9-mstd0.5-inc1"` (timm switches colour jitter off when RandAugment is on), normalisation,
random erasing 0.25 (`"pixel"`, one box), and in stage 1 Mixup 0.8 / CutMix 1.0 with label smoothing 0.1 on the
batch. Image-text data use a short-side resize, a random crop and a flip; VQA flips with a left/right word swap.
The numbers (magnitude mappings, probabilities, box sampling) follow timm's; the code is our own.

Randomness comes only from the `rng: random.Random` passed to each call (the random resized crop reuses the image
processor's helper under a torch generator state seeded from `rng`), so that the same seed gives the same output.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image, ImageEnhance, ImageOps
from transformers.image_utils import IMAGENET_DEFAULT_MEAN

from ..image_processing_uniperceiver import (
    UniPerceiverImageProcessor,
    center_crop_offsets,
    random_resized_crop_box,
    short_side_resize_shape,
)


_MAX_LEVEL = 10.0  # RandAugment magnitudes live in [0, 10]; an op's argument is a fraction level / 10 of its range
_TRANSLATE_FRACTION = 0.45  # timm's default range of TranslateXRel/YRel, as a fraction of the image side


def mean_fill(image_mean: Sequence[float]) -> tuple[int, ...]:
    """The 0-255 fill colour of geometric ops: the dataset mean, as timm's `img_mean` ((124, 116, 104) for ImageNet)."""
    return tuple(min(255, round(255 * m)) for m in image_mean)


IMAGENET_FILL = mean_fill(IMAGENET_DEFAULT_MEAN)


def _check_probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1], got {value!r}.")
    return float(value)


def _signed(value: float, rng: random.Random) -> float:
    """`value` with a random sign (probability 0.5 each), as timm's ops whose direction is free."""
    return -value if rng.random() > 0.5 else value


def _enhance_level(level: float, rng: random.Random) -> float:
    return level / _MAX_LEVEL * 1.8 + 0.1  # factor in [0.1, 1.9]


def _enhance_increasing(level: float, rng: random.Random) -> float:
    return 1.0 + _signed(level / _MAX_LEVEL * 0.9, rng)  # 1 is "no change"; level 10 reaches 0.1 or 1.9


def _no_argument(level: float, rng: random.Random) -> None:
    return None


def _affine(image: Image.Image, matrix: tuple[float, ...], fill: tuple[int, ...]) -> Image.Image:
    return image.transform(image.size, Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC, fillcolor=fill)


def _posterize(image: Image.Image, bits: int, fill: Any) -> Image.Image:
    return image if bits >= 8 else ImageOps.posterize(image, bits)


def _solarize(image: Image.Image, threshold: int, fill: Any) -> Image.Image:
    return ImageOps.solarize(image, threshold)


def _solarize_add(image: Image.Image, add: int, fill: Any) -> Image.Image:
    """Add `add` to the pixels below 128 (clipped at 255), keep the others."""
    table = [min(255, i + add) if i < 128 else i for i in range(256)]
    return image.point(table * len(image.getbands()))


def _enhance(enhancer: type) -> Callable[[Image.Image, float, Any], Image.Image]:
    return lambda image, factor, fill: enhancer(image).enhance(factor)


# name -> (level in [0, 10], rng -> the op's argument; the op on an RGB image with that argument and a fill colour).
# The "Increasing" variants differ only in the argument: their severity grows with the level.
_OPS: dict[str, tuple[Callable[[float, random.Random], Any], Callable[[Image.Image, Any, Any], Image.Image]]] = {
    "AutoContrast": (_no_argument, lambda image, arg, fill: ImageOps.autocontrast(image)),
    "Equalize": (_no_argument, lambda image, arg, fill: ImageOps.equalize(image)),
    "Invert": (_no_argument, lambda image, arg, fill: ImageOps.invert(image)),
    "Rotate": (
        lambda level, rng: _signed(level / _MAX_LEVEL * 30.0, rng),
        lambda image, degrees, fill: image.rotate(degrees, Image.Resampling.BICUBIC, fillcolor=fill),
    ),
    "Posterize": (lambda level, rng: int(level / _MAX_LEVEL * 4), _posterize),
    "PosterizeIncreasing": (lambda level, rng: 4 - int(level / _MAX_LEVEL * 4), _posterize),
    "Solarize": (lambda level, rng: min(256, int(level / _MAX_LEVEL * 256)), _solarize),
    "SolarizeIncreasing": (lambda level, rng: 256 - min(256, int(level / _MAX_LEVEL * 256)), _solarize),
    "SolarizeAdd": (lambda level, rng: min(128, int(level / _MAX_LEVEL * 110)), _solarize_add),
    "Color": (_enhance_level, _enhance(ImageEnhance.Color)),
    "ColorIncreasing": (_enhance_increasing, _enhance(ImageEnhance.Color)),
    "Contrast": (_enhance_level, _enhance(ImageEnhance.Contrast)),
    "ContrastIncreasing": (_enhance_increasing, _enhance(ImageEnhance.Contrast)),
    "Brightness": (_enhance_level, _enhance(ImageEnhance.Brightness)),
    "BrightnessIncreasing": (_enhance_increasing, _enhance(ImageEnhance.Brightness)),
    "Sharpness": (_enhance_level, _enhance(ImageEnhance.Sharpness)),
    "SharpnessIncreasing": (_enhance_increasing, _enhance(ImageEnhance.Sharpness)),
    "ShearX": (
        lambda level, rng: _signed(level / _MAX_LEVEL * 0.3, rng),
        lambda image, factor, fill: _affine(image, (1, factor, 0, 0, 1, 0), fill),
    ),
    "ShearY": (
        lambda level, rng: _signed(level / _MAX_LEVEL * 0.3, rng),
        lambda image, factor, fill: _affine(image, (1, 0, 0, factor, 1, 0), fill),
    ),
    "TranslateXRel": (
        lambda level, rng: _signed(level / _MAX_LEVEL * _TRANSLATE_FRACTION, rng),
        lambda image, frac, fill: _affine(image, (1, 0, frac * image.width, 0, 1, 0), fill),
    ),
    "TranslateYRel": (
        lambda level, rng: _signed(level / _MAX_LEVEL * _TRANSLATE_FRACTION, rng),
        lambda image, frac, fill: _affine(image, (1, 0, 0, 0, 1, frac * image.height), fill),
    ),
}
RAND_AUGMENT_OPS = [
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "SolarizeAdd",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
]
RAND_AUGMENT_INCREASING_OPS = [
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
]


def rand_augment_argument(name: str, level: float, rng: random.Random) -> Any:
    """The argument of op `name` at magnitude `level` (in [0, 10]), with its random sign where it has one."""
    if name not in _OPS:
        raise ValueError(f"`name` must be one of {sorted(_OPS)}, got {name!r}.")
    return _OPS[name][0](level, rng)


def apply_rand_augment_op(image: Image.Image, name: str, argument: Any, fill: Sequence[int]) -> Image.Image:
    """Op `name` with `argument` (from `rand_augment_argument`) on an RGB image; `fill` paints uncovered pixels."""
    if name not in _OPS:
        raise ValueError(f"`name` must be one of {sorted(_OPS)}, got {name!r}.")
    return _OPS[name][1](image, argument, tuple(fill))


class RandAugment:
    """RandAugment as timm's (Cubuk et al. 2020; the original's ImageNet recipe is `"rand-m9-mstd0.5-inc1"`).

    Each call picks `num_ops` ops uniformly with replacement; each is applied with probability `probability`, at a
    magnitude drawn from N(`magnitude`, `magnitude_std`) (uniform in [0, `magnitude`] for an infinite std) clipped
    to [0, 10]. `increasing=True` uses the op set whose severity grows with the magnitude.
    """

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: float = 9,
        magnitude_std: float = 0.5,
        increasing: bool = True,
        probability: float = 0.5,
        fill: Sequence[int] = IMAGENET_FILL,
    ):
        if num_ops < 0:
            raise ValueError(f"`num_ops` must be >= 0, got {num_ops!r}.")
        if magnitude < 0:
            raise ValueError(f"`magnitude` must be >= 0, got {magnitude!r}.")
        if not magnitude_std >= 0:
            raise ValueError(f"`magnitude_std` must be >= 0 (inf for uniform sampling), got {magnitude_std!r}.")
        self.num_ops, self.magnitude, self.magnitude_std = int(num_ops), float(magnitude), float(magnitude_std)
        self.probability = _check_probability("probability", probability)
        self.ops = RAND_AUGMENT_INCREASING_OPS if increasing else RAND_AUGMENT_OPS
        self.fill = tuple(fill)

    @classmethod
    def from_string(cls, config: str, **kwargs: Any) -> RandAugment:
        """Parse timm's config string: `"rand"` then `-`-separated `m<magnitude>`, `n<num ops>`, `p<probability>`,
        `mstd<std>` (> 100 means uniform) and `inc<0|1>`; e.g. `"rand-m9-mstd0.5-inc1"`."""
        sections = config.split("-")
        if sections[0] != "rand":
            raise ValueError(f"`config` must start with 'rand', got {config!r}.")
        keys = {
            "m": ("magnitude", float),
            "n": ("num_ops", int),
            "p": ("probability", float),
            "mstd": ("magnitude_std", float),
            "inc": ("increasing", lambda v: bool(int(v))),
        }
        options: dict[str, Any] = {"magnitude": 10.0, "increasing": False, "magnitude_std": 0.0}
        for section in sections[1:]:
            match = re.fullmatch(r"([a-z]+)(\d[\d.]*)", section)
            if match is None or match.group(1) not in keys:
                raise ValueError(f"`config` has an unknown section {section!r} in {config!r}; known: {sorted(keys)}.")
            name, parse = keys[match.group(1)]
            options[name] = parse(match.group(2))
        if options["magnitude_std"] > 100:
            options["magnitude_std"] = math.inf
        return cls(**{**options, **kwargs})

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        image = image if image.mode == "RGB" else image.convert("RGB")
        for name in rng.choices(self.ops, k=self.num_ops):
            if rng.random() > self.probability:
                continue
            if math.isinf(self.magnitude_std):
                level = rng.uniform(0.0, self.magnitude)
            elif self.magnitude_std > 0:
                level = rng.gauss(self.magnitude, self.magnitude_std)
            else:
                level = self.magnitude
            level = max(0.0, min(level, _MAX_LEVEL))
            image = apply_rand_augment_op(image, name, rand_augment_argument(name, level, rng), self.fill)
        return image


class RandomErasing:
    """Random erasing (Zhong et al. 2020) on a normalised [3, H, W] tensor, as timm's: with `probability`, 1 to
    `max_count` boxes of area `min_area`-`max_area` of the image (split between the boxes) and log-uniform aspect
    ratio `min_aspect`-`max_aspect` are filled with N(0, 1) noise per pixel (`"pixel"`), per box and channel
    (`"rand"`) or zeros (`"const"`). A box is redrawn up to 10 times until it fits. Returns a new tensor."""

    def __init__(
        self,
        probability: float = 0.25,
        mode: str = "pixel",
        max_count: int = 1,
        min_area: float = 0.02,
        max_area: float = 1 / 3,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
    ):
        self.probability = _check_probability("probability", probability)
        if mode not in ("pixel", "rand", "const"):
            raise ValueError(f"`mode` must be 'pixel', 'rand' or 'const', got {mode!r}.")
        if max_count < 1:
            raise ValueError(f"`max_count` must be >= 1, got {max_count!r}.")
        if not 0 < min_area <= max_area <= 1:
            raise ValueError(
                f"`min_area` and `max_area` must satisfy 0 < min <= max <= 1, got {min_area}, {max_area}."
            )
        max_aspect = 1 / min_aspect if max_aspect is None else max_aspect
        if not 0 < min_aspect <= max_aspect:
            raise ValueError(f"`min_aspect` must be in (0, max_aspect], got {min_aspect} (max {max_aspect}).")
        self.mode, self.max_count, self.min_area, self.max_area = mode, int(max_count), min_area, max_area
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect))

    def __call__(self, pixel_values: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if pixel_values.ndim != 3:
            raise ValueError(f"`pixel_values` must be one [C, H, W] image, got shape {tuple(pixel_values.shape)}.")
        pixel_values = pixel_values.clone()
        if rng.random() > self.probability:
            return pixel_values
        channels, height, width = pixel_values.shape
        count = rng.randint(1, self.max_count)
        for _ in range(count):
            for _attempt in range(10):
                area = rng.uniform(self.min_area, self.max_area) * height * width / count
                aspect = math.exp(rng.uniform(*self.log_aspect))
                box_height, box_width = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
                if box_height < height and box_width < width:
                    top, left = rng.randint(0, height - box_height), rng.randint(0, width - box_width)
                    box = pixel_values[:, top : top + box_height, left : left + box_width]
                    box.copy_(self._fill((channels, box_height, box_width), rng))
                    break
        return pixel_values

    def _fill(self, shape: tuple[int, int, int], rng: random.Random) -> torch.Tensor:
        if self.mode == "const":
            return torch.zeros(shape[0], 1, 1).expand(shape)
        generator = torch.Generator().manual_seed(rng.getrandbits(63))  # noise drawn from `rng` alone
        size = shape if self.mode == "pixel" else (shape[0], 1, 1)
        return torch.randn(size, generator=generator).expand(shape)


class MixupCutmix:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) of a batch with its reverse, and soft targets.

    In `"batch"` mode (timm's, the only one here) one lambda serves the whole batch: with probability `prob` the
    batch is mixed, by CutMix with probability `switch_prob` (when both alphas are > 0) with lambda ~
    Beta(cutmix_alpha, cutmix_alpha) corrected to the pasted box's area, else by Mixup with lambda ~
    Beta(mixup_alpha, mixup_alpha). Example i is paired with example B-1-i. Targets are label-smoothed one-hots
    (off value `label_smoothing / num_classes`) mixed with the same lambda; each row sums to 1.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        mode: str = "batch",
    ):
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be >= 2, got {num_classes!r}.")
        if mixup_alpha < 0 or cutmix_alpha < 0 or mixup_alpha == cutmix_alpha == 0:
            raise ValueError(
                f"`mixup_alpha` and `cutmix_alpha` must be >= 0 and not both 0, got {mixup_alpha}, {cutmix_alpha}."
            )
        if mode != "batch":
            raise ValueError(f"`mode` must be 'batch' (one lambda per batch), got {mode!r}.")
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = int(num_classes), mixup_alpha, cutmix_alpha
        self.prob = _check_probability("prob", prob)
        self.switch_prob = _check_probability("switch_prob", switch_prob)
        self.label_smoothing = _check_probability("label_smoothing", label_smoothing)

    def __call__(
        self, pixel_values: torch.Tensor, labels: torch.Tensor, rng: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if pixel_values.ndim != 4:
            raise ValueError(f"`pixel_values` must be [B, C, H, W], got shape {tuple(pixel_values.shape)}.")
        if labels.shape != pixel_values.shape[:1] or labels.dtype != torch.long:
            raise ValueError(
                f"`labels` must be a long tensor of shape [{len(pixel_values)}], got "
                f"{labels.dtype} {tuple(labels.shape)}."
            )
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes:
            raise ValueError(f"`labels` must lie in [0, {self.num_classes}), got {labels.tolist()}.")
        lam, use_cutmix = 1.0, False
        if rng.random() < self.prob:
            use_cutmix = self.mixup_alpha == 0 or (self.cutmix_alpha > 0 and rng.random() < self.switch_prob)
            alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            lam = rng.betavariate(alpha, alpha)
        reverse = pixel_values.flip(0)
        if lam == 1.0:
            mixed = pixel_values.clone()
        elif use_cutmix:
            height, width = pixel_values.shape[-2:]
            top, bottom, left, right = self._cutmix_box(height, width, lam, rng)
            lam = 1.0 - (bottom - top) * (right - left) / (height * width)  # the area actually kept
            mixed = pixel_values.clone()
            mixed[:, :, top:bottom, left:right] = reverse[:, :, top:bottom, left:right]
        else:
            mixed = pixel_values * lam + reverse * (1.0 - lam)
        off = self.label_smoothing / self.num_classes
        one_hot = torch.full((len(labels), self.num_classes), off, device=labels.device)
        one_hot.scatter_(1, labels[:, None], 1.0 - self.label_smoothing + off)
        return mixed, one_hot * lam + one_hot.flip(0) * (1.0 - lam)

    @staticmethod
    def _cutmix_box(height: int, width: int, lam: float, rng: random.Random) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of a box of side fraction sqrt(1 - lam) centred anywhere, clipped to the image."""
        ratio = math.sqrt(1.0 - lam)
        cut_height, cut_width = int(height * ratio), int(width * ratio)
        center_y, center_x = rng.randrange(height), rng.randrange(width)
        top, bottom = max(center_y - cut_height // 2, 0), min(center_y + cut_height // 2, height)
        left, right = max(center_x - cut_width // 2, 0), min(center_x + cut_width // 2, width)
        return top, bottom, left, right


class ImageTrainTransform:
    """The original's training transform of a batch of images: crop, flip, RandAugment, rescale + normalise with
    `processor`, random erasing; returns `pixel_values` [B, 3, crop_size, crop_size].

    `crop` is `"random_resized"` (ImageNet: the processor's area/aspect ranges, then a resize to `crop_size`),
    `"short_side"` (image-text data: short side to `short_side`, random crop; 256 is the paper's appendix E, 224
    the released code's `clip_transforms`) or `"center"` (short side to `short_side`, centre crop). Resizes use
    the processor's filter (bicubic). `rand_augment` is a timm config string (ImageNet: `"rand-m9-mstd0.5-inc1"`,
    filled with the processor's mean); `random_erasing` is the erasing probability (ImageNet: 0.25, `"pixel"`).
    """

    def __init__(
        self,
        processor: UniPerceiverImageProcessor,
        crop: str = "random_resized",
        short_side: int = 256,
        crop_size: int = 224,
        flip_probability: float = 0.5,
        rand_augment: str | None = None,
        random_erasing: float = 0.0,
    ):
        if crop not in ("random_resized", "short_side", "center"):
            raise ValueError(f"`crop` must be 'random_resized', 'short_side' or 'center', got {crop!r}.")
        if crop_size < 1 or (crop != "random_resized" and short_side < crop_size):
            raise ValueError(f"`short_side` ({short_side}) must be >= `crop_size` ({crop_size}) >= 1.")
        self.processor, self.crop, self.short_side, self.crop_size = processor, crop, int(short_side), int(crop_size)
        self.flip_probability = _check_probability("flip_probability", flip_probability)
        _check_probability("random_erasing", random_erasing)
        fill = mean_fill(processor.image_mean)
        self.rand_augment = None if rand_augment is None else RandAugment.from_string(rand_augment, fill=fill)
        self.random_erasing = RandomErasing(random_erasing) if random_erasing > 0 else None

    def __call__(self, images: Sequence[Image.Image | str | os.PathLike], rng: random.Random) -> torch.Tensor:
        if isinstance(images, (Image.Image, str, os.PathLike)):
            images = [images]
        crops = []
        for image in images:
            image = self._crop(_load_rgb(image), rng)
            if rng.random() < self.flip_probability:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.rand_augment is not None:
                image = self.rand_augment(image, rng)
            crops.append(image)
        pixel_values = self.processor(crops, do_resize=False, do_center_crop=False, return_tensors="pt")[
            "pixel_values"
        ]
        if self.random_erasing is not None:
            pixel_values = torch.stack([self.random_erasing(p, rng) for p in pixel_values])
        return pixel_values

    def _crop(self, image: Image.Image, rng: random.Random) -> Image.Image:
        resample, size = self.processor.resample, self.crop_size
        if self.crop == "random_resized":
            with torch.random.fork_rng(devices=[]):  # the processor's helper draws from torch's generator
                torch.manual_seed(rng.getrandbits(63))
                top, left, height, width = random_resized_crop_box(
                    image.height,
                    image.width,
                    self.processor.random_resized_crop_scale,
                    self.processor.random_resized_crop_ratio,
                )
            return image.crop((left, top, left + width, top + height)).resize((size, size), resample)
        height, width = short_side_resize_shape(image.height, image.width, self.short_side)
        if (width, height) != image.size:
            image = image.resize((width, height), resample)
        if self.crop == "center":
            top, left = center_crop_offsets(height, width, size, size)
        else:
            top, left = rng.randint(0, height - size), rng.randint(0, width - size)
        return image.crop((left, top, left + size, top + size))


def _load_rgb(image: Image.Image | str | os.PathLike) -> Image.Image:
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                return opened.convert("RGB")
        except OSError as error:
            raise ValueError(f"`images`: cannot read an image from {str(image)!r} ({error}).") from error
    if not isinstance(image, Image.Image):
        raise TypeError(f"`images` must hold PIL images or file paths, got {type(image).__name__}.")
    return image if image.mode == "RGB" else image.convert("RGB")


_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def _swap_left_right(text: str) -> str:
    """Swap the whole words "left" and "right", keeping lower, Title or UPPER case ("leftover" is left alone)."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        other = "right" if word.lower() == "left" else "left"
        return other.upper() if word.isupper() else other.capitalize() if word[0].isupper() else other

    return _LEFT_RIGHT.sub(swap, text)


def vqa_flip(
    image: Image.Image | torch.Tensor,
    question: str,
    answer: str | list[str],
    rng: random.Random,
    probability: float = 0.5,
) -> tuple[Image.Image | torch.Tensor, str, str | list[str]]:
    """With `probability`, mirror the image (PIL, or a [..., H, W] tensor) and swap the whole words "left" and
    "right" (case kept) in the question and the answer(s), so that they still describe the flipped image.

    How the original differs (facts document section 4): its VQA training flips with probability 0.5 and swaps the
    question's token ids of `left`/`right`, but the ids it uses (33949/13341) are those of the non-word-final BPE
    pieces, not of the words `left</w>`/`right</w>`, so the swap almost never fires and a flipped image nearly
    always keeps its question unchanged.
    """
    _check_probability("probability", probability)
    if rng.random() >= probability:
        return image, question, answer
    flipped = image.flip(-1) if isinstance(image, torch.Tensor) else image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    answer = _swap_left_right(answer) if isinstance(answer, str) else [_swap_left_right(a) for a in answer]
    return flipped, _swap_left_right(question), answer


__all__ = [
    "RAND_AUGMENT_INCREASING_OPS",
    "RAND_AUGMENT_OPS",
    "IMAGENET_FILL",
    "ImageTrainTransform",
    "MixupCutmix",
    "RandAugment",
    "RandomErasing",
    "apply_rand_augment_op",
    "mean_fill",
    "rand_augment_argument",
    "vqa_flip",
]
