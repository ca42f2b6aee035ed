"""Bad input, model faults, crash safety and --resume: nothing lost, nothing half-written, one-line errors."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import sentences_parquet, varied_sentences
from fasttag import Tagger
from fasttag.cli import cli
from fasttag.errors import UsageError
from fasttag.run import Interrupted, run
from fasttag.write import lock_path, work_dir
from interrupt import stop_after as _stop_after

FASTTAG = [sys.executable, "-c", "from fasttag.cli import main; main()"]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def write_jsonl(path, rows, raw_lines=()):
    with open(path, "wb") as fh:
        for r in rows:
            fh.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
        for line in raw_lines:
            fh.write(line)
    return path


def assert_valid(rows, texts):
    assert len(rows) == len(texts)
    for ents, text in zip(rows, texts, strict=True):
        text = text if isinstance(text, str) else ""
        prev_end = 0
        for e in ents:
            assert prev_end <= e["start"] < e["end"] <= len(text)
            assert e["text"] == text[e["start"]:e["end"]]
            prev_end = e["end"]


HARD_TEXTS = [
    "", "   \t\n ", "a\x00b\x00c NUL", "ctrl \x01\x02\x1b[31m red \x7f", "emoji 🚀🔥👩‍👩‍👧 Zoë",
    "e\u0301te\u0301 combining marks", "مرحبا بالعالم RTL עברית", "東京都で会議が開かれた。北京市",
    "\u202eoverride\u202c", "\ud7ff\ue000 private",
    "x" * 3000, "word " * 700,
]


def test_hard_texts_and_nulls_keep_every_row(tmp_path, bert_export):
    texts = HARD_TEXTS + [None, 42, ["list"], {"a": 1}]
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export)
    assert res.exit_code == 0, res.output
    assert "4 rows with null or non-string text" in res.output
    table = pq.read_table(out)
    assert table.column("row").to_pylist() == list(range(len(texts)))
    rows = table.column("entities").to_pylist()
    assert_valid(rows, texts)
    assert rows[-4:] == [[], [], [], []]


@pytest.mark.slow  # a million tokens through the tiny model
def test_five_megabyte_document(tmp_path, bert_export):
    doc = " ".join(varied_sentences(40_000, seed=8))[: 5_000_000]
    src = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": [doc, "Ada"]}), src)
    out = tmp_path / "big.out.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export, "-q")
    assert res.exit_code == 0, res.output
    rows = pq.read_table(out).column("entities").to_pylist()
    assert_valid(rows, [doc, "Ada"])
    assert rows[0][-1]["end"] > 0.99 * len(doc)


BAD_LINES = {
    "malformed": b'{"text": "unterminated\n',
    "not an object": b'["text", "in a list"]\n',
    "invalid utf-8": b'{"text": "caf\xe9"}\n',
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_bad_jsonl_line_stops_with_file_and_line(tmp_path, bert_export, kind):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "ok"}] * 3, [BAD_LINES[kind]])
    out = tmp_path / "out.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export)
    assert res.exit_code == 1
    assert f"{src}, line 4" in res.output and "--on-error skip" in res.output
    assert "Traceback" not in res.output
    assert not out.exists() and not work_dir(str(out)).exists()
    assert list(tmp_path.iterdir()) == [src]


def test_skip_bad_lines_records_rejects(tmp_path, bert_export):
    lines = [b'{"text": "Ada Lovelace"}\n', BAD_LINES["malformed"], b'{"text": "Paris"}\n', BAD_LINES["invalid utf-8"],
             b"\n", BAD_LINES["not an object"], b'{"text": "London"}\n']
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(lines))
    out = tmp_path / "out.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "3 bad lines skipped" in res.output
    assert len(out.read_text().splitlines()) == 3
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 4, 6]
    assert rejects[0]["raw"] == BAD_LINES["malformed"].decode().rstrip("\n")


def test_missing_text_column_lists_columns(tmp_path, bert_export):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"body": ["x"], "id": [1]}), src)
    res = invoke("run", src, "-o", tmp_path / "o.parquet", "--model", bert_export)
    assert res.exit_code == 1 and "no text column 'text'; columns found: body, id" in res.output
    src2 = write_jsonl(tmp_path / "in.jsonl", [{"body": "x"}])
    res = invoke("run", src2, "-o", tmp_path / "o.parquet", "--model", bert_export)
    assert res.exit_code == 1 and "line 1" in res.output and "fields found: body" in res.output


def test_a_later_jsonl_line_without_the_text_field_is_a_bad_line(tmp_path, bert_export):
    rows = [{"text": "Anna lives in Berlin."}, {"body": "lost field"}, {"text": "Bob works at Acme."}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "o.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export)
    assert res.exit_code == 1 and "line 2: no text field 'text' (fields: body)" in res.output
    assert "--on-error skip" in res.output and not out.exists()
    res = invoke("run", src, "-o", out, "--model", bert_export, "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "1 bad line skipped" in res.output
    assert pq.read_table(out).column("row").to_pylist() == [0, 1]
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], json.loads(r["raw"])) for r in rejects] == [(2, {"body": "lost field"})]


def test_wrong_text_type_corrupt_and_truncated_parquet(tmp_path, bert_export):
    src = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), src)
    res = invoke("run", src, "-o", tmp_path / "o.parquet", "--model", bert_export)
    assert res.exit_code == 1 and "has type int64, expected string" in res.output
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"text": varied_sentences(500)}), good)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really parquet")
    for bad in (truncated, garbage):
        res = invoke("run", bad, "-o", tmp_path / "o.parquet", "--model", bert_export)
        assert res.exit_code == 1 and str(bad) in res.output and "Parquet" in res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_empty_input_gives_empty_output_with_schema(tmp_path, bert_export, fmt):
    src = tmp_path / f"empty.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"text": pa.array([], pa.string())}), src)
    else:
        src.write_text("")
    out = tmp_path / "o.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export)
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema.names == ["row", "entities"]


def test_usage_errors(tmp_path, bert_export):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "x"}])
    assert invoke("run", src, "-o", src, "--model", bert_export).exit_code == 2
    assert invoke("run", src, "-o", tmp_path / "o.csv", "--model", bert_export).exit_code == 2
    assert invoke("run", src, "-o", tmp_path / "o.parquet", "--overwrite", "--resume").exit_code == 2
    assert invoke("run", tmp_path / "missing.jsonl", "-o", tmp_path / "o.parquet", "--model",
                  bert_export).exit_code == 1


def test_model_faults(tmp_path, bert_export):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "x"}])
    out = tmp_path / "o.parquet"
    empty = tmp_path / "empty-model"
    empty.mkdir()
    res = invoke("run", src, "-o", out, "--model", empty)
    assert res.exit_code == 1 and "lacks model.onnx, tokenizer.json" in res.output
    corrupt = tmp_path / "corrupt"
    shutil.copytree(bert_export, corrupt)
    (corrupt / "model.onnx").write_bytes(b"\x00garbage")
    res = invoke("run", src, "-o", out, "--model", corrupt)
    assert res.exit_code == 1 and "cannot load" in res.output and "Traceback" not in res.output
    bad_tok = tmp_path / "badtok"
    shutil.copytree(bert_export, bad_tok)
    (bad_tok / "tokenizer.json").write_text("{not json")
    res = invoke("run", src, "-o", out, "--model", bad_tok)
    assert res.exit_code == 1 and "cannot load tokenizer" in res.output


def test_unexpected_onnx_inputs(tmp_path, bert_export):
    import onnx
    from onnx import TensorProto, helper

    weird = tmp_path / "weird"
    shutil.copytree(bert_export, weird)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["pixel_values"], ["logits"])], "g",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 18)]),
              weird / "model.onnx")
    res = invoke("run", write_jsonl(tmp_path / "in.jsonl", [{"text": "x"}]), "-o", tmp_path / "o.parquet", "--model",
                 weird)
    assert res.exit_code == 1 and "unexpected ONNX inputs ['pixel_values']" in res.output


# -- crash safety ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kill_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    texts = varied_sentences(3000, seed=21)
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": texts}), root / "in.parquet",
                   row_group_size=333)
    return root / "in.parquet"


def _run_args(src, out, model, *extra):
    return FASTTAG + ["run", str(src), "-o", str(out), "--model", str(model), "--id-column", "id", "--chunk-rows",
                      "100",
                      "--batch-tokens", "512", "--threads", "1", "-q", *extra]


@pytest.mark.slow  # real subprocesses killed mid-run; the fast lane resumes in-process (test_resume_over_*)
@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path, bert_export, kill_corpus, fmt):
    reference = tmp_path / f"ref.{fmt}"
    subprocess.run(_run_args(kill_corpus, reference, bert_export), check=True)
    out = tmp_path / f"out.{fmt}"
    parts = work_dir(str(out))
    for wanted in (3, 12):  # kill, resume and kill again, then finish
        proc = subprocess.Popen(_run_args(kill_corpus, out, bert_export, "--resume"))
        deadline = time.time() + 120
        while time.time() < deadline and len(list(parts.glob("part-*"))) < wanted and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()
    # a new run without --resume refuses to clobber the parts
    res = subprocess.run(_run_args(kill_corpus, out, bert_export), capture_output=True, text=True)
    assert res.returncode == 2 and "--resume" in res.stderr
    subprocess.run(_run_args(kill_corpus, out, bert_export, "--resume"), check=True)
    assert (out.read_bytes() == reference.read_bytes() if fmt == "jsonl"
            else pq.read_table(out).equals(pq.read_table(reference)))
    assert not parts.exists()


@pytest.fixture(scope="module")
def slow_corpus(tmp_path_factory):
    """30 chunks of 100 rows of 8 sentences: slow enough (tens of ms a chunk) that Ctrl-C lands mid-run."""
    return sentences_parquet(tmp_path_factory.mktemp("slow") / "in.parquet", 3000, 8)


@pytest.mark.slow  # 3,000 long rows through a subprocess
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, bert_export, slow_corpus):
    out = tmp_path / "o.parquet"
    kill_corpus = slow_corpus
    # A shell running the suite in the background hands its children SIGINT ignored; give it back.
    proc = subprocess.Popen(_run_args(kill_corpus, out, bert_export), stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work_dir(str(out)).glob("part-*"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "--resume" in err and "Traceback" not in err
    assert not out.exists()
    subprocess.run(_run_args(kill_corpus, out, bert_export, "--resume"), check=True)
    assert pq.read_table(out).num_rows == 3000


def test_resume_with_other_settings_is_refused(tmp_path, bert_export, kill_corpus):
    out = tmp_path / "o.parquet"
    proc = subprocess.Popen(_run_args(kill_corpus, out, bert_export))
    while len(list(work_dir(str(out)).glob("part-*"))) < 1 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = subprocess.run(_run_args(kill_corpus, out, bert_export, "--resume", "--aggregation", "max"),
                         capture_output=True, text=True)
    assert res.returncode == 2 and "aggregation" in res.stderr


def test_lone_surrogate_and_invalid_utf8_in_parquet_keep_their_rows(tmp_path, bert_export):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Ada \\ud800 Lovelace"}\n{"text": "Paris"}\n')
    out = tmp_path / "o.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export)
    assert res.exit_code == 0, res.output
    assert "1 text had invalid characters (invalid UTF-8 or lone surrogates)" in res.output
    assert len(out.read_text().splitlines()) == 2
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": pa.array([b"caf\xe9 ok", b"fine"], pa.binary()).cast(pa.string(), safe=False)}),
                   bad)
    res = invoke("run", bad, "-o", tmp_path / "b.parquet", "--model", bert_export)
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "b.parquet").num_rows == 2
    assert "1 text had invalid characters" in res.output  # counted like the surrogates


def test_dictionary_and_string_view_text_columns_are_read(tmp_path, bert_export):
    texts = ["Ada lives in Paris.", None, "Ada lives in Paris."]
    want = None
    for name, column in [("plain", pa.array(texts, pa.string())),
                         ("category", pa.array(texts, pa.string()).dictionary_encode()),
                         ("view", pa.array(texts, pa.string_view()))]:
        src = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"text": column}), src)
        out = tmp_path / f"{name}.out.parquet"
        res = invoke("run", src, "-o", out, "--model", bert_export)
        assert res.exit_code == 0, (name, res.output)
        got = pq.read_table(out).column("entities").to_pylist()
        want = want or got
        assert got == want and len(got) == 3


def test_id_type_settles_on_the_first_non_null_type(tmp_path, bert_export):
    rows = [{"text": "a"}] * 5 + [{"text": "b", "id": i} for i in range(5)]
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "x", "id": None}] + rows)
    out = tmp_path / "o.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--chunk-rows", "3")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.num_rows == 11 and table.schema.field("id").type == pa.int64()
    # a mixed file fails the same way whatever the chunking (each chunk used to infer its own type)
    for first, then, why in [(1, "x", "holds 'x' (str) after ids of kind int"),
                             ("a", 2, "holds 2 (int) after ids of kind str"),
                             (1, 2.5, "holds 2.5 (float) after ids of kind int")]:
        mixed = write_jsonl(tmp_path / "mixed.jsonl", [{"text": "a", "id": first}] * 3 + [{"text": "b",
                                                                                           "id": then}] * 3)
        for chunk_rows in ("1", "3", "2048"):
            res = invoke("run", mixed, "-o", tmp_path / "m.parquet", "--model", bert_export, "--id-column", "id",
                         "--chunk-rows", chunk_rows)
            assert res.exit_code == 1 and why in res.output, (chunk_rows, res.output)
    floats = write_jsonl(tmp_path / "floats.jsonl", [{"text": "a", "id": 1.5}, {"text": "b", "id": 2}, {"text": "c"}])
    for chunk_rows in ("1", "2048"):
        res = invoke("run", floats, "-o", tmp_path / "f.parquet", "--model", bert_export, "--id-column", "id",
                     "--chunk-rows", chunk_rows, "--overwrite")
        assert res.exit_code == 0, res.output
        assert pq.read_table(tmp_path / "f.parquet").column("id").to_pylist() == [1.5, 2.0, None]


def test_utf8_bom_at_the_start_of_a_jsonl_file_is_skipped(tmp_path, bert_export):
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b'\xef\xbb\xbf{"text": "Paris", "id": 7}\n{"text": "Rome", "id": 8}\n')
    res = invoke("run", src, "-o", tmp_path / "o.parquet", "--model", bert_export, "--id-column", "id")
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "o.parquet").column("id").to_pylist() == [7, 8]


def test_bom_prefixed_files_joined_by_cat(tmp_path, bert_export):
    one = b'\xef\xbb\xbf{"text": "Paris", "id": 7}\n{"text": "Rome", "id": 8}\n'
    two = b'\xef\xbb\xbf{"text": "Oslo", "id": 9}\n'
    res = invoke("run", "-", "-o", tmp_path / "o.parquet", "--model", bert_export, "--id-column", "id", input=one + two)
    assert res.exit_code == 0, res.output  # the second BOM used to be a malformed line
    assert "3 rows" in res.output and "2 UTF-8 byte-order marks skipped" in res.output
    assert pq.read_table(tmp_path / "o.parquet").column("id").to_pylist() == [7, 8, 9]


def test_rejected_invalid_utf8_line_keeps_its_bytes(tmp_path, bert_export):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "Paris"}\n' + BAD_LINES["invalid utf-8"] + BAD_LINES["malformed"])
    out = tmp_path / "o.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--on-error", "skip")
    assert res.exit_code == 0, res.output
    invalid, malformed = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert invalid["raw"] == '{"text": "caf\ufffd"}'
    assert base64.b64decode(invalid["raw_base64"]) == BAD_LINES["invalid utf-8"].rstrip(b"\n")
    assert "raw_base64" not in malformed  # its raw text is the line itself


def test_limit_stops_reading(tmp_path, bert_export):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "ok"}] * 5, [BAD_LINES["malformed"]])
    out = tmp_path / "o.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--limit", "5")
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 5


def test_misspelt_id_field_and_output_inside_input_folder(tmp_path, bert_export):
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "ok", "id": 1}])
    res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", bert_export, "--id-column", "doc_id")
    assert res.exit_code == 1 and "no id field 'doc_id'" in res.output
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["x"]}), folder / "a.parquet")
    res = invoke("run", folder, "-o", folder / "out.parquet", "--model", bert_export)
    assert res.exit_code == 2 and "inside the input folder" in res.output


def test_broken_pipe_is_quiet(tmp_path, bert_export, kill_corpus):
    cmd = " ".join(FASTTAG[:2]) + f" '{FASTTAG[2]}' run {kill_corpus} -o - --model {bert_export} -q | head -1"
    res = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True)
    assert len(res.stdout.splitlines()) == 1
    assert "Error" not in res.stderr and "Traceback" not in res.stderr


def test_id_column_named_entities_is_refused(tmp_path, bert_export):
    src = write_jsonl(tmp_path / "in.jsonl", [{"entities": "e1", "text": "Ada lives in Paris."}])
    for out in ("-", tmp_path / "o.parquet"):
        res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "entities")
        assert res.exit_code == 2 and "--id-column cannot be 'entities'" in res.output
        res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "row")
        assert res.exit_code == 2 and "--id-column cannot be 'row'" in res.output
    assert not (tmp_path / "o.parquet").exists()
    tagger = Tagger.load(bert_export)
    with pytest.raises(UsageError, match="cannot be 'entities'"):
        tagger.tag_table(pa.table({"text": ["x"], "entities": ["e1"]}), id_column="entities")
    # as `run` refuses it: a "row" id column would read as row numbers to show and convert
    with pytest.raises(UsageError, match="id_column cannot be 'row'"):
        tagger.tag_table(pa.table({"text": ["x"], "row": [5]}), id_column="row")


def test_ids_are_never_changed_to_fit_the_first_type(tmp_path, bert_export):
    """Later ids are cast to the first ids' type only where no id changes: an object id's field was dropped and a
    string id parsed as a number ("007" became 7, the same id as another row's), silently."""
    objects = write_jsonl(tmp_path / "o.jsonl", [{"text": "a", "id": {"a": 1}}, {"text": "b", "id": {"a": 2}},
                                                 {"text": "c", "id": {"a": 1, "b": 5}},
                                                 {"text": "d", "id": {"a": 1, "b": 6}}])
    for chunk_rows in ("2", "2048"):
        res = invoke("run", objects, "-o", tmp_path / "o.parquet", "--model", bert_export, "--id-column", "id",
                     "--chunk-rows", chunk_rows)
        if chunk_rows == "2":
            assert res.exit_code == 1 and "changes type from struct<a: int64> to struct<a: int64, b: int64> in " \
                "rows 2-3 (some ids would change)" in res.output, res.output
            assert not (tmp_path / "o.parquet").exists()
        else:  # one chunk: Arrow's one struct type would give {"a": 1} a field "b": null, an id changed as well
            assert res.exit_code == 1, res.output
            assert "id field 'id' holds {'a': 1}, which Arrow can only store as {'a': 1, 'b': None} beside the " \
                "other ids of its chunk (some ids would change)" in res.output, res.output
            assert not (tmp_path / "o.parquet").exists()

    def folder(name, *arrays):
        path = tmp_path / name
        path.mkdir()
        for i, ids in enumerate(arrays):
            pq.write_table(pa.table({"text": ["Paris"] * len(ids), "id": ids}), path / f"{i}.parquet")
        return path

    res = invoke("run", folder("mixed", pa.array([7, 8]), pa.array(["007", "9"])), "-o", tmp_path / "m.parquet",
                 "--model", bert_export, "--id-column", "id")
    assert res.exit_code == 1 and "changes type from int64 to string in rows 0-3 (ids must keep their kind)" \
        in res.output, res.output
    res = invoke("run", folder("fractions", pa.array([7, 8]), pa.array([9.0, 9.5])), "-o", tmp_path / "f.parquet",
                 "--model", bert_export, "--id-column", "id")
    assert res.exit_code == 1 and "changes type from int64 to double" in res.output, res.output
    for name, arrays, ids in [("widths", (pa.array([1], pa.int64()), pa.array([2], pa.int32())), [1, 2]),
                              ("whole", (pa.array([1]), pa.array([2.0])), [1, 2]),
                              ("layouts", (pa.array(["a"]), pa.array(["b"], pa.large_string())), ["a", "b"]),
                              ("dictionary", (pa.array(["a"]), pa.array(["b"]).dictionary_encode()), ["a", "b"])]:
        out = tmp_path / f"{name}.parquet"
        res = invoke("run", folder(name, *arrays), "-o", out, "--model", bert_export, "--id-column", "id")
        assert res.exit_code == 0, (name, res.output)
        assert pq.read_table(out).column("id").to_pylist() == ids


def test_jsonl_output_is_standard_json_with_non_finite_floats(tmp_path, bert_export):
    src = tmp_path / "n.parquet"
    pq.write_table(pa.table({"text": ["Paris"] * 3, "id": [1.5, float("nan"), float("inf")],
                             "p": [float("nan"), 1.0, float("-inf")]}), src)
    out = tmp_path / "n.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--keep-columns", "p")
    assert res.exit_code == 0, res.output
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in JSONL output"))
            for line in out.read_text().splitlines()]
    assert [(r["id"], r["p"]) for r in rows] == [(1.5, "NaN"), ("NaN", 1.0), ("Infinity", "-Infinity")]


def test_bad_parquet_rows_are_named_by_their_own_file_and_row(tmp_path, bert_export):
    folder = tmp_path / "pf"
    folder.mkdir()
    pq.write_table(pa.table({"tokens": [["a"], ["b"], ["c"]]}), folder / "a.parquet")
    pq.write_table(pa.table({"tokens": [["d"], [], ["e"]]}), folder / "b.parquet")
    res = invoke("run", folder, "-o", tmp_path / "o.jsonl", "--model", bert_export, "--tokens-column", "tokens")
    assert res.exit_code == 1 and "b.parquet, row 1: tokens column 'tokens': the token list is empty" in res.output
    res = invoke("run", folder, "-o", tmp_path / "o.jsonl", "--model", bert_export, "--tokens-column", "tokens",
                 "--on-error", "skip")
    assert res.exit_code == 0, res.output
    (reject,) = [json.loads(line) for line in (tmp_path / "o.jsonl.rejects.jsonl").read_text().splitlines()]
    assert reject["row"] == 1 and "b.parquet" in reject["error"]


def test_parquet_folder_whose_first_file_has_only_null_ids(tmp_path, bert_export):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["Paris"], "id": pa.array([None], pa.null())}), folder / "a.parquet")
    pq.write_table(pa.table({"text": ["Rome"], "id": pa.array([5], pa.int64())}), folder / "b.parquet")
    out = tmp_path / "o.parquet"
    res = invoke("run", folder, "-o", out, "--model", bert_export, "--id-column", "id")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.schema.field("id").type == pa.int64() and table.column("id").to_pylist() == [None, 5]


# -- one live run per output, and what --resume trusts ----------------------------------------------
def _stdin_run(out, model, *extra):
    """A run on stdin that lives as long as the test keeps its stdin open."""
    return subprocess.Popen(FASTTAG + ["run", "-", "-o", str(out), "--model", str(model), "--chunk-rows", "10",
                                       "--threads", "1", "-q", *extra],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _feed(proc, out, texts, parts):
    """Write `texts` to the run's stdin, then wait until `parts` parts are in its work folder."""
    proc.stdin.write("".join(json.dumps({"text": t}) + "\n" for t in texts))
    proc.stdin.flush()
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work_dir(str(out)).glob("part-*"))) < parts and proc.poll() is None:
        time.sleep(0.02)
    assert len(list(work_dir(str(out)).glob("part-*"))) == parts, proc.poll()


def test_a_live_run_locks_its_output_against_every_other_run(tmp_path, bert_export):
    out = tmp_path / "mix.jsonl"
    texts_a = varied_sentences(30, seed=31)
    other = write_jsonl(tmp_path / "B.jsonl", [{"text": t} for t in varied_sentences(50, seed=32)])
    live = _stdin_run(out, bert_export)
    try:
        _feed(live, out, texts_a[:25], parts=2)
        for extra in ([], ["--overwrite"], ["--resume"]):
            started = time.time()
            res = subprocess.run(FASTTAG + ["run", str(other), "-o", str(out), "--model", str(bert_export), *extra],
                                 capture_output=True, text=True, timeout=120)
            lines = res.stderr.strip().splitlines()
            assert res.returncode == 2, (extra, res.stderr)
            # one line, before any model is loaded (no provider line), naming the live run
            assert len(lines) == 1, (extra, res.stderr)
            assert f"is being written by another fasttag run (pid {live.pid} on {socket.gethostname()})" in lines[0]
            assert time.time() - started < 30
        assert sorted(p.name for p in work_dir(str(out)).glob("part-*")) == ["part-0000000.jsonl", "part-0000001.jsonl"]
        live.stdin.write("".join(json.dumps({"text": t}) + "\n" for t in texts_a[25:]))
    finally:
        _, err = live.communicate(timeout=120)
    assert live.returncode == 0, err
    # A's rows only, as a run of A alone gives them
    reference = Tagger.load(bert_export).tag(texts_a)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(30))
    assert [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in rows] == \
        [[(e.start, e.end, e.label) for e in r] for r in reference]
    assert not lock_path(str(out)).exists() and not work_dir(str(out)).exists()


def test_a_killed_stdin_runs_lock_and_parts_are_taken_over(tmp_path, bert_export):
    out = tmp_path / "o.jsonl"
    dead = _stdin_run(out, bert_export)
    _feed(dead, out, varied_sentences(25, seed=33), parts=2)
    dead.kill()
    dead.communicate()
    left = lock_path(str(out))
    left = json.loads(left.read_text()) if left.exists() else None  # left behind, but no longer held
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in varied_sentences(12, seed=34)])
    # a stdin run's parts cannot be resumed: a plain run replaces them, over the dead run's lock
    res = subprocess.run(FASTTAG + ["run", str(src), "-o", str(out), "--model", str(bert_export), "-q"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert left == {"host": socket.gethostname(), "pid": dead.pid}
    assert len(out.read_text().splitlines()) == 12
    assert not lock_path(str(out)).exists() and not work_dir(str(out)).exists()


def test_ctrl_c_on_a_stdin_run_keeps_nothing_and_a_plain_rerun_works(tmp_path, bert_export):
    out = tmp_path / "s.jsonl"
    texts = varied_sentences(25, seed=35)
    proc = _stdin_run(out, bert_export)
    _feed(proc, out, texts, parts=2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)  # closes stdin, as Ctrl-C ends `cat` too
    assert proc.returncode == 130, err
    assert "--resume" not in err and "cannot be resumed" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no parts, no lock, no output
    proc = _stdin_run(out, bert_export)
    _, err = proc.communicate("".join(json.dumps({"text": t}) + "\n" for t in texts), timeout=120)
    assert proc.returncode == 0, err
    assert len(out.read_text().splitlines()) == 25




def test_resume_over_an_input_edited_in_place_is_refused(tmp_path, bert_export):
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(varied_sentences(50, seed=36))]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    original, stat = src.read_bytes(), src.stat()
    tagger = Tagger.load(bert_export)
    reference = tmp_path / "ref.jsonl"
    run(tagger, str(src), str(reference), id_column="id", chunk_rows=10)
    out = tmp_path / "o.jsonl"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), id_column="id", chunk_rows=10, progress=_stop_after(3))
    assert len(list(work_dir(str(out)).glob("part-*"))) == 3

    # row 0 edited, the file's size unchanged
    first = f'"text": "{rows[0]["text"][0]}'.encode()
    assert first != b'"text": "X' and original.index(first) < original.index(b"\n")
    src.write_bytes(original.replace(first, b'"text": "X', 1))
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert src.stat().st_size == stat.st_size
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--chunk-rows", "10", "--resume")
    assert res.exit_code == 2 and f"cannot resume: {src} changed since the interrupted run (its modification time)" \
        in res.output, res.output

    # the same edit with the old modification time put back: the rows done earlier are read again and compared
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(UsageError, match=f"rows 0-9 of {src} are not the rows the interrupted run tagged"):
        run(tagger, str(src), str(out), id_column="id", chunk_rows=10, resume=True)
    assert len(list(work_dir(str(out)).glob("part-*"))) == 3 and not out.exists()  # nothing lost, nothing written

    # the input as it was: the resume is accepted and gives the uninterrupted run's output
    src.write_bytes(original)
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    summary = run(tagger, str(src), str(out), id_column="id", chunk_rows=10, resume=True)
    assert summary.resumed_rows == 30 and out.read_bytes() == reference.read_bytes()


def test_resume_over_a_changed_input_folder_names_the_files(tmp_path, bert_export):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, seed in (("a", 37), ("b", 38)):
        pq.write_table(pa.table({"text": varied_sentences(20, seed=seed)}), folder / f"{name}.parquet")
    tagger = Tagger.load(bert_export)
    out = tmp_path / "o.parquet"
    with pytest.raises(Interrupted):
        run(tagger, str(folder), str(out), chunk_rows=10, progress=_stop_after(1))
    pq.write_table(pa.table({"text": varied_sentences(21, seed=39)}), folder / "b.parquet")
    pq.write_table(pa.table({"text": ["Paris"]}), folder / "c.parquet")
    with pytest.raises(UsageError, match=r"changed since the interrupted run \(files changed: b.parquet; "
                                         r"files added: c.parquet\)"):
        run(tagger, str(folder), str(out), chunk_rows=10, resume=True)


def test_a_resumed_run_checks_its_ids_against_the_chunks_done_earlier(tmp_path, bert_export):
    """The run's id type comes from its first ids, also when the chunks that hold them were done before the
    resume: an id a resumed run would change (here an object's field dropped) stops it as it stops a whole run."""
    from fasttag.errors import InputError

    src = write_jsonl(tmp_path / "o.jsonl", [{"text": "a", "id": {"a": 1}}, {"text": "b", "id": {"a": 2}},
                                             {"text": "c", "id": {"a": 1, "b": 5}},
                                             {"text": "d", "id": {"a": 1, "b": 6}}])
    tagger, out = Tagger.load(bert_export), tmp_path / "o.parquet"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), chunk_rows=2, id_column="id", progress=_stop_after(1))
    with pytest.raises(InputError, match=r"changes type from struct<a: int64> to struct<a: int64, b: int64> in rows"):
        run(tagger, str(src), str(out), chunk_rows=2, id_column="id", resume=True)
    assert not out.exists()
