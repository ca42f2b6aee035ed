"""`Tagger.tag_table`, `tag_dataframe` (pandas, Polars) and `tag_dataset` (Hugging Face datasets): the rows and
schema `fasttag run` writes for the same input and options, and none of these libraries imported unless used."""

import subprocess
import sys

import datasets
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import OutputOptions, Tagger
from fasttag.cli import cli

TEXTS = varied_sentences(40, seed=53) + ["", None]
TABLE = pa.table({"doc": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS,
                  "meta": [{"n": i, "tags": ["a"] * (i % 3)} for i in range(len(TEXTS))],
                  "year": pa.array([2000 + i for i in range(len(TEXTS))], type=pa.int32())})
OPTION_SETS = [
    ({}, []),
    ({"keep_columns": ["meta", "year"], "min_score": {"*": 0.3, "PER": 0.6}, "labels": ["PER", "LOC", "ORG"]},
     ["--keep-columns", "meta,year", "--min-score", "0.3,PER=0.6", "--labels", "PER,LOC,ORG"]),
    ({"keep_columns": "all", "layout": "flat"}, ["--keep-columns", "all", "--layout", "flat"]),
]


@pytest.fixture(scope="module")
def tagger(bert_export):
    return Tagger.load(bert_export)


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory, bert_export):
    """`fasttag run` over TABLE with each option set, id column doc."""
    root = tmp_path_factory.mktemp("frames")
    pq.write_table(TABLE, root / "in.parquet")
    outputs = []
    for i, (_, flags) in enumerate(OPTION_SETS):
        out = root / f"out{i}.parquet"
        res = CliRunner().invoke(cli, ["run", str(root / "in.parquet"), "-o", str(out), "--model", str(bert_export),
                                       "--id-column", "doc", "-q", *flags])
        assert res.exit_code == 0, res.output
        outputs.append(pq.read_table(out))
    return outputs


def same_rows(got: pa.Table, want: pa.Table) -> None:
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    assert got.to_pylist() == want.to_pylist()


@pytest.mark.parametrize("i", range(len(OPTION_SETS)))
def test_tag_table_gives_runs_rows_and_schema(tagger, run_outputs, i):
    kwargs, _ = OPTION_SETS[i]
    got = tagger.tag_table(TABLE, id_column="doc", **kwargs)
    assert got.schema == run_outputs[i].schema
    same_rows(got, run_outputs[i])
    assert tagger.tag_table(TABLE, id_column="doc", output=OutputOptions(**kwargs)).equals(got)


@pytest.mark.parametrize("i", range(len(OPTION_SETS)))
def test_pandas_dataframe(tagger, run_outputs, i):
    kwargs, _ = OPTION_SETS[i]
    df = TABLE.to_pandas()
    out = tagger.tag_dataframe(df, id_column="doc", **kwargs)
    assert isinstance(out, pd.DataFrame)
    assert all(isinstance(t, pd.ArrowDtype) for t in out.dtypes)  # Arrow-backed: run's types exactly
    back = pa.Table.from_pandas(out, preserve_index=False).replace_schema_metadata(None)
    # the results have run's types; the id and kept columns the types pandas gives Arrow (large_string for str)
    results = [c for c in back.column_names if c not in ("doc", "meta", "year")]
    assert back.select(results).schema == run_outputs[i].select(results).schema
    assert back.to_pylist() == run_outputs[i].to_pylist()


@pytest.mark.parametrize("i", range(len(OPTION_SETS)))
def test_polars_dataframe(tagger, run_outputs, i):
    kwargs, _ = OPTION_SETS[i]
    out = tagger.tag_dataframe(pl.from_arrow(TABLE), id_column="doc", **kwargs)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == run_outputs[i].column_names
    assert out.to_dicts() == run_outputs[i].to_pylist()


def test_polars_lazyframe_and_other_objects_are_refused(tagger):
    with pytest.raises(TypeError, match="collect"):
        tagger.tag_dataframe(pl.from_arrow(TABLE).lazy())
    with pytest.raises(TypeError, match="takes a pandas or Polars DataFrame, got list"):
        tagger.tag_dataframe([["Ada"]])


@pytest.mark.parametrize("i", range(len(OPTION_SETS)))
def test_hugging_face_dataset_in_batches(tagger, run_outputs, i):
    kwargs, _ = OPTION_SETS[i]
    ds = datasets.Dataset(TABLE)
    out = tagger.tag_dataset(ds, id_column="doc", batch_rows=7, **kwargs)  # row numbers go on across batches
    assert isinstance(out, datasets.Dataset)
    same_rows(out.data.table, run_outputs[i])


def test_dataset_row_numbers_follow_select_and_shuffle(tagger):
    ds = datasets.Dataset(TABLE).select([5, 1, 3])
    out = tagger.tag_dataset(ds, layout="nested", batch_rows=2)
    assert out["row"] == [0, 1, 2]
    want = tagger.tag_table(TABLE.take([5, 1, 3]))
    assert out.data.table.column("entities").to_pylist() == want.column("entities").to_pylist()
    with pytest.raises(TypeError, match="takes a datasets.Dataset, got IterableDataset"):
        tagger.tag_dataset(ds.to_iterable_dataset())


def test_pandas_text_with_a_lone_surrogate_is_read_as_tag_reads_it(tagger):
    # Arrow's UTF-8 cannot hold "\ud800": tag() reads it as U+FFFD; tag_dataframe refused the frame
    texts = ["Lon\ud800don is in England", "Paris", None]
    out = tagger.tag_dataframe(pd.DataFrame({"text": pd.Series(texts, dtype=object), "id": [1, 2, 3]}),
                               id_column="id")
    got = [[(e["start"], e["end"], e["label"], e["text"]) for e in row] for row in out["entities"].tolist()]
    assert got == [[(e.start, e.end, e.label, e.text) for e in row] for row in tagger.tag(texts)]
    assert out["id"].tolist() == [1, 2, 3]


def test_pandas_columns_named_by_numbers_are_taken_by_them(tagger):
    # Arrow names a column 0 "0": the argument 0 found "no column 0; columns: 0"
    out = tagger.tag_dataframe(pd.DataFrame({0: ["Ada Lovelace", "Paris"], 1: ["a", "b"]}), text_column=0, id_column=1)
    assert list(out.columns) == ["1", "entities"] and out["1"].tolist() == ["a", "b"]


def test_api_errors_name_the_column(tagger):
    df = TABLE.to_pandas()
    with pytest.raises(Exception, match="no column 'body'"):
        tagger.tag_dataframe(df, text_column="body")
    with pytest.raises(Exception, match="input column 'text' has the name of a column of the flat output"):
        tagger.tag_dataframe(df, keep_columns=["text"], layout="flat")
    with pytest.raises(TypeError, match="unexpected keyword argument 'min_scores'"):
        tagger.tag_table(TABLE, min_scores=0.5)


def test_import_fasttag_imports_no_dataframe_library(bert_export, tmp_path):
    """`import fasttag` and `Tagger.tag` import none of pandas, Polars, datasets or DuckDB; a run with every output
    option, and `tag_table`, import none but pandas, which pyarrow itself imports (when installed) the first time
    it builds an array from Python or NumPy values, as every run did before these options."""
    pq.write_table(TABLE, tmp_path / "in.parquet")
    code = f"""
import sys
import fasttag
from fasttag import Tagger
from fasttag.cli import cli
from fasttag import run, shape, options
LIBS = ("pandas", "polars", "datasets", "duckdb", "torch", "transformers")
assert not [m for m in LIBS if m in sys.modules], [m for m in LIBS if m in sys.modules]
t = Tagger.load({str(bert_export)!r})
t.tag(["Ada Lovelace"])
assert not [m for m in LIBS if m in sys.modules], [m for m in LIBS if m in sys.modules]
from click.testing import CliRunner
res = CliRunner().invoke(cli, ["run", {str(tmp_path / "in.parquet")!r}, "-o", {str(tmp_path / "o.parquet")!r},
                               "--model", {str(bert_export)!r}, "--keep-columns", "all", "--layout", "flat",
                               "--min-score", "0.5", "--labels", "PER", "-q"])
assert res.exit_code == 0, res.output
import pyarrow.parquet as pq
t.tag_table(pq.read_table({str(tmp_path / "in.parquet")!r}), keep_columns="all", min_score=0.5, layout="flat")
loaded = [m for m in LIBS[1:] if m in sys.modules]
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)
