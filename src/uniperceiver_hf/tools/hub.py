"""Hub model cards and push-ready folders for Uni-Perceiver models (issue 8, "MODEL_CARD.md and Hub export").

- `default_model_card(claims, model_name)`: the card of the package's own default model. Every measured row of
  `claims.json` (written by `examples/evaluate_default_model.py`) goes into the `model-index` and into a table with
  chance beside it.
- `converted_model_card(checkpoint, config)`: the card the converter writes for an official checkpoint. Its results
  are the authors' (the paper's tables, the official README), quoted with their source; none are ours.
- `prepare_hub_folder(model_dir_or_model, output_dir, card)`: weights, config (`auto_map`, `custom_pipelines`), the
  remote-code files, the processor files and README.md, ready for `huggingface_hub.upload_folder`.

    uniperceiver-hf export hub --model DIR --output DIR [--claims claims.json | --converted NAME]

A claims JSON is `{"command": str, "rows": [row, ...]}`; a row is `{"task": str, "setting": str (optional),
"metric": str, "value": float, "chance": float | None, "section": str, "n": int (optional), "chance_kind": str
(optional), "task_type": str (optional Hub task id), "details": str (optional: how a tuned setting was run, shown
beside its draws)}`. Values and chance levels are fractions, except the raw `bleu` and `cider` scores.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..configuration_uniperceiver import PRESETS, UniPerceiverConfig
from ..modeling_uniperceiver import UniPerceiverModel
from ..moe_uniperceiver import moe_parameter_counts
from ..pipeline_uniperceiver import save_for_pipeline
from ..processing_uniperceiver import UniPerceiverProcessor


DESCRIPTION = __doc__.splitlines()[0]
PAPER_URL = "https://arxiv.org/abs/2112.01522"
MOE_PAPER_URL = "https://arxiv.org/abs/2206.04674"
OFFICIAL_REPO = "https://github.com/fundamentalvision/Uni-Perceiver"
PIPELINE_TAG = "zero-shot-image-classification"  # the Hub's closest tag; the package registers "zero-shot-perception"
TAGS = [
    "uni-perceiver",
    "multimodal",
    "zero-shot",
    "zero-shot-perception",
    "image-classification",
    "video-classification",
    "image-captioning",
    "visual-question-answering",
    "retrieval",
    "custom_code",
]
CORPUS = "emoji-digits-fortunes"  # the name `examples/data/build_corpus.py` gives its corpus
DEFAULT_MODEL_NAME = "uniperceiver-tiny-emoji"
RAW_METRICS = ("bleu", "cider")  # reported as scores, not as fractions shown in per cent
TRAIN_COMMANDS = (
    "python examples/data/build_corpus.py --output data/corpus --renders 6 --digit-renders 8 --videos-per-class 300\n"
    "python examples/pretrain.py --recipe examples/recipes/default_model.yaml --output-dir runs/default"
)
CITATION = """@article{zhu2021uni,
  title={Uni-Perceiver: Pre-training Unified Architecture for Generic Perception for Zero-shot and Few-shot Tasks},
  author={Zhu, Xizhou and Zhu, Jinguo and Li, Hao and Wu, Xiaoshi and Wang, Xiaogang and Li, Hongsheng and \
Wang, Xiaohua and Dai, Jifeng},
  journal={arXiv preprint arXiv:2112.01522},
  year={2021}
}"""

# Reported by the authors, never measured here: (benchmark, metric, without tuning, prompt tuning on 1 % of the
# data, fine-tuning on 100 %, where). The paper's tables are for its BASE model (section 4.2).
PAPER_RESULTS = (
    ("ImageNet-1k", "Acc@1", 78.0, 80.2, 83.8, "Table 2"),
    ("Kinetics-400", "Acc", 73.5, 73.6, 75.8, "Table 2"),
    ("Flickr30k text retrieval", "R@1", 74.8, 84.4, 87.9, "Table 3"),
    ("Flickr30k image retrieval", "R@1", 65.8, 71.1, 74.9, "Table 3"),
    ("COCO Caption", "BLEU-4", 33.6, 34.3, 35.6, "Table 4"),
    ("COCO Caption", "CIDEr", 109.8, 109.6, 116.5, "Table 4"),
    ("MSVD video retrieval (novel task)", "R@1", 34.6, 42.6, 45.4, "Table 6"),
    ('VQA v2 test-dev, "Others" questions (novel task)', "Acc", 25.5, 57.7, 61.8, "Table 7"),
    ("GLUE SST-2 (novel task)", "Acc", 70.6, 80.9, 90.2, "Table 8"),
)
# The official README's "Main Results" (commit 0ee707f), at 224x224: a reproduced Uni-Perceiver, the baseline of
# Uni-Perceiver-MoE, whose numbers the README says are slightly better than the paper's.
README_RESULTS = {
    "base": (
        ("ImageNet-1k (ILSVRC 2012 val)", "Acc@1", 79.2, 80.9, 84.0),
        ("MSCOCO caption (Karpathy test)", "BLEU-4", 32.0, 35.5, 36.4),
        ("MSCOCO retrieval (Karpathy test)", "R@1 image->text", 64.9, 68.4, 69.8),
        ("MSCOCO retrieval (Karpathy test)", "R@1 text->image", 50.7, 51.9, 53.9),
        ("Flickr30k retrieval (test)", "R@1 image->text", 82.3, 91.0, 92.7),
        ("Flickr30k retrieval (test)", "R@1 text->image", 71.1, 76.0, 77.5),
        ("Kinetics-400", "Acc@1", 74.5, 74.8, 77.7),
        ("MSVD caption (val)", "BLEU-4", 22.6, 59.5, 63.3),
    ),
    "large": (
        ("ImageNet-1k (ILSVRC 2012 val)", "Acc@1", 82.7, 84.2, 86.2),
        ("MSCOCO caption (Karpathy test)", "BLEU-4", 35.3, 38.6, 39.2),
        ("MSCOCO retrieval (Karpathy test)", "R@1 image->text", 67.8, 73.3, 74.4),
        ("MSCOCO retrieval (Karpathy test)", "R@1 text->image", 54.1, 56.2, 57.9),
        ("Flickr30k retrieval (test)", "R@1 image->text", 83.7, 92.1, 94.7),
        ("Flickr30k retrieval (test)", "R@1 text->image", 74.2, 80.0, 82.1),
        ("Kinetics-400", "Acc@1", 79.5, 80.0, 81.9),
        ("MSVD caption (val)", "BLEU-4", 24.7, 67.2, 68.3),
    ),
}

# -- claims --------------------------------------------------------------------------------------------------------


def _check_claims(claims: dict) -> list[dict]:
    """The rows of a claims dict, after checking every field the card reads."""
    if not isinstance(claims, dict) or not isinstance(claims.get("command"), str) or not claims["command"].strip():
        raise ValueError("`claims` must be a dict with a non-empty 'command' string and a 'rows' list.")
    rows = claims.get("rows")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"`claims['rows']` must be a non-empty list of measured rows, got {rows!r}.")
    seen = set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"`claims['rows'][{index}]` must be a dict, got {type(row).__name__}.")
        missing = [key for key in ("task", "metric", "value", "chance", "section") if key not in row]
        if missing:
            raise ValueError(
                f"`claims['rows'][{index}]` lacks {missing}: every row needs task, metric, value, "
                "chance (None where there is none) and section."
            )
        value, chance = row["value"], row["chance"]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"`claims['rows'][{index}]['value']` must be a finite number, got {value!r}.")
        if row["metric"] not in RAW_METRICS and not 0 <= value <= 1:
            raise ValueError(
                f"`claims['rows'][{index}]['value']` is {value!r}: a {row['metric']!r} value must be "
                "a fraction in [0, 1]."
            )
        if chance is not None and (not isinstance(chance, (int, float)) or not 0 <= chance <= 1):
            raise ValueError(
                f"`claims['rows'][{index}]['chance']` must be a fraction in [0, 1] or None, got {chance!r}."
            )
        details = row.get("details")
        if details is not None and (not isinstance(details, str) or not details.strip()):
            raise ValueError(f"`claims['rows'][{index}]['details']` must be a non-empty string, got {details!r}.")
        key = (_title(row), row["metric"])
        if key in seen:
            raise ValueError(f"`claims['rows']` measures {key[1]!r} of {key[0]!r} twice.")
        seen.add(key)
    return rows


def _title(row: dict) -> str:
    return row["task"] + (f" ({row['setting']})" if row.get("setting") else "")


def _format_value(metric: str, value: float) -> str:
    return f"{value:.3f}" if metric in RAW_METRICS else f"{100 * value:.1f}%"


def _format_chance(row: dict) -> str:
    if row["chance"] is None:
        return "-"
    return f"{100 * row['chance']:.1f}%" + (f" ({row['chance_kind']})" if row.get("chance_kind") else "")


def _task_type(row: dict) -> str:
    """The Hub task id of a row: its own `task_type`, else guessed from its words (classification and retrieval
    against texts or exemplar images are zero-shot image classification)."""
    if row.get("task_type"):
        return row["task_type"]
    words = row["task"].lower()
    if "caption" in words:
        return "image-to-text"
    if "vqa" in words or "question" in words:
        return "visual-question-answering"
    if any(word in words for word in ("motion", "video", "clip")):
        return "video-classification"
    return PIPELINE_TAG


def _eval_result(row: dict) -> EvalResult:
    """One row as a model-index entry. The Hub groups entries by task type and dataset config, so the config is
    the row's own title: every row keeps its name, and rows of one title with different metrics share an entry."""
    title = _title(row)
    chance = "" if row["chance"] is None else f", chance {_format_chance(row)}"
    return EvalResult(
        task_type=_task_type(row),
        task_name=title,
        dataset_type=CORPUS,
        dataset_name=f"{CORPUS} ({row['section']})",
        dataset_config=re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
        dataset_split="train" if row["section"] == "fit" else "test",  # "fit" rows score items pre-training saw
        metric_type=row["metric"],
        metric_name=f"{row['metric']}{chance}",
        metric_value=round(float(row["value"]), 4),
    )


def _findings(rows: list[dict]) -> str:
    """Which rows beat their chance level clearly (2x or more) and which do not (under 1.5x), said plainly."""

    def titles(keep) -> str:
        chosen = [_title(row) for row in rows if row["chance"] and keep(row["value"] / row["chance"])]
        return "; ".join(dict.fromkeys(chosen)) or "none"

    return (
        f"At least twice the chance level: {titles(lambda ratio: ratio >= 2)}. Under 1.5 times the chance level, "
        f"so not shown by this model: {titles(lambda ratio: ratio < 1.5)}."
    )


# The paper's claims about a novel task (Tables 2-9), as (claim, better setting, worse setting, margin in points).
PAPER_CLAIMS = (
    ("prompt tuning on 1 % of the data beats zero-shot by 20 points or more", "prompt tuning, 1% of the data",
     "zero-shot", 20.0),
    ("fine-tuning on 10 % of the data beats prompt tuning on 1 %", "fine-tuning, 10% of the data",
     "prompt tuning, 1% of the data", 0.0),
)  # fmt: skip


def _paper_claims(rows: list[dict]) -> str:
    """A table of the paper's claims about the novel task, each with its measured numbers and whether it holds at
    this scale; nothing when the claims hold no novel-task rows."""
    lines = []
    for task in dict.fromkeys(row["task"] for row in rows if row.get("section") == "novel task"):
        by_setting = {row.get("setting"): row for row in rows if row["task"] == task}
        for claim, better, worse, margin in PAPER_CLAIMS:
            if better in by_setting and worse in by_setting:
                high, low = by_setting[better], by_setting[worse]
                gain = 100 * (high["value"] - low["value"])
                holds = "yes" if gain >= margin and gain > 0 else "no"
                lines.append(
                    f"| {task}: {claim} | {_with_draws(high)} vs {_with_draws(low)} ({gain:+.1f} points) | {holds} |"
                )
    if not lines:
        return ""
    return "\n" + "\n".join(["| the paper's claim | measured | holds here |", "|---|---|---|", *lines]) + "\n"


def _with_draws(row: dict) -> str:
    """A row's value, and the range of its draws when it is a mean over several."""
    value = f"{100 * row['value']:.1f}%"
    draws = row.get("draws") or []
    if len(draws) > 1:
        value += f" (mean of {len(draws)} draws, {100 * min(draws):.1f}-{100 * max(draws):.1f}%)"
    return value


def _draws(rows: list[dict]) -> tuple[list[dict], int]:
    """The rows that are means over several draws (tuned novel-task settings), and the most draws of any."""
    tuned = [row for row in rows if row.get("draws")]
    return tuned, max((len(row["draws"]) for row in tuned), default=0)


def _draws_note(rows: list[dict]) -> str:
    tuned, count = _draws(rows)
    return f", except the tuned novel-task rows, each a mean over {count} draws" if tuned else ""


def _results_table(rows: list[dict]) -> str:
    lines = ["| section | task | metric | result | chance | n |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['section']} | {_title(row)} | {row['metric']} | "
            f"{_format_value(row['metric'], row['value'])} | {_format_chance(row)} | {row.get('n', '-')} |"
        )
    return "\n".join(lines)


# -- shared card text ----------------------------------------------------------------------------------------------


def _architecture(config: UniPerceiverConfig | None) -> str:
    if config is None:
        return "Its sizes are in `config.json`."
    return (
        f"{config.num_hidden_layers} layers x {config.hidden_size} hidden, {config.num_attention_heads} heads, "
        f"FFN {config.intermediate_size}; {config.image_size}x{config.image_size} images in "
        f"{config.patch_size}x{config.patch_size} patches, {config.num_frames} video frames, "
        f"{config.vocab_size:,} text ids (CLIP BPE plus `<|mask|>`, `<|gen|>`, `<|spe|>`)."
    )


def _moe_section(config: UniPerceiverConfig) -> str:
    """What an MoE checkpoint holds and what it costs: total and per-task deployment parameters."""
    if not config.is_moe:
        return ""
    with torch.device("meta"):  # counts only: no memory, no initialisation
        counts = moe_parameter_counts(UniPerceiverModel(config))
    return (
        f"\n\nThis is a **Uni-Perceiver-MoE** checkpoint (Zhu et al., NeurIPS 2022): layers {config.moe_layers} have "
        f"{config.num_experts} experts in their {' and '.join(config.moe_sublayers)} linears, and a gate that reads "
        f"the *task* attribute (not the tokens) picks the top {config.moe_top_k} per attribute row; those experts are "
        f"merged into one linear. Stored parameters: **{counts['total'] / 1e6:.1f}M**. At deployment a task needs the "
        f"merged copy of each of its attribute rows: **{counts['deployment_per_row'] / 1e6:.1f}M** for one row "
        f"(image or video classification inputs, text classification inputs, ...), **"
        f"{(counts['deployment_per_row'] + counts['merged_copy']) / 1e6:.1f}M** for image-text tasks with two rows "
        "(retrieval, captioning, classification against label names), the figure the authors quote "
        '("167M at deployment" for MoE BASE). Every path of the model supplies the right attribute '
        "(`attribute=` / `target_attribute=` override it); VQA has no attribute in the official code and is refused."
    )


def _moe_limitation(config: UniPerceiverConfig) -> str:
    if not config.is_moe:
        return ""
    return (
        "- Uni-Perceiver-MoE: VQA is refused (the official code has no task attribute for it), and tasks outside the "
        "official attribute table need an explicit `attribute`.\n"
    )


def _usage(model_id: str, image: str, labels: list, motions: list, question: str, answers: list) -> str:
    """The "How to use" section: remote code, the Auto classes, and the registered pipeline with the package."""
    return f"""```python
from transformers import AutoModel, AutoProcessor, pipeline

# Without the uniperceiver-hf package: the model's code ships in this repository.
classify = pipeline(model="{model_id}", trust_remote_code=True)
classify("{image}", candidate_labels={labels!r})

model = AutoModel.from_pretrained("{model_id}", trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained("{model_id}", trust_remote_code=True)
inputs = processor(images=["{image}"], targets={labels!r}, return_tensors="pt")
probabilities = model(**inputs).logits.softmax(-1)

# With uniperceiver-hf installed (`pip install -e .` in its repository), no remote code is run:
import uniperceiver_hf  # registers the Auto classes and the "zero-shot-perception" pipeline
classify = pipeline("zero-shot-perception", model="{model_id}")
classify("clip.mp4", candidate_labels={motions!r})  # videos: 3 crops averaged
classify({{"image": "{image}", "question": "{question}"}}, candidate_labels={answers!r})  # VQA
classify.caption("{image}")  # captioning, beam 2
```

The Hub's `pipeline_tag` is `{PIPELINE_TAG}`, the closest Hub task; the package registers its own task,
`zero-shot-perception`, which takes images, videos, texts, text pairs or image + question inputs against label,
image or video candidates."""


def _card(data: ModelCardData, body: str) -> ModelCard:
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")


# -- the cards -----------------------------------------------------------------------------------------------------


# The pictures a default model's claims may name, beside claims.json: (claims key, alt text, caption).
CLAIMS_PICTURES = (
    ("curves", "Training curves",
     "Training curves of the pre-training run (`{name}`): per-task training loss; the mean pairwise cosine of the "
     "input features (solid) and target features (dashed) of each task's batches, which stays near 1 when a task's "
     "features have collapsed onto one point; and the spread of the logits."),
    ("tuning_curves", "Tuning curves",
     "Tuning on the novel task (`{name}`): each setting's loss on its first draw at its chosen learning rate, and "
     "the validation accuracy by learning rate that chose it."),
)  # fmt: skip


def _curves_section(claims: dict, pictures_dir: str | None = None) -> str:
    """The card's pictures, the ones the claims name (`claims["curves"]`, `claims["tuning_curves"]`: files written
    beside claims.json by `examples/evaluate_default_model.py`); otherwise nothing. The link is the file's name (a
    card beside the picture, as on the Hub), or `pictures_dir/name` for a card kept elsewhere."""
    sections = []
    for key, alt, caption in CLAIMS_PICTURES:
        name = claims.get(key)
        if name is None:
            continue
        if not isinstance(name, str) or not name.strip() or Path(name).name != name:
            raise ValueError(f"`claims[{key!r}]` must be the picture's file name, got {name!r}.")
        link = f"{pictures_dir}/{name}" if pictures_dir else name
        sections.append(f"![{alt}]({link})\n\n{caption.format(name=name)}\n\n")
    return "".join(sections)


def _tuning_table(rows: list[dict]) -> str:
    """The tuned rows' protocol (rows with `draws`): the learning rate chosen on validation and each draw's result;
    nothing when no row has draws."""
    tuned, count = _draws(rows)
    if not tuned:
        return ""
    lines = [
        "| setting | learning rate (validation accuracy of each) | test accuracy of each draw | mean |",
        "|---|---|---|---|",
    ]
    for row in tuned:
        rates = row.get("validation_by_learning_rate", {})
        chosen = ", ".join(
            (f"**{rate}**" if float(rate) == row.get("learning_rate") else rate) + f" ({100 * accuracy:.1f}%)"
            for rate, accuracy in rates.items()
        )
        draws = ", ".join(f"{100 * draw:.1f}%" for draw in row["draws"])
        setting = _title(row) + (f": {row['details']}" if row.get("details") else "")
        lines.append(f"| {setting} | {chosen or '-'} | {draws} | {100 * row['value']:.1f}% |")
    return (
        f"\nThe tuned rows are the mean test accuracy over {count} draws of the few-shot data (seeds 0 to "
        f"{count - 1}), each at the learning rate (in bold) with the best validation accuracy on the first draw:\n\n"
        + "\n".join(lines)
        + "\n"
    )


def default_model_card(
    claims: dict,
    model_name: str,
    config: UniPerceiverConfig | None = None,
    model_id: str | None = None,
    pictures_dir: str | None = None,
) -> ModelCard:
    """The Hub card of the package's default model: every row of `claims` (see the module docstring) in the
    `model-index` and in the results table with chance beside it. `config` adds the sizes; `model_id` is what the
    usage examples load (default: `model_name`); `pictures_dir` is where the card's pictures are, relative to the
    card (default: beside it)."""
    rows = _check_claims(claims)
    if not isinstance(model_name, str) or not model_name.strip():
        raise ValueError(f"`model_name` must be a non-empty string, got {model_name!r}.")
    model_id = model_id or model_name
    metrics = sorted({"recall" if "R@" in row["metric"] else row["metric"] for row in rows})
    data = ModelCardData(
        language="en",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=TAGS,
        datasets=[CORPUS],
        metrics=metrics,
        model_name=model_name,
        eval_results=[_eval_result(r) for r in rows],
    )
    size = "the model's input size" if config is None else f"{config.image_size}x{config.image_size} px"
    usage = _usage(
        model_id,
        "dog.png",
        ["dog face", "red apple", "rocket"],
        ["moving left", "growing"],
        "which group is this in?",
        ["animals & nature", "food & drink"],
    )
    body = f"""
# {model_name}

A small [Uni-Perceiver]({PAPER_URL}) (Zhu et al., CVPR 2022) trained from scratch by
uniperceiver-hf's own scripts on a small offline corpus. One shared Transformer encodes
images, videos and text, and every task is "pick the candidate whose `<SPE>` feature is most similar to the
input's" (paper section 3): classification against label names, image-text and text-text retrieval, captioning
against the vocabulary, question answering against an answer list. {_architecture(config)}
It is the package's default model: a toy-scale demonstration that runs on a CPU, not a port of the released weights.

## Training

From the uniperceiver-hf repository root, with a fixed seed (the recipe targets under an hour on 2 CPU cores):

```bash
{TRAIN_COMMANDS}
```

The corpus (`{CORPUS}`, built offline from system and Python packages, nothing downloaded): colour emoji rendered
from Noto Color Emoji, named and grouped by Unicode's `emoji-test.txt` (names such as "dog face"), varied in scale,
position, background and rotation; scikit-learn's 1,797 handwritten 8x8 digits; short clips of those images moving,
turning, growing or fading, with captions and motion classes; English text from the `fortunes` databases; questions
and answers generated from what is known of each item. Fixed train / validation / test splits; a set of emoji
names and one motion class are held out of pre-training entirely. The recipe
(`examples/recipes/default_model.yaml`) mixes every task type of the paper's pre-training and lists where it
departs from the paper's settings.

## Results (measured)

Every number below was measured on the corpus's test splits by

```bash
{claims["command"]}
```

Results are per cent (BLEU and CIDEr: raw scores); chance is the score of a uniform guess among the candidates
(or the stated baseline).

{_results_table(rows)}
{_tuning_table(rows)}
{_curves_section(claims, pictures_dir)}**What these numbers show.** The paper's formulation runs end to end at toy scale in this code: one encoder,
trained on a mixture of tasks, scores inputs against candidate sets, on the pre-training tasks, on categories and
a motion it never saw in pre-training (the paper's generalisation to novel categories, section 4.4), and on a task
it was never trained on, before and after prompt tuning or fine-tuning on a small fraction of its data (the
structure of the paper's Tables 2-9). {_findings(rows)}
{_paper_claims(rows)}
**What they do not show.** This is a toy-scale model trained for under an hour on a CPU, on synthetic renders,
and it is evaluated on test splits of the same synthetic distribution (one emoji font, 8x8 digits, plain
backgrounds, simple motions). The numbers say nothing about photographs, real videos or open-domain text, and they
are not comparable to the paper's numbers (ImageNet, Kinetics, COCO, ...), which come from a 12-layer model
pre-trained by the authors on tens of millions of images and videos and over a hundred million sentences (paper
Table 1). Each number is one run with one seed, on the test sizes in the `n` column{_draws_note(rows)}.

## Intended uses

Demonstrations, tests and tutorials of Uni-Perceiver's zero-shot formulation on a CPU: classifying emoji-like
images, digits and short synthetic clips against label names, retrieval, captioning and answer-list VQA in the
corpus's domain, and a small base for trying prompt tuning and fine-tuning. Not for decisions about people, safety,
or any real-world use.

## Limitations

- Fixed candidate sets: the model can only pick among the candidates you give it (labels, images, answers or the
  vocabulary); it never produces anything outside them, and its scores are relative to that set.
- Small inputs: images and video frames are resized to {size}, so fine detail is lost.
- A tiny, synthetic corpus: one emoji font, handwritten digits, a few motions and fortune-cookie text. Labels and
  captions are CLDR emoji names and templated sentences.
- English only (the CLIP BPE tokenizer and English names and text). The text is quotations from the fortunes
  databases (their `off/` folder is left out), which may hold dated or biased content.
- No safety, bias or robustness evaluation was done.

## How to use

{usage}

## Data licences

The weights are released under Apache-2.0 (the package's licence). The training data comes from:

- Noto Color Emoji (Debian `fonts-noto-color-emoji`): the font is under the SIL Open Font License 1.1.
- Emoji names and groups (Debian `unicode-data`, `emoji-test.txt`): the Unicode, Inc. License Agreement (Data Files
  and Software), the "Unicode terms".
- Handwritten digits (`sklearn.datasets.load_digits`): scikit-learn's BSD-3-Clause licence.
- English text (Debian `fortunes`, `fortunes-min`): the BSD-style terms of the fortune databases, given in the
  packages' copyright files (`/usr/share/doc/fortunes-min/copyright`).
- The CLIP BPE vocabulary: OpenAI's, MIT.

## Citation

The architecture and formulation are from:

```bibtex
{CITATION}
```
"""
    return _card(data, body)


def _released_size(config: UniPerceiverConfig) -> str | None:
    """`"base"` or `"large"` when the config is a released architecture at 224 px, else None."""
    for name, preset in PRESETS.items():
        sizes = {key: value for key, value in preset.items() if key != "drop_path_rate"}
        if all(getattr(config, key) == value for key, value in sizes.items()) and config.image_size == 224:
            return name
    return None


def _reported_table(rows: tuple, with_table: bool) -> str:
    header = "| benchmark | metric | w/o tuning | prompt tuning, 1 % | fine-tuning, 100 % |"
    lines = [header + (" source |" if with_table else ""), "|---|---|---|---|---|" + ("---|" if with_table else "")]
    for row in rows:
        benchmark, metric, zero, prompt, full = row[:5]
        source = f" {row[5]} |" if with_table else ""
        lines.append(f"| {benchmark} | {metric} | {zero} | {prompt} | {full} |{source}")
    return "\n".join(lines)


def converted_model_card(checkpoint: str, config: UniPerceiverConfig, model_id: str | None = None) -> ModelCard:
    """The card of an official checkpoint converted by `uniperceiver_hf.convert`: the authors' reported results
    (paper and official README, for the released size of `config`), clearly attributed, with uses, limitations
    and usage. `model_id` is what the usage examples load (default: a placeholder path)."""
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ValueError(f"`checkpoint` must be the checkpoint's file name, got {checkpoint!r}.")
    if not isinstance(config, UniPerceiverConfig):
        raise TypeError(f"`config` must be a UniPerceiverConfig, got {type(config).__name__}.")
    size = None if config.is_moe else _released_size(config)
    model_id = model_id or "path/to/converted"
    data = ModelCardData(
        language="en",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=TAGS,
    )
    if config.is_moe:
        reported = (
            f"Uni-Perceiver-MoE results are reported in the MoE paper ([arXiv:2206.04674]({MOE_PAPER_URL}), Tables "
            "2-6) and the official repository's README for the released MoE BASE and LARGE models; see them there. "
            "None is repeated or measured here."
        )
    elif size is None:
        reported = (
            f"The authors report no results for this architecture ({config.num_hidden_layers} layers x "
            f"{config.hidden_size}, {config.image_size} px); their results are for the released BASE and "
            f"LARGE models, see the paper and the [official repository]({OFFICIAL_REPO})."
        )
    else:
        readme = (
            f"From the official repository's README ([fundamentalvision/Uni-Perceiver]({OFFICIAL_REPO}), "
            '"Main Results", '
            f"commit 0ee707f), Uni-Perceiver {size.upper()} at 224x224. The README says these come from a "
            "reproduced Uni-Perceiver used as the baseline of Uni-Perceiver-MoE and are slightly better than "
            f"the paper's:\n\n{_reported_table(README_RESULTS[size], with_table=False)}"
        )
        paper = (
            f'From the paper ([arXiv:2112.01522]({PAPER_URL}), "Ours" rows), its BASE model:\n\n'
            f"{_reported_table(PAPER_RESULTS, with_table=True)}"
            if size == "base"
            else "The paper's tables report the BASE model only."
        )
        reported = f"{paper}\n\n{readme}"
    usage = _usage(
        model_id,
        "cat.jpg",
        ["a cat", "a dog", "a car"],
        ["abseiling", "playing guitar"],
        "what color is the car?",
        ["red", "blue"],
    )
    grid = config.image_size // config.patch_size
    prompt_note = (
        "\n\nThis checkpoint also carries prompt-tuned parameters (deep prompts, `<SPE>` bias or linear "
        "head) for one downstream task; the results above are the authors' numbers for their models, not "
        "for this tuned file."
        if config.num_prompt_tokens or config.num_prompt_classes
        else ""
    )
    body = f"""
# Uni-Perceiver{"-MoE" if config.is_moe else ""}, converted from `{checkpoint}`

The official [Uni-Perceiver]({PAPER_URL}) weights (Zhu et al., CVPR 2022) from `{checkpoint}`, converted to a
native `transformers` model by `python -m uniperceiver_hf.convert`. One shared Transformer encodes images, videos
and text, and every task is "pick the candidate whose `<SPE>` feature is most similar to the input's" (paper
section 3). {_architecture(config)}{_moe_section(config)} The port reproduces the official implementation's outputs (logits within 2e-5
on the project's golden cases); the weights are the authors' and are not changed.

## Results reported by the authors (not measured here)

Every number in this section was reported by the authors; none was measured by uniperceiver-hf on this converted
file, and no benchmark was re-run here. For that reason the card's metadata has no `model-index`.{prompt_note}

{reported}

## Intended uses

Zero-shot and few-shot perception research in the paper's formulation: image and video classification against label
names, image-text and video-text retrieval, captioning, question answering from an answer list, and GLUE-style text
classification; prompt tuning or fine-tuning on a downstream task (see the uniperceiver-hf README).

## Limitations

- Fixed candidate sets: the model can only pick among the candidates you give it (labels, images, answers or the
  vocabulary); its scores are relative to that set.
- {config.image_size}-px inputs only: the spatial position table is fixed at {grid}x{grid} patches; other
  resolutions are not supported.
{_moe_limitation(config)}- English only (CLIP BPE tokenizer). Zero-shot VQA is weak on yes/no and number questions (paper Table 7).
- The authors pre-trained on large web corpora (paper Table 1: ImageNet-21k, Kinetics-700, Moments in Time,
  Books&Wiki, PAQ, CC3M, CC12M, COCO Caption, Visual Genome, SBU, YFCC); the paper notes these may contain data
  biases. No safety evaluation was done by uniperceiver-hf.

## How to use

{usage}

## Licence

The weights are the authors'. The official repository's README states "Uni-Perceiver is licensed under the
Apache-2.0 License"; check its `LICENSE` file at [fundamentalvision/Uni-Perceiver]({OFFICIAL_REPO}) and the
licences of the pre-training datasets (paper appendix) before redistributing. The converter code is
uniperceiver-hf's (Apache-2.0); the CLIP BPE vocabulary is OpenAI's (MIT).

## Citation

```bibtex
{CITATION}
```
"""
    return _card(data, body)


# -- the folder ----------------------------------------------------------------------------------------------------


def prepare_hub_folder(
    model_dir_or_model: str | os.PathLike | UniPerceiverModel,
    output_dir: str | os.PathLike,
    card: ModelCard | None = None,
    processor: UniPerceiverProcessor | None = None,
    fp16_weights: bool = False,
    remote_code: bool = True,
    pictures: Sequence[str | os.PathLike] = (),
) -> Path:
    """Writes a folder ready to push: weights (safetensors), config with `auto_map` and `custom_pipelines`, the
    remote-code files, the processor files, README.md (`card`, default: the model folder's own README.md) and the
    card's `pictures` beside it (default: the files a reused README.md shows from its folder).

    A folder is loaded in its saved dtype, with its own processor unless `processor` is given; a model object
    needs `processor`. `output_dir` must be new or empty, so that nothing stale is pushed with it.
    `fp16_weights` stores the weights in float16 (half the file) while the config keeps `dtype: float32`, so that
    `from_pretrained` loads them in float32 for CPU inference. The code files are `model_code_files()`;
    `remote_code=False` leaves them out with what declares them (see `strip_remote_code`).
    """
    readme = None
    if isinstance(model_dir_or_model, UniPerceiverModel):
        if processor is None:
            raise ValueError(
                "`processor` is required when `model_dir_or_model` is a model object: pass the "
                "UniPerceiverProcessor it was trained or converted with."
            )
        model = model_dir_or_model
    elif isinstance(model_dir_or_model, (str, os.PathLike)):
        folder = Path(model_dir_or_model)
        if not (folder / "config.json").is_file():
            raise ValueError(f"`model_dir_or_model` {str(folder)!r} is not a saved model folder (no config.json).")
        model = UniPerceiverModel.from_pretrained(folder, dtype="auto").eval()
        processor = processor or UniPerceiverProcessor.from_pretrained(folder)
        readme = folder / "README.md"
    else:
        raise TypeError(
            "`model_dir_or_model` must be a model folder or a UniPerceiverModel, "
            f"got {type(model_dir_or_model).__name__}."
        )
    if card is None:
        if readme is None or not readme.is_file():
            raise ValueError(
                "`card` is required: the model has no README.md to reuse (build one with "
                "`default_model_card` or `converted_model_card`)."
            )
        card = ModelCard.load(readme)
        pictures = pictures or [readme.parent / name for name in card_pictures(card)]
    if not isinstance(card, ModelCard):
        raise TypeError(f"`card` must be a huggingface_hub.ModelCard, got {type(card).__name__}.")
    missing = [str(path) for path in pictures if not Path(path).is_file()]
    if missing:
        raise ValueError(f"`pictures` the card shows are missing: {missing}.")
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"`output_dir` {str(output_dir)!r} is not empty: choose a new folder or empty it first.")
    if fp16_weights:
        model = copy.deepcopy(model).to(torch.float16)
    save_for_pipeline(model, processor, output_dir)
    if fp16_weights:
        config_path = output_dir / "config.json"
        config = json.loads(config_path.read_text())
        config["dtype"] = "float32"
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if remote_code:
        for path in model_code_files():
            shutil.copyfile(path, output_dir / path.name)
    else:
        strip_remote_code(output_dir)
    card.save(output_dir / "README.md")
    for path in pictures:
        shutil.copyfile(path, output_dir / Path(path).name)
    return output_dir


def card_pictures(card: ModelCard) -> list[str]:
    """The local pictures a card shows (`![...](name)` links to a file name, not to a URL or another folder)."""
    return [link for link in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card.text) if "/" not in link and ":" not in link]


def model_code_files() -> list[Path]:
    """The model code a Hub repository carries: every `*_uniperceiver.py` of the package root, which holds exactly
    these (training, metrics and tools live in subpackages). `save_pretrained` copies only what the saved classes
    import; the export adds the rest (pre-training head, prompt tuning, adapters, retrieval), so that everything
    the package offers on a model works through `trust_remote_code`."""
    return sorted(Path(__file__).resolve().parents[1].glob("*_uniperceiver.py"))


def strip_remote_code(folder: str | os.PathLike) -> None:
    """Removes the remote-code files of a saved folder and every `auto_map` / `custom_pipelines` entry that declares
    them. For a model kept inside this repository, where the installed package is the code: copies would go stale."""
    folder = Path(folder)
    for path in folder.glob("*.py"):
        path.unlink()

    def without_declarations(value):
        if isinstance(value, dict):
            return {k: without_declarations(v) for k, v in value.items() if k not in ("auto_map", "custom_pipelines")}
        return value

    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        stripped = without_declarations(data)
        if stripped != data:
            path.write_text(json.dumps(stripped, indent=2, sort_keys=True) + "\n")


def _read_claims(claims_path: str | os.PathLike) -> dict:
    try:
        return json.loads(Path(claims_path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"`claims_path` {str(claims_path)!r} is not a readable claims JSON: {error}") from error


def write_model_card_file(
    claims_path: str | os.PathLike,
    path: str | os.PathLike = "MODEL_CARD.md",
    model: str | os.PathLike | None = None,
    model_name: str | None = None,
) -> ModelCard:
    """Renders the default model's card from a claims JSON into `path` (the repository's MODEL_CARD.md). `model`, a
    saved model folder, adds its sizes and is where the card's pictures are (its own README.md shows them beside
    it); `model_name` defaults to that folder's name or `DEFAULT_MODEL_NAME`."""
    claims = _read_claims(claims_path)
    config = UniPerceiverConfig.from_pretrained(model) if model is not None else None
    name = model_name or (Path(model).name if model is not None else DEFAULT_MODEL_NAME)
    # The pictures sit beside the model's own card (its README.md): link to them from where this card is written.
    pictures_dir = Path(os.path.relpath(model, Path(path).parent)).as_posix() if model is not None else None
    card = default_model_card(claims, name, config=config, pictures_dir=pictures_dir)
    card.save(path)
    return card


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The export's options, shared by `uniperceiver-hf export hub` and `python -m uniperceiver_hf.tools.hub`."""
    parser.add_argument("--model", required=True, help="a saved model folder (runs/default/final, a converted folder)")
    parser.add_argument("--output", required=True, help="new folder to write the push-ready copy to")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--claims", help="claims.json of examples/evaluate_default_model.py: the default model's card")
    which.add_argument("--converted", metavar="CHECKPOINT_NAME", help="official checkpoint file name: its card")
    parser.add_argument("--model-name", help="the model's name in the card (default: the model folder's name)")
    parser.add_argument("--model-id", help="what the card's usage examples load (e.g. org/name)")
    parser.add_argument("--fp16", action="store_true", help="store the weights in float16 (loaded as float32)")
    parser.add_argument(
        "--no-remote-code",
        action="store_true",
        help="leave out the code files (a folder kept beside the package, e.g. models/)",
    )
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers) -> None:
    """Registers `uniperceiver-hf export hub`."""
    add_arguments(subparsers.add_parser("hub", help=DESCRIPTION, description=DESCRIPTION))


def run(args: argparse.Namespace) -> Path:
    card = None
    if args.claims or args.converted:
        config = UniPerceiverConfig.from_pretrained(args.model)
        if args.claims:
            name = args.model_name or Path(args.model).resolve().name
            card = default_model_card(_read_claims(args.claims), name, config=config, model_id=args.model_id)
        else:
            card = converted_model_card(args.converted, config, model_id=args.model_id)
    pictures = []
    if args.claims:  # the card's pictures were written beside claims.json
        pictures = [Path(args.claims).parent / name for name in card_pictures(card)]
    output = prepare_hub_folder(
        args.model, args.output, card, fp16_weights=args.fp16, remote_code=not args.no_remote_code, pictures=pictures
    )
    print(f"Wrote {output}: {', '.join(sorted(p.name for p in output.iterdir()))}")
    return output


def main(argv: list[str] | None = None) -> Path:
    """`uniperceiver-hf export hub` on its own."""
    parser = add_arguments(argparse.ArgumentParser(prog="uniperceiver-hf export hub", description=DESCRIPTION))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
