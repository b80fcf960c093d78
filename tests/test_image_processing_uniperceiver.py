"""UniPerceiverImageProcessor: the original's two evaluation transforms to the bit, input formats, augmentation."""

import numpy as np
import pytest
import torch
from PIL import Image

from uniperceiver_hf import UniPerceiverImageProcessor
from uniperceiver_hf.image_processing_uniperceiver import (
    center_crop_offsets,
    random_resized_crop_box,
    short_side_resize_shape,
)


GOLDEN_KEYS = {"imagenet": "imagenet_eval", "clip": "clip_test"}


@pytest.fixture(scope="module")
def processor() -> UniPerceiverImageProcessor:
    return UniPerceiverImageProcessor()


@pytest.fixture(scope="module")
def pngs(golden_dir, golden_index) -> list[Image.Image]:
    return [Image.open(golden_dir / name).convert("RGB") for name in golden_index["preprocessing"]["images"]["files"]]


def smooth_image(height: int = 90, width: int = 120) -> np.ndarray:
    """A smooth uint8 RGB image (no edges, so 8-bit and float resizing agree to rounding)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(np.uint8)


@pytest.mark.parametrize("preset", ["imagenet", "clip"])
def test_matches_golden_transforms(processor, pngs, goldens, preset, parity_rows):
    """PIL input, NumPy HWC and torch CHW uint8 all give the original's tensors (max abs diff 0.0, bound 1e-6)."""
    golden = torch.stack([goldens[f"pre/{GOLDEN_KEYS[preset]}/img{i}"] for i in range(3)])
    raw = [goldens[f"pre/raw_uint8_hwc/img{i}"] for i in range(3)]
    inputs = {"pil": pngs, "numpy_hwc": [r.numpy() for r in raw], "torch_chw": [r.permute(2, 0, 1) for r in raw]}
    for name, images in inputs.items():
        pixel_values = processor(images, preset=preset, return_tensors="pt")["pixel_values"]
        diff = (pixel_values - golden).abs().max().item()
        parity_rows.append((f"image preset {preset}", name, diff))
        assert pixel_values.shape == (3, 3, 224, 224) and diff <= 1e-6


def test_presets(pngs, goldens):
    clip_processor = UniPerceiverImageProcessor(preset="clip")
    assert clip_processor.size == {"shortest_edge": 224}
    torch.testing.assert_close(
        clip_processor(pngs[0], return_tensors="pt")["pixel_values"][0], goldens["pre/clip_test/img0"]
    )
    torch.testing.assert_close(
        clip_processor(pngs[0], preset="imagenet", return_tensors="pt")["pixel_values"][0],
        goldens["pre/imagenet_eval/img0"],
    )
    with pytest.raises(ValueError, match="`preset`"):
        clip_processor(pngs[0], preset="vit")


def test_torchvision_size_and_crop_rules():
    assert short_side_resize_shape(240, 320, 256) == (256, 341)  # long side truncated, not rounded
    assert short_side_resize_shape(300, 200, 224) == (336, 224)
    assert short_side_resize_shape(256, 256, 256) == (256, 256)
    assert center_crop_offsets(341, 256, 224, 224) == (58, 16)  # (341 - 224) / 2 = 58.5 -> 58 (half to even)
    assert center_crop_offsets(343, 227, 224, 224) == (60, 2)  # 59.5 -> 60, 1.5 -> 2


def test_input_formats(processor):
    """Grayscale, palette, RGBA/LA (alpha dropped), CMYK, 16-bit and float inputs, and outputs per return type."""
    rgb = Image.fromarray(smooth_image())
    reference = processor(rgb, return_tensors="np")["pixel_values"]
    rgba = rgb.convert("RGBA")
    rgba.putalpha(77)
    assert np.array_equal(processor(rgba, return_tensors="np")["pixel_values"], reference)
    for mode in ("L", "LA", "P", "CMYK"):
        image = rgb.convert(mode)
        expected = processor(image.convert("RGB"), return_tensors="np")["pixel_values"]
        assert np.array_equal(processor(image, return_tensors="np")["pixel_values"], expected), mode
    gray = smooth_image()[..., 0]
    assert np.array_equal(
        processor(gray, return_tensors="np")["pixel_values"],
        processor(np.repeat(gray[..., None], 3, -1), return_tensors="np")["pixel_values"],
    )
    # 16-bit and float images keep their precision through the resize; they agree with 8-bit to rounding.
    sixteen = smooth_image().astype(np.uint16) * 257
    for image in (
        sixteen,
        smooth_image().astype(np.float32) / 255,
        torch.from_numpy(smooth_image()).permute(2, 0, 1) / 255,
    ):
        np.testing.assert_allclose(processor(image, return_tensors="np")["pixel_values"], reference, atol=0.03)
    pil16 = Image.fromarray(np.ascontiguousarray(sixteen[..., 1]))
    assert pil16.mode == "I;16"
    np.testing.assert_allclose(
        processor(pil16, return_tensors="np")["pixel_values"],
        processor(Image.fromarray(smooth_image()[..., 1]), return_tensors="np")["pixel_values"],
        atol=0.03,
    )
    assert isinstance(processor(rgb)["pixel_values"], list)
    assert isinstance(processor(rgb, return_tensors="pt")["pixel_values"], torch.Tensor)


def test_batches_of_different_sizes_and_paths(processor, golden_dir, golden_index, goldens):
    files = [golden_dir / name for name in golden_index["preprocessing"]["images"]["files"]]
    pixel_values = processor([str(files[0]), files[1], Image.new("RGB", (1000, 30))], return_tensors="pt")[
        "pixel_values"
    ]
    assert pixel_values.shape == (3, 3, 224, 224)
    torch.testing.assert_close(pixel_values[0], goldens["pre/imagenet_eval/img0"])
    torch.testing.assert_close(pixel_values[1], goldens["pre/imagenet_eval/img1"])
    nested = processor([[files[0]], [files[1], files[2]]], return_tensors="pt")["pixel_values"]
    assert nested.shape == (3, 3, 224, 224)


def test_bad_input(processor, tmp_path):
    tiny = processor(Image.new("RGB", (1, 1), (255, 0, 0)), return_tensors="pt")["pixel_values"]
    assert tiny.shape == (1, 3, 224, 224)
    torch.testing.assert_close(
        tiny[0, :, 0, 0],
        (torch.tensor([1.0, 0, 0]) - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]),
    )
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    nan_image = np.full((8, 8, 3), np.nan, dtype=np.float32)
    bad_inputs = {
        "None": None,
        "empty list": [],
        "0 pixels (PIL)": Image.new("RGB", (0, 5)),
        "0 pixels (array)": np.zeros((0, 4, 3), np.uint8),
        "NaN": nan_image,
        "floats above 1": np.full((8, 8, 3), 255.0, dtype=np.float32),
        "missing file": tmp_path / "missing.png",
        "unreadable file": not_an_image,
        "mixed types": [Image.new("RGB", (4, 4)), 3],
        "5 channels": np.zeros((8, 8, 5), np.uint8),
        "int64 array": np.zeros((8, 8, 3), np.int64),
    }
    for name, images in bad_inputs.items():
        with pytest.raises(ValueError, match="images"):
            processor(images)
            pytest.fail(name)


def test_train_augmentation(pngs):
    processor = UniPerceiverImageProcessor(do_train_augmentation=True)
    torch.manual_seed(0)
    first = processor(pngs, return_tensors="pt")["pixel_values"]
    torch.manual_seed(0)
    again = processor(pngs, return_tensors="pt")["pixel_values"]
    assert first.shape == (3, 3, 224, 224) and torch.equal(first, again)
    evaluation = processor(pngs, do_train_augmentation=False, return_tensors="pt")["pixel_values"]
    assert not torch.equal(first, evaluation)
    # "clip" training: resize the short side to 224, random crop, flip. A square 224 image is only ever flipped.
    square = Image.fromarray(smooth_image(224, 224))
    flipped = UniPerceiverImageProcessor(preset="clip", do_train_augmentation=True, flip_probability=1.0)
    plain = UniPerceiverImageProcessor(preset="clip")
    assert torch.equal(
        flipped(square, return_tensors="pt")["pixel_values"],
        plain(square, return_tensors="pt")["pixel_values"].flip(-1),
    )


def test_random_resized_crop_box():
    torch.manual_seed(0)
    for _ in range(200):
        top, left, height, width = random_resized_crop_box(240, 320, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= top <= 240 - height and 0 <= left <= 320 - width
        assert 0.08 * 240 * 320 * 0.9 <= height * width <= 240 * 320
        assert 3 / 4 * 0.9 <= width / height <= 4 / 3 * 1.1
    # No draw can fit a 1000x10 image with a ratio in [3/4, 4/3]: the centred fallback clamps the ratio.
    assert random_resized_crop_box(10, 1000, (0.9, 1.0), (3 / 4, 4 / 3)) == (0, 493, 10, 13)


def test_save_and_load(tmp_path, pngs):
    from transformers import AutoImageProcessor

    processor = UniPerceiverImageProcessor(preset="clip", random_resized_crop_scale=(0.5, 1.0))
    processor.save_pretrained(tmp_path)
    for loaded in (UniPerceiverImageProcessor.from_pretrained(tmp_path), AutoImageProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is UniPerceiverImageProcessor
        assert loaded.preset == "clip" and tuple(loaded.random_resized_crop_scale) == (0.5, 1.0)
        assert torch.equal(
            loaded(pngs, return_tensors="pt")["pixel_values"], processor(pngs, return_tensors="pt")["pixel_values"]
        )
