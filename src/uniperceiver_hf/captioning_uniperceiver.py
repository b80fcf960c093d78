"""Captioning (image or video) with a key/value cache: greedy and beam search over the vocabulary target set.

Paper appendix B: step t appends one `<SPE>` at text position t; its output feature is scored against every
vocabulary entry `[<SPE>, v, EOT]`, the chosen word enters the sequence at position t, and so on. The prefix, the
visual tokens and the words never attend to later tokens, so their keys and values never change: they are
computed once and cached, and each step only runs the new tokens. This is exactly the caption training layout
(`layouts_uniperceiver.caption_training_inputs`) read one position at a time.

On a Uni-Perceiver-MoE model the caption's two attribute rows route the cached prefix and visual tokens (first row)
and every word and step `<SPE>` (second row), as the official beam searcher splits its cache; the vocabulary is
encoded with its own attribute (`Vocab_Word`).
"""

import math
from dataclasses import dataclass, replace

import torch
from transformers.utils import ModelOutput

from .targets_uniperceiver import TargetSet
from .validation_uniperceiver import check_int, check_side


class _LayerCache:
    """One layer's view of a `KeyValueCache`: what the attention's `past_key_value.update` calls."""

    def __init__(self, cache: "KeyValueCache", index: int):
        self.cache, self.index = cache, index

    def update(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cache.write(self.index, key, value)


class KeyValueCache:
    """Every layer's keys and values `[N, capacity, hidden_size]`, allocated once for the whole caption.

    A step writes its tokens' keys and values in place after the kept ones and attends to the filled part, so no
    step copies the cache; `advance` then keeps the step's word, and the step `<SPE>`'s slot is overwritten by the
    next step. Rows are sequences (beams); `reorder` gathers the rows of the surviving beams.
    """

    def __init__(self, presents: list[tuple[torch.Tensor, torch.Tensor]], capacity: int):
        key = presents[0][0]
        self.length = key.shape[1]
        self.buffers = []
        for new_key, new_value in presents:
            buffer = key.new_empty(2, key.shape[0], capacity, key.shape[-1])
            buffer[0, :, : self.length], buffer[1, :, : self.length] = new_key, new_value
            self.buffers.append(buffer)
        self.layers = [_LayerCache(self, index) for index in range(len(presents))]

    @property
    def rows(self) -> int:
        return self.buffers[0].shape[1]

    def write(self, index: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stores layer `index`'s keys and values of the step's tokens after the kept ones; returns all of them."""
        end = self.length + key.shape[1]
        buffer = self.buffers[index]
        buffer[0, :, self.length : end], buffer[1, :, self.length : end] = key, value
        return buffer[0, :, :end], buffer[1, :, :end]

    def advance(self, count: int) -> None:
        """Keeps the first `count` tokens the last step wrote."""
        self.length += count

    def reorder(self, rows: torch.Tensor) -> None:
        """Keeps the given rows in this order (beams that survived, possibly repeated)."""
        self.buffers = [buffer[:, rows] for buffer in self.buffers]


@dataclass
class CaptionOutput(ModelOutput):
    """
    Args:
        sequences (`[B, max_new_tokens]`): the best caption per input; after its first EOT only EOT follows.
        sequences_scores (`[B]`): its summed log-probability, divided by `(words + 1) ** length_penalty`.
        beam_sequences (`[B, num_beams, max_new_tokens]`) and beam_scores (`[B, num_beams]`): every beam, best first.
    """

    sequences: torch.LongTensor | None = None
    sequences_scores: torch.FloatTensor | None = None
    beam_sequences: torch.LongTensor | None = None
    beam_scores: torch.FloatTensor | None = None


class UniPerceiverCaptioner:
    """Generates captions for images `[B, 3, H, W]` or videos `[B, T, 3, H, W]` with a `UniPerceiverModel`.

    `vocabulary` is the encoded vocabulary target set; it is computed once (49,411 short sequences) when not given,
    and can be shared with masked-LM prediction or saved with `TargetSet.save`. `attribute` is the caption input's
    task attribute on a Uni-Perceiver-MoE model (default: `image_caption` or `video_caption`, by the input).
    """

    def __init__(self, model, vocabulary: TargetSet | None = None, task: str = "caption", attribute=None):
        self.model = model
        self.task = task
        self.attribute = attribute
        self.routing = None  # set by `start` for the caption being decoded
        if vocabulary is None:
            vocabulary = TargetSet.vocabulary(model)
        elif vocabulary.fingerprint is not None:
            vocabulary.check_model(model)
        vocabulary.check_attribute(model, TargetSet.VOCABULARY_ATTRIBUTE)
        if len(vocabulary) != model.config.vocab_size:
            raise ValueError(
                f"`vocabulary` has {len(vocabulary)} entries; captioning scores every id of the "
                f"{model.config.vocab_size}-entry vocabulary."
            )
        self.vocabulary = vocabulary
        # Cast once: every step reads all 49,411 rows, so they stay in the model's dtype (bf16 halves the reads).
        weight = next(model.parameters())
        self.vocabulary_embeds = vocabulary.embeds.to(device=weight.device, dtype=weight.dtype)
        self.logit_scale = model.head.logit_scales(task)

    # -- the two ways of computing one step's logits ------------------------------------------------------------

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        features, _, _ = self.model.head(hidden)
        return features @ self.vocabulary_embeds.to(features).T * self.logit_scale

    def start(self, pixel_values: torch.Tensor, max_new_tokens: int) -> KeyValueCache:
        """Encodes `[<SPE>, visual tokens]` into a cache with room for `max_new_tokens` decoding steps."""
        check_side(self.model.config, "", None, None, None, pixel_values, None)
        # The caption's routing (MoE): the cached tokens are the first part, every later token the second.
        self.routing = self.model.routing(self.attribute, False, self.task, pixel_values, True, 0)
        if pixel_values.ndim == 4:
            pixel_values = pixel_values.unsqueeze(1)
        embeds = self.model.embeddings(None, None, pixel_values)
        prefix_routing = replace(self.routing, split=embeds.shape[1]) if self.routing is not None else None
        _, presents = self.model.encoder(embeds, routing=prefix_routing)
        # A step holds the cached tokens, its word and its <SPE>: the last step needs length + max_new_tokens + 1.
        return KeyValueCache(presents, embeds.shape[1] + max_new_tokens + 1)

    def step_inputs(
        self, previous_words: torch.Tensor | None, position: int, batch_size: int, past_length: int, device, dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embeddings and attention mask of one decoding step: `previous_words` (`[N]`, the words chosen at
        `position - 1`) and the step `<SPE>` at `position`, run together after `past_length` cached tokens. The
        word sees the past and itself, the `<SPE>` sees the past, the word and itself."""
        spe = torch.full((batch_size, 1), self.model.config.spe_token_id, dtype=torch.long, device=device)
        if previous_words is None:
            ids, positions, mask = spe, torch.full_like(spe, position), None
        else:
            ids = torch.cat([previous_words.view(-1, 1), spe], dim=1)
            positions = torch.tensor([[position - 1, position]], device=device).expand(batch_size, -1)
            allowed = torch.ones(batch_size, 1, 2, past_length + 2, dtype=torch.bool, device=device)
            allowed[:, :, 0, -1] = False  # the word never sees the step <SPE>
            mask = self.model.additive_attention_mask(allowed, dtype)
        return self.model.embeddings(ids, positions, None, add_prefix=False), mask

    def step(self, cache: KeyValueCache, previous_words: torch.Tensor | None, position: int) -> torch.Tensor:
        """Logits `[N, V]` of the `<SPE>` at text position `position`; the cache keeps `previous_words` (only the
        word is cached, never the step `<SPE>`)."""
        buffer = cache.buffers[0]
        embeds, mask = self.step_inputs(
            previous_words, position, cache.rows, cache.length, buffer.device, buffer.dtype
        )
        hidden, _ = self.model.encoder(embeds, mask, past_key_values=cache.layers, routing=self.routing)
        if previous_words is not None:
            cache.advance(1)
        return self._logits(hidden[:, -1])

    def recompute_step(self, pixel_values: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Logits `[N, V]` of the next `<SPE>` after `words` (`[N, t]`), re-encoding the whole sequence.

        The reference for the cached `step`: the sequence `[<SPE>, visual, w_0..w_{t-1}, <SPE>_t]` with causal
        text attention (which is the caption training mask restricted to these tokens).
        """
        batch_size, length = words.shape
        spe = torch.full((batch_size, 1), self.model.config.spe_token_id, dtype=torch.long, device=words.device)
        causal = torch.ones(length + 1, length + 1, dtype=torch.long, device=words.device).tril()
        encoded = self.model.encode(
            input_ids=torch.cat([words, spe], dim=1),
            attention_mask=causal.expand(batch_size, -1, -1),
            pixel_values=pixel_values,
            feature_index=torch.full((batch_size,), length, device=words.device),
            attribute=self.attribute,
            task=self.task,
        )
        return self._logits(encoded.feature_hidden_state)

    # -- decoding -----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def teacher_forced_logits(self, pixel_values: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
        """Logits `[B, T, V]` of each `<SPE>_t` given the true words before it (through the cache)."""
        cache, logits = self.start(pixel_values, caption_ids.shape[1]), []
        for position in range(caption_ids.shape[1]):
            previous = caption_ids[:, position - 1] if position else None
            logits.append(self.step(cache, previous, position))
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor,
        num_beams: int = 2,
        max_new_tokens: int = 21,
        length_penalty: float = 2.0,
        use_cache: bool = True,
    ) -> CaptionOutput:
        """Beam search as the original (beam 2, 21 steps and length penalty 2.0 are its zero-shot settings).

        A beam that has emitted EOT is frozen: it can only continue with EOT at no cost. After the last step each
        beam's log-probability is divided by `(non-EOT tokens + 1) ** length_penalty` (0 disables it) and the
        beams are ranked. `num_beams=1` is greedy decoding. `use_cache=False` re-encodes the whole sequence at
        every step (slow; for checking the cache).
        """
        config = self.model.config
        check_int("num_beams", num_beams, high=len(self.vocabulary), high_means="the vocabulary size")
        check_int("max_new_tokens", max_new_tokens, high=config.max_position_embeddings, high_means="text positions")
        if not math.isfinite(length_penalty):
            raise ValueError(f"`length_penalty` must be a finite number, got {length_penalty}.")
        eos = self.model.config.eos_token_id
        batch_size = pixel_values.shape[0]
        device = pixel_values.device
        cache = self.start(pixel_values, max_new_tokens) if use_cache else None
        beams = 1
        scores = torch.zeros(batch_size, 1, device=device)
        finished = torch.zeros(batch_size, 1, dtype=torch.bool, device=device)
        sequences = torch.zeros(batch_size, 1, 0, dtype=torch.long, device=device)
        for position in range(max_new_tokens):
            flat_sequences = sequences.flatten(0, 1)
            if use_cache:
                previous = flat_sequences[:, -1] if position else None
                logits = self.step(cache, previous, position)
            else:
                pixels = pixel_values.repeat_interleave(beams, dim=0)
                logits = self.recompute_step(pixels, flat_sequences)
            log_probs = logits.float().log_softmax(-1).view(batch_size, beams, -1)
            candidates = scores[..., None] + log_probs
            # Frozen beams: the only continuation is EOT, keeping the score.
            frozen = torch.full_like(candidates, float("-inf"))
            frozen[..., eos] = scores
            candidates = torch.where(finished[..., None], frozen, candidates)

            vocab_size = candidates.shape[-1]
            scores, chosen = candidates.view(batch_size, -1).topk(num_beams, dim=-1)
            beam_index, words = chosen // vocab_size, chosen % vocab_size
            sequences = torch.cat(
                [sequences.gather(1, beam_index[..., None].expand(-1, -1, position)), words[..., None]], -1
            )
            finished = finished.gather(1, beam_index) | (words == eos)
            if use_cache:
                rows = (beam_index + torch.arange(batch_size, device=device)[:, None] * beams).flatten()
                # Beams often keep their order (one clear best continuation each): then the rows stay where they are.
                if len(rows) != cache.rows or not torch.equal(rows, torch.arange(len(rows), device=device)):
                    cache.reorder(rows)
            beams = num_beams

        if length_penalty > 0:
            lengths = (sequences != eos).sum(-1) + 1
            scores = scores / lengths.float() ** length_penalty
        scores, order = scores.sort(dim=-1, descending=True)
        sequences = sequences.gather(1, order[..., None].expand_as(sequences))
        return CaptionOutput(
            sequences=sequences[:, 0], sequences_scores=scores[:, 0], beam_sequences=sequences, beam_scores=scores
        )


def strip_after_eos(sequences: torch.Tensor, eos_token_id: int) -> list[list[int]]:
    """Token lists cut before the first EOT, ready for the tokenizer's decode."""
    result = []
    for row in sequences.tolist():
        result.append(row[: row.index(eos_token_id)] if eos_token_id in row else row)
    return result


__all__ = ["CaptionOutput", "KeyValueCache", "UniPerceiverCaptioner", "strip_after_eos"]
