"""Target sets: candidates encoded once into normalised features, reused across calls and saved to disk.

Class names, captions, answers, exemplar images or the whole vocabulary (for masked LM and captioning) are all
target sets: the model scores an input against every row (paper section 3.1).
"""

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .files_uniperceiver import read_safetensors
from .layouts_uniperceiver import vocabulary_target_ids
from .validation_uniperceiver import check_finite, check_int


_WEIGHT_SAMPLE = 1024  # values per parameter that enter the fingerprint


def model_fingerprint(model) -> str:
    """A short hash of a model's architecture and weights: features saved with one model are refused by another.

    It hashes the config's architecture fields and a strided sample of every parameter, which changes whenever
    the weights are fine-tuned or prompt-tuned, without reading all of a large model's weights. The weight part
    is remembered on the model until a tensor is replaced or modified in place (tracked by torch's version
    counters), so repeated calls cost well under a millisecond.
    """
    config = {k: v for k, v in model.config.to_diff_dict().items() if not k.startswith("_")}
    for volatile in ("transformers_version", "architectures", "auto_map", "dtype", "torch_dtype", "custom_pipelines"):
        config.pop(volatile, None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    tensors = model.state_dict(keep_vars=True)
    # Tensors made under `torch.inference_mode()` have no version counter: then nothing is remembered.
    trackable = not any(tensor.is_inference() for tensor in tensors.values())
    state = tuple((name, t.data_ptr(), t._version) for name, t in tensors.items()) if trackable else None
    remembered = getattr(model, "_weights_fingerprint", None)
    if state is None or remembered is None or remembered[0] != state:
        weights = hashlib.sha256()
        for name, tensor in sorted(tensors.items()):
            flat = tensor.detach().flatten()
            sample = flat[:: max(1, flat.numel() // _WEIGHT_SAMPLE)].float().cpu()
            weights.update(name.encode())
            weights.update(sample.numpy().tobytes())
        remembered = (state, weights.hexdigest())
        model._weights_fingerprint = remembered
    digest.update(remembered[1].encode())
    return digest.hexdigest()[:16]


class TargetSet:
    """L2-normalised features `[N, projection_dim]` of N candidate targets, with optional labels.

    Build one with `TargetSet.encode(model, ...)` (batched, with a progress bar for large sets) or
    `TargetSet.vocabulary(model)`; pass `target_set.embeds` as the model's `target_embeds`.
    """

    def __init__(self, embeds: torch.Tensor, labels: list[str] | None = None, fingerprint: str | None = None):
        if not torch.is_tensor(embeds) or not embeds.is_floating_point():
            raise TypeError(f"`embeds` must be a floating-point tensor, got {getattr(embeds, 'dtype', type(embeds))}.")
        if embeds.ndim != 2 or embeds.shape[0] == 0 or embeds.shape[1] == 0:
            raise ValueError(f"`embeds` must be a non-empty [N, D] tensor, got shape {tuple(embeds.shape)}.")
        check_finite("embeds", embeds)
        if isinstance(labels, str):
            raise TypeError("`labels` must be a list of names, one per target, not a string.")
        if labels is not None and len(labels) != embeds.shape[0]:
            raise ValueError(f"`labels` has {len(labels)} entries for {embeds.shape[0]} targets.")
        self.embeds = embeds
        self.labels = list(labels) if labels is not None else None
        self.fingerprint = fingerprint

    def __len__(self) -> int:
        return self.embeds.shape[0]

    def __repr__(self) -> str:
        return f"TargetSet({len(self)} targets, dim {self.embeds.shape[1]}, model {self.fingerprint})"

    @classmethod
    @torch.no_grad()
    def encode(
        cls,
        model,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: list[str] | None = None,
        batch_size: int = 256,
        show_progress: bool | None = None,
        is_target: bool = True,
    ) -> "TargetSet":
        """Encodes target sequences (text ids, images or videos) in batches of `batch_size`.

        Columns that are padding in every row of a batch are trimmed, so a few long candidates do not slow down
        the rest. `is_target=False` encodes them as inputs instead (e.g. the image side of a retrieval gallery).
        """
        check_int("batch_size", batch_size)
        reference = input_ids if input_ids is not None else pixel_values
        if reference is None:
            raise ValueError("Pass `input_ids` and/or `pixel_values` of the targets.")
        if input_ids is not None and pixel_values is not None and len(input_ids) != len(pixel_values):
            raise ValueError(
                f"`input_ids` has {len(input_ids)} rows but `pixel_values` has {len(pixel_values)}; one per target."
            )
        total = reference.shape[0]
        starts = range(0, total, batch_size)
        show_progress = len(starts) > 8 if show_progress is None else show_progress
        device = next(model.parameters()).device
        chunks = []
        for start in tqdm(starts, desc="Encoding", disable=not show_progress):
            rows = slice(start, start + batch_size)
            ids = input_ids[rows] if input_ids is not None else None
            mask = attention_mask[rows] if attention_mask is not None else None
            if ids is not None and mask is not None and mask.ndim == 2:
                length = int(mask.sum(-1).max())
                ids, mask = ids[:, :length], mask[:, :length]
            pixels = pixel_values[rows] if pixel_values is not None else None
            chunks.append(
                model.get_features(
                    input_ids=ids.to(device) if ids is not None else None,
                    attention_mask=mask.to(device) if mask is not None else None,
                    pixel_values=pixels.to(device) if pixels is not None else None,
                    is_target=is_target,
                )
            )
        return cls(torch.cat(chunks), labels, model_fingerprint(model))

    @classmethod
    def vocabulary(cls, model, batch_size: int = 4096, show_progress: bool | None = None) -> "TargetSet":
        """Every id v as the sequence `[<SPE>, v, EOT]`: the target set of masked LM and captioning."""
        config = model.config
        ids = vocabulary_target_ids(config.vocab_size, config.eos_token_id)
        return cls.encode(model, ids, batch_size=batch_size, show_progress=show_progress)

    def check_model(self, model) -> None:
        """Raises if these features were computed by another model (or other weights), or by an unknown one."""
        if self.fingerprint is None:
            raise ValueError(
                "This target set has no model fingerprint, so nothing shows which model encoded it; encode it with "
                "`TargetSet.encode(model, ...)`, or pass its `.embeds` as `target_embeds` to use it unchecked."
            )
        if self.fingerprint != model_fingerprint(model):
            raise ValueError(
                f"This target set was encoded by model {self.fingerprint}, not by the given model "
                f"{model_fingerprint(model)}; encode it again with this model."
            )

    def save(self, path: str | Path) -> None:
        """Writes a safetensors file with the features, the labels and the model fingerprint."""
        metadata = {"fingerprint": self.fingerprint or "", "labels": json.dumps(self.labels)}
        save_file({"embeds": self.embeds.detach().contiguous().cpu()}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path, model=None, check_fingerprint: bool = True) -> "TargetSet":
        """Reads a saved target set and refuses one that another model encoded. `model` is required for that
        check; `check_fingerprint=False` opts out of it explicitly (e.g. to inspect a file without its model)."""
        if model is None and check_fingerprint:
            raise ValueError(
                f"Pass `model` to check that {str(path)!r} was encoded by it, or `check_fingerprint=False` to load "
                "it unchecked."
            )
        tensors, metadata = read_safetensors(path, "path")
        if "embeds" not in tensors:
            raise ValueError(f"`path` {str(path)!r} is not a saved TargetSet (no 'embeds' tensor).")
        try:
            labels = json.loads(metadata.get("labels", "null"))
        except ValueError as error:
            raise ValueError(f"`path` {str(path)!r} has unreadable labels metadata: {error}") from error
        try:
            target_set = cls(tensors["embeds"], labels, metadata.get("fingerprint") or None)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`path` {str(path)!r} is not a valid TargetSet: {error}") from error
        if model is not None:
            target_set.check_model(model)
            target_set.embeds = target_set.embeds.to(next(model.parameters()).device)
        return target_set


__all__ = ["TargetSet", "model_fingerprint"]
