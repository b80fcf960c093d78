"""Top-1 accuracy: the fraction of predicted class ids that equal the reference ids.

A standalone `evaluate` module (load it with `evaluate.load(path_to_this_file)`), so that it works
offline, unlike the Hub-hosted `evaluate.load("accuracy")`.
"""

import datasets
import evaluate

from .common import UNIPERCEIVER_CITATION, metric_card


_DESCRIPTION = """\
Accuracy is the fraction of examples whose predicted class id equals the reference class id:
accuracy = #correct / #examples. Uni-Perceiver reports it (as a percentage) for image and video
classification, e.g. ImageNet-1k top-1 and Kinetics-400 top-1.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `int`): predicted class id per example (e.g. the argmax of the logits).
    references (`list` of `int`): true class id per example.

Returns:
    accuracy (`float`): fraction in [0, 1] of examples with prediction == reference.

Raises:
    ValueError: when there are no examples, or predictions and references differ in length.

Example:
    >>> accuracy = evaluate.load("path/to/accuracy.py")
    >>> accuracy.compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1])
    {'accuracy': 0.75}
"""


@metric_card(
    _DESCRIPTION,
    UNIPERCEIVER_CITATION,
    _KWARGS_DESCRIPTION,
    {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")},
)
class Accuracy(evaluate.Metric):
    """Top-1 classification accuracy."""

    def _compute(self, predictions, references):
        if not predictions:
            raise ValueError("accuracy needs at least one prediction, got none")
        correct = sum(int(p == r) for p, r in zip(predictions, references, strict=True))
        return {"accuracy": correct / len(predictions)}
