"""Training augmentation: RandAugment ops and magnitudes as timm's, random erasing, mixup/cutmix targets, the image
training transform and the VQA flip; every random choice reproducible from the `rng` seed."""

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from uniperceiver_hf import UniPerceiverImageProcessor
from uniperceiver_hf.training.augmentation import (
    IMAGENET_FILL,
    RAND_AUGMENT_INCREASING_OPS,
    ImageTrainTransform,
    MixupCutmix,
    RandAugment,
    RandomErasing,
    apply_rand_augment_op,
    rand_augment_argument,
    vqa_flip,
)


@pytest.fixture(scope="module")
def processor() -> UniPerceiverImageProcessor:
    return UniPerceiverImageProcessor()


def noise_image(height: int = 16, width: int = 16, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int64)


# -- RandAugment ---------------------------------------------------------------------------------------------------


def test_increasing_op_set_is_timms():
    assert RandAugment().ops == RAND_AUGMENT_INCREASING_OPS
    assert len(RAND_AUGMENT_INCREASING_OPS) == 15
    assert "PosterizeIncreasing" in RAND_AUGMENT_INCREASING_OPS and "Posterize" not in RAND_AUGMENT_INCREASING_OPS
    assert IMAGENET_FILL == (124, 116, 104)


@pytest.mark.parametrize(
    "name, level, expected",
    [
        ("Rotate", 9, [-27.0, 27.0]),
        ("Rotate", 10, [-30.0, 30.0]),
        ("ShearX", 9, [-0.27, 0.27]),
        ("ShearY", 10, [-0.3, 0.3]),
        ("TranslateXRel", 9, [-0.405, 0.405]),
        ("TranslateYRel", 10, [-0.45, 0.45]),
        ("ColorIncreasing", 9, [0.19, 1.81]),
        ("SharpnessIncreasing", 10, [0.1, 1.9]),
        ("BrightnessIncreasing", 0, [1.0]),
        ("Contrast", 9, [1.72]),
        ("PosterizeIncreasing", 9, [1]),
        ("PosterizeIncreasing", 10, [0]),
        ("PosterizeIncreasing", 0, [4]),
        ("Posterize", 9, [3]),
        ("SolarizeIncreasing", 9, [26]),
        ("SolarizeIncreasing", 0, [256]),
        ("Solarize", 9, [230]),
        ("SolarizeAdd", 9, [99]),
        ("SolarizeAdd", 10, [110]),
    ],
)
def test_magnitudes_map_as_timm(name, level, expected):
    """Arguments at a level as timm's `LEVEL_TO_ARG`; signed ops take both signs with the rng."""
    rng = random.Random(0)
    assert sorted({rand_augment_argument(name, level, rng) for _ in range(40)}) == pytest.approx(expected)
    assert rand_augment_argument("Invert", level, rng) is None


def test_ops_pixel_effects():
    image = noise_image()
    x = pixels(image)
    fill = IMAGENET_FILL
    assert (pixels(apply_rand_augment_op(image, "Invert", None, fill)) == 255 - x).all()
    for name, neutral in [
        ("Rotate", 0.0),
        ("ShearX", 0.0),
        ("ShearY", 0.0),
        ("TranslateXRel", 0.0),
        ("TranslateYRel", 0.0),
        ("ColorIncreasing", 1.0),
        ("ContrastIncreasing", 1.0),
        ("BrightnessIncreasing", 1.0),
        ("SharpnessIncreasing", 1.0),
        ("SolarizeIncreasing", 256),
        ("Posterize", 8),
        ("SolarizeAdd", 0),
    ]:
        assert (pixels(apply_rand_augment_op(image, name, neutral, fill)) == x).all(), name
    assert (pixels(apply_rand_augment_op(image, "Solarize", 0, fill)) == 255 - x).all()
    assert (pixels(apply_rand_augment_op(image, "PosterizeIncreasing", 1, fill)) == x & 0x80).all()
    added = pixels(apply_rand_augment_op(image, "SolarizeAdd", 99, fill))
    assert (added == np.where(x < 128, np.minimum(x + 99, 255), x)).all()
    assert (pixels(apply_rand_augment_op(image, "Rotate", 180.0, fill)) == x[::-1, ::-1]).all()
    # A translation by a quarter of the width moves the content 4 pixels left and fills the right with the mean.
    moved = pixels(apply_rand_augment_op(image, "TranslateXRel", 0.25, fill))
    assert (moved[:, :12] == x[:, 4:]).all() and (moved[:, 12:] == fill).all()
    assert (pixels(apply_rand_augment_op(image, "Rotate", 30.0, fill))[0, 0] == fill).all()
    darker = pixels(apply_rand_augment_op(image, "BrightnessIncreasing", 0.1, fill))
    assert np.abs(darker - x * 0.1).max() <= 1
    two_tones = Image.fromarray(np.repeat(np.array([10, 95], dtype=np.uint8), 24).reshape(4, 4, 3))
    assert set(pixels(apply_rand_augment_op(two_tones, "AutoContrast", None, fill)).flatten()) == {0, 255}
    with pytest.raises(ValueError, match="`name`"):
        apply_rand_augment_op(image, "Cutout", None, fill)


def test_rand_augment_is_reproducible_and_random():
    image = noise_image(24, 20)
    augment = RandAugment.from_string("rand-m9-mstd0.5-inc1")
    outputs = [augment(image, random.Random(seed)).tobytes() for seed in range(8)]
    assert outputs == [augment(image, random.Random(seed)).tobytes() for seed in range(8)]
    assert len(set(outputs)) > 4
    assert augment(image, random.Random(0)).size == (20, 24)


def test_rand_augment_probability_count_and_clipping():
    image = noise_image()
    x = pixels(image)
    assert (pixels(RandAugment(probability=0.0)(image, random.Random(0))) == x).all()
    assert (pixels(RandAugment(num_ops=0, probability=1.0)(image, random.Random(0))) == x).all()
    invert = RandAugment(num_ops=1, probability=1.0)
    invert.ops = ["Invert"]
    assert (pixels(invert(image, random.Random(0))) == 255 - x).all()
    twice = RandAugment(num_ops=2, probability=1.0)
    twice.ops = ["Invert"]
    assert (pixels(twice(image, random.Random(0))) == x).all()
    clipped = RandAugment(num_ops=1, magnitude=20, magnitude_std=0.0, probability=1.0)  # clipped to level 10
    clipped.ops = ["SolarizeAdd"]
    black = Image.new("RGB", (4, 4))
    assert (pixels(clipped(black, random.Random(0))) == 110).all()
    assert RandAugment()(Image.new("L", (8, 8)), random.Random(0)).mode == "RGB"


def test_rand_augment_from_string():
    augment = RandAugment.from_string("rand-m9-mstd0.5-inc1")
    assert (augment.num_ops, augment.magnitude, augment.magnitude_std, augment.probability) == (2, 9.0, 0.5, 0.5)
    assert augment.ops == RAND_AUGMENT_INCREASING_OPS and augment.fill == IMAGENET_FILL
    other = RandAugment.from_string("rand-n3-m5-p0.7", fill=(0, 0, 0))
    assert (other.num_ops, other.magnitude, other.magnitude_std, other.probability) == (3, 5.0, 0.0, 0.7)
    assert "Posterize" in other.ops and other.fill == (0, 0, 0)
    assert math.isinf(RandAugment.from_string("rand-mstd101").magnitude_std)
    for bad in ["rund-m9", "rand-x3", "rand-m", "rand-m9-tweights"]:
        with pytest.raises(ValueError, match="`config`"):
            RandAugment.from_string(bad)
    with pytest.raises(ValueError, match="`probability`"):
        RandAugment(probability=1.5)
    with pytest.raises(ValueError, match="`magnitude`"):
        RandAugment(magnitude=-1)


# -- RandomErasing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_erasing_changes_exactly_one_rectangle(seed):
    image = torch.full((3, 32, 40), 7.0)
    erased = RandomErasing(probability=1.0)(image, random.Random(seed))
    assert (image == 7.0).all()  # the input is not modified
    changed = (erased != 7.0).any(0)
    rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    assert changed[top:bottom, left:right].all() and changed.sum() == (bottom - top) * (right - left)
    area = (bottom - top) * (right - left) / (32 * 40)
    assert 0.01 < area < 0.4  # 2 %-33 % of the area, up to rounding of the sides
    box = erased[:, top:bottom, left:right]
    assert box.std() > 0.5 and (box[0] != box[1]).all()  # per-pixel, per-channel noise


def test_random_erasing_probability_modes_and_determinism():
    image = torch.randn(3, 24, 24)
    assert torch.equal(RandomErasing(probability=0.0)(image, random.Random(0)), image)
    erase = RandomErasing(probability=1.0)
    assert torch.equal(erase(image, random.Random(3)), erase(image, random.Random(3)))
    assert not torch.equal(erase(image, random.Random(3)), erase(image, random.Random(4)))
    constant = RandomErasing(probability=1.0, mode="const")(torch.ones(3, 24, 24), random.Random(0))
    assert 0 < (constant == 0).sum() < constant.numel() and set(constant.unique().tolist()) == {0.0, 1.0}
    for kwargs, name in [
        ({"probability": -0.1}, "probability"),
        ({"mode": "noise"}, "mode"),
        ({"max_count": 0}, "max_count"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            RandomErasing(**kwargs)
    with pytest.raises(ValueError, match="`pixel_values`"):
        erase(torch.zeros(2, 3, 8, 8), random.Random(0))


def test_random_erasing_leaves_torch_generator_alone():
    state = torch.get_rng_state()
    RandomErasing(probability=1.0)(torch.zeros(3, 16, 16), random.Random(0))
    assert torch.equal(torch.get_rng_state(), state)


# -- MixupCutmix ---------------------------------------------------------------------------------------------------


def two_images() -> tuple[torch.Tensor, torch.Tensor]:
    """A black and a white image with labels 0 and 1 (so the mixed fraction of each is visible)."""
    return torch.stack([torch.zeros(3, 20, 30), torch.ones(3, 20, 30)]), torch.tensor([0, 1])


def test_mixup_cutmix_targets_sum_to_one_and_are_reproducible():
    pixel_values, labels = torch.randn(6, 3, 8, 8), torch.tensor([0, 3, 2, 4, 1, 0])
    mix = MixupCutmix(num_classes=5)
    for seed in range(10):
        mixed, targets = mix(pixel_values, labels, random.Random(seed))
        assert mixed.shape == pixel_values.shape and targets.shape == (6, 5)
        assert torch.allclose(targets.sum(1), torch.ones(6))
        again, again_targets = mix(pixel_values, labels, random.Random(seed))
        assert torch.equal(mixed, again) and torch.equal(targets, again_targets)


def test_no_mixing_gives_label_smoothing():
    pixel_values, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 3, 2, 1])
    mixed, targets = MixupCutmix(num_classes=10, prob=0.0)(pixel_values, labels, random.Random(0))
    assert torch.equal(mixed, pixel_values)
    expected = torch.full((4, 10), 0.01)
    expected[torch.arange(4), labels] = 0.91
    assert torch.allclose(targets, expected)


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_lambda_is_the_kept_area(seed):
    pixel_values, labels = two_images()
    mixed, targets = MixupCutmix(num_classes=2, mixup_alpha=0.0, label_smoothing=0.0)(
        pixel_values, labels, random.Random(seed)
    )
    pasted = (mixed[0] == 1).all(0)  # white pixels pasted from the reversed batch into the black image
    rows, cols = pasted.any(1).nonzero().flatten(), pasted.any(0).nonzero().flatten()
    if len(rows):
        assert pasted.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one box
    assert targets[0, 0].item() == pytest.approx(1.0 - pasted.float().mean().item())
    assert torch.equal((mixed[1] == 0).all(0), pasted)  # the same box in the partner


@pytest.mark.parametrize("seed", range(4))
def test_mixup_blends_with_the_reversed_batch(seed):
    pixel_values, labels = two_images()
    mixed, targets = MixupCutmix(num_classes=3, cutmix_alpha=0.0, label_smoothing=0.3)(
        pixel_values, labels, random.Random(seed)
    )
    off = 0.1
    lam = (targets[0, 0].item() - off) / (1.0 - 0.3)  # target of class 0 = off + (on - off) * lam
    assert torch.allclose(mixed[0], torch.full_like(mixed[0], 1.0 - lam), atol=1e-6)
    assert torch.allclose(mixed[1], torch.full_like(mixed[1], lam), atol=1e-6)
    assert targets[0, 2].item() == pytest.approx(off)


def test_mixup_cutmix_bad_arguments():
    for kwargs, name in [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 3, "prob": 1.5}, "prob"),
        ({"num_classes": 3, "switch_prob": -1}, "switch_prob"),
        ({"num_classes": 3, "mode": "elem"}, "mode"),
        ({"num_classes": 3, "mixup_alpha": 0.0, "cutmix_alpha": 0.0}, "mixup_alpha"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            MixupCutmix(**kwargs)
    mix = MixupCutmix(num_classes=3)
    with pytest.raises(ValueError, match="`labels`"):
        mix(torch.zeros(2, 3, 4, 4), torch.tensor([0, 3]), random.Random(0))
    with pytest.raises(ValueError, match="`labels`"):
        mix(torch.zeros(2, 3, 4, 4), torch.tensor([0.0, 1.0]), random.Random(0))
    with pytest.raises(ValueError, match="`pixel_values`"):
        mix(torch.zeros(3, 4, 4), torch.tensor([0]), random.Random(0))


# -- ImageTrainTransform -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", ["random_resized", "short_side", "center"])
def test_constant_image_gives_the_normalised_constant(processor, crop):
    colour = (200, 90, 30)
    transform = ImageTrainTransform(processor, crop=crop, short_side=24, crop_size=16)
    images = [Image.new("RGB", (40, 30), colour), Image.new("RGB", (30, 50), colour)]
    pixel_values = transform(images, random.Random(0))
    assert pixel_values.shape == (2, 3, 16, 16) and pixel_values.dtype == torch.float32
    expected = (torch.tensor(colour) / 255.0 - torch.tensor(processor.image_mean)) / torch.tensor(processor.image_std)
    assert torch.allclose(pixel_values, expected[None, :, None, None].expand(2, 3, 16, 16), atol=1e-6)


def test_center_crop_matches_the_processor_and_flip_mirrors(processor):
    image = noise_image(30, 45)
    reference = processor(
        image, size={"shortest_edge": 24}, crop_size={"height": 16, "width": 16}, return_tensors="pt"
    )["pixel_values"]
    plain = ImageTrainTransform(processor, crop="center", short_side=24, crop_size=16, flip_probability=0.0)
    assert torch.equal(plain([image], random.Random(0)), reference)
    flipped = ImageTrainTransform(processor, crop="center", short_side=24, crop_size=16, flip_probability=1.0)
    assert torch.equal(flipped([image], random.Random(0)), reference.flip(-1))


def test_short_side_crop_is_a_window_of_the_resized_image(processor):
    image = noise_image(30, 45)
    resized = processor(image, size={"shortest_edge": 24}, do_center_crop=False, return_tensors="pt")["pixel_values"]
    transform = ImageTrainTransform(processor, crop="short_side", short_side=24, crop_size=16, flip_probability=0.0)
    offsets = set()
    for seed in range(6):
        crop = transform([image], random.Random(seed))[0]
        matches = [
            (top, left)
            for top in range(24 - 16 + 1)
            for left in range(36 - 16 + 1)
            if torch.equal(resized[0, :, top : top + 16, left : left + 16], crop)
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 1


def test_train_transform_is_reproducible_from_rng_alone(processor, tmp_path):
    path = tmp_path / "image.png"
    noise_image(40, 36, seed=1).save(path)
    images = [noise_image(32, 48), Image.new("L", (30, 30), 77), str(path)]
    transform = ImageTrainTransform(processor, crop_size=16, rand_augment="rand-m9-mstd0.5-inc1", random_erasing=0.25)
    torch_state = torch.get_rng_state()
    first = transform(images, random.Random(5))
    torch.manual_seed(123)  # torch's global generator does not matter
    assert torch.equal(first, transform(images, random.Random(5)))
    torch.set_rng_state(torch_state)
    transform(images, random.Random(5))
    assert torch.equal(torch.get_rng_state(), torch_state)  # and is left as it was
    assert first.shape == (3, 3, 16, 16)
    assert not torch.equal(first, transform(images, random.Random(6)))


def test_train_transform_bad_arguments(processor):
    for kwargs, name in [
        ({"crop": "five_crop"}, "crop"),
        ({"crop": "short_side", "short_side": 100}, "short_side"),
        ({"flip_probability": 2.0}, "flip_probability"),
        ({"random_erasing": -0.5}, "random_erasing"),
        ({"rand_augment": "rand-q9"}, "config"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            ImageTrainTransform(processor, **kwargs)
    transform = ImageTrainTransform(processor, crop_size=8)
    with pytest.raises(ValueError, match="`images`"):
        transform(["/nonexistent/image.png"], random.Random(0))
    with pytest.raises(TypeError, match="`images`"):
        transform([np.zeros((8, 8, 3))], random.Random(0))


# -- vqa_flip ------------------------------------------------------------------------------------------------------


def test_vqa_flip_swaps_whole_words_and_mirrors_pixels():
    image = noise_image(6, 10)
    question = "Is the Left cup left of the RIGHT one, and is the leftover on the right?"
    flipped, new_question, answer = vqa_flip(image, question, "Left", random.Random(0), probability=1.0)
    assert new_question == "Is the Right cup right of the LEFT one, and is the leftover on the left?"
    assert answer == "Right"
    assert (pixels(flipped) == pixels(image)[:, ::-1]).all()
    _, _, answers = vqa_flip(image, "where?", ["left", "rightmost", "to the right"], random.Random(0), 1.0)
    assert answers == ["right", "rightmost", "to the left"]
    tensor = torch.arange(12.0).reshape(1, 3, 4)
    assert torch.equal(vqa_flip(tensor, "q", "a", random.Random(0), 1.0)[0], tensor.flip(-1))


def test_vqa_flip_probability():
    image = noise_image(6, 10)
    assert vqa_flip(image, "left?", "right", random.Random(0), probability=0.0) == (image, "left?", "right")
    flips = [vqa_flip(image, "left", "a", random.Random(seed))[1] == "right" for seed in range(200)]
    assert 60 < sum(flips) < 140
    with pytest.raises(ValueError, match="`probability`"):
        vqa_flip(image, "q", "a", random.Random(0), probability=-0.1)
