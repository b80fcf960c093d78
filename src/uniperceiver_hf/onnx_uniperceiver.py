"""The exported encoder graphs run by onnxruntime, as a model the pipeline accepts.

`uniperceiver-hf export onnx --model M --output DIR` writes `image.onnx`, `text.onnx` and `video.onnx` (each maps its
inputs to the L2-normalised features `[B, projection_dim]`; batch, text length and frames are dynamic), the model's
config, its processor and `onnx.json` (the graphs' inputs, the per-task logit scales, how they were exported). With
`--int8` it adds `*.int8.onnx`, the same graphs with dynamically quantised int8 linear layers.

    model = UniPerceiverORTModel.from_pretrained(DIR)            # or int8=True
    perceive = pipeline("zero-shot-perception", model=model, processor=UniPerceiverProcessor.from_pretrained(DIR))

The class mirrors the part of `UniPerceiverModel` that classification and retrieval use (`get_features`,
`head.logit_scales`, `config`), so the pipeline's classification and retrieval run on it unchanged and give the same
answers. What the graphs do not hold (VQA's question-conditioned read-out, captions, fill-mask) is refused with a
message naming the torch model. onnxruntime is the `onnx` extra (`pip install uniperceiver-hf[onnx]`).
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .configuration_uniperceiver import UniPerceiverConfig


try:
    import onnxruntime
except ImportError:  # the `onnx` extra
    onnxruntime = None

MANIFEST = "onnx.json"
GRAPHS = ("image", "text", "video")


def graph_file(graph: str, int8: bool = False) -> str:
    """The file name of one exported graph: `image.onnx`, or `image.int8.onnx` for its int8 twin."""
    return f"{graph}.int8.onnx" if int8 else f"{graph}.onnx"


class UniPerceiverORTLogitScales(nn.Module):
    """The per-task logit scales read from `onnx.json` (already `min(exp(s), max)`): `scales(task)` as in torch."""

    def __init__(self, scales: dict[str, float]):
        super().__init__()
        self.scales = dict(scales)

    def forward(self, task: str) -> torch.Tensor:
        if task not in self.scales:
            raise ValueError(f"`task` must be one of {list(self.scales)}, got {task!r}.")
        return torch.tensor(self.scales[task])


class UniPerceiverORTHead(nn.Module):
    """Holds `logit_scales` where the torch model's head holds them (the pipeline reads `model.head.logit_scales`)."""

    def __init__(self, scales: dict[str, float]):
        super().__init__()
        self.logit_scales = UniPerceiverORTLogitScales(scales)


class UniPerceiverORTModel(nn.Module):
    """Image, text and video features computed by onnxruntime sessions over the exported graphs.

    An `nn.Module` without parameters: `digest` (a buffer) hashes the graph files, so that the pipeline's feature
    caches, keyed by `model_fingerprint`, tell one export from another.
    """

    def __init__(self, config: UniPerceiverConfig, sessions: dict, logit_scales: dict[str, float], digest: bytes):
        super().__init__()
        self.config = config
        self.sessions = sessions
        self.head = UniPerceiverORTHead(logit_scales)
        self.register_buffer("digest", torch.tensor(list(digest), dtype=torch.uint8))

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def can_generate(self) -> bool:
        return False

    def routing(self, *args, **kwargs) -> None:
        """No MoE routing: only dense models are exported (the pipeline keys its caches on the routing)."""
        return None

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        int8: bool = False,
        providers: list[str] | None = None,
        session_options=None,
    ) -> "UniPerceiverORTModel":
        """Loads the graphs of an `export onnx` folder (`int8=True`: the `*.int8.onnx` ones) into onnxruntime
        sessions on `providers` (default: the CPU)."""
        if onnxruntime is None:
            raise ImportError("UniPerceiverORTModel needs onnxruntime: `pip install uniperceiver-hf[onnx]`.")
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise ValueError(
                f"`folder` {str(folder)!r} holds no {MANIFEST}: write one with `uniperceiver-hf export onnx`."
            )
        manifest = json.loads((folder / MANIFEST).read_text())
        digest = hashlib.sha256()
        sessions = {}
        for graph in manifest["graphs"]:
            path = folder / graph_file(graph, int8)
            if not path.is_file():
                option = " (export with --int8)" if int8 else ""
                raise ValueError(f"`folder` {str(folder)!r} has no {path.name}{option}.")
            data = path.read_bytes()
            digest.update(data)
            sessions[graph] = onnxruntime.InferenceSession(
                data, sess_options=session_options, providers=providers or ["CPUExecutionProvider"]
            )
        config = UniPerceiverConfig.from_pretrained(folder)
        return cls(config, sessions, manifest["logit_scales"], digest.digest())

    def _run(self, graph: str, **inputs: torch.Tensor) -> torch.Tensor:
        if graph not in self.sessions:
            raise ValueError(f"This export has no {graph} graph (it has {sorted(self.sessions)}).")
        feeds = {name: np.ascontiguousarray(value.detach().cpu().numpy()) for name, value in inputs.items()}
        (features,) = self.sessions[graph].run(None, feeds)
        return torch.from_numpy(features)

    def get_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        feature_index: torch.Tensor | None = None,
        is_target: bool = False,
        attribute=None,
        task: str | None = None,
    ) -> torch.Tensor:
        """The L2-normalised features `[N, projection_dim]` of images `[B, 3, H, W]`, videos `[B, T, 3, H, W]` or
        texts `[B, L]` (with their `[B, L]` mask), as `UniPerceiverModel.get_features` computes them."""
        if (
            position_ids is not None
            or feature_index is not None
            or (pixel_values is not None and input_ids is not None)
        ):
            raise ValueError(
                "The ONNX graphs compute image, video and text features read at <SPE>; VQA, captions and fill-mask "
                "(`feature_index`, `position_ids`, image + text inputs) need the torch model (UniPerceiverModel)."
            )
        if pixel_values is not None:
            return self._run("video" if pixel_values.ndim == 5 else "image", pixel_values=pixel_values.float())
        if input_ids is None:
            raise ValueError("Give `pixel_values` or `input_ids`.")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.ndim != 2:
            raise ValueError(
                f"`attention_mask` must be `[B, L]` for the ONNX text graph, got {tuple(attention_mask.shape)}."
            )
        return self._run("text", input_ids=input_ids.long(), attention_mask=attention_mask.long())
