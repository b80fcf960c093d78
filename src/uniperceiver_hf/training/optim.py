"""Row-wise AdamW for the token table: optimiser work only for the rows a step touches.

The default model's 49,411 x 256 word-embedding table is 12.6M of its 16.1M parameters, yet a step looks up a few
hundred of its rows. With a dense gradient every step zero-fills a table-sized gradient, adds every lookup's
gradient into it, and AdamW then updates all 12.6M entries. With `nn.Embedding(sparse=True)` at training time the
backward pass yields only the looked-up rows, and `RowwiseAdamW` updates only those rows.

Semantics (deliberate, and the difference from dense AdamW): a touched row gets exactly the dense AdamW update of
that step. Its two moments are first decayed by `beta ** k` for the `k` steps in which the row was not touched, which
is what dense AdamW's zero gradients would have done to them, so the moments, the bias correction (the parameter's
step count) and the update equal dense AdamW's. An untouched row stays unchanged: dense AdamW keeps moving it by its
decaying momentum (and decays it, under weight decay), which is the cost this avoids. This is `torch.optim.SparseAdam`'s
"lazy" behaviour, except that SparseAdam does not catch up the moments of rows that were skipped. Weight decay, when
the table's group has any (the trainer puts embeddings in the no-decay group, paper section 4.2), is applied to the
touched rows only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class RowwiseAdamW(torch.optim.AdamW):
    """`torch.optim.AdamW` (foreach or fused, as constructed) for dense gradients, plus a row-wise update for
    parameters whose gradient is sparse (an `nn.Embedding(sparse=True)` table); see the module docstring.

    A sparse parameter's state holds `step`, the dense `exp_avg` / `exp_avg_sq` and `last_step` (`[rows]`, the step
    at which each row was last updated; float32 like the moments, so that `load_state_dict`'s cast to the parameter's
    dtype leaves it intact, and exact up to 2**24 steps).
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = [
            (group, parameter, parameter.grad)
            for group in self.param_groups
            for parameter in group["params"]
            if parameter.grad is not None and parameter.grad.is_sparse
        ]
        for _, parameter, _ in sparse:  # AdamW refuses sparse gradients: it skips parameters without one
            parameter.grad = None
        try:
            super().step()
            for group in self.param_groups:  # a dense step updated every row of a row-wise parameter
                for parameter in group["params"]:
                    state = self.state.get(parameter, {})
                    if parameter.grad is not None and "last_step" in state:
                        state["last_step"].fill_(float(state["step"]))
            for group, parameter, gradient in sparse:
                self._rowwise_step(group, parameter, gradient)
        finally:
            for _, parameter, gradient in sparse:
                parameter.grad = gradient
        return loss

    def _rowwise_step(self, group: dict, parameter: torch.Tensor, gradient: torch.Tensor) -> None:
        if group["amsgrad"] or group["maximize"]:
            raise ValueError("RowwiseAdamW's row-wise update supports neither `amsgrad` nor `maximize`.")
        if gradient.sparse_dim() != 1:
            raise ValueError(
                f"A sparse gradient must index rows (sparse_dim 1), got sparse_dim {gradient.sparse_dim()}."
            )
        state = self.state[parameter]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        if "last_step" not in state:  # new, or so far updated by dense steps only (every row up to date)
            state["last_step"] = torch.full((parameter.shape[0],), float(state["step"]), device=parameter.device)
        gradient = gradient.coalesce()  # one entry per row: repeated lookups of a row are summed
        rows, values = gradient.indices()[0], gradient.values().to(parameter.dtype)
        if rows.numel() == 0:
            return
        state["step"] += 1
        step = float(state["step"])
        beta1, beta2 = group["betas"]
        lr, eps, weight_decay = float(group["lr"]), group["eps"], group["weight_decay"]

        # Catch the moments up over the steps in which these rows got a zero gradient, then add this step's.
        skipped = (step - 1 - state["last_step"][rows]).unsqueeze(1).to(values.dtype)
        exp_avg = state["exp_avg"][rows] * beta1**skipped
        exp_avg_sq = state["exp_avg_sq"][rows] * beta2**skipped
        exp_avg.lerp_(values, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(values, values, value=1 - beta2)
        state["exp_avg"][rows] = exp_avg
        state["exp_avg_sq"][rows] = exp_avg_sq
        state["last_step"][rows] = step

        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        denominator = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        updated = parameter[rows]
        if weight_decay:
            updated.mul_(1 - lr * weight_decay)
        updated.addcdiv_(exp_avg, denominator, value=-lr / bias_correction1)
        parameter[rows] = updated


@torch.no_grad()
def clip_grad_norm_(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` (L2) that also takes sparse gradients, whose norm is that of their coalesced
    values (the norm of the dense gradient they stand for). Returns the total norm before clipping."""
    parameters = [p for p in parameters if p.grad is not None]
    if not parameters:
        return torch.tensor(0.0)
    gradients = [p.grad.coalesce() if p.grad.is_sparse else p.grad for p in parameters]
    norms = [torch.linalg.vector_norm(g.values() if g.is_sparse else g, dtype=torch.float32) for g in gradients]
    total = torch.linalg.vector_norm(torch.stack(norms))
    coefficient = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for parameter, gradient in zip(parameters, gradients):
        if gradient.is_sparse:  # scale the coalesced values, and keep them coalesced for the optimiser
            parameter.grad = torch.sparse_coo_tensor(
                gradient.indices(),
                gradient.values() * coefficient.to(gradient.dtype),
                gradient.shape,
                is_coalesced=True,
                check_invariants=False,
            )
        else:
            gradient.mul_(coefficient.to(gradient.dtype))
    return total


def sparse_embedding_gradients(model: nn.Module, enabled: bool) -> list[nn.Embedding]:
    """Switches the input word-embedding table to sparse gradients (`enabled`) or back to dense ones, and returns
    the table(s) switched. Only backward changes: the lookup, the weights and what `save_pretrained` writes do not."""
    table = model.get_input_embeddings()
    table.sparse = enabled
    return [table]


__all__ = ["RowwiseAdamW", "clip_grad_norm_", "sparse_embedding_gradients"]
