"""`fasttag run`: read -> tokenize (in a background thread) -> infer -> aggregate -> write, chunk by chunk."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from fasttag.errors import UsageError
from fasttag.read import CorpusReader, RawChunk
from fasttag.tagger import Tagger
from fasttag.types import ENTITIES_TYPE
from fasttag.write import OutputWriter


@dataclass
class RunSummary:
    rows: int = 0
    windows: int = 0
    tokens: int = 0
    entities: int = 0
    null_texts: int = 0
    rejected: int = 0
    seconds: float = 0.0
    provider: str = ""
    rejects_path: str | None = None

    def line(self) -> str:
        s = max(self.seconds, 1e-9)
        text = (
            f"{self.rows:,} rows, {self.windows:,} windows, {self.entities:,} entities in {self.seconds:.1f}s "
            f"({self.rows / s:,.0f} rows/s, {self.tokens / s:,.0f} tokens/s) on {self.provider}"
        )
        if self.null_texts:
            text += f"; {self.null_texts:,} rows with null or non-string text (empty entities)"
        if self.rejected:
            text += f"; {self.rejected:,} unreadable lines skipped, written to {self.rejects_path}"
        return text


def output_schema(id_type: pa.DataType | None, id_column: str | None) -> pa.Schema:
    if id_column:
        return pa.schema([pa.field(id_column, id_type or pa.null()), pa.field("entities", ENTITIES_TYPE)])
    return pa.schema([pa.field("row", pa.int64()), pa.field("entities", ENTITIES_TYPE)])


def check_paths(input: str, output: str, overwrite: bool) -> None:
    if input != "-" and output != "-":
        if Path(input).resolve() == Path(output).resolve():
            raise UsageError("the output path is the input path; choose another output")
        if Path(output).exists() and not overwrite:
            raise UsageError(f"output {output} exists; pass --overwrite to replace it")
        if Path(output).is_dir():
            raise UsageError(f"output {output} is a folder; give a .parquet or .jsonl file path")


def run(
    tagger: Tagger,
    input: str,
    output: str,
    text_column: str = "text",
    id_column: str | None = None,
    limit: int | None = None,
    on_error: str = "stop",
    overwrite: bool = False,
    chunk_rows: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Tag every row of `input` into `output`; one output row per input row, in input order."""
    check_paths(input, output, overwrite)
    reader = CorpusReader(input, text_column, id_column, chunk_rows=chunk_rows, limit=limit, on_error=on_error)
    summary = RunSummary(provider=tagger.provider)
    started = time.perf_counter()
    writer: OutputWriter | None = None

    def prepare(raw: RawChunk):
        texts = [t if isinstance(t, str) else "" for t in raw.texts]
        return raw, tagger.tokenize(texts)

    chunks = iter(reader)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fasttag-tokenize") as pool:
            pending = _submit_next(pool, chunks, prepare)
            while pending is not None:
                raw, tokenized = pending.result()
                # Tokenize the next chunk while the model runs on this one.
                pending = _submit_next(pool, chunks, prepare)
                tagged = tagger.finish_chunk(tokenized)
                entities = tagger.entities_array(tagged)
                if writer is None:
                    writer = OutputWriter(output, output_schema(raw.ids.type if raw.ids is not None else None, id_column))
                ids = raw.ids if id_column else pa.array(np.arange(raw.first_row, raw.first_row + len(raw.texts)))
                writer.write(pa.table([ids, entities], schema=writer.schema))
                summary.windows += tagged.n_windows
                summary.tokens += tagged.n_tokens
                summary.entities += len(tagged.spans)
                if progress:
                    progress(len(raw.texts), tagged.n_tokens)
        if writer is None:
            writer = OutputWriter(output, output_schema(pa.string() if id_column else None, id_column))
        summary.rows = reader.stats.rows
        summary.null_texts = reader.stats.null_texts
        summary.rejected = len(reader.stats.rejected)
        if reader.stats.rejected:
            summary.rejects_path = _write_rejects(output, reader)
        writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _submit_next(pool, chunks, prepare):
    try:
        raw = next(chunks)
    except StopIteration:
        return None
    return pool.submit(prepare, raw)


def _write_rejects(output: str, reader: CorpusReader) -> str:
    path = "fasttag.rejects.jsonl" if output == "-" else f"{output}.rejects.jsonl"
    tmp = f"{path}.partial"
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in reader.stats.rejected:
            fh.write(json.dumps({"line": r.line, "error": r.error, "raw": r.raw}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
