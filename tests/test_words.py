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


def test_a_one_letter_last_piece_is_no_initial_its_period_is_split_off():
    # "Macron." is macro ##n . : the period follows a one-letter piece, but not a letter that begins its word
    text = "Macron. Kourou. (J. Smith) e.g. U.S."
    chunk, pieces = _words(text)
    assert pieces[:7] == ["Macro", "n", ".", "Ko", "uro", "u", "."]
    trailing = [p for p, t in zip(pieces, chunk.trailing, strict=True) if t]
    assert trailing == [".", ".", ")"]  # Macron's, Kourou's, the bracket: "J.", "e.g." and "U.S." keep theirs
    first_period = pieces.index(".")
    sp = _decode(["B-PER" if i < first_period else "O" for i in range(len(pieces))], chunk)
    assert [text[a:b] for a, b in zip(sp.start, sp.end, strict=True)] == ["Macron"]


def test_word_label_is_first_subtoken_across_the_whitespace_word():
    text = "Lovelace's work"
    chunk, pieces = _words(text)
    labels = ["B-PER" if i == 0 else "O" for i in range(len(pieces))]
    sp = _decode(labels, chunk)
    # the sub-tokens of "Lovelace" follow its first one; the final 's is split off (tagged O)
    assert [text[a:b] for a, b in zip(sp.start, sp.end, strict=True)] == ["Lovelace"]


def _entity_words(tokenizer, text):
    """The whitespace words of `text` as entities: every token tagged B-PER, so that each word is one."""
    tok = DocumentTokenizer(tokenizer, max_length=128, stride=16, word_boundaries="whitespace")
    chunk = tok([text], word_level=True)
    sp = _decode(["B-PER"] * len(chunk.ids), chunk)
    return [text[a:b] for a, b in zip(sp.start, sp.end, strict=True)]


def _with_leading_spaces(family):
    """The test families' tokenizers laid out as transformers converts SentencePiece models now (XLM-R, DeBERTa-v3:
    Metaspace alone, the space inside the word's first token) and as byte-level BPE without trim_offsets."""
    from tokenizers import processors

    from tiny_models import build_tokenizer

    tok = build_tokenizer(family)
    if family == "roberta":
        tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                          ("<s>", tok.token_to_id("<s>")), trim_offsets=False)
    return tok


def test_words_where_the_space_is_inside_the_token():
    """Such tokens ("▁Lovelace" at 3:12 in "Ada Lovelace") made each text one word at the default word boundaries,
    so a document came back as one entity or none; a space of its own between words made an empty word."""
    text = "Ada Lovelace met  Charles in London on 3 May."
    words = ["Ada", "Lovelace", "met", "Charles", "in", "London", "on", "3", "May."]
    for family in ("xlmr", "roberta"):
        tok = _with_leading_spaces(family)
        enc = tok.encode(text, add_special_tokens=False)
        assert any(text[a:b].startswith(" ") for a, b in enc.offsets), family  # the layout under test
        assert _entity_words(tok, text) == words, family


def test_byte_level_punctuation_is_split_off_like_any_other():
    """Byte-level BPE spells "“" as bytes ("âĢľ", or one token a byte): it was never punctuation, so quotes,
    guillemets and inverted marks stayed inside the words (and the entities)."""
    from tiny_models import build_tokenizer

    text = "He met “Ada” in «Paris» and ¿Oslo?"
    for family in ("roberta", "bert"):
        found = _entity_words(build_tokenizer(family), text)
        assert found[:4] == ["He", "met", "“", "Ada”"], (family, found)  # leading split; trailing kept (not O)
        assert found[5:] == ["«", "Paris»", "and", "¿", "Oslo?"], (family, found)
