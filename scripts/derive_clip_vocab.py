"""Re-derive the shipped CLIP BPE files (`vocab.json`, `merges.txt`) from OpenAI's `bpe_simple_vocab_16e6.txt.gz`.

The tokenizer of Uni-Perceiver is OpenAI CLIP's byte-level BPE. Its single source file is the gzip file
named above (MIT licence, see `src/uniperceiver_hf/LICENSE_CLIP_BPE.txt`); byte-identical copies ship in
PyPI wheels, for example `open_clip_torch==3.3.0` at `open_clip/bpe_simple_vocab_16e6.txt.gz`:

    pip download --no-deps open_clip_torch==3.3.0 -d /tmp/oc
    unzip -o /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl 'open_clip/bpe_simple_vocab_16e6.txt.gz' -d /tmp/oc
    python scripts/derive_clip_vocab.py /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz --check

The derivation follows the original tokenizer: merge lines 1..48894 (49152 - 256 - 2, after the header
line), and the vocabulary is the 256 byte symbols, the same 256 with `</w>`, one entry per merge, then
`<|startoftext|>` (49406) and `<|endoftext|>` (49407). Uni-Perceiver's three extra tokens (49408-49410)
are appended by `UniPerceiverTokenizer`, not stored here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path


EXPECTED_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
NUM_MERGES = 49152 - 256 - 2
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "uniperceiver_hf"


def byte_symbols() -> dict[int, str]:
    """The printable stand-in character of each byte value, in CLIP's vocabulary order.

    Bytes that are printable Latin-1 characters stand for themselves and come first, in increasing order;
    every other byte is mapped to code point 256, 257, ... in increasing byte order, and comes after them.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


def derive(gz_path: Path) -> tuple[dict[str, int], list[str]]:
    """Check the gzip file's sha256 and return (vocabulary, merge lines)."""
    raw = gz_path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256:
        raise ValueError(f"{gz_path} has sha256 {digest}, expected {EXPECTED_SHA256}")
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    symbols = list(byte_symbols().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens) or len(vocab) != 49408:
        raise ValueError(f"expected 49408 distinct entries, got {len(vocab)} of {len(tokens)}")
    return vocab, merges


def render(vocab: dict[str, int], merges: list[str]) -> tuple[str, str]:
    """The two files' text, in the layout transformers' CLIP files use."""
    return json.dumps(vocab, ensure_ascii=False), "#version: 0.2\n" + "\n".join(merges) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gz", type=Path, help="path to bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="folder to write vocab.json and merges.txt")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)

    vocab_text, merges_text = render(*derive(args.gz))
    vocab_path, merges_path = args.out / "vocab.json", args.out / "merges.txt"
    if args.check:
        same = (
            vocab_path.read_text(encoding="utf-8") == vocab_text
            and merges_path.read_text(encoding="utf-8") == merges_text
        )
        print("identical" if same else f"DIFFERENT from {vocab_path} / {merges_path}")
        return 0 if same else 1
    vocab_path.write_text(vocab_text, encoding="utf-8")
    merges_path.write_text(merges_text, encoding="utf-8")
    print(f"wrote {vocab_path} and {merges_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
