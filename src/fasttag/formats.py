"""File formats, in one place: suffixes, format detection, Parquet folder listing, text columns, JSONL lines.

Every reader and writer asks this module: the corpus reader (`fasttag.read`), the writers
(`fasttag.write`), the Ray engine, `fasttag show` (corpus and entities) and the labelled-data
loaders (`fasttag.labelled`), so that a format rule changed here changes for all of them.
"""

from __future__ import annotations

import codecs
import gzip
import json
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa

from fasttag import storage
from fasttag.errors import InputError, UsageError

# -- suffixes and detection -----------------------------------------------------------------------
PARQUET_SUFFIX = ".parquet"
JSONL_PLAIN_SUFFIXES = (".jsonl", ".ndjson")
JSONL_SUFFIXES = JSONL_PLAIN_SUFFIXES + tuple(s + ".gz" for s in JSONL_PLAIN_SUFFIXES)
CONLL_SUFFIXES = (".txt", ".conll", ".iob", ".bio", ".tsv")  # labelled data only
# Names of files, not of a folder (--engine ray writes OUTPUT as a folder: "out.jsonl" would mislead).
FILE_SUFFIXES = (PARQUET_SUFFIX, ".json", ".gz") + JSONL_SUFFIXES

CorpusFormat = Literal["parquet", "jsonl"]
LabelledFormat = Literal["conll", "jsonl", "parquet"]


def suffix_format(path: str) -> CorpusFormat | None:
    """The format a path's name says (`.parquet`, `.jsonl`/`.ndjson` optionally `.gz`), or None."""
    name = storage.without_query(path).lower()
    if name.endswith(PARQUET_SUFFIX):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return None


def corpus_format(path: str) -> CorpusFormat:
    """The format of an input corpus: by suffix, '-' (stdin) is JSONL, a folder holds Parquet files."""
    if path == "-":
        return "jsonl"
    found = suffix_format(path)
    if found:
        return found
    if storage.is_remote(path) and storage.resolve(path).is_dir():
        return "parquet"
    if not storage.is_remote(path) and Path(path).is_dir():
        return "parquet"
    raise UsageError(f"cannot tell the format of {path}: use .parquet (or a folder of them), .jsonl, .ndjson, "
                     ".jsonl.gz, or -")


def output_format(path: str) -> CorpusFormat:
    """The format of an output file, by suffix; '-' (stdout) is JSONL."""
    if path == "-":
        return "jsonl"
    found = suffix_format(path)
    if found:
        return found
    raise UsageError(f"cannot tell the output format of {path}: use .parquet, .jsonl, .ndjson, .jsonl.gz, or -")


def labelled_format(name: str, format: str | None = None) -> LabelledFormat:
    """The format of a labelled data file: `format` if given, else by suffix (`.gz` allowed on text formats)."""
    if format is not None:
        if format not in ("conll", "jsonl", "parquet"):
            raise UsageError(f"unknown format {format!r}: use conll, jsonl or parquet")
        return format  # type: ignore[return-value]
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    if lower.endswith(CONLL_SUFFIXES):
        return "conll"
    if lower.endswith(JSONL_PLAIN_SUFFIXES):
        return "jsonl"
    if lower.endswith(PARQUET_SUFFIX) and not name.lower().endswith(".gz"):
        return "parquet"
    raise InputError(
        f"{name}: cannot tell the format from the extension; use "
        f"{' '.join(CONLL_SUFFIXES)} (CoNLL columns), {' '.join(JSONL_PLAIN_SUFFIXES)} (JSON lines, "
        "optionally .gz) or .parquet"
    )


# -- Parquet folders --------------------------------------------------------------------------------
def is_hidden(relative_parts: Iterable[str]) -> bool:
    """Hidden and _-prefixed paths (_temporary/, .parts/, _SUCCESS) are not data, as for Spark and Ray."""
    return any(part.startswith((".", "_")) for part in relative_parts)


def parquet_files(path: str | Path) -> list[Path] | list[str]:
    """The Parquet files of a file or folder, in order: local Paths, or URIs for a remote input.

    A folder's files are found recursively and sorted by path, hidden ones (see `is_hidden`) left out;
    `.parquet` matches in any case, and any other file refuses the folder (its rows would be lost unsaid).
    """
    path = str(path)
    if storage.is_remote(path):
        if storage.without_query(path).lower().endswith(PARQUET_SUFFIX):
            return [path]
        files = _only_parquet(path, storage.list_files(path))
        if not files:
            raise InputError(f"folder {path} holds no .parquet files")
        return files
    p = Path(path)
    if p.is_dir():
        local = _only_parquet(path, sorted(f for f in p.rglob("*")
                                           if f.is_file() and not is_hidden(f.relative_to(p).parts)))
        if not local:
            raise InputError(f"folder {p} holds no .parquet files")
        return local
    return [p]


def _only_parquet(folder: str, files: list) -> list:
    """`files` (a folder's visible files), refused if any is not a Parquet file."""
    others = [f for f in files if not storage.without_query(str(f)).lower().endswith(PARQUET_SUFFIX)]
    if others:
        more = f" (and {len(others) - 1} other such files)" if len(others) > 1 else ""
        raise InputError(f"folder {folder} holds {others[0]}, which is not a .parquet file{more}: a Parquet folder "
                         "may hold only .parquet files; move it out, or prefix its name with _ to have it skipped")
    return files


# -- text columns -----------------------------------------------------------------------------------
def is_text_type(t: pa.DataType) -> bool:
    """string, large_string, string_view, or dictionary-encoded strings (what pandas' category writes)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def plain_text(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column as string or large_string: dictionary and string_view columns are cast to large_string."""
    if pa.types.is_dictionary(column.type) or pa.types.is_string_view(column.type):
        return column.cast(pa.large_string())
    return column


def column_texts(column: pa.Array | pa.ChunkedArray) -> tuple[list[str | None], int]:
    """Python strings of a text column (None for nulls) and how many held invalid UTF-8, read as U+FFFD.

    Arrow's own writers check UTF-8; other tools' Parquet files may not, and each such text is
    repaired byte for byte rather than failing the whole column.
    """
    column = plain_text(column)
    try:
        return column.to_pylist(), 0
    except UnicodeDecodeError:
        out: list[str | None] = []
        invalid = 0
        for b in column.cast(pa.binary()).to_pylist():
            if b is None:
                out.append(None)
                continue
            try:
                out.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(b.decode("utf-8", "replace"))
                invalid += 1
        return out, invalid


def texts_from_column(column: pa.ChunkedArray | pa.Array, name: str, where: str = "") -> tuple[list, int]:
    """Python strings of a string column (None for nulls) and the number of nulls."""
    if not is_text_type(column.type):
        raise InputError(f"{where}text column {name!r} has type {column.type}, expected a string column")
    texts, _ = column_texts(column)
    return texts, column.null_count


# -- JSONL ------------------------------------------------------------------------------------------
def open_lines(path: str) -> IO[bytes]:
    """A binary stream of a line-based file (JSONL, CoNLL): '-' is stdin (gzipped or not, by its magic
    bytes), a remote URI or a local file, decompressed when its name ends in .gz."""
    if path == "-":
        stdin = sys.stdin.buffer
        peek = getattr(stdin, "peek", None)
        if peek is not None and peek(2)[:2] == b"\x1f\x8b":  # zcat-less pipes
            return gzip.GzipFile(fileobj=stdin, mode="rb")  # type: ignore[return-value]
        return stdin
    gzipped = storage.without_query(path).lower().endswith(".gz")
    if storage.is_remote(path):
        stream = storage.open_input_stream(path)
        return gzip.GzipFile(fileobj=stream, mode="rb") if gzipped else stream  # type: ignore[return-value]
    return gzip.open(path, "rb") if gzipped else open(path, "rb")  # type: ignore[return-value]


def close_lines(fh: IO[bytes]) -> None:
    """Close what `open_lines` opened (never stdin itself)."""
    if fh is not sys.stdin.buffer:
        fh.close()


def numbered_lines(fh: Iterable[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) of a stream; a read or decompression error is one InputError."""
    try:
        yield from enumerate(fh, start=1)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{where}: cannot read ({exc})") from exc


@dataclass
class JsonLine:
    """One non-blank JSONL line: its number, its bytes (less a byte-order mark) and its value, or why not.

    `error` is None when `value` was parsed; otherwise it says why (``invalid UTF-8 (...)``,
    ``malformed JSON (...)``) and `exc` is the `UnicodeDecodeError` or `JSONDecodeError`.
    """

    lineno: int
    raw: bytes
    value: Any = None
    error: str | None = None
    exc: ValueError | None = None
    bom: bool = False  # a UTF-8 byte-order mark was skipped at the start of the line


def parse_jsonl_line(raw: bytes | str, lineno: int = 0) -> JsonLine | None:
    """Parse one line (bytes, or text already decoded); None for a blank line.

    A UTF-8 byte-order mark at the start of any line is skipped (written by some Windows tools; one
    per file joined by cat).
    """
    if isinstance(raw, str):
        bom = raw.startswith("\ufeff")
        text = raw[1:] if bom else raw
        if not text.strip():
            return None
        data = text.encode("utf-8", "surrogatepass")
    else:
        bom = raw.startswith(codecs.BOM_UTF8)
        data = raw[len(codecs.BOM_UTF8):] if bom else raw
        if not data.strip():
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return JsonLine(lineno, data, error=f"invalid UTF-8 ({exc.reason} at byte {exc.start})", exc=exc,
                            bom=bom)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonLine(lineno, data, error=f"malformed JSON ({json_error(exc)})", exc=exc, bom=bom)
    return JsonLine(lineno, data, value, bom=bom)


class JsonlLines:
    """The parsed non-blank lines of a JSONL stream, numbered from 1 (see `parse_jsonl_line`).

    `byte_order_marks` counts the UTF-8 byte-order marks skipped so far (blank lines' included).
    """

    def __init__(self, fh: Iterable[bytes], where: str):
        self.fh = fh
        self.where = where
        self.byte_order_marks = 0

    def __iter__(self) -> Iterator[JsonLine]:
        for lineno, raw in numbered_lines(self.fh, self.where):
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
                self.byte_order_marks += 1
            line = parse_jsonl_line(raw, lineno)
            if line is not None:
                yield line


def json_error(exc: json.JSONDecodeError) -> str:
    """'Expecting value at column 3'; json's own message may end with 'at' ('Unterminated string starting at')."""
    return f"{exc.msg}{'' if exc.msg.endswith(' at') else ' at'} column {exc.colno}"
