"""Encoding a padded side in groups of similar text length: the same features for fewer padded tokens.

A padded batch costs every row the longest row's length. The default recipe's emoji names, padded to the longest
of a step's target set, are ~40 % real tokens, and fortunes ~35 %. Padded keys are masked out, so a row's outputs
at its real positions do not depend on how far it is padded: splitting the rows into a few groups of similar length,
each padded only to its own longest row, gives the same features (up to float rounding, as other matrix shapes
sum in another order) for the tokens it saves. `UniPerceiverModel.length_groups` turns it on (the trainer does,
`UniPerceiverTrainer(length_groups=...)`); a side recording hidden states or attention maps is never split.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch


# What one more encoder call costs, in tokens of work: a group must save more padded tokens than this to be worth
# its call (forward and backward of one more call of the default model take ~7 ms, the work of ~50-60 of its tokens).
GROUP_OVERHEAD_TOKENS = 64


def text_lengths(attention_mask: torch.Tensor, feature_index: torch.Tensor | None) -> torch.Tensor:
    """`[B]`: each row's text length, up to its last position that is a token (a `[B, L]` mask), that some query
    sees (a `[B, L, L]` visibility) or that `feature_index` reads, and at least 1; padding lies after it (a
    left-padded row counts as full length, so it is never cut)."""
    visible = attention_mask.bool() if attention_mask.ndim == 2 else attention_mask.bool().any(dim=-2)
    if feature_index is not None and feature_index.dtype == torch.bool:
        visible = visible | feature_index
    positions = torch.arange(1, visible.shape[1] + 1, device=visible.device)
    lengths = (visible * positions).amax(dim=1).clamp_min(1)
    if feature_index is not None and feature_index.dtype != torch.bool:
        lengths = torch.maximum(lengths, feature_index + 1)
    return lengths


def plan_length_groups(
    lengths: torch.Tensor, max_groups: int, overhead: int = GROUP_OVERHEAD_TOKENS
) -> list[torch.Tensor] | None:
    """The rows of each group (ascending lengths) that minimise the padded text tokens, `sum(rows * longest)` plus
    `overhead` per group, with at most `max_groups` groups; `None` when one padded batch is as cheap. (The tokens
    every row has before its text, `<SPE>`, visual tokens and deep prompts, cost the same in any split.)"""
    if max_groups < 2 or lengths.numel() < 2:
        return None
    values, counts = torch.unique(lengths, return_counts=True)  # ascending
    if len(values) < 2:
        return None
    widths = values.tolist()
    start = [0, *itertools.accumulate(counts.tolist())]

    def cost(i: int, j: int) -> int:  # one group of the distinct lengths i..j, padded to length j
        return (start[j + 1] - start[i]) * widths[j] + overhead

    # best[g][j]: the cheapest split of the distinct lengths 0..j into exactly g + 1 groups; cut[g][j]: where its
    # last group starts.
    n, infinite = len(values), float("inf")
    best = [[cost(0, j) for j in range(n)]]
    cut = [[0] * n]
    for g in range(1, max_groups):
        row, cuts = [infinite] * n, [0] * n
        for j in range(g, n):
            row[j], cuts[j] = min((best[g - 1][i - 1] + cost(i, j), i) for i in range(g, j + 1))
        best.append(row)
        cut.append(cuts)
    groups = min(range(len(best)), key=lambda g: best[g][n - 1])
    if groups == 0:
        return None
    bounds, j = [], n - 1
    for g in range(groups, 0, -1):
        bounds.append((cut[g][j], j))
        j = cut[g][j] - 1
    bounds.append((0, j))
    order = torch.argsort(lengths, stable=True)
    return [order[start[i] : start[j + 1]] for i, j in reversed(bounds)]


def encode_in_groups(
    encode: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    groups: Sequence[torch.Tensor],
    lengths: torch.Tensor,
    text_arguments: dict[str, torch.Tensor | None],
    row_arguments: dict[str, torch.Tensor | None],
    feature_index: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs `encode(**arguments, feature_index=...) -> (feature_hidden_state, last_hidden_state)` once per group and
    puts the results back in the rows' order, as one padded call would return them.

    `text_arguments` (with the `attention_mask` the groups were planned from) are cut to each group's longest text
    (`[B, L, ...]`, a `[B, L, L]` visibility on both axes), `row_arguments` (pixels) only take the group's rows. The
    last hidden state has one padded call's shape, zero past each row's group length.
    """
    features, states = [], []
    for rows in groups:
        length = int(lengths[rows].max())
        arguments = {name: None if value is None else value[rows] for name, value in row_arguments.items()}
        for name, value in text_arguments.items():
            if value is not None:
                value = value[rows][:, :length]
                if name == "attention_mask" and value.ndim == 3:
                    value = value[:, :, :length]
            arguments[name] = value
        index = feature_index
        if index is not None:
            index = index[rows][:, :length] if index.dtype == torch.bool else index[rows]
        feature, state = encode(**arguments, feature_index=index)
        features.append(feature)
        states.append(state)

    rows = torch.cat(list(groups))
    # As wide as one padded call: the tokens before the text, then the whole padded text.
    prefix = states[0].shape[1] - int(lengths[groups[0]].max())
    width = prefix + text_arguments["attention_mask"].shape[1]
    last_hidden_state = states[0].new_zeros(len(rows), width, states[0].shape[-1])
    for group, state in zip(groups, states):
        last_hidden_state[group, : state.shape[1]] = state
    if feature_index is None or feature_index.dtype != torch.bool:
        return torch.cat(features)[torch.argsort(rows)], last_hidden_state
    # Boolean read-outs are flattened row by row: regroup each row's selected positions in the original row order.
    per_row: list[torch.Tensor | None] = [None] * len(rows)
    counts = feature_index.sum(dim=1).tolist()
    for group, feature in zip(groups, features):
        pieces = feature.split([counts[row] for row in group.tolist()])
        for row, piece in zip(group.tolist(), pieces):
            per_row[row] = piece
    return torch.cat(per_row), last_hidden_state


__all__ = ["GROUP_OVERHEAD_TOKENS", "encode_in_groups", "plan_length_groups", "text_lengths"]
