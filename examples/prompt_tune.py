"""Prompt tuning of Uni-Perceiver (paper section 3.3, appendix C).

    python examples/prompt_tune.py --dry-run --model-size base [--layer-norms paper|released] [--share-prompts]
                                   [--num-classes 1000]

`--dry-run` builds the model on the meta device (no weights, no data, instant), applies `prepare_prompt_tuning`
with the given settings and prints the trainable parameters per group beside the paper's Table 9. Training
itself (`--model DIR --recipe FILE --output-dir DIR`) is not available yet.
"""

import argparse
import sys

import torch

from uniperceiver_hf import UniPerceiverConfig, UniPerceiverModel
from uniperceiver_hf.configuration_uniperceiver import PRESETS
from uniperceiver_hf.prompt_tuning_uniperceiver import (
    LAYER_NORM,
    LINEAR_HEAD,
    OTHER,
    PROMPT,
    SPE,
    PromptTuningSettings,
    prepare_prompt_tuning,
    trainable_parameter_breakdown,
)

# Paper Table 9 (base size). Its linear head counts only the weight matrix, 768 per class.
PAPER_TABLE_9 = {SPE: 768, LAYER_NORM: 41_472, PROMPT: 184_320}
PAPER_HEAD_PER_CLASS = 768


def breakdown_table(counts: dict[str, int], num_classes: int, paper: bool) -> str:
    """The trainable parameters per group beside Table 9 (paper column only for the base size)."""
    paper_column = dict(PAPER_TABLE_9, **{LINEAR_HEAD: PAPER_HEAD_PER_CLASS * num_classes}) if paper else {}
    rows = [(group, counts[group], paper_column.get(group)) for group in (SPE, LAYER_NORM, PROMPT, LINEAR_HEAD)]
    rows.append((OTHER, counts[OTHER], 0 if paper else None))
    rows.append(("total", sum(counts.values()), sum(paper_column.values()) if paper else None))
    lines = [f"| {'group':<11} | {'this model':>10} | {'paper Table 9':>13} |", f"|{'-' * 13}|{'-' * 11}:|{'-' * 14}:|"]
    for group, ours, theirs in rows:
        lines.append(f"| {group:<11} | {ours:>10,} | {format(theirs, ',') if theirs is not None else '-':>13} |")
    return "\n".join(lines)


def dry_run(args) -> dict[str, int]:
    with torch.device("meta"):
        base = UniPerceiverModel(UniPerceiverConfig.from_preset(args.model_size))
    settings = PromptTuningSettings(
        num_prompt_tokens=args.num_prompt_tokens,
        share_prompt_tokens=args.share_prompts,
        num_classes=args.num_classes,
        layer_norms=args.layer_norms,
    )
    counts = trainable_parameter_breakdown(prepare_prompt_tuning(base, settings))
    total = sum(p.numel() for p in base.parameters())
    print(f"Uni-Perceiver {args.model_size} ({total:,} parameters), {settings}")
    print(breakdown_table(counts, args.num_classes, paper=args.model_size == "base"))
    if args.num_classes:
        print(f"The linear head also has {args.num_classes:,} biases and 1 similarity weight, which Table 9 omits.")
    print(f"Trainable: {sum(counts.values()):,} of {total:,} ({100 * sum(counts.values()) / total:.2f} %).")
    return counts


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the trainable-parameter breakdown and exit")
    parser.add_argument("--model-size", choices=sorted(PRESETS), default="base")
    parser.add_argument("--layer-norms", choices=("paper", "released"), default="paper",
                        help="paper: separate text/visual embedding LNs (27 at base); released: one shared (26)")
    parser.add_argument("--share-prompts", action="store_true", help="one prompt set for inputs and targets")
    parser.add_argument("--num-prompt-tokens", type=int, default=10)
    parser.add_argument("--num-classes", type=int, default=1000, help="classes of the linear head (0: none)")
    args = parser.parse_args(argv)
    if not args.dry_run:
        parser.error("only --dry-run is available; training (--model DIR --recipe FILE --output-dir DIR) is to come")
    return dry_run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
