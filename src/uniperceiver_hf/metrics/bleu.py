"""Corpus BLEU-1..4 as computed by the COCO caption evaluation, for scoring generated captions offline.

A standalone `evaluate` module (load it with `evaluate.load(path_to_this_file)`).
"""

import math
from collections import Counter

import evaluate

from .common import (
    COCO_CAPTIONS_CITATION,
    TEXT_AGAINST_REFERENCES,
    metric_card,
    tokenize,
)


_DESCRIPTION = """\
Corpus-level BLEU-1 to BLEU-4 as in the COCO caption evaluation (the numbers captioning papers, Uni-Perceiver's
included, report for MSCOCO and Flickr30k):
  - text is lower-cased, every character that is not a letter, digit, underscore or whitespace is replaced
    by a space, and the result is split on whitespace (a simple stand-in for the PTB tokenizer that COCO runs,
    which also drops punctuation);
  - for each candidate, the count of each n-gram is clipped by its largest count in any one of that
    candidate's references; clipped matches and candidate n-gram totals are summed over the whole corpus
    (not averaged per sentence);
  - BLEU-N = BP * (p_1 * ... * p_N) ** (1 / N) with p_n the corpus n-gram precision;
  - the brevity penalty BP = exp(1 - r / c) when c < r, else 1, where c is the total candidate length and r
    sums, per candidate, the length of its reference closest in length (the shorter one on a tie).
Scores are fractions in [0, 1]. The COCO code adds 1e-15 / 1e-9 to each precision's numerator / denominator
to avoid dividing by zero; here an order with no n-gram or no match gives exactly 0 instead. The two agree
to about 1e-9 whenever every order has at least one match, which is always the case on a real test set.
"""

_CITATION = (
    """\
@inproceedings{papineni2002bleu,
  title={{BLEU}: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics},
  pages={311--318},
  year={2002}
}
"""
    + COCO_CAPTIONS_CITATION
)

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): one candidate caption per image.
    references (`list` of `list` of `str`): per image, its reference captions (at least one).

Returns:
    bleu_1, bleu_2, bleu_3, bleu_4 (`float`): corpus BLEU-N, fractions in [0, 1].

Raises:
    ValueError: when an image has no reference, or there are no predictions.

Example:
    >>> bleu = evaluate.load("path/to/bleu.py")
    >>> bleu.compute(predictions=["A dog runs."], references=[["a dog runs", "the dog is running"]])
    {'bleu_1': 1.0, 'bleu_2': 1.0, 'bleu_3': 1.0, 'bleu_4': 0.0}
"""

MAX_ORDER = 4


def ngram_counts(words: list, n: int) -> Counter:
    """How often each n-gram (a tuple of n words) occurs in `words`."""
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


@metric_card(
    _DESCRIPTION,
    _CITATION,
    _KWARGS_DESCRIPTION,
    TEXT_AGAINST_REFERENCES,
    reference_urls=(
        "https://aclanthology.org/P02-1040/",
        "https://arxiv.org/abs/1504.00325",
    ),
)
class Bleu(evaluate.Metric):
    """Corpus BLEU-1..4 with COCO caption evaluation conventions."""

    def _compute(self, predictions, references):
        if not predictions:
            raise ValueError("bleu needs at least one prediction, got none")
        matches, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
        candidate_length = reference_length = 0
        for index, (prediction, refs) in enumerate(zip(predictions, references, strict=True)):
            if not refs:
                raise ValueError(f"references of prediction {index} is empty: each prediction needs a reference")
            candidate = tokenize(prediction)
            refs = [tokenize(ref) for ref in refs]
            candidate_length += len(candidate)
            reference_length += min((abs(len(ref) - len(candidate)), len(ref)) for ref in refs)[1]
            for n in range(1, MAX_ORDER + 1):
                counts = ngram_counts(candidate, n)
                max_ref_counts = Counter()
                for ref in refs:
                    max_ref_counts |= ngram_counts(ref, n)  # `|` keeps the larger count
                matches[n - 1] += sum((counts & max_ref_counts).values())  # `&` keeps the smaller count
                totals[n - 1] += sum(counts.values())

        if candidate_length >= reference_length:
            brevity_penalty = 1.0
        elif candidate_length == 0:
            brevity_penalty = 0.0
        else:
            brevity_penalty = math.exp(1 - reference_length / candidate_length)
        scores, precision_product = {}, 1.0
        for n in range(1, MAX_ORDER + 1):
            precision_product *= matches[n - 1] / totals[n - 1] if totals[n - 1] else 0.0
            scores[f"bleu_{n}"] = brevity_penalty * precision_product ** (1 / n)
        return scores
