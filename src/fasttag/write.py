"""Write tagged rows; a file appears at the output path only once the run completed.

Rows go first to numbered part files (one per input chunk) in a hidden work folder beside the
output, each renamed into place when complete. A killed run leaves whole parts behind, which
`--resume` keeps; at the end the parts are joined into a hidden partial file that is renamed onto
the output path, and the work folder is removed. A remote output (s3://, gs://, hdfs://) is
assembled the same way in a local temporary folder, then uploaded whole.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fasttag import storage
from fasttag.errors import OutputError, UsageError
from fasttag.read import JSONL_SUFFIXES

STATE_FILE = "state.json"


def output_format(path: str) -> str:
    if path == "-":
        return "jsonl"
    name = storage.without_query(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise UsageError(f"cannot tell the output format of {path}: use .parquet, .jsonl, .ndjson, .jsonl.gz, or -")


def work_dir(output: str) -> Path:
    p = Path(output)
    return p.with_name(f".{p.name}.fasttag-parts")


def partial_path(output: str) -> Path:
    p = Path(output)
    return p.with_name(f".{p.name}.partial")


def jsonl_lines(table: pa.Table) -> str:
    rows = table.to_pylist()
    for row in rows:
        for e in row.get("entities") or ():
            # scores are float32: write the shortest decimal that reads back as the same float32
            # (0.9977015, not the float64 expansion 0.9977015256881714)
            e["score"] = float(str(np.float32(e["score"])))
    # ids of types JSON lacks (dates, decimals, bytes) are written as their text
    return "".join(json.dumps(row, ensure_ascii=False, default=_json_text) + "\n" for row in rows)


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


def _durable_replace(tmp: Path, final: Path) -> None:
    """Rename after the data reached the disk, so that a part that exists is a whole part."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


class StdoutWriter:
    """JSONL rows straight to stdout (no parts, no resume)."""

    def __init__(self):
        self.rows = 0

    def write(self, index: int, table: pa.Table) -> None:
        sys.stdout.write(jsonl_lines(table))
        sys.stdout.flush()
        self.rows += table.num_rows

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
                raise OutputError(f"cannot write beside {output}: {exc}") from None
        self.suffix = ".parquet" if self.format == "parquet" else ".jsonl"

    def part(self, index: int) -> Path:
        return self.dir / f"part-{index:07d}{self.suffix}"

    def write(self, index: int, table: pa.Table) -> None:
        """Write one chunk's rows as part `index` (its id type may still be null; commit casts)."""
        final = self.part(index)
        tmp = final.with_name(final.name + ".tmp")
        try:
            if self.format == "parquet":
                pq.write_table(table, tmp, compression="zstd")
            else:
                tmp.write_text(jsonl_lines(table), encoding="utf-8")
            _durable_replace(tmp, final)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {exc}") from None

    def parts(self) -> list[Path]:
        return sorted(self.dir.glob(f"part-*{self.suffix}"), key=_part_index)

    def commit(self, schema: pa.Schema) -> None:
        """Join the parts, cast to the run's final `schema`, onto the output path."""
        tmp = partial_path(self.output)
        try:
            if self.format == "parquet":
                with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                    wrote = False
                    for part in self.parts():
                        table = pq.read_table(part)
                        if table.num_rows:
                            writer.write_table(table.cast(schema))
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
            raise OutputError(f"cannot write {self.output}: {exc}") from None
        shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self, keep_parts: bool = False) -> None:
        """Drop what was written (or only the unfinished files): the output path is left untouched."""
        if keep_parts:
            for tmp in self.dir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        partial_path(self.output).unlink(missing_ok=True)


class UploadWriter:
    """For a remote output: parts and the joined file in a local temporary folder, uploaded at commit.

    The URI receives the file only once the run completed (see `storage.upload`).
    """

    def __init__(self, output: str, state: dict):
        self.output = output
        self.staging = Path(tempfile.mkdtemp(prefix="fasttag-upload-"))
        name = storage.without_query(output).rstrip("/").rsplit("/", 1)[-1]
        self.local = PartsWriter(str(self.staging / name), state)

    def write(self, index: int, table: pa.Table) -> None:
        self.local.write(index, table)

    def commit(self, schema: pa.Schema) -> None:
        try:
            self.local.commit(schema)
            storage.upload(self.local.output, self.output)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def resumable_parts(output: str, state: dict) -> int:
    """How many complete parts an interrupted run of the same job left (0 if none)."""
    d = work_dir(output)
    if not d.exists():
        return 0
    try:
        saved = json.loads((d / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise UsageError(f"{d} is not a resumable fasttag run; remove it or pass --overwrite") from None
    differs = sorted(k for k in set(saved) | set(state) if saved.get(k) != state.get(k))
    if differs:
        raise UsageError(
            f"cannot resume: the interrupted run used other settings ({', '.join(differs)}); "
            "repeat its exact command with --resume, or pass --overwrite to start over"
        )
    for tmp in d.glob("*.tmp"):
        tmp.unlink()
    suffix = ".parquet" if output_format(output) == "parquet" else ".jsonl"
    parts = sorted(d.glob(f"part-*{suffix}"), key=_part_index)
    # Parts are renamed into place only when whole; they must also be consecutive from 0.
    n = 0
    for part in parts:
        if _part_index(part) != n:
            break
        n += 1
    for part in parts[n:]:
        part.unlink()
    return n
