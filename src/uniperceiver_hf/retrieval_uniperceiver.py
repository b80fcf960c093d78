"""Retrieval over galleries of normalised features: top-k search and recall@K in both directions.

Image-text (and video-text) retrieval is the paper's Table 3 / 6 metric: images and captions are encoded
separately, ranked by cosine similarity; an image query counts as correct if any of its captions is in the top K.
"""

import torch

from .targets_uniperceiver import TargetSet
from .validation_uniperceiver import check_int


def search(
    query_embeds: torch.Tensor, gallery_embeds: "torch.Tensor | TargetSet", top_k: int = 10, chunk_size: int = 4096
):
    """The `top_k` gallery rows most similar to each query: `(scores [Q, k], indices [Q, k])`, best first.

    Queries are processed in chunks so that a large gallery never needs the full `[Q, G]` matrix at once. The
    gallery may be a `TargetSet`, such as one backed by an index folder (`TargetSet.load(INDEX_DIR, model)`): its
    index answers, and `gallery.labels[i]` is the id of row i.
    """
    if isinstance(gallery_embeds, TargetSet):
        if gallery_embeds.index is None:
            return search(query_embeds, gallery_embeds.embeds, top_k, chunk_size)
        check_int("chunk_size", chunk_size)
        parts = [
            gallery_embeds.search(query_embeds[s : s + chunk_size], top_k)
            for s in range(0, len(query_embeds), chunk_size)
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    if query_embeds.ndim != 2 or gallery_embeds.ndim != 2 or query_embeds.shape[1] != gallery_embeds.shape[1]:
        raise ValueError(
            "`query_embeds` and `gallery_embeds` must be [Q, D] and [G, D] with the same D, got "
            f"{tuple(query_embeds.shape)} and {tuple(gallery_embeds.shape)}."
        )
    check_int("top_k", top_k, high=gallery_embeds.shape[0], high_means="the gallery size")
    check_int("chunk_size", chunk_size)
    scores, indices = [], []
    gallery = gallery_embeds.T
    for start in range(0, query_embeds.shape[0], chunk_size):
        chunk_scores, chunk_indices = (query_embeds[start : start + chunk_size] @ gallery.to(query_embeds)).topk(top_k)
        scores.append(chunk_scores)
        indices.append(chunk_indices)
    return torch.cat(scores), torch.cat(indices)


def recall_at_k(ranked, positives: list[set], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Fraction of queries with at least one correct gallery entry among their first K ranked ones.

    `ranked` is `[Q, k]` gallery indices (a tensor) or, for a gallery known by ids (an index folder's), one list
    of ids per query; `positives[q]` holds the correct indices or ids of query q."""
    rows = ranked.tolist() if torch.is_tensor(ranked) else [list(row) for row in ranked]
    if len(rows) != len(positives):
        raise ValueError(f"`positives` has {len(positives)} entries for {len(rows)} queries.")
    if not ks:
        raise ValueError("`ks` is empty; give the cut-offs K to report, e.g. (1, 5, 10).")
    for k in ks:
        check_int("ks", k)
    depth = min(len(row) for row in rows) if rows else 0
    if max(ks) > depth:
        raise ValueError(f"`ks` asks for recall@{max(ks)} but only {depth} results are ranked per query.")
    return {
        f"recall@{k}": sum(bool(set(row[:k]) & correct) for row, correct in zip(rows, positives)) / len(rows)
        for k in ks
    }


def image_text_recall(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    text_to_image: torch.Tensor | list[int],
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K for image->text (`i2t`, correct if any caption of the image ranks in the top K) and text->image
    (`t2i`), plus their mean, as fractions. `text_to_image[j]` is the image index of caption j."""
    text_to_image = torch.as_tensor(text_to_image).tolist()
    if len(text_to_image) != text_embeds.shape[0]:
        raise ValueError(f"`text_to_image` has {len(text_to_image)} entries for {text_embeds.shape[0]} captions.")
    outside = [i for i in text_to_image if type(i) is not int or not 0 <= i < len(image_embeds)]  # bools excluded
    if outside:
        raise ValueError(
            f"`text_to_image` must hold image indices in [0, {len(image_embeds)}) (the gallery), got {outside[:5]}."
        )
    captions_of = [set() for _ in range(image_embeds.shape[0])]
    for caption, image in enumerate(text_to_image):
        captions_of[image].add(caption)
    depth = max(ks)
    _, image_ranked = search(image_embeds, text_embeds, min(depth, text_embeds.shape[0]))
    _, text_ranked = search(text_embeds, image_embeds, min(depth, image_embeds.shape[0]))
    i2t = recall_at_k(image_ranked, captions_of, tuple(k for k in ks if k <= image_ranked.shape[1]))
    t2i = recall_at_k(
        text_ranked, [{image} for image in text_to_image], tuple(k for k in ks if k <= text_ranked.shape[1])
    )
    result = {f"i2t_{name}": value for name, value in i2t.items()} | {
        f"t2i_{name}": value for name, value in t2i.items()
    }
    result["mean_recall"] = sum(result.values()) / len(result)
    return result


__all__ = ["image_text_recall", "recall_at_k", "search"]
