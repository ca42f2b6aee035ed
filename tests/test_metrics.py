"""Entity scores (seqeval) in every span scheme, tag-task scores: hand-checked cases, modes, the tables."""

from __future__ import annotations

import pytest

from fasttag.metrics import entity_scores, format_scores_table, format_tag_table, tag_scores
from fasttag.schemes import NO_TAG


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




@pytest.mark.parametrize("scheme, gold, good, ill_formed", [
    ("bioes", "B-PER E-PER S-LOC O", "B-PER E-PER S-LOC O", "B-PER I-PER S-LOC O"),
    ("bilou", "B-PER L-PER U-LOC O", "B-PER L-PER U-LOC O", "B-PER I-PER U-LOC O"),
])
def test_strict_scores_in_the_models_scheme(scheme, gold, good, ill_formed):
    y_true = [gold.split()]
    assert entity_scores(y_true, [good.split()], scheme=scheme)["f1"] == 1.0
    strict = entity_scores(y_true, [ill_formed.split()], scheme=scheme)
    assert strict["precision"] == 1.0 and strict["recall"] == 0.5  # B-PER without its end is no entity
    assert entity_scores(y_true, [good.split()], mode="default", scheme=scheme)["f1"] == 1.0
    with pytest.raises(ValueError, match="span scheme"):
        entity_scores(y_true, y_true, scheme="none")


def test_tag_scores_by_hand():
    y_true = [["NNP", "NNP", "VBZ"], ["DT", "NN"]]
    y_pred = [["NNP", "NN", "VBZ"], ["DT", "NN"]]
    s = tag_scores(y_true, y_pred)
    assert s["accuracy"] == pytest.approx(0.8) and s["correct"] == 4 and s["words"] == 5
    assert s["tags"]["NN"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert s["tags"]["NNP"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert list(s["tags"]) == ["DT", "NN", "NNP", "VBZ"]
    assert s["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3 + 1) / 4)
    # a tag only predicted counts in the macro average, with 0
    assert tag_scores([["A"]], [["B"]])["macro_f1"] == 0.0 and tag_scores([["A"]], [["B"]])["tags"]["B"]["support"] == 0
    with pytest.raises(ValueError, match="sequence 0"):
        tag_scores([["A"]], [["A", "B"]])


def test_tag_scores_no_tag_is_wrong_and_in_no_row():
    """A word with no sub-token has no prediction: a wrong word, not a phantom "O" tag in the macro average."""
    s = tag_scores([["NNP", "NN", "VBD"]], [["NNP", NO_TAG, "VBD"]])
    assert list(s["tags"]) == ["NN", "NNP", "VBD"] and s["correct"] == 2 and s["accuracy"] == pytest.approx(2 / 3)
    assert s["tags"]["NN"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s["macro_f1"] == pytest.approx(2 / 3)


def test_format_tag_table():
    table = format_tag_table(tag_scores([["NN", "VB"]], [["NN", "NN"]]), title="test")
    lines = table.splitlines()
    assert lines[0] == "test" and lines[1].split() == ["tag", "precision", "recall", "f1", "support"]
    assert lines[3].split() == ["NN", "0.5000", "1.0000", "0.6667", "1"]
    assert lines[-2].split()[:2] == ["macro", "avg"]
    assert lines[-1].split()[:3] == ["accuracy", "0.5000", "2"]
