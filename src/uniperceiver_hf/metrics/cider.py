"""CIDEr-D as computed by the COCO caption evaluation, for scoring generated captions offline.

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
CIDEr-D, the "CIDEr" of the COCO caption evaluation (the number captioning papers, Uni-Perceiver's included,
report for MSCOCO and Flickr30k). Text is tokenised as in this package's BLEU module (lower-case, punctuation
to spaces, whitespace split). For n = 1..4, every sentence becomes a vector over its n-grams, each weighted
by TF-IDF: count * (log(#images) - log(max(1, df))), where df is the number of images whose reference set
contains the n-gram, counted over the references of the evaluated corpus only. For a candidate c and one
reference r of its image:
    sim_n(c, r) = sum_g min(c_g, r_g) * r_g / (|c| * |r|) * exp(-(len(c) - len(r))^2 / (2 * 6^2))
(candidate weights clipped by the reference's, a Gaussian penalty on the length difference in words; 0 when
either vector is empty). An image's score is 10 * the mean of sim_n over n = 1..4 and over its references,
and CIDEr-D is the mean over images. Because the IDF comes from the corpus, a corpus of one image always
scores 0, and scores are only comparable on the same test set. (The COCO code measures length in bigrams,
i.e. words - 1; the difference of two lengths is the same, except when a sentence is empty, where the
similarity is 0 either way.)
"""

_CITATION = (
    """\
@inproceedings{vedantam2015cider,
  title={{CIDEr}: Consensus-based Image Description Evaluation},
  author={Vedantam, Ramakrishna and Zitnick, C. Lawrence and Parikh, Devi},
  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},
  pages={4566--4575},
  year={2015}
}
"""
    + COCO_CAPTIONS_CITATION
)

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): one candidate caption per image.
    references (`list` of `list` of `str`): per image, its reference captions (at least one).

Returns:
    cider (`float`): corpus CIDEr-D (non-negative; 10 for a candidate identical to all its references and
        sharing no n-gram with other images' references).

Raises:
    ValueError: when an image has no reference, or there are no predictions.

Example:
    >>> cider = evaluate.load("path/to/cider.py")
    >>> cider.compute(predictions=["a dog runs fast", "two cats sleep here"],
    ...               references=[["a dog runs fast"], ["two cats sleep here"]])
    {'cider': 10.0}
"""

MAX_ORDER = 4
SIGMA = 6.0


def ngram_counts(words: list) -> Counter:
    """How often each n-gram (a tuple of 1 to MAX_ORDER words) occurs in `words`."""
    return Counter(tuple(words[i : i + n]) for n in range(1, MAX_ORDER + 1) for i in range(len(words) - n + 1))


def tfidf_vectors(counts: Counter, document_frequency: Counter, log_num_images: float) -> tuple:
    """Per-order TF-IDF vectors (dicts n-gram -> weight) of one sentence, and their Euclidean norms."""
    vectors = [{} for _ in range(MAX_ORDER)]
    for gram, count in counts.items():
        vectors[len(gram) - 1][gram] = count * (log_num_images - math.log(max(1.0, document_frequency[gram])))
    return vectors, [math.sqrt(sum(w * w for w in vector.values())) for vector in vectors]


def similarity(candidate: tuple, reference: tuple, length_delta: int) -> float:
    """Mean over n of the clipped cosine similarity, times the Gaussian penalty on the length difference."""
    (cand_vectors, cand_norms), (ref_vectors, ref_norms) = candidate, reference
    total = 0.0
    for cand_vec, ref_vec, cand_norm, ref_norm in zip(cand_vectors, ref_vectors, cand_norms, ref_norms, strict=True):
        if cand_norm and ref_norm:
            dot = sum(min(w, ref_vec.get(g, 0.0)) * ref_vec.get(g, 0.0) for g, w in cand_vec.items())
            total += dot / (cand_norm * ref_norm)
    return total / MAX_ORDER * math.exp(-(length_delta**2) / (2 * SIGMA**2))


@metric_card(
    _DESCRIPTION,
    _CITATION,
    _KWARGS_DESCRIPTION,
    TEXT_AGAINST_REFERENCES,
    reference_urls=(
        "https://arxiv.org/abs/1411.5726",
        "https://arxiv.org/abs/1504.00325",
    ),
)
class Cider(evaluate.Metric):
    """CIDEr-D with COCO caption evaluation conventions."""

    def _compute(self, predictions, references):
        if not predictions:
            raise ValueError("cider needs at least one prediction, got none")
        for index, refs in enumerate(references):
            if not refs:
                raise ValueError(f"references of prediction {index} is empty: each prediction needs a reference")
        candidates = [tokenize(prediction) for prediction in predictions]
        reference_sets = [[tokenize(ref) for ref in refs] for refs in references]
        reference_counts = [[ngram_counts(ref) for ref in refs] for refs in reference_sets]

        document_frequency = Counter()
        for counts in reference_counts:
            document_frequency.update(set().union(*counts))
        idf_args = (document_frequency, math.log(len(reference_sets)))

        scores = []
        for candidate, refs, counts in zip(candidates, reference_sets, reference_counts, strict=True):
            cand = tfidf_vectors(ngram_counts(candidate), *idf_args)
            sims = [
                similarity(
                    cand,
                    tfidf_vectors(ref_counts, *idf_args),
                    len(candidate) - len(ref),
                )
                for ref, ref_counts in zip(refs, counts, strict=True)
            ]
            scores.append(10.0 * sum(sims) / len(sims))
        return {"cider": sum(scores) / len(scores)}
