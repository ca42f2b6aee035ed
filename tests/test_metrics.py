"""Entity scores: hand-checked cases, and equality with seqeval's strict IOB2 mode."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttag.metrics import entity_scores, format_scores_table, strict_spans

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_strict_spans_ignore_stray_inside_tags():
    tags = ["B-PER", "I-PER", "I-LOC", "O", "I-PER", "B-LOC", "B-LOC", "I-LOC"]
    assert strict_spans(tags, 3) == [(3, "PER", 0, 2), (3, "LOC", 5, 6), (3, "LOC", 6, 8)]


def test_scores_by_hand():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    y_pred = [["B-PER", "I-PER", "O", "B-PER"], ["I-LOC", "O"]]
    scores = entity_scores(y_true, y_pred)
    assert (scores["correct"], scores["predicted"], scores["support"]) == (1, 2, 3)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["types"]["PER"]["precision"] == pytest.approx(0.5)
    assert scores["types"]["LOC"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2, "predicted": 0, "correct": 0
    }


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sequence 0: 2 true tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="1 true sequences but 0 predicted"):
        entity_scores([["O"]], [])


def test_format_scores_table():
    scores = entity_scores([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "O"]])
    table = format_scores_table(scores, title="validation")
    lines = table.splitlines()
    assert lines[0] == "validation"
    assert lines[1].split() == ["type", "precision", "recall", "f1", "support"]
    assert lines[3].split() == ["LOC", "0.0000", "0.0000", "0.0000", "1"]
    assert lines[-1].split() == ["overall", "1.0000", "0.5000", "0.6667", "2"]


sentences = st.lists(
    st.lists(st.sampled_from(TAGS), min_size=1, max_size=8), min_size=1, max_size=6
)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval averages empty arrays
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_equals_seqeval_strict_iob2(data):
    seqeval = pytest.importorskip("seqeval.metrics")
    from seqeval.scheme import IOB2

    y_true = data.draw(sentences)
    y_pred = [data.draw(st.lists(st.sampled_from(TAGS), min_size=len(s), max_size=len(s)))
              for s in y_true]
    ours = entity_scores(y_true, y_pred)
    kwargs = dict(mode="strict", scheme=IOB2, zero_division=0)
    assert ours["precision"] == pytest.approx(seqeval.precision_score(y_true, y_pred, **kwargs))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(y_true, y_pred, **kwargs))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(y_true, y_pred, **kwargs))
    report = seqeval.classification_report(y_true, y_pred, output_dict=True, **kwargs)
    for kind, s in ours["types"].items():
        for key in ("precision", "recall", "f1"):
            assert s[key] == pytest.approx(report[kind][key if key != "f1" else "f1-score"])
        assert s["support"] == report[kind]["support"]
