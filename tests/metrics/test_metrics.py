"""The offline metric modules of `uniperceiver_hf.metrics`, against numbers worked out by hand.

Every metric is loaded the way users load it, through `evaluate.load(<local file>)`; those tests are skipped
where `evaluate` is not installed (it is an optional dependency, installed in CI).
"""

import math
import os
import random
import shutil
import subprocess
import sys
import textwrap

import pytest

from uniperceiver_hf.metrics import AVAILABLE_METRICS, load_metric, metric_path


@pytest.fixture(scope="module")
def metrics():
    """name -> the metric loaded from its file by `evaluate.load`, loaded once per module.

    In memory: a compute that raises leaves evaluate's cache-file lock held, and the next compute would wait
    a second for it. The subprocess test below covers the default on-disk cache.
    """
    pytest.importorskip("evaluate", reason="the metric modules need the optional `evaluate` package")
    return {name: load_metric(name, keep_in_memory=True) for name in AVAILABLE_METRICS}


# ---------------------------------------------------------------------------------------------- helpers


def test_metric_path_points_at_the_module_files():
    for name in AVAILABLE_METRICS:
        path = metric_path(name)
        assert os.path.isabs(path) and os.path.isfile(path) and path.endswith(f"{name}.py")


def test_metric_path_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown metric 'rouge'.*available: accuracy"):
        metric_path("rouge")


def test_modules_load_offline_from_a_copy_without_the_package(tmp_path):
    """Each file needs only `common.py` beside it: copied elsewhere, it loads offline with an empty cache (evaluate
    copies the sibling it imports) and never imports us."""
    pytest.importorskip("evaluate", reason="the metric modules need the optional `evaluate` package")
    for name in (*AVAILABLE_METRICS, "common"):
        shutil.copy(os.path.join(os.path.dirname(metric_path("accuracy")), f"{name}.py"), tmp_path / f"{name}.py")
    script = textwrap.dedent(
        f"""
        import sys, evaluate
        for name in {list(AVAILABLE_METRICS)!r}:
            metric = evaluate.load({str(tmp_path)!r} + "/" + name + ".py")
            assert isinstance(metric, evaluate.Metric), name
        result = evaluate.load({str(tmp_path)!r} + "/accuracy.py").compute(predictions=[1, 2], references=[1, 1])
        assert result == {{"accuracy": 0.5}}, result
        assert not any(module.startswith("uniperceiver_hf") for module in sys.modules)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("name", AVAILABLE_METRICS)
def test_info_is_documented(metrics, name):
    info = metrics[name].info
    assert info.description.strip() and info.citation.strip() and info.inputs_description.strip()
    assert set(info.features) == {"predictions", "references"}


@pytest.mark.parametrize(
    "name, predictions, references",
    [
        ("accuracy", [1, 2], [1]),
        ("recall_at_k", [[0] * 10, [1] * 10], [[0]]),
        ("vqa_accuracy", ["yes"], [["yes"] * 10, ["no"] * 10]),
        ("bleu", ["a b", "c d"], [["a b"]]),
        ("cider", ["a b"], [["a b"], ["c d"]]),
    ],
)
def test_mismatched_lengths_are_rejected(metrics, name, predictions, references):
    with pytest.raises(ValueError, match="Mismatch in the number of predictions"):
        metrics[name].compute(predictions=predictions, references=references)


@pytest.mark.parametrize("name", AVAILABLE_METRICS)
def test_empty_input_is_rejected(metrics, name):
    with pytest.raises(ValueError, match="at least one"):
        metrics[name].compute(predictions=[], references=[])


# --------------------------------------------------------------------------------------------- accuracy


def test_accuracy(metrics):
    assert metrics["accuracy"].compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1]) == {"accuracy": 0.75}
    assert metrics["accuracy"].compute(predictions=[3], references=[3]) == {"accuracy": 1.0}
    assert metrics["accuracy"].compute(predictions=[0, 0], references=[1, 2]) == {"accuracy": 0.0}


def test_accuracy_accumulates_batches(metrics):
    accuracy = metrics["accuracy"]
    accuracy.add_batch(predictions=[0, 1], references=[0, 0])
    accuracy.add_batch(predictions=[2, 2, 2], references=[2, 2, 1])
    assert accuracy.compute() == {"accuracy": pytest.approx(3 / 5)}


# ------------------------------------------------------------------------------------------ recall@K


def test_recall_at_k_counts_a_hit_when_any_correct_item_is_in_the_top_k(metrics):
    # Image-to-text: each image has 5 correct captions; its best one ranks 1st, 3rd, 7th and 12th (past 10).
    captions = [[5 * i + j for j in range(5)] for i in range(4)]
    ranked = []
    for query, best_rank in enumerate([0, 2, 6, 11]):
        wrong = [c for c in range(100) if c not in captions[query]][:best_rank]
        ranked.append(wrong + [captions[query][4]] + captions[query][:4] + list(range(90, 90 + 20)))
    result = metrics["recall_at_k"].compute(predictions=ranked, references=captions)
    assert result == {"recall@1": 0.25, "recall@5": 0.5, "recall@10": 0.75}


def test_recall_at_k_custom_cutoffs(metrics):
    result = metrics["recall_at_k"].compute(predictions=[[3, 1, 2], [0, 2, 1]], references=[[1, 4], [1]], k=[1, 2, 3])
    assert result == {"recall@1": 0.0, "recall@2": 0.5, "recall@3": 1.0}


def test_recall_at_k_larger_than_the_ranked_list_is_an_error(metrics):
    with pytest.raises(ValueError, match=r"k=10 is larger than the ranked list of query 1 \(3 entries\)"):
        metrics["recall_at_k"].compute(predictions=[list(range(10)), [0, 1, 2]], references=[[0], [1]])


@pytest.mark.parametrize("k", [[], [0, 1], [1.5]])
def test_recall_at_k_rejects_bad_cutoffs(metrics, k):
    with pytest.raises(ValueError, match="k must be a non-empty list of integers >= 1"):
        metrics["recall_at_k"].compute(predictions=[[0, 1]], references=[[0]], k=k)


def test_recall_at_k_rejects_a_query_without_correct_item(metrics):
    with pytest.raises(ValueError, match="references of query 0 is empty"):
        metrics["recall_at_k"].compute(predictions=[[0, 1]], references=[[]], k=[1])


# ------------------------------------------------------------------------------------------------- VQA


@pytest.mark.parametrize(
    "matches, expected",
    # Leave-one-out over 10 annotators: with m matches, the m subsets without a match see m-1 and the
    # other 10-m see m, so acc = (m * min(1, (m-1)/3) + (10-m) * min(1, m/3)) / 10.
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)],
)
def test_vqa_accuracy_leave_one_out(metrics, matches, expected):
    answers = ["2"] * matches + ["3"] * (10 - matches)
    result = metrics["vqa_accuracy"].compute(predictions=["2"], references=[answers])
    assert result["vqa_accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "prediction, annotator_answer",
    [
        ("Two", "2"),  # number words become digits
        ("A T-shirt.", "t shirt"),  # articles dropped, hyphen to space, final period dropped
        ("dont", "don't"),  # contraction restored
        ("1,000", "1000"),  # comma inside a number dropped
        ("Yes!\n", "yes"),  # case, punctuation, whitespace
        ("the  red, car", "red car"),
    ],
)
def test_vqa_accuracy_normalises_answers(metrics, prediction, annotator_answer):
    result = metrics["vqa_accuracy"].compute(predictions=[prediction], references=[[annotator_answer] * 10])
    assert result["vqa_accuracy"] == pytest.approx(1.0)


def test_vqa_accuracy_keeps_decimal_points(metrics):
    result = metrics["vqa_accuracy"].compute(predictions=["3.5"], references=[["35"] * 10])
    assert result == {"vqa_accuracy": 0.0}


def test_vqa_accuracy_is_the_mean_over_questions(metrics):
    result = metrics["vqa_accuracy"].compute(
        predictions=["yes", "cat", ""],
        references=[["yes"] * 10, ["cat", "cat"] + ["dog"] * 8, ["blue"] * 10],
    )
    assert result["vqa_accuracy"] == pytest.approx((1.0 + 0.6 + 0.0) / 3)


def test_vqa_accuracy_needs_two_answers_per_question(metrics):
    with pytest.raises(ValueError, match="references of question 1 has 1 answer"):
        metrics["vqa_accuracy"].compute(predictions=["yes", "no"], references=[["yes", "yes"], ["no"]])


# ------------------------------------------------------------------------------------------------ BLEU


def independent_bleu(predictions, references):
    """A second, deliberately different computation of COCO corpus BLEU-1..4 (lists, list.count, logs)."""

    def words(text):
        return "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()

    def grams(tokens, n):
        return [tokens[i : i + n] for i in range(len(tokens) - n + 1)]

    clipped, total, cand_len, ref_len = [0] * 4, [0] * 4, 0, 0
    for prediction, refs in zip(predictions, references, strict=True):
        cand, refs = words(prediction), [words(ref) for ref in refs]
        cand_len += len(cand)
        ref_len += len(sorted(refs, key=lambda ref: (abs(len(ref) - len(cand)), len(ref)))[0])
        for n in range(1, 5):
            cand_grams = grams(cand, n)
            total[n - 1] += len(cand_grams)
            for gram in [g for i, g in enumerate(cand_grams) if g not in cand_grams[:i]]:
                best_ref = max(grams(ref, n).count(gram) for ref in refs)
                clipped[n - 1] += min(cand_grams.count(gram), best_ref)
    log_bp = min(0.0, 1 - ref_len / cand_len)
    return [math.exp(log_bp + sum(math.log(clipped[i] / total[i]) for i in range(n)) / n) for n in range(1, 5)]


def bleu_list(result):
    return [result[f"bleu_{n}"] for n in range(1, 5)]


def test_bleu_by_hand(metrics):
    # Candidate (6 words) against 2 references; the closest reference length is 6, so no brevity penalty.
    # 1-grams: the(2, clipped by ref 1's 2), cat, on, mat match, sat does not -> 5/6.
    # 2-grams: "the cat", "on the", "the mat" of 5 -> 3/5.  3-grams: "on the mat" of 4 -> 1/4.  4-grams: 0/3.
    result = metrics["bleu"].compute(
        predictions=["The cat sat on the mat."],
        references=[["the cat is on the mat", "there is a cat on the mat"]],
    )
    expected = [5 / 6, math.sqrt(5 / 6 * 3 / 5), (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3), 0.0]
    assert bleu_list(result) == pytest.approx(expected)
    assert expected[1:3] == pytest.approx([math.sqrt(0.5), 0.5])


def test_bleu_brevity_penalty_uses_the_closest_reference_shorter_on_a_tie(metrics):
    # 3 words, references of 2 and 4 words: tie, so r = 2 and no penalty (the 4-word one would give exp(-1/3)).
    result = metrics["bleu"].compute(predictions=["a b c"], references=[["a b", "a b c d"]])
    assert bleu_list(result) == pytest.approx([1.0, 1.0, 1.0, 0.0])
    # 2 words against a 6-word reference: every precision is 1, BP = exp(1 - 6/2); no 3-gram at all -> 0.
    result = metrics["bleu"].compute(predictions=["the cat"], references=[["the cat is on the mat"]])
    assert bleu_list(result) == pytest.approx([math.exp(-2), math.exp(-2), 0.0, 0.0])


def test_bleu_prediction_longer_than_references(metrics):
    # No brevity penalty; precisions 3/6, 2/5, 1/4, 0/3.
    result = metrics["bleu"].compute(predictions=["a b c d e f"], references=[["a b c"]])
    assert bleu_list(result) == pytest.approx([0.5, math.sqrt(0.5 * 0.4), (0.5 * 0.4 * 0.25) ** (1 / 3), 0.0])


def test_bleu_sums_counts_over_the_corpus(metrics):
    # Corpus precisions, not per-sentence averages: p1 = (2 + 2) / (2 + 4), p2 = (1 + 0) / (1 + 3).
    result = metrics["bleu"].compute(predictions=["a b", "c d e f"], references=[["a b"], ["c x e y"]])
    assert bleu_list(result)[:2] == pytest.approx([2 / 3, math.sqrt(2 / 3 * 1 / 4)])


def test_bleu_empty_prediction(metrics):
    assert bleu_list(metrics["bleu"].compute(predictions=[""], references=[["a dog"]])) == [0.0] * 4
    # In a corpus, an empty candidate adds its shortest reference to r: BP = exp(1 - (4 + 2) / 4).
    result = metrics["bleu"].compute(predictions=["a b c d", ""], references=[["a b c d"], ["x y", "x y z"]])
    assert bleu_list(result) == pytest.approx([math.exp(-0.5)] * 4)


def test_bleu_matches_an_independent_computation_on_a_random_corpus(metrics):
    rng = random.Random(0)
    vocab = ["a", "Dog", "runs,", "grass."]

    def sentence(low):
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(low, 9)))

    predictions = [sentence(0) for _ in range(30)]
    references = [[sentence(1) for _ in range(rng.randint(1, 5))] for _ in range(30)]
    result = metrics["bleu"].compute(predictions=predictions, references=references)
    expected = independent_bleu(predictions, references)
    assert min(expected) > 0.05  # every order has matches, so the comparison is meaningful
    assert bleu_list(result) == pytest.approx(expected, rel=1e-12)


def test_bleu_rejects_a_prediction_without_reference(metrics):
    with pytest.raises(ValueError, match="references of prediction 0 is empty"):
        metrics["bleu"].compute(predictions=["a dog"], references=[[]])


# ------------------------------------------------------------------------------------------------ CIDEr


def test_cider_identical_captions_with_distinct_vocabularies_score_10(metrics):
    # Each n-gram occurs in one image's references: idf = log(2) everywhere, every cosine is 1, no length gap.
    result = metrics["cider"].compute(
        predictions=["A dog runs fast.", "two cats sleep here"],
        references=[["a dog runs fast"], ["Two cats sleep here!"]],
    )
    assert result["cider"] == pytest.approx(10.0)


def test_cider_partial_overlap_by_hand(metrics):
    # 2 images, so every n-gram weight is log(2) (df is 1 for reference n-grams, 0 -> max(1, 0) otherwise).
    # Image 1, "a b c" vs "a b d": cosine 2/3 (1-grams), 1/2 (2-grams), 0, 0 (no 4-gram) -> 10 * (7/6) / 4.
    # Image 2, identical 3-word captions: 1, 1, 1, 0 -> 10 * 3 / 4.
    result = metrics["cider"].compute(predictions=["a b c", "e f g"], references=[["a b d"], ["e f g"]])
    assert result["cider"] == pytest.approx((10 * 7 / 24 + 7.5) / 2)


def test_cider_clips_counts_and_penalises_length(metrics):
    # Image 1, "a b a b" vs "a b": 1-grams: clipped dot 2 / (sqrt(8) * sqrt(2)) = 1/2; 2-grams ab (x2), ba vs
    # ab: 1 / (sqrt(5) * 1); no 3-gram or 4-gram in the reference; length gap 2 -> exp(-4 / 72).
    # Image 2, "c d" vs "c d": 1, 1, 0, 0 -> 10 * 2 / 4 = 5.
    result = metrics["cider"].compute(predictions=["a b a b", "c d"], references=[["a b"], ["c d"]])
    image_1 = 10 * (1 / 2 + 1 / math.sqrt(5)) / 4 * math.exp(-4 / 72)
    assert result["cider"] == pytest.approx((image_1 + 5) / 2)


def test_cider_averages_over_references(metrics):
    # Image 1 matches one of its 2 references exactly (1, 1, 0, 0 -> 5) and the other not at all (0).
    result = metrics["cider"].compute(predictions=["a b", "c d"], references=[["a b", "x y"], ["c d"]])
    assert result["cider"] == pytest.approx(((5 + 0) / 2 + 5) / 2)


def test_cider_ngrams_shared_by_every_image_weigh_nothing(metrics):
    # A corpus of one image (idf = log 1 - log 1 = 0), or captions made only of words every image has.
    assert metrics["cider"].compute(predictions=["a b"], references=[["a b"]]) == {"cider": 0.0}
    result = metrics["cider"].compute(predictions=["a", "a"], references=[["a"], ["a"]])
    assert result == {"cider": 0.0}


def test_cider_empty_prediction(metrics):
    result = metrics["cider"].compute(predictions=["", "c d"], references=[["a b"], ["c d"]])
    assert result["cider"] == pytest.approx((0 + 5) / 2)


def test_cider_rejects_a_prediction_without_reference(metrics):
    with pytest.raises(ValueError, match="references of prediction 1 is empty"):
        metrics["cider"].compute(predictions=["a", "b"], references=[["a"], []])
