"""Argument checks shared by the public entry points: each error names the argument, the value and what was
expected, instead of failing later inside torch or returning NaN. The model's own inputs are checked here too
(`check_side`, `check_target_embeds`, `check_labels`), at the boundary, so that the model code holds only the model.
"""

import numbers

import torch

from .configuration_uniperceiver import UniPerceiverConfig


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


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _kind(value) -> str:
    """A tensor's dtype, or any other value's type name, for error messages."""
    return str(value.dtype) if torch.is_tensor(value) else type(value).__name__


def check_side(
    config: UniPerceiverConfig,
    prefix: str,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    pixel_values: torch.Tensor | None,
    feature_index: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None = None,
    interpolate_pos_encoding: bool = False,
) -> None:
    """Checks one side's arguments against `config` (`prefix` is "" for the input side, "target_" for the target
    side): types, shapes, sizes the position tables hold, and, outside tracing, the values of ids and indices.
    With `interpolate_pos_encoding` any image size that is a multiple of the patch size is accepted."""
    # Checks that read tensor contents force a data-dependent branch: skipped while torch.compile / torch.export
    # trace, so that compiled and exported graphs stay whole (eager callers keep every error).
    read_values = not torch.compiler.is_compiling()
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError(f"Pass either `{prefix}input_ids` or `{prefix}inputs_embeds`, not both.")
    if input_ids is None and inputs_embeds is None and pixel_values is None:
        raise ValueError(f"Pass `{prefix}input_ids` and/or `{prefix}pixel_values`; both are None.")
    if pixel_values is not None:
        if not torch.is_tensor(pixel_values) or not pixel_values.is_floating_point():
            raise ValueError(f"`{prefix}pixel_values` must be a floating-point tensor.")
        if pixel_values.ndim not in (4, 5):
            raise ValueError(
                f"`{prefix}pixel_values` must be [B, C, H, W] (image) or [B, T, C, H, W] (video), "
                f"got shape {tuple(pixel_values.shape)}."
            )
        channels, height, width = pixel_values.shape[-3:]
        if channels != config.num_channels:
            raise ValueError(
                f"`{prefix}pixel_values` must have {config.num_channels} channels in dim -3, "
                f"got shape {tuple(pixel_values.shape)}."
            )
        if interpolate_pos_encoding:
            if height % config.patch_size or width % config.patch_size or min(height, width) < config.patch_size:
                raise ValueError(
                    f"`{prefix}pixel_values` must have a height and width that are multiples of the patch size "
                    f"({config.patch_size}) with `interpolate_pos_encoding=True`, got {height}x{width}."
                )
        elif (height, width) != (config.image_size, config.image_size):
            raise ValueError(
                f"`{prefix}pixel_values` must be {config.image_size}x{config.image_size} (the spatial position "
                f"table has {config.num_patches} patches), got {height}x{width}; pass `interpolate_pos_encoding=True` "
                "for another resolution."
            )
        if pixel_values.ndim == 5 and not 1 <= pixel_values.shape[1] <= config.num_frames:
            raise ValueError(
                f"`{prefix}pixel_values` has {pixel_values.shape[1]} frames; the temporal position table holds "
                f"1 to {config.num_frames} (`num_frames`)."
            )
        if pixel_values.shape[0] == 0:
            raise ValueError(f"`{prefix}pixel_values` is an empty batch (batch size 0).")
        check_finite(f"{prefix}pixel_values", pixel_values)
    if input_ids is None and inputs_embeds is None:
        for name, value in (("attention_mask", attention_mask), ("position_ids", position_ids)):
            if value is not None:
                raise ValueError(f"`{prefix}{name}` was given without `{prefix}input_ids`.")
        if feature_index is not None:
            raise ValueError(f"`{prefix}feature_index` points into the text; it needs `{prefix}input_ids`.")
        return
    if inputs_embeds is not None:
        text = f"{prefix}inputs_embeds"
        if not torch.is_tensor(inputs_embeds) or not inputs_embeds.is_floating_point() or inputs_embeds.ndim != 3:
            raise ValueError(f"`{text}` must be a floating-point tensor of shape [B, L, {config.hidden_size}].")
        if inputs_embeds.shape[-1] != config.hidden_size:
            raise ValueError(f"`{text}` must have {config.hidden_size} features, got {inputs_embeds.shape[-1]}.")
        check_finite(text, inputs_embeds)
        batch_size, length = inputs_embeds.shape[:2]
    else:
        text = f"{prefix}input_ids"
        if not torch.is_tensor(input_ids) or input_ids.ndim != 2 or input_ids.is_floating_point():
            raise ValueError(f"`{text}` must be an integer tensor of shape [B, L].")
        batch_size, length = input_ids.shape
        if input_ids.numel() and read_values and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
            raise ValueError(f"`{text}` must hold ids in [0, {config.vocab_size}).")
    if length == 0 or batch_size == 0:
        raise ValueError(f"`{text}` is empty (shape {(batch_size, length)}).")
    if pixel_values is not None and pixel_values.shape[0] != batch_size:
        raise ValueError(
            f"`{text}` has batch size {batch_size} but `{prefix}pixel_values` has "
            f"{pixel_values.shape[0]}; they describe the same examples and must match."
        )
    if position_ids is None and length > config.max_position_embeddings:
        raise ValueError(
            f"`{text}` has {length} tokens; the text position table holds "
            f"{config.max_position_embeddings} (`max_position_embeddings`)."
        )
    if position_ids is not None:
        if position_ids.shape != (batch_size, length):
            raise ValueError(f"`{prefix}position_ids` must have the shape of `{text}` {(batch_size, length)}.")
        if read_values and (position_ids.min() < 0 or position_ids.max() >= config.max_position_embeddings):
            raise ValueError(f"`{prefix}position_ids` must be in [0, {config.max_position_embeddings}).")
    if attention_mask is not None:
        if attention_mask.shape not in ((batch_size, length), (batch_size, length, length)):
            raise ValueError(
                f"`{prefix}attention_mask` must be [B, L] (padding) or [B, L, L] (text visibility) with "
                f"B, L = {batch_size}, {length}; got {tuple(attention_mask.shape)}."
            )
        keeps = attention_mask.bool()
        if attention_mask.ndim == 3:
            keeps = keeps.any(dim=1)
        if read_values and pixel_values is None and not keeps.any(dim=-1).all():
            raise ValueError(f"`{prefix}attention_mask` masks every token of at least one sequence.")
    if feature_index is not None:
        if feature_index.dtype == torch.bool:
            if feature_index.shape != (batch_size, length):
                raise ValueError(
                    f"A boolean `{prefix}feature_index` must have the shape of `{text}` "
                    f"{(batch_size, length)}, got {tuple(feature_index.shape)}."
                )
        elif feature_index.is_floating_point() or feature_index.shape != (batch_size,):
            raise ValueError(
                f"`{prefix}feature_index` must be an integer tensor [B] (one text position per example) or a "
                f"boolean tensor [B, L]; got dtype {feature_index.dtype}, shape {tuple(feature_index.shape)}."
            )
        elif read_values and (feature_index.min() < 0 or feature_index.max() >= length):
            raise ValueError(f"`{prefix}feature_index` must be in [0, {length}) (positions inside the text).")


def check_target_embeds(config: UniPerceiverConfig, target_embeds: torch.Tensor) -> torch.Tensor:
    """`target_embeds` if it is a non-empty, finite `[N_targets, projection_dim]` float tensor."""
    if not torch.is_tensor(target_embeds) or not target_embeds.is_floating_point():
        raise TypeError(
            f"`target_embeds` must be a floating-point tensor (`TargetSet.embeds`), got {_kind(target_embeds)}."
        )
    dim = config.projection_dim
    if target_embeds.ndim != 2 or target_embeds.shape[0] == 0 or target_embeds.shape[1] != dim:
        raise ValueError(
            f"`target_embeds` must be a non-empty [N_targets, {config.projection_dim}] tensor, "
            f"got shape {tuple(target_embeds.shape)}."
        )
    check_finite("target_embeds", target_embeds)
    return target_embeds


def check_labels(labels: torch.Tensor, num_inputs: int, num_targets: int) -> None:
    """`labels` must be one integer target index in `[0, num_targets)` (or -100, ignored) per input row."""
    if not torch.is_tensor(labels) or labels.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"`labels` must be an integer tensor of target indices, got {_kind(labels)}.")
    if labels.shape != (num_inputs,):
        raise ValueError(
            f"`labels` must have one target index per input row, shape {(num_inputs,)}; got {tuple(labels.shape)}."
        )
    if not torch.compiler.is_compiling():
        bad = labels[(labels != -100) & ((labels < 0) | (labels >= num_targets))]
        if bad.numel():
            raise ValueError(
                f"`labels` must be target indices in [0, {num_targets}) or -100 (ignored); got {bad[:5].tolist()}."
            )


__all__ = ["check_finite", "check_int", "check_labels", "check_side", "check_target_embeds"]
