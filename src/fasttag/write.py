"""Write tagged rows to Parquet or JSONL; a file appears at the output path only once the run completed."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from fasttag.errors import OutputError, UsageError
from fasttag.read import JSONL_SUFFIXES


def output_format(path: str) -> str:
    if path == "-":
        return "jsonl"
    name = path.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise UsageError(f"cannot tell the output format of {path}: use .parquet, .jsonl, .ndjson, .jsonl.gz, or -")


def partial_path(path: str) -> Path:
    """Where a run writes before the atomic rename (same folder, so the rename stays on one filesystem)."""
    p = Path(path)
    return p.with_name(f".{p.name}.partial")


class OutputWriter:
    """Writes Arrow tables of (id, entities) rows to a hidden partial file, renamed into place on `commit()`."""

    def __init__(self, path: str, schema: pa.Schema):
        self.path = path
        self.format = output_format(path)
        self.schema = schema
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._fh: IO | None = None
        if path == "-":
            self._tmp = None
            self._fh = sys.stdout
            return
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise OutputError(f"output folder {parent} does not exist")
        self._tmp = partial_path(path)
        try:
            if self.format == "parquet":
                self._parquet = pq.ParquetWriter(self._tmp, schema, compression="zstd")
            elif path.lower().endswith(".gz"):
                self._fh = gzip.open(self._tmp, "wt", encoding="utf-8")
            else:
                self._fh = open(self._tmp, "w", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {self._tmp}: {exc}") from None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.cast(self.schema) if table.schema != self.schema else table
        if self._parquet is not None:
            self._parquet.write_table(table)
        else:
            lines = [json.dumps(row, ensure_ascii=False) for row in table.to_pylist()]
            self._fh.write("\n".join(lines) + "\n")
        self.rows += table.num_rows

    def commit(self) -> None:
        """Finish the file and move it into place: only now does the output path hold a file."""
        if self._parquet is not None:
            if self.rows == 0:
                self._parquet.write_table(self.schema.empty_table())
            self._parquet.close()
        elif self._fh is not None:
            self._fh.flush()
            if self._fh is not sys.stdout:
                self._fh.close()
        if self._tmp is not None:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file; the output path is left untouched."""
        try:
            if self._parquet is not None:
                self._parquet.close()
            elif self._fh is not None and self._fh is not sys.stdout:
                self._fh.close()
        except Exception:
            pass
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
