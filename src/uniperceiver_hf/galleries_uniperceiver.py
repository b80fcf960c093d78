"""Galleries searched through a faiss index: folders written by `uniperceiver-hf index`, read memory-mapped.

A gallery of millions of features does not fit one matrix product; a faiss index finds the top k of each query
without scoring every row (exact inner product for small galleries, HNSW or IVF-PQ beyond). An index folder holds
`index.faiss`, `ids.json` (the id of each row, in index order) and `index.json` (the model fingerprint, the kind of
index, its search parameters, the gallery's size and width). faiss (`pip install uniperceiver-hf[scale]`) is needed
only to read one.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch

from .validation_uniperceiver import check_int


try:
    import faiss
except ImportError:  # the `scale` extra
    faiss = None

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
INFO_FILE = "index.json"
# Search-time parameters of each kind, set on the index when it is loaded (faiss's names).
SEARCH_PARAMETERS = {"exact": (), "hnsw": ("efSearch",), "ivfpq": ("nprobe", "k_factor_rf")}


def is_index_folder(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() and (Path(path) / INFO_FILE).is_file()


class GalleryIndex:
    """A faiss index over L2-normalised features, the ids of its rows and the fingerprint of the model that encoded
    them. `search(queries, top_k)` returns inner products (cosine similarities) and row numbers, best first."""

    def __init__(self, index, ids: list, info: dict):
        if index.ntotal != len(ids):
            raise ValueError(f"The index has {index.ntotal} rows but {len(ids)} ids.")
        self.index, self.ids, self.info = index, list(ids), dict(info)
        # faiss keeps some search-time settings out of the file: set them from the folder's index.json.
        parameters = faiss.ParameterSpace()
        for name in SEARCH_PARAMETERS[info["kind"]]:
            parameters.set_index_parameter(index, name, info["search"][name])

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    @property
    def dim(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    def __repr__(self) -> str:
        return f"GalleryIndex({len(self)} rows, dim {self.dim}, {self.info['kind']}, model {self.fingerprint})"

    @classmethod
    def load(cls, folder: str | os.PathLike, argument: str = "folder") -> "GalleryIndex":
        """Reads an index folder, its stored vectors memory-mapped (pages are read from disk as searches touch
        them, so a gallery larger than RAM is searched without loading it)."""
        if faiss is None:
            raise ImportError("Index folders need faiss: pip install 'uniperceiver-hf[scale]' (faiss-cpu).")
        folder = Path(folder)
        if not is_index_folder(folder):
            raise ValueError(f"`{argument}` {str(folder)!r} is not an index folder (no {INFO_FILE}).")
        try:
            info = json.loads((folder / INFO_FILE).read_text())
            ids = json.loads((folder / IDS_FILE).read_text())
            index = faiss.read_index(str(folder / INDEX_FILE), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except (OSError, ValueError, RuntimeError) as error:
            raise ValueError(f"`{argument}` {str(folder)!r} is not a readable index folder: {error}") from error
        return cls(index, ids, info)

    def search(self, query_embeds: torch.Tensor, top_k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """`(scores [Q, k], rows [Q, k])` of the `top_k` rows nearest each query by inner product, best first."""
        if query_embeds.ndim != 2 or query_embeds.shape[1] != self.dim:
            raise ValueError(f"`query_embeds` must be [Q, {self.dim}], got {tuple(query_embeds.shape)}.")
        check_int("top_k", top_k, high=len(self), high_means="the gallery size")
        queries = np.ascontiguousarray(query_embeds.detach().float().cpu().numpy())
        scores, rows = self.index.search(queries, top_k)
        return torch.from_numpy(scores), torch.from_numpy(rows)


__all__ = ["GalleryIndex", "is_index_folder"]
