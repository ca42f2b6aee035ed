import numpy as np
import pytest

from fasttag.aggregate import decode_spans
from fasttag.model import LabelScheme

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SCHEME = LabelScheme.from_labels(LABELS)


def onehot(labels, conf=0.9):
    p = np.full((len(labels), len(LABELS)), (1 - conf) / (len(LABELS) - 1), dtype=np.float32)
    p[np.arange(len(labels)), [LABELS.index(x) for x in labels]] = conf
    return p


def spans_of(labels, offsets=None, docs=None, strategy="simple", is_subword=None, skip=None):
    n = len(labels)
    offsets = np.array(offsets if offsets is not None else [(2 * i, 2 * i + 1) for i in range(n)])
    doc_offsets = np.array(docs if docs is not None else [0, n])
    sp = decode_spans(onehot(labels), offsets, doc_offsets, SCHEME, strategy,
                      skip=None if skip is None else np.array(skip),
                      is_subword=None if is_subword is None else np.array(is_subword))
    return [(int(d), int(a), int(b), SCHEME.group_labels[lab])
            for d, a, b, lab in zip(sp.doc, sp.start, sp.end, sp.label, strict=True)]


def test_simple_groups_b_and_i():
    assert spans_of(["B-PER", "I-PER", "O", "B-LOC"]) == [(0, 0, 3, "PER"), (0, 6, 7, "LOC")]


def test_b_starts_a_new_entity_and_i_after_o_starts_one():
    assert spans_of(["B-PER", "B-PER", "O", "I-LOC", "I-LOC"]) == [(0, 0, 1, "PER"), (0, 2, 3, "PER"), (0, 6, 9, "LOC")]


def test_type_change_splits():
    assert spans_of(["B-PER", "I-LOC"]) == [(0, 0, 1, "PER"), (0, 2, 3, "LOC")]


def test_document_boundary_splits_entities():
    assert spans_of(["B-PER", "I-PER", "I-PER"], docs=[0, 2, 3]) == [(0, 0, 3, "PER"), (1, 4, 5, "PER")]


def test_skipped_tokens_are_not_tagged():
    assert spans_of(["B-PER", "I-PER", "I-PER"], skip=[False, True, False]) == [(0, 0, 5, "PER")]


def test_score_is_mean_of_token_scores():
    probs = onehot(["B-PER", "I-PER"])
    probs[1] = [0.1, 0.0, 0.6, 0.2, 0.1]
    sp = decode_spans(probs, np.array([(0, 1), (1, 2)]), np.array([0, 2]), SCHEME)
    assert sp.score[0] == pytest.approx((0.9 + 0.6) / 2)


@pytest.mark.parametrize("strategy,expected", [("first", "PER"), ("max", "LOC"), ("average", "LOC")])
def test_word_strategies(strategy, expected):
    probs = np.array([[0.1, 0.5, 0.1, 0.3, 0.0], [0.0, 0.0, 0.05, 0.0, 0.95], [0.1, 0.0, 0.1, 0.0, 0.8]],
                     dtype=np.float32)
    sp = decode_spans(probs, np.array([(0, 2), (2, 4), (4, 6)]), np.array([0, 3]), SCHEME, strategy,
                      is_subword=np.array([False, True, True]))
    got = [(int(a), int(b), SCHEME.group_labels[lab]) for a, b, lab in zip(sp.start, sp.end, sp.label, strict=True)]
    assert got == [(0, 6, expected)]


def test_labels_without_prefix_group_like_the_pipeline():
    scheme = LabelScheme.from_labels(["O", "PER", "LOC"])
    probs = np.eye(3, dtype=np.float32)[[1, 1, 0, 2]]
    sp = decode_spans(probs, np.array([(0, 1), (1, 2), (2, 3), (3, 4)]), np.array([0, 4]), scheme)
    got = [(int(a), int(b), scheme.group_labels[lab]) for a, b, lab in zip(sp.start, sp.end, sp.label, strict=True)]
    assert got == [(0, 2, "PER"), (3, 4, "LOC")]


def test_empty_input():
    sp = decode_spans(np.zeros((0, 5), np.float32), np.zeros((0, 2), np.int64), np.array([0, 0, 0]), SCHEME)
    assert len(sp) == 0


def test_entities_never_end_or_start_inside_a_grapheme_cluster():
    from fasttag.aggregate import Spans, snap_to_graphemes

    text = "Zoe\u0308 met Jose\u0301\u0301 and \U0001F469\u200d\U0001F52C Ann"
    jose, woman = text.index("Jose"), text.index("\U0001F469")
    # as a normalizing tokenizer gives them: "Zoe" and "Jose" without their marks, the first half of a
    # ZWJ emoji
    one = np.ones(3, dtype=np.int64)
    sp = Spans(0 * one, np.array([0, jose, woman]), np.array([3, jose + 4, woman + 1]), one,
               np.ones(3, dtype=np.float32))
    out = snap_to_graphemes(sp, [text])
    assert [text[a:b] for a, b in zip(out.start, out.end, strict=True)] == [
        "Zoe\u0308", "Jose\u0301\u0301", "\U0001F469\u200d\U0001F52C"]
    # a span starting on a mark moves back to its base letter, but never over the entity before it
    sp = Spans(np.zeros(2, dtype=np.int64), np.array([0, 3]), np.array([2, 7]), np.ones(2, dtype=np.int64),
               np.ones(2, dtype=np.float32))
    out = snap_to_graphemes(sp, [text])
    assert [text[a:b] for a, b in zip(out.start, out.end, strict=True)] == ["Zo", "e\u0308 me"]
    sp = Spans(np.zeros(2, dtype=np.int64), np.array([0, 3]), np.array([3, 7]), np.ones(2, dtype=np.int64),
               np.ones(2, dtype=np.float32))
    out = snap_to_graphemes(sp, [text])
    assert list(out.start) == [0, 3] and list(out.end) == [3, 7]  # disjoint, as they came


def test_decomposed_text_gets_whole_letters_end_to_end():
    from pathlib import Path

    from fasttag.tagger import Tagger

    tagger = Tagger.load(Path(__file__).resolve().parents[1] / "export" / "default", aggregation="first")
    text = "Zoe\u0308 Mu\u0308ller visited Paris."
    ents = tagger.tag([text])[0]
    assert ents and all(e.text == text[e.start:e.end] for e in ents)
    assert all(e.end == len(text) or text[e.end] not in "\u0301\u0308" for e in ents)
    assert any(e.text.endswith("ller") and e.text.startswith("Zoe\u0308") for e in ents)
