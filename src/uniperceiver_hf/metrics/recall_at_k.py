"""Retrieval recall@K: the fraction of queries with at least one correct item among the top K retrieved.

A standalone `evaluate` module (load it with `evaluate.load(path_to_this_file)`). It scores both
directions of Uni-Perceiver's image-text retrieval: in image-to-text an image query is a hit when any of
its (usually 5) captions is ranked in the top K; in text-to-image each caption has one correct image.
"""

import datasets
import evaluate

from .common import UNIPERCEIVER_CITATION, metric_card


_DESCRIPTION = """\
Recall@K for retrieval: for each query, the gallery is ranked by score, and the query counts as a hit at K
when at least one of its correct gallery items is among the first K ranked items. Recall@K is the fraction
of queries that are hits, returned as a fraction in [0, 1] (papers, Uni-Perceiver's included, print it as
a percentage: multiply by 100). This is the R@1 / R@5 / R@10 of MSCOCO and Flickr30k image-text retrieval
and MSVD / MSR-VTT video-text retrieval.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `list` of `int`): per query, gallery indices ranked best first (e.g.
        `scores.topk(max(k)).indices`); only the first max(k) entries are read, and each list must be at
        least that long.
    references (`list` of `list` of `int`): per query, the indices of all its correct gallery items
        (at least one).
    k (`list` of `int`, defaults to `[1, 5, 10]`): the cut-offs to report.

Returns:
    `recall@K` (`float`) for each K in k: fraction in [0, 1] of queries with a correct item in the top K.

Raises:
    ValueError: when k is empty or holds a value < 1, a ranked list is shorter than max(k), a query has no
        correct item, or there are no queries.

Example:
    >>> recall = evaluate.load("path/to/recall_at_k.py")
    >>> recall.compute(predictions=[[3, 1, 2], [0, 2, 1]], references=[[1, 4], [1]], k=[1, 2])
    {'recall@1': 0.0, 'recall@2': 0.5}
"""


@metric_card(
    _DESCRIPTION,
    UNIPERCEIVER_CITATION,
    _KWARGS_DESCRIPTION,
    {
        "predictions": datasets.Sequence(datasets.Value("int64")),
        "references": datasets.Sequence(datasets.Value("int64")),
    },
)
class RecallAtK(evaluate.Metric):
    """Retrieval recall@K where a query is a hit if any of its correct items ranks in the top K."""

    def _compute(self, predictions, references, k=(1, 5, 10)):
        k = list(k)
        if not k or any(int(cut) != cut or cut < 1 for cut in k):
            raise ValueError(f"k must be a non-empty list of integers >= 1, got {k}")
        if not predictions:
            raise ValueError("recall@K needs at least one query, got none")
        max_k = max(k)
        # The rank (0-based) of each query's best-ranked correct item, or None when none is in the top max(k).
        first_hits = []
        for query, (ranked, correct) in enumerate(zip(predictions, references, strict=True)):
            if len(ranked) < max_k:
                raise ValueError(
                    f"k={max_k} is larger than the ranked list of query {query} ({len(ranked)} entries): "
                    f"pass at least max(k) ranked gallery indices per query, or a smaller k"
                )
            if not correct:
                raise ValueError(f"references of query {query} is empty: each query needs at least one correct item")
            correct = set(correct)
            first_hits.append(
                next(
                    (rank for rank, item in enumerate(ranked[:max_k]) if item in correct),
                    None,
                )
            )
        return {
            f"recall@{cut}": sum(hit is not None and hit < cut for hit in first_hits) / len(first_hits) for cut in k
        }
