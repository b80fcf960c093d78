"""Exports the encoder graphs users serve (image, text and video features) to ONNX, checked against torch.

    uniperceiver-hf export onnx --model M --output DIR [--int8] [--opset 17]

DIR gets `image.onnx` (`pixel_values [B, 3, H, W]`), `text.onnx` (`input_ids, attention_mask [B, L]`) and
`video.onnx` (`pixel_values [B, T, 3, H, W]`), each giving `features [B, projection_dim]` (L2-normalised) with batch,
text length and frames dynamic; the config and processor; and `onnx.json` (inputs, logit scales, exporter, the
largest onnxruntime-vs-torch difference measured at export). `--int8` adds `*.int8.onnx`: onnxruntime's dynamic
quantisation of the MatMul/Gemm weights and of the embedding tables (Gather) to int8, activations quantised per batch
at run time (the word-embedding table is most of a small model's file: int8 shrinks the files about 4x).
`UniPerceiverORTModel.from_pretrained(DIR)` runs them, also under the pipeline.

The exporter is `torch.onnx.export` with its TorchScript tracer (`dynamo=False`), not optimum: optimum's ONNX
exporter (optimum-onnx 0.1) requires transformers < 4.58 and cannot be installed beside transformers 5, so no
`OnnxConfig` of ours can be registered with it; and the tracer, unlike the `dynamo=True` exporter, needs no further
package (onnxscript) and gives the same graph on every torch from the floor (2.7) to the newest. Attention is
exported in its eager form (the readable reference; onnxruntime fuses it). Models with deep prompts or MoE layers
are refused: their features depend on the side and task routing, which one graph per modality cannot carry.
"""

import argparse
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..modeling_uniperceiver import UniPerceiverModel
from ..onnx_uniperceiver import GRAPHS, MANIFEST, UniPerceiverORTModel, graph_file
from ..processing_uniperceiver import UniPerceiverProcessor


DESCRIPTION = "ONNX graphs of the image, text and video features (onnxruntime; --int8 adds int8 twins)"
TOLERANCE = 1e-4  # onnxruntime vs torch, float32, on the features (unit vectors)


class VisualFeatures(nn.Module):
    """Images `[B, 3, H, W]` or videos `[B, T, 3, H, W]` -> features `[B, projection_dim]` (the input side)."""

    def __init__(self, model: UniPerceiverModel):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.get_features(pixel_values=pixel_values)


class TextFeatures(nn.Module):
    """Texts `[B, L]` with their padding mask -> features `[B, projection_dim]` read at the prefix `<SPE>`."""

    def __init__(self, model: UniPerceiverModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.get_features(input_ids=input_ids, attention_mask=attention_mask, is_target=True)


def example_inputs(config, graph: str, batch_size: int, length: int, generator: torch.Generator) -> dict:
    """Random inputs of one graph: `length` text tokens (the second row padded) or `length` video frames."""
    size = (3, config.image_size, config.image_size)
    if graph == "image":
        return {"pixel_values": torch.randn(batch_size, *size, generator=generator)}
    if graph == "video":
        return {"pixel_values": torch.randn(batch_size, min(length, config.num_frames), *size, generator=generator)}
    input_ids = torch.randint(0, config.vocab_size, (batch_size, length), generator=generator)
    attention_mask = torch.ones(batch_size, length, dtype=torch.long)
    if batch_size > 1:
        attention_mask[1, length // 2 :] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


DYNAMIC_AXES = {
    "image": {"pixel_values": {0: "batch"}, "features": {0: "batch"}},
    "video": {"pixel_values": {0: "batch", 1: "frames"}, "features": {0: "batch"}},
    "text": {
        "input_ids": {0: "batch", 1: "length"},
        "attention_mask": {0: "batch", 1: "length"},
        "features": {0: "batch"},
    },
}


def check_exportable(model: UniPerceiverModel) -> None:
    config = model.config
    if config.is_moe:
        raise ValueError(
            "`--model` is a Uni-Perceiver-MoE model: its routing depends on the task; export a dense model."
        )
    if config.num_prompt_tokens:
        raise ValueError(
            "`--model` has deep prompts (prompt tuning): export the model without its adapter, or serve it in torch."
        )


def export_graph(model: UniPerceiverModel, graph: str, path: Path, opset: int) -> None:
    """Traces one graph with example inputs of batch 2 (so that no size-1 dimension is specialised)."""
    wrapper = (TextFeatures if graph == "text" else VisualFeatures)(model).eval()
    inputs = example_inputs(model.config, graph, 2, 4, torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        # The tracer warns that it is deprecated and that the input checks become constants: both are expected
        # (the checks ran on the example inputs; the graph carries no branch).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=["features"],
            dynamic_axes=DYNAMIC_AXES[graph],
            opset_version=opset,
            dynamo=False,
        )


def max_difference(model: UniPerceiverModel, runtime: UniPerceiverORTModel, graphs=GRAPHS) -> dict[str, float]:
    """The largest |onnxruntime - torch| of each graph's features on fresh inputs of another batch and length."""
    generator = torch.Generator().manual_seed(1)
    differences = {}
    for graph in graphs:
        inputs = example_inputs(model.config, graph, 3, 7, generator)
        with torch.no_grad():
            expected = model.get_features(**inputs, is_target=graph == "text")
        differences[graph] = (runtime.get_features(**inputs) - expected).abs().max().item()
    return differences


def quantize_graphs(folder: Path, graphs=GRAPHS) -> None:
    """`*.int8.onnx` beside each graph: int8 weights of every MatMul/Gemm and embedding table (Gather),
    activations quantised at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for graph in graphs:
        quantize_dynamic(
            str(folder / graph_file(graph)),
            str(folder / graph_file(graph, int8=True)),
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
            weight_type=QuantType.QInt8,
        )


def export_onnx(model_path: str | os.PathLike, output: str | os.PathLike, int8: bool = False, opset: int = 17) -> Path:
    """Writes the graphs, config, processor and `onnx.json` to `output`; raises if onnxruntime's features differ
    from torch's by more than `TOLERANCE`."""
    model = UniPerceiverModel.from_pretrained(model_path, attn_implementation="eager").eval()
    check_exportable(model)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    for graph in GRAPHS:
        export_graph(model, graph, output / graph_file(graph), opset)
    model.config.save_pretrained(output)
    try:
        processor = UniPerceiverProcessor.from_pretrained(model_path)
    except (OSError, ValueError):  # a bare model folder: the processor its config implies
        processor = UniPerceiverProcessor.for_model_config(model.config)
    processor.save_pretrained(output)
    with torch.no_grad():
        scales = {task: model.head.logit_scales(task).item() for task in model.config.logit_scale_tasks}
    manifest = {
        "graphs": {
            graph: {"file": graph_file(graph), "inputs": list(DYNAMIC_AXES[graph])[:-1], "output": "features"}
            for graph in GRAPHS
        },
        "logit_scales": scales,
        "exporter": f"torch.onnx.export (TorchScript tracer), torch {torch.__version__}, opset {opset}",
        "source": os.fspath(model_path),
    }
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2))
    differences = max_difference(model, UniPerceiverORTModel.from_pretrained(output))
    if max(differences.values()) > TOLERANCE:
        raise RuntimeError(f"onnxruntime's features differ from torch's by {differences} (more than {TOLERANCE}).")
    manifest["max_abs_difference"] = differences
    if int8:
        quantize_graphs(output)
        manifest["int8"] = {graph: graph_file(graph, int8=True) for graph in GRAPHS}
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return output


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True, help="a converted model folder (or Hub id)")
    parser.add_argument("--output", required=True, help="the folder to write the graphs to")
    parser.add_argument("--int8", action="store_true", help="also write int8 twins of the graphs (*.int8.onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers) -> None:
    """Registers `uniperceiver-hf export onnx`."""
    add_arguments(subparsers.add_parser("onnx", help=DESCRIPTION, description=DESCRIPTION))


def run(args: argparse.Namespace) -> Path:
    output = export_onnx(args.model, args.output, int8=args.int8, opset=args.opset)
    manifest = json.loads((output / MANIFEST).read_text())
    print(f"Wrote {output}: {', '.join(sorted(p.name for p in output.glob('*.onnx')))}")
    print(f"onnxruntime vs torch, largest difference: {manifest['max_abs_difference']}")
    return output
