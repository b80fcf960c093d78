"""Offline `evaluate` metric modules for Uni-Perceiver's benchmarks.

`evaluate.load("accuracy")` and the other Hub-hosted metrics need the network; `evaluate.load(path)` of a
local module does not. Each `<name>.py` beside this file is such a standalone module (it imports only
`evaluate`, `datasets` and the standard library, never this package), so it can also be copied elsewhere and
loaded by path.

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
