"""Task detection and the span rule shared by every command (fasttag.schemes)."""

import numpy as np
import pytest

from fasttag.schemes import SchemeError, SpanTable, Task, check_scheme, convert, detect_task, render, spans, split_label


def test_split_label_keeps_hyphenated_types():
    assert split_label("B-creative-work") == ("B", "creative-work")
    assert split_label("NNP") == (None, "NNP")
    assert split_label("-LRB-") == (None, "-LRB-")
    assert split_label("PRP$") == (None, "PRP$")


@pytest.mark.parametrize("labels, task", [
    (["O", "B-PER", "I-PER"], Task("span", "iob2")),
    (["O", "B-PER", "I-PER", "E-PER", "S-PER"], Task("span", "bioes")),
    (["O", "B-PER", "I-PER", "L-PER", "U-PER"], Task("span", "bilou")),
    (["NN", "NNP", "-LRB-", "O"], Task("tag", "none")),
    (["NOUN", "VERB"], Task("tag", "none")),
])
def test_detect_task(labels, task):
    assert detect_task(labels) == task


def test_detect_task_refuses_mixed_sets():
    with pytest.raises(SchemeError, match="mix schemes.*NNP"):
        detect_task(["O", "B-PER", "NNP"])
    with pytest.raises(SchemeError, match="BIOES.*BILOU"):
        detect_task(["O", "S-PER", "U-LOC"])


def test_check_scheme():
    check_scheme(["O", "B-X", "E-X"], "bioes")
    with pytest.raises(SchemeError, match="not IOB2"):
        check_scheme(["O", "B-X", "E-X"], "iob2")
    with pytest.raises(SchemeError, match="tag task"):
        check_scheme(["NN", "B-X"], "none")


@pytest.mark.parametrize("tags, expected", [
    ("B-X I-X O B-Y", [(0, 2, "X"), (3, 4, "Y")]),
    ("B-X E-X S-X", [(0, 2, "X"), (2, 3, "X")]),  # S- after E- of the same type: two entities
    ("B-X I-X E-X I-X", [(0, 3, "X"), (3, 4, "X")]),  # I- after E-: a new entity
    ("O E-X", [(1, 2, "X")]),  # stray E-: a one-word entity, not dropped
    ("I-X I-X B-X", [(0, 2, "X"), (2, 3, "X")]),  # IOB1 reads the same
    ("B-X L-X U-Y", [(0, 2, "X"), (2, 3, "Y")]),
    ("B-X I-Y", [(0, 1, "X"), (1, 2, "Y")]),
    ("U-creative-work", [(0, 1, "creative-work")]),
])
def test_spans(tags, expected):
    assert spans(tags.split()) == expected


def test_render_and_convert_round_trip():
    iob2 = "B-PER I-PER O B-LOC B-LOC I-LOC I-LOC O".split()
    assert convert(iob2, "bioes") == "B-PER E-PER O S-LOC B-LOC I-LOC E-LOC O".split()
    assert convert(iob2, "bilou") == "B-PER L-PER O U-LOC B-LOC I-LOC L-LOC O".split()
    assert convert(iob2, "iob1") == "I-PER I-PER O I-LOC B-LOC I-LOC I-LOC O".split()
    for scheme in ("bioes", "bilou", "iob1"):
        assert convert(convert(iob2, scheme), "iob2") == iob2
    assert render([], 2, "iob2") == ["O", "O"]


def test_vectorized_rule_matches_reference():
    labels = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    table = SpanTable.from_labels(labels)
    rng = np.random.default_rng(0)
    for _ in range(200):
        ids = rng.integers(0, len(labels), size=rng.integers(1, 12))
        first = np.zeros(len(ids), dtype=bool)
        first[0] = True
        starts = np.flatnonzero(table.starts(ids, first))
        bounds = np.append(starts, len(ids))
        groups = [(a, b, labels[ids[a]].split("-", 1)[-1]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
                  if labels[ids[a]] != "O"]
        assert groups == spans([labels[i] for i in ids]), [labels[i] for i in ids]
