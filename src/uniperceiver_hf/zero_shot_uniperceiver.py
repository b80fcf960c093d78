"""`UniPerceiverForZeroShotImageClassification`: the model with CLIP's forward semantics, over the same weights.

transformers' `zero-shot-image-classification` pipeline (and every CLIP user's code) calls `model(input_ids=texts,
pixel_values=images)` and reads `logits_per_image`. The base model reads `input_ids` + `pixel_values` as ONE fused
sequence per example (visual + text, as VQA needs), so this class gives the CLIP reading instead: the texts and the
images are two independent batches, each encoded on its own, and every image is scored against every text.

- images (`[B, 3, H, W]`, or videos `[B, T, 3, H, W]`) are the input side, read at the prefix `<SPE>`;
- texts (`text + EOT`, what the tokenizer and the processor write) are the candidate (target) side;
- `logits_per_image = image_embeds @ text_embeds.T * scale`, with the original's per-task scale of the visual
  modality (`img_cls`, `video_cls`): exactly what `pipeline("zero-shot-perception")` computes for label texts.

The weights live under the `uniperceiver.` prefix, as in `UniPerceiverForPreTraining`, so a checkpoint of either
class loads into the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .modeling_uniperceiver import UniPerceiverModel, UniPerceiverPreTrainedModel


@dataclass
class UniPerceiverZeroShotOutput(ModelOutput):
    """
    CLIP's output fields (`transformers.models.clip.modeling_clip.CLIPOutput`).

    Args:
        loss (`[]`): the symmetric contrastive loss (image-to-text and text-to-image cross-entropy against the
            diagonal), when `return_loss=True` (then texts and images must pair up one to one).
        logits_per_image (`[N_images, N_texts]`): scaled cosine similarities.
        logits_per_text (`[N_texts, N_images]`): the transpose.
        text_embeds (`[N_texts, projection_dim]`): L2-normalised text features (`get_text_features`).
        image_embeds (`[N_images, projection_dim]`): L2-normalised image or video features (`get_image_features`).
        text_model_output, vision_model_output: the pooled outputs of each side (last hidden states and, when asked
            for, hidden states and attention weights).
    """

    loss: torch.FloatTensor | None = None
    logits_per_image: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    vision_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple:
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in super().to_tuple())


class UniPerceiverTaskModel(UniPerceiverPreTrainedModel):
    """A task class over `UniPerceiverModel`'s weights, kept under `uniperceiver.` (as in `UniPerceiverForPreTraining`)
    so that a checkpoint of any class loads into the others; saving writes the same folder files as the base model.
    Subclasses call `post_init()` at the end of their `__init__`."""

    main_input_name = "pixel_values"

    def __init__(self, config):
        super().__init__(config)
        self.uniperceiver = UniPerceiverModel(config)

    def get_input_embeddings(self):
        return self.uniperceiver.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.uniperceiver.set_input_embeddings(value)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """As `UniPerceiverModel.save_pretrained`: the folder also loads with `AutoModel` and the pipelines."""
        if kwargs.get("is_main_process", True):
            save_folder_files(self, save_directory)
        return super().save_pretrained(save_directory, *args, **kwargs)


class UniPerceiverForZeroShotImageClassification(UniPerceiverTaskModel):
    """Uni-Perceiver read the way CLIP is: `model(input_ids=texts, pixel_values=images).logits_per_image`.

    This is what `AutoModelForZeroShotImageClassification` (and so the `zero-shot-image-classification` pipeline)
    loads for a Uni-Perceiver folder; `UniPerceiverModel` keeps its own meaning of `input_ids` + `pixel_values`.
    """

    def __init__(self, config):
        super().__init__(config)
        self.post_init()

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling | tuple:
        """`UniPerceiverModel.get_image_features` (videos `[B, T, 3, H, W]` too)."""
        return self.uniperceiver.get_image_features(pixel_values, **kwargs)

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling | tuple:
        """`UniPerceiverModel.get_text_features`."""
        return self.uniperceiver.get_text_features(input_ids, attention_mask, **kwargs)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool = False,
        return_dict: bool | None = None,
        task: str | None = None,
    ) -> UniPerceiverZeroShotOutput | tuple:
        r"""
        Scores every image against every text, as `CLIPModel.forward`.

        Args:
            input_ids (`[N_texts, L]`), attention_mask, position_ids: the texts (`text + EOT`; the model adds the
                prefix `<SPE>`), each its own candidate.
            pixel_values (`[N_images, 3, H, W]` or `[N_images, T, 3, H, W]`): the images or videos.
            return_loss: also return CLIP's symmetric contrastive loss (needs `N_images == N_texts`).
            interpolate_pos_encoding: accept another resolution than the config's (see `UniPerceiverModel`).
            task: the logit scale by the original's names (default: `img_cls` for images, `video_cls` for videos).
        """
        if input_ids is None or pixel_values is None:
            raise ValueError(
                "`input_ids` (the texts) and `pixel_values` (the images) are both needed; for one side only use "
                "`get_text_features` or `get_image_features`."
            )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        task = task if task is not None else self.uniperceiver.default_task(pixel_values, None)
        recording = dict(output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        images = self.uniperceiver.encode(
            pixel_values=pixel_values, task=task, interpolate_pos_encoding=interpolate_pos_encoding, **recording
        )
        texts = self.uniperceiver.encode(
            input_ids, attention_mask, position_ids, is_target=True, task=task, **recording
        )
        scale = self.uniperceiver.head.logit_scales(task)
        logits_per_image = images.embeds @ texts.embeds.T * scale
        logits_per_text = logits_per_image.T

        loss = None
        if return_loss:
            if logits_per_image.shape[0] != logits_per_image.shape[1]:
                raise ValueError(
                    f"`return_loss=True` pairs image i with text i, but got {logits_per_image.shape[0]} images and "
                    f"{logits_per_image.shape[1]} texts."
                )
            diagonal = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
            loss = (
                F.cross_entropy(logits_per_image.float(), diagonal)
                + F.cross_entropy(logits_per_text.float(), diagonal)
            ) / 2

        def pooled(encoded) -> BaseModelOutputWithPooling:
            return BaseModelOutputWithPooling(
                last_hidden_state=encoded.last_hidden_state,
                pooler_output=encoded.embeds,
                hidden_states=encoded.hidden_states,
                attentions=encoded.attentions,
            )

        output = UniPerceiverZeroShotOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_text,
            text_embeds=texts.embeds,
            image_embeds=images.embeds,
            text_model_output=pooled(texts),
            vision_model_output=pooled(images),
        )
        return output if return_dict else output.to_tuple()


UniPerceiverForZeroShotImageClassification.register_for_auto_class("AutoModelForZeroShotImageClassification")


def save_auto_class_files(config, directory: str | os.PathLike) -> None:
    """Declares the model classes in `config.auto_map` and copies their code into `directory`, whichever of them is
    saved: with `trust_remote_code=True`, `AutoModel` loads a folder as `UniPerceiverModel`,
    `AutoModelForZeroShotImageClassification` as the CLIP-semantics class and `AutoModelForImageTextToText` as the
    captioner behind `generate()`, without this package."""
    from .image_text_to_text_uniperceiver import UniPerceiverForImageTextToText  # it builds on this module's peers

    os.makedirs(directory, exist_ok=True)
    for cls in (UniPerceiverModel, UniPerceiverForZeroShotImageClassification, UniPerceiverForImageTextToText):
        custom_object_save(cls, directory)
        config.auto_map = {
            **(getattr(config, "auto_map", None) or {}),
            cls._auto_class: f"{cls.__module__.split('.')[-1]}.{cls.__name__}",
        }


def save_folder_files(model, directory: str | os.PathLike) -> None:
    """What every model class's `save_pretrained` adds beside the weights: the pipeline's code (`custom_pipelines`),
    the model classes of `auto_map`, and the files `SentenceTransformer(folder, trust_remote_code=True)` reads."""
    from .pipeline_uniperceiver import save_pipeline_files  # the pipeline imports the processor, not the model
    from .sentence_transformers_uniperceiver import save_sentence_transformers_files

    if os.path.isfile(directory):
        return  # `save_pretrained` itself refuses a file with its own message
    save_pipeline_files(model, directory)
    save_auto_class_files(model.config, directory)
    save_sentence_transformers_files(directory)


__all__ = [
    "UniPerceiverForZeroShotImageClassification",
    "UniPerceiverTaskModel",
    "UniPerceiverZeroShotOutput",
    "save_auto_class_files",
    "save_folder_files",
]
