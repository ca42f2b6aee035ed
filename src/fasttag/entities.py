"""The results the engine returns at each level, and their Arrow schemas as every output writes them.

A text is tagged at one of three levels (`--level`), each written to a column named for what it holds:

- ``entities``: labelled spans (`Entity`), for span tasks (NER, chunking);
- ``words``: every word with its tag, ``O`` included (`Word`), for tag tasks (part-of-speech) and span tasks;
- ``tokens``: every sub-token not tagged ``O``, with its full label (`Token`), the transformers pipeline's
  ``aggregation_strategy="none"``.

Pre-tokenized input (`--tokens-column`) gets one tag and score per input token (`TokenTags`): columns
``tags`` and ``scores``, and for span tasks at the entities level ``entities`` in token indices (`TokenSpan`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fasttag.options import Level


def _score(score: float | None) -> float | None:
    """A float32 score as its shortest decimal (0.9977015, not 0.9977015256881714), as JSONL output holds it."""
    return None if score is None else float(str(np.float32(score)))


@dataclass(frozen=True)
class Entity:
    """One tagged span: ``text == document[start:end]``."""

    start: int
    end: int
    label: str
    score: float
    text: str

    def to_dict(self) -> dict:
        """The entity as `fasttag run` writes it to JSONL: plain ints, str and float, ready for `json.dumps`.

        The score is a float32 written as its shortest decimal (0.9977015, not 0.9977015256881714).
        """
        return {"start": int(self.start), "end": int(self.end), "label": str(self.label),
                "score": _score(self.score), "text": str(self.text)}


@dataclass(frozen=True)
class Word:
    """One word of a text with its tag (``O`` included; a span task's words carry IOB2 tags): ``text ==
    document[start:end]``."""

    start: int
    end: int
    label: str
    score: float
    text: str

    def to_dict(self) -> dict:
        """The word as `fasttag run --level words` writes it to JSONL (see `Entity.to_dict`)."""
        return {"start": int(self.start), "end": int(self.end), "label": str(self.label),
                "score": _score(self.score), "text": str(self.text)}


@dataclass(frozen=True)
class Token:
    """One sub-token the model did not tag ``O``, as the transformers pipeline's ``aggregation_strategy="none"``
    gives it: its full label (``B-PER``), `index` its position in the model's input (``[CLS]`` is 0) and
    `token` its vocabulary entry (the pipeline's ``word``; the text itself for an unknown token)."""

    start: int
    end: int
    label: str
    score: float
    text: str
    index: int
    token: str

    def to_dict(self) -> dict:
        """The token as `fasttag run --level tokens` writes it to JSONL (see `Entity.to_dict`)."""
        return {"start": int(self.start), "end": int(self.end), "label": str(self.label),
                "score": _score(self.score), "text": str(self.text), "index": int(self.index),
                "token": str(self.token)}


@dataclass(frozen=True)
class TokenSpan:
    """An entity of pre-tokenized input: input tokens ``token_start`` to ``token_end`` (exclusive)."""

    token_start: int
    token_end: int
    label: str
    score: float

    def to_dict(self) -> dict:
        return {"token_start": int(self.token_start), "token_end": int(self.token_end), "label": str(self.label),
                "score": _score(self.score)}


@dataclass(frozen=True)
class TokenTags:
    """The tags of one pre-tokenized row: one tag and score per input token (None for a token the tokenizer
    turns into nothing), and for a span task at the entities level its entities (else None)."""

    tags: list[str | None]
    scores: list[float | None]
    entities: list[TokenSpan] | None = None

    def to_dict(self) -> dict:
        """The row's columns as `fasttag run --tokens-column` writes them to JSONL."""
        out: dict = {"tags": list(self.tags), "scores": [_score(s) for s in self.scores]}
        if self.entities is not None:
            out["entities"] = [e.to_dict() for e in self.entities]
        return out


def _struct(*fields: tuple[str, pa.DataType]) -> pa.StructType:
    return pa.struct([pa.field(name, t) for name, t in fields])


_SPAN_FIELDS = (("start", pa.int32()), ("end", pa.int32()), ("label", pa.string()), ("score", pa.float32()),
                ("text", pa.string()))
ENTITY_TYPE = _struct(*_SPAN_FIELDS)
WORD_TYPE = _struct(*_SPAN_FIELDS)
TOKEN_TYPE = _struct(*_SPAN_FIELDS, ("index", pa.int32()), ("token", pa.string()))
TOKEN_SPAN_TYPE = _struct(("token_start", pa.int32()), ("token_end", pa.int32()), ("label", pa.string()),
                          ("score", pa.float32()))


def _list(item: pa.DataType) -> pa.ListType:
    # The list's item is named "element", as Parquet (and so `fasttag run` and `--engine ray`) names it: one
    # schema whether the results come from `Tagger.tag_table`, a Parquet output or a JSONL reader.
    return pa.list_(pa.field("element", item))


ENTITIES_TYPE = _list(ENTITY_TYPE)
WORDS_TYPE = _list(WORD_TYPE)
TOKENS_TYPE = _list(TOKEN_TYPE)
TOKEN_SPANS_TYPE = _list(TOKEN_SPAN_TYPE)
TAGS_TYPE = _list(pa.string())
SCORES_TYPE = _list(pa.float32())

LEVEL_TYPES: dict[str, pa.DataType] = {"entities": ENTITIES_TYPE, "words": WORDS_TYPE, "tokens": TOKENS_TYPE}
RESULT_TYPES: dict[str, type] = {"entities": Entity, "words": Word, "tokens": Token}
RESULT_COLUMNS = ("entities", "words", "tokens", "tags", "scores")  # every name a result column can have


def result_fields(level: Level, pretokenized: bool = False) -> list[pa.Field]:
    """The result columns of an output row (after the id column), in order."""
    if not pretokenized:
        return [pa.field(level, LEVEL_TYPES[level])]
    fields = [pa.field("tags", TAGS_TYPE), pa.field("scores", SCORES_TYPE)]
    return fields + ([pa.field("entities", TOKEN_SPANS_TYPE)] if level == "entities" else [])


def rows_of(column: pa.Array | pa.ChunkedArray, level: Level) -> list[list]:
    """A result column (of `result_fields(level)`) as lists of `Entity`, `Word` or `Token`, one per row."""
    cls = RESULT_TYPES[level]
    names = [f.name for f in dataclasses.fields(cls)]
    return [[cls(**{k: item[k] for k in names}) for item in row or ()] for row in column.to_pylist()]


def with_shortest_scores(table: pa.Table) -> pa.Table:
    """`table` with every float32 `score` (and `scores`) as the float64 of its shortest decimal, so that
    `json.dumps` writes 0.9977015, not 0.9977015256881714 (vectorized: Arrow formats float32 shortest)."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        t = column.type
        if pa.types.is_list(t) and pa.types.is_struct(t.value_type) and t.value_type.get_field_index("score") >= 0:
            items = column.values
            fields = items.flatten()
            k = items.type.get_field_index("score")
            fields[k] = _shortest(fields[k])
            names = [items.type.field(i).name for i in range(items.type.num_fields)]
            items = pa.StructArray.from_arrays(fields, names=names, mask=items.is_null() if items.null_count else None)
            mask = column.is_null() if column.null_count else None
            column = pa.ListArray.from_arrays(column.offsets, items, mask=mask)
        elif name == "score" and pa.types.is_float32(t):  # the flat layout's
            column = _shortest(column)
        elif name == "scores" and pa.types.is_list(t) and pa.types.is_float32(t.value_type):
            column = pa.ListArray.from_arrays(column.offsets, _shortest(column.values),
                                              mask=column.is_null() if column.null_count else None)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _shortest(scores: pa.Array) -> pa.Array:
    return pc.cast(pc.cast(scores, pa.string()), pa.float64())


def text_slices(texts: list[str], doc: np.ndarray, start: np.ndarray, end: np.ndarray) -> pa.StringArray:
    """``texts[doc[i]][start[i]:end[i]]`` for every i, as one Arrow array, without a Python loop per slice.

    Code-point offsets become UTF-8 byte offsets through the texts' code points; the slices' bytes are
    gathered with one index array.
    """
    n = len(doc)
    if n == 0:
        return pa.array([], type=pa.string())
    joined = "".join(texts)
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    data = np.frombuffer(joined.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    width = 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)
    byte_at = np.zeros(len(cps) + 1, dtype=np.int64)
    np.cumsum(width, out=byte_at[1:])
    base = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), out=base[1:])
    b0 = byte_at[base[doc] + start]
    b1 = byte_at[base[doc] + np.maximum(start, end)]
    lengths = b1 - b0
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    index = np.arange(total, dtype=np.int64) + np.repeat(b0 - offsets[:-1], lengths)
    values = data[index]
    if total < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(values))
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(values)).cast(pa.string())
