"""Offline `evaluate` metric modules for Uni-Perceiver's benchmarks.

`evaluate.load("accuracy")` and the other Hub-hosted metrics need the network; `evaluate.load(path)` of a
local module does not. Each `<name>.py` beside this file is such a module: it imports only `evaluate`, `datasets`,
the standard library and `common.py` (their shared description and tokenisation), never this package, so a
metric file copied elsewhere with `common.py` beside it loads by path too.

    from uniperceiver_hf.metrics import load_metric
    cider = load_metric("cider")
    cider.compute(predictions=["a dog runs"], references=[["a dog is running", "a running dog"]])
"""

import os


AVAILABLE_METRICS = ("accuracy", "bleu", "cider", "recall_at_k", "vqa_accuracy")


def metric_path(name: str) -> str:
    """The absolute path of the module file of metric `name` (one of `AVAILABLE_METRICS`)."""
    if name not in AVAILABLE_METRICS:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(AVAILABLE_METRICS)}")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")


def load_metric(name: str, **kwargs):
    """`evaluate.load` of metric `name` from its local file; `kwargs` go to `evaluate.load`.

    Needs the optional `evaluate` and `datasets` packages (`pip install uniperceiver-hf[train]`).
    """
    import evaluate

    return evaluate.load(metric_path(name), **kwargs)


__all__ = ["AVAILABLE_METRICS", "load_metric", "metric_path"]
