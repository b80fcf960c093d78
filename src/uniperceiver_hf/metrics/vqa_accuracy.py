"""VQA soft accuracy: an answer is fully right when at least 3 of the annotators gave it.

A standalone `evaluate` module (load it with `evaluate.load(path_to_this_file)`), implementing the
accuracy of the VQA benchmark (VQA v1/v2) so that Uni-Perceiver's VQA results can be scored offline.
"""

import re

import evaluate

from .common import TEXT_AGAINST_REFERENCES, metric_card


_DESCRIPTION = """\
The standard VQA accuracy. Each question has several (in VQA v2: 10) human answers. For a predicted answer,
accuracy = min(1, #annotators who gave that answer / 3), averaged over the 10 ways of leaving one annotator
out (so that it is comparable with human performance): a prediction matching 0, 1, 2, 3 or >= 4 of 10
annotators scores 0, 0.3, 0.6, 0.9 or 1. The result is the mean over questions, as a fraction in [0, 1]
(papers print it as a percentage).

Before comparison, predictions and annotator answers go through the same normalisation, modelled on the
official VQA evaluation script:
  1. lower-case; newlines and tabs become spaces;
  2. commas inside numbers are dropped ("1,000" -> "1000");
  3. periods are dropped unless a digit follows ("3.5" stays, "dog." -> "dog");
  4. the characters ; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? ! become spaces ("t-shirt" -> "t shirt");
     apostrophes and colons are kept ("don't", "2:30");
  5. number words zero to ten (and "none") become digits, the articles a, an, the are removed, and common
     contractions written without their apostrophe get it back ("dont" -> "don't");
  6. whitespace is collapsed.
The official script normalises less (annotator answers only get the punctuation steps, and nothing is
normalised for a question whose annotators all agree); here both sides are always normalised identically,
so e.g. "Two" matches "2" in every case.
"""

_CITATION = """\
@inproceedings{antol2015vqa,
  title={{VQA}: Visual Question Answering},
  author={Antol, Stanislaw and Agrawal, Aishwarya and Lu, Jiasen and Mitchell, Margaret and Batra, Dhruv and
          Zitnick, C. Lawrence and Parikh, Devi},
  booktitle={Proceedings of the IEEE International Conference on Computer Vision},
  year={2015}
}
@inproceedings{goyal2017making,
  title={Making the {V} in {VQA} Matter: Elevating the Role of Image Understanding in Visual Question Answering},
  author={Goyal, Yash and Khot, Tejas and Summers-Stay, Douglas and Batra, Dhruv and Parikh, Devi},
  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},
  year={2017}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): the predicted answer per question.
    references (`list` of `list` of `str`): per question, all the annotators' answers (usually 10,
        repeats included: each annotator counts).

Returns:
    vqa_accuracy (`float`): mean soft accuracy, a fraction in [0, 1].

Raises:
    ValueError: when a question has fewer than 2 annotator answers (leaving one out would leave none), or
        there are no questions.

Example:
    >>> vqa = evaluate.load("path/to/vqa_accuracy.py")
    >>> vqa.compute(predictions=["Two"], references=[["2", "2"] + ["3"] * 8])
    {'vqa_accuracy': 0.6}
"""

_PUNCTUATION = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!]")
_COMMA_IN_NUMBER = re.compile(r"(?<=\d),(?=\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = {"a", "an", "the"}
# Contractions typed without the apostrophe; words that are also ordinary English ("ill", "shed", "its",
# "well", "were", "wed", ...) are deliberately left out.
_CONTRACTIONS = {
    word.replace("'", ""): word
    for word in (
        "ain't aren't can't couldn't could've didn't doesn't don't hadn't hasn't haven't he's he'll i'm i've "
        "isn't it'll mightn't might've mustn't must've needn't shan't she's shouldn't should've that's there's "
        "they'd they'll they're they've wasn't we've weren't what's where's who's won't wouldn't would've "
        "you'd you'll you're you've"
    ).split()
}


def normalize_answer(answer: str) -> str:
    """Normalise one answer as described in the module description."""
    text = answer.lower().replace("\n", " ").replace("\t", " ")
    text = _COMMA_IN_NUMBER.sub("", text)
    text = _PERIOD_NOT_BEFORE_DIGIT.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    words = (_NUMBER_WORDS.get(word, word) for word in text.split())
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def soft_accuracy(prediction: str, answers: list) -> float:
    """Mean over leave-one-annotator-out subsets of min(1, #matches among the others / 3)."""
    prediction = normalize_answer(prediction)
    matches = [normalize_answer(answer) == prediction for answer in answers]
    total = sum(matches)
    return sum(min(1.0, (total - match) / 3) for match in matches) / len(matches)


@metric_card(
    _DESCRIPTION,
    _CITATION,
    _KWARGS_DESCRIPTION,
    TEXT_AGAINST_REFERENCES,
    reference_urls=("https://visualqa.org/evaluation.html",),
)
class VqaAccuracy(evaluate.Metric):
    """The VQA benchmark's soft accuracy over normalised answers."""

    def _compute(self, predictions, references):
        if not predictions:
            raise ValueError("vqa_accuracy needs at least one question, got none")
        scores = []
        for question, (prediction, answers) in enumerate(zip(predictions, references, strict=True)):
            if len(answers) < 2:
                raise ValueError(
                    f"references of question {question} has {len(answers)} answer(s): the leave-one-out VQA "
                    f"accuracy needs at least 2 annotator answers per question"
                )
            scores.append(soft_accuracy(prediction, answers))
        return {"vqa_accuracy": sum(scores) / len(scores)}
