"""`pipeline("zero-shot-perception")`: score images, videos or texts against candidate targets, with no training.

The candidates may be label texts (optionally through prompt templates, averaged as an ensemble), images or
videos (e.g. one exemplar image per class): Uni-Perceiver puts both sides through the same encoder and compares
their `<SPE>` features (paper section 3.3). The sequence layout and the logit scale follow from the modalities:

| input | layout | logit scale |
|---|---|---|
| image (PIL, array, image file path) | image, "imagenet" preset vs text candidates | `img_cls` |
| video (file path, `[T, H, W, 3]` frames, list of PIL) | 8 frames, 3 crops, probabilities averaged | `video_cls` |
| text | `text + EOT`, read at the prefix `<SPE>` | `text_mlm` |
| text pair (`(s1, s2)` or `{"text": s1, "text_pair": s2}`) | a GLUE template with an in-text `<SPE>` | `text_mlm` |
| `{"image": ..., "question": ...}` | VQA: image + question + `<SPE>`, vs candidate answers | `downstream` |

A text input against image or video candidates (retrieval) uses `retrieve`; a pre-encoded `TargetSet` is scored
like label texts; `logit_scale_task` overrides the choice. A gallery in an index folder (`candidate_set=INDEX_DIR`,
written by `uniperceiver-hf index`) is searched instead of scored in full: each input gets its `top_k` (default
10) nearest rows, labelled by their ids, with their cosine similarity as the score (a softmax would need every row). Candidate features are cached in a bounded LRU keyed
by the model's weights fingerprint and the exact candidate texts (under one tokenizer) or pixels, so a later call
with the same candidates only encodes the inputs.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import string
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import Pipeline
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import logging

from .captioning_uniperceiver import UniPerceiverCaptioner, strip_after_eos
from .galleries_uniperceiver import is_index_folder
from .moe_uniperceiver import resolve_attribute
from .processing_uniperceiver import GLUE_LABEL_WORDS, UniPerceiverProcessor, glue_task_key
from .targets_uniperceiver import TargetSet, model_fingerprint
from .validation_uniperceiver import check_int


logger = logging.get_logger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VISUAL_SCALES = {"image": "img_cls", "video": "video_cls"}
DEFAULT_BATCH_SIZE = 32  # inputs per model call when neither the call nor the pipeline sets `batch_size`
DEFAULT_INDEX_TOP_K = 10  # results per input from an index-backed gallery when the call sets no `top_k`
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _looks_like_location(text: str) -> bool:
    """A URL, or one word ending in an image/video suffix or starting like a path: meant as a file, not as text."""
    if _URL.match(text):
        return True
    if any(space.isspace() for space in text):
        return False
    return text.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS) or text.startswith(("/", "./", "../", "~/"))


def input_kind(item: Any) -> str:
    """`image`, `video`, `text`, `text_pair` or `vqa`: which layout an input gets.

    A string naming an existing file is an image, or a video by its extension. A string that looks like a file
    (a URL, or one word with an image/video suffix or a path prefix) but names none is an error, never text;
    any other string is text. `{"text": s}` is text whatever `s` looks like.
    """
    if isinstance(item, dict):
        if "question" in item and "image" in item:
            return "vqa"
        if "text" in item and "text_pair" in item:
            return "text_pair"
        if set(item) == {"text"} and isinstance(item["text"], str):
            return "text"
        raise ValueError(
            "A dict input must be {'image': ..., 'question': ...} (VQA), {'text': ..., 'text_pair': ...} or "
            f"{{'text': ...}} (a string scored as text); got keys {sorted(item)}. For a dataset, pass one column: "
            "`dataset['image']` or `KeyDataset(dataset, 'image')`."
        )
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item):
        return "text_pair"
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if os.path.isfile(path):
            return "video" if path.lower().endswith(VIDEO_EXTENSIONS) else "image"
        if not isinstance(item, str):
            raise ValueError(f"Input path {path!r} does not exist.")
        if _looks_like_location(item):
            raise ValueError(
                f"Input {item!r} looks like a file path or URL but no such file can be read (URLs are not "
                "downloaded). Pass an existing file or an image object, or `{'text': ...}` to score the string as text."
            )
        if not item.strip():
            raise ValueError("A text input is empty.")
        return "text"
    if isinstance(item, Image.Image):
        return "image"
    if isinstance(item, (np.ndarray, torch.Tensor)):
        if item.ndim in (2, 3):
            return "image"
        if item.ndim == 4:
            return "video"
        raise ValueError(f"An array input must be an image (2 or 3 dims) or frames (4 dims), got {item.ndim} dims.")
    if isinstance(item, (list, tuple)) and item and all(isinstance(frame, Image.Image) for frame in item):
        return "video"
    raise ValueError(f"Unsupported input of type {type(item).__name__}: expected an image, a video, a text or a pair.")


def _is_stream(inputs: Any) -> bool:
    """A generator, a dataset column, a `KeyDataset` or any other collection of inputs, rather than one input."""
    if isinstance(inputs, (str, bytes, dict, tuple, os.PathLike, np.ndarray, torch.Tensor, Image.Image)):
        return False
    return isinstance(inputs, Iterable) or (hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__"))


def _processor_for(model) -> UniPerceiverProcessor:
    """The processor saved beside a model's weights (a folder or a cached Hub repository), else the one built for the
    model's config (the shipped tokenizer, the model's image size and frame count)."""
    source = model.name_or_path
    if source and os.path.isdir(source):
        if os.path.isfile(os.path.join(source, "processor_config.json")):
            return UniPerceiverProcessor.from_pretrained(source)
    elif source:
        try:
            return UniPerceiverProcessor.from_pretrained(source)
        except OSError:
            pass
    logger.info(f"No saved processor found for {source!r}: using the default processor for the model's config.")
    return UniPerceiverProcessor.for_model_config(model.config)


def check_template(template: Any) -> None:
    """A `hypothesis_template` must hold exactly one `{}` (where the label goes); literal braces are doubled."""
    fields = None
    if isinstance(template, str):
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        except ValueError:  # unbalanced braces
            pass
    if fields != [""]:
        raise ValueError(
            f"`hypothesis_template` must be a string with exactly one '{{}}' where the label goes (write literal "
            f"braces as '{{{{' and '}}}}'), got {template!r}."
        )


@dataclass
class _Candidates:
    """The candidates of one call in one object: transformers' device placement would walk plain lists of
    thousands of labels item by item, twice per call."""

    modality: str
    lists: list
    names: list
    templates: list


class _Batch:
    """Inputs processed together in one model call; transformers would run a plain list one item at a time. `start`
    is the position of the first one among all the call's inputs (errors name an input by that position)."""

    def __init__(self, items: list, start: int = 0):
        self.items = items
        self.start = start


# Arguments that may hold one candidate list per input: a chunk of the inputs gets its own slice of them.
PER_INPUT_ARGUMENTS = ("candidate_labels", "candidate_images", "candidate_videos", "candidate_names")


def _arguments_for_chunk(kwargs: dict, total: int | None, start: int, size: int) -> dict:
    """The call's keyword arguments for inputs `start:start + size`, with per-input candidate lists sliced."""
    chunk = dict(kwargs)
    for name in PER_INPUT_ARGUMENTS:
        value = kwargs.get(name)
        per_input = isinstance(value, list) and value and all(isinstance(v, list) for v in value)
        if per_input and len(value) == total:
            chunk[name] = value[start : start + size]
    return chunk


class ZeroShotPerceptionPipeline(Pipeline):
    """Zero-shot perception with Uni-Perceiver: see the module docstring for inputs, layouts and scales.

    `pipe(inputs, candidate_labels=[...])`, `pipe(inputs, candidate_images=[...])`,
    `pipe(inputs, candidate_videos=[...])` or `pipe(inputs, candidate_set=TargetSet)` (features encoded once,
    possibly loaded from a file) returns, per input, the candidates sorted by probability (softmax over the
    candidates at the model's temperature): `[{"label": ..., "score": ...}, ...]`. `candidate_names` names
    image, video or set candidates (default: a string candidate's own text, e.g. a file path, otherwise its index in
    the candidate list: PIL images and arrays are labelled 0, 1, ...). A single candidate scores 1.0; `top_k` keeps
    the best k (all of them when there are fewer). The pipeline scores by similarity only: a prompt-tuned linear head is not applied.
    `adapter=UniPerceiverAdapter` runs that call on the model with a prompt-tuning adapter applied (built once,
    sharing the model's frozen weights; its candidate features are cached apart from the plain model's).

    `pipe.caption(images)` generates captions; `pipe.fill_mask(text)` predicts words written as `<|spe|>`.
    """

    # `None`: transformers tries to load the processor but leaves a failure to `__init__`, which then finds it beside
    # the model's weights (`pipeline(model=model_object)`) or builds the one for the model's config.
    _load_processor = None
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, target_cache_size: int = 32, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            self.processor = _processor_for(self.model)
        self.target_cache_size = target_cache_size
        self._target_cache: OrderedDict[tuple, TargetSet] = OrderedDict()
        self._vocabulary: TargetSet | None = None  # kept apart: label lists must never evict it
        self._saved_sets: dict[tuple, TargetSet] = {}  # sets and index folders given by path, loaded once

    # -- transformers plumbing ------------------------------------------------------------------------------------

    def __call__(self, inputs: Any, batch_size: int | None = None, progress_bar: bool | None = None, **kwargs: Any):
        """One input gives its list of `{"label", "score"}`. A list gives one such list per input; a generator, a
        `KeyDataset`, a dataset column or any other iterable gives a generator of them, in input order.

        Lists and streams run `batch_size` inputs per model call (default: the pipeline's `batch_size`, else 32), so
        memory stays flat however many inputs there are. `progress_bar` shows a tqdm bar (default: when the inputs
        have a length and fill more than 8 batches).
        """
        batch_size = self._batch_size if batch_size is None else batch_size
        batch_size = check_int("batch_size", DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        if isinstance(inputs, list):
            if not inputs:
                raise ValueError("`inputs` is an empty list.")
            return list(self._stream(inputs, batch_size, progress_bar, kwargs))
        if _is_stream(inputs):
            return self._stream(inputs, batch_size, progress_bar, kwargs)
        return super().__call__(_Batch([inputs]), **kwargs)[0]

    def _stream(self, inputs: Iterable, batch_size: int, progress_bar: bool | None, kwargs: dict) -> Iterator[list]:
        """Results of `inputs`, in order, from one pipeline run per `batch_size` inputs."""
        total = len(inputs) if hasattr(inputs, "__len__") else None
        items = inputs if isinstance(inputs, Iterable) else (inputs[i] for i in range(total))  # e.g. `KeyDataset`
        show = progress_bar if progress_bar is not None else total is not None and total > 8 * batch_size
        iterator, start = iter(items), 0
        with tqdm(total=total, desc="zero-shot-perception", unit="input", disable=not show) as bar:
            while chunk := list(itertools.islice(iterator, batch_size)):
                arguments = _arguments_for_chunk(kwargs, total, start, len(chunk))
                yield from super().__call__(_Batch(chunk, start), **arguments)
                bar.update(len(chunk))
                start += len(chunk)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Saves the model (weights, remote code, the pipeline's declaration) with this pipeline's processor."""
        if os.path.isfile(save_directory):
            raise ValueError(f"`save_directory` {os.fspath(save_directory)!r} is a file, not a folder.")
        os.makedirs(save_directory, exist_ok=True)
        self.processor.save_pretrained(save_directory)
        self.model.save_pretrained(save_directory, **kwargs)

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        candidate_images=None,
        candidate_videos=None,
        candidate_set=None,
        candidate_names=None,
        hypothesis_template=None,
        glue_task=None,
        logit_scale_task=None,
        top_k=None,
        adapter=None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {sorted(kwargs)}.")
        preprocess = dict(
            candidate_labels=candidate_labels,
            candidate_images=candidate_images,
            candidate_videos=candidate_videos,
            candidate_set=candidate_set,
            candidate_names=candidate_names,
            hypothesis_template=hypothesis_template,
            glue_task=glue_task,
            logit_scale_task=logit_scale_task,
            adapter=adapter,
        )
        if top_k is not None and (not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"`top_k` must be a positive integer, got {top_k!r}.")
        return preprocess, {"adapter": adapter, "top_k": top_k}, {"top_k": top_k}

    def _model_for(self, adapter):
        """The model of one call: the pipeline's own, or with a prompt-tuning adapter applied (built once)."""
        return self.model if adapter is None else adapter.apply(self.model)

    # -- candidates -----------------------------------------------------------------------------------------------

    def _candidate_lists(self, model, batch_size, labels, images, videos, target_set, names) -> tuple[str, list, list]:
        """(modality, per-input candidate lists, per-input label names).

        Candidates are one list shared by every input, or a list of lists with one list per input. A pre-encoded
        `TargetSet` (modality "set") is one candidate list whose names are its labels (or row indices).
        """
        given = [(m, c) for m, c in (("text", labels), ("image", images), ("video", videos), ("set", target_set))]
        given = [(m, c) for m, c in given if c is not None]
        if len(given) != 1:
            raise ValueError(
                "Pass exactly one of `candidate_labels`, `candidate_images`, `candidate_videos` or `candidate_set`."
            )
        modality, candidates = given[0]
        if modality == "set":
            if isinstance(candidates, (str, os.PathLike)):
                candidates = self._saved_set(candidates, model)
            if not isinstance(candidates, TargetSet):
                raise ValueError(
                    f"`candidate_set` must be a TargetSet, a saved one's path or an index folder, got "
                    f"{type(candidates).__name__}."
                )
            candidates.check_model(model)
            set_names = names or candidates.labels or list(range(len(candidates)))
            if len(set_names) != len(candidates):
                raise ValueError("`candidate_names` must have one name per candidate.")
            return modality, [candidates] * batch_size, [list(set_names)] * batch_size
        argument = {"text": "candidate_labels", "image": "candidate_images", "video": "candidate_videos"}[modality]
        if modality == "text" and isinstance(candidates, str):
            # As transformers' zero-shot-classification: "cat, dog" is two labels.
            candidates = [label.strip() for label in candidates.split(",") if label.strip()]
        if not isinstance(candidates, (list, tuple)) or not candidates:
            raise ValueError(f"`{argument}` must be a non-empty list of candidates.")
        per_input = all(isinstance(c, list) for c in candidates) and len(candidates) == batch_size
        lists = [list(c) for c in candidates] if per_input else [list(candidates)] * batch_size
        for candidate_list in lists:
            if not candidate_list:
                raise ValueError(f"`{argument}` has an empty candidate list: give at least one candidate.")
            if modality == "text":
                if not all(isinstance(c, str) for c in candidate_list):
                    raise ValueError(
                        "`candidate_labels` must all be strings: the candidates of one call share one modality; "
                        "pass images as `candidate_images` and videos as `candidate_videos`."
                    )
                if not all(c.strip() for c in candidate_list):
                    raise ValueError(f"`candidate_labels` has an empty label: {candidate_list}.")
                if len(set(candidate_list)) != len(candidate_list):
                    raise ValueError(f"`candidate_labels` has duplicates: {candidate_list}.")
        if names is None:
            name_lists = [[c if isinstance(c, str) else i for i, c in enumerate(lst)] for lst in lists]
        else:
            name_lists = [list(n) for n in names] if per_input else [list(names)] * batch_size
            if any(len(n) != len(c) for n, c in zip(name_lists, lists)):
                raise ValueError("`candidate_names` must have one name per candidate.")
        return modality, lists, name_lists

    def _saved_set(self, path: str | os.PathLike, model) -> TargetSet:
        """The target set saved at `path` (an index folder or a `TargetSet.save` file), loaded once (an index
        memory-mapped) and checked against the model of the call."""
        if os.path.isdir(path) and not is_index_folder(path):
            raise ValueError(
                f"`candidate_set` {os.fspath(path)!r} is not an index folder (it has no index.json); build one with "
                "`uniperceiver-hf index`."
            )
        key = (os.path.realpath(path), os.path.getmtime(path) if os.path.exists(path) else None)
        if key not in self._saved_sets:
            self._saved_sets[key] = TargetSet.load(path, check_fingerprint=False)
        saved = self._saved_sets[key]
        saved.check_model(model)
        return saved

    def _cached(self, key: tuple, encode) -> TargetSet:
        """The target set cached under `key`, encoded with `encode()` on a miss (least recently used evicted)."""
        if key not in self._target_cache:
            self._target_cache[key] = encode()
            while len(self._target_cache) > self.target_cache_size:
                self._target_cache.popitem(last=False)
        self._target_cache.move_to_end(key)
        return self._target_cache[key]

    def _text_targets(self, model, labels: list[str], templates: list[str], fingerprint: str, task: str) -> TargetSet:
        """Features of label texts, averaged over templates (a prompt ensemble) and re-normalised. `task` (the
        input's logit scale) picks their task attribute on an MoE model (class names, label words, captions)."""
        prompts = [[template.format(label) for label in labels] for template in templates]
        # The exact texts under one tokenizer determine the exact tokens; keying on them avoids tokenizing a
        # thousand labels on every call just to look the features up.
        routing = model.routing(None, True, task, None, True, 0)
        key = ("text", fingerprint, id(self.processor.tokenizer), tuple(map(tuple, prompts)), routing)

        def encode() -> TargetSet:
            features = []
            for texts in prompts:
                targets = self.processor.target_inputs(texts)
                ids, mask = targets["target_input_ids"], targets["target_attention_mask"]
                features.append(TargetSet.encode(model, ids, mask, task=task).embeds)
            embeds = torch.nn.functional.normalize(torch.stack(features).mean(0), dim=-1)
            return TargetSet(embeds, labels, fingerprint, [list(r) for r in routing.rows] if routing else None)

        return self._cached(key, encode)

    def _visual_targets(
        self, model, modality: str, candidates: list, preset: str, fingerprint: str, task: str
    ) -> TargetSet:
        pixel_values = self._pixels(
            modality, candidates, preset, num_spatial_crops=1, argument=f"candidate_{modality}s"
        )
        key = (
            modality,
            fingerprint,
            tuple(pixel_values.shape),
            hashlib.sha256(pixel_values.numpy().tobytes()).hexdigest(),
        )
        return self._cached(key, lambda: TargetSet.encode(model, pixel_values=pixel_values, batch_size=32, task=task))

    @staticmethod
    def _check_set_attribute(model, target_set: TargetSet, task: str) -> None:
        """On an MoE model a pre-encoded set must carry the attribute this call's candidates need: that of texts
        for `task` or of visual candidates."""
        if not model.config.is_moe:
            return
        allowed = [
            resolve_attribute(model.config, None, is_target=True, task=task, visual=visual, has_text=visual is None)
            for visual in (None, "image", "video")
        ]
        if target_set.attribute is None or tuple(map(tuple, target_set.attribute)) not in allowed:
            raise ValueError(
                f"`candidate_set` was encoded with the task attribute {target_set.attribute}; candidates of a "
                f"{task!r} call on this Uni-Perceiver-MoE model need {[list(map(list, a)) for a in allowed]}: "
                f"encode it with `TargetSet.encode(model, ..., task={task!r})`."
            )

    def _pixels(
        self, modality: str, items: list, preset: str, num_spatial_crops: int, argument: str, positions=None
    ) -> torch.Tensor:
        """Pixel rows of images or videos, processed one by one so that an error names the item it is about (by its
        position in `positions`, default its index)."""
        rows = []
        for index, item in zip(positions or range(len(items)), items):
            try:
                if modality == "image":
                    pixels = self.processor.image_processor([item], preset=preset, return_tensors="pt")["pixel_values"]
                    rows.append(pixels)
                else:
                    pixels = self.processor.video_processor([item], num_spatial_crops=num_spatial_crops)[
                        "pixel_values"
                    ]
                    rows.append(pixels.flatten(0, 1) if pixels.ndim == 6 else pixels)
            except ValueError as error:
                raise ValueError(f"`{argument}` item {index}: {error}") from error
        return torch.cat(rows)

    # -- the three steps ------------------------------------------------------------------------------------------

    def preprocess(
        self,
        inputs: _Batch,
        candidate_labels=None,
        candidate_images=None,
        candidate_videos=None,
        candidate_set=None,
        candidate_names=None,
        hypothesis_template=None,
        glue_task=None,
        logit_scale_task=None,
        adapter=None,
    ) -> dict:
        start, inputs = inputs.start, inputs.items
        kinds = []
        for position, item in enumerate(inputs, start):
            try:
                kinds.append(input_kind(item))
            except ValueError as error:
                raise ValueError(f"`inputs` item {position}: {error}") from error
        if glue_task is None and "text_pair" in kinds:
            glue_task = "rte"  # sentence pairs default to the entailment template
        if glue_task is not None and candidate_labels is candidate_images is candidate_videos is candidate_set is None:
            candidate_labels = list(GLUE_LABEL_WORDS[glue_task_key(glue_task)])
        modality, candidate_lists, name_lists = self._candidate_lists(
            self._model_for(adapter),
            len(inputs),
            candidate_labels,
            candidate_images,
            candidate_videos,
            candidate_set,
            candidate_names,
        )
        if hypothesis_template is not None and modality != "text":
            raise ValueError("`hypothesis_template` applies to text candidates only.")
        templates = [hypothesis_template or "{}"] if not isinstance(hypothesis_template, list) else hypothesis_template
        if not templates:
            raise ValueError("`hypothesis_template` is an empty list; give at least one template.")
        for template in templates:
            check_template(template)
        groups = {}
        for kind in dict.fromkeys(kinds):
            rows = [i for i, k in enumerate(kinds) if k == kind]
            items = [inputs[i] for i in rows]
            positions = [start + row for row in rows]
            layout = self._input_layout(kind, items, positions, modality, glue_task, logit_scale_task)
            groups[kind] = dict(rows=rows, **layout)
        return dict(groups=groups, candidates=_Candidates(modality, candidate_lists, name_lists, templates))

    def _input_layout(
        self, kind: str, items: list, positions: list[int], modality: str, glue_task, logit_scale_task
    ) -> dict:
        """The processor's layout for one kind of input (at these positions among the call's inputs), the logit scale
        it uses and its views per input."""
        if kind in ("image", "video"):
            scale = logit_scale_task or (VISUAL_SCALES[kind] if modality in ("text", "set") else "retrieve")
            preset = "imagenet" if scale == "img_cls" else "clip"
            crops = 3 if scale == "video_cls" else 1
            pixel_values = self._pixels(kind, items, preset, crops, argument="inputs", positions=positions)
            return dict(inputs={"pixel_values": pixel_values}, scale=scale, views=pixel_values.shape[0] // len(items))
        text_scale = logit_scale_task or ("text_mlm" if modality in ("text", "set") else "retrieve")
        if kind == "text":
            items = [item["text"] if isinstance(item, dict) else item for item in items]
        if kind == "vqa":
            layout = self.processor.vqa([i["image"] for i in items], [i["question"] for i in items])
            names, scale = (
                ("pixel_values", "input_ids", "attention_mask", "feature_index"),
                logit_scale_task or "downstream",
            )
        elif kind == "text_pair":
            pairs = [(i["text"], i["text_pair"]) if isinstance(i, dict) else i for i in items]
            layout = self.processor.text_classification(glue_task, [p[0] for p in pairs], [p[1] for p in pairs])
            names, scale = ("input_ids", "attention_mask", "feature_index"), text_scale
        elif glue_task is not None:
            layout = self.processor.text_classification(glue_task, items)
            names, scale = ("input_ids", "attention_mask", "feature_index"), text_scale
        else:
            limit = self.model.config.max_position_embeddings
            longest = max(len(ids) for ids in self.processor.text_ids(items))
            if longest > limit:
                logger.warning(
                    f"A text input has {longest} tokens; it is truncated to the model's {limit} text positions "
                    "(its first tokens and the final end-of-text are kept)."
                )
            layout = self.processor(text=items, truncation=True, max_length=limit, return_tensors="pt")
            names, scale = ("input_ids", "attention_mask"), text_scale
        return dict(inputs={name: layout[name] for name in names}, scale=scale, views=1)

    def _forward(self, model_inputs: dict, adapter=None, top_k=None) -> dict:
        model = self._model_for(adapter)
        fingerprint = model_fingerprint(model)
        candidates_of_call = model_inputs["candidates"]
        modality, templates = candidates_of_call.modality, candidates_of_call.templates
        probabilities = [None] * len(candidates_of_call.lists)
        ranked = [None] * len(candidates_of_call.lists)  # (scores, rows) of index-backed galleries
        # Inputs sharing one candidate list hold the same list object: look its features up (and, for images or
        # videos, preprocess its pixels to key the cache) once per call, not once per input.
        targets_of: dict[tuple[int, str], TargetSet] = {}
        for group in model_inputs["groups"].values():
            with torch.no_grad():
                inputs = {k: v.to(self.device) for k, v in group["inputs"].items()}
                embeds = model.get_features(**inputs, task=group["scale"])
                scale = model.head.logit_scales(group["scale"])
            views = group["views"]
            preset = "imagenet" if group["scale"] == "img_cls" else "clip"
            for position, row in enumerate(group["rows"]):
                candidates = candidates_of_call.lists[row]
                key = (id(candidates), preset, group["scale"])
                if key not in targets_of:
                    if modality == "set":
                        self._check_set_attribute(model, candidates, group["scale"])
                        targets_of[key] = candidates
                    elif modality == "text":
                        targets_of[key] = self._text_targets(model, candidates, templates, fingerprint, group["scale"])
                    else:
                        targets_of[key] = self._visual_targets(
                            model, modality, candidates, preset, fingerprint, group["scale"]
                        )
                targets = targets_of[key]
                if targets.index is not None:
                    # Several views of a video: their mean feature, re-normalised, is the query.
                    query = embeds[position * views : (position + 1) * views].float().mean(0, keepdim=True)
                    query = torch.nn.functional.normalize(query, dim=-1)
                    k = min(top_k or DEFAULT_INDEX_TOP_K, len(targets))
                    scores, rows = targets.search(query, k)
                    ranked[row] = (scores[0], rows[0])
                    continue
                logits = embeds[position * views : (position + 1) * views] @ targets.embeds.to(embeds).T * scale
                # Several views of a video: the original averages the probabilities, not the logits.
                probabilities[row] = logits.float().softmax(-1).mean(0).cpu()
        return dict(probabilities=probabilities, ranked=ranked, candidates=candidates_of_call)

    def postprocess(self, model_outputs: dict, top_k: int | None = None) -> list[list[dict]]:
        results = []
        outputs = zip(model_outputs["probabilities"], model_outputs["ranked"], model_outputs["candidates"].names)
        for probabilities, ranked, names in outputs:
            if ranked is not None:
                scores, rows = ranked
                # An approximate index may find fewer than k rows (row -1): those are left out.
                pairs = zip(scores.tolist(), rows.tolist())
                results.append([{"label": names[i], "score": s} for s, i in pairs if i >= 0])
                continue
            order = probabilities.argsort(descending=True)[: top_k or len(names)].tolist()
            scores = probabilities.tolist()
            results.append([{"label": names[i], "score": scores[i]} for i in order])
        return results

    # -- generation and fill-mask ---------------------------------------------------------------------------------

    def vocabulary(self) -> TargetSet:
        """The vocabulary target set (49,411 entries), encoded once per model weights and kept outside the label
        cache, so that many different label lists never force it to be encoded again."""
        if self._vocabulary is None or self._vocabulary.fingerprint != model_fingerprint(self.model):
            self._vocabulary = TargetSet.vocabulary(self.model)
        return self._vocabulary

    def caption(
        self,
        images: Any,
        num_beams: int = 2,
        max_new_tokens: int = 21,
        length_penalty: float = 2.0,
        batch_size: int = 8,
    ) -> list[dict]:
        """Captions for an image or video (or a list of them): `[{"generated_text": ..., "score": ...}]`.

        A list is decoded `batch_size` at a time (give a video's frames as one array or a file path). The defaults are
        the original's zero-shot settings (beam 2, 21 steps, length penalty 2.0).
        """
        items = images if isinstance(images, list) else [images]
        check_int("batch_size", batch_size)
        kinds = {input_kind(item) for item in items}
        if len(kinds) != 1 or not kinds <= {"image", "video"}:
            raise ValueError("`images` must be images or videos, one kind per call.")
        (kind,) = kinds
        captioner = UniPerceiverCaptioner(self.model, self.vocabulary())
        results = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            pixel_values = self._pixels(kind, chunk, "clip", num_spatial_crops=1, argument="images")
            output = captioner.generate(pixel_values.to(self.device), num_beams, max_new_tokens, length_penalty)
            ids = strip_after_eos(output.sequences, self.model.config.eos_token_id)
            texts = self.processor.tokenizer.batch_decode(ids)
            results += [
                {"generated_text": t.strip(), "score": s.item()} for t, s in zip(texts, output.sequences_scores)
            ]
        return results

    def fill_mask(self, text: str, top_k: int = 5) -> list[list[dict]]:
        """Predicts every `<|spe|>` of `text` against the vocabulary: one list of `{"token", "score"}` per mask."""
        if not isinstance(text, str) or "<|spe|>" not in text:
            raise ValueError("`text` must be a string with at least one `<|spe|>` where a word is to be predicted.")
        check_int("top_k", top_k, high=self.model.config.vocab_size, high_means="the vocabulary size")
        (ids,) = self.processor.encode([text])
        spe = self.model.config.spe_token_id
        input_ids = torch.tensor([ids], device=self.device)
        with torch.no_grad():
            embeds = self.model.get_features(input_ids, feature_index=input_ids == spe, task="text_mlm")
            logits = embeds @ self.vocabulary().embeds.to(embeds).T * self.model.head.logit_scales("text_mlm")
        probabilities = logits.float().softmax(-1)
        scores, tokens = probabilities.topk(top_k, dim=-1)
        decode = self.processor.tokenizer.decode
        return [
            [{"token": decode([t]).strip(), "token_id": t, "score": s} for t, s in zip(row_t, row_s)]
            for row_t, row_s in zip(tokens.tolist(), scores.tolist())
        ]


# The one task name, for the package's registry and for remote code alike: saved folders declare it in
# `custom_pipelines`, so that `pipeline("zero-shot-perception", model=folder, trust_remote_code=True)` and
# `pipeline(model=folder, trust_remote_code=True)` work without the package. (With the package imported, its config
# class drops the declaration on load, so the registered pipeline needs no remote code; see `UniPerceiverConfig`.)
PIPELINE_TASK = "zero-shot-perception"
REMOTE_TASK = PIPELINE_TASK


def save_pipeline_files(model, directory: str | os.PathLike) -> None:
    """What `model.save_pretrained` adds for the pipeline: its code (declared in the model's config) and, when the
    folder holds no processor yet, the processor for the model's config."""
    model.config.custom_pipelines = {
        PIPELINE_TASK: {
            "impl": f"{__name__.split('.')[-1]}.{ZeroShotPerceptionPipeline.__name__}",
            "pt": ("AutoModel",),
            "type": "multimodal",
        }
    }
    os.makedirs(directory, exist_ok=True)
    custom_object_save(ZeroShotPerceptionPipeline, directory)
    if not os.path.isfile(os.path.join(directory, "processor_config.json")):
        UniPerceiverProcessor.for_model_config(model.config).save_pretrained(directory)


def save_for_pipeline(model, processor, directory: str | os.PathLike) -> None:
    """Saves `processor`, then the model (weights, remote code, the pipeline's code): `pipeline("zero-shot-perception",
    model=directory)` works with the package imported, and with `trust_remote_code=True` without it."""
    os.makedirs(directory, exist_ok=True)
    processor.save_pretrained(directory)
    model.save_pretrained(directory)


__all__ = ["ZeroShotPerceptionPipeline", "input_kind", "save_for_pipeline", "save_pipeline_files"]
