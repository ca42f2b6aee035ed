"""Entity scores (seqeval): hand-checked cases, strict and default modes, the table."""

from __future__ import annotations

import pytest

from fasttag.metrics import entity_scores, format_scores_table


def test_scores_by_hand():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    y_pred = [["B-PER", "I-PER", "O", "B-PER"], ["I-LOC", "O"]]
    scores = entity_scores(y_true, y_pred)
    assert scores["support"] == 3
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["types"]["PER"]["precision"] == pytest.approx(0.5)
    assert scores["types"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_default_mode_accepts_a_stray_inside_tag():
    y_true, y_pred = [["B-LOC", "I-LOC", "O"]], [["I-LOC", "I-LOC", "O"]]
    assert entity_scores(y_true, y_pred, mode="strict")["f1"] == 0.0
    assert entity_scores(y_true, y_pred, mode="default")["f1"] == 1.0


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


