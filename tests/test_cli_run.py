import gzip
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import long_document, varied_sentences
from fasttag import Tagger
from fasttag.cli import cli
from fasttag.entities import ENTITIES_TYPE

TEXTS = varied_sentences(120, seed=3)


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def check_entities(rows, texts, labels):
    for row, text in zip(rows, texts, strict=True):
        for e in row:
            assert 0 <= e["start"] < e["end"] <= len(text)
            assert e["text"] == text[e["start"]:e["end"]]
            assert e["label"] in labels


@pytest.fixture()
def corpus_parquet(tmp_path):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS}), path, row_group_size=17)
    return path


def test_run_parquet_one_row_per_input_row(tmp_path, corpus_parquet, bert_export):
    out = tmp_path / "entities.parquet"
    res = invoke("run", corpus_parquet, "-o", out, "--model", bert_export, "--id-column", "doc_id")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.schema.field("entities").type == ENTITIES_TYPE
    assert table.column("doc_id").to_pylist() == [f"d{i}" for i in range(len(TEXTS))]
    rows = table.column("entities").to_pylist()
    check_entities(rows, TEXTS, {"PER", "LOC", "ORG", "MISC"})
    # same answers as the Python API
    expected = Tagger.load(bert_export).tag(TEXTS)
    got = [[(e["start"], e["end"], e["label"]) for e in r] for r in rows]
    assert got == [[(e.start, e.end, e.label) for e in r] for r in expected]
    assert "120 rows" in res.output


def test_streams_and_threads_do_not_change_the_output(tmp_path, corpus_parquet, bert_export):
    outputs = []
    for i, extra in enumerate([["--streams", "1", "--threads", "1"], ["--streams", "3", "--threads", "3"]]):
        out = tmp_path / f"entities{i}.jsonl"
        res = invoke("run", corpus_parquet, "-o", out, "--model", bert_export, "--batch-tokens", "128", *extra)
        assert res.exit_code == 0, res.output
        rows = [json.loads(line)["entities"] for line in out.read_text().splitlines()]
        outputs.append([[(e["start"], e["end"], e["label"]) for e in r] for r in rows])
    assert len(outputs[0]) == len(TEXTS) and outputs[0] == outputs[1]


def test_run_jsonl_gz_to_jsonl_with_row_numbers(tmp_path, bert_export):
    src = tmp_path / "corpus.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        for t in TEXTS:
            fh.write(json.dumps({"body": t}) + "\n")
    out = tmp_path / "out.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--text-column", "body", "--quiet")
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(len(TEXTS)))
    check_entities([r["entities"] for r in rows], TEXTS, {"PER", "LOC", "ORG", "MISC"})


def test_run_stdin_to_stdout_and_limit(bert_export):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS)
    res = CliRunner().invoke(cli, ["run", "-", "-o", "-", "--model", str(bert_export), "--quiet", "--limit", "7"],
                             input=lines)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["row"] for r in rows] == list(range(7))


def test_parquet_folder_input(tmp_path, bert_export):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"text": TEXTS[:50]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"text": TEXTS[50:]}), folder / "part-1.parquet")
    out = tmp_path / "o.parquet"
    assert invoke("run", folder, "-o", out, "--model", bert_export, "-q").exit_code == 0
    assert pq.read_table(out).column("row").to_pylist() == list(range(len(TEXTS)))


def test_long_document_tagged_along_its_whole_length(tmp_path, bert_export):
    doc = long_document(20_000)
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps({"text": doc}) + "\n" + json.dumps({"text": "Ada Lovelace"}) + "\n")
    out = tmp_path / "long.parquet"
    assert invoke("run", src, "-o", out, "--model", bert_export, "-q").exit_code == 0
    rows = pq.read_table(out).column("entities").to_pylist()
    assert len(rows) == 2
    ents = rows[0]
    check_entities([ents], [doc], {"PER", "LOC", "ORG", "MISC"})
    starts = [e["start"] for e in ents]
    assert starts == sorted(starts)
    # entities in every tenth of the document: nothing was truncated
    tenths = {int(10 * s / len(doc)) for s in starts}
    assert tenths == set(range(10))


@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
def test_one_window_doc_same_entities_in_a_batch_of_long_docs(bert_export, strategy):
    """A short document's entities do not depend on what else is in its chunk or batch."""
    tagger = Tagger.load(bert_export, aggregation=strategy)
    alone = tagger.tag(TEXTS[:20])
    mixed = tagger.tag([long_document(600, seed=1)] + TEXTS[:20] + [long_document(900, seed=2)])[1:21]
    assert alone == mixed


def test_existing_output_refused_without_overwrite(tmp_path, corpus_parquet, bert_export):
    out = tmp_path / "o.parquet"
    out.write_text("keep me")
    res = invoke("run", corpus_parquet, "-o", out, "--model", bert_export)
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert out.read_text() == "keep me"
    assert invoke("run", corpus_parquet, "-o", out, "--model", bert_export, "--overwrite", "-q").exit_code == 0
    assert pq.read_table(out).num_rows == len(TEXTS)


def test_missing_model_is_a_clear_error(tmp_path, corpus_parquet):
    res = invoke("run", corpus_parquet, "-o", tmp_path / "o.parquet", "--model", tmp_path / "nope")
    assert res.exit_code == 1
    assert "does not exist" in res.output


def test_run_path_does_not_import_torch_or_transformers(tmp_path, corpus_parquet, bert_export):
    code = (
        "import sys; from fasttag.cli import main\n"
        f"sys.argv = ['fasttag', 'run', {str(corpus_parquet)!r}, '-o', {str(tmp_path / 'x.parquet')!r}, "
        f"'--model', {str(bert_export)!r}, '-q']\n"
        "import fasttag, fasttag.tagger\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "x.parquet").exists()


def test_missing_input_is_reported_before_the_model_loads(tmp_path):
    # the model folder does not exist either: the input is checked first, so its error is the one shown
    res = invoke("run", tmp_path / "nope.parquet", "-o", tmp_path / "o.parquet", "--model", tmp_path / "no-model")
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: input {tmp_path / 'nope.parquet'} does not exist"


def test_an_output_in_a_missing_folder_is_refused_alike_by_every_command(tmp_path, corpus_parquet):
    # the same message and exit code (2, before the model loads) for run's output and every report or converted file
    folder, no_model = tmp_path / "nodir", tmp_path / "no-model"
    for out, args in ((folder / "o.parquet", ["run", corpus_parquet, "--model", no_model, "-o"]),
                      (folder / "o", ["run", corpus_parquet, "--engine", "ray", "--model", no_model, "-o"]),
                      (folder / "o.html", ["show", corpus_parquet, "--model", no_model, "--html"]),
                      (folder / "o.json", ["bench", "--model", no_model, "--json"]),
                      (folder / "o.jsonl", ["convert", corpus_parquet, "--input", corpus_parquet, "--to", "prodigy",
                                            "-o"])):
        res = invoke(*args, out)
        assert (res.exit_code, res.output.strip()) == (2, f"Error: the folder of {out} does not exist"), args


def test_eval_takes_aggregation_only_end_to_end_and_checks_its_json_path_first(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("Ada B-PER\nlives O\n\n")
    res = invoke("eval", "--data", data, "--aggregation", "max")
    assert res.exit_code == 2 and "--aggregation applies to --end-to-end scoring only" in res.output
    res = invoke("eval", "--data", data, "--word-boundaries", "pipeline")
    assert res.exit_code == 2 and "--word-boundaries applies to --end-to-end" in res.output
    # the model folder does not exist either: the unwritable --json is reported first, before any work
    res = invoke("eval", "--data", data, "--model", tmp_path / "no-model", "--json", tmp_path / "nodir" / "s.json")
    assert res.exit_code == 2 and "the folder of" in res.output and "does not exist" in res.output


@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_device_without_a_gpu_is_one_line_and_keeps_stdout_clean(tmp_path, corpus_parquet, bert_export, device):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            import ctypes

            ctypes.CDLL("libcuda.so.1")
            pytest.skip("a CUDA driver is present: this test is for machines without a GPU")
        except OSError:
            pass
    proc = subprocess.run([sys.executable, "-m", "fasttag", "run", str(corpus_parquet), "-o", "-", "--model",
                           str(bert_export), "--device", device], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""  # onnxruntime's "EP Error" banner would land in the output stream
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: --device {device}"), proc.stderr


def test_resumed_summary_counts_this_runs_work_apart():
    from fasttag.run import RunSummary

    line = RunSummary(rows=120, resumed_rows=60, windows=66, entities=10, tokens=600, seconds=2.0,
                      provider="CPU").line()
    assert line.startswith("120 rows, 60 done earlier; the 60 tagged now: 66 windows, 10 entities in 2.0s "
                           "(30 rows/s")
    assert RunSummary(rows=5, seconds=1.0).line().startswith("5 rows, 0 windows")


def test_bad_thread_environment_is_a_usage_error(tmp_path, corpus_parquet, bert_export, monkeypatch):
    monkeypatch.setenv("FASTTAG_THREADS", "abc")
    res = invoke("run", corpus_parquet, "-o", tmp_path / "o.parquet", "--model", bert_export)
    assert res.exit_code == 2 and "FASTTAG_THREADS must be a positive integer, got 'abc'" in res.output


def test_stdout_rejects_file_is_not_clobbered(tmp_path, bert_export, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Paris"}\nnot json\n')
    (tmp_path / "fasttag.rejects.jsonl").write_text("keep me\n")
    res = invoke("run", src, "-o", "-", "--model", bert_export, "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "1 bad line skipped, written to fasttag.rejects.1.jsonl" in res.output  # the next free name
    assert (tmp_path / "fasttag.rejects.jsonl").read_text() == "keep me\n"
    assert json.loads((tmp_path / "fasttag.rejects.1.jsonl").read_text())["line"] == 2
    res = invoke("run", src, "-o", "-", "--model", bert_export, "--on-error", "skip", "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "fasttag.rejects.jsonl").read_text())["line"] == 2


def test_stdout_rejects_file_is_made_only_when_a_line_is_rejected(tmp_path, bert_export, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clean = '{"text": "Ada lives in Paris."}\n{"text": "Bob works at Acme."}\n'
    for _ in range(2):  # twice in one folder: the second run used to be refused
        res = invoke("run", "-", "-o", "-", "--model", bert_export, "--on-error", "skip", "-q", input=clean)
        assert res.exit_code == 0, res.output
        assert len(res.stdout.splitlines()) == 2
        assert not (tmp_path / "fasttag.rejects.jsonl").exists()
    # an earlier run's rejects do not stop a clean run, which leaves them alone
    (tmp_path / "fasttag.rejects.jsonl").write_text("earlier\n")
    res = invoke("run", "-", "-o", "-", "--model", bert_export, "--on-error", "skip", "-q", input=clean)
    assert res.exit_code == 0, res.output
    assert [f.name for f in tmp_path.iterdir()] == ["fasttag.rejects.jsonl"]
    assert (tmp_path / "fasttag.rejects.jsonl").read_text() == "earlier\n"


@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_an_earlier_runs_rejects_as_input_are_never_deleted(tmp_path, bert_export, monkeypatch, on_error):
    """`run X.rejects.jsonl -o X` deleted its input (the stale-rejects cleanup), or with --on-error skip replaced it
    with this run's rejects."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "o.jsonl.rejects.jsonl"
    kept = '{"text": "Paris"}\nnot json\n'
    src.write_text(kept)
    for out in ("o.jsonl", tmp_path / "sub" / ".." / "o.jsonl"):
        res = invoke("run", src, "-o", out, "--model", tmp_path / "no-model", "--on-error", on_error)
        assert res.exit_code == 2, res.output
        assert res.output.splitlines() == [f"Error: the input {src} is the rejects file of output {out}: the run "
                                           "replaces it with its own rejects, or removes it when it has none; choose "
                                           "another output with -o, or rename the input first"]
    assert src.read_text() == kept and not (tmp_path / "o.jsonl").exists()
    # -o -: its rejects file, fasttag.rejects.jsonl, is replaced only with --overwrite
    src = src.rename(tmp_path / "fasttag.rejects.jsonl")
    res = invoke("run", src.name, "-o", "-", "--model", bert_export, "--on-error", on_error, "--overwrite")
    assert res.exit_code == 2 and "--overwrite would replace it with this run's rejects" in res.output
    res = invoke("run", src.name, "-o", "-", "--model", bert_export, "--on-error", "skip", "-q")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1, res.output
    assert src.read_text() == kept and (tmp_path / "fasttag.rejects.1.jsonl").exists()


@pytest.mark.parametrize("input_name, output_name, unknown", [("c.csv", "o.jsonl", "c.csv"),
                                                                ("c.jsonl", "out.txt", "out.txt")])
def test_unknown_formats_are_reported_before_the_model_loads(tmp_path, bert_export, input_name, output_name, unknown):
    src = tmp_path / input_name
    src.write_text('{"text": "Paris"}\n')
    # a missing model would be the error if the model were loaded first
    res = invoke("run", src, "-o", tmp_path / output_name, "--model", tmp_path / "no-model")
    assert res.exit_code == 2 and "cannot tell the" in res.output and unknown in res.output, res.output
    res = invoke("run", src, "-o", tmp_path / output_name, "--model", bert_export)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [res.output.strip()]  # one line: no provider line before it
    assert "Provider" not in res.output and not (tmp_path / output_name).exists()


def test_summary_counts_are_pluralized():
    from fasttag.run import RunSummary

    line = RunSummary(rows=1, windows=1, entities=1, tokens=3, null_texts=1, repaired_texts=1, byte_order_marks=1,
                      seconds=1.0, provider="CPU").line()
    assert line.startswith("1 row, 1 window, 1 entity in 1.0s")
    assert "; 1 row with null or non-string text" in line and "; 1 text had invalid characters" in line
    assert "; 1 UTF-8 byte-order mark skipped" in line
    line = RunSummary(rows=2, windows=3, entities=0, rejected=2, rejects_path="r.jsonl", seconds=1.0).line()
    assert line.startswith("2 rows, 3 windows, 0 entities in") and "2 bad lines skipped, written to r.jsonl" in line


def test_jsonl_scores_are_the_shortest_decimals_of_the_float32_scores(tmp_path, corpus_parquet, bert_export):
    import numpy as np

    pq_out, jl_out = tmp_path / "o.parquet", tmp_path / "o.jsonl"
    for out in (pq_out, jl_out):
        assert invoke("run", corpus_parquet, "-o", out, "--model", bert_export, "-q").exit_code == 0
    exact = [e["score"] for row in pq.read_table(pq_out).column("entities").to_pylist() for e in row]
    text = jl_out.read_text()
    written = [e["score"] for line in text.splitlines() for e in json.loads(line)["entities"]]
    assert exact and len(written) == len(exact)
    assert np.array_equal(np.float32(written), np.float32(exact))  # the same float32 values
    assert all(len(repr(w)) <= 12 for w in written)  # not the float64 expansion of a float32


def test_gzipped_stdin_and_gzip_header_name(tmp_path, bert_export):
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt") as fh:
        fh.write('{"text": "Ada lives in Paris."}\n{"text": "Bob works at Acme."}\n')
    with open(src, "rb") as stdin:
        proc = subprocess.run([sys.executable, "-m", "fasttag", "run", "-", "-o", "-", "--model", str(bert_export),
                               "-q"], stdin=stdin, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["row"] for x in proc.stdout.splitlines()] == [0, 1]
    out = tmp_path / "o.jsonl.gz"
    assert invoke("run", src, "-o", out, "--model", bert_export, "-q").exit_code == 0
    header = out.read_bytes()
    assert header[3] & 0x08 and header[10:10 + len(b"o.jsonl")] == b"o.jsonl"  # FNAME: the output's own name


def test_more_streams_than_threads_is_refused(tmp_path, corpus_parquet, bert_export):
    res = invoke("run", corpus_parquet, "-o", tmp_path / "o.parquet", "--model", bert_export, "--threads", "1",
                 "--streams", "4")
    assert res.exit_code == 2 and "--streams 4 needs at least 4 threads" in res.output


def test_ids_json_lacks_are_written_as_text(tmp_path, bert_export):
    import datetime
    import decimal

    for name, ids, want in [
        ("bytes", pa.array([b"doc-1", b"\xff\x00"], pa.binary()), ["doc-1", "ff00"]),
        ("date", pa.array([datetime.date(2026, 11, 28), None]), ["2026-11-28", None]),
        ("decimal", pa.array([decimal.Decimal("1.50"), decimal.Decimal("2.25")]), ["1.50", "2.25"]),
    ]:
        src = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"text": ["Paris", "Rome"], "id": ids}), src)
        out = tmp_path / f"{name}.jsonl"
        res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "-q")
        assert res.exit_code == 0, res.output
        assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == want, name


def test_eval_of_a_model_whose_labels_do_not_fit_is_one_line(tmp_path, bert_export):
    import shutil

    model = tmp_path / "plain"
    shutil.copytree(bert_export, model)
    for name in ("config.json", "fasttag.json"):
        cfg = json.loads((model / name).read_text())
        n = len(cfg["id2label"] if "id2label" in cfg else cfg["labels"])
        if "id2label" in cfg:
            cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(n)}
            cfg["label2id"] = {f"LABEL_{i}": i for i in range(n)}
        else:
            cfg["labels"] = [f"LABEL_{i}" for i in range(n)]
        (model / name).write_text(json.dumps(cfg))
    data = tmp_path / "d.txt"
    data.write_text("Ada B-PER\nlives O\n\n")
    res = invoke("eval", "--data", data, "--model", model)  # the manifest still says span (IOB2)
    assert res.exit_code == 1 and f"the labels of {model}: LABEL_0, LABEL_1, LABEL_2 (and 6 more) are not IOB2" \
        in res.output
    assert "Traceback" not in res.output and "unexpected" not in res.output
    manifest = json.loads((model / "fasttag.json").read_text())
    del manifest["kind"], manifest["scheme"]
    (model / "fasttag.json").write_text(json.dumps(manifest))
    res = invoke("eval", "--data", data, "--model", model)  # LABEL_0... without prefixes: a tag task (issue 16)
    assert res.exit_code == 1 and "holds span tags (IOB2), but the model is a tag (9 labels) task" in res.output
    assert len(res.output.strip().splitlines()) == 1
