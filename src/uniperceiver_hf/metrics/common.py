"""What the metric modules share: their `evaluate` description (`_info`), the citations several of them carry and
the caption tokenisation of BLEU and CIDEr.

Each metric module imports this file as `from .common import ...`, the one form of local import `evaluate.load(path)`
follows: it copies this file beside the module it loads, so a metric file plus this one load anywhere, offline.
"""

import re

import datasets
import evaluate


UNIPERCEIVER_CITATION = """\
@inproceedings{zhu2022uniperceiver,
  title={Uni-Perceiver: Pre-training Unified Architecture for Generic Perception for Zero-shot and Few-shot Tasks},
  author={Zhu, Xizhou and Zhu, Jinguo and Li, Hao and Wu, Xiaoshi and Li, Hongsheng and Wang, Xiaohua and Dai, Jifeng},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition},
  year={2022}
}
"""

COCO_CAPTIONS_CITATION = """\
@article{chen2015microsoft,
  title={Microsoft {COCO} Captions: Data Collection and Evaluation Server},
  author={Chen, Xinlei and Fang, Hao and Lin, Tsung-Yi and Vedantam, Ramakrishna and Gupta, Saurabh and
          Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  journal={arXiv preprint arXiv:1504.00325},
  year={2015}
}
"""

# The `features` of the metrics that score one text against a list of reference texts (captions, VQA answers).
TEXT_AGAINST_REFERENCES = {
    "predictions": datasets.Value("string"),
    "references": datasets.Sequence(datasets.Value("string")),
}


def metric_card(
    description: str,
    citation: str,
    inputs_description: str,
    features: dict,
    reference_urls=(),
):
    """Class decorator that gives an `evaluate.Metric` its `_info` (the description, citation, arguments, input
    `features` as column name -> `datasets` feature, and reference URLs) and its docstring, as `evaluate`'s
    `add_start_docstrings` writes it."""

    def decorate(cls):
        def _info(self):
            return evaluate.MetricInfo(
                description=description,
                citation=citation,
                inputs_description=inputs_description,
                features=datasets.Features(features),
                reference_urls=list(reference_urls),
            )

        cls._info = _info
        return evaluate.utils.file_utils.add_start_docstrings(description, inputs_description)(cls)

    return decorate


def tokenize(text: str) -> list:
    """Lower-case, turn punctuation into spaces, split on whitespace (BLEU and CIDEr; a stand-in for COCO's PTB
    tokenizer, which also drops punctuation)."""
    return re.sub(r"[^\w\s]", " ", text.lower()).split()
