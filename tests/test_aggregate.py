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


def test_labels_without_prefix_are_a_tag_task_one_span_per_word():
    """No prefixes: a tag task (fasttag.schemes), whose labels are tags of words, not entities. The entities
    level refuses it; grouping its units anyway gives each tagged unit a span of its own, never a run."""
    scheme = LabelScheme.from_labels(["O", "PER", "LOC"])
    assert scheme.kind == "tag" and scheme.word_labels == ["O", "PER", "LOC"]
    probs = np.eye(3, dtype=np.float32)[[1, 1, 0, 2]]
    sp = decode_spans(probs, np.array([(0, 1), (1, 2), (2, 3), (3, 4)]), np.array([0, 4]), scheme)
    got = [(int(a), int(b), scheme.group_labels[lab]) for a, b, lab in zip(sp.start, sp.end, sp.label, strict=True)]
    assert got == [(0, 1, "PER"), (1, 2, "PER"), (3, 4, "LOC")]


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


# -- every span scheme by one rule (fasttag.schemes), and the words and tokens levels ----------------------
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
BILOU = ["O", "B-PER", "I-PER", "L-PER", "U-PER", "B-creative-work", "I-creative-work", "L-creative-work",
         "U-creative-work"]


def decode_with(labels, tags, strategy="simple", level="entities"):
    from fasttag.aggregate import decode_words

    scheme = LabelScheme.from_labels(labels)
    probs = np.full((len(tags), len(labels)), 0.01, dtype=np.float32)
    probs[np.arange(len(tags)), [labels.index(t) for t in tags]] = 0.9
    offsets = np.array([(2 * i, 2 * i + 1) for i in range(len(tags))])
    decode = decode_words if level == "words" else decode_spans
    sp = decode(probs, offsets, np.array([0, len(tags)]), scheme, strategy, is_subword=np.zeros(len(tags), bool))
    names = scheme.word_labels if level == "words" else scheme.group_labels
    if level == "words":
        return [names[lab] for lab in sp.label]
    return [(int(a) // 2, (int(b) + 1) // 2, names[lab]) for a, b, lab in zip(sp.start, sp.end, sp.label, strict=True)]


@pytest.mark.parametrize("tags, expected", [
    ("S-PER S-PER", [(0, 1, "PER"), (1, 2, "PER")]),  # two one-word entities (the pipeline: one S-PER... group)
    ("B-PER I-PER E-PER", [(0, 3, "PER")]),  # one entity (the pipeline: B-PER I-PER, then E-PER apart)
    ("B-PER E-PER S-PER", [(0, 2, "PER"), (2, 3, "PER")]),
    ("O E-PER O", [(1, 2, "PER")]),  # a stray E- is a one-word entity, never dropped
    ("B-PER E-PER I-PER", [(0, 2, "PER"), (2, 3, "PER")]),  # an I- after E- starts a new entity
    ("B-PER I-LOC E-LOC", [(0, 1, "PER"), (1, 3, "LOC")]),  # a type change starts one
    ("I-PER I-PER", [(0, 2, "PER")]),  # a stray I- starts one and the next continues it, as the pipeline reads IOB2
])
@pytest.mark.parametrize("strategy", ["simple", "first"])
def test_bioes_entities(tags, expected, strategy):
    assert decode_with(BIOES, tags.split(), strategy) == expected


def test_bilou_and_hyphenated_types():
    assert decode_with(BILOU, "U-PER B-creative-work L-creative-work U-creative-work".split()) == [
        (0, 1, "PER"), (1, 3, "creative-work"), (3, 4, "creative-work")]


@pytest.mark.parametrize("labels", [LABELS, BIOES, BILOU])
def test_vectorized_decoding_is_the_reference_span_rule(labels):
    from fasttag.schemes import spans

    rng = np.random.default_rng(1)
    for _ in range(300):
        tags = [labels[i] for i in rng.integers(0, len(labels), size=rng.integers(1, 10))]
        assert decode_with(labels, tags) == spans(tags), tags


def test_words_carry_iob2_tags_by_the_span_rule():
    # S- begins and ends; E- continues and ends; a stray E- begins; an I- after E- begins a new entity
    assert decode_with(BIOES, "S-PER B-PER E-PER O E-LOC I-LOC I-LOC".split(), "first", "words") == \
        "B-PER B-PER I-PER O B-LOC B-LOC I-LOC".split()
    assert decode_with(LABELS, "I-PER I-PER O B-LOC".split(), "first", "words") == "B-PER I-PER O B-LOC".split()
    assert decode_with(BILOU, "U-creative-work L-creative-work".split(), "first", "words") == [
        "B-creative-work", "B-creative-work"]


def test_tokens_level_keeps_full_labels_and_drops_o():
    from fasttag.aggregate import decode_tokens

    scheme = LabelScheme.from_labels(BIOES)
    tags = "O S-PER B-LOC O E-LOC".split()
    probs = np.eye(len(BIOES), dtype=np.float32)[[BIOES.index(t) for t in tags]]
    sp = decode_tokens(probs, np.array([(i, i + 1) for i in range(5)]), np.array([0, 2, 5]), scheme,
                       skip=np.array([False, False, False, False, True]))
    assert [scheme.labels[lab] for lab in sp.label] == ["S-PER", "B-LOC"]
    assert sp.doc.tolist() == [0, 1] and sp.token.tolist() == [1, 2]


def test_text_slices_are_the_python_slices():
    from fasttag.entities import text_slices

    texts = ["Zoë 🚀 Ünïcode", "", "abc", "東京都で"]
    doc, start, end = np.array([0, 0, 2, 3, 0]), np.array([0, 4, 1, 1, 6]), np.array([3, 5, 3, 4, 13])
    expected = [texts[d][a:b] for d, a, b in zip(doc, start, end, strict=True)]
    assert text_slices(texts, doc, start, end).to_pylist() == expected
