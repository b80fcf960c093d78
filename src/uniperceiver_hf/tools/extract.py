"""Features of a whole dataset column, in numbered shards that survive a crash and split across processes.

    uniperceiver-hf extract --model M --dataset D [--split S] --column C [--modality image|video|text]
        [--id-column C] --output OUT [--batch-size B] [--num-workers W] [--dtype float16|float32]
        [--shard-size N] [--engine local|ray] [--ray-address ADDR] [--ray-actors A]
    python -m uniperceiver_hf.tools.extract ...   (the same)
    torchrun --nproc-per-node N -m uniperceiver_hf.tools.extract ...   (rank r takes shards r, r + N, ...)

Each item is encoded exactly as a candidate of `pipeline("zero-shot-perception")` and `TargetSet.encode` encodes
it (images with the "clip" preset, videos with one crop, texts as `text + EOT` targets), so OUT can serve as a
gallery for any query the pipeline takes. OUT holds `manifest.json` (the model's fingerprint, the column, its
modality, the normalisation, the counts) and `shard-00000.safetensors`, ... (a `features` tensor and the rows' ids
in the metadata). A shard is written to a temporary name and renamed once complete, so a restart after `kill -9`
skips the finished shards and redoes the rest: every id ends up exactly once, with the features of an uninterrupted
run (a shard's batches never depend on what ran before). `load_features(OUT)` reads the whole folder back.
"""

import argparse
import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..files_uniperceiver import read_safetensors
from ..pipeline_uniperceiver import VIDEO_EXTENSIONS
from ..targets_uniperceiver import TargetSet, model_fingerprint
from ..validation_uniperceiver import check_int


logger = logging.getLogger(__name__)
DESCRIPTION = __doc__.split("\n\n")[0]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MODALITIES = ("image", "video", "text")
DTYPES = {"float32": torch.float32, "float16": torch.float16}
# Manifest fields that must agree before a run may add shards to an existing OUT.
_RUN_FIELDS = ("fingerprint", "column", "modality", "id_column", "num_rows", "shard_size", "dtype", "normalisation")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


# -- the dataset ---------------------------------------------------------------------------------------------------


def load_split(dataset: str, split: str = "train"):
    """`dataset` as one `datasets.Dataset`: a `save_to_disk` folder (a `DatasetDict` or one split), parquet or
    webdataset (`.tar`) files (a comma-separated list, globs allowed), or a Hub dataset name."""
    import datasets

    path = Path(dataset).expanduser()
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"`--split` {split!r} is not in {dataset!r}; it has {sorted(loaded)}.")
            loaded = loaded[split]
        return loaded
    files = [name.strip() for name in dataset.split(",") if name.strip()]
    builders = {name.rsplit(".", 1)[-1] for name in files}
    if builders <= {"parquet"} or builders <= {"tar"}:
        builder = "parquet" if builders == {"parquet"} else "webdataset"
        return datasets.load_dataset(builder, data_files={split: files}, split=split)
    return datasets.load_dataset(dataset, split=split)


def column_modality(dataset, column: str, modality: str | None = None) -> str:
    """The modality of `column`: an `Image` feature holds images; a string column holds video file paths (by their
    extension) or texts. A declared `modality` that the column cannot hold is refused."""
    import datasets

    if column not in dataset.column_names:
        raise ValueError(f"`--column` {column!r} is not a column of the dataset; it has {dataset.column_names}.")
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"`--modality` must be one of {MODALITIES}, got {modality!r}.")
    feature = dataset.features[column]
    if isinstance(feature, datasets.Image):
        found = "image"
    elif isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        first = dataset[0][column] if len(dataset) else ""
        found = "video" if isinstance(first, str) and first.lower().endswith(VIDEO_EXTENSIONS) else "text"
        if modality == "image" and isinstance(first, str) and os.path.isfile(first):
            found = "image"  # image file paths
    else:
        raise ValueError(
            f"`--column` {column!r} holds {feature!r}: expected images (an `Image` feature), video file paths or texts."
        )
    if modality is not None and modality != found:
        raise ValueError(f"`--column` {column!r} holds {found} items, not the `--modality` {modality!r} asked for.")
    return found


# -- encoding ------------------------------------------------------------------------------------------------------


class _Batches(torch.utils.data.Dataset):
    """Batch `i` of a shard as model inputs: decoding and preprocessing run in `DataLoader` workers."""

    def __init__(self, dataset, manifest: dict, processor, text_limit: int, rows: range, batch_size: int):
        self.dataset, self.column, self.id_column = dataset, manifest["column"], manifest["id_column"]
        self.modality, self.processor, self.text_limit = manifest["modality"], processor, text_limit
        self.rows, self.batch_size = rows, batch_size

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, index: int) -> dict:
        rows = self.rows[index * self.batch_size : (index + 1) * self.batch_size]
        columns = [self.column] + ([self.id_column] if self.id_column else [])
        values = self.dataset.select_columns(columns)[rows.start : rows.stop]
        ids = values[self.id_column] if self.id_column else list(rows)
        inputs = model_inputs(self.processor, self.modality, values[self.column], self.text_limit)
        return {"ids": ids, **inputs}


def model_inputs(processor, modality: str, items: list, text_limit: int) -> dict[str, torch.Tensor]:
    """The inputs `TargetSet.encode` takes for these items, as the pipeline prepares its candidates (texts are cut
    at the model's `text_limit` positions, keeping the final end-of-text)."""
    if modality == "text":
        if not all(isinstance(text, str) and text.strip() for text in items):
            raise ValueError("The text column has an empty or non-string value.")
        targets = processor.target_inputs(items, max_length=text_limit)
        return {"input_ids": targets["target_input_ids"], "attention_mask": targets["target_attention_mask"]}
    if modality == "image":
        from PIL import Image

        images = [Image.open(item) if isinstance(item, str) else item for item in items]
        return {"pixel_values": processor.image_processor(images, preset="clip", return_tensors="pt")["pixel_values"]}
    pixels = [processor.video_processor([item], num_spatial_crops=1)["pixel_values"] for item in items]
    return {"pixel_values": torch.cat([p.flatten(0, 1) if p.ndim == 6 else p for p in pixels])}


def encode_items(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """L2-normalised features `[B, D]` of one batch, as `TargetSet.encode` computes them (float32 on the CPU)."""
    return TargetSet.encode(model, batch_size=len(next(iter(inputs.values()))), show_progress=False, **inputs).embeds


# -- the output folder ---------------------------------------------------------------------------------------------


def read_manifest(output: str | os.PathLike) -> dict:
    path = Path(output) / MANIFEST
    if not path.is_file():
        raise ValueError(f"`output` {str(output)!r} holds no {MANIFEST}: it is not a folder written by `extract`.")
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"`output` {str(output)!r}: {MANIFEST} is not valid JSON ({error}).") from error


def _write_atomically(path: Path, write) -> None:
    """`write(temporary)` then rename: a reader (or a restart) never sees a half-written file."""
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


def prepare_output(output: str | os.PathLike, manifest: dict) -> Path:
    """Creates OUT with its manifest, or checks that an existing OUT was started by the same run settings (model
    fingerprint, column, counts): another model's or column's OUT is refused and left untouched."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"`output` {str(output)!r} is a file, not a folder.")
    if (output / MANIFEST).is_file():
        existing = read_manifest(output)
        different = {k: (existing.get(k), manifest[k]) for k in _RUN_FIELDS if existing.get(k) != manifest[k]}
        if different:
            details = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in different.items())
            raise ValueError(
                f"`output` {str(output)!r} holds features of another run ({details}). Nothing was overwritten: "
                "choose a new folder, or delete this one to start again."
            )
        return output
    if output.is_dir() and any(output.iterdir()):
        raise ValueError(f"`output` {str(output)!r} is a non-empty folder without a {MANIFEST}; nothing was written.")
    output.mkdir(parents=True, exist_ok=True)
    _write_atomically(output / MANIFEST, lambda path: path.write_text(json.dumps(manifest, indent=2)))
    return output


def pending_shards(output: Path, num_shards: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This rank's shards (r, r + N, ...) that have no complete file yet."""
    return [k for k in range(rank, num_shards, world_size) if not (output / shard_name(k)).is_file()]


def write_shard(output: Path, index: int, ids: list, features: torch.Tensor, fingerprint: str) -> None:
    metadata = {"ids": json.dumps(ids), "fingerprint": fingerprint, "shard": str(index)}
    tensors = {"features": features.contiguous()}
    _write_atomically(output / shard_name(index), lambda path: save_file(tensors, str(path), metadata=metadata))


def load_features(output: str | os.PathLike) -> tuple[list, torch.Tensor]:
    """`(ids, features [N, D])` of a finished OUT, in dataset order. Refuses a folder with missing shards (an
    interrupted run: run the same command again to finish it) or shards of another model."""
    output = Path(output)
    manifest = read_manifest(output)
    missing = [k for k in range(manifest["num_shards"]) if not (output / shard_name(k)).is_file()]
    if missing:
        raise ValueError(
            f"`output` {str(output)!r} misses {len(missing)} of {manifest['num_shards']} shards (first: "
            f"{shard_name(missing[0])}); the extraction is unfinished: run the same command again to complete it."
        )
    ids, features = [], []
    for k in range(manifest["num_shards"]):
        tensors, metadata = read_safetensors(output / shard_name(k), "output")
        if metadata.get("fingerprint") != manifest["fingerprint"]:
            raise ValueError(f"`output` {str(output)!r}: {shard_name(k)} was written by another model.")
        ids += json.loads(metadata["ids"])
        features.append(tensors["features"])
    return ids, torch.cat(features)


def iter_shards(output: str | os.PathLike):
    """`(ids, features)` of each shard in order, one in memory at a time (for galleries larger than RAM)."""
    output = Path(output)
    manifest = read_manifest(output)
    for k in range(manifest["num_shards"]):
        tensors, metadata = read_safetensors(output / shard_name(k), "features")
        if metadata.get("fingerprint") != manifest["fingerprint"]:
            raise ValueError(f"`features` {str(output)!r}: {shard_name(k)} was written by another model.")
        yield json.loads(metadata["ids"]), tensors["features"]


# -- the run -------------------------------------------------------------------------------------------------------


def load_model(model: str, device: str | None = None):
    """`(model, processor)` exactly as `pipeline("zero-shot-perception", model=...)` loads them."""
    from transformers import pipeline

    import uniperceiver_hf  # noqa: F401  (registers the pipeline)

    pipe = pipeline("zero-shot-perception", model=model, device=device)
    return pipe.model.eval(), pipe.processor


def run_manifest(model, split_data, column: str, modality: str, id_column, shard_size: int, dtype: str, **source):
    """What OUT's `manifest.json` records; `source` names the dataset and split."""
    return {
        "format_version": FORMAT_VERSION,
        "fingerprint": model_fingerprint(model),
        "model": str(model.name_or_path),
        **source,
        "column": column,
        "modality": modality,
        "id_column": id_column,
        "num_rows": len(split_data),
        "shard_size": shard_size,
        "num_shards": -(-len(split_data) // shard_size),
        "dim": model.config.projection_dim,
        "dtype": dtype,
        "normalisation": "l2",
    }


def extract_shard(model, processor, dataset, manifest: dict, output: Path, index: int, batch_size: int, workers=0):
    """Encodes shard `index` and writes it; returns its number of rows."""
    size = manifest["shard_size"]
    rows = range(index * size, min((index + 1) * size, manifest["num_rows"]))
    batches = _Batches(dataset, manifest, processor, model.config.max_position_embeddings, rows, batch_size)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers)
    ids, features = [], []
    for batch in loader:
        ids += batch.pop("ids")
        features.append(encode_items(model, batch).cpu().to(DTYPES[manifest["dtype"]]))
    write_shard(output, index, ids, torch.cat(features), manifest["fingerprint"])
    return len(rows)


def extract(
    model: str,
    dataset: str,
    column: str,
    output: str | os.PathLike,
    split: str = "train",
    modality: str | None = None,
    id_column: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    dtype: str = "float32",
    shard_size: int = 1024,
    rank: int = 0,
    world_size: int = 1,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Extracts this rank's pending shards of `dataset[split][column]` into `output` (see the module docstring)."""
    check_int("batch_size", batch_size)
    check_int("shard_size", shard_size)
    check_int("num_workers", num_workers, low=0)
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {sorted(DTYPES)}, got {dtype!r}.")
    split_data = load_split(dataset, split)
    modality = column_modality(split_data, column, modality)
    if id_column is not None and id_column not in split_data.column_names:
        raise ValueError(
            f"`--id-column` {id_column!r} is not a column of the dataset; it has {split_data.column_names}."
        )
    loaded, processor = load_model(model, device)
    manifest = run_manifest(
        loaded, split_data, column, modality, id_column, shard_size, dtype, dataset=str(dataset), split=split
    )
    output = prepare_output(output, manifest)
    shards = pending_shards(output, manifest["num_shards"], rank, world_size)
    total = sum(min(shard_size, manifest["num_rows"] - k * shard_size) for k in shards)
    with tqdm(total=total, unit="item", desc=f"extract rank {rank}", disable=not progress) as bar:
        for index in shards:
            bar.update(extract_shard(loaded, processor, split_data, manifest, output, index, batch_size, num_workers))
    return output


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--dataset", required=True, help="save_to_disk folder, parquet / .tar files, or Hub name")
    parser.add_argument("--split", default="train")
    parser.add_argument("--column", required=True, help="the column to encode")
    parser.add_argument("--modality", choices=MODALITIES, help="what the column holds (default: from its type)")
    parser.add_argument("--id-column", help="the column of ids (default: the row number)")
    parser.add_argument("--output", required=True, help="the output folder OUT")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers decoding and preprocessing")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="dtype of the stored features")
    parser.add_argument("--shard-size", type=int, default=1024, help="items per shard file")
    parser.add_argument("--device", help="torch device (default: cuda:LOCAL_RANK when available, else cpu)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", help="a Ray cluster to join (default: start a local one)")
    parser.add_argument("--ray-actors", type=int, default=2, help="actors of the Ray pool (one model each)")
    parser.add_argument("--ray-cpus-per-actor", type=float, default=0.5)
    parser.add_argument("--ray-gpus-per-actor", type=float, default=0.0)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers) -> None:
    """Registers `uniperceiver-hf extract`."""
    add_arguments(subparsers.add_parser("extract", help=DESCRIPTION, description=DESCRIPTION))


def run(args: argparse.Namespace) -> Path:
    options = dict(
        model=args.model,
        dataset=args.dataset,
        column=args.column,
        output=args.output,
        split=args.split,
        modality=args.modality,
        id_column=args.id_column,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        dtype=args.dtype,
        shard_size=args.shard_size,
        progress=not args.no_progress,
    )
    if args.engine == "ray":
        from .extract_ray import extract_with_ray

        return extract_with_ray(
            **options,
            address=args.ray_address,
            actors=args.ray_actors,
            cpus_per_actor=args.ray_cpus_per_actor,
            gpus_per_actor=args.ray_gpus_per_actor,
        )
    # Under torchrun every process runs this same command; RANK and WORLD_SIZE say which shards are its own.
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = args.device
    if device is None and torch.cuda.is_available():
        device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
    output = extract(**options, rank=rank, world_size=world_size, device=device)
    print(f"rank {rank}/{world_size}: {output} holds {len(list(output.glob('shard-*.safetensors')))} shards")
    return output


def main(argv: list[str] | None = None) -> Path:
    """`uniperceiver-hf extract` on its own (`python -m uniperceiver_hf.tools.extract`, what torchrun runs)."""
    parser = add_arguments(argparse.ArgumentParser(prog="uniperceiver-hf extract", description=DESCRIPTION))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()


__all__ = ["extract", "load_features", "load_split"]
