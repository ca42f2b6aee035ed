"""`fasttag.shape`: kept columns, --min-score / --labels filters and the flat layout, on hand-made result arrays
(no model), checked against a plain Python filter and explode of the same rows."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttag.entities import ENTITIES_TYPE, TOKENS_TYPE, WORDS_TYPE
from fasttag.errors import UsageError
from fasttag.options import MinScore, OutputOptions, parse_keep_columns, parse_labels, parse_min_score
from fasttag.shape import Shaper

ENTITY_LABELS = ["LOC", "MISC", "ORG", "PER"]
WORD_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def item(label, score, start=0, end=1, text="x"):
    return {"start": start, "end": end, "label": label, "score": score, "text": text}


ROWS = [
    [item("PER", 0.95, 0, 3, "Ada"), item("LOC", 0.55, 8, 14, "London"), item("ORG", 0.7, 20, 24, "Acme")],
    [],
    [item("PER", 0.8), item("MISC", 0.99)],
    [item("LOC", 0.4)],
]


def results(rows, type_=ENTITIES_TYPE, name="entities"):
    return {name: pa.array(rows, type=type_)}


def ids(n):
    return pa.array(np.arange(n, dtype=np.int64))


def expected(rows, floor, allowed):
    return [[e for e in row if allowed(e["label"]) and (floor(e["label"]) is None or e["score"] >= floor(e["label"]))]
            for row in rows]


def rounded(rows):
    return [[{**e, "score": round(e["score"], 5)} for e in row] for row in rows]


# -- option parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize("value, default, per_label", [
    ("0.6", 0.6, {}),
    (0.6, 0.6, {}),
    ("PER=0.9,ORG=0.7", None, {"PER": 0.9, "ORG": 0.7}),
    ("0.5, PER=0.9", 0.5, {"PER": 0.9}),
    ({"PER": 0.9, "*": 0.2}, 0.2, {"PER": 0.9}),
    ("B-creative-work=0.3", None, {"B-creative-work": 0.3}),
])
def test_min_score_forms(value, default, per_label):
    parsed = parse_min_score(value)
    assert parsed == MinScore(default, tuple(sorted(per_label.items())))
    assert parsed.floor("PER") == per_label.get("PER", default)


@pytest.mark.parametrize("value, message", [
    ("1.5", "between 0 and 1"), ("-0.1", "between 0 and 1"), ("PER=x", "the score of PER is not a number"),
    ("0.5,0.6", "more than one default"), ("PER=0.1,PER=0.2", "'PER' is given twice"), ("=0.5", "names no label"),
    ("PER=0.9,", "an empty item"), (True, "takes a score"), (["0.5"], "takes a score"),
])
def test_min_score_refusals_name_the_option(value, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_min_score(value)
    assert str(info.value).startswith("--min-score")


def test_labels_and_keep_columns_forms():
    assert parse_labels("PER, ORG") == ("PER", "ORG") == parse_labels(["PER", "ORG"])
    assert parse_keep_columns("all") == "all" and parse_keep_columns(None) == () == parse_keep_columns([])
    assert parse_keep_columns("a,b") == ("a", "b") == parse_keep_columns(("a", "b"))
    for bad, message in (("a,,b", "names separated by commas"), ("a,a", "'a' twice"), (3, "takes column names")):
        with pytest.raises(UsageError, match=message):
            parse_keep_columns(bad)
    with pytest.raises(UsageError, match="--labels names 'PER' twice"):
        parse_labels("PER,PER")
    with pytest.raises(UsageError, match="--layout must be one of nested, flat"):
        OutputOptions(layout="wide")


def test_resume_state_is_json_and_compares_equal_for_equal_options():
    import json

    a = OutputOptions(keep_columns="a,b", min_score="0.5,PER=0.9", labels="PER", layout="flat")
    b = OutputOptions(keep_columns=["a", "b"], min_score={"PER": 0.9, "*": 0.5}, labels=["PER"], layout="flat")
    assert json.loads(json.dumps(a.resume_state())) == b.resume_state()
    assert a.resume_state() != OutputOptions().resume_state()


# -- filters ---------------------------------------------------------------------------------------

def test_default_and_per_label_floors_and_labels():
    shaper = Shaper(OutputOptions(min_score="0.6,PER=0.9", labels="PER,LOC,MISC"), "entities", ENTITY_LABELS)
    table, stats = shaper.shape("row", ids(len(ROWS)), None, results(ROWS))
    floors = {"PER": 0.9}
    want = expected(ROWS, lambda lab: floors.get(lab, 0.6), lambda lab: lab in {"PER", "LOC", "MISC"})
    assert rounded(table.column("entities").to_pylist()) == rounded(want)
    assert stats.other_label == 1  # ORG
    assert stats.below_score == 3  # LOC 0.55, PER 0.8, LOC 0.4
    assert stats.empty_rows == 2  # row 1 had none, row 3 lost its only one
    assert table.schema.field("entities").type == ENTITIES_TYPE


def test_per_label_floor_leaves_other_labels_unfiltered():
    table, stats = Shaper(OutputOptions(min_score="PER=0.9"), "entities", ENTITY_LABELS).shape(
        "row", ids(len(ROWS)), None, results(ROWS))
    assert [len(r) for r in table.column("entities").to_pylist()] == [3, 0, 1, 1]
    assert stats.below_score == 1 and stats.other_label == 0


def test_a_label_the_model_lacks_is_refused():
    with pytest.raises(UsageError, match="--labels: the model has no label 'PERS' at the entities level"):
        Shaper(OutputOptions(labels="PERS"), "entities", ENTITY_LABELS)
    with pytest.raises(UsageError, match="--min-score: the model has no label 'B-PER'"):
        Shaper(OutputOptions(min_score="B-PER=0.5"), "entities", ENTITY_LABELS)


def test_words_level_matches_a_type_and_a_full_label_takes_precedence():
    rows = [[item("B-PER", 0.95), item("I-PER", 0.5), item("O", 0.99), item("B-LOC", 0.7)], [item("I-PER", 0.85)]]
    shaper = Shaper(OutputOptions(min_score="PER=0.9,I-PER=0.8", labels="PER"), "words", WORD_LABELS)
    table, stats = shaper.shape("row", ids(2), None, results(rows, WORDS_TYPE, "words"))
    assert [[w["label"] for w in r] for r in table.column("words").to_pylist()] == [["B-PER"], ["I-PER"]]
    assert stats.other_label == 2 and stats.below_score == 1


def test_pretokenized_output_refuses_filters_and_flat():
    fields = [pa.field("tags", pa.list_(pa.string())), pa.field("scores", pa.list_(pa.float32()))]
    for opts in (OutputOptions(min_score=0.5), OutputOptions(labels="PER"), OutputOptions(layout="flat")):
        with pytest.raises(UsageError, match="cannot apply to --tokens-column output"):
            Shaper(opts, "entities", ENTITY_LABELS, pretokenized=True, result_fields=fields)
    Shaper(OutputOptions(keep_columns="a"), "entities", ENTITY_LABELS, pretokenized=True, result_fields=fields)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.tuples(st.sampled_from(ENTITY_LABELS), st.floats(0, 1, width=32)), max_size=5),
                     max_size=8),
       default=st.one_of(st.none(), st.floats(0, 1)), per=st.dictionaries(st.sampled_from(ENTITY_LABELS),
                                                                         st.floats(0, 1), max_size=2),
       keep=st.one_of(st.none(), st.sets(st.sampled_from(ENTITY_LABELS), min_size=1)))
def test_filter_equals_a_plain_python_filter(rows, default, per, keep):
    data = [[item(lab, sc) for lab, sc in row] for row in rows]
    opts = OutputOptions(min_score=({**per, "*": default} if default is not None else per) or None,
                         labels=sorted(keep) if keep else None)
    table, stats = Shaper(opts, "entities", ENTITY_LABELS).shape("row", ids(len(data)), None, results(data))
    scored = [[{**e, "score": float(np.float32(e["score"]))} for e in row] for row in data]
    want = expected(scored, lambda lab: per.get(lab, default) if opts.min_score else None,
                    lambda lab: keep is None or lab in keep)
    assert table.column("entities").to_pylist() == want
    assert stats.dropped == sum(map(len, data)) - sum(map(len, want))
    assert stats.empty_rows == sum(1 for r in want if not r)


# -- kept columns and the flat layout --------------------------------------------------------------

KEPT = pa.table({"meta": pa.array([{"u": 1, "tags": ["a"]}, None, {"u": 3, "tags": []}, {"u": 4, "tags": ["b"]}]),
                 "n": pa.array([1, 2, 3, 4], type=pa.int16())})


def test_nested_keeps_columns_with_their_types_between_id_and_results():
    table, _ = Shaper(OutputOptions(keep_columns="meta,n"), "entities", ENTITY_LABELS).shape(
        "doc", pa.array(["a", "b", "c", "d"]), KEPT, results(ROWS))
    assert table.column_names == ["doc", "meta", "n", "entities"]
    assert table.schema.field("meta").type == KEPT.schema.field("meta").type
    assert table.schema.field("n").type == pa.int16()
    assert table.column("meta").to_pylist() == KEPT.column("meta").to_pylist()


def test_flat_is_one_row_per_result_with_the_row_columns_repeated():
    shaper = Shaper(OutputOptions(keep_columns="meta,n", layout="flat", min_score=0.5), "entities", ENTITY_LABELS)
    table, stats = shaper.shape("doc", pa.array(["a", "b", "c", "d"]), KEPT, results(ROWS))
    assert table.schema == shaper.schema(pa.field("doc", pa.string()), list(KEPT.schema))
    assert table.column_names == ["doc", "meta", "n", "start", "end", "label", "score", "text"]
    kept = KEPT.to_pylist()
    want = [{"doc": d, **kept[i], **e} for i, (d, row) in enumerate(zip("abcd", ROWS, strict=True))
            for e in row if e["score"] >= 0.5]
    got = table.to_pylist()
    assert [{**r, "score": round(r["score"], 5)} for r in got] == [{**r, "score": round(r["score"], 5)} for r in want]
    assert stats.empty_rows == 2 and stats.below_score == 1


def test_flat_tokens_level_keeps_index_and_token():
    rows = [[{**item("B-PER", 0.9, 0, 3, "Ada"), "index": 1, "token": "ada"}], []]
    labels = ["O", "B-PER", "I-PER"]
    table, stats = Shaper(OutputOptions(layout="flat"), "tokens", labels).shape(
        "row", ids(2), None, results(rows, TOKENS_TYPE, "tokens"))
    assert table.to_pylist() == [{"row": 0, **{**rows[0][0], "score": pytest.approx(0.9)}}]
    assert table.column_names[-2:] == ["index", "token"] and stats.empty_rows == 1


def test_flat_of_no_results_is_an_empty_table_of_the_schema():
    shaper = Shaper(OutputOptions(layout="flat"), "entities", ENTITY_LABELS)
    table, stats = shaper.shape("row", ids(2), None, results([[], []]))
    assert table.num_rows == 0 and stats.empty_rows == 2
    assert table.schema == shaper.schema(pa.field("row", pa.int64()))


@pytest.mark.parametrize("layout, name, message", [
    ("nested", "entities", "a column of the nested output"),
    ("nested", "words", "a column of the nested output"),  # any result column name, whatever the level
    ("flat", "text", "a column of the flat output"),
    ("flat", "score", "a column of the flat output"),
    ("nested", "doc", "the id column"),
])
def test_a_kept_name_the_output_uses_is_refused(layout, name, message):
    shaper = Shaper(OutputOptions(keep_columns=name, layout=layout), "entities", ENTITY_LABELS)
    with pytest.raises(UsageError, match=f"--keep-columns: input column '{name}' has the name of {message}"):
        shaper.kept_names(["doc", "text", name], "text", "doc")


def test_keep_all_is_every_column_but_the_text_and_id():
    shaper = Shaper(OutputOptions(keep_columns="all", layout="flat"), "entities", ENTITY_LABELS)
    assert shaper.kept_names(["doc", "text", "url", "date"], "text", "doc") == ["url", "date"]
    assert Shaper(OutputOptions(keep_columns="all"), "entities", ENTITY_LABELS).kept_names(
        ["text", "url"], "text", None) == ["url"]


def test_bench_runs_and_its_baseline_agrees(capsys):
    """bench/shape.py checks that the shaper and the plain Python baseline give the same rows before timing."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_shape", Path(__file__).parent.parent / "bench" / "shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--rows", "500", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "500 rows" in out and "x python-loop" in out
