"""Token-id layouts of the original tasks, as tensors the model's forward takes.

Pure functions over lists of ids, shared by the processor (which tokenizes) and by code that already has ids.
"""

import torch


def pad_token_sequences(sequences: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads id sequences to the longest one: `(input_ids, attention_mask)`, mask 1 for tokens, 0 for padding.

    The original pads with id 0 (the ordinary token `!`), so the mask is what keeps padding out of attention.
    """
    if not sequences or any(len(sequence) == 0 for sequence in sequences):
        raise ValueError("`sequences` must be a non-empty list of non-empty id lists.")
    length = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return input_ids, attention_mask


def caption_training_inputs(
    caption_ids: list[list[int]], spe_token_id: int = 49410, pad_id: int = 0
) -> dict[str, torch.Tensor]:
    """The auto-regressive (caption) training layout of paper appendix B.

    The text is `[w_1..w_T, spe_1..spe_T]`, each half padded to the longest caption, with positions
    `[0..T-1, 0..T-1]`. Word i sees words <= i; `spe_i` sees words < i and itself, so it predicts word i from the
    visual tokens and the earlier words. Returns `input_ids` `[B, 2T]`, the text visibility `attention_mask`
    `[B, 2T, 2T]`, `position_ids`, `feature_index` (the `spe_i` of real words, `[B, 2T]` bool) and `labels`
    (the word each selected `spe_i` predicts, flattened in the order the model reads the features out).
    """
    words, word_mask = pad_token_sequences(caption_ids, pad_id)
    batch_size, length = words.shape
    spes = torch.where(word_mask.bool(), spe_token_id, pad_id)
    input_ids = torch.cat([words, spes], dim=1)
    position_ids = torch.arange(length).repeat(2).expand(batch_size, -1)

    index = torch.arange(length)
    causal = index[None, :] <= index[:, None]  # [query, key]: key word j visible to query word i iff j <= i
    visible = torch.zeros(2 * length, 2 * length, dtype=torch.bool)
    visible[:length, :length] = causal
    visible[length:, :length] = index[None, :] < index[:, None]
    visible[length:, length:] = torch.eye(length, dtype=torch.bool)
    key_is_token = torch.cat([word_mask, word_mask], dim=1).bool()
    attention_mask = (visible[None] & key_is_token[:, None, :]).long()

    feature_index = torch.cat([torch.zeros_like(word_mask), word_mask], dim=1).bool()
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "feature_index": feature_index,
        "labels": words[word_mask.bool()],
    }


def vocabulary_target_ids(vocab_size: int, eos_token_id: int = 49407) -> torch.Tensor:
    """The vocabulary as a target set: every id v as its own sequence `[v, EOT]` (the model adds the prefix).

    Masked-LM and caption features are scored against these, so a word's target index is its id.
    """
    ids = torch.arange(vocab_size, dtype=torch.long)
    return torch.stack([ids, torch.full_like(ids, eos_token_id)], dim=1)


__all__ = ["caption_training_inputs", "pad_token_sequences", "vocabulary_target_ids"]
