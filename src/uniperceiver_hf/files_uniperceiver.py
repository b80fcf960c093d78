"""Reading tensor files that may come from anywhere: safetensors, or torch's weights-only unpickler, never a plain
pickle. Every failure (missing, truncated, another format, objects that are not tensors) is a `ValueError` naming
the argument and the file, instead of a parser error that names neither.
"""

import os
from pathlib import Path

import torch
from safetensors import safe_open


def _existing_file(path: str | os.PathLike, argument: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`{argument}` {str(path)!r} is not a file.")
    return path


def read_safetensors(path: str | os.PathLike, argument: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file."""
    path = _existing_file(path, argument)
    try:
        with safe_open(str(path), "pt") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for bad headers and short files
        raise ValueError(
            f"`{argument}` {str(path)!r} is not a readable safetensors file (truncated or another format): {error}"
        ) from error


def read_torch_file(path: str | os.PathLike, argument: str):
    """The object of a `torch.save` file, through `torch.load(weights_only=True)`: tensors and plain containers
    only, so a pickle that carries code is refused without running it."""
    path = _existing_file(path, argument)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle with arbitrary objects, a truncated archive, not a torch file at all
        # torch's message advises retrying with `weights_only=False`, which would run the file's code: drop it.
        reason = " ".join(
            line.strip()
            for line in str(error).splitlines()
            if line.strip() and "weights_only" not in line and "torch.load" not in line
        )
        raise ValueError(
            f"`{argument}` {str(path)!r} is not a readable file of tensors ({reason or type(error).__name__}). "
            "Only tensors and plain containers are loaded, never other pickled objects: convert a file you trust "
            "to safetensors."
        ) from None


__all__ = ["read_safetensors", "read_torch_file"]
