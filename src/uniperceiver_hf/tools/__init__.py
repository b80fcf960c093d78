"""The `uniperceiver-hf` command's subcommands, one module each: `convert` (official checkpoints), `export hub` (a
push-ready folder), `extract` (sharded features of a dataset; `extract_ray.py`, its Ray engine), `index` (a faiss
index of them) and `serve` (an HTTP search service over that index). They build on the model code at the package
root; the root never imports them."""
