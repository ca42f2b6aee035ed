"""Stream a corpus (Parquet file or folder, JSONL/NDJSON, optionally gzipped, or stdin) in bounded chunks."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fasttag import storage
from fasttag.errors import InputError, UsageError, first_line
from fasttag.formats import (
    JsonlLines,
    close_lines,
    column_texts,
    corpus_format,
    is_text_type,
    open_lines,
    parquet_files,
)
from fasttag.options import ON_ERROR, OnError

__all__ = ["CorpusReader", "RawChunk", "ReadStats", "Rejected", "chunk_digest", "corpus_format", "id_array",
           "is_token_list_type", "token_list_error", "token_lists"]


@dataclass
class RawChunk:
    """Consecutive input rows: their ids (or None for row numbers) and texts (None where unusable).

    With a tokens column, `texts` holds each row's token list (None for a null) instead.
    """

    first_row: int
    texts: list[Any]
    ids: pa.Array | None = None
    digest: str | None = None  # of the rows as read (see chunk_digest), when the reader was asked for digests
    kept: pa.Table | None = None  # the kept columns (--keep-columns), row for row; None when none are kept


RAW_KEPT = 1000  # characters of an oversized row's line (or text) that its reject record keeps


@dataclass
class Rejected:
    """A JSONL line (or a Parquet row of bad tokens) that could not be read, kept verbatim so nothing is lost.

    `raw` is the line as text; a line that is not valid UTF-8 also keeps its exact bytes in `raw_base64`
    (its text has U+FFFD where the invalid bytes were). A Parquet row has `row` (its 0-based input row
    number) instead of `line`, and its value as JSON in `raw`.
    """

    line: int | None
    error: str
    raw: str
    raw_base64: str | None = None
    row: int | None = None
    raw_bytes: int | None = None  # an oversized row: `raw` holds only its start; this is its full size


@dataclass
class ReadStats:
    rows: int = 0
    null_texts: int = 0
    invalid_utf8: int = 0  # Parquet texts whose invalid UTF-8 bytes were read as U+FFFD
    byte_order_marks: int = 0  # UTF-8 BOMs skipped at the start of JSONL lines (one per file joined by cat)
    rejected: list[Rejected] = field(default_factory=list)


class CorpusReader:
    """Iterates RawChunks of at most `chunk_rows` rows; memory stays bounded whatever the corpus size."""

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        id_column: str | None = None,
        chunk_rows: int = 2048,
        limit: int | None = None,
        on_error: OnError = "stop",
        skip_rows: int = 0,
        digests: bool = False,
        on_skipped: Callable[[int, str | None], None] | None = None,
        tokens_column: str | None = None,
        keep_columns: tuple[str, ...] | str = (),
        check_kept: Callable[[list[str]], None] | None = None,
        max_text_bytes: int | None = None,
    ):
        """`skip_rows` (whole chunks) are read but not yielded; `on_skipped(first_row, digest)` sees each of
        them. With `digests`, every chunk carries the `chunk_digest` of its rows, skipped ones included.

        With `tokens_column`, that column (a list of strings per row) is read instead of the text column;
        a row whose value is not a list of strings, is empty, or holds an empty or whitespace token is
        bad: with `on_error="stop"` an `InputError` naming its line (JSONL) or row (Parquet), else it is
        skipped and recorded in `stats.rejected`.

        `keep_columns` (names, or ``"all"``: every column but the text (tokens) and id columns; for JSONL the
        first line's fields) are read too, into each chunk's `kept`; `check_kept(names)` sees the names once
        they are known (before the first chunk). A named column a Parquet file lacks is an `InputError`; a
        JSONL line without a field has null there (the first line must have it).

        A text longer than `max_text_bytes` (UTF-8; None or 0: no limit) is a bad row in the same way: its
        tokens, windows and scores would take memory in proportion to it.
        """
        if on_error not in ON_ERROR:
            raise UsageError(f"--on-error must be one of {', '.join(ON_ERROR)}")
        self.path = path
        if storage.is_remote(path):
            remote = storage.resolve(path)
            if not remote.exists():
                why = remote.missing_container()
                raise InputError(f"input {path} does not exist" + (f" ({why})" if why else ""))
        self.format = corpus_format(path)
        self.text_column = text_column
        self.tokens_column = tokens_column
        self.column = tokens_column or text_column  # the column read
        self.id_column = id_column
        self.chunk_rows = chunk_rows
        self.limit = limit
        self.on_error = on_error
        self.skip_rows = skip_rows
        self.digests = digests
        self.on_skipped = on_skipped
        self.keep_columns = keep_columns
        self.check_kept = check_kept
        self.kept_names: list[str] | None = None if keep_columns == "all" else list(keep_columns)
        self.kept_fields: list[pa.Field] = []  # their types as the first Parquet file declares them (JSONL: null)
        self._kept_checked = False
        self.max_text_bytes = max_text_bytes or None
        self.stats = ReadStats()
        self.id_type: pa.DataType | None = None  # fixed by the first non-null ids; later ones are cast to it
        self._accepted = 0  # rows parsed so far, so that --limit stops reading at once
        self._id_kind: str | None = None  # JSON kind of the first non-null id (str, int, float, bool, nested)
        self._parquet_rows = 0  # rows of the Parquet file being read, kept or rejected (a rejected row's number)
        if path != "-" and not storage.is_remote(path) and not Path(path).exists():
            raise InputError(f"input {path} does not exist")

    def __iter__(self) -> Iterator[RawChunk]:
        """Chunks of exactly `chunk_rows` rows (the last may be shorter), whatever the files' batching.

        Fixed chunk boundaries make a resumed run batch its rows exactly as the first run did.
        """
        if self.skip_rows % self.chunk_rows:
            raise ValueError("skip_rows must be a multiple of chunk_rows")
        texts: list = []
        ids: list[pa.Array] = []
        kept: list[pa.Table] = []
        n_buf = 0
        row = 0
        for piece_texts, piece_ids, piece_kept in self._pieces():  # pieces stop at --limit rows (see _room)
            self.stats.rows += len(piece_texts)
            if self.tokens_column:
                self.stats.null_texts += sum(1 for t in piece_texts if t is None)
            else:
                self.stats.null_texts += sum(1 for t in piece_texts if not isinstance(t, str))
            texts.extend(piece_texts)
            if piece_ids is not None:
                ids.append(piece_ids)
            if piece_kept is not None:
                kept.append(piece_kept)
            n_buf += len(piece_texts)
            while n_buf >= self.chunk_rows:
                chunk = self._take(texts, ids, self.chunk_rows, row, kept)
                texts, ids, kept = texts[self.chunk_rows :], _rest(ids, self.chunk_rows), _rest(kept, self.chunk_rows)
                n_buf -= self.chunk_rows
                row += self.chunk_rows
                if chunk is not None:
                    yield chunk
        if n_buf:
            chunk = self._take(texts, ids, n_buf, row, kept)
            if chunk is not None:
                yield chunk

    def _take(self, texts: list, ids: list[pa.Array], n: int, first_row: int, kept: list[pa.Table] | None = None
              ) -> RawChunk | None:
        digest = chunk_digest(texts[:n], ids, n) if self.digests else None
        if first_row < self.skip_rows:  # done by the interrupted run being resumed
            if self.on_skipped is not None:
                self.on_skipped(first_row, digest)
            for a in ids:  # the run's id type comes from its first ids, and later ones are checked against it
                self._cast_ids(a, first_row, n)
            return None
        ids_n = pa.concat_arrays([self._cast_ids(a, first_row, n) for a in ids])[:n] if ids else None
        return RawChunk(first_row, texts[:n], ids_n, digest, self._kept_rows(kept or [], n, first_row))

    def _kept_rows(self, pieces: list[pa.Table], n: int, first_row: int) -> pa.Table | None:
        """The first `n` rows of the kept columns' pieces, as one table (types promoted where pieces differ)."""
        if not self.kept_names:
            return None
        try:
            return pa.concat_tables(pieces, promote_options="permissive").slice(0, n).combine_chunks()
        except (pa.ArrowException, ValueError) as exc:
            raise InputError(f"{self.path}: a kept column changes type in rows {first_row:,}-"
                             f"{first_row + n - 1:,} ({first_line(exc)})") from exc

    def _resolve_kept(self, names: list[str]) -> list[str]:
        """The kept columns, once the first file (or line) shows the input's `names`; checked by `check_kept`."""
        if self.kept_names is None:
            self.kept_names = [n for n in names if n not in (self.column, self.id_column)]
        if not self._kept_checked:
            self._kept_checked = True
            if self.check_kept is not None:
                self.check_kept(self.kept_names)
        return self.kept_names

    def _cast_ids(self, ids: pa.Array, first_row: int, rows: int) -> pa.Array:
        """One id type for the whole run: the first non-null type seen. Later ids are cast to it only where no
        id changes: nulls, integers of another width, floats that are whole numbers, text or bytes of another
        layout; an id that would change (a string parsed as a number, an object's field dropped) stops the run."""
        if self.id_type is None and not pa.types.is_null(ids.type):
            self.id_type = ids.type
        if self.id_type is None or ids.type == self.id_type:
            return ids
        why = None
        if not pa.types.is_null(ids.type) and _id_kind(ids.type) != _id_kind(self.id_type):
            why = "ids must keep their kind"
        else:
            try:
                cast = ids.cast(self.id_type)
            except (pa.ArrowException, ValueError) as exc:
                why = first_line(exc)
            else:
                try:
                    same = pa.types.is_null(ids.type) or cast.cast(ids.type).equals(ids)
                except (pa.ArrowException, ValueError):
                    same = False
                if same:
                    return cast
                why = "some ids would change"
        raise InputError(
            f"{self.path}: id column {self.id_column!r} changes type from {self.id_type} to {ids.type} "
            f"in rows {first_row:,}-{first_row + rows - 1:,} ({why}); give every row an id of one type "
            "(objects with the same fields), or ids as strings"
        )

    def _json_ids(self, values: list) -> pa.Array:
        """JSON ids as one Arrow type for the whole run, that of the first non-null id, whatever the chunking.

        Scalar ids must all be of the first id's JSON kind (an integer may follow a float); nested ids
        (objects, arrays) are inferred per chunk and cast to the first type.
        """
        if self._id_kind is None:
            first = next((v for v in values if v is not None), None)
            if first is None:
                return pa.nulls(len(values))
            self._id_kind = _json_kind(first)
        if self._id_kind == "nested":
            ids = id_array(values, self.id_column)
            # Arrow gives the objects of a chunk one struct type: an object lacking a field another has gets it
            # as null ({"a": 1} read as {"a": 1, "b": None}), an id changed. Refused, as between chunks.
            changed = next((i for i, (v, back) in enumerate(zip(values, ids.to_pylist(), strict=True))
                            if v != back), None)
            if changed is not None:
                raise InputError(
                    f"{self.path}: id field {self.id_column!r} holds {values[changed]!r}, which Arrow can only store "
                    f"as {ids[changed].as_py()!r} beside the other ids of its chunk (some ids would change); give "
                    "every row an id of one type (objects with the same fields), or ids as strings"
                )
            return ids
        for v in values:
            kind = None if v is None else _json_kind(v)
            if kind is not None and kind != self._id_kind and not (self._id_kind == "float" and kind == "int"):
                raise InputError(
                    f"{self.path}: id field {self.id_column!r} holds {v!r} ({_json_kind(v)}) after ids of kind "
                    f"{self._id_kind}; all ids must be of the first id's kind"
                )
        return id_array(values if self._id_kind != "float" else [None if v is None else float(v) for v in values],
                        self.id_column)

    def _room(self) -> int | None:
        return None if self.limit is None else self.limit - self._accepted

    def _pieces(self) -> Iterator[tuple[list, pa.Array | None, pa.Table | None]]:
        return self._parquet() if self.format == "parquet" else self._jsonl()

    # -- Parquet --------------------------------------------------------------------------------
    def _parquet(self) -> Iterator[tuple[list, pa.Array | None, pa.Table | None]]:
        for f in parquet_files(self.path):
            try:
                pf = pq.ParquetFile(storage.open_input_file(str(f)) if storage.is_remote(f) else f)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{f}: not a readable Parquet file ({exc})") from exc
            names = pf.schema_arrow.names
            what = "tokens" if self.tokens_column else "text"
            for col in (self.column, self.id_column):
                if col and col not in names:
                    raise InputError(f"{f}: no {what if col == self.column else 'id'} column {col!r}; columns found: "
                                     f"{', '.join(names)}")
            ttype = pf.schema_arrow.field(self.column).type
            if self.tokens_column and not is_token_list_type(ttype):
                raise InputError(f"{f}: tokens column {self.column!r} has type {ttype}, expected a list of strings")
            if not self.tokens_column and not is_text_type(ttype):
                raise InputError(f"{f}: text column {self.text_column!r} has type {ttype}, expected string")
            kept = self._resolve_kept(names)
            missing = [c for c in kept if c not in names]
            if missing:
                raise InputError(f"{f}: no column {missing[0]!r} to keep (--keep-columns); columns found: "
                                 f"{', '.join(names)}")
            if not self.kept_fields and kept:
                self.kept_fields = [pf.schema_arrow.field(c) for c in kept]
            with_id = self.id_column and self.id_column != self.column
            columns = [self.column] + ([self.id_column] if with_id else [])
            columns += [c for c in kept if c not in columns]
            if self.id_column and self.id_type is None:
                declared = pf.schema_arrow.field(self.id_column).type
                self.id_type = None if pa.types.is_null(declared) else declared  # all-null: the next file decides
            self._parquet_rows = 0  # a bad row is named by its file and its row in that file
            try:
                for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=columns):
                    room = self._room()
                    if room is not None and room <= 0:
                        return
                    if room is not None and batch.num_rows > room:
                        batch = batch.slice(0, room)
                    ids = batch.column(self.id_column) if self.id_column else None
                    kept_rows = pa.Table.from_batches([batch.select(kept)]) if kept else None
                    if self.tokens_column:
                        values, keep = self._parquet_tokens(batch.column(self.column), str(f))
                        if keep is not None:
                            ids = ids.filter(pa.array(keep)) if ids is not None else None
                            kept_rows = kept_rows.filter(pa.array(keep)) if kept_rows is not None else None
                    else:
                        values = _texts(batch.column(self.text_column), self.stats)
                        if self.max_text_bytes:
                            values, keep = self._parquet_sizes(values, str(f))
                            if keep is not None:
                                ids = ids.filter(pa.array(keep)) if ids is not None else None
                                kept_rows = kept_rows.filter(pa.array(keep)) if kept_rows is not None else None
                    self._parquet_rows += batch.num_rows
                    self._accepted += len(values)
                    yield values, ids, kept_rows
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{f}: corrupt or truncated Parquet data ({exc})") from exc

    def _parquet_tokens(self, column: pa.Array, where: str) -> tuple[list, list[bool] | None]:
        """A batch's token lists, bad rows rejected (see __init__); `keep` marks the rows kept (None: all)."""
        try:
            values = column.to_pylist()
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}: tokens column {self.column!r} holds invalid UTF-8 ({exc.reason})") from exc

        def why_of(value: Any) -> str | None:
            why = None if value is None else token_list_error(value)
            return None if why is None else f"tokens column {self.column!r}: {why}"

        return self._parquet_rejects(
            values, where, why_of, "use --on-error skip to skip and record such rows",
            lambda value, why, row: Rejected(None, why, json.dumps(value, ensure_ascii=False, default=str), row=row))

    def oversized(self, text: Any) -> str | None:
        """Why a text is over --max-text-bytes (None when it is not, or is no text)."""
        limit = self.max_text_bytes
        if not limit or not isinstance(text, str) or len(text) * 4 <= limit:  # UTF-8: at most 4 bytes a character
            return None
        size = utf8_size(text)
        if size <= limit:
            return None
        return f"text of {size:,} bytes is longer than --max-text-bytes {limit:,}"

    def _parquet_sizes(self, values: list, where: str) -> tuple[list, list[bool] | None]:
        """A batch's texts less those over --max-text-bytes (rejected, see __init__); `keep` as _parquet_tokens."""
        return self._parquet_rejects(
            values, where, self.oversized, "raise the limit, or use --on-error skip to skip and record such rows",
            lambda text, why, row: Rejected(None, why, json.dumps(text[:RAW_KEPT], ensure_ascii=False), row=row,
                                            raw_bytes=utf8_size(text)))

    def _parquet_rejects(self, values: list, where: str, why_of: Callable[[Any], str | None], hint: str,
                         rejected: Callable[[Any, str, int], Rejected]) -> tuple[list, list[bool] | None]:
        """`values` less the rows `why_of` finds bad: with --on-error stop the first is an error (`hint` says what
        to do), else each is recorded as `rejected(value, why, row)` makes it; `keep` marks the rows kept (None:
        all)."""
        keep: list[bool] | None = None
        for i, value in enumerate(values):
            why = why_of(value)
            if why is None:
                continue
            row = self._parquet_rows + i
            if self.on_error == "stop":
                raise InputError(f"{where}, row {row:,}: {why} ({hint})")
            self.stats.rejected.append(rejected(value, f"{where}: {why}", row))
            keep = keep or [True] * len(values)
            keep[i] = False
        if keep is not None:
            values = [v for v, k in zip(values, keep, strict=True) if k]
        return values, keep

    # -- JSONL ----------------------------------------------------------------------------------
    def _reject(self, lineno: int, raw: bytes, error: str, oversized: bool = False) -> None:
        where = "stdin" if self.path == "-" else self.path
        if self.on_error == "stop":
            fix = "raise the limit, or use --on-error skip" if oversized else "use --on-error skip"
            raise InputError(f"{where}, line {lineno}: {error} ({fix} to skip and record such lines)")
        if oversized:  # the record keeps the line's start and its size, not a copy of the whole of it
            end = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
            self.stats.rejected.append(Rejected(lineno, error, raw[:min(RAW_KEPT, end)].decode("utf-8", "ignore"),
                                                raw_bytes=end))
            return
        raw = raw.rstrip(b"\r\n")
        try:
            self.stats.rejected.append(Rejected(lineno, error, raw.decode("utf-8")))
        except UnicodeDecodeError:
            self.stats.rejected.append(Rejected(lineno, error, raw.decode("utf-8", "replace"),
                                                base64.b64encode(raw).decode("ascii")))

    def _jsonl(self) -> Iterator[tuple[list, pa.Array | None, pa.Table | None]]:
        room = self._room()
        if room is not None and room <= 0:  # --limit 0
            return
        texts: list = []
        ids: list = []
        kept: list[list] = []  # per kept field, its values
        fh = open_lines(self.path)
        lines = JsonlLines(fh, self.path)
        boms = self.stats.byte_order_marks
        try:
            for line in lines:
                self.stats.byte_order_marks = boms + lines.byte_order_marks
                if line.error is not None:
                    self._reject(line.lineno, line.raw, line.error)
                    continue
                lineno, raw, obj = line.lineno, line.raw, line.value
                if not isinstance(obj, dict):
                    self._reject(lineno, raw, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                what = "tokens" if self.tokens_column else "text"
                if self.column not in obj and self._accepted:
                    # the field exists elsewhere in the file: this one line is bad, like a malformed one
                    found = ", ".join(list(obj)[:20]) or "none"
                    self._reject(lineno, raw, f"no {what} field {self.column!r} (fields: {found})")
                    continue
                if self.column not in obj:
                    found = ", ".join(list(obj)[:20]) or "none"
                    raise InputError(
                        f"{self.path}, line {lineno}: no {what} field {self.column!r}; fields found: {found} "
                        f"(choose one with --{what}-column)"
                    )
                value = obj[self.column]
                if not self.tokens_column and (why := self.oversized(value)):
                    self._reject(lineno, raw, why, oversized=True)
                    continue
                if self.tokens_column and value is not None and (why := token_list_error(value)):
                    self._reject(lineno, raw, f"tokens field {self.column!r}: {why}")
                    continue
                if self.id_column and self.id_column not in obj and self._accepted == 0:
                    found = ", ".join(list(obj)[:20]) or "none"
                    raise InputError(
                        f"{self.path}, line {lineno}: no id field {self.id_column!r}; fields found: {found}"
                    )
                if self.keep_columns and self._accepted == 0:
                    names = self._resolve_kept(list(obj))
                    absent = [n for n in names if n not in obj]
                    if absent:
                        raise InputError(f"{self.path}, line {lineno}: no field {absent[0]!r} to keep "
                                         f"(--keep-columns); fields found: {', '.join(list(obj)[:20]) or 'none'}")
                    kept = [[] for _ in names]
                texts.append(value)
                if self.id_column:
                    ids.append(obj.get(self.id_column))
                for values, name in zip(kept, self.kept_names or (), strict=True):
                    values.append(obj.get(name))
                self._accepted += 1
                if self.limit is not None and self._accepted >= self.limit:
                    break
                if len(texts) >= self.chunk_rows:
                    yield texts, self._json_ids(ids) if self.id_column else None, self._json_kept(kept)
                    texts, ids, kept = [], [], [[] for _ in kept]
            if texts:
                yield texts, self._json_ids(ids) if self.id_column else None, self._json_kept(kept)
        finally:
            self.stats.byte_order_marks = boms + lines.byte_order_marks
            close_lines(fh)


    def _json_kept(self, kept: list[list]) -> pa.Table | None:
        """The kept fields' values as Arrow columns (types inferred as `pa.array` infers them)."""
        if not self.kept_names:
            return None
        return pa.table(kept_json_columns(str(self.path), self.kept_names, kept))


def kept_json_columns(where: str, names: Sequence[str], values: Sequence[list]) -> dict[str, pa.Array]:
    """JSON fields kept by --keep-columns as Arrow arrays (types inferred as `pa.array` infers them); a field whose
    values Arrow cannot hold in one type is an InputError naming `where` and the field."""
    columns = {}
    for name, column in zip(names, values, strict=True):
        try:
            columns[name] = pa.array(column)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise InputError(f"{where}: field {name!r} (--keep-columns) mixes value types or holds values Arrow "
                             f"cannot store ({first_line(exc)})") from exc
    return columns


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8, counted a megabyte at a time (a huge text is not copied whole)."""
    step = 1 << 20
    return sum(len(text[i:i + step].encode("utf-8", "surrogatepass")) for i in range(0, len(text), step))


def chunk_digest(texts: list, ids: list[pa.Array], n: int) -> str:
    """A digest of a chunk's texts and its first `n` ids (pieces as read), so that --resume can tell rows changed."""
    h = hashlib.blake2b(digest_size=16)
    for t in texts:
        data = t.encode("utf-8", "surrogatepass") if isinstance(t, str) else repr(t).encode("utf-8", "backslashreplace")
        h.update(b"s" if isinstance(t, str) else b"o")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    values: list = []
    for a in ids:
        values.extend(a[: n - len(values)].to_pylist())
        if len(values) >= n:
            break
    h.update(repr(values).encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def _rest(ids: list, n: int) -> list:
    """The id arrays (or kept tables) after dropping their first n values."""
    out, drop = [], n
    for a in ids:
        if drop >= len(a):
            drop -= len(a)
            continue
        out.append(a[drop:])
        drop = 0
    return out


def _texts(column: pa.Array, stats: ReadStats) -> list:
    """Python strings of a text column; invalid UTF-8 (from non-Arrow writers) becomes U+FFFD, counted."""
    texts, invalid = column_texts(column)
    stats.invalid_utf8 += invalid
    return texts


def token_list_error(value: Any) -> str | None:
    """Why `value` cannot be a row's tokens (None when it can): not a list of strings, empty, or holding an
    empty or whitespace token (the tokenizer would drop it, leaving the token without a tag)."""
    if not isinstance(value, list):
        return f"expected a list of strings, got {_kind_name(value)}"
    if not value:
        return "the token list is empty"
    if all(type(t) is str and t and not t.isspace() for t in value):
        return None
    for i, t in enumerate(value):
        if not isinstance(t, str):
            return f"token {i} is not a string ({_kind_name(t)}: {t!r:.40})"
        if not t or t.isspace():
            return f"token {i} is {'an empty string' if not t else 'whitespace'} ({t!r})"
    return None


def _kind_name(value: Any) -> str:
    return {dict: "an object", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), type(value).__name__)


def is_token_list_type(t: pa.DataType) -> bool:
    """A list (large, view or fixed-size too) of strings (any text type `is_text_type` takes)."""
    lists = (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
             or pa.types.is_list_view(t) or pa.types.is_large_list_view(t))
    return lists and is_text_type(t.value_type)


def token_lists(column: pa.Array | pa.ChunkedArray, name: str, where: str = "") -> list[list[str] | None]:
    """The token lists of a tokens column (None for nulls); a bad row is an `InputError` naming it."""
    if not is_token_list_type(column.type):
        raise InputError(f"{where}tokens column {name!r} has type {column.type}, expected a list of strings")
    values = column.to_pylist()
    for i, value in enumerate(values):
        if value is not None and (why := token_list_error(value)):
            raise InputError(f"{where}tokens column {name!r}, row {i:,}: {why}")
    return values


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, str)):
        return type(value).__name__
    return "nested"


def _id_kind(t: pa.DataType) -> str:
    """What an id of type `t` is, whatever its layout: a cast between two kinds would change ids' values."""
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t) or \
            pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or \
            pa.types.is_large_list_view(t) or pa.types.is_fixed_size_list(t):
        return "list"
    if pa.types.is_dictionary(t):
        return _id_kind(t.value_type)
    return str(t.id)  # anything else (bool, dates, decimals, lists, structs): its own kind; the round trip decides


def id_array(values: list, name: str | None) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"id column {name!r} mixes value types or holds values Arrow cannot store ({exc})") from exc

