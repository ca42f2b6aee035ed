"""Whitespace words (`--word-boundaries whitespace`): edge punctuation, acronyms, and how decoding uses them."""

from pathlib import Path

import numpy as np

from fasttag.aggregate import decode_spans
from fasttag.model import LabelScheme
from fasttag.tokenization import DocumentTokenizer

DEFAULT_TOKENIZER = Path(__file__).resolve().parents[1] / "export" / "default" / "tokenizer.json"
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SCHEME = LabelScheme.from_labels(LABELS)


def _words(text):
    tok = DocumentTokenizer.from_file(DEFAULT_TOKENIZER, max_length=128, stride=16, word_boundaries="whitespace")
    chunk = tok([text], word_level=True)
    pieces = [text[a:b] for a, b in chunk.offsets]
    return chunk, pieces


def test_whitespace_words_split_leading_punctuation_and_mark_trailing():
    text = "(Paris) visited London. The U.S. and Germany's L. Germon"
    chunk, pieces = _words(text)
    starts = [p for p, sub in zip(pieces, chunk.is_subword, strict=True) if not sub]
    # "(" is a word of its own; "Paris" starts the next one; "U.S." and "L." stay whole
    assert starts[:4] == ["(", "Paris", "visited", "London"]
    trailing = [p for p, t in zip(pieces, chunk.trailing, strict=True) if t]
    assert trailing == [")", ".", "'", "s"]
    us = pieces.index("U")
    assert not chunk.trailing[us : us + 4].any()  # u . s . : the acronym's periods belong to it


def _decode(labels_per_token, chunk):
    probs = np.full((len(labels_per_token), len(LABELS)), 0.01, dtype=np.float32)
    probs[np.arange(len(labels_per_token)), [LABELS.index(x) for x in labels_per_token]] = 0.96
    return decode_spans(probs, chunk.offsets, chunk.doc_offsets, SCHEME, "first", chunk.skip, chunk.is_subword,
                        chunk.trailing)


def test_trailing_punctuation_split_off_only_where_tagged_outside():
    text = "London. U.S."
    chunk, pieces = _words(text)
    assert pieces == ["London", ".", "U", ".", "S", "."]
    # the model tags London's period O and the acronym's periods inside: "London" and "U.S."
    sp = _decode(["B-LOC", "O", "B-LOC", "I-LOC", "I-LOC", "I-LOC"], chunk)
    assert [text[a:b] for a, b in zip(sp.start, sp.end, strict=True)] == ["London", "U.S."]
    # a trailing period tagged inside the entity stays in it
    sp = _decode(["B-LOC", "I-LOC", "B-LOC", "O", "O", "O"], chunk)
    assert [text[a:b] for a, b in zip(sp.start, sp.end, strict=True)] == ["London.", "U.S."]


def test_word_label_is_first_subtoken_across_the_whitespace_word():
    text = "Lovelace's work"
    chunk, pieces = _words(text)
    labels = ["B-PER" if i == 0 else "O" for i in range(len(pieces))]
    sp = _decode(labels, chunk)
    # the sub-tokens of "Lovelace" follow its first one; the final 's is split off (tagged O)
    assert [text[a:b] for a, b in zip(sp.start, sp.end, strict=True)] == ["Lovelace"]
