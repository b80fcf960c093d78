"""Turns one task batch of raw examples into the keyword arguments of `UniPerceiverForPreTraining.forward`.

Images are decoded here (bytes, paths or PIL images) and augmented as the recipe says (paper appendix E); videos
are decoded from their files with PyAV, each clip once into a bounded in-memory cache (`DecodedVideoCache`), and
sampled by the video processor; text goes through the processor's task layouts
(whole-word masked LM, the appendix-B caption layout, VQA, GLUE templates), so training sees exactly the
sequences the zero-shot code builds. Every random choice is seeded by the slot (see `data.py`), so a
resumed run decodes and augments each batch exactly as the uninterrupted run did.
"""

from __future__ import annotations

import io
import math
import os
import random
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..configuration_uniperceiver import UniPerceiverConfig
from ..layouts_uniperceiver import pad_token_sequences
from ..processing_uniperceiver import CAPTION_MAX_LENGTH, MLM_MAX_LENGTH, VQA_MAX_LENGTH, UniPerceiverProcessor
from ..video_processing_uniperceiver import UniPerceiverVideoProcessor, decode_all_video_frames, decoded_video_bytes
from .augmentation import ImageTrainTransform, MixupCutmix, vqa_flip
from .data import task_answers, task_classes
from .recipe import Recipe, RecipeError, TaskSpec


# Augmentation keys of a recipe task (merged over these per-type defaults):
#   images: `crop` ("random_resized", "short_side" or "center"), `short_side` (pixels) or `short_side_ratio` (of the
#   crop size), `flip` (probability), `rand_augment` (a timm-style string or null), `random_erasing` (probability),
#   `mixup` (MixupCutmix arguments or null; image classification only), `vqa_flip` (probability; VQA only);
#   videos: `train` (random short side, crop and start), `short_side_range` (pixels for a 224-px crop, scaled to
#   the model's), `flip`.
# The paper's ImageNet-21k augmentation (appendix E, as DeiT): random resized crop, flip, RandAugment, random
# erasing, mixup and cutmix. Other image tasks: short side 256/224 of the crop, then a random crop.
CLASSIFICATION_AUGMENTATION = {
    "crop": "random_resized",
    "flip": 0.5,
    "rand_augment": "rand-m9-mstd0.5-inc1",
    "random_erasing": 0.25,
    "mixup": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "prob": 1.0, "switch_prob": 0.5},
}
IMAGE_TEXT_AUGMENTATION = {"crop": "short_side", "short_side_ratio": 256 / 224, "flip": 0.0}
VQA_AUGMENTATION = {**IMAGE_TEXT_AUGMENTATION, "vqa_flip": 0.5}
# Videos (as TimeSformer): short side random in [256, 320] (for a 224 crop), flip, random crop and start.
VIDEO_AUGMENTATION = {"train": True, "short_side_range": (256, 320), "flip": 0.5}

LANGUAGE_MODELLING = {"masked_lm", "image_masked_lm", "causal_lm", "image_caption", "video_caption"}


def open_image(value: Any, root: Path | None = None) -> Image.Image:
    """An RGB PIL image from a datasets `Image(decode=False)` cell (`{"bytes", "path"}`), a path or a PIL image."""
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, dict) and value.get("bytes") is not None:
        image = Image.open(io.BytesIO(value["bytes"]))
    else:
        path = value.get("path") if isinstance(value, dict) else value
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"An image cell must be bytes, a path or a PIL image, got {type(value).__name__}.")
        path = Path(path)
        if root is not None and not path.is_absolute() and not path.exists():
            path = root / path
        image = Image.open(path)
    return image.convert("RGB")


def _pick(value: Any, rng: random.Random) -> str:
    """One string of a cell that holds a string or a list of alternatives (several captions, VQA answers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value:
        return value[rng.randrange(len(value))]
    raise ValueError(f"A text cell must be a string or a non-empty list of strings, got {value!r}.")


class DecodedVideoCache:
    """Decoded video clips by path (all their frames, `decode_all_video_frames`), up to `max_bytes` of frames.

    First come, first kept: a clip is decoded and stored on its first use if its frames fit in what is left of the
    budget (checked from the file's header before decoding, and again after); nothing is evicted, so once the
    budget is full other clips are decoded from their files at every use. Sampling a clip's frames from memory
    gives the same frames as decoding them from the file, for files with constant frame rates (a file decoded after
    a seek places frames by timestamp) that hold the frames their headers count (else the missing ones repeat the
    clip's last frame, not the last one sampled). Each DataLoader worker holds its own cache (its copy of the
    collator), each up to the budget; files must not change during training.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.used_bytes = 0
        self._clips: dict[str, tuple[torch.Tensor, float]] = {}
        self._not_stored: set[str] = set()  # the budget only fills up: a clip that did not fit never will

    def __len__(self) -> int:
        return len(self._clips)

    def __contains__(self, path: str | os.PathLike) -> bool:
        return os.fspath(path) in self._clips

    def get(self, path: str | os.PathLike) -> tuple[torch.Tensor, float] | None:
        """A clip's frames `[N, H, W, 3]` (uint8) and frame rate, decoded on first use; None for a clip that does
        not fit (decode it from the file)."""
        path = os.fspath(path)
        if path in self._clips or path in self._not_stored:
            return self._clips.get(path)
        size = decoded_video_bytes(path)
        if size is None or size > self.max_bytes - self.used_bytes:
            self._not_stored.add(path)
            return None
        frames, fps = decode_all_video_frames(path)
        if frames.nbytes > self.max_bytes - self.used_bytes:  # a header that undercounted: use the frames once
            self._not_stored.add(path)
        else:
            self._clips[path] = (frames, fps)
            self.used_bytes += frames.nbytes
        return frames, fps


class UniPerceiverCollator:
    """Builds model inputs for every task of a recipe (`train=False`: no augmentation, centre crops).

    Class lists and answer lists are resolved when the collator is built, so that a label beyond its class list
    fails before training starts. Call it on a list holding one `MultiTaskDataset` item. Video clips are decoded
    once and kept in memory up to `video_cache_mb` megabytes (2**20 bytes; 0: decode every use from the file), per
    DataLoader worker (`DecodedVideoCache`); the batches are the same either way.
    """

    def __init__(
        self,
        recipe: Recipe,
        task_datasets: dict[str, Any],
        processor: UniPerceiverProcessor,
        config: UniPerceiverConfig,
        train: bool = True,
        video_cache_mb: float = 512,
    ):
        if (
            isinstance(video_cache_mb, bool)
            or not isinstance(video_cache_mb, (int, float))
            or not math.isfinite(video_cache_mb)
            or video_cache_mb < 0
        ):
            raise ValueError(
                f"`video_cache_mb` must be a finite number of megabytes >= 0 (0: off), got {video_cache_mb!r}."
            )
        self.recipe = recipe
        self.processor = processor
        self.config = config
        self.train = train
        self.classes: dict[str, list[str]] = {}
        self.targets: dict[str, dict[str, torch.Tensor]] = {}
        for index, task in enumerate(recipe.tasks):
            where = f"{recipe.source}, task {index} ({task.name})"
            dataset = task_datasets[task.name]
            if task.type == "text_classification" and task.glue_task is not None:
                continue
            if task.task_type.targets == "classes":
                self.classes[task.name] = task_classes(task, dataset, where)
            elif task.task_type.targets == "answers":
                self.classes[task.name] = task_answers(task, dataset, where)
            if task.class_exemplars is not None:
                self.targets[task.name] = self._exemplar_targets(task, where)
            elif task.name in self.classes:
                self.targets[task.name] = processor.target_inputs(self.classes[task.name])
        self._image_transforms = {
            task.name: self._image_transform(task) for task in recipe.tasks if task.task_type.modality == "image"
        }
        self._video_processors = {
            task.name: self._video_processor(task) for task in recipe.tasks if task.task_type.modality == "video"
        }
        self.video_cache = DecodedVideoCache(int(video_cache_mb * 2**20)) if video_cache_mb > 0 else None
        self._mixup = {
            task.name: MixupCutmix(
                len(self.classes[task.name]),
                label_smoothing=task.resolved_label_smoothing,
                **self._augmentation(task)["mixup"],
            )
            for task in recipe.tasks
            if train and task.type == "image_classification" and self._augmentation(task).get("mixup")
        }

    # -- set-up ---------------------------------------------------------------------------------------------------

    def _augmentation(self, task: TaskSpec) -> dict[str, Any]:
        if task.type == "image_classification":
            defaults = CLASSIFICATION_AUGMENTATION
        elif task.type == "vqa":
            defaults = VQA_AUGMENTATION
        elif task.task_type.modality == "video":
            defaults = VIDEO_AUGMENTATION
        else:
            defaults = IMAGE_TEXT_AUGMENTATION
        return {**defaults, **task.augmentation}

    def _image_transform(self, task: TaskSpec) -> ImageTrainTransform:
        size = self.config.image_size
        augmentation = self._augmentation(task)
        if not self.train:  # the original's evaluation transforms: "imagenet" resizes to 256/224 of the crop
            return self._center_crop(256 / 224 if task.type == "image_classification" else 1.0)
        short_side = augmentation.get("short_side") or round(size * augmentation.get("short_side_ratio", 1.0))
        return ImageTrainTransform(
            self.processor.image_processor,
            crop=augmentation.get("crop", "short_side"),
            short_side=short_side,
            crop_size=size,
            flip_probability=augmentation.get("flip", 0.0),
            rand_augment=augmentation.get("rand_augment"),
            random_erasing=augmentation.get("random_erasing", 0.0),
        )

    def _center_crop(self, short_side_ratio: float) -> ImageTrainTransform:
        size = self.config.image_size
        return ImageTrainTransform(
            self.processor.image_processor,
            crop="center",
            short_side=round(size * short_side_ratio),
            crop_size=size,
            flip_probability=0.0,
        )

    def _video_processor(self, task: TaskSpec) -> UniPerceiverVideoProcessor:
        size = self.config.image_size
        augmentation = self._augmentation(task)
        low, high = (round(side * size / 224) for side in augmentation["short_side_range"])
        return UniPerceiverVideoProcessor(
            num_frames=task.num_frames or self.config.num_frames,
            sampling_stride=task.frame_stride or 32,
            num_spatial_crops=1,
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            do_train_augmentation=self.train and augmentation.get("train", True),
            train_short_side_range=(low, high),
            flip_probability=augmentation.get("flip", 0.5),
        )

    def _exemplar_targets(self, task: TaskSpec, where: str) -> dict[str, torch.Tensor]:
        """One exemplar image per class as the targets (a novel task: paper section 3.1 lets targets be images)."""
        paths = task.class_exemplars
        if len(paths) != len(self.classes[task.name]):
            raise RecipeError(f"{where}: {len(paths)} `class_exemplars` for {len(self.classes[task.name])} classes.")
        missing = [path for path in paths if not Path(path).is_file()]
        if missing:
            raise RecipeError(f"{where}: `class_exemplars` files not found: {missing[:3]}.")
        images = [open_image(path) for path in paths]
        return {"target_pixel_values": self._center_crop(1.0)(images, random.Random(0))}

    def _root(self, task: TaskSpec) -> Path | None:
        path = Path(task.dataset.path)
        return path if path.is_dir() else None

    def _max_length(self, task: TaskSpec, default: int) -> int:
        return task.max_length or min(default, self.config.max_position_embeddings)

    # -- pieces ---------------------------------------------------------------------------------------------------

    def _pixels(self, task: TaskSpec, cells: list[Any], rng: random.Random) -> torch.Tensor:
        if task.task_type.modality == "video":
            root = self._root(task)
            paths = [str(root / cell) if root and not Path(cell).is_absolute() else cell for cell in cells]
            processor = self._video_processors[task.name]
            if self.video_cache is None:
                return processor(paths)["pixel_values"]
            # One clip per call, in batch order: the processor draws the same random numbers as for all the paths.
            clips = []
            for path in paths:
                clip = self.video_cache.get(path) if isinstance(path, (str, os.PathLike)) else None
                if clip is None:
                    clips.append(processor(path)["pixel_values"])
                else:
                    frames, fps = clip
                    clips.append(processor(frames, video_fps=fps, do_sample_frames=True)["pixel_values"])
            return torch.cat(clips)
        return self._image_transforms[task.name]([open_image(cell, self._root(task)) for cell in cells], rng)

    def _text_inputs(self, texts: list[str], max_length: int, prefix: str = "") -> dict[str, torch.Tensor]:
        ids, mask = pad_token_sequences(self.processor.text_ids(texts, max_length))
        return {f"{prefix}input_ids": ids, f"{prefix}attention_mask": mask}

    def _label_indices(self, task: TaskSpec, values: list[Any]) -> torch.Tensor:
        classes = self.classes[task.name]
        indices = []
        for value in values:
            index = value if isinstance(value, int) else classes.index(value) if value in classes else None
            if index is None or not 0 <= index < len(classes):
                raise ValueError(f"Task {task.name!r}: label {value!r} is not one of its {len(classes)} classes.")
            indices.append(index)
        return torch.tensor(indices, dtype=torch.long)

    def _sample_classes(self, task: TaskSpec, batch: dict[str, Any], hard: torch.Tensor, rng: random.Random) -> None:
        """`class_samples`: keep the batch's own classes plus that many others as the targets, and re-index the
        labels (soft labels keep their mass on the kept classes, renormalised)."""
        total = len(self.classes[task.name])
        own = sorted({int(label) for label in hard.tolist() if label != -100})
        others = [index for index in range(total) if index not in set(own)]
        kept = torch.tensor(own + rng.sample(others, min(task.class_samples, len(others))), dtype=torch.long)
        for key in ("target_input_ids", "target_attention_mask", "target_pixel_values"):
            if key in batch:
                batch[key] = batch[key][kept]
        if "target_attention_mask" in batch:  # drop the columns that only pad the classes left out
            length = int(batch["target_attention_mask"].sum(-1).max())
            batch["target_input_ids"] = batch["target_input_ids"][:, :length]
            batch["target_attention_mask"] = batch["target_attention_mask"][:, :length]
        labels = batch["labels"]
        if labels.is_floating_point():
            labels = labels[:, kept]
            batch["labels"] = labels / labels.sum(-1, keepdim=True)
        else:
            position = torch.full((total,), -100, dtype=torch.long)
            position[kept] = torch.arange(len(kept))
            batch["labels"] = torch.where(labels == -100, labels, position[labels.clamp(min=0)])

    def _vocabulary_targets(self, task: TaskSpec, batch: dict[str, Any], rng: random.Random) -> None:
        """LM targets: nothing for the exact method (the model encodes the whole vocabulary); for the sampled one,
        the batch's words plus `vocabulary_samples` random words, with the labels re-indexed into them."""
        if task.vocabulary == "exact":
            return
        labels = batch["labels"]
        words = sorted(set(labels.tolist()))
        vocab_size = self.config.vocab_size
        wanted = min(task.vocabulary_samples, vocab_size - len(words))
        chosen, negatives = set(words), []
        while len(negatives) < wanted:
            word = rng.randrange(vocab_size)
            if word not in chosen:
                chosen.add(word)
                negatives.append(word)
        candidates = torch.tensor(words + negatives, dtype=torch.long)
        batch["labels"] = torch.searchsorted(torch.tensor(words, dtype=torch.long), labels)
        batch["target_input_ids"] = torch.stack([candidates, torch.full_like(candidates, self.config.eos_token_id)], 1)
        batch["target_attention_mask"] = torch.ones_like(batch["target_input_ids"])

    # -- one batch ------------------------------------------------------------------------------------------------

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if len(items) != 1:
            raise ValueError(
                f"A collator call takes one task batch (per-device batch size 1), got {len(items)} items."
            )
        item = items[0]
        task = self.recipe.task(item["task"])
        rng = random.Random(item["seed"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item["seed"])
            batch = self._build(task, item["examples"], rng)
        batch.update(
            task_name=task.name,
            task_type=task.type,
            logit_scale=task.resolved_logit_scale,
            loss_weight=float(task.loss_weight),
            label_smoothing=float(task.resolved_label_smoothing),
        )
        if task.task_type.targets == "in_batch":
            batch["gather_features"] = bool(task.gather_features)
        return batch

    def _build(self, task: TaskSpec, examples: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
        column = {role: [example[task.column(role)] for example in examples] for role in task.task_type.columns}
        kind = task.type
        visual = task.task_type.modality in ("image", "video")
        batch: dict[str, Any] = {}

        if kind == "vqa":
            images = [open_image(cell, self._root(task)) for cell in column["image"]]
            questions = list(column["question"])
            answers = [_pick(answer, rng) for answer in column["answer"]]
            probability = self._augmentation(task).get("vqa_flip", 0.0) if self.train else 0.0
            for i, (image, question, answer) in enumerate(zip(images, questions, answers)):
                images[i], questions[i], answers[i] = vqa_flip(image, question, answer, rng, probability)
            layout = self.processor.vqa(None, questions, max_length=self._max_length(task, VQA_MAX_LENGTH))
            batch.update({key: layout[key] for key in ("input_ids", "attention_mask", "feature_index")})
            batch["pixel_values"] = self._image_transforms[task.name](images, rng)
            batch.update(self.targets[task.name])
            classes = self.classes[task.name]
            batch["labels"] = torch.tensor([classes.index(a) if a in classes else -100 for a in answers])
            if task.class_samples is not None:
                self._sample_classes(task, batch, batch["labels"], rng)
            return batch

        if visual:
            batch["pixel_values"] = self._pixels(task, column[task.task_type.modality], rng)

        if kind in ("image_classification", "video_classification"):
            batch.update(self.targets[task.name])
            hard = labels = self._label_indices(task, column["label"])
            if task.name in self._mixup:
                batch["pixel_values"], labels = self._mixup[task.name](batch["pixel_values"], labels, rng)
            batch["labels"] = labels
            if task.class_samples is not None:
                self._sample_classes(task, batch, hard, rng)
        elif kind == "text_classification":
            labels = column["label"]
            if task.glue_task is not None:
                pairs = (
                    [example[task.column("text_pair")] for example in examples]
                    if "text_pair" in task.columns
                    else None
                )
                layout = self.processor.text_classification(task.glue_task, column["text"], pairs, labels=labels)
                batch.update({key: value for key, value in layout.items() if key != "task"})
            else:
                batch.update(self._text_inputs(column["text"], self._max_length(task, CAPTION_MAX_LENGTH)))
                batch.update(self.targets[task.name])
                batch["labels"] = self._label_indices(task, labels)
                if task.class_samples is not None:
                    self._sample_classes(task, batch, batch["labels"], rng)
        elif task.task_type.targets == "in_batch":
            source = "caption" if visual else "text_pair"
            targets = [_pick(value, rng) for value in column[source]]
            max_length = self._max_length(task, CAPTION_MAX_LENGTH)
            if not visual:
                batch.update(self._text_inputs([_pick(value, rng) for value in column["text"]], max_length))
            batch.update(self._text_inputs(targets, max_length, prefix="target_"))
        elif kind in ("masked_lm", "image_masked_lm"):
            texts = [_pick(value, rng) for value in column["caption" if visual else "text"]]
            layout = self.processor.masked_lm(texts, max_length=self._max_length(task, MLM_MAX_LENGTH), generator=rng)
            batch.update({key: value for key, value in layout.items() if key != "task"})
            self._vocabulary_targets(task, batch, rng)
        elif kind in ("causal_lm", "image_caption", "video_caption"):
            texts = [_pick(value, rng) for value in column["caption" if visual else "text"]]
            layout = self.processor.caption_training(texts, max_length=self._max_length(task, CAPTION_MAX_LENGTH))
            batch.update({key: value for key, value in layout.items() if key != "task"})
            self._vocabulary_targets(task, batch, rng)
        return batch


__all__ = ["LANGUAGE_MODELLING", "DecodedVideoCache", "UniPerceiverCollator", "open_image"]
