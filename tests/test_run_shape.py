"""`fasttag run --keep-columns / --min-score / --labels / --layout`: checked against an unfiltered run of the same
corpus, on Parquet and JSONL, at every level, resumed, and read back with DuckDB."""

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag.cli import cli
from fasttag.errors import Interrupted, UsageError
from fasttag.options import OutputOptions
from fasttag.run import run
from fasttag.tagger import Tagger
from fasttag.write import work_dir
from interrupt import stop_after as _stop_after

TEXTS = varied_sentences(60, seed=41) + [""]
META = [{"source": f"s{i % 3}", "tags": [f"t{j}" for j in range(i % 3)]} if i % 7 else None for i in range(len(TEXTS))]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def read_rows(path):
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def corpus(tmp_path):
    """The same rows as Parquet and JSONL: a string id, a nested struct column, a small int column."""
    table = pa.table({"doc": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS, "meta": META,
                      "n": pa.array(range(len(TEXTS)), type=pa.int16())})
    pq.write_table(table, tmp_path / "corpus.parquet", row_group_size=13)
    with open(tmp_path / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for row in table.to_pylist():
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return tmp_path


@pytest.fixture()
def reference(corpus, bert_export):
    """Each row's entities from a plain run (no options), by id."""
    out = corpus / "plain.parquet"
    assert invoke("run", corpus / "corpus.parquet", "-o", out, "--model", bert_export, "--id-column", "doc",
                  "-q").exit_code == 0
    return {r["doc"]: r["entities"] for r in read_rows(out)}


def filtered(entities, floors, default=None, labels=None):
    return [e for e in entities if (labels is None or e["label"] in labels)
            and e["score"] >= floors.get(e["label"], default if default is not None else 0.0)]


@pytest.mark.parametrize("src", ["corpus.parquet", "corpus.jsonl"])
@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_kept_columns_and_filters_match_a_plain_run(corpus, reference, bert_export, src, suffix):
    out = corpus / f"out{suffix}"
    res = invoke("run", corpus / src, "-o", out, "--model", bert_export, "--id-column", "doc", "--keep-columns",
                 "meta,n", "--min-score", "0.3,PER=0.5", "--labels", "PER,LOC,ORG", "--chunk-rows", "16")
    assert res.exit_code == 0, res.output
    rows = read_rows(out)
    assert [r["doc"] for r in rows] == list(reference)
    assert list(rows[0]) == ["doc", "meta", "n", "entities"]
    assert [r["meta"] for r in rows] == META and [r["n"] for r in rows] == list(range(len(TEXTS)))
    total = dropped = 0
    for r in rows:
        want = filtered(reference[r["doc"]], {"PER": 0.5}, 0.3, {"PER", "LOC", "ORG"})
        assert [(e["start"], e["end"], e["label"]) for e in r["entities"]] == \
            [(e["start"], e["end"], e["label"]) for e in want]
        total += len(reference[r["doc"]])
        dropped += len(reference[r["doc"]]) - len(want)
    assert 0 < dropped < total  # the filters did something, and not everything
    assert f"{total - dropped:,} entities" in res.output and f"{dropped:,} entities dropped" in res.output
    if suffix == ".parquet":
        schema = pq.read_schema(out)
        assert schema.field("meta").type == pa.struct([("source", pa.string()), ("tags", pa.list_(pa.string()))])
        # Parquet input keeps its declared types; JSONL infers them (an integer is int64)
        assert schema.field("n").type == (pa.int16() if src.endswith(".parquet") else pa.int64())


@pytest.mark.parametrize("src", ["corpus.parquet", "corpus.jsonl"])
def test_flat_layout_is_the_nested_rows_exploded(corpus, reference, bert_export, src):
    out = corpus / "flat.parquet"
    res = invoke("run", corpus / src, "-o", out, "--model", bert_export, "--id-column", "doc", "--layout", "flat",
                 "--keep-columns", "all")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column_names == ["doc", "meta", "n", "start", "end", "label", "score", "text"]
    meta = dict(zip([f"d{i}" for i in range(len(TEXTS))], META, strict=True))
    want = [(doc, meta[doc], e["start"], e["end"], e["label"], e["text"]) for doc, ents in reference.items()
            for e in ents]
    got = [(r["doc"], r["meta"], r["start"], r["end"], r["label"], r["text"]) for r in table.to_pylist()]
    assert got == want
    empty = sum(1 for ents in reference.values() if not ents)
    assert empty >= 1  # the empty text at least
    had = "1 row had no entities and is absent" if empty == 1 else f"{empty:,} rows had no entities and are absent"
    assert f"{had} (--layout flat)" in res.output


def test_flat_jsonl_scores_are_shortest_decimals(corpus, bert_export):
    out = corpus / "flat.jsonl"
    assert invoke("run", corpus / "corpus.parquet", "-o", out, "--model", bert_export, "--layout", "flat",
                  "-q").exit_code == 0
    lines = out.read_text().splitlines()
    assert lines and all(len(str(json.loads(line)["score"])) <= 12 for line in lines)
    assert set(json.loads(lines[0])) == {"row", "start", "end", "label", "score", "text"}


@pytest.mark.parametrize("level", ["words", "tokens"])
def test_filters_and_flat_apply_to_the_levels_items(corpus, bert_export, level):
    plain, out = corpus / "plain.jsonl", corpus / "flat.jsonl"
    assert invoke("run", corpus / "corpus.parquet", "-o", plain, "--model", bert_export, "--level", level,
                  "-q").exit_code == 0
    res = invoke("run", corpus / "corpus.parquet", "-o", out, "--model", bert_export, "--level", level,
                 "--labels", "PER", "--layout", "flat")
    assert res.exit_code == 0, res.output
    # PER matches the items' full labels of type PER (B-PER, I-PER)
    want = [(r["row"], i["start"], i["label"]) for r in read_rows(plain) for i in r[level]
            if i["label"] in ("B-PER", "I-PER")]
    got = [(r["row"], r["start"], r["label"]) for r in read_rows(out)]
    assert got and got == want
    if level == "tokens":
        assert {"index", "token"} <= set(read_rows(out)[0])
    name = "words" if level == "words" else "tagged tokens"
    assert "not in --labels); " in res.output and f"had no {name} and" in res.output


def test_clashes_and_unknown_labels_are_one_line_errors(corpus, bert_export):
    src = corpus / "corpus.parquet"
    for args, message in [
        (["--keep-columns", "text", "--layout", "flat"], "input column 'text' has the name of a column of the flat"),
        (["--keep-columns", "doc", "--id-column", "doc"], "input column 'doc' has the name of the id column"),
        (["--keep-columns", "nope"], "no column 'nope' to keep (--keep-columns); columns found: doc, text, meta, n"),
        (["--labels", "PERSON"], "--labels: the model has no label 'PERSON' at the entities level"),
        (["--min-score", "PER=2"], "--min-score: the score of PER must be a score between 0 and 1"),
    ]:
        res = invoke("run", src, "-o", corpus / "x.parquet", "--model", bert_export, *args)
        assert res.exit_code != 0 and message in res.output, (args, res.output)
        assert "Traceback" not in res.output and not (corpus / "x.parquet").exists()
        assert not work_dir(str(corpus / "x.parquet")).exists()


def test_tokens_column_output_refuses_filters(tmp_path, bert_export):
    src = tmp_path / "tok.parquet"
    pq.write_table(pa.table({"tokens": [["Ada", "Lovelace"]], "url": ["u"]}), src)
    res = invoke("run", src, "-o", tmp_path / "o.parquet", "--model", bert_export, "--tokens-column", "tokens",
                 "--layout", "flat")
    assert res.exit_code == 2 and "--layout flat cannot apply to --tokens-column output" in res.output
    # kept columns are fine there
    res = invoke("run", src, "-o", tmp_path / "o.parquet", "--model", bert_export, "--tokens-column", "tokens",
                 "--keep-columns", "url", "-q")
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "o.parquet").column_names == ["row", "url", "tags", "scores", "entities"]




@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_resume_gives_the_uninterrupted_flat_output_and_checks_the_options(corpus, bert_export, suffix):
    tagger = Tagger.load(bert_export)
    opts = OutputOptions(keep_columns="meta", min_score=0.2, layout="flat")
    src = str(corpus / "corpus.jsonl")
    reference, out = str(corpus / f"ref{suffix}"), str(corpus / f"out{suffix}")
    whole = run(tagger, src, reference, id_column="doc", chunk_rows=10, output_opts=opts)
    with pytest.raises(Interrupted):
        run(tagger, src, out, id_column="doc", chunk_rows=10, output_opts=opts, progress=_stop_after(3))
    with pytest.raises(UsageError, match=r"other settings \(layout, min_score\)"):
        run(tagger, src, out, id_column="doc", chunk_rows=10, resume=True, output_opts=OutputOptions(
            keep_columns="meta"))
    summary = run(tagger, src, out, id_column="doc", chunk_rows=10, resume=True, output_opts=opts)
    assert summary.resumed_rows == 30
    assert open(out, "rb").read() == open(reference, "rb").read()
    assert summary.shape.empty_rows <= whole.shape.empty_rows  # this run counted only the rows it tagged


def test_duckdb_reads_both_layouts_as_the_readme_queries_them(corpus, bert_export):
    """The README's DuckDB queries, run for real over a nested and a flat output of the same corpus."""
    nested, flat = corpus / "entities.parquet", corpus / "flat.parquet"
    for out, extra in ((nested, []), (flat, ["--layout", "flat"])):
        assert invoke("run", corpus / "corpus.parquet", "-o", out, "--model", bert_export, "--id-column", "doc",
                      "--keep-columns", "meta", "-q", *extra).exit_code == 0
    by_nested = duckdb.sql(f"""
        SELECT e.label, count(*) AS n, round(avg(e.score), 3) AS mean_score
        FROM (SELECT unnest(entities) AS e FROM '{nested}')
        GROUP BY e.label ORDER BY n DESC, e.label""").fetchall()
    by_flat = duckdb.sql(f"""
        SELECT label, count(*) AS n, round(avg(score), 3) AS mean_score
        FROM '{flat}' GROUP BY label ORDER BY n DESC, label""").fetchall()
    assert by_nested and by_nested == by_flat
    people = duckdb.sql(f"""
        SELECT doc, meta.source AS source, text FROM '{flat}'
        WHERE label = 'PER' AND score >= 0.5 ORDER BY doc, start""").fetchall()
    plain = read_rows(nested)
    want = [(r["doc"], (r["meta"] or {}).get("source"), e["text"]) for r in plain for e in r["entities"]
            if e["label"] == "PER" and e["score"] >= 0.5]
    assert sorted(people) == sorted(want)


def test_kept_json_field_types_promote_across_chunks_and_conflicts_are_one_line(tmp_path, bert_export):
    src = tmp_path / "in.jsonl"
    rows = [{"text": "Ada", "n": None, "m": {"a": 1}}] * 5 + [{"text": "Bob", "n": 3, "m": {"a": 2, "b": "x"}}] * 5
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--keep-columns", "n,m", "--chunk-rows", "4", "-q")
    assert res.exit_code == 0, res.output
    schema = pq.read_schema(out)
    assert schema.field("n").type == pa.int64()  # null in the first chunk, int64 later
    assert schema.field("m").type == pa.struct([("a", pa.int64()), ("b", pa.string())])
    assert [r["m"] for r in read_rows(out)] == [{"a": 1, "b": None}] * 5 + [{"a": 2, "b": "x"}] * 5

    before = out.read_bytes()
    rows = [{"text": "Ada", "n": 1}] * 4 + [{"text": "Bob", "n": "three"}] * 4
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = invoke("run", src, "-o", out, "--model", bert_export, "--keep-columns", "n", "--chunk-rows", "4",
                 "--overwrite", "-q")
    assert res.exit_code == 1 and "a kept column holds values of different types in different rows" in res.output
    assert "write JSONL instead" in res.output and "Traceback" not in res.output
    assert out.read_bytes() == before and not work_dir(str(out)).exists()  # the earlier output is untouched
    # JSONL output holds each chunk's values as they are
    res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", bert_export, "--keep-columns", "n",
                 "--chunk-rows", "4", "-q")
    assert res.exit_code == 0 and [r["n"] for r in read_rows(tmp_path / "o.jsonl")] == [1] * 4 + ["three"] * 4
    # within one chunk, Arrow has no type for both: one line naming the field
    res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", bert_export, "--keep-columns", "n",
                 "--overwrite", "-q")
    assert res.exit_code == 1 and "field 'n' (--keep-columns) mixes value types" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_kept_parquet_column_declared_differently_per_file(tmp_path, bert_export):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["Ada"], "n": pa.array([1], type=pa.int32())}), folder / "a.parquet")
    pq.write_table(pa.table({"text": ["Bob"], "n": pa.array([2**40], type=pa.int64())}), folder / "b.parquet")
    out = tmp_path / "o.parquet"
    res = invoke("run", folder, "-o", out, "--model", bert_export, "--keep-columns", "n", "-q")
    assert res.exit_code == 0, res.output
    assert pq.read_schema(out).field("n").type == pa.int64()
    assert [r["n"] for r in read_rows(out)] == [1, 2**40]


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_empty_input_and_stdout(tmp_path, bert_export, layout):
    src = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"doc": pa.array([], type=pa.string()), "text": pa.array([], type=pa.string()),
                             "n": pa.array([], type=pa.int16())}), src)
    out = tmp_path / "o.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "doc", "--keep-columns", "n",
                 "--layout", layout, "-q")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema.field("n").type == pa.int16()
    assert table.column_names[-1] == ("entities" if layout == "nested" else "text")
    lines = "".join(json.dumps({"id": i, "text": t, "u": f"u{i}"}) + "\n" for i, t in enumerate(TEXTS[:5]))
    res = CliRunner().invoke(cli, ["run", "-", "-o", "-", "--model", str(bert_export), "--id-column", "id",
                                   "--keep-columns", "u", "--layout", layout, "-q"], input=lines)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert all(r["u"] == f"u{r['id']}" for r in rows) and rows
