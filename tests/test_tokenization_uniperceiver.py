"""UniPerceiverTokenizer: ids equal to the original `ClipTokenizer.encode`, special ids, saving and loading."""

import gzip
import importlib.util
import itertools
import json
import random
from pathlib import Path

import pytest
import regex

from uniperceiver_hf import UniPerceiverTokenizer
from uniperceiver_hf.tokenization_uniperceiver import clean_text


PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "uniperceiver_hf"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "derive_clip_vocab.py"


@pytest.fixture(scope="module")
def tokenizer() -> UniPerceiverTokenizer:
    return UniPerceiverTokenizer()


@pytest.fixture(scope="module")
def tokenizer_goldens(golden_dir) -> dict:
    return json.loads((golden_dir / "tokenizer_goldens.json").read_text())


def test_golden_strings(tokenizer, tokenizer_goldens):
    """All 36 strings (HTML entities, ligatures, mojibake, emoji, CJK, over-long, empty) give the original ids."""
    strings = tokenizer_goldens["strings"]
    assert len(strings) == 36
    for case in strings:
        assert tokenizer(case["text"], add_special_tokens=False)["input_ids"] == case["ids"], case["text"]
    batch = tokenizer([case["text"] for case in strings], add_special_tokens=False)["input_ids"]
    assert batch == [case["ids"] for case in strings]


def test_golden_task_recipes(tokenizer, tokenizer_goldens):
    layouts = tokenizer_goldens["task_text_layouts"]
    caption = layouts["caption_train (ImageTextPairDataset, MSCOCO/VG/FLICKR)"]
    assert tokenizer(caption["text"])["input_ids"] == caption["caption_ids"]  # default: ids + EOT, no start token
    target = layouts["class_name / label word / VQA answer target"]
    assert tokenizer(target["text"])["input_ids"] == target["ids"] == [40293, 49407]
    vqa = layouts["vqa_question"]
    question = tokenizer(vqa["text"], add_special_tokens=False)["input_ids"]
    assert question + tokenizer("<|spe|> <|endoftext|>", add_special_tokens=False)["input_ids"] == vqa["ids"]
    sst2 = layouts["glue_sst2"]
    ids = tokenizer(sst2["text"] + "  <|endoftext|> It is <|spe|>.   <|endoftext|>", add_special_tokens=False)
    assert ids["input_ids"] == sst2["ids"] and ids["input_ids"][sst2["spe_index"]] == 49410


def test_special_ids(tokenizer, tokenizer_goldens):
    assert len(tokenizer) == tokenizer.vocab_size == 49411
    for token, index in tokenizer_goldens["special_tokens"].items():
        assert tokenizer.convert_tokens_to_ids(token) == index
        assert tokenizer.convert_ids_to_tokens(index) == token
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.mask_token_id) == (49406, 49407, 49410)
    # `<|mask|>` has its id but is split as ordinary text, as in the original; `<|spe|>`/`<|gen|>` stay whole.
    assert tokenizer("<|mask|>", add_special_tokens=False)["input_ids"] == [27, 347, 8306, 91, 285]
    assert tokenizer("x <|gen|> y <|spe|> z", add_special_tokens=False)["input_ids"] == [343, 49409, 344, 49410, 345]


def test_cleaning():
    assert clean_text("  Caf&amp;eacute;\tOK\n") == "café ok"
    assert clean_text("&lt;b&gt; ﬁne") == "<b> fine"  # HTML entities and the fi ligature
    assert clean_text("mojibake: â€™") == "mojibake: '"
    assert clean_text(" \t\n ") == ""


def test_plain_ascii_skips_ftfy_without_changing_the_result():
    """Printable ASCII without "&" bypasses ftfy: on 2,000 random such strings the result is the full pipeline's."""
    import html
    import re

    import ftfy

    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x20, 0x7F) if chr(c) != "&"] + ["\t", "\n", "\r", "\r\n"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        full = re.sub(r"\s+", " ", html.unescape(html.unescape(ftfy.fix_text(text)))).strip().lower()
        assert clean_text(text) == full, repr(text)


def test_pairs_and_decode(tokenizer):
    pair = tokenizer("A cat", "A DOG &amp; bird")["input_ids"]
    assert pair == [320, 2368, 49407, 320, 1929, 261, 3329, 49407]
    assert tokenizer.decode([320, 49410, 269, 49407]) == "a <|spe|>. <|endoftext|>"


def test_bad_input(tokenizer):
    with pytest.raises(ValueError, match="text"):
        tokenizer(None)
    with pytest.raises(ValueError, match="`text`"):
        tokenizer(["a cat", 3])
    with pytest.raises(ValueError, match="`text_pair`"):
        tokenizer(["a"], [None])
    assert tokenizer(["", "   \n"], add_special_tokens=False)["input_ids"] == [[], []]
    assert tokenizer("")["input_ids"] == [49407]


def _reference_encoder():
    """An independent implementation of the documented original `encode` (ORIGINAL_IMPLEMENTATION.md 3.1): clean,
    split with CLIP's pattern extended by `<|gen|>`/`<|spe|>`, map bytes to symbols, apply the merges by rank."""
    spec = importlib.util.spec_from_file_location("derive_clip_vocab", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    symbols = script.byte_symbols()
    vocab = json.loads((PACKAGE_DIR / "vocab.json").read_text(encoding="utf-8"))
    vocab.update({"<|mask|>": 49408, "<|gen|>": 49409, "<|spe|>": 49410})
    merges = (PACKAGE_DIR / "merges.txt").read_text(encoding="utf-8").split("\n")[1:-1]
    ranks = {tuple(line.split(" ")): rank for rank, line in enumerate(merges)}
    specials = ("<|startoftext|>", "<|endoftext|>", "<|gen|>", "<|spe|>")
    pattern = regex.compile(
        r"<\|startoftext\|>|<\|endoftext\|>|<\|gen\|>|<\|spe\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        regex.IGNORECASE,
    )

    def bpe(word: str) -> list[str]:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = [(ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(itertools.pairwise(parts))]
            rank, i = min(pairs)
            if rank == float("inf"):
                break
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        return parts

    def encode(text: str) -> list[int]:
        ids = []
        for word in pattern.findall(clean_text(text)):
            if word in specials:
                ids.append(vocab[word])
            else:
                ids += [vocab[piece] for piece in bpe("".join(symbols[b] for b in word.encode("utf-8")))]
        return ids

    return encode


def test_random_strings_match_reference_bpe(tokenizer):
    """Fuzz: 300 random strings of letters (mixed case, accents, CJK), digits, punctuation, entities, emoji,
    whitespace and space-separated special tokens give the ids of the documented algorithm."""
    encode = _reference_encoder()
    rng = random.Random(0)
    pieces = [
        *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        *".,;:!?'\"()[]{}-_/\\@#$%^&*+=~`|<>",
        "é",
        "ß",
        "İ",
        "ñ",
        "日本",
        "中文",
        "😀",
        "ﬁ",
        "&amp;",
        "&lt;",
        "&#39;",
        "'s",
        "n't",
        "...",
        "\t",
        "\n",
        "  ",
        " <|spe|> ",
        " <|endoftext|> ",
        " <|gen|> ",
        " <|startoftext|> ",
        " ",
    ]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    assert tokenizer(texts, add_special_tokens=False)["input_ids"] == [encode(t) for t in texts]


def test_shipped_vocabulary_files():
    """vocab.json/merges.txt are the derivation described in scripts/derive_clip_vocab.py."""
    spec = importlib.util.spec_from_file_location("derive_clip_vocab", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    vocab = json.loads((PACKAGE_DIR / "vocab.json").read_text(encoding="utf-8"))
    merges = (PACKAGE_DIR / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert merges[0] == "#version: 0.2" and len(merges) - 2 == script.NUM_MERGES == 48894
    symbols = list(script.byte_symbols().values())
    assert list(vocab)[:512] == symbols + [s + "</w>" for s in symbols]
    assert list(vocab)[512:-2] == ["".join(m.split(" ")) for m in merges[1:-1]]
    assert list(vocab.values()) == list(range(49408)) and list(vocab)[-2:] == ["<|startoftext|>", "<|endoftext|>"]
    assert (PACKAGE_DIR / "LICENSE_CLIP_BPE.txt").read_text().count("MIT License") == 1


def test_derivation_checks_the_sha256(tmp_path):
    spec = importlib.util.spec_from_file_location("derive_clip_vocab", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    fake = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    fake.write_bytes(gzip.compress(b"#version: 0.2\ni n\n"))
    with pytest.raises(ValueError, match="sha256"):
        script.derive(fake)


def test_save_and_load(tokenizer, tmp_path, tokenizer_goldens):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    for loaded in (UniPerceiverTokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert type(loaded) is UniPerceiverTokenizer and len(loaded) == 49411
        texts = [case["text"] for case in tokenizer_goldens["strings"]]
        assert loaded(texts, add_special_tokens=False)["input_ids"] == [c["ids"] for c in tokenizer_goldens["strings"]]
        assert loaded("goldfish")["input_ids"] == [40293, 49407]
    # Re-saving a loaded tokenizer does not write the loading-time keys into its config.
    resaved = tmp_path / "resaved"
    AutoTokenizer.from_pretrained(tmp_path, local_files_only=True).save_pretrained(resaved)
    config = json.loads((resaved / "tokenizer_config.json").read_text())
    assert not {"local_files_only", "is_local"} & set(config)
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_uniperceiver.UniPerceiverTokenizer"


def test_vocabulary_must_fit_the_extra_ids():
    vocab = json.loads((PACKAGE_DIR / "vocab.json").read_text(encoding="utf-8"))
    vocab["<|spe|>"] = 7
    with pytest.raises(ValueError, match="<\\|spe\\|>"):
        UniPerceiverTokenizer(vocab=vocab, merges=str(PACKAGE_DIR / "merges.txt"))
