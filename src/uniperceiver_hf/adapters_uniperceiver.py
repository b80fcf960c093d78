"""Prompt-tuning adapters: the few tensors one prompt tuning learned, saved apart from the frozen model they fit.

A prompt-tuned model differs from its pre-trained base only in the four groups of paper appendix C (`<SPE>` bias,
LayerNorms, deep prompts, linear head): under 1 % of the weights. An adapter keeps just those, the settings
that shape them, optional class labels, and the fingerprint of the base it was tuned from, so that one base
serves many tasks: `adapter.apply(base)` (or `base(..., adapter=adapter)`, or `pipe(..., adapter=adapter)`)
runs the tuned model while sharing the base's frozen tensors. The official code has no such file: it saves the
whole model after prompt tuning (facts document section 7).

Adapters are applied at inference (the model and the pipeline take them), so they sit at the package root with the
model code and need nothing from `training/`.
"""

import json
import weakref
from pathlib import Path

import torch
from safetensors.torch import save_file

from .files_uniperceiver import read_safetensors
from .modeling_uniperceiver import UniPerceiverModel
from .prompt_tuning_uniperceiver import OTHER, PromptTuningSettings, parameter_groups
from .targets_uniperceiver import model_fingerprint


_FORMAT = "uniperceiver-prompt-adapter"
_METADATA_KEYS = ("format", "settings", "labels", "base_fingerprint")


class UniPerceiverAdapter:
    """The tuned tensors of one prompt tuning (the model's own key names), its `PromptTuningSettings`, optional
    class `labels` (one per linear-head class when there is a head) and the `base_fingerprint`
    (`model_fingerprint`) of the frozen model it was tuned from. `name` appears in error messages (the file path
    for a loaded adapter)."""

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        settings: PromptTuningSettings,
        base_fingerprint: str,
        labels: list[str] | None = None,
        name: str = "adapter",
    ):
        if not isinstance(settings, PromptTuningSettings):
            raise TypeError(f"`settings` must be PromptTuningSettings, got {type(settings).__name__}.")
        if not tensors or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in tensors.items()):
            raise ValueError("`tensors` must be a non-empty dict of parameter names to tensors.")
        if not isinstance(base_fingerprint, str) or not base_fingerprint:
            raise ValueError(f"`base_fingerprint` must be a non-empty string, got {base_fingerprint!r}.")
        if labels is not None:
            labels = list(labels)
            if settings.num_classes and len(labels) != settings.num_classes:
                raise ValueError(
                    f"`labels` has {len(labels)} entries but the linear head has {settings.num_classes} classes."
                )
        self.tensors = dict(tensors)
        self.settings = settings
        self.base_fingerprint = base_fingerprint
        self.labels = labels
        self.name = name
        # base model -> (the identity of its tensors when built, the adapted model); dies with the base.
        self._applied: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        count = sum(tensor.numel() for tensor in self.tensors.values())
        return f"UniPerceiverAdapter({self.name}, {count:,} parameters, base {self.base_fingerprint}, {self.settings})"

    @classmethod
    def from_model(
        cls, tuned_model: UniPerceiverModel, base_fingerprint, labels: list[str] | None = None
    ) -> "UniPerceiverAdapter":
        """The adapter of a model made by `prepare_prompt_tuning` (and trained): copies of its four groups.

        `base_fingerprint` is `model_fingerprint(base)` of the model it was prepared from, or that base itself.
        """
        if not isinstance(tuned_model, UniPerceiverModel):
            raise TypeError(f"`tuned_model` must be a UniPerceiverModel, got {type(tuned_model).__name__}.")
        if isinstance(base_fingerprint, UniPerceiverModel):
            base_fingerprint = model_fingerprint(base_fingerprint)
        parameters = dict(tuned_model.named_parameters())
        tensors = {
            name: parameters[name].detach().clone()
            for name, group in parameter_groups(tuned_model).items()
            if group != OTHER
        }
        return cls(tensors, PromptTuningSettings.from_config(tuned_model.config), base_fingerprint, labels)

    # -- files ----------------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """One safetensors file: the tensors, with settings, labels and base fingerprint as JSON metadata."""
        metadata = {
            "format": _FORMAT,
            "settings": json.dumps(self.settings.to_dict()),
            "labels": json.dumps(self.labels),
            "base_fingerprint": self.base_fingerprint,
        }
        tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in self.tensors.items()}
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "UniPerceiverAdapter":
        """Reads a file written by `save`; a missing, unreadable or foreign file is a ValueError naming it."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"Adapter file {str(path)!r} does not exist.")
        tensors, metadata = read_safetensors(path, "path")
        missing = [key for key in _METADATA_KEYS if key not in metadata]
        if missing or metadata["format"] != _FORMAT:
            raise ValueError(
                f"{str(path)!r} is not a saved UniPerceiverAdapter: its safetensors metadata lacks {missing} "
                f"or has another format ({metadata.get('format')!r}, expected {_FORMAT!r})."
            )
        try:
            settings = PromptTuningSettings.from_dict(json.loads(metadata["settings"]))
            labels = json.loads(metadata["labels"])
        except (ValueError, TypeError) as error:
            raise ValueError(f"Adapter file {str(path)!r} has unreadable settings or labels: {error}") from error
        return cls(tensors, settings, metadata["base_fingerprint"], labels, name=str(path))

    # -- use ------------------------------------------------------------------------------------------------------

    def apply(self, base_model: UniPerceiverModel) -> UniPerceiverModel:
        """The tuned model: `base_model`'s frozen tensors (shared, not copied) with this adapter's tensors.

        Refuses a base whose fingerprint is not the one the adapter was tuned from. The result is built once per
        base (and rebuilt if the base's tensors are replaced, e.g. moved to another device); it follows the base's
        train/eval mode and is for inference: none of its parameters require grad.
        """
        if not isinstance(base_model, UniPerceiverModel):
            raise TypeError(f"`base_model` must be a UniPerceiverModel, got {type(base_model).__name__}.")
        fingerprint = model_fingerprint(base_model)
        if fingerprint != self.base_fingerprint:
            raise ValueError(
                f"{self.name} was tuned from the base model with fingerprint {self.base_fingerprint}, but the given "
                f"model has fingerprint {fingerprint}; apply it to the model it was tuned from."
            )
        identity = tuple(parameter.data_ptr() for parameter in base_model.parameters())
        cached = self._applied.get(base_model)
        if cached is None or cached[0] != identity:
            cached = (identity, self._build(base_model))
            self._applied[base_model] = cached
        adapted = cached[1]
        if adapted.training != base_model.training:
            adapted.train(base_model.training)
        return adapted

    def _build(self, base_model: UniPerceiverModel) -> UniPerceiverModel:
        config = self.settings.config_for(base_model.config)
        with torch.device("meta"):
            adapted = UniPerceiverModel(config)
        groups = parameter_groups(adapted)
        expected = {name for name, group in groups.items() if group != OTHER}
        if set(self.tensors) != expected:
            raise ValueError(
                f"{self.name} does not fit its own settings: missing {sorted(expected - set(self.tensors))}, "
                f"unexpected {sorted(set(self.tensors) - expected)}."
            )
        mis_shaped = [
            f"{name}: adapter {tuple(self.tensors[name].shape)}, model {tuple(adapted.get_parameter(name).shape)}"
            for name in sorted(expected)
            if self.tensors[name].shape != adapted.get_parameter(name).shape
        ]
        if mis_shaped:
            raise ValueError(f"{self.name} has tensors of the wrong shape for this base: {mis_shaped}.")
        frozen = base_model.state_dict()
        state = {name: frozen[name] for name, group in groups.items() if group == OTHER}
        device, dtype = base_model.device, base_model.dtype
        state.update({name: tensor.to(device=device, dtype=dtype) for name, tensor in self.tensors.items()})
        adapted.load_state_dict(state, strict=True, assign=True)
        return adapted.requires_grad_(False)


__all__ = ["UniPerceiverAdapter"]
