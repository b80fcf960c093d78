"""Uni-Perceiver's text tokenizer: OpenAI CLIP's byte-level BPE with three extra ids and the original's cleaning.

The original (`uniperceiver/tokenization/tokenization_clip.py`) cleans every text before the BPE with
`ftfy.fix_text`, two rounds of `html.unescape`, whitespace collapsing and lower-casing, never adds a start
token, and ends targets with `<|endoftext|>` (49407). transformers' `CLIPTokenizer` (tokenizers-backed)
has the same BPE but normalises only Unicode form, whitespace and case, so it differs on HTML entities,
mojibake and ligatures. This subclass applies the original's cleaning in Python before the backend runs, so
that `tokenizer(text, add_special_tokens=False)["input_ids"]` equals the original `encode(text)`.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from transformers import CLIPTokenizer


try:  # optional at import time so that remote code loads without it; the cleaning needs it
    import ftfy
except ImportError:  # pragma: no cover - ftfy is a dependency of the package
    ftfy = None

_PACKAGE_DIR = Path(__file__).resolve().parent
# On ASCII text ftfy can only act through HTML entities ("&"), control characters and terminal escapes, and line
# breaks (which the whitespace collapse equalises anyway): printable ASCII without "&" skips ftfy, which is most
# of the cost of tokenizing plain captions.
_PLAIN_ASCII = re.compile(r"[\t\n\r\x20-\x25\x27-\x7e]*")

# The three ids Uni-Perceiver adds after CLIP's 49408, in this order (MODEL.VOCAB_SIZE = 49411).
# `<|mask|>` is never produced from text by the original (its split regex does not know it), so it is a
# plain vocabulary entry here, not an added token: the text "<|mask|>" is split into pieces as there.
# `<|gen|>` and `<|spe|>` are recognised in text and stay single ids.
MASK_TOKEN, GEN_TOKEN, SPE_TOKEN = "<|mask|>", "<|gen|>", "<|spe|>"
TEXT_POSITIONS = 512  # `max_position_embeddings` of the released models
EXTRA_TOKEN_IDS = {MASK_TOKEN: 49408, GEN_TOKEN: 49409, SPE_TOKEN: 49410}


def clean_text(text: str) -> str:
    """The original's text cleaning: ftfy, HTML unescaped twice, whitespace collapsed, lower-cased."""
    if not _PLAIN_ASCII.fullmatch(text):
        if ftfy is None:
            raise ImportError(
                "UniPerceiverTokenizer needs `ftfy` to clean text as the original does: pip install ftfy"
            )
        text = html.unescape(html.unescape(ftfy.fix_text(text)))
    # `str.split()` splits on exactly the characters of the original's `\s+` (those of Python's `re` and of
    # `regex` differ only on U+001C-U+001F, which ftfy removes).
    return " ".join(text.split()).lower()


def _clean_inputs(value: Any, name: str) -> Any:
    """Clean a string, or every string of a (nested) list of strings; anything else is a `ValueError`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (list, tuple)):
        cleaned = [clean_text(item) if isinstance(item, str) else _clean_inputs(item, name) for item in value]
        return cleaned if isinstance(value, list) else tuple(cleaned)
    raise ValueError(f"`{name}` must be a string or a list of strings, got an item of type {type(value).__name__}.")


def _load_vocab(vocab: str | dict[str, int] | None) -> dict[str, int]:
    if vocab is None:
        vocab = str(_PACKAGE_DIR / "vocab.json")
    if isinstance(vocab, (str, Path)):
        with open(vocab, encoding="utf-8") as handle:
            vocab = json.load(handle)
    return dict(vocab)


def _load_merges(merges: str | list | None) -> list[tuple[str, str]]:
    if merges is None:
        merges = str(_PACKAGE_DIR / "merges.txt")
    if isinstance(merges, (str, Path)):
        with open(merges, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        merges = [line for line in lines if line and not line.startswith("#version")]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


class UniPerceiverTokenizer(CLIPTokenizer):
    """CLIP BPE tokenizer with Uni-Perceiver's 49,411 ids and the original's text cleaning.

    - ids 0..49407 are CLIP's; `<|mask|>` = 49408, `<|gen|>` = 49409, `<|spe|>` = 49410.
    - Every text is cleaned first (`clean_text`: ftfy, HTML unescape twice, whitespace collapse, lower case),
      so ids equal the original's `encode`. Offsets returned with `return_offsets_mapping` refer to the
      cleaned text.
    - There is never a start token. With `add_special_tokens=True` (the default) `<|endoftext|>` is appended,
      which gives the original's target layout `encode(name + " <|endoftext|>")`; pass
      `add_special_tokens=False` for the bare `encode(text)`.
    - `mask_token` is `<|spe|>`, the token the original writes over masked words in masked language modelling.
    - Padding through this tokenizer uses `<|endoftext|>` with a zero attention mask (as transformers' CLIP);
      `UniPerceiverProcessor` pads with id 0 as the original does. Both give the same model outputs because
      padded positions are masked.
    - Keep a space before special tokens written in text (`"it is <|spe|> ."`): the original splits a special
      token glued to preceding punctuation (`"?<|spe|>"`) into pieces, this tokenizer keeps it whole.

    Called without `vocab`/`merges` (and without a `tokenizer_file`), it loads the vocabulary shipped in this
    package, derived from OpenAI's MIT-licensed `bpe_simple_vocab_16e6.txt.gz` (see `LICENSE_CLIP_BPE.txt`).
    """

    def __init__(
        self,
        vocab: str | dict[str, int] | None = None,
        merges: str | list[str] | None = None,
        unk_token: str = "<|endoftext|>",
        bos_token: str = "<|startoftext|>",
        eos_token: str = "<|endoftext|>",
        pad_token: str = "<|endoftext|>",
        mask_token: str = SPE_TOKEN,
        extra_special_tokens: list[str] | None = None,
        add_bos_token: bool = False,
        add_eos_token: bool = True,
        **kwargs: Any,
    ):
        # A serialized backend (`tokenizer.json`) replaces whatever BPE model is built here, so only build the
        # real one when no such file is given.
        if kwargs.get("tokenizer_file") is None or vocab is not None:
            vocab = _load_vocab(vocab if vocab is not None else kwargs.get("vocab_file"))
            merges = _load_merges(merges if merges is not None else kwargs.get("merges_file"))
            for token, index in EXTRA_TOKEN_IDS.items():
                if vocab.setdefault(token, index) != index:
                    raise ValueError(f"`vocab` maps {token!r} to {vocab[token]}, but Uni-Perceiver uses id {index}.")
            if sorted(vocab.values()) != list(range(len(vocab))):
                raise ValueError(f"`vocab` must map its {len(vocab)} tokens to the ids 0..{len(vocab) - 1} exactly.")
        if extra_special_tokens is None:
            extra_special_tokens = [GEN_TOKEN]
        # The released models' text position table: what `truncation=True` cuts to unless `max_length` says otherwise.
        kwargs.setdefault("model_max_length", TEXT_POSITIONS)
        super().__init__(
            vocab=vocab,
            merges=merges,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            mask_token=mask_token,
            extra_special_tokens=extra_special_tokens,
            add_bos_token=add_bos_token,
            add_eos_token=add_eos_token,
            **kwargs,
        )
        # `CLIPTokenizer.__init__` installs a start+end post-processor; Uni-Perceiver never uses a start token.
        self.update_post_processor()

    def _encode_plus(self, text: Any, text_pair: Any = None, *args: Any, **kwargs: Any):
        """Clean `text` (and `text_pair`) as the original does, then encode with the BPE backend."""
        text = _clean_inputs(text, "text")
        if text_pair is not None:
            text_pair = _clean_inputs(text_pair, "text_pair")
        return super()._encode_plus(text, text_pair, *args, **kwargs)

    def save_pretrained(self, save_directory: Any, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        """Save as transformers does, without the loading-time keys (`local_files_only`, `is_local`) that a
        re-saved tokenizer would otherwise write into `tokenizer_config.json`."""
        for key in ("local_files_only", "is_local"):
            self.init_kwargs.pop(key, None)
        return super().save_pretrained(save_directory, *args, **kwargs)


UniPerceiverTokenizer.register_for_auto_class("AutoTokenizer")

__all__ = ["UniPerceiverTokenizer", "clean_text"]
