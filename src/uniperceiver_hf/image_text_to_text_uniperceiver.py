"""`UniPerceiverForImageTextToText`: captioning behind transformers' `generate()` interface, over the same weights.

transformers 5 answers `pipeline("image-to-text")` with its `image-text-to-text` pipeline: it loads
`AutoModelForImageTextToText`, calls the processor with the images and a text prompt, then
`model.generate(**inputs, generation_config=...)`, and decodes what comes back. This class is that model for a
Uni-Perceiver folder: `generate` runs `UniPerceiverCaptioner` (the original's beam search, paper appendix B) on
`pixel_values`. Uni-Perceiver captions from the picture alone, so the prompt must be empty (`text=""`, which the
processor reads as a captioning request); a prompt to continue is refused rather than ignored.

The generation defaults are the original's zero-shot settings, as `pipeline("zero-shot-perception").caption` uses
them: beam 2, 21 new tokens, length penalty 2.0; `max_new_tokens`, `num_beams` and `length_penalty` of the call (or of
a `generation_config`) override them. The weights live under `uniperceiver.` (`UniPerceiverTaskModel`).
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig

from .captioning_uniperceiver import UniPerceiverCaptioner
from .targets_uniperceiver import TargetSet, model_fingerprint
from .zero_shot_uniperceiver import UniPerceiverTaskModel


# The original's zero-shot captioning settings (`pipeline_uniperceiver.ZeroShotPerceptionPipeline.caption`).
CAPTION_DEFAULTS = {"num_beams": 2, "max_new_tokens": 21, "length_penalty": 2.0}


class UniPerceiverCaptionGenerationMixin:
    """Marks the class as one that generates (transformers' `can_generate()` looks for a base named
    `...GenerationMixin`), without transformers' token-by-token `GenerationMixin`, whose decoding loop is not how
    Uni-Perceiver decodes (each step scores a fresh `<SPE>` against the whole vocabulary)."""


class UniPerceiverForImageTextToText(UniPerceiverCaptionGenerationMixin, UniPerceiverTaskModel):
    """Captions images or videos through `generate()`: what `AutoModelForImageTextToText` (and so the
    `image-text-to-text` / `image-to-text` pipelines) loads for a Uni-Perceiver folder."""

    def __init__(self, config):
        super().__init__(config)
        self.generation_config = GenerationConfig(
            **CAPTION_DEFAULTS, eos_token_id=config.eos_token_id, pad_token_id=config.eos_token_id
        )
        self._vocabulary: TargetSet | None = None
        self.post_init()

    def forward(self, *args, **kwargs):
        """`UniPerceiverModel.forward` (scores inputs against candidates); captions come from `generate`."""
        return self.uniperceiver(*args, **kwargs)

    def vocabulary(self) -> TargetSet:
        """The vocabulary target set, encoded once per weights (as the zero-shot pipeline keeps it)."""
        if self._vocabulary is None or self._vocabulary.fingerprint != model_fingerprint(self.uniperceiver):
            self._vocabulary = TargetSet.vocabulary(self.uniperceiver)
        return self._vocabulary

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Caption ids `[B, max_new_tokens]` of images `[B, 3, H, W]` or videos `[B, T, 3, H, W]`, EOT after the
        caption's end (the pipeline decodes them with special tokens skipped).

        `input_ids` / `attention_mask` hold the prompt the pipeline's processor call wrote: it must be empty (only EOT
        and padding). `num_beams`, `max_new_tokens` and `length_penalty` come from the keyword arguments, then
        `generation_config`, then the model's `generation_config` (the original's settings); other generation
        arguments the pipeline passes along (`pad_token_id`, ...) have no effect on this beam search.
        """
        if pixel_values is None:
            raise ValueError("`pixel_values` (the images or videos to caption) are required.")
        if input_ids is not None:
            eos = self.config.eos_token_id
            written = input_ids if attention_mask is None else input_ids[attention_mask.bool()]
            if bool((written != eos).any()):
                raise ValueError(
                    "Uni-Perceiver captions from the image alone and cannot continue a text prompt: pass an empty "
                    'prompt (`text=""`).'
                )
        chosen = generation_config.to_diff_dict() if generation_config is not None else {}
        chosen.update(kwargs)
        settings = {name: chosen.get(name, getattr(self.generation_config, name)) for name in CAPTION_DEFAULTS}
        captioner = UniPerceiverCaptioner(self.uniperceiver, self.vocabulary())
        return captioner.generate(pixel_values, **settings).sequences


UniPerceiverForImageTextToText.register_for_auto_class("AutoModelForImageTextToText")

__all__ = ["CAPTION_DEFAULTS", "UniPerceiverForImageTextToText"]
