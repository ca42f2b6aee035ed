"""--engine ray gives the local engine's rows; one local Ray (num_cpus=2) serves the whole module."""

import importlib.util
import json
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag.cli import cli

HAS_RAY = importlib.util.find_spec("ray") is not None
HAS_MOTO = importlib.util.find_spec("moto") is not None
needs_ray = pytest.mark.ray  # skipped where Ray is missing, failed in CI (tests/lanes.py)

TEXTS = varied_sentences(300, seed=17)


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray for the module, with a local S3 server whose credentials its workers inherit."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed: pip install 'fasttag[ray]' to test --engine ray")
    import contextlib

    import ray

    from s3_server import local_s3

    with (local_s3() if HAS_MOTO else contextlib.nullcontext((None, None))) as (_, s3):
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        try:
            yield s3
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-inputs")
    pq.write_table(pa.table({"doc_id": list(range(1000, 1000 + len(TEXTS))), "text": TEXTS}), root / "corpus.parquet",
                   row_group_size=41)
    folder = root / "folder"
    folder.mkdir()
    for i, (a, b) in enumerate([(0, 90), (90, 91), (91, 300)]):
        pq.write_table(pa.table({"text": TEXTS[a:b]}), folder / f"part-{i}.parquet", row_group_size=30)
    texts = TEXTS[:150] + [None] + TEXTS[150:]
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i, t in enumerate(texts):
            fh.write(json.dumps({"key": f"k{i}", "text": t}, ensure_ascii=False) + "\n")
            if i % 50 == 7:
                fh.write("\n   \n")  # blank lines are not rows
    return root


def local_run(src, tmp_path, model, *args) -> pa.Table:
    out = tmp_path / "local.parquet"
    res = invoke("run", src, "-o", out, "--model", model, "-q", "--overwrite", *args)
    assert res.exit_code == 0, res.output
    return pq.read_table(out)


def assert_same_rows(ray_table: pa.Table, local: pa.Table, key: str) -> None:
    """Row for row (the folder's files come in no set order): same ids, same results in every result column
    (entities, words, tokens; tags), scores within 1e-5."""
    assert ray_table.schema == local.schema
    ray_table = ray_table.sort_by(key)
    local = local.sort_by(key)
    assert ray_table.column(key).to_pylist() == local.column(key).to_pylist()

    def results(table, name):
        rows = table.column(name).to_pylist()
        if name == "scores":
            return [], [s for row in rows for s in row if s is not None]
        if name == "tags":
            return rows, []
        return ([[{k: v for k, v in e.items() if k != "score"} for e in row] for row in rows],
                [e["score"] for row in rows for e in row])

    for name in local.column_names:
        if name not in ("entities", "words", "tokens", "tags", "scores"):  # the id and kept columns
            assert ray_table.column(name).to_pylist() == local.column(name).to_pylist(), name
        else:
            (ray_items, ray_scores), (local_items, local_scores) = results(ray_table, name), results(local, name)
            assert ray_items == local_items, name
            assert ray_scores == pytest.approx(local_scores, abs=1e-5), name


@needs_ray
def test_parquet_with_id_column(ray_cluster, inputs, tmp_path, bert_export):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.parquet").write_bytes(b"from an earlier run")
    res = invoke("run", inputs / "corpus.parquet", "-o", out, "--model", bert_export, "--engine", "ray",
                 "--workers", "2", "--id-column", "doc_id", "--chunk-rows", "64")
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = invoke("run", inputs / "corpus.parquet", "-o", out, "--model", bert_export, "--engine", "ray",
                 "--workers", "2", "--id-column", "doc_id", "--chunk-rows", "64", "--overwrite", "-q")
    assert res.exit_code == 0, res.output
    assert not (out / "stale.parquet").exists() and (out / "_SUCCESS").exists()
    local = local_run(inputs / "corpus.parquet", tmp_path, bert_export, "--id-column", "doc_id")
    assert_same_rows(pq.read_table(out), local, "doc_id")


@needs_ray
def test_jsonl_rows_numbered_as_the_local_engine_does(ray_cluster, inputs, tmp_path, bert_export):
    out = tmp_path / "out"
    res = invoke("run", inputs / "corpus.jsonl", "-o", out, "--model", bert_export, "--engine", "ray",
                 "--workers", "2", "--chunk-rows", "50")
    assert res.exit_code == 0, res.output
    assert "301 rows" in res.output and "2 Ray workers" in res.output
    table = pq.read_table(out)
    assert sorted(table.column("row").to_pylist()) == list(range(301))
    assert_same_rows(table, local_run(inputs / "corpus.jsonl", tmp_path, bert_export), "row")
    # with the JSON ids instead
    out_ids = tmp_path / "out-ids"
    res = invoke("run", inputs / "corpus.jsonl", "-o", out_ids, "--model", bert_export, "--engine", "ray",
                 "--workers", "1", "--id-column", "key", "-q")
    assert res.exit_code == 0, res.output
    local = local_run(inputs / "corpus.jsonl", tmp_path, bert_export, "--id-column", "key")
    assert_same_rows(pq.read_table(out_ids), local, "key")


@needs_ray
def test_parquet_folder_numbered_across_files_with_limit(ray_cluster, inputs, tmp_path, bert_export):
    out = tmp_path / "out"
    res = invoke("run", inputs / "folder", "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "2",
                 "--chunk-rows", "40", "--limit", "250", "-q")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert sorted(table.column("row").to_pylist()) == list(range(250))
    assert_same_rows(table, local_run(inputs / "folder", tmp_path, bert_export, "--limit", "250"), "row")


@needs_ray
@pytest.mark.parametrize("level", ["words", "tokens"])
def test_every_level_gives_the_local_engines_rows(ray_cluster, inputs, tmp_path, bert_export, level):
    out = tmp_path / "out"
    res = invoke("run", inputs / "corpus.jsonl", "-o", out, "--model", bert_export, "--engine", "ray",
                 "--workers", "2", "--chunk-rows", "50", "--level", level, "-q")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column_names == ["row", level]
    assert_same_rows(table, local_run(inputs / "corpus.jsonl", tmp_path, bert_export, "--level", level), "row")


@needs_ray
@pytest.mark.parametrize("src", ["corpus.parquet", "corpus.jsonl"])
def test_kept_columns_filters_and_flat_give_the_local_engines_rows(ray_cluster, tmp_path, bert_export, src):
    texts = TEXTS[:120]
    table = pa.table({"key": [f"k{i}" for i in range(len(texts))], "text": texts,
                      "meta": [{"n": i, "tags": ["a"] * (i % 3)} for i in range(len(texts))]})
    pq.write_table(table, tmp_path / "corpus.parquet", row_group_size=25)
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    options = ["--id-column", "key", "--keep-columns", "all", "--min-score", "0.3,PER=0.6", "--labels", "PER,LOC"]
    for layout in ("nested", "flat"):
        out = tmp_path / f"out-{layout}"
        res = invoke("run", tmp_path / src, "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "2",
                     "--chunk-rows", "32", "--layout", layout, *options)
        assert res.exit_code == 0, res.output
        local = local_run(tmp_path / src, tmp_path, bert_export, "--layout", layout, *options)
        ray_table = pq.read_table(out)
        if layout == "nested":
            assert ray_table.column_names == ["key", "meta", "entities"]
            assert_same_rows(ray_table, local, "key")
        else:
            assert ray_table.schema == local.schema and ray_table.num_rows == local.num_rows > 0
            by = [("key", "ascending"), ("start", "ascending")]
            got, want = ray_table.sort_by(by).to_pylist(), local.sort_by(by).to_pylist()
            assert [{**r, "score": round(r["score"], 4)} for r in got] == \
                [{**r, "score": round(r["score"], 4)} for r in want]
        # the same counts as the local engine's summary
        local_res = invoke("run", tmp_path / src, "-o", tmp_path / "again.parquet", "--model", bert_export,
                           "--overwrite", "--layout", layout, *options)
        dropped = local_res.output.strip().splitlines()[-1].split("; ", 1)[1]
        assert dropped and dropped in res.output


@needs_ray
def test_kept_json_field_gets_one_type_in_every_file(ray_cluster, tmp_path, bert_export):
    """A field null in the first blocks and numbers later is int64 in every part file (the folder reads as one
    table), as the local engine promotes it."""
    rows = [{"text": t, "n": None if i < 150 else i} for i, t in enumerate(TEXTS)]
    src = tmp_path / "mix.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "2", "--chunk-rows",
                 "50", "--keep-columns", "n", "-q")
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("*.parquet"))
    assert len(files) > 1 and {pq.read_schema(f).field("n").type for f in files} == {pa.int64()}
    table = pq.read_table(out).sort_by("row")
    assert table.column("n").to_pylist() == [r["n"] for r in rows]
    assert_same_rows(table, local_run(src, tmp_path, bert_export, "--keep-columns", "n"), "row")


@needs_ray
def test_tokens_column_gives_the_local_engines_rows(ray_cluster, tmp_path, bert_export):
    sentences = [t.split() for t in TEXTS[:120] if t.split()] + [None]
    jsonl, parquet = tmp_path / "tokens.jsonl", tmp_path / "tokens.parquet"
    jsonl.write_text("".join(json.dumps({"key": f"k{i}", "tokens": s}) + "\n" for i, s in enumerate(sentences)))
    pq.write_table(pa.table({"key": [f"k{i}" for i in range(len(sentences))], "tokens": sentences}), parquet,
                   row_group_size=25)
    for src in (jsonl, parquet):
        out = tmp_path / f"out-{src.suffix[1:]}"
        res = invoke("run", src, "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "2",
                     "--chunk-rows", "30", "--tokens-column", "tokens", "--id-column", "key", "-q")
        assert res.exit_code == 0, res.output
        table = pq.read_table(out)
        assert table.column_names == ["key", "tags", "scores", "entities"]
        assert_same_rows(table, local_run(src, tmp_path, bert_export, "--tokens-column", "tokens", "--id-column",
                                          "key"), "key")
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"tokens": [["Ada"], ["  "]]}), bad)
    res = invoke("run", bad, "-o", tmp_path / "out-bad", "--model", bert_export, "--engine", "ray", "--workers", "1",
                 "--tokens-column", "tokens", "-q")
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        "Error: tokens column 'tokens', the row with row 1: token 0 is whitespace ('  '); --engine local can skip such "
        "rows (--on-error skip)"]


@needs_ray
@pytest.mark.s3
def test_s3_input_and_output_folder(ray_cluster, inputs, tmp_path, bert_export):
    from s3_server import BUCKET, put

    s3 = ray_cluster
    uri = put(s3, f"{BUCKET}/ray/corpus.parquet", inputs / "corpus.parquet")
    out = f"s3://{BUCKET}/ray/entities"
    res = invoke("run", uri, "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "2", "-q")
    assert res.exit_code == 0, res.output
    files = s3.get_file_info(pa.fs.FileSelector(f"{BUCKET}/ray/entities"))
    assert any(f.path.endswith("/_SUCCESS") for f in files)
    table = pq.read_table(f"{BUCKET}/ray/entities", filesystem=s3)
    assert_same_rows(table, local_run(inputs / "corpus.parquet", tmp_path, bert_export), "row")


@needs_ray
def test_errors_from_ray_are_one_line(ray_cluster, tmp_path, bert_export):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"text": "Ada Lovelace"}) + "\n{oops\n")
    res = invoke("run", src, "-o", tmp_path / "out", "--model", bert_export, "--engine", "ray", "-q")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"Error: {src}: malformed JSON (Expecting property name enclosed in double quotes); --engine local reports the "
        "line and can skip it (--on-error skip)"
    ]


def test_options_of_the_other_engine_are_refused(tmp_path, bert_export):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ada"}) + "\n")
    cases = [
        (["--workers", "2"], "--workers only apply to --engine ray"),
        (["--ray-address", "auto", "--gpus-per-worker", "1"],
         "--ray-address, --gpus-per-worker only apply to --engine ray"),
        (["--engine", "ray", "--resume"], "--resume is for --engine local"),
        (["--engine", "ray", "--on-error", "skip"], "--on-error skip is for --engine local"),
        (["--engine", "ray", "--streams", "2"], "--streams is for --engine local"),
    ]
    for extra, message in cases:
        res = invoke("run", src, "-o", tmp_path / "out", "--model", bert_export, *extra)
        assert res.exit_code == 2 and message in res.output, (extra, res.output)
    (tmp_path / "file.parquet").write_bytes(b"x")
    res = invoke("run", src, "-o", tmp_path / "file.parquet", "--model", bert_export, "--engine", "ray")
    assert res.exit_code == 2 and "is a file" in res.output
    res = invoke("run", "-", "-o", tmp_path / "out", "--model", bert_export, "--engine", "ray", input="{}\n")
    assert res.exit_code == 2 and "need --engine local" in res.output
    res = invoke("run", src, "-o", tmp_path, "--model", bert_export, "--engine", "ray", "--overwrite")
    assert res.exit_code == 2 and "lies inside the output folder" in res.output and src.exists()


def test_missing_ray_says_what_to_install(tmp_path, bert_export, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ada"}) + "\n")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    res = invoke("run", src, "-o", tmp_path / "out", "--model", bert_export, "--engine", "ray")
    assert res.exit_code == 1
    assert res.output.strip() == (
        "Error: --engine ray needs the 'ray' extra (ray is not installed). Install it with: pip install 'fasttag[ray]'"
    )


def test_local_run_does_not_import_ray(tmp_path, inputs, bert_export):
    code = (
        "import sys; from fasttag.cli import main\n"
        f"sys.argv = ['fasttag', 'run', {str(inputs / 'corpus.parquet')!r}, '-o', {str(tmp_path / 'x.parquet')!r}, "
        f"'--model', {str(bert_export)!r}, '-q', '--limit', '10']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert pq.read_table(tmp_path / "x.parquet").num_rows == 10


@pytest.mark.parametrize("name", ["rayout.jsonl", "rayout.parquet", "rayout.jsonl.gz", "rayout.ndjson", "rayout.json"])
def test_ray_output_named_like_a_file_is_refused(tmp_path, bert_export, name):
    """A folder of Parquet parts named rayout.jsonl used to be written without a word."""
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ada"}) + "\n")
    out = tmp_path / name
    res = invoke("run", src, "-o", out, "--model", bert_export, "--engine", "ray")
    assert res.exit_code == 2
    suffix = name[len("rayout"):]
    assert res.output.strip().splitlines() == [
        f"Error: --engine ray writes OUTPUT as a folder of Parquet files, but {out} ends in {suffix} like a file: "
        f"name the folder without it (e.g. {tmp_path / 'rayout'})"]
    assert not out.exists()


@needs_ray
def test_quiet_ray_run_prints_nothing(tmp_path, bert_export):
    """-q used to let through about ten lines of Ray's INFO/WARNING logs (and a C++ core line)."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:20]))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "fasttag", "run", str(src), "-o", str(out), "--model",
                           str(bert_export), "--engine", "ray", "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""
    assert (out / "_SUCCESS").exists() and pq.read_table(out).num_rows == 20


@needs_ray
def test_awkward_inputs_give_the_local_engines_rows(ray_cluster, tmp_path, bert_export):
    """Dictionary and string_view text columns, hidden files in a folder, BOMs in gzipped JSONL (test_formats.py)."""
    from test_formats import awkward_inputs

    for kind, src in awkward_inputs(tmp_path).items():
        out = tmp_path / f"ray-{kind}"
        res = invoke("run", src, "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "1", "-q")
        assert res.exit_code == 0, (kind, res.output)
        assert_same_rows(pq.read_table(out), local_run(src, tmp_path, bert_export), "row")


@needs_ray
def test_duplicates_are_tagged_once_with_the_local_engines_rows(ray_cluster, tmp_path, bert_export):
    texts = [TEXTS[i % 40] for i in range(200)]  # 160 repeats
    src = tmp_path / "dups.parquet"
    pq.write_table(pa.table({"text": texts}), src)
    out = tmp_path / "out"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--engine", "ray", "--workers", "2",
                 "--chunk-rows", "50")
    assert res.exit_code == 0, res.output
    counted = re.search(r"([\d,]+) duplicate rows tagged once", res.output)
    # each worker has its own window: at most 40 distinct texts per worker are tagged
    assert counted and 200 - 2 * 40 <= int(counted.group(1).replace(",", "")) <= 160, res.output
    local = local_run(src, tmp_path, bert_export, "--dedup-window", "0")
    assert_same_rows(pq.read_table(out), local, "row")


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (Ray's raylet and its workers are below the process that started Ray)."""
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _tagging_workers() -> list[int]:
    import os

    workers = []
    for pid in _descendants(os.getpid()):
        try:
            title = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"MapWorker" in title and b"TagBatches" in title:
            workers.append(pid)
    return workers


@needs_ray
def test_a_killed_worker_is_restarted_and_no_row_is_lost(ray_cluster, tmp_path, bert_export):
    """Ray Data restarts a dead actor and retries its batch (its defaults: max_restarts=-1, max_task_retries=-1)."""
    import os
    import signal
    import threading
    import time

    from fasttag.options import EngineOptions
    from fasttag.ray_engine import RayOptions, run_ray

    texts = [" ".join(varied_sentences(2, seed=i)) for i in range(600)]
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"doc_id": list(range(len(texts))), "text": texts}), src, row_group_size=25)
    out = tmp_path / "out"
    outcome: dict = {}

    def job():
        try:
            outcome["summary"] = run_ray(EngineOptions(model_dir=str(bert_export)), str(src), str(out),
                                         id_column="doc_id", batch_rows=25, options=RayOptions(workers=1), quiet=True)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    killed = None
    deadline = time.time() + 240
    while time.time() < deadline and thread.is_alive() and killed is None:
        workers = _tagging_workers()
        if workers and out.exists() and any(out.glob("*.parquet")):  # mid-run: some batches written
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None, "the run ended before a worker could be killed"
    assert "error" not in outcome, outcome.get("error")
    local = local_run(src, tmp_path, bert_export, "--id-column", "doc_id")
    assert_same_rows(pq.read_table(out), local, "doc_id")


@needs_ray
def test_sigterm_stops_a_ray_run_in_one_line_with_exit_143(tmp_path, bert_export):
    """SIGTERM (Kubernetes, Slurm) used to kill a Ray driver without a word, its folder without _SUCCESS unexplained."""
    import signal
    import time

    texts = [" ".join(varied_sentences(2, seed=i)) for i in range(4000)]
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts}), src, row_group_size=25)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "fasttag", "run", str(src), "-o", str(out), "--model",
                             str(bert_export), "--engine", "ray", "--workers", "1", "--chunk-rows", "25", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (out.exists() and any(out.glob("*.parquet"))):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1] == (f"Error: terminated (SIGTERM); {out} has no _SUCCESS: its part files are not a complete "
                         "output; rerun the command with --overwrite"), stderr
    assert not (out / "_SUCCESS").exists()
