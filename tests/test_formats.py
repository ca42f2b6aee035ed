"""One home for formats (`fasttag.formats`): the same awkward inputs give the same rows to run and show.

tests/test_ray.py feeds the same inputs (`awkward_inputs`) through `--engine ray`.
"""

import codecs
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import formats
from fasttag.cli import cli
from fasttag.errors import InputError, UsageError

TEXTS = varied_sentences(24, seed=5)


def awkward_inputs(root: Path) -> dict[str, Path]:
    """Inputs every reader must read alike: a Parquet folder whose files hold a dictionary and a string_view
    text column beside hidden files that are not data, and a gzipped JSONL file with byte-order marks (one at
    its start, one where a second file was joined on by cat)."""
    folder = root / "folder"
    (folder / "_tmp").mkdir(parents=True)
    pq.write_table(pa.table({"text": pa.array(TEXTS[:10], pa.string()).dictionary_encode()}), folder / "a.parquet")
    pq.write_table(pa.table({"text": pa.array(TEXTS[10:], pa.string_view())}), folder / "b.parquet")
    stray = pa.table({"text": ["Hidden Person from Hidden Town must not be read."]})
    pq.write_table(stray, folder / ".hidden.parquet")
    pq.write_table(stray, folder / "_tmp" / "stray.parquet")
    lines = [json.dumps({"text": t}, ensure_ascii=False).encode() + b"\n" for t in TEXTS]
    data = codecs.BOM_UTF8 + b"".join(lines[:12]) + codecs.BOM_UTF8 + b"".join(lines[12:])
    jsonl = root / "corpus.jsonl.gz"
    jsonl.write_bytes(gzip.compress(data))
    return {"folder": folder, "jsonl": jsonl}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def local_rows(src: Path, out: Path, model: Path) -> list:
    res = invoke("run", src, "-o", out, "--model", model, "-q", "--overwrite")
    assert res.exit_code == 0, res.output
    return pq.read_table(out).to_pylist()


@pytest.mark.parametrize("kind", ["folder", "jsonl"])
def test_awkward_inputs_give_the_same_rows_to_run_and_show(tmp_path, bert_export, kind):
    src = awkward_inputs(tmp_path)[kind]
    rows = local_rows(src, tmp_path / "out.parquet", bert_export)
    assert [r["row"] for r in rows] == list(range(len(TEXTS)))  # no hidden file's row, every text once
    assert [e["text"] for r in rows for e in r["entities"]]  # the tiny model does find entities
    # show tags the same rows: what it draws is what it draws for the run's output on the same input
    shown = invoke("show", src, "--model", bert_export, "--n", 100)
    from_run = invoke("show", "--entities", tmp_path / "out.parquet", "--input", src, "--n", 100)
    assert shown.exit_code == 0 and from_run.exit_code == 0, shown.output + from_run.output
    assert shown.stdout == from_run.stdout  # what is drawn (stderr names the model that tagged)
    assert f"({len(TEXTS)} documents," in shown.output and "Hidden" not in shown.output


def test_one_parser_for_jsonl_lines():
    assert formats.parse_jsonl_line(b"  \n") is None
    line = formats.parse_jsonl_line(codecs.BOM_UTF8 + b'{"text": "x"}\n', 3)
    assert (line.lineno, line.value, line.error, line.bom) == (3, {"text": "x"}, None, True)
    assert formats.parse_jsonl_line('\ufeff{"a": 1}').value == {"a": 1}  # text, as Ray's read_text gives it
    bad = formats.parse_jsonl_line(b'{"text": }\n', 7)
    assert bad.error == "malformed JSON (Expecting value at column 10)" and bad.value is None
    utf8 = formats.parse_jsonl_line(b'{"text": "\xff"}\n')
    assert utf8.error == "invalid UTF-8 (invalid start byte at byte 10)"
    lines = formats.JsonlLines([codecs.BOM_UTF8 + b"{}\n", b"\n", codecs.BOM_UTF8 + b"[1]\n"], "x")
    assert [(line.lineno, line.value) for line in lines] == [(1, {}), (3, [1])]
    assert lines.byte_order_marks == 2


def test_formats_by_suffix(tmp_path):
    assert formats.corpus_format("a.ndjson.gz") == formats.output_format("A.JSONL") == "jsonl"
    assert formats.corpus_format(str(tmp_path)) == "parquet"
    with pytest.raises(UsageError, match="cannot tell the output format"):
        formats.output_format(str(tmp_path))
    assert formats.labelled_format("train.txt.gz") == "conll" and formats.labelled_format("d.ndjson") == "jsonl"
    with pytest.raises(InputError, match="cannot tell the format from the extension"):
        formats.labelled_format("d.parquet.gz")


def test_parquet_listing_skips_hidden_files(tmp_path):
    folder = awkward_inputs(tmp_path)["folder"]
    assert [p.name for p in formats.parquet_files(folder)] == ["a.parquet", "b.parquet"]
    (folder / "a.parquet").unlink()
    (folder / "b.parquet").unlink()
    with pytest.raises(InputError, match="holds no .parquet files"):
        formats.parquet_files(folder)


def test_a_parquet_folder_takes_any_case_and_refuses_other_files(tmp_path, bert_export):
    """A folder's B.PARQUET, c.jsonl and d.parq were left out without a word: only a.parquet's rows were tagged."""
    from fasttag.run import _input_fingerprint

    folder = tmp_path / "mix"
    folder.mkdir()
    pq.write_table(pa.table({"text": TEXTS[:3]}), folder / "a.parquet")
    pq.write_table(pa.table({"text": TEXTS[3:5]}), folder / "B.PARQUET")
    (folder / "_SUCCESS").touch()
    (folder / ".a.parquet.crc").touch()  # hidden files (Spark's) stay skipped
    assert [p.name for p in formats.parquet_files(folder)] == ["B.PARQUET", "a.parquet"]
    assert [entry[0] for entry in _input_fingerprint(str(folder))] == ["B.PARQUET", "a.parquet"]
    assert len(local_rows(folder, tmp_path / "out.parquet", bert_export)) == 5
    (folder / "c.jsonl").write_text(json.dumps({"text": TEXTS[5]}) + "\n")
    (folder / "d.parq").write_bytes((folder / "a.parquet").read_bytes())
    with pytest.raises(InputError, match="c.jsonl, which is not a .parquet file"):
        formats.parquet_files(folder)
    out = tmp_path / "out2.parquet"
    for command in (("run", folder, "-o", out), ("show", folder)):
        res = invoke(*command, "--model", bert_export)
        assert res.exit_code == 1, res.output
        assert res.output.splitlines() == [
            f"Error: folder {folder} holds {folder / 'c.jsonl'}, which is not a .parquet file (and 1 other such "
            "files): a Parquet folder may hold only .parquet files; move it out, or prefix its name with _ to have "
            "it skipped"], res.output
    assert not out.exists()
