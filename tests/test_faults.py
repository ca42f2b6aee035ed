"""Faults of the machine, the store and the model folder, each caused for real (issue 20).

A write refused mid-run (a file-size limit on the child process), torn parts found by --resume,
SIGTERM, an object store that resets connections and answers 503, and hostile model folders.
"""

import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import sentences_parquet, varied_sentences
from fasttag import Tagger
from fasttag.cli import cli
from fasttag.errors import ModelError
from fasttag.run import Interrupted, run
from fasttag.write import lock_path, work_dir
from interrupt import stop_after as _stop_after

FASTTAG = [sys.executable, "-c", "from fasttag.cli import main; main()"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def cli_args(src, out, model, *extra):
    return FASTTAG + ["run", str(src), "-o", str(out), "--model", str(model), "--id-column", "id", "--chunk-rows",
                      "100", "--threads", "1", "-q", *extra]


def same_output(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes() if a.suffix == ".jsonl" else pq.read_table(a).equals(pq.read_table(b))


def parts_of(out: Path) -> list[str]:
    return sorted(p.name for p in work_dir(str(out)).glob("part-*"))


# -- a write refused mid-run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def growing_corpus(tmp_path_factory):
    """Six chunks of 100 rows: three of short rows, then three of long ones, whose parts are several times larger."""
    root = tmp_path_factory.mktemp("growing")
    texts = [f"Ada met Bob in Rome on day {i}." for i in range(300)]
    texts += [" ".join(varied_sentences(10, seed=i)) for i in range(300)]
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(600)], "text": texts}), root / "in.parquet")
    return root / "in.parquet"


def part_sizes(reference: Path) -> list[int]:
    """The size of each 100-row part a run of `reference`'s job writes (as its parts are: JSONL lines, or zstd
    Parquet of the chunk's rows)."""
    if reference.suffix == ".jsonl":
        lines = reference.read_bytes().splitlines(keepends=True)
        return [sum(len(x) for x in lines[i:i + 100]) for i in range(0, len(lines), 100)]
    table = pq.read_table(reference)
    sizes = []
    for i in range(0, table.num_rows, 100):
        sink = pa.BufferOutputStream()
        pq.write_table(table.slice(i, 100), sink, compression="zstd")
        sizes.append(sink.getvalue().size)
    return sizes


def limited(max_bytes: int):
    """preexec_fn: the child may write no file larger than `max_bytes` (RLIMIT_FSIZE), as a full disk refuses."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


@pytest.mark.slow  # subprocesses under a file-size limit, then resumed
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_write_refused_mid_run_keeps_the_finished_parts_and_resume_completes(tmp_path, bert_export,
                                                                                growing_corpus, fmt):
    reference = tmp_path / f"ref.{fmt}"
    run(Tagger.load(bert_export, threads=1), str(growing_corpus), str(reference), id_column="id", chunk_rows=100)
    sizes = part_sizes(reference)
    small, large = max(sizes[:3]), min(sizes[3:])
    assert large > 2 * small, sizes  # the limit below lets parts 0-2 through and refuses part 3

    # with the duplicate window on, each chunk's share of it is saved too (an Arrow file beside the part): a limit
    # that refuses one of those stops the run as well, in one line, and a resume completes the same output
    windowed = tmp_path / f"windowed.{fmt}"
    res = subprocess.run(cli_args(growing_corpus, windowed, bert_export), capture_output=True, text=True,
                         timeout=300, preexec_fn=limited((small + large) // 2))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and "File too large" in lines[0] and "--resume" in lines[0], \
        res.stderr
    res = subprocess.run(cli_args(growing_corpus, windowed, bert_export, "--resume"), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert same_output(windowed, reference)

    # the parts alone below (no window files, so that the limit falls between the parts' sizes)
    out = tmp_path / f"out.{fmt}"
    res = subprocess.run(cli_args(growing_corpus, out, bert_export, "--dedup-window", "0"), capture_output=True,
                         text=True, timeout=300, preexec_fn=limited((small + large) // 2))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    part3 = work_dir(str(out)) / f"part-0000003.{fmt}"
    assert f"cannot write {part3}: " in lines[0] and "File too large" in lines[0], lines[0]
    assert "--resume" in lines[0] and "Traceback" not in res.stderr
    assert parts_of(out) == [f"part-000000{i}.{fmt}" for i in range(3)]
    assert not out.exists() and not list(tmp_path.glob(".*.partial"))

    # every part fits, but the joined output does not: the join is refused, and all six parts stay
    total = reference.stat().st_size
    assert total > max(sizes) * 1.5
    res = subprocess.run(cli_args(growing_corpus, out, bert_export, "--dedup-window", "0", "--resume"),
                         capture_output=True, text=True, timeout=300, preexec_fn=limited((max(sizes) + total) // 2))
    assert res.returncode == 1, res.stderr
    assert f"cannot write {out}: " in res.stderr and "File too large" in res.stderr and "--resume" in res.stderr
    assert len(parts_of(out)) == 6 and not out.exists() and not list(tmp_path.glob(".*.partial"))

    # space freed: the resumed run joins what was kept, identical to an uninterrupted run
    res = subprocess.run(cli_args(growing_corpus, out, bert_export, "--dedup-window", "0", "--resume"),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert same_output(out, reference) and not work_dir(str(out)).exists()


# -- torn parts --------------------------------------------------------------------------------------


def _cut_short(part: Path) -> None:
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])


def _flip_a_byte(part: Path) -> None:  # same size: only the checksum tells
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x55
    part.write_bytes(bytes(data))


def _lose_the_record(part: Path) -> None:  # a crash between the part's rename and its record's
    (part.parent / f"digest-{part.name.split('-')[1].split('.')[0]}").unlink()


@pytest.fixture(scope="module")
def tagger(bert_export):
    return Tagger.load(bert_export, threads=1)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("tear", [_cut_short, _flip_a_byte, _lose_the_record], ids=["cut", "flipped", "unrecorded"])
def test_a_torn_part_is_found_by_resume_and_redone(tmp_path, tagger, fmt, tear):
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(varied_sentences(50, seed=41))]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reference = tmp_path / f"ref.{fmt}"
    run(tagger, str(src), str(reference), id_column="id", chunk_rows=10)
    out = tmp_path / f"o.{fmt}"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), id_column="id", chunk_rows=10, progress=_stop_after(3))
    assert parts_of(out) == [f"part-000000{i}.{fmt}" for i in range(3)]
    tear(work_dir(str(out)) / f"part-0000001.{fmt}")
    summary = run(tagger, str(src), str(out), id_column="id", chunk_rows=10, resume=True)
    assert summary.resumed_rows == 10  # part 0 kept; the torn part 1 and part 2 after it redone
    if tear is _lose_the_record:
        assert summary.torn_part is None  # never recorded as whole: not torn, simply unfinished
    else:
        assert summary.torn_part.startswith(f"part-0000001.{fmt}: ")
        assert "torn part of the interrupted run was redone" in summary.line()
    assert same_output(out, reference)


def test_a_resume_after_a_failed_join_counts_the_rows_done_earlier(tmp_path, tagger, monkeypatch):
    """Every part written, the join failed: the resume said "25 rows (-5 tagged now, 30 done earlier)" and a
    negative rate, counting the last, shorter part as a full chunk."""
    from fasttag.errors import OutputError
    from fasttag.write import PartsWriter

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in varied_sentences(25, seed=43)))
    out = tmp_path / "o.jsonl"
    join = PartsWriter.commit

    def refused(self, schema):
        raise OutputError("cannot write the output") from OSError(28, "No space left on device")

    monkeypatch.setattr(PartsWriter, "commit", refused)
    with pytest.raises(OutputError):
        run(tagger, str(src), str(out), chunk_rows=10)
    assert parts_of(out) == [f"part-000000{i}.jsonl" for i in range(3)]
    monkeypatch.setattr(PartsWriter, "commit", join)
    summary = run(tagger, str(src), str(out), chunk_rows=10, resume=True)
    assert (summary.rows, summary.resumed_rows) == (25, 25)
    assert summary.line().startswith("25 rows, 25 done earlier; the 0 tagged now: 0 windows, 0 entities in ")
    assert "(0 rows/s, 0 tokens/s)" in summary.line() and len(out.read_text().splitlines()) == 25


def test_a_torn_part_is_named_by_the_summary_line(tmp_path, bert_export, tagger):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(varied_sentences(30))))
    out = tmp_path / "o.jsonl"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), id_column="id", chunk_rows=10, progress=_stop_after(2))
    _cut_short(work_dir(str(out)) / "part-0000000.jsonl")
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--chunk-rows", "10",
                 "--resume")
    assert res.exit_code == 0, res.output
    assert "a torn part of the interrupted run was redone (part-0000000.jsonl: " in res.output
    assert "0 done earlier" not in res.output and len(out.read_text().splitlines()) == 30


# -- SIGTERM -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory):
    """20 chunks of 100 rows of 5 sentences: slow enough that SIGTERM lands mid-run."""
    return sentences_parquet(tmp_path_factory.mktemp("long") / "in.parquet", 2000, 5)


@pytest.mark.slow  # a subprocess stopped by SIGTERM, then resumed
def test_sigterm_stops_as_ctrl_c_does(tmp_path, bert_export, long_corpus, tagger):
    out = tmp_path / "o.parquet"
    proc = subprocess.Popen(cli_args(long_corpus, out, bert_export), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(parts_of(out)) < 2 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: terminated (SIGTERM); nothing was written to"), err
    assert "--resume" in lines[0]
    kept = parts_of(out)
    assert 2 <= len(kept) < 20 and not out.exists()
    res = subprocess.run(cli_args(long_corpus, out, bert_export, "--resume"), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    reference = tmp_path / "ref.parquet"
    run(tagger, str(long_corpus), str(reference), id_column="id", chunk_rows=100)
    assert same_output(out, reference)


@pytest.mark.slow  # a subprocess
def test_sigterm_on_a_stdin_run_exits_143_and_keeps_nothing(tmp_path, bert_export):
    out = tmp_path / "o.jsonl"
    # stdin never ends: the run waits for its first chunk, and SIGTERM finds it there
    proc = subprocess.Popen(FASTTAG + ["run", "-", "-o", str(out), "--model", str(bert_export), "-q"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not lock_path(str(out)).exists():
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "cannot be resumed" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no parts, no lock, no output


# -- a flaky object store ----------------------------------------------------------------------------
class FaultyProxy:
    """A TCP proxy in front of the S3 server that fails chosen requests: `fail(method, how, times)` makes the next
    `times` requests of that HTTP method get a connection reset ("reset") or an HTTP 503 Slow Down ("503"), or
    wait 2 s before they are forwarded ("delay").

    Each forwarded connection carries one request (it is forwarded with `Connection: close`), so that
    faults land on requests, not on whichever pooled connection a request happens to take.
    """

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.plan: dict[str, list[str]] = {}
        self.failed: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, method: str, how: str, times: int = 1) -> None:
        with self.lock:
            self.plan.setdefault(method, []).extend([how] * times)

    def clear(self) -> None:
        with self.lock:
            self.plan.clear()
            self.failed.clear()

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close()
                return
            head += chunk
        method = head.split(b" ", 1)[0].decode()
        with self.lock:
            how = self.plan.get(method, []).pop(0) if self.plan.get(method) else None
            if how:
                self.failed.append((method, how))
        if how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if how == "delay":  # a slow store: the request is forwarded after a pause
            time.sleep(2)
        elif how == "503":
            body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate.</Message></Error>")
            conn.sendall(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            conn.close()
            return
        fields, rest = head.split(b"\r\n\r\n", 1)
        kept = [line for line in fields.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        upstream = socket.create_connection(self.upstream)
        upstream.sendall(b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + rest)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(conn, upstream), daemon=True).start()
        pump(upstream, conn)
        conn.close()
        upstream.close()


@pytest.fixture(scope="module")
def s3():
    """The local S3 server and a fault-injecting proxy in front of it, which FASTTAG_S3_ENDPOINT names."""
    from s3_server import local_s3

    with local_s3() as (endpoint, fs):
        host, port = endpoint.removeprefix("http://").split(":")
        proxy = FaultyProxy((host, int(port)))
        saved = os.environ["FASTTAG_S3_ENDPOINT"]
        os.environ["FASTTAG_S3_ENDPOINT"] = proxy.endpoint
        try:
            yield fs, proxy
        finally:
            os.environ["FASTTAG_S3_ENDPOINT"] = saved
            proxy.close()


@pytest.fixture(scope="module")
def s3_corpus(tmp_path_factory, s3, bert_export):
    from s3_server import BUCKET, put

    fs, _ = s3
    root = tmp_path_factory.mktemp("s3-corpus")
    texts = varied_sentences(60, seed=43)
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(60)], "text": texts}), root / "in.parquet",
                   row_group_size=20)
    uri = put(fs, f"{BUCKET}/flaky/in.parquet", root / "in.parquet")
    reference = root / "ref.jsonl"
    res = invoke("run", root / "in.parquet", "-o", reference, "--model", bert_export, "--id-column", "id", "-q")
    assert res.exit_code == 0, res.output
    return root / "in.parquet", uri, reference


def test_transient_store_errors_on_reads_are_retried(tmp_path, s3, s3_corpus, bert_export):
    _, proxy = s3
    _, uri, reference = s3_corpus
    proxy.clear()
    proxy.fail("HEAD", "reset", 2)
    proxy.fail("GET", "reset", 2)
    proxy.fail("GET", "503", 2)
    out = tmp_path / "o.jsonl"
    res = invoke("run", uri, "-o", out, "--model", bert_export, "--id-column", "id", "-q")
    assert res.exit_code == 0, res.output
    assert sorted(set(proxy.failed)) == [("GET", "503"), ("GET", "reset"), ("HEAD", "reset")]
    assert len(proxy.failed) == 6 and out.read_bytes() == reference.read_bytes()


def test_transient_store_errors_on_the_upload_are_retried(tmp_path, s3, s3_corpus, bert_export):
    from s3_server import BUCKET, get

    fs, proxy = s3
    src, _, reference = s3_corpus
    proxy.clear()
    proxy.fail("PUT", "reset", 2)
    proxy.fail("PUT", "503", 2)
    res = invoke("run", src, "-o", f"s3://{BUCKET}/flaky/out.jsonl", "--model", bert_export, "--id-column", "id",
                 "-q")
    assert res.exit_code == 0, res.output
    assert proxy.failed == [("PUT", "reset")] * 2 + [("PUT", "503")] * 2
    assert get(fs, f"{BUCKET}/flaky/out.jsonl") == reference.read_bytes()


def test_a_store_that_keeps_failing_is_one_line_and_the_uri_holds_nothing(tmp_path, s3, s3_corpus, bert_export):
    import pyarrow.fs as pafs

    from s3_server import BUCKET

    fs, proxy = s3
    src, uri, _ = s3_corpus
    proxy.clear()
    proxy.fail("PUT", "reset", 1000)
    target = f"{BUCKET}/flaky/never.parquet"
    res = invoke("run", src, "-o", f"s3://{target}", "--model", bert_export, "-q")
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: s3://{target}: "), res.output
    assert len(proxy.failed) >= 6  # every attempt was made, and failed
    assert fs.get_file_info(target).type == pafs.FileType.NotFound
    assert [i.path for i in fs.get_file_info(pafs.FileSelector(f"{BUCKET}/flaky"))
            if "never" in i.path] == []

    proxy.clear()
    proxy.fail("GET", "503", 1000)
    res = invoke("run", uri, "-o", tmp_path / "o.parquet", "--model", bert_export, "-q")
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1 and uri in lines[0], res.output
    assert not (tmp_path / "o.parquet").exists()
    proxy.clear()


@pytest.mark.slow  # a subprocess stopped during its upload
def test_a_stop_during_the_upload_never_leaves_part_of_the_object(tmp_path, s3, s3_corpus, bert_export):
    from s3_server import BUCKET, get

    fs, proxy = s3
    src, _, reference = s3_corpus
    proxy.clear()
    proxy.fail("PUT", "delay", 1)
    target = f"{BUCKET}/flaky/stopped.jsonl"
    proc = subprocess.Popen(FASTTAG + ["run", str(src), "-o", f"s3://{target}", "--model", str(bert_export),
                                       "--id-column", "id", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not proxy.failed and proc.poll() is None:
        time.sleep(0.01)
    assert proxy.failed == [("PUT", "delay")]  # the upload is under way, held by the proxy
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # never halfway: the object is whole and the run completed, or the store holds nothing and the run says so
    if proc.returncode == 0:
        assert get(fs, target) == reference.read_bytes()
    else:
        import pyarrow.fs as pafs

        lines = err.strip().splitlines()
        assert proc.returncode == 143 and len(lines) == 1, err
        assert lines[0] == f"Error: terminated (SIGTERM); nothing was written to s3://{target}"
        assert fs.get_file_info(target).type == pafs.FileType.NotFound


# -- hostile model folders ---------------------------------------------------------------------------
def _with_external_data(model: Path, folder: Path, location: str) -> Path:
    """`model` copied to `folder`, its weights moved to external data that the graph says lie at `location`."""
    import onnx

    shutil.copytree(model, folder)
    proto = onnx.load(str(folder / "model.onnx"))
    onnx.save(proto, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    proto = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(proto, str(folder / "model.onnx"))
    return folder


def test_external_data_inside_the_folder_loads(tmp_path, bert_export):
    folder = _with_external_data(bert_export, tmp_path / "m", "weights.bin")
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Ada Lovelace lives in London."}\n')
    res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", folder)
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("where", ["absolute", "dotdot", "link"])
def test_external_data_outside_the_folder_is_refused_before_onnxruntime(tmp_path, bert_export, where, monkeypatch):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    folder = _with_external_data(bert_export, tmp_path / "m", "weights.bin")
    # the weights really are where the graph points: onnxruntime would load them
    shutil.move(folder / "weights.bin", outside / "weights.bin")
    location = {"absolute": str(outside / "weights.bin"), "dotdot": "../elsewhere/weights.bin",
                "link": "weights.bin"}[where]
    if where == "link":
        (folder / "weights.bin").symlink_to(outside / "weights.bin")
    else:
        _with_external_data(bert_export, tmp_path / "tmp", location)
        shutil.copy(tmp_path / "tmp" / "model.onnx", folder / "model.onnx")
    import onnxruntime

    opened = []
    real = onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: opened.append(a) or real(*a, **k))
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Ada"}\n')
    res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", folder)
    assert res.exit_code == 1, res.output
    assert f"model.onnx reads external data from {location!r}, outside the model folder; refused" in res.output
    assert opened == [] and "Traceback" not in res.output
    with pytest.raises(ModelError, match="outside the model folder"):
        Tagger.load(folder)


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json", "config.json"])
def test_a_model_file_linked_from_outside_the_folder_is_refused(tmp_path, bert_export, name):
    folder = tmp_path / "m"
    shutil.copytree(bert_export, folder)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(folder / name, outside / name)
    (folder / name).symlink_to(outside / name)
    with pytest.raises(ModelError, match=f"{name} is a link to .*, outside the model folder; refused"):
        Tagger.load(folder)
    # links inside the folder, and a Hugging Face cache snapshot's links into its blobs, are fine
    inside = tmp_path / "inside"
    shutil.copytree(bert_export, inside)
    (inside / name).rename(inside / f"real-{name}")
    (inside / name).symlink_to(f"real-{name}")
    Tagger.load(inside)
    snapshot = tmp_path / "models--x--y" / "snapshots" / "abc123"
    blobs = tmp_path / "models--x--y" / "blobs"
    blobs.mkdir(parents=True)
    shutil.copytree(bert_export, snapshot)
    shutil.move(snapshot / name, blobs / "f00d")
    (snapshot / name).symlink_to("../../blobs/f00d")
    Tagger.load(snapshot)


def test_a_checkpoint_asking_for_custom_code_is_never_run(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["EvilForTokenClassification"], "model_type": "evil", "id2label": {"0": "O"},
        "auto_map": {"AutoModelForTokenClassification": "modeling_evil.EvilForTokenClassification"}}))
    (folder / "model.safetensors").write_bytes(b"")
    for args in (["export", folder, "-o", tmp_path / "out"],
                 ["run", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", "--model", folder]):
        (tmp_path / "in.jsonl").write_text('{"text": "Ada"}\n')
        res = invoke(*args)
        assert res.exit_code == 1, res.output
        assert "needs custom code (its config.json has auto_map" in res.output
        assert not marker.exists()


@pytest.fixture()
def pickled_code(tmp_path):
    """A pytorch_model.bin that runs code when unpickled: it creates `marker`."""
    import torch

    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.bin"
    torch.save({"weight": Payload()}, path)
    return path, marker


def test_pickle_weights_are_loaded_as_tensors_only(tmp_path, checkpoint_factory, pickled_code, monkeypatch):
    from fasttag.export import export

    evil, marker = pickled_code
    source = checkpoint_factory("bert")
    assert (source / "model.safetensors").exists()
    # pickle weights only: exported (as tensors), and the log says how they were read
    only_bin = tmp_path / "only-bin"
    shutil.copytree(source, only_bin)
    import transformers

    transformers.AutoModelForTokenClassification.from_pretrained(only_bin).save_pretrained(
        only_bin, safe_serialization=False)
    (only_bin / "model.safetensors").unlink()
    logged: list[str] = []
    export(str(only_bin), tmp_path / "e1", log=logged.append)
    assert any("torch.load(weights_only=True)" in line for line in logged)
    # a pickle that runs code: refused with the reason, never run
    shutil.copy(evil, only_bin / "pytorch_model.bin")
    res = invoke("export", only_bin, "-o", tmp_path / "e2")
    assert res.exit_code == 1, res.output
    assert "pytorch_model.bin is refused: it holds more than tensors" in res.output and "posix.system" in res.output
    assert not marker.exists() and not (tmp_path / "e2").exists()
    # beside safetensors, the pickle is never read
    both = tmp_path / "both"
    shutil.copytree(source, both)
    shutil.copy(evil, both / "pytorch_model.bin")
    res = invoke("export", both, "-o", tmp_path / "e3")
    assert res.exit_code == 0, res.output
    assert not marker.exists()


# -- huge rows ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_text_over_max_text_bytes_is_a_counted_bad_row(tmp_path, bert_export, fmt):
    big = "Ada Lovelace lives in London. " * 100  # 3,000 bytes
    accents = "é" * 400  # 400 characters, 800 bytes of UTF-8
    texts = ["Paris is big.", big, "Rome.", accents]
    src = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    else:
        pq.write_table(pa.table({"id": list(range(4)), "text": texts}), src)
    out = tmp_path / "o.parquet"
    where = "line 2" if fmt == "jsonl" else "row 1"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--max-text-bytes", 700)
    assert res.exit_code == 1 and not out.exists()
    assert f"{src}, {where}: text of 3,000 bytes is longer than --max-text-bytes 700 (raise the limit, or use " \
           "--on-error skip" in res.output, res.output
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--max-text-bytes", 700,
                 "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert f"2 bad {'lines' if fmt == 'jsonl' else 'rows'} skipped" in res.output
    assert pq.read_table(out).column("id").to_pylist() == [0, 2]
    res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--max-text-bytes", 700,
                 "--on-error", "skip", "--keep-columns", "text", "--overwrite")  # kept columns lose the same rows
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).column("text").to_pylist() == ["Paris is big.", "Rome."]
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert [r.get("line", r.get("row")) for r in rejects] == ([2, 4] if fmt == "jsonl" else [1, 3])
    assert "800 bytes is longer than --max-text-bytes 700" in rejects[1]["error"]
    assert rejects[0]["raw_bytes"] >= 3000 and len(rejects[0]["raw"]) <= 1002  # its start, not all of it
    for limit in ("0", "3000"):  # no limit, and a limit the longest text meets exactly
        res = invoke("run", src, "-o", out, "--model", bert_export, "--id-column", "id", "--max-text-bytes", limit,
                     "--overwrite")
        assert res.exit_code == 0 and pq.read_table(out).num_rows == 4, res.output


def test_rejects_that_cannot_be_written_leave_no_output_and_resume_completes(tmp_path, bert_export, tagger):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "Ada lives in Paris."}\n{"text": broken\n{"text": "Bob works in Rome."}\n')
    out = tmp_path / "o.jsonl"
    blocker = Path(f"{out}.rejects.jsonl")
    blocker.mkdir()  # the rejects file cannot be put in place: a folder holds its name
    res = invoke("run", src, "-o", out, "--model", bert_export, "--on-error", "skip", "--chunk-rows", "1")
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and lines[-1].startswith(f"Error: cannot write {blocker}: "), res.output
    assert "--resume" in lines[-1] and not out.exists()  # no output without its rejects
    assert len(parts_of(out)) == 2
    blocker.rmdir()
    res = invoke("run", src, "-o", out, "--model", bert_export, "--on-error", "skip", "--chunk-rows", "1", "--resume")
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 2 and json.loads(blocker.read_text())["line"] == 2


def test_ctrl_c_before_the_first_row_says_what_became_of_the_output(tmp_path, bert_export, monkeypatch):
    """Ctrl-C while the model loads said only "Error: interrupted": nothing was written, and an earlier
    interrupted run's finished chunks are still there for --resume."""
    src = sentences_parquet(tmp_path / "in.parquet", 40, 1)
    out = tmp_path / "o.parquet"
    args = ["run", str(src), "-o", str(out), "--model", str(bert_export), "--chunk-rows", "10", "-q"]
    real_load = Tagger.load

    def interrupted_load(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Tagger, "load", interrupted_load)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 130 and res.output.strip() == f"Error: interrupted; nothing was written to {out}"
    monkeypatch.setattr(Tagger, "load", real_load)
    with pytest.raises(Interrupted):  # an earlier run, stopped after 2 of its 4 chunks
        run(Tagger.load(bert_export), str(src), str(out), chunk_rows=10, progress=_stop_after(2))
    monkeypatch.setattr(Tagger, "load", interrupted_load)
    res = CliRunner().invoke(cli, [*args, "--resume"])
    assert res.exit_code == 130, res.output
    assert res.output.strip().endswith("finished chunks are kept: rerun the same command with --resume to continue")
    monkeypatch.setattr(Tagger, "load", real_load)
    res = CliRunner().invoke(cli, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).num_rows == 40
