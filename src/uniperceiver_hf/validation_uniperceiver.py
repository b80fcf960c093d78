"""Argument checks shared by the public entry points: each error names the argument, the value and what was
expected, instead of failing later inside torch or returning NaN."""

import numbers

import torch


def check_int(name: str, value, low: int = 1, high: int | None = None, high_means: str = "") -> int:
    """`value` as an `int` if it is an integer (Python, NumPy; not a bool) in `[low, high]`; `high_means` says where the
    upper bound comes from."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}{f' ({high_means})' if high_means else ''}" if high is not None else ""
        raise ValueError(f"`{name}` must be at least {low}{upper}, got {value}.")
    return int(value)


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Refuses NaN or inf in `tensor`, which would turn every logit into NaN without an error. One reduction and one
    host sync at the boundary; skipped while `torch.compile` / `torch.export` trace (a data-dependent branch)."""
    if not torch.compiler.is_compiling() and not torch.isfinite(tensor).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")


__all__ = ["check_finite", "check_int"]
