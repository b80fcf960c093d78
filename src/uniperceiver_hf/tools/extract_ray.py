"""`uniperceiver-hf extract --engine ray`: the same shard jobs as the local engine, run by Ray Data.

The driver checks the inputs, writes the manifest and lists the pending shards; `map_batches` hands one shard
number at a time to a pool of actors, each of which loads the model and opens the dataset once, encodes the shard
and writes it to OUT (a folder every node can reach: a shared or network file system on a cluster). Shards are the
unit of work and of restart, as with torchrun, so the files equal the local engine's.

With `--ray-address` the command joins that cluster (`auto`, or `ray://host:10001`); without it, it joins the Ray
already started in this process or starts a local one on this machine.
"""

import os
from pathlib import Path

from tqdm.auto import tqdm

from .extract import (
    column_modality,
    extract_shard,
    load_model,
    load_split,
    pending_shards,
    prepare_output,
    run_manifest,
)


class ShardWorker:
    """A Ray actor: the model and the dataset loaded once, then `{"shard": [k]}` batches encoded and written."""

    def __init__(self, model: str, dataset: str, split: str, manifest: dict, output: str, batch_size: int, workers):
        device = "cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else None  # Ray sets it for actors given GPUs
        self.model, self.processor = load_model(model, device)
        self.data = load_split(dataset, split)
        self.manifest, self.output = manifest, Path(output)
        self.batch_size, self.workers = batch_size, workers

    def __call__(self, batch: dict) -> dict:
        rows = [
            extract_shard(
                self.model,
                self.processor,
                self.data,
                self.manifest,
                self.output,
                int(k),
                self.batch_size,
                self.workers,
            )
            for k in batch["shard"]
        ]
        return {"shard": list(batch["shard"]), "rows": rows}


def extract_with_ray(
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
    progress: bool = True,
    address: str | None = None,
    actors: int = 2,
    cpus_per_actor: float = 0.5,
    gpus_per_actor: float = 0.0,
) -> Path:
    """`extract(...)` with the pending shards spread over `actors` Ray actors (see the module docstring).

    Each actor asks for `cpus_per_actor` CPUs (below 1 by default: actors that take whole CPUs can leave Ray Data's
    own read tasks none on a small machine, and the pipeline then never starts) and `gpus_per_actor` GPUs.
    """
    import ray
    from ray.data import ActorPoolStrategy

    split_data = load_split(dataset, split)
    modality = column_modality(split_data, column, modality)
    if id_column is not None and id_column not in split_data.column_names:
        raise ValueError(
            f"`--id-column` {id_column!r} is not a column of the dataset; it has {split_data.column_names}."
        )
    loaded, _ = load_model(model)
    manifest = run_manifest(
        loaded, split_data, column, modality, id_column, shard_size, dtype, dataset=str(dataset), split=split
    )
    del loaded
    output = prepare_output(output, manifest)
    shards = pending_shards(output, manifest["num_shards"])
    if not shards:
        return output
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    # Local folders by absolute path: actors need not share the driver's working directory.
    local = [os.path.abspath(p) if os.path.exists(p) else p for p in (os.fspath(model), os.fspath(dataset))]
    arguments = dict(
        model=local[0],
        dataset=local[1],
        split=split,
        manifest=manifest,
        output=str(output.resolve()),
        batch_size=batch_size,
        workers=num_workers,
    )
    jobs = ray.data.from_items([{"shard": k} for k in shards], override_num_blocks=len(shards))
    results = jobs.map_batches(
        ShardWorker,
        fn_constructor_kwargs=arguments,
        batch_size=1,
        compute=ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
    )
    total = sum(min(shard_size, manifest["num_rows"] - k * shard_size) for k in shards)
    with tqdm(total=total, unit="item", desc="extract (ray)", disable=not progress) as bar:
        for row in results.iter_rows():
            bar.update(int(row["rows"]))
    return output


__all__ = ["extract_with_ray"]
