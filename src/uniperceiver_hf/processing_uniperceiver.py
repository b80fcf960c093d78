"""`UniPerceiverProcessor`: every sequence layout of the original Uni-Perceiver, built from plain Python inputs.

Uni-Perceiver casts each task as "which target is most similar to this input"; both sides go through the same
encoder, each prefixed by the model with one `<SPE>` token. The processor writes the ids, pixels and read-out
positions of each layout exactly as the original datasets do, under the keyword names of
`UniPerceiverModel.forward`, so that `model(**inputs)` runs every task:

| method | layout (ids never include the prefix `<SPE>`) | `task` |
|---|---|---|
| `__call__(images=..., targets=class_names)` | image ("imagenet" preset) vs `name + EOT` | `img_cls` |
| `__call__(videos=..., targets=class_names)` | 8 frames, 3 crops as rows vs `name + EOT` | `video_cls` |
| `__call__(images=..., targets=captions, task="retrieve")` | image ("clip") vs captions cut to 50 ids | `retrieve` |
| `vqa(images, questions, answers)` | image + `question[:21] + [<SPE>, EOT]`, read at `<SPE>` | `downstream` |
| `text_classification("rte", s1, s2)` | the GLUE templates with an in-text `<SPE>` vs label words | `text_mlm` |
| `masked_lm(texts)` | whole-word masking, read at the masked positions vs the vocabulary | `text_mlm` |
| `caption_training(captions, images=...)` | image + words + one `<SPE>` per word, causal mask | `caption` |
| `__call__(images=...)` / `__call__(videos=...)` | pixels only (e.g. `model.get_features(**inputs)`) | - |

Padding uses id 0 with a zero attention mask, as the original. Targets of the vocabulary (masked LM, captioning)
come from `vocabulary_targets()`.

`__call__` follows transformers' processor conventions: typed keyword arguments (`UniPerceiverProcessorKwargs`,
flat or as `text_kwargs` / `images_kwargs` / `videos_kwargs` / `common_kwargs`) and `return_tensors=None` by default
(Python lists); pass `return_tensors="pt"` for the model. The task-layout methods (`vqa`, `text_classification`,
`masked_lm`, `caption_training`) build model inputs directly and return torch tensors unless `return_tensors` says
otherwise (`None`: lists, `"np"`: NumPy); `target_inputs` and `vocabulary_targets` return tensors.
"""

import random
from collections.abc import Sequence
from typing import Any

import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, Unpack
from transformers.video_processing_utils import VideoProcessorMixin

from .image_processing_uniperceiver import UniPerceiverImageProcessor, UniPerceiverImageProcessorKwargs
from .layouts_uniperceiver import caption_training_inputs, pad_token_sequences, vocabulary_target_ids
from .tokenization_uniperceiver import SPE_TOKEN, UniPerceiverTokenizer
from .validation_uniperceiver import check_int
from .versions_uniperceiver import explain_untested_transformers
from .video_processing_uniperceiver import UniPerceiverVideoProcessor, UniPerceiverVideoProcessorKwargs


# Sequence lengths of the released configs (`MODEL.MAX_SEQ_LEN`).
CAPTION_MAX_LENGTH = 50
VQA_MAX_LENGTH = 23
GLUE_MAX_LENGTH = 256
MLM_MAX_LENGTH = 128
MLM_MASK_PROBABILITY = 0.15

# Label words of the GLUE tasks in the original's label order (`tools/generate_target_sets.ipynb`):
# label i of the original datasets is the target word i. RTE and QNLI: 1 = entailment; MNLI: 0 = contradiction,
# 1 = neutral, 2 = entailment.
GLUE_LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "sst2": ("bad", "wonderful"),
    "cola": ("incorrect", "correct"),
    "rte": ("no", "yes"),
    "mrpc": ("no", "yes"),
    "qqp": ("no", "yes"),
    "qnli": ("no", "yes"),
    "mnli": ("no", "maybe", "yes"),
}
# Single-sentence templates (`GLUE.py`): the feature is read at len - 3, the `<SPE>` before ". EOT".
_GLUE_SINGLE_SUFFIX = {
    "sst2": "  <|endoftext|> It is <|spe|>.   <|endoftext|>",
    "cola": " This is <|spe|>. <|endoftext|>",
}
# Sentence-pair templates: (drop a trailing "." from sentence 1, text after sentence 1, whether sentence 2 may
# take everything sentence 1 leaves rather than half of the length). The second part is always
# "  <|spe|> , " + sentence 2 + " <|endoftext|> ", and the feature is read at its `<SPE>`.
_GLUE_PAIR_TEMPLATE = {
    "rte": (True, " ? <|endoftext|> it is  ", False),
    "mrpc": (True, " . ", False),
    "qqp": (True, " <|endoftext|> ", False),
    "qnli": (True, "  <|endoftext|> it is ", True),
    "mnli": (False, "", False),
}
_GLUE_ALIASES = {"mnlimatch": "mnli", "mnlimatched": "mnli", "mnlimismatch": "mnli", "mnlimismatched": "mnli"}
_PERIOD_ID = 269  # "." as a word: the original drops it at the end of the first sentence of pair templates


def glue_task_key(task_name: str) -> str:
    """`"SST-2"`, `"sst2"`, `"MNLI_Match"`, ... -> the key of `GLUE_LABEL_WORDS`."""
    key = task_name.lower().replace("-", "").replace("_", "")
    key = _GLUE_ALIASES.get(key, key)
    if key not in GLUE_LABEL_WORDS:
        raise ValueError(f"`task_name` must be one of {sorted(GLUE_LABEL_WORDS)} (GLUE), got {task_name!r}.")
    return key


def truncate_keeping_last(ids: list[int], max_length: int | None) -> list[int]:
    """The original's truncation: the first `max_length - 1` ids and the last one (so a final EOT survives)."""
    if max_length is None or len(ids) <= max_length:
        return ids
    if max_length < 2:
        raise ValueError(f"`max_length` must be at least 2 to keep the last id, got {max_length}.")
    return ids[: max_length - 1] + ids[-1:]


def _text_list(value: Any, name: str, allow_lists: bool = False, allow_blank: bool = False) -> list[Any]:
    """A string or a list of strings (or of lists of strings) as a non-empty list; anything else names `name`.
    Blank strings are refused unless `allow_blank`: the task layouts keep the original's rule, where a blank text is
    `EOT` alone (training data has them), but a blank text to classify or a blank candidate is a mistake."""
    if value is None:
        raise ValueError(f"`{name}` is required.")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"`{name}` must be a string or a non-empty list of strings, got {value!r}.")
    for index, item in enumerate(items):
        ok = isinstance(item, str) or (
            allow_lists and isinstance(item, (list, tuple)) and item and all(isinstance(x, str) for x in item)
        )
        if not ok:
            raise ValueError(
                f"`{name}` must be a string or a list of strings; got an item of type {type(item).__name__}."
            )
        if not allow_blank and isinstance(item, str) and not item.strip():
            raise ValueError(f"`{name}` item {index} is an empty string ({item!r}); every entry needs some text.")
    return list(items)


def _label_list(labels: Any, batch: int, num_targets: int | None) -> list[int]:
    """`labels` as one target index per example, each in `[0, num_targets)` when the number of targets is known."""
    labels = labels.tolist() if hasattr(labels, "tolist") else labels  # tensors and NumPy arrays
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"`labels` must be a list of target indices, got {type(labels).__name__}.")
    if len(labels) != batch:
        raise ValueError(f"`labels` has {len(labels)} entries for {batch} examples.")
    last = None if num_targets is None else num_targets - 1
    return [check_int("labels", label, low=0, high=last, high_means="the last target index") for label in labels]


def _pad_rows(
    sequences: list[list[int]], padding: bool | str | None, max_length: int | None
) -> tuple[list[list[int]], list[list[int]]]:
    """(ids, attention mask) as lists, padded with id 0 (as the original): to the longest sequence (`padding` None,
    True or "longest"), to `max_length` ("max_length") or not at all (False or "do_not_pad")."""
    longest = max(len(ids) for ids in sequences)
    if padding in (None, True, "longest"):
        length = longest
    elif padding == "max_length":
        if max_length is None:
            raise ValueError("`padding='max_length'` needs `max_length`.")
        length = max(max_length, longest)
    elif padding in (False, "do_not_pad"):
        length = None
    else:
        raise ValueError(f"`padding` must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}.")
    rows = [ids + [0] * ((length or len(ids)) - len(ids)) for ids in sequences]
    masks = [[1] * len(ids) + [0] * (len(row) - len(ids)) for ids, row in zip(sequences, rows, strict=True)]
    return rows, masks


def _as_lists(value: Any) -> Any:
    """A tensor as Python lists (ids, masks, labels) or as one NumPy array per row (pixels); anything else as is."""
    if not torch.is_tensor(value):
        return value
    return list(value.numpy()) if value.is_floating_point() else value.tolist()


class UniPerceiverProcessorKwargs(ProcessingKwargs, total=False):
    """transformers' processor keyword arguments, with the image and video processors' own options (`preset`,
    `do_train_augmentation`, `num_spatial_crops`, ...). Flat keywords go to the component that takes them; the
    nested forms `text_kwargs`, `images_kwargs`, `videos_kwargs` and `common_kwargs` work as everywhere."""

    images_kwargs: UniPerceiverImageProcessorKwargs
    videos_kwargs: UniPerceiverVideoProcessorKwargs


class UniPerceiverProcessor(ProcessorMixin):
    r"""
    Builds the inputs of every Uni-Perceiver task from strings, images and videos (see the module docstring).

    Args:
        image_processor ([`UniPerceiverImageProcessor`], *optional*): default `UniPerceiverImageProcessor()`.
        tokenizer ([`UniPerceiverTokenizer`], *optional*): default `UniPerceiverTokenizer()` (the shipped vocabulary).
        video_processor ([`UniPerceiverVideoProcessor`], *optional*): default `UniPerceiverVideoProcessor()`.
    """

    valid_processor_kwargs = UniPerceiverProcessorKwargs

    def __init__(
        self,
        image_processor: UniPerceiverImageProcessor | None = None,
        tokenizer: UniPerceiverTokenizer | None = None,
        video_processor: UniPerceiverVideoProcessor | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            image_processor if image_processor is not None else UniPerceiverImageProcessor(),
            tokenizer if tokenizer is not None else UniPerceiverTokenizer(),
            video_processor if video_processor is not None else UniPerceiverVideoProcessor(),
            **kwargs,
        )

    # -- transformers plumbing: the video processor is not torchvision-based, so it is checked and loaded here ----

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"`video_processor` must be a VideoProcessorMixin, got {type(argument).__name__}.")
            return type(argument)
        return super().check_argument_for_proper_class(argument_name, argument)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> "UniPerceiverProcessor":
        """`ProcessorMixin.from_pretrained`; a failure under an untested transformers release names that release."""
        with explain_untested_transformers(f"`{cls.__name__}`"):
            return super().from_pretrained(*args, **kwargs)

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: Any, processor_dict: dict | None = None, **kwargs: Any
    ) -> list[Any]:
        """Load the three parts with their own classes. transformers < 5.25 loads sub-processors here, and its
        primary-modality Auto lookup would need torchvision for video; 5.25 no longer calls this and loads them
        through the Auto classes instead: `AutoVideoProcessor.register` in the package's `__init__`, and the
        `auto_map` that `UniPerceiverVideoProcessor.register_for_auto_class` writes for remote code."""
        processor_dict = processor_dict or {}
        kwargs.pop("trust_remote_code", None)
        tokenizer = UniPerceiverTokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs)
        parts = []
        for name, part_class in (
            ("image_processor", UniPerceiverImageProcessor),
            ("video_processor", UniPerceiverVideoProcessor),
        ):
            saved = processor_dict.get(name, {})
            config = {k: v for k, v in saved.items() if k not in (f"{name}_type", "auto_map")}
            # Keyword arguments of `from_pretrained` override the saved settings (`do_normalize=False`, ...).
            part = part_class.from_dict(config, **kwargs)
            if "auto_map" in saved:
                part.auto_map = saved["auto_map"]
            parts.append(part)
        return [parts[0], tokenizer, parts[1]]

    def to_dict(self) -> dict[str, Any]:
        """As `ProcessorMixin.to_dict`, always with the `auto_map` entry of this remote-code class (which a save
        writes and a load drops), so that the dict is the same fresh, saved, reloaded or built from components."""
        output = super().to_dict()
        if self._auto_class is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]
            output.setdefault("auto_map", {self._auto_class: f"{module}.{type(self).__name__}"})
        return output

    @classmethod
    def for_model_config(cls, config: Any) -> "UniPerceiverProcessor":
        """The shipped tokenizer (cut at the model's `max_position_embeddings` with `truncation=True`) and image and
        video processors at the model's input size and frame count: the processor of a model saved without one."""
        size = config.image_size
        return cls(
            image_processor=UniPerceiverImageProcessor(image_size=size),
            tokenizer=UniPerceiverTokenizer(model_max_length=config.max_position_embeddings),
            video_processor=UniPerceiverVideoProcessor(
                num_frames=config.num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
            ),
        )

    # -- building blocks -----------------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The original's `encode` of each text (cleaned BPE ids, no start or end token)."""
        # `verbose=False`: the callers cut long texts themselves, so the tokenizer's "longer than the maximum" is noise.
        return self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]

    def text_ids(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """`encode(text + " <|endoftext|>")` of each text, cut to `max_length` keeping the EOT (class names,
        captions, answers)."""
        eos = self.tokenizer.eos_token_id
        return [truncate_keeping_last(ids + [eos], max_length) for ids in self.encode(texts)]

    def target_inputs(self, targets: Any, max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Text targets (class names, captions, answers, label words) as `target_input_ids` and
        `target_attention_mask`: `name + EOT`, padded with 0."""
        ids, mask = pad_token_sequences(self.text_ids(_text_list(targets, "targets"), max_length))
        return {"target_input_ids": ids, "target_attention_mask": mask}

    def vocabulary_targets(self) -> dict[str, torch.Tensor]:
        """The vocabulary target set of masked LM and captioning: every id v as the target `[v, EOT]`, so the target
        index of a word is its id (49,411 rows; encode them once and pass `target_embeds` to reuse them)."""
        ids = vocabulary_target_ids(len(self.tokenizer), self.tokenizer.eos_token_id)
        return {"target_input_ids": ids, "target_attention_mask": torch.ones_like(ids)}

    def _pixels(
        self,
        images: Any,
        videos: Any,
        images_kwargs: dict[str, Any],
        videos_kwargs: dict[str, Any],
        prefix: str = "",
    ) -> tuple[dict[str, torch.Tensor], int, int]:
        """(pixel tensors, number of examples, views per example). Videos with several views put each view in its
        own row, views of one video next to each other."""
        if images is not None and videos is not None:
            raise ValueError(f"Pass `{prefix}images` or `{prefix}videos`, not both.")
        if images is not None:
            pixels = self.image_processor(images, **{**images_kwargs, "return_tensors": "pt"})["pixel_values"]
            return {f"{prefix}pixel_values": pixels}, pixels.shape[0], 1
        if videos is not None:
            pixels = self.video_processor(videos, **{**videos_kwargs, "return_tensors": "pt"})["pixel_values"]
            views = pixels.shape[1] if pixels.ndim == 6 else 1
            batch = pixels.shape[0]
            if views > 1:
                pixels = pixels.flatten(0, 1)
            return {f"{prefix}pixel_values": pixels}, batch, views
        return {}, 0, 1

    @staticmethod
    def _output(data: dict[str, Any], return_tensors: str | None) -> BatchFeature:
        """The outputs as torch tensors (`"pt"`), NumPy arrays (`"np"`) or, for `None`, Python lists of ids, masks
        and labels and one NumPy array per row of pixels. `task` stays a string."""
        if return_tensors is None:
            data = {key: _as_lists(value) for key, value in data.items()}
        return BatchFeature(data=data, tensor_type=return_tensors, skip_tensor_conversion=["task"])

    # -- layouts -------------------------------------------------------------------------------------------------

    def __call__(
        self,
        images: Any = None,
        text: str | list[str] | None = None,
        videos: Any = None,
        *,
        targets: str | list[str] | None = None,
        target_images: Any = None,
        target_videos: Any = None,
        task: str | None = None,
        labels: Sequence[int] | None = None,
        **kwargs: Unpack[UniPerceiverProcessorKwargs],
    ) -> BatchFeature:
        r"""
        Classification, retrieval, and plain image / video / text inputs.

        Args:
            images, videos: the visual input (one of them), an image/video or a list.
            text (`str` or `list[str]`): text input, encoded as `text + EOT` (a caption as the input side). With
                images or videos it is one fused sequence per example (VQA-style: give `targets` or `task`), except
                in CLIP's call (`text` and `images` with neither): then texts and images are two independent batches,
                as `AutoModelForZeroShotImageClassification` reads them (`logits_per_image` `[images, texts]`).
            targets (`str` or `list[str]`): text candidates (class names, captions), encoded as `name + EOT`.
            target_images, target_videos: visual candidates (e.g. text-to-image retrieval).
            task (`str`, *optional*): the logit scale, by the original's names (`img_cls`, `video_cls`,
                `retrieve`, ...). Default: `img_cls` for images, `video_cls` for videos, `downstream` for
                visual + text, `text_mlm` for text only (as `UniPerceiverModel.default_task`). It is returned when
                targets are given or it is passed.
            labels (`list[int]`, *optional*): index of the correct target per example (repeated per video view).
            **kwargs: transformers' processor keywords, flat or nested (`text_kwargs`, `images_kwargs`,
                `videos_kwargs`, `common_kwargs`):

                - `return_tensors`: `"pt"` for `model(**inputs)`, `"np"`, or `None` (the default, as in
                  transformers): Python lists of ids, masks and labels and one NumPy array per row of pixels.
                - `max_length` (text): cut text and text targets to this many ids keeping the final EOT (the
                  original's truncation; `truncation=False` keeps them whole). Default: 50 for `retrieve` and
                  `caption` (the original's caption length), no limit otherwise.
                - `padding` (text): to the longest text (default), `"max_length"`, or `False` (lists only). Texts
                  are padded with id 0 as in the original; other tokenizer options do not apply to this layout.
                - `preset` (images): `"imagenet"` (default for `img_cls`) or `"clip"` (otherwise); any other option
                  of the image processor (`do_rescale`, `do_normalize`, `size`, ...).
                - `num_spatial_crops` (videos): 3 (default for `video_cls`) or 1; several views become
                  consecutive rows (average the softmax over each group of views); any other option of the video
                  processor (`num_frames`, `do_sample_frames`, ...).
        """
        if images is None and videos is None and text is None:
            raise ValueError("Pass `images`, `videos` or `text`.")
        merged = self._merge_kwargs(
            UniPerceiverProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
        )
        text_kwargs, images_kwargs, videos_kwargs = (
            merged["text_kwargs"],
            merged["images_kwargs"],
            merged["videos_kwargs"],
        )
        return_task = task is not None or labels is not None
        # CLIP's call, `processor(text=labels, images=images)` with no candidates and no task: texts and images are
        # two independent batches (any sizes) for `AutoModelForZeroShotImageClassification`, not fused sequences.
        clip_call = (
            task is None
            and text is not None
            and (images is not None or videos is not None)
            and targets is None
            and target_images is None
            and target_videos is None
        )
        if task is None:
            if images is None and videos is None:
                task = "text_mlm"
            elif text is not None and not clip_call:
                task = "downstream"
            else:
                task = "img_cls" if images is not None else "video_cls"
        max_length = text_kwargs.get("max_length")
        if max_length is None and task in ("retrieve", "caption"):
            max_length = CAPTION_MAX_LENGTH
        if max_length is None and text_kwargs.get("truncation") in (True, "longest_first", "only_first"):
            max_length = self.tokenizer.model_max_length  # the model's text position table
        cut = max_length if text_kwargs.get("truncation") not in (False, "do_not_truncate") else None
        # An empty prompt for every picture is a captioning request (transformers' `image-text-to-text` pipeline, which
        # `UniPerceiverForImageTextToText` answers): captions are generated from the "clip" preprocessing.
        captioning_call = clip_call and all(entry == "" for entry in _text_list(text, "text", allow_blank=True))
        default_preset = "imagenet" if task == "img_cls" and not captioning_call else "clip"
        images_kwargs["preset"] = images_kwargs.get("preset") or default_preset
        videos_kwargs["num_spatial_crops"] = videos_kwargs.get("num_spatial_crops") or (
            3 if task == "video_cls" and not clip_call else 1
        )

        data, batch, views = self._pixels(images, videos, images_kwargs, videos_kwargs)
        if text is not None:
            texts = _text_list(text, "text", allow_blank=captioning_call)
            if clip_call:
                views = 1
            elif batch and len(texts) != batch:
                raise ValueError(f"`text` has {len(texts)} entries for {batch} images or videos.")
            batch = len(texts)
            ids, mask = _pad_rows(self.text_ids(texts, cut), text_kwargs.get("padding"), max_length)
            data.update(
                input_ids=[row for row in ids for _ in range(views)],
                attention_mask=[row for row in mask for _ in range(views)],
            )

        if targets is not None:
            if target_images is not None or target_videos is not None:
                raise ValueError("Pass text `targets` or visual `target_images`/`target_videos`, not both.")
            data.update(self.target_inputs(targets, cut))
        elif target_images is not None or target_videos is not None:
            single_view = {**videos_kwargs, "num_spatial_crops": 1}
            data.update(self._pixels(target_images, target_videos, images_kwargs, single_view, prefix="target_")[0])
        if labels is not None:
            candidates = data.get("target_input_ids", data.get("target_pixel_values"))
            num_targets = None if candidates is None else len(candidates)
            data["labels"] = [label for label in _label_list(labels, batch, num_targets) for _ in range(views)]
        if return_task or any(key.startswith("target_") for key in data):
            data["task"] = task
        return self._output(data, text_kwargs.get("return_tensors"))

    def vqa(
        self,
        images: Any,
        questions: str | list[str],
        answers: str | list[str] | None = None,
        labels: Sequence[int] | None = None,
        max_length: int = VQA_MAX_LENGTH,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """Visual question answering: the image ("clip" preset) and `encode(question)[:max_length - 2] +
        [<SPE>, EOT]`, read at that `<SPE>` (`feature_index` = length - 2), against the candidate `answers`.
        `images=None` builds the text side only (training pipelines bring their own augmented pixels)."""
        questions = _text_list(questions, "questions", allow_blank=True)
        check_int("max_length", max_length, low=2, high_means="room for `<SPE>` and EOT")
        data, batch, _ = self._pixels(images, None, {"preset": "clip"}, {})
        if images is not None and len(questions) != batch:
            raise ValueError(f"`questions` has {len(questions)} entries for {batch} images.")
        spe, eos = self.tokenizer.convert_tokens_to_ids(SPE_TOKEN), self.tokenizer.eos_token_id
        sequences = [ids[: max_length - 2] + [spe, eos] for ids in self.encode(questions)]
        ids, mask = pad_token_sequences(sequences)
        data.update(
            input_ids=ids,
            attention_mask=mask,
            feature_index=torch.tensor([len(s) - 2 for s in sequences], dtype=torch.long),
            task="downstream",
        )
        if answers is not None:
            data.update(self.target_inputs(answers))
        if labels is not None:
            num_answers = len(data["target_input_ids"]) if answers is not None else None
            data["labels"] = torch.tensor(_label_list(labels, len(questions), num_answers), dtype=torch.long)
        return self._output(data, return_tensors)

    def text_classification(
        self,
        task_name: str,
        sentences: str | list[str],
        second_sentences: str | list[str] | None = None,
        labels: Sequence[int] | None = None,
        max_length: int = GLUE_MAX_LENGTH,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """GLUE as the original: the task's template with an in-text `<SPE>` (read out through `feature_index`),
        against the task's label words (`GLUE_LABEL_WORDS`, in the original's label order).

        Single-sentence tasks (SST-2, CoLA) take `sentences`; pair tasks (RTE, MRPC, QQP, QNLI, MNLI) also take
        `second_sentences`. Truncation follows the original: pairs cut the second part to half of `max_length`
        (QNLI: to what the first leaves) and the first part to the rest, each keeping its last id.
        """
        key = glue_task_key(task_name)
        firsts = _text_list(sentences, "sentences", allow_blank=True)
        check_int("max_length", max_length, low=4)  # the template's "<SPE> . EOT" and the word before it
        sequences, spe_positions = [], []
        if key in _GLUE_SINGLE_SUFFIX:
            if second_sentences is not None:
                raise ValueError(f"`second_sentences` is not used by the single-sentence task {task_name!r}.")
            for ids in self.encode([s + _GLUE_SINGLE_SUFFIX[key] for s in firsts]):
                # The original keeps the last 4 ids ("<SPE> . EOT" and the word before) when cutting; the
                # position is taken after the cut, where the original's (taken before it) would be stale.
                ids = ids if len(ids) <= max_length else ids[: max_length - 4] + ids[-4:]
                spe_positions.append(len(ids) - 3)
                sequences.append(ids)
        else:
            seconds = _text_list(second_sentences, "second_sentences", allow_blank=True)
            if len(seconds) != len(firsts):
                raise ValueError(f"`second_sentences` has {len(seconds)} entries for {len(firsts)} `sentences`.")
            drop_period, middle, second_takes_rest = _GLUE_PAIR_TEMPLATE[key]
            (middle_ids,) = self.encode([middle])
            (spe_part,) = self.encode(["  <|spe|> , "])
            for first, second in zip(
                self.encode(firsts), self.encode([s + " <|endoftext|> " for s in seconds]), strict=True
            ):
                if drop_period and first and first[-1] == _PERIOD_ID:
                    first = first[:-1]
                first = first + middle_ids
                second = spe_part + second
                second_limit = max_length - len(first) if second_takes_rest else max_length // 2
                second = truncate_keeping_last(second, max(second_limit, 2))
                first = truncate_keeping_last(first, max_length - len(second))
                spe_positions.append(len(first))
                sequences.append(first + second)
        ids, mask = pad_token_sequences(sequences)
        data: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "feature_index": torch.tensor(spe_positions, dtype=torch.long),
            "task": "text_mlm",
            **self.target_inputs(list(GLUE_LABEL_WORDS[key])),
        }
        if labels is not None:
            labels = _label_list(labels, len(firsts), len(GLUE_LABEL_WORDS[key]))
            data["labels"] = torch.tensor(labels, dtype=torch.long)
        return self._output(data, return_tensors)

    def masked_lm(
        self,
        texts: str | list[str] | list[list[str]],
        max_length: int = MLM_MAX_LENGTH,
        mask_probability: float = MLM_MASK_PROBABILITY,
        generator: random.Random | None = None,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """Masked language modelling with whole-word masking, as the original (`random_word_wwm`).

        Each example is a string or a list of lines; every line gets `<|endoftext|>` appended. Each word (the
        tokenizer's word split, EOT included) is chosen with probability `mask_probability`; a chosen word has
        all its sub-tokens replaced by `<SPE>` (80 %), by uniformly random ids (10 %) or kept (10 %). Sequences
        are cut to `max_length` keeping the last id. Random draws come from `generator` (a `random.Random`, in
        the original's order, so `random.Random(seed)` reproduces it) or Python's global `random`.

        Returns `input_ids`, `attention_mask`, `feature_index` (`[B, L]` bool, the chosen sub-tokens) and `labels`
        (their original ids, flattened in the order the model reads the features out, to score against
        `vocabulary_targets()`). Nothing guarantees a chosen word in a short text, as in the original.
        """
        texts = _text_list(texts, "texts", allow_lists=True, allow_blank=True)
        check_int("max_length", max_length, low=2)
        if not 0.0 <= mask_probability <= 1.0:  # NaN fails too
            raise ValueError(f"`mask_probability` must be a probability in [0, 1], got {mask_probability}.")
        examples = [[t] if isinstance(t, str) else list(t) for t in texts]
        rng = generator if generator is not None else random
        spe, vocab_size = self.tokenizer.convert_tokens_to_ids(SPE_TOKEN), len(self.tokenizer)
        sequences, targets = [], []
        for lines in examples:
            words = self._words(lines)
            ids, labels = [], []
            for word in words:
                draw = rng.random()
                if draw < mask_probability:
                    draw /= mask_probability
                    if draw < 0.8:
                        ids += [spe] * len(word)
                    elif draw < 0.9:
                        ids += [rng.randrange(vocab_size) for _ in word]
                    else:
                        ids += word
                    labels += word
                else:
                    ids += word
                    labels += [-100] * len(word)
            sequences.append(truncate_keeping_last(ids, max_length))
            targets.append(truncate_keeping_last(labels, max_length))
        input_ids, mask = pad_token_sequences(sequences)
        label_grid, _ = pad_token_sequences(targets, pad_id=-100)
        chosen = label_grid != -100
        return self._output(
            {
                "input_ids": input_ids,
                "attention_mask": mask,
                "feature_index": chosen,
                "labels": label_grid[chosen],
                "task": "text_mlm",
            },
            return_tensors,
        )

    def _words(self, lines: list[str]) -> list[list[int]]:
        """The sub-token ids of each word of the lines, each line followed by the word `<|endoftext|>`."""
        encoding = self.tokenizer(lines, add_special_tokens=False)
        words: list[list[int]] = []
        for row, ids in enumerate(encoding["input_ids"]):
            previous = None
            for token_id, word_id in zip(ids, encoding.word_ids(row), strict=True):
                if word_id is None or word_id != previous:
                    words.append([])
                words[-1].append(token_id)
                previous = word_id
            words.append([self.tokenizer.eos_token_id])
        return words

    def caption_training(
        self,
        captions: str | list[str],
        images: Any = None,
        videos: Any = None,
        max_length: int = CAPTION_MAX_LENGTH,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """Auto-regressive captioning (training) as the original: `caption + EOT` cut to `max_length`, followed by
        one `<SPE>` per word; `<SPE>_i` sees the image and the words before i and is scored against the vocabulary
        (`vocabulary_targets()`) with `labels` = word i. Without images or videos it is the text-only layout."""
        captions = _text_list(captions, "captions", allow_blank=True)
        check_int("max_length", max_length, low=2)
        data, batch, _ = self._pixels(images, videos, {"preset": "clip"}, {"num_spatial_crops": 1})
        if batch and len(captions) != batch:
            raise ValueError(f"`captions` has {len(captions)} entries for {batch} images or videos.")
        spe = self.tokenizer.convert_tokens_to_ids(SPE_TOKEN)
        data.update(caption_training_inputs(self.text_ids(captions, max_length), spe_token_id=spe))
        data["task"] = "caption" if batch else "text_caption"
        return self._output(data, return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return [
            "input_ids",
            "attention_mask",
            "position_ids",
            "pixel_values",
            "feature_index",
            "target_input_ids",
            "target_attention_mask",
            "target_pixel_values",
            "task",
            "labels",
        ]


UniPerceiverProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "GLUE_LABEL_WORDS",
    "UniPerceiverProcessor",
    "glue_task_key",
    "truncate_keeping_last",
]
