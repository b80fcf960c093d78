"""Target sets: candidates encoded once into normalised features, reused across calls and saved to disk.

Class names, captions, answers, exemplar images or the whole vocabulary (for masked LM and captioning) are all
target sets: the model scores an input against every row (paper section 3.1). A gallery too large for one matrix
product is a target set backed by a faiss index folder (`uniperceiver-hf index`), searched for its top k instead.
"""

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .files_uniperceiver import read_safetensors
from .galleries_uniperceiver import GalleryIndex, is_index_folder
from .layouts_uniperceiver import vocabulary_target_ids
from .validation_uniperceiver import check_finite, check_int


_WEIGHT_SAMPLE = 1024  # values per parameter that enter the fingerprint


def _stored_tensors(name: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The plain tensors behind a state-dict entry: itself, or the inner tensors of a tensor subclass (torchao's int8
    weights store `qdata` and `scale`, and refuse views of themselves)."""
    if type(tensor) in (torch.Tensor, torch.nn.Parameter) or not hasattr(tensor, "__tensor_flatten__"):
        return [(name, tensor)]
    inner, _ = tensor.__tensor_flatten__()
    return [pair for part in inner for pair in _stored_tensors(f"{name}.{part}", getattr(tensor, part))]


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
    tensors = dict(pair for name, t in model.state_dict(keep_vars=True).items() for pair in _stored_tensors(name, t))
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
    `TargetSet.vocabulary(model)`; pass `target_set.embeds` as the model's `target_embeds`. A set backed by an index
    folder (`TargetSet.load(INDEX_DIR, model)`) has `index` instead of `embeds` and its rows' ids as `labels`; both
    kinds answer `search(query_embeds, top_k)`.

    On a Uni-Perceiver-MoE model the targets are encoded with a task attribute (their target side's: class names
    `ImageNet1k`, the vocabulary and GLUE label words `Vocab_Word`, captions the retrieval target row); `attribute`
    records its rows (`None` for a dense model), and users of a set check it (`check_attribute`).
    """

    # The vocabulary's attribute on an MoE model (masked LM and captioning targets).
    VOCABULARY_ATTRIBUTE = "Vocab_Word"

    def __init__(
        self,
        embeds: torch.Tensor | None = None,
        labels: list[str] | None = None,
        fingerprint: str | None = None,
        attribute: list[list[float]] | None = None,
        index: GalleryIndex | None = None,
    ):
        if (embeds is None) == (index is None):
            raise ValueError("Give a TargetSet either `embeds` (a feature tensor) or `index` (a GalleryIndex).")
        self.attribute = [list(map(float, row)) for row in attribute] if attribute is not None else None
        if index is not None:
            if labels is not None and len(labels) != len(index):
                raise ValueError(f"`labels` has {len(labels)} entries for {len(index)} indexed targets.")
            self.embeds, self.index, self.fingerprint = None, index, fingerprint
            self.labels = list(labels) if labels is not None else None
            return
        if not torch.is_tensor(embeds) or not embeds.is_floating_point():
            raise TypeError(f"`embeds` must be a floating-point tensor, got {getattr(embeds, 'dtype', type(embeds))}.")
        if embeds.ndim != 2 or embeds.shape[0] == 0 or embeds.shape[1] == 0:
            raise ValueError(f"`embeds` must be a non-empty [N, D] tensor, got shape {tuple(embeds.shape)}.")
        check_finite("embeds", embeds)
        if isinstance(labels, str):
            raise TypeError("`labels` must be a list of names, one per target, not a string.")
        if labels is not None and len(labels) != embeds.shape[0]:
            raise ValueError(f"`labels` has {len(labels)} entries for {embeds.shape[0]} targets.")
        self.embeds, self.index = embeds, None
        self.labels = list(labels) if labels is not None else None
        self.fingerprint = fingerprint

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else self.embeds.shape[0]

    def __repr__(self) -> str:
        dim = self.index.dim if self.index is not None else self.embeds.shape[1]
        backing = f", {self.index.info['kind']} index" if self.index is not None else ""
        return f"TargetSet({len(self)} targets, dim {dim}{backing}, model {self.fingerprint})"

    def search(self, query_embeds: torch.Tensor, top_k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """`(scores [Q, k], rows [Q, k])`: the `top_k` targets nearest each normalised query by inner product
        (cosine similarity), best first; through the index when the set has one, else by one matrix product."""
        if self.index is not None:
            return self.index.search(query_embeds, top_k)
        check_int("top_k", top_k, high=len(self), high_means="the number of targets")
        return (query_embeds @ self.embeds.to(query_embeds).T).topk(top_k)

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
        attribute=None,
        task: str | None = None,
    ) -> "TargetSet":
        """Encodes target sequences (text ids, images or videos) in batches of `batch_size`.

        Columns that are padding in every row of a batch are trimmed, so a few long candidates do not slow down
        the rest. `is_target=False` encodes them as inputs instead (e.g. the image side of a retrieval gallery).
        `attribute` and `task` choose the task attribute of a Uni-Perceiver-MoE model (see
        `UniPerceiverModel.encode`); a dense model ignores them.
        """
        check_int("batch_size", batch_size)
        reference = input_ids if input_ids is not None else pixel_values
        if reference is None:
            raise ValueError("Pass `input_ids` and/or `pixel_values` of the targets.")
        if input_ids is not None and pixel_values is not None and len(input_ids) != len(pixel_values):
            raise ValueError(
                f"`input_ids` has {len(input_ids)} rows but `pixel_values` has {len(pixel_values)}; one per target."
            )
        # Resolved once (rows, or None when dense): every batch uses it, and the set records it.
        routing = model.routing(attribute, is_target, task, pixel_values, input_ids is not None, 0)
        attribute_rows = [list(row) for row in routing.rows] if routing is not None else None
        total = reference.shape[0]
        starts = range(0, total, batch_size)
        show_progress = len(starts) > 8 if show_progress is None else show_progress
        device = model.device  # not the first parameter's: an onnxruntime model (UniPerceiverORTModel) has none
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
                    attribute=attribute_rows,
                )
            )
        return cls(torch.cat(chunks), labels, model_fingerprint(model), attribute_rows)

    @classmethod
    def vocabulary(cls, model, batch_size: int = 4096, show_progress: bool | None = None) -> "TargetSet":
        """Every id v as the sequence `[<SPE>, v, EOT]`: the target set of masked LM and captioning."""
        config = model.config
        ids = vocabulary_target_ids(config.vocab_size, config.eos_token_id)
        return cls.encode(
            model, ids, batch_size=batch_size, show_progress=show_progress, attribute=cls.VOCABULARY_ATTRIBUTE
        )

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

    def check_attribute(self, model, attribute, is_target: bool = True, task: str | None = None) -> None:
        """Raises if these features were encoded with another task attribute than `attribute` (a name or rows, as
        `UniPerceiverModel.encode` takes it) on `model`. A dense model has no attributes: nothing to check."""
        if not model.config.is_moe:
            return
        expected = [list(row) for row in model.routing(attribute, is_target, task, None, True, 0).rows]
        if self.attribute != expected:
            raise ValueError(
                f"This target set was encoded with the task attribute {self.attribute}, but {attribute!r} "
                f"({expected}) is needed here; encode it with `attribute={attribute!r}`."
            )

    def save(self, path: str | Path) -> None:
        """Writes a safetensors file with the features, the labels, the model fingerprint and the task attribute."""
        if self.index is not None:
            raise ValueError("An index-backed TargetSet already lives in its index folder; there is nothing to save.")
        metadata = {
            "fingerprint": self.fingerprint or "",
            "labels": json.dumps(self.labels),
            "attribute": json.dumps(self.attribute),
        }
        save_file({"embeds": self.embeds.detach().contiguous().cpu()}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path, model=None, check_fingerprint: bool = True) -> "TargetSet":
        """Reads a saved target set, or an index folder of `uniperceiver-hf index` (labels: the rows' ids), and
        refuses one that another model encoded. `model` is required for that check; `check_fingerprint=False` opts
        out of it explicitly (e.g. to inspect a file without its model)."""
        if model is None and check_fingerprint:
            raise ValueError(
                f"Pass `model` to check that {str(path)!r} was encoded by it, or `check_fingerprint=False` to load "
                "it unchecked."
            )
        if is_index_folder(path):
            index = GalleryIndex.load(path, "path")
            target_set = cls(labels=index.ids, fingerprint=index.fingerprint, index=index)
            if model is not None:
                target_set.check_model(model)
            return target_set
        tensors, metadata = read_safetensors(path, "path")
        if "embeds" not in tensors:
            raise ValueError(f"`path` {str(path)!r} is not a saved TargetSet (no 'embeds' tensor).")
        try:
            labels = json.loads(metadata.get("labels", "null"))
            attribute = json.loads(metadata.get("attribute", "null"))
        except ValueError as error:
            raise ValueError(f"`path` {str(path)!r} has unreadable labels or attribute metadata: {error}") from error
        try:
            target_set = cls(tensors["embeds"], labels, metadata.get("fingerprint") or None, attribute)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`path` {str(path)!r} is not a valid TargetSet: {error}") from error
        if model is not None:
            target_set.check_model(model)
            target_set.embeds = target_set.embeds.to(next(model.parameters()).device)
        return target_set


__all__ = ["TargetSet", "model_fingerprint"]
