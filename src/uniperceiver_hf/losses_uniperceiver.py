"""Losses of Uni-Perceiver pre-training (paper eq. 3 and appendix E).

Every task is a cross-entropy over similarity logits: inputs against their candidate targets. Classification, VQA
and retrieval use 0.1 label smoothing, language modelling none; mixup gives soft targets. The vocabulary of the
language-modelling tasks is a target set like any other; encoding all of it in every step is what appendix E
shards across processes ("data parallel for vocabulary").

These are the objectives of `UniPerceiverForPreTraining`, so they stay at the package root with the model code
(the root never imports `training/`).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .layouts_uniperceiver import vocabulary_target_ids


def similarity_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of `[N, C]` logits against target indices `[N]` (-100 ignored) or soft targets `[N, C]`.

    Label smoothing mixes the one-hot target with the uniform distribution, `(1 - e) NLL + e mean(-log p)`, as
    the original's `LabelSmoothingCrossEntropy`. With no counted row (an MLM batch where nothing was masked) the
    loss is 0 and still connected to the graph, so every process runs the same backward.
    """
    logits = logits.float()
    if labels.is_floating_point():
        if labels.shape != logits.shape:
            raise ValueError(
                f"Soft `labels` must have the logits' shape {tuple(logits.shape)}, got {tuple(labels.shape)}."
            )
        return -(labels * F.log_softmax(logits, dim=-1)).sum(-1).mean()
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"`labels` must hold one index per logits row, shape {tuple(logits.shape[:1])}, got {tuple(labels.shape)}."
        )
    if not (labels != -100).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=-100, label_smoothing=label_smoothing)


def retrieval_loss(logits: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """In-batch retrieval of `[B, B]` input-target logits: example i's target is target i and every other target of
    the batch is a negative (appendix E), scored in both directions (input->target and target->input) and summed,
    as the original's `i2t` and `t2i` losses."""
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"In-batch retrieval needs square [B, B] logits, got {tuple(logits.shape)}.")
    labels = torch.arange(logits.shape[0], device=logits.device)
    return similarity_cross_entropy(logits, labels, label_smoothing) + similarity_cross_entropy(
        logits.T, labels, label_smoothing
    )


def gathered_retrieval_loss(
    input_embeds: torch.Tensor,
    target_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
    label_smoothing: float = 0.0,
    process_group=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """In-batch retrieval against every process's examples: the original's `FEATURE_GATHER` of single-task retrieval
    fine-tuning, open_clip's `--gather-with-grad`. With W processes of B examples each, the local inputs are scored
    against all W*B targets and the local targets against all W*B inputs.

    The features are gathered by an autograd-aware all-gather, whose backward sums every process's gradient into the
    owner of each slice; with DDP's average the gradient then equals that of one process holding all W*B examples,
    and the mean of the processes' losses equals its loss. Every process of the group must call this in the same
    step with the same batch size. Returns the local input->target logits `[B, W*B]` and the loss.

    Args:
        input_embeds, target_embeds (`[B, projection_dim]`): this process's normalised features, example i's target
            at row i.
        logit_scale (`[]`): the task's scale (the similarity head's `logit_scales(task)`).
        label_smoothing: as `retrieval_loss`.
        process_group: the processes to gather from (default: all).
    """
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_functional

    rank = dist.get_rank(process_group)
    all_inputs = torch.cat(dist_functional.all_gather(input_embeds, group=process_group))
    all_targets = torch.cat(dist_functional.all_gather(target_embeds, group=process_group))
    batch_size = input_embeds.shape[0]
    labels = torch.arange(rank * batch_size, (rank + 1) * batch_size, device=input_embeds.device)
    input_logits = input_embeds @ all_targets.to(input_embeds).T * logit_scale
    target_logits = target_embeds.to(input_embeds) @ all_inputs.T * logit_scale
    loss = similarity_cross_entropy(input_logits, labels, label_smoothing) + similarity_cross_entropy(
        target_logits, labels, label_smoothing
    )
    return input_logits, loss


def vocabulary_embeds(model, process_group=None) -> torch.Tensor:
    """Normalised features `[V, projection_dim]` of the whole vocabulary (`[v, EOT]` per id), with gradient.

    With a process group of W processes each encodes a contiguous 1/W of the vocabulary and an autograd-aware
    all-gather assembles the full set (appendix E); its backward sums every process's gradient into the slice's
    owner, so after DDP's average the result equals a single process encoding everything. Every process of the
    group must call this in the same step.
    """
    config = model.config
    ids = vocabulary_target_ids(config.vocab_size, config.eos_token_id).to(model.device)
    if process_group is None:
        return model.get_features(input_ids=ids, attention_mask=torch.ones_like(ids), is_target=True)
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_functional

    world, rank = dist.get_world_size(process_group), dist.get_rank(process_group)
    per_rank = math.ceil(len(ids) / world)
    local = ids[rank * per_rank : (rank + 1) * per_rank]
    if len(local) < per_rank:  # equal sizes for the all-gather; the padding rows are cut off below
        local = torch.cat([local, ids[: per_rank - len(local)]])
    features = model.get_features(input_ids=local, attention_mask=torch.ones_like(local), is_target=True)
    gathered = dist_functional.all_gather(features, group=process_group)
    return torch.cat(gathered)[: len(ids)]


__all__ = ["gathered_retrieval_loss", "retrieval_loss", "similarity_cross_entropy", "vocabulary_embeds"]
