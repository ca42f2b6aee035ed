"""Duplicates tagged once: identical texts within a bounded window of recent rows run through the model once.

A chunk's values are keyed by a 16-byte BLAKE2b digest of their text (or token list). Within the chunk,
each distinct value is tokenized and inferred once; a value seen in one of the chunks of the last
`max_rows` rows is not inferred at all: its results are copied from that chunk's.

Memory is bounded and does not grow with the corpus: the window keeps, for each of the recent chunks
whose distinct rows add up to at most `max_rows` (the current chunk is always kept), one digest and one
row of results per distinct value (the result arrays of that chunk's distinct rows). So it holds at
most `max_rows` + one chunk's distinct rows of results and digests; with the default 8,192 rows, a few
megabytes for sentences. It is on by default for every model (see `window_rows`).

The planning step (`plan`) and the merging step (`merge`) may run in different threads, as `fasttag
run` does (it plans chunk k+1 while chunk k runs through the model), as long as each runs in chunk
order: a plan holds the chunks it copies from, and a chunk's results are in place once `merge` of
that chunk returned, before `merge` of any later chunk starts.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

DEFAULT_WINDOW_ROWS = 8192
# the columns of a chunk saved for --resume (`DuplicateWindow.chunk_table`)
KEY_COLUMN, REPAIRED_COLUMN, RESULT_PREFIX = "key", "repaired", "result."


def window_rows(option: int | None, precision: str) -> int:
    """The window `--dedup-window` asks for; by default 8,192 rows, for every model.

    Float models give the same results whatever the batch, and so the same output with the window as
    without. An int8 model quantizes its activations with one scale per batch (dynamic quantization), so
    a row's scores, and at times its entities, depend on the rows batched with it: without the window two
    copies of a text can get different scores, and any change of batches (--batch-tokens, --streams, tuned
    settings) moves them. With the window every copy gets its first copy's results exactly.
    """
    del precision  # the same default for every precision; kept for callers that may want to differ
    return DEFAULT_WINDOW_ROWS if option is None else option


def value_key(value: Any, pretokenized: bool = False) -> bytes:
    """A value's digest: texts (a non-string counts as the empty text, as the tagger reads it) or token lists."""
    if pretokenized:
        data = b"L" + json.dumps(list(value) if value is not None else [], ensure_ascii=False).encode(
            "utf-8", "surrogatepass")
    else:
        data = b"T" + (value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b"")
    return hashlib.blake2b(data, digest_size=16).digest()


class _Chunk:
    """A chunk's distinct values: their digests and, once merged, their results (one row each, in that order)."""

    __slots__ = ("keys", "arrays", "repaired")

    def __init__(self, keys: list[bytes]):
        self.keys = keys
        self.arrays: dict[str, pa.Array] | None = None
        self.repaired: np.ndarray | None = None  # (distinct,) bool: the text had lone surrogates replaced


@dataclass
class Plan:
    """How a chunk's rows map to its distinct values, and where each distinct value's results come from."""

    chunk: _Chunk
    row_to_distinct: np.ndarray  # (rows,) each row's distinct value
    new: np.ndarray  # distinct values to tag now, in order
    new_values: list[Any]  # their values (what the tagger tokenizes)
    copied: list[tuple[_Chunk, np.ndarray, np.ndarray]] = field(default_factory=list)  # (chunk, distinct, rows)
    no_text_copies: int = 0  # rows of null or non-string text (null token lists) not tagged now: no text to tag

    @property
    def rows(self) -> int:
        return len(self.row_to_distinct)

    @property
    def duplicates(self) -> int:
        """Rows not tagged now: repeats inside the chunk and values copied from earlier chunks, but for rows
        without text (null, a number), which are no text tagged once (the summary counts them apart)."""
        return self.rows - len(self.new) - self.no_text_copies

    @property
    def trivial(self) -> bool:
        """Every row is tagged now, in order: the results need no rearranging."""
        return len(self.new) == self.rows


class Kept:
    """Which of the chunks added so far (by index and distinct rows) `DuplicateWindow` still holds: the same rule,
    for the chunks' saved copies (`fasttag run` deletes the copy of a chunk the window let go of)."""

    def __init__(self, max_rows: int):
        self.max_rows = int(max_rows)
        self._chunks: deque[tuple[int, int]] = deque()
        self._held = 0
        self._added = 0

    def __len__(self) -> int:
        """Chunks added so far."""
        return self._added

    def add(self, index: int, rows: int) -> list[int]:
        """Add chunk `index` of `rows` distinct rows; the indexes of the chunks let go of."""
        self._chunks.append((index, rows))
        self._held += rows
        self._added += 1
        gone = []
        while self._held > self.max_rows and len(self._chunks) > 1:
            old, n = self._chunks.popleft()
            self._held -= n
            gone.append(old)
        return gone


class DuplicateWindow:
    """The recent chunks' distinct values and results, at most `max_rows` distinct rows (plus the current chunk)."""

    def __init__(self, max_rows: int = DEFAULT_WINDOW_ROWS, pretokenized: bool = False):
        self.max_rows = int(max_rows)
        self.pretokenized = pretokenized
        self._index: dict[bytes, tuple[_Chunk, int]] = {}
        self._chunks: dict[int, _Chunk] = {}  # the kept chunks, by the order they came in
        self._kept = Kept(max_rows)

    def __len__(self) -> int:
        """Distinct values the window can copy from now."""
        return len(self._index)

    def plan(self, values: Sequence[Any]) -> Plan:
        keys = [value_key(v, self.pretokenized) for v in values]
        position: dict[bytes, int] = {}
        distinct: list[bytes] = []
        row_to_distinct = np.empty(len(keys), dtype=np.int64)
        firsts: list[int] = []
        for r, k in enumerate(keys):
            d = position.get(k)
            if d is None:
                d = position[k] = len(distinct)
                distinct.append(k)
                firsts.append(r)
            row_to_distinct[r] = d
        new: list[int] = []
        copied: dict[int, tuple[_Chunk, list[int], list[int]]] = {}
        for d, k in enumerate(distinct):
            hit = self._index.get(k)
            if hit is None:
                new.append(d)
            else:
                entry = copied.setdefault(id(hit[0]), (hit[0], [], []))
                entry[1].append(d)
                entry[2].append(hit[1])
        chunk = _Chunk(distinct)
        self._add(chunk)
        tagged_rows = {firsts[d] for d in new}
        no_text = sum(1 for r, v in enumerate(values)
                      if (v is None if self.pretokenized else not isinstance(v, str)) and r not in tagged_rows)
        return Plan(chunk, row_to_distinct, np.array(new, dtype=np.int64), [values[firsts[d]] for d in new],
                    [(c, np.array(ds, dtype=np.int64), np.array(rs, dtype=np.int64)) for c, ds, rs in copied.values()],
                    no_text)

    def _add(self, chunk: _Chunk) -> None:
        """Keep `chunk` as the newest, and let go of the oldest chunks past `max_rows` (`Kept`'s rule)."""
        for d, k in enumerate(chunk.keys):
            self._index[k] = (chunk, d)
        order = len(self._kept)
        self._chunks[order] = chunk
        for gone in self._kept.add(order, len(chunk.keys)):
            old = self._chunks.pop(gone)
            for d, k in enumerate(old.keys):
                if self._index.get(k) == (old, d):
                    del self._index[k]

    def seed(self, table: pa.Table) -> None:
        """Take a chunk saved by `chunk_table` as if it had just been planned and merged: how `fasttag run
        --resume` gives the chunks after the ones done earlier the window an uninterrupted run gave them (so the
        same rows are tagged now, in the same batches: an int8 model's scores depend on them)."""
        keys = table.column(KEY_COLUMN).to_pylist()
        chunk = _Chunk(keys)
        chunk.repaired = table.column(REPAIRED_COLUMN).to_numpy(zero_copy_only=False).astype(bool)
        chunk.arrays = {name[len(RESULT_PREFIX):]: table.column(name).combine_chunks()
                        for name in table.column_names if name.startswith(RESULT_PREFIX)}
        self._add(chunk)

    @staticmethod
    def chunk_table(chunk: _Chunk) -> pa.Table:
        """A merged chunk's distinct values as one table (digests, repaired flags, result columns), for `seed`."""
        assert chunk.arrays is not None and chunk.repaired is not None, "only a merged chunk is saved"
        columns = {KEY_COLUMN: pa.array(chunk.keys, type=pa.binary(16)),
                   REPAIRED_COLUMN: pa.array(chunk.repaired, type=pa.bool_()),
                   **{RESULT_PREFIX + name: array for name, array in chunk.arrays.items()}}
        return pa.table(columns)

    @staticmethod
    def merge(plan: Plan, arrays: dict[str, pa.Array], repaired: np.ndarray) -> tuple[dict[str, pa.Array], int]:
        """Every row's results from those of the values tagged now (`arrays`, `repaired`: one row per `plan.new`);
        also how many rows had lone surrogates replaced."""
        if plan.trivial:
            plan.chunk.arrays, plan.chunk.repaired = arrays, repaired
            return arrays, int(repaired.sum())
        order = [plan.new]
        pieces = {name: [array] for name, array in arrays.items()}
        flags = [repaired]
        for chunk, ds, rows in plan.copied:
            assert chunk.arrays is not None and chunk.repaired is not None, "a chunk is merged before a later one"
            take = pa.array(rows)
            order.append(ds)
            for name in pieces:
                pieces[name].append(chunk.arrays[name].take(take))
            flags.append(chunk.repaired[rows])
        where = np.empty(len(plan.chunk.keys), dtype=np.int64)
        where[np.concatenate(order)] = np.arange(len(where))
        distinct_take = pa.array(where)
        distinct = {name: pa.concat_arrays(parts).take(distinct_take) for name, parts in pieces.items()}
        distinct_repaired = np.concatenate(flags)[where]
        plan.chunk.arrays, plan.chunk.repaired = distinct, distinct_repaired
        rows_take = pa.array(plan.row_to_distinct)
        return ({name: array.take(rows_take) for name, array in distinct.items()},
                int(distinct_repaired[plan.row_to_distinct].sum()))
