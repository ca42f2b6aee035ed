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
from pyarrow.fs import FileType

from fasttag import storage
from fasttag.errors import FasttagError, OutputError, UsageError
from fasttag.read import CorpusReader, RawChunk
from fasttag.tagger import Tagger
from fasttag.types import ENTITIES_TYPE
from fasttag.write import PartsWriter, StdoutWriter, UploadWriter, output_format, resumable_parts, work_dir


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
    resumed_rows: int = 0

    def line(self) -> str:
        s = max(self.seconds, 1e-9)
        text = (
            f"{self.rows:,} rows, {self.windows:,} windows, {self.entities:,} entities in {self.seconds:.1f}s "
            f"({self.rows / s:,.0f} rows/s, {self.tokens / s:,.0f} tokens/s) on {self.provider}"
        )
        if self.resumed_rows:
            text += f"; resumed after {self.resumed_rows:,} rows done earlier"
        if self.null_texts:
            text += f"; {self.null_texts:,} rows with null or non-string text (empty entities)"
        if self.rejected:
            text += f"; {self.rejected:,} unreadable lines skipped, written to {self.rejects_path}"
        return text


def output_schema(id_type: pa.DataType | None, id_column: str | None) -> pa.Schema:
    if id_column:
        return pa.schema([pa.field(id_column, id_type or pa.null()), pa.field("entities", ENTITIES_TYPE)])
    return pa.schema([pa.field("row", pa.int64()), pa.field("entities", ENTITIES_TYPE)])


def check_engine_options(engine: str, ray_address=None, workers=None, gpus_per_worker=None, resume=False,
                         on_error="stop") -> None:
    """Options that belong to the other engine fail at once, in plain words."""
    if engine == "local":
        given = [name for name, value in (("--ray-address", ray_address), ("--workers", workers),
                                          ("--gpus-per-worker", gpus_per_worker)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to --engine ray")
        return
    if resume:
        raise UsageError("--resume is for --engine local; a Ray run is redone with --overwrite")
    if on_error != "stop":
        raise UsageError("--on-error skip is for --engine local; --engine ray stops at the first unreadable line")


def check_paths(input: str, output: str, overwrite: bool, resume: bool = False) -> None:
    """Refuse what would lose data or cannot work, before any model is loaded."""
    if overwrite and resume:
        raise UsageError("--overwrite and --resume contradict each other: choose one")
    if output == "-":
        if resume:
            raise UsageError("--resume needs an output file, not stdout")
        return
    if storage.is_remote(input) or storage.is_remote(output):
        if input == output:
            raise UsageError("the output path is the input path; choose another output")
        if storage.is_remote(output):
            _check_remote_output(output, overwrite, resume)
            return
    elif input != "-" and Path(input).resolve() == Path(output).resolve():
        raise UsageError("the output path is the input path; choose another output")
    if Path(output).is_dir():
        raise UsageError(f"output {output} is a folder; give a .parquet or .jsonl file path")
    if Path(output).exists() and not overwrite:
        if resume:
            raise UsageError(f"output {output} is complete already; nothing to resume (pass --overwrite to redo it)")
        raise UsageError(f"output {output} exists; pass --overwrite to replace it")
    if resume and input == "-":
        raise UsageError("--resume needs an input file, not stdin")
    if work_dir(output).exists() and not (overwrite or resume):
        raise UsageError(
            f"an interrupted run left {work_dir(output)}; pass --resume to continue it or --overwrite to start over"
        )


def _check_remote_output(output: str, overwrite: bool, resume: bool) -> None:
    if resume:
        raise UsageError(
            f"--resume is not available for a remote output ({output}): its parts are kept in a local temporary "
            "folder that does not outlive the run; write to a local file to be able to resume, then upload it"
        )
    output_format(output)
    remote = storage.resolve(output, OutputError)
    info = remote.info(OutputError)
    if info.type == FileType.Directory:
        raise UsageError(f"output {output} is a folder; give a .parquet or .jsonl file path")
    if info.type != FileType.NotFound and not overwrite:
        raise UsageError(f"output {output} exists; pass --overwrite to replace it")
    why = remote.missing_container(OutputError)
    if why:
        raise OutputError(f"cannot write {output}: {why}")


def run(
    tagger: Tagger,
    input: str,
    output: str,
    text_column: str = "text",
    id_column: str | None = None,
    limit: int | None = None,
    on_error: str = "stop",
    overwrite: bool = False,
    resume: bool = False,
    chunk_rows: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Tag every row of `input` into `output`; one output row per input row, in input order.

    Rows are written as one part per chunk; `resume=True` keeps the parts an interrupted run of the
    same job left and tags only the rest, giving the same output as an uninterrupted run.
    """
    check_paths(input, output, overwrite, resume)
    state = job_state(tagger, input, text_column, id_column, limit, on_error, chunk_rows)
    done_parts = resumable_parts(output, state) if resume else 0
    reader = CorpusReader(input, text_column, id_column, chunk_rows=chunk_rows, limit=limit, on_error=on_error,
                          skip_rows=done_parts * chunk_rows)
    summary = RunSummary(provider=tagger.provider, resumed_rows=done_parts * chunk_rows)
    started = time.perf_counter()
    writer = None

    def prepare(raw: RawChunk):
        texts = [t if isinstance(t, str) else "" for t in raw.texts]
        return raw, tagger.tokenize(texts)

    def open_writer(id_type):
        schema = output_schema(id_type, id_column)
        if output == "-":
            return StdoutWriter(schema)
        if storage.is_remote(output):
            return UploadWriter(output, schema, state)
        return PartsWriter(output, schema, state, resume=done_parts > 0)

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
                    writer = open_writer(raw.ids.type if raw.ids is not None else None)
                ids = raw.ids if id_column else pa.array(np.arange(raw.first_row, raw.first_row + len(raw.texts)))
                writer.write(raw.first_row // chunk_rows, pa.table([ids, entities], schema=writer.schema))
                summary.windows += tagged.n_windows
                summary.tokens += tagged.n_tokens
                summary.entities += len(tagged.spans)
                if progress:
                    progress(len(raw.texts), tagged.n_tokens)
        if writer is None:
            writer = open_writer(pa.string() if id_column else None)
        summary.rows = reader.stats.rows
        summary.null_texts = reader.stats.null_texts
        summary.rejected = len(reader.stats.rejected)
        if reader.stats.rejected:
            summary.rejects_path = _write_rejects(output, reader, writer)
        writer.commit()
    except KeyboardInterrupt:
        if storage.is_remote(output):
            if writer is not None:
                writer.abort()
            raise Interrupted(output, resumable=False) from None
        # Whole parts stay in the work folder for --resume; the output path stays untouched.
        raise Interrupted(output) from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def job_state(tagger: Tagger, input: str, text_column, id_column, limit, on_error, chunk_rows) -> dict:
    """What must not change between a run and its --resume (anything that changes the rows written)."""
    if storage.is_remote(input):
        name, info = input, storage.resolve(input).info()
        size = info.size if info.type == FileType.File else None
    else:
        stat = Path(input).stat() if input != "-" and Path(input).is_file() else None
        name, size = (str(Path(input).resolve()) if input != "-" else "-"), (stat.st_size if stat else None)
    return {
        "input": name,
        "input_size": size,
        "text_column": text_column,
        "id_column": id_column,
        "limit": limit,
        "on_error": on_error,
        "chunk_rows": chunk_rows,
        "model": str(tagger.bundle.path.resolve()),
        "aggregation": tagger.aggregation,
        "max_length": tagger.max_length,
        "stride": tagger.tokenizer.stride,
        "word_boundaries": tagger.tokenizer.word_boundaries,
        "batch_tokens": tagger.batcher.budget_tokens,
        "max_batch_size": tagger.batcher.max_batch_size,
    }


class Interrupted(FasttagError):
    exit_code = 130

    def __init__(self, output: str, resumable: bool = True):
        if output == "-":
            hint = "nothing was written"
        elif not resumable:
            hint = f"nothing was written to {output}"
        else:
            hint = f"nothing was written to {output}; finished chunks are kept: rerun the same command with --resume to continue"
        super().__init__(f"interrupted; {hint}")


def _submit_next(pool, chunks, prepare):
    try:
        raw = next(chunks)
    except StopIteration:
        return None
    return pool.submit(prepare, raw)


def _write_rejects(output: str, reader: CorpusReader, writer=None) -> str:
    path = "fasttag.rejects.jsonl" if output == "-" else f"{output}.rejects.jsonl"
    remote = storage.is_remote(output)
    # A remote output's rejects are written in its local staging folder, then uploaded beside it.
    tmp = str(writer.staging / "rejects.jsonl") if remote else f"{path}.partial"
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in reader.stats.rejected:
            fh.write(json.dumps({"line": r.line, "error": r.error, "raw": r.raw}, ensure_ascii=False) + "\n")
    if remote:
        path = storage.add_suffix(output, ".rejects.jsonl")
        storage.upload(tmp, path)
    else:
        os.replace(tmp, path)
    return path


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
