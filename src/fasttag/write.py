"""Write tagged rows; a file appears at the output path only once the run completed.

Rows go first to numbered part files (one per input chunk) in a hidden work folder beside the
output, each renamed into place when complete. A killed run leaves whole parts behind, which
`--resume` keeps; at the end the parts are joined into a hidden partial file that is renamed onto
the output path, and the work folder is removed. A remote output (s3://, gs://, hdfs://) is
assembled the same way in a local temporary folder, then uploaded whole.

A live run holds an `OutputLock` on its output, so that a second run on the same output (with
`--overwrite` or `--resume` too) is refused instead of writing into the same parts folder.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import gzip
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fasttag import storage
from fasttag.entities import with_shortest_scores
from fasttag.errors import OutputError, UsageError, first_line
from fasttag.formats import output_format

STATE_FILE = "state.json"


def work_dir(output: str) -> Path:
    p = Path(output)
    return p.with_name(f".{p.name}.fasttag-parts")


def lock_path(output: str) -> Path:
    """Beside the parts folder, not in it: `--overwrite` removes the folder, never the lock."""
    p = Path(output)
    return p.with_name(f".{p.name}.fasttag-lock")


# flock is not available on every file system (some FUSE and SMB mounts); the pid in the file is then the lock
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class OutputLock:
    """Held by the one live run that writes an output: an exclusive flock on `lock_path(output)`.

    The kernel drops a flock when its holder dies (even by SIGKILL), so the lock of a dead run is
    simply taken over; the file names the holder's host and pid for the message refusing a second run.
    """

    def __init__(self, output: str, fd: int):
        self.output = output
        self.path = lock_path(output)
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, output: str) -> OutputLock:
        path = lock_path(output)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot write beside {output}: {exc}") from exc
            try:
                _lock_or_refuse(fd, output, fcntl.LOCK_EX)
                # The run that held it may have removed the file between our open and our flock: lock the file
                # that is at the path now, not a removed one another run could also lock.
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())
        return cls(output, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still holding it: see acquire()
        os.close(self._fd)
        self._fd = None


def check_unlocked(output: str) -> None:
    """Refuse at once (before anything is loaded) an output that a live run is writing."""
    try:
        fd = os.open(lock_path(output), os.O_RDONLY)
    except OSError:
        return  # no lock file (or none we can read): no live run, or acquire() will say what is wrong
    try:
        _lock_or_refuse(fd, output, fcntl.LOCK_SH)
    finally:
        os.close(fd)  # drops the probe's shared lock


def _lock_or_refuse(fd: int, output: str, mode: int) -> None:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = _holder(fd)
    except OSError as exc:
        if exc.errno not in _NO_FLOCK:
            raise OutputError(f"cannot lock {lock_path(output)}: {exc}") from exc
        holder = _holder(fd)
        if not holder or not _may_be_alive(holder):
            return  # written by a run that is gone: take it over
    who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "its pid not yet written"
    raise UsageError(f"output {output} is being written by another fasttag run ({who}); "
                     "wait for it to finish or stop it, then run again")


def _holder(fd: int) -> dict | None:
    """The host and pid in a lock file; the holder may be about to write them, so look again briefly."""
    for _ in range(5):
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"null")
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return data
        time.sleep(0.02)
    return None


def _may_be_alive(holder: dict) -> bool:
    """False only when the holder's pid is known to be gone: it ran on this host and no longer runs."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True  # another host's process cannot be checked from here
    if holder["pid"] == os.getpid():
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def partial_path(output: str) -> Path:
    p = Path(output)
    return p.with_name(f".{p.name}.partial")


def jsonl_lines(table: pa.Table) -> str:
    # scores are float32: write the shortest decimal that reads back as the same float32 (0.9977015, not the
    # float64 expansion 0.9977015256881714), at every level
    rows = with_shortest_scores(table).to_pylist()
    # ids of types JSON lacks (dates, decimals, bytes) are written as their text
    return "".join(json_dumps(row) + "\n" for row in rows)


def json_dumps(obj) -> str:
    """`obj` as one line of standard JSON: values JSON lacks as text (see `_json_text`), and so the floats it
    lacks too (NaN, Infinity, -Infinity: "NaN", "Infinity", "-Infinity"), where json.dumps would write bare
    NaN that most JSON readers refuse."""
    try:
        return json.dumps(obj, ensure_ascii=False, default=_json_text, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: the slow path for this one object
        return json.dumps(_finite(obj), ensure_ascii=False, default=_json_text, allow_nan=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_text(value) -> str:
    """Text for an id JSON cannot hold: bytes as UTF-8 when they are, else as hex; others by str()."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    return str(value)


def _part_index(path: Path) -> int:
    return int(path.name.split("-", 1)[1].split(".", 1)[0])


def _digest_path(folder: Path, index: int) -> Path:
    """Part `index`'s record: the digest of the input rows it was made from (checked again by --resume), and the
    part's rows, size and SHA-256 as written (checked by --resume before the part is trusted)."""
    return folder / f"digest-{index:07d}"


def _window_path(folder: Path, index: int) -> Path:
    return folder / f"window-{index:07d}.arrow"


def window_file(output: str, index: int) -> Path:
    """Where chunk `index`'s share of the duplicate window is saved (`PartsWriter.write`'s `window`)."""
    return _window_path(work_dir(output), index)


def saved_windows(output: str, parts: int) -> list[tuple[int, pa.Table]]:
    """The duplicate window's shares that an interrupted run saved for its first `parts` chunks (those still in
    its window), oldest first, each with its chunk's index. One that cannot be read is left out: the window then
    copies less, and an int8 model's scores can differ slightly from an uninterrupted run's (the batches differ),
    nothing else."""
    tables = []
    for path in sorted(work_dir(output).glob("window-*.arrow"), key=_part_index):
        if _part_index(path) >= parts:
            continue
        try:
            with pa.OSFile(str(path), "rb") as source:  # read into memory: the file is deleted later
                tables.append((_part_index(path), pa.ipc.open_file(source).read_all()))
        except (OSError, pa.ArrowException):
            continue
    return tables


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _part_rows(part: Path) -> int:
    """The rows a part holds, read as `commit` reads it (a torn Parquet footer or JSONL line fails here)."""
    if part.suffix == ".parquet":
        return pq.read_table(part).num_rows
    with open(part, "rb") as fh:
        lines = fh.read().split(b"\n")
    if lines[-1]:
        raise ValueError("its last line is cut short")
    for line in lines[:-1]:
        json.loads(line)
    return len(lines) - 1


def torn_reason(part: Path, record: dict) -> str | None:
    """Why a part is not the whole part its record describes (None when it is): cut short, corrupted, unreadable."""
    try:
        size = part.stat().st_size
        if size != record.get("bytes"):
            return f"{size:,} bytes, {record.get('bytes', 0):,} written"
        if _sha256(part) != record.get("sha256"):
            return "its bytes differ from those written (checksum)"
        rows = _part_rows(part)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return f"unreadable ({first_line(exc)})"
    if rows != record.get("rows"):
        return f"{rows:,} rows, {record.get('rows', 0):,} written"
    return None


def _durable_replace(tmp: Path, final: Path) -> None:
    """Rename after the data reached the disk, so that a part that exists is a whole part."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def check_output_folder(path: str | Path) -> None:
    """Refuse a local output path (a file, or a folder to be made) whose folder does not exist: one message and
    exit code (2, before any work) for every command's output and report files."""
    if not Path(path).resolve().parent.is_dir():
        raise UsageError(f"the folder of {path} does not exist")


def check_report_path(path: str, option: str, overwrite: bool, inputs: Iterable[str | None] = ()) -> None:
    """Refuse a report file (`show --html`, `eval --json`, `bench --json`) that is one of the command's inputs, a
    folder, an existing file without `overwrite`, or a path whose folder does not exist, before any work is
    done."""
    target = Path(path)
    for source in inputs:
        if source and source != "-" and not storage.is_remote(source) and Path(source).exists() \
                and target.resolve() == Path(source).resolve():
            raise UsageError(f"{option} {path} is the input {source}: it would be overwritten; give another path")
    if target.is_dir():
        raise UsageError(f"{path} is a folder; give a file path")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")
    check_output_folder(path)


def write_text_whole(path: str | Path, text: str) -> None:
    """Write a text file whole or not at all: a hidden temporary file beside `path`, then a rename onto it."""
    path = Path(path)
    tmp = partial_path(str(path))
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from exc


class StdoutWriter:
    """JSONL rows straight to stdout (no parts, no resume)."""

    def write(self, index: int, table: pa.Table, digest: str | None = None) -> None:
        sys.stdout.write(jsonl_lines(table))
        sys.stdout.flush()

    def commit(self, schema: pa.Schema) -> None:
        pass

    def abort(self) -> None:
        pass


class PartsWriter:
    """One complete part file per chunk in the work folder; `commit()` joins them onto the output path."""

    def __init__(self, output: str, state: dict, resume: bool = False):
        self.output = output
        self.format = output_format(output)
        self.dir = work_dir(output)
        parent = Path(output).resolve().parent
        if not parent.is_dir():
            raise OutputError(f"output folder {parent} does not exist")
        if not resume:
            try:
                if self.dir.exists():
                    shutil.rmtree(self.dir)
                self.dir.mkdir()
                (self.dir / STATE_FILE).write_text(json.dumps(state, indent=2))
            except OSError as exc:
                raise OutputError(f"cannot write beside {output}: {exc}") from exc
        self.suffix = ".parquet" if self.format == "parquet" else ".jsonl"
        self.committed = False
        for trash in self.dir.parent.glob(f"{glob.escape(self.dir.name)}.done-*"):  # a kill cut its removal short
            shutil.rmtree(trash, ignore_errors=True)

    def part(self, index: int) -> Path:
        return self.dir / f"part-{index:07d}{self.suffix}"

    def write(self, index: int, table: pa.Table, digest: str | None = None, window: pa.Table | None = None) -> None:
        """Write one chunk's rows as part `index` (its id type may still be null; commit casts).

        `digest` (of the chunk's input rows) goes into the part's record, written once the part is in place;
        `window`, the chunk's share of the duplicate window (`DuplicateWindow.chunk_table`), before the record, so
        that a part --resume trusts has its share beside it (`saved_windows`).
        """
        final = self.part(index)
        tmp = final.with_name(final.name + ".tmp")
        try:
            if self.format == "parquet":
                pq.write_table(table, tmp, compression="zstd")
            else:
                tmp.write_text(jsonl_lines(table), encoding="utf-8")
            record = {"input_digest": digest, "rows": table.num_rows, "bytes": tmp.stat().st_size,
                      "sha256": _sha256(tmp)}
            _durable_replace(tmp, final)
            if window is not None:
                self._write_window(index, window)
            if digest is not None:  # last: a part without its record is redone by --resume
                digest_file = _digest_path(self.dir, index)
                digest_tmp = digest_file.with_name(digest_file.name + ".tmp")
                digest_tmp.write_text(json.dumps(record))
                _durable_replace(digest_tmp, digest_file)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {first_line(exc)}") from exc

    def _write_window(self, index: int, table: pa.Table) -> None:
        final = _window_path(self.dir, index)
        tmp = final.with_name(final.name + ".tmp")
        try:
            # uncompressed: zstd's buffers added 15 MB to the peak RSS of a 50,000-row run (bench/rss.py), for files
            # the window bounds (at most --dedup-window rows of results in all)
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as ipc:
                ipc.write_table(table)
            _durable_replace(tmp, final)
        except (OSError, pa.ArrowException) as exc:
            raise OutputError(f"cannot write {final}: {first_line(exc)}") from exc

    def drop_windows(self, indexes: list[int]) -> None:
        """Delete the saved window shares of chunks the window let go of."""
        for index in indexes:
            _window_path(self.dir, index).unlink(missing_ok=True)

    def parts(self) -> list[Path]:
        return sorted(self.dir.glob(f"part-*{self.suffix}"), key=_part_index)

    def commit(self, schema: pa.Schema) -> None:
        """Join the parts, cast to the run's final `schema`, onto the output path."""
        tmp = partial_path(self.output)
        try:
            if self.format == "parquet":
                schema = resolved_schema(schema, [pq.read_schema(part) for part in self.parts()], self.output)
                with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                    wrote = False
                    for part in self.parts():
                        table = pq.read_table(part)
                        if table.num_rows:
                            writer.write_table(conformed(table, schema, self.output))
                            wrote = True
                    if not wrote:
                        writer.write_table(schema.empty_table())
            else:
                with open(tmp, "wb") as raw:
                    # a gzip header names the file it holds: the output's name, not the temporary one's
                    out = (gzip.GzipFile(filename=Path(self.output).name[:-3], mode="wb", fileobj=raw)
                           if self.output.lower().endswith(".gz") else raw)
                    with out:
                        for part in self.parts():
                            with open(part, "rb") as fh:
                                shutil.copyfileobj(fh, out)
            _durable_replace(tmp, Path(self.output))
        except OSError as exc:
            raise OutputError(f"cannot write {self.output}: {first_line(exc)}") from exc
        self.committed = True  # the output is complete: what follows only tidies up
        self.remove_parts()

    def remove_parts(self) -> None:
        """Delete the work folder of a committed run: renamed first (one step), so that no half-deleted folder, its
        state gone and some parts left, ever stands where a later run looks for an interrupted one."""
        trash = self.dir.with_name(f"{self.dir.name}.done-{os.getpid()}")
        try:
            os.replace(self.dir, trash)
        except OSError:
            trash = self.dir
        shutil.rmtree(trash, ignore_errors=True)

    def abort(self, keep_parts: bool = False) -> None:
        """Drop what was written (or only the unfinished files): the output path is left untouched."""
        if keep_parts:
            for tmp in self.dir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        partial_path(self.output).unlink(missing_ok=True)


def resolved_schema(schema: pa.Schema, parts: list[pa.Schema], output: str) -> pa.Schema:
    """`schema` with each field given the type it and its parts' types promote to: a kept JSON field's type,
    which each chunk inferred (null in one, int64 in another: int64; int64 and double: double; structs
    merged), or a kept Parquet column declared int32 in one file and int64 in another (int64). The id and
    result columns are of one type in every part already."""
    if not parts:
        return schema
    try:
        unified = pa.unify_schemas([schema, *parts], promote_options="permissive")
    except (pa.ArrowException, ValueError) as exc:
        raise OutputError(f"cannot write {output}: a kept column holds values of different types in different rows "
                          f"({str(exc).splitlines()[0]}); write JSONL instead, or keep other columns") from exc
    return pa.schema([unified.field(f.name) for f in schema], metadata=schema.metadata)


def conformed(table: pa.Table, schema: pa.Schema, output: str = "") -> pa.Table:
    """`table` cast to `schema`; a struct lacking some of the schema's fields gets them as nulls."""
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError):
        pass
    try:
        return pa.concat_tables([schema.empty_table(), table.select(schema.names)],
                                promote_options="permissive").cast(schema)
    except (pa.ArrowException, ValueError) as exc:
        raise OutputError(f"cannot write {output}: a kept column's values do not fit the type of its other rows "
                          f"({str(exc).splitlines()[0]}); write JSONL instead, or keep other columns") from exc


class UploadWriter:
    """For a remote output: parts and the joined file in a local temporary folder, uploaded at commit.

    The URI receives the file only once the run completed (see `storage.upload`).
    """

    def __init__(self, output: str, state: dict):
        self.output = output
        self.staging = Path(tempfile.mkdtemp(prefix="fasttag-upload-"))
        name = storage.without_query(output).rstrip("/").rsplit("/", 1)[-1]
        self.local = PartsWriter(str(self.staging / name), state)

    def write(self, index: int, table: pa.Table, digest: str | None = None) -> None:
        self.local.write(index, table)

    def commit(self, schema: pa.Schema) -> None:
        try:
            self.local.commit(schema)
            storage.upload(self.local.output, self.output)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def saved_state(output: str) -> dict | None:
    """The job state an interrupted run of `output` left (None if it left no parts folder)."""
    d = work_dir(output)
    if not d.exists():
        return None
    try:
        saved = json.loads((d / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        saved = None
    if not isinstance(saved, dict):
        raise UsageError(f"{d} is not a resumable fasttag run; remove it or pass --overwrite")
    return saved


def resumable_parts(output: str) -> tuple[list[str], list[str]]:
    """The input digests of the whole parts an interrupted run left, one per part from part 0, and what was wrong
    with the first part found torn (cut short or corrupted, as a power cut can leave one), if any.

    A part is trusted only when its record (written after it) exists and the part has the size, checksum
    and rows recorded, and reads. Unfinished files, a torn part and the parts after it or after a gap are
    removed: they are redone.
    """
    d = work_dir(output)
    if not d.exists():
        return [], []
    for tmp in d.glob("*.tmp"):
        tmp.unlink()
    suffix = ".parquet" if output_format(output) == "parquet" else ".jsonl"
    parts = sorted(d.glob(f"part-*{suffix}"), key=_part_index)
    digests: list[str] = []
    torn: list[str] = []
    for part in parts:
        digest_file = _digest_path(d, len(digests))
        if _part_index(part) != len(digests) or not digest_file.exists():
            break
        try:
            record = json.loads(digest_file.read_text())
        except (OSError, ValueError):
            record = None
        why = torn_reason(part, record) if isinstance(record, dict) else "its record is unreadable"
        if why is not None or not isinstance(record, dict):
            torn.append(f"{part.name}: {why}")
            break
        digests.append(str(record["input_digest"]))
    for part in parts[len(digests):]:
        part.unlink()
    for digest_file in d.glob("digest-*"):
        if _part_index(digest_file) >= len(digests):
            digest_file.unlink()
    return digests, torn
