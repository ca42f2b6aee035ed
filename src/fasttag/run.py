"""`fasttag run`: read -> tokenize (in a background thread) -> infer -> aggregate -> write, chunk by chunk (the model's
batches one stream across chunks)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow.fs import FileType

from fasttag import storage
from fasttag.dedup import DEFAULT_WINDOW_ROWS, DuplicateWindow, Kept, window_rows
from fasttag.entities import result_fields
from fasttag.errors import InputError, Interrupted, OutputError, UsageError, first_line
from fasttag.formats import corpus_format, output_format, parquet_files
from fasttag.options import DEFAULT_MAX_TEXT_BYTES, OUTPUT_DEFAULTS, EngineOptions, OnError, OutputOptions
from fasttag.read import CorpusReader
from fasttag.shape import ShapeStats, check_id_column
from fasttag.show import plural
from fasttag.tagger import Tagger
from fasttag.write import (
    OutputLock,
    PartsWriter,
    StdoutWriter,
    UploadWriter,
    check_output_folder,
    check_unlocked,
    resumable_parts,
    saved_state,
    saved_windows,
    window_file,
    work_dir,
)


@dataclass
class RunSummary:
    rows: int = 0
    windows: int = 0
    tokens: int = 0
    entities: int = 0  # results: entities, words or tokens (`result_name`)
    result_name: str = "entity"
    tokens_column: bool = False
    null_texts: int = 0
    rejected: int = 0
    seconds: float = 0.0
    provider: str = ""
    rejects_path: str | None = None
    resumed_rows: int = 0
    repaired_texts: int = 0
    byte_order_marks: int = 0
    shape: ShapeStats = field(default_factory=ShapeStats)  # what --min-score/--labels dropped; rows without results
    output_opts: OutputOptions = field(default_factory=OutputOptions)
    duplicates: int = 0  # rows whose results were copied from an identical text's (the duplicate window)
    rejected_rows: bool = False  # rejects are Parquet rows, not JSONL lines
    torn_part: str | None = None  # the interrupted run's first torn part, found by --resume and redone

    def line(self) -> str:
        s = max(self.seconds, 1e-9)
        new_rows = self.rows - self.resumed_rows  # windows, entities and speed count this run's work only
        # resumed: said so before the counts, which are of the rows tagged now (the output holds more)
        rows = plural(self.rows, "row") + (f", {self.resumed_rows:,} done earlier; the {new_rows:,} tagged now:"
                                           if self.resumed_rows else ",")
        text = (
            f"{rows} {plural(self.windows, 'window')}, {plural(self.entities, self.result_name)} in "
            f"{self.seconds:.1f}s "
            f"({new_rows / s:,.0f} rows/s, {self.tokens / s:,.0f} tokens/s) on {self.provider}"
        )
        if self.duplicates:
            text += f"; {plural(self.duplicates, 'duplicate row')} tagged once"
        text += self.shape.describe(self.output_opts, self.result_name)
        if self.repaired_texts:
            text += (f"; {plural(self.repaired_texts, 'text')} had invalid characters "
                     "(invalid UTF-8 or lone surrogates) replaced by U+FFFD")
        if self.null_texts and self.tokens_column:
            text += f"; {plural(self.null_texts, 'row')} with null tokens (empty tags)"
        elif self.null_texts:
            text += f"; {plural(self.null_texts, 'row')} with null or non-string text (empty results)"
        if self.byte_order_marks:
            text += f"; {plural(self.byte_order_marks, 'UTF-8 byte-order mark')} skipped"
        if self.torn_part:
            text += f"; a torn part of the interrupted run was redone ({self.torn_part})"
        if self.rejected:
            what = "bad row" if self.tokens_column or self.rejected_rows else "bad line"
            text += f"; {plural(self.rejected, what)} skipped, written to {self.rejects_path}"
        return text


def output_schema(id_type: pa.DataType | None, id_column: str | None, fields: list[pa.Field] | None = None
                  ) -> pa.Schema:
    """The id column (or `row`) and the result columns (`fields`; default: the entities level's)."""
    fields = fields if fields is not None else result_fields("entities")
    if id_column:
        return pa.schema([pa.field(id_column, id_type or pa.null()), *fields])
    return pa.schema([pa.field("row", pa.int64()), *fields])


def check_engine_options(engine: str, ray_address=None, workers=None, gpus_per_worker=None, resume=False,
                         on_error="stop", streams=None) -> None:
    """Options that belong to the other engine fail at once, in plain words."""
    if engine == "local":
        given = [name for name, value in (("--ray-address", ray_address), ("--workers", workers),
                                          ("--gpus-per-worker", gpus_per_worker)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to --engine ray")
        return
    if resume:
        raise UsageError("--resume is for --engine local; a Ray run is redone with --overwrite")
    if streams is not None:
        raise UsageError(
            "--streams is for --engine local; with --engine ray each worker runs one session (use --workers)")
    if on_error != "stop":
        raise UsageError("--on-error skip is for --engine local; --engine ray stops at the first bad line")


STDOUT_REJECTS = "fasttag.rejects.jsonl"  # -o - with --on-error skip: the rejects go here, in the current folder
# (or, when it exists and --overwrite is not given, to the first free fasttag.rejects.N.jsonl)


def check_paths(input: str, output: str, overwrite: bool, resume: bool = False) -> None:
    """Refuse what would lose data or cannot work, before any model is loaded."""
    if overwrite and resume:
        raise UsageError("--overwrite and --resume contradict each other: choose one")
    if input != "-" and not storage.is_remote(input) and not Path(input).exists():
        raise InputError(f"input {input} does not exist")
    if not storage.is_remote(input):
        # An unknown suffix, or a folder holding other files than Parquet; a remote input is told once opened.
        if corpus_format(input) == "parquet" and Path(input).is_dir():
            parquet_files(input)
    if output == "-":
        if resume:
            raise UsageError("--resume needs an output file, not stdout")
        if overwrite and input != "-" and Path(input).resolve() == Path(STDOUT_REJECTS).resolve():
            raise _input_is_rejects(input, "-", "--overwrite would replace it with this run's rejects",
                                    "run without --overwrite (the rejects then go to a free fasttag.rejects.N.jsonl)")
        return
    if storage.is_remote(input) or storage.is_remote(output):
        if input == output:
            raise UsageError("the output path is the input path; choose another output")
        if input == storage.add_suffix(output, ".rejects.jsonl"):
            raise _input_is_rejects(input, output)
        if storage.is_remote(output):
            _check_remote_output(output, overwrite, resume)
            return
    elif input != "-" and Path(input).resolve() == Path(output).resolve():
        raise UsageError("the output path is the input path; choose another output")
    elif input != "-" and Path(input).resolve() == Path(f"{output}.rejects.jsonl").resolve():
        raise _input_is_rejects(input, output)
    elif input != "-" and Path(input).is_dir() and Path(input).resolve() in Path(output).resolve().parents:
        raise UsageError(f"the output {output} is inside the input folder {input}; it would be read back as input")
    check_output_folder(output)
    if Path(output).is_dir():
        raise UsageError(f"output {output} is a folder; give a .parquet or .jsonl file path")
    output_format(output)
    check_unlocked(output)  # a live run writing it: say so before "exists" or "interrupted"
    if Path(output).exists() and not overwrite:
        if resume:
            raise UsageError(f"output {output} is complete already; nothing to resume (pass --overwrite to redo it)")
        raise UsageError(f"output {output} exists; pass --overwrite to replace it")
    if resume and input == "-":
        raise UsageError("--resume needs an input file, not stdin")
    if work_dir(output).exists() and not (overwrite or resume) and _resumable_leftover(output):
        raise UsageError(
            f"an interrupted run left {work_dir(output)}; pass --resume to continue it or --overwrite to start over"
        )


def _input_is_rejects(input: str, output: str, why: str = "", fix: str = "choose another output with -o") -> UsageError:
    """The input is the rejects file the run would replace (bad lines skipped) or remove (none): refused."""
    why = why or "the run replaces it with its own rejects, or removes it when it has none"
    return UsageError(f"the input {input} is the rejects file of output {output}: {why}; {fix}, or rename the input "
                      "first")


def _resumable_leftover(output: str) -> bool:
    """Whether the parts an interrupted run left could be resumed: not those of a run that read stdin."""
    try:
        return (saved_state(output) or {}).get("input") != "-"
    except UsageError:
        return True  # not ours to judge: refused, and removed only by --overwrite


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
    tagger: Tagger | EngineOptions,
    input: str,
    output: str,
    text_column: str = "text",
    id_column: str | None = None,
    limit: int | None = None,
    on_error: OnError = "stop",
    overwrite: bool = False,
    resume: bool = False,
    chunk_rows: int = 2048,
    progress: Callable[[int, int], None] | None = None,
    on_loaded: Callable[[Tagger], None] | None = None,
    tokens_column: str | None = None,
    output_opts: OutputOptions | None = None,
    max_text_bytes: int | None = DEFAULT_MAX_TEXT_BYTES,
) -> RunSummary:
    """Tag every row of `input` into `output`; one output row per input row, in input order (with
    `output_opts.layout` flat: one row per result, in input order).

    `tagger` is a Tagger, or the EngineOptions to load one with once the paths proved usable (so that a
    wrong path fails before the model loads); `on_loaded(tagger)` is called then, before the first row.

    Rows are written as one part per chunk; `resume=True` keeps the parts an interrupted run of the
    same job left and tags only the rest, giving the same output as an uninterrupted run. While it
    runs, it holds a lock on a local `output`: another run on the same output is refused.

    With `tokens_column`, each row's token list (that column) is tagged instead of its text: one tag and
    score per token (see `Tagger.tag_pretokenized`). `output_opts` are the kept input columns, the filters and
    the layout (`fasttag.shape`); the summary counts what the filters dropped.

    A text longer than `max_text_bytes` (UTF-8; None: no limit) is a bad row, as `on_error` says: its
    tokens and scores would take memory in proportion to it.
    """
    output_opts = output_opts or OutputOptions()
    check_id_column(id_column, "--id-column")
    check_paths(input, output, overwrite, resume)
    if isinstance(tagger, EngineOptions):
        tagger = Tagger.load(options=tagger)
    if tokens_column:
        tagger.check_pretokenized()
    if on_loaded is not None:
        on_loaded(tagger)
    lock = OutputLock.acquire(output) if output != "-" and not storage.is_remote(output) else None
    try:
        return _run(tagger, input, output, text_column, id_column, limit, on_error, overwrite, resume, chunk_rows,
                    progress, tokens_column, output_opts, max_text_bytes)
    finally:
        if lock is not None:
            lock.release()


def _run(tagger: Tagger, input: str, output: str, text_column: str, id_column: str | None, limit: int | None,
         on_error: OnError, overwrite: bool, resume: bool, chunk_rows: int,
         progress: Callable[[int, int], None] | None, tokens_column: str | None = None,
         output_opts: OutputOptions | None = None,
         max_text_bytes: int | None = DEFAULT_MAX_TEXT_BYTES) -> RunSummary:
    output_opts = output_opts or OutputOptions()
    state = job_state(tagger, input, text_column, id_column, limit, on_error, chunk_rows, tokens_column, output_opts)
    state["max_text_bytes"] = max_text_bytes or None
    rows = window_rows(tagger.options.dedup_window, tagger.bundle.precision)
    state["dedup_window"] = rows  # resolved: a resume repeats the window the run had, whatever the default becomes
    pretokenized = tokens_column is not None
    shaper = tagger.shaper(output_opts, pretokenized)
    id_name = id_column or "row"
    digests: list[str] = []
    torn: list[str] = []
    if resume and (saved := saved_state(output)) is not None:
        check_same_job(saved, state, input)
        digests, torn = resumable_parts(output)  # a torn part (and those after it) is redone
    done_parts = len(digests)
    checked = [0]  # chunks done earlier whose input rows were read again and found unchanged

    def check_done_chunk(first_row: int, digest: str | None) -> None:
        index = first_row // chunk_rows
        if index < done_parts and digest != digests[index]:
            raise UsageError(
                f"cannot resume: rows {first_row:,}-{first_row + chunk_rows - 1:,} of {input} are not the rows the "
                "interrupted run tagged (the input changed since); pass --overwrite to start over"
            )
        checked[0] += 1

    parts_output = output != "-"
    reader = CorpusReader(input, text_column, id_column, chunk_rows=chunk_rows, limit=limit, on_error=on_error,
                          skip_rows=done_parts * chunk_rows, digests=parts_output, on_skipped=check_done_chunk,
                          tokens_column=tokens_column, keep_columns=output_opts.keep_columns,
                          check_kept=lambda names: shaper.check_kept(names, id_name),
                          max_text_bytes=max_text_bytes)
    result_name = ("word" if tagger.level == "words" else "entity") if pretokenized else \
        {"entities": "entity", "words": "word", "tokens": "tagged token"}[tagger.level]
    summary = RunSummary(provider=tagger.provider, resumed_rows=done_parts * chunk_rows, result_name=result_name,
                         tokens_column=pretokenized, output_opts=output_opts, torn_part=torn[0] if torn else None)
    started = time.perf_counter()
    writer = None
    window = DuplicateWindow(rows, pretokenized=pretokenized) if rows else None
    # Each chunk's share of the window is saved beside its part, and a resumed run starts with the window the
    # interrupted one had: the same rows are tagged now, in the same batches, so an int8 model's scores too are
    # those of an uninterrupted run. Shares the window let go of are deleted (`Kept`: the window's own rule).
    kept = Kept(rows) if window is not None and parts_output and not storage.is_remote(output) else None
    if kept is not None and window is not None and done_parts:
        for index, table in saved_windows(output, done_parts):
            window.seed(table)
            for gone in kept.add(index, table.num_rows):  # saved by a run killed before it deleted them
                window_file(output, gone).unlink(missing_ok=True)
    stages = tagger.stages

    def prepare():
        # Reading, parsing and tokenizing run in the worker thread, while the model runs on the previous chunk.
        reading = time.perf_counter()
        raw = next(chunks, None)
        stages.read += time.perf_counter() - reading
        if raw is None:
            return None
        return raw, tagger.prepare_rows(raw.texts, pretokenized, window)

    def open_writer():
        if output == "-":
            return StdoutWriter()
        if storage.is_remote(output):
            return UploadWriter(output, state)
        return PartsWriter(output, state, resume=done_parts > 0)

    chunks = iter(reader)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fasttag-read") as pool:

            def prepared_chunks():
                pending = pool.submit(prepare)
                while (ready := pending.result()) is not None:
                    pending = pool.submit(prepare)
                    yield ready

            # one stream through the model: the next chunk's batches run while this one is written; closed on
            # the way out, whatever happens, which cancels the batches that have not started
            with contextlib.closing(tagger.finish_rows_stream(prepared_chunks())) as stream:
                for raw, tagged in stream:
                    writing = time.perf_counter()
                    if writer is None:
                        writer = open_writer()
                    ids = raw.ids if id_column else pa.array(np.arange(raw.first_row, raw.first_row + len(raw.texts)))
                    table, shaped = shaper.shape(id_name, ids, raw.kept, tagged.arrays)
                    index = raw.first_row // chunk_rows
                    if kept is not None and isinstance(writer, PartsWriter) and tagged.window_chunk is not None:
                        share = tagged.window_chunk
                        writer.write(index, table, digest=raw.digest, window=DuplicateWindow.chunk_table(share))
                        writer.drop_windows(kept.add(index, len(share.keys)))
                    else:
                        writer.write(index, table, digest=raw.digest)
                    stages.write += time.perf_counter() - writing
                    summary.windows += tagged.n_windows
                    summary.tokens += tagged.n_tokens
                    summary.entities += tagged.n_results - shaped.dropped
                    summary.shape.add(shaped)
                    summary.repaired_texts += tagged.repaired
                    summary.duplicates += tagged.duplicates
                    if progress:
                        progress(len(raw.texts), tagged.n_tokens)
        if checked[0] < done_parts:
            raise UsageError(f"cannot resume: {input} now has fewer rows than the interrupted run tagged "
                             "(the input changed since); pass --overwrite to start over")
        if writer is None:  # no new chunk: an empty input, or a resumed run whose chunks were all done
            writer = open_writer()
        # The id type: the first non-null one the input had (the reader casts all ids to it).
        id_type = reader.id_type or done_parts_id_type(output, id_column) or (pa.string() if id_column else None)
        summary.rows = reader.stats.rows
        # Every part but the input's last holds chunk_rows rows: when the last was done earlier (the join failed,
        # or a kill came before it), done_parts * chunk_rows overcounts it.
        summary.resumed_rows = min(summary.resumed_rows, summary.rows)
        summary.null_texts = reader.stats.null_texts
        summary.repaired_texts += reader.stats.invalid_utf8
        summary.byte_order_marks = reader.stats.byte_order_marks
        summary.rejected = len(reader.stats.rejected)
        summary.rejected_rows = reader.format == "parquet"
        id_field = output_schema(id_type, id_column, []).field(0)
        kept_fields = reader.kept_fields or [pa.field(n, pa.null()) for n in reader.kept_names or ()]
        if reader.stats.rejected:  # before the output: an output that exists has its rejects beside it
            summary.rejects_path = _write_rejects(output, reader, overwrite)
        writing = time.perf_counter()
        writer.commit(shaper.schema(id_field, kept_fields))
        stages.write += time.perf_counter() - writing
        if not reader.stats.rejected and output != "-" and not storage.is_remote(output):
            Path(f"{output}.rejects.jsonl").unlink(missing_ok=True)  # a stale one from an earlier run
    except KeyboardInterrupt as exc:
        if isinstance(writer, PartsWriter) and writer.committed:  # too late to stop: the output is complete
            writer.remove_parts()
            if not reader.stats.rejected:
                Path(f"{output}.rejects.jsonl").unlink(missing_ok=True)
            summary.seconds = time.perf_counter() - started
            return summary
        if storage.is_remote(output) or input == "-":  # neither can be resumed: keep nothing
            if writer is not None:
                writer.abort()
            raise Interrupted(output, resumable=False, stdin=input == "-") from exc
        # Whole parts stay in the work folder for --resume; the output path stays untouched.
        raise Interrupted(output) from exc
    except OutputError as exc:
        refused = isinstance(exc.__cause__, OSError)  # the disk refused a write (full, quota, a file-size limit)
        if isinstance(writer, PartsWriter) and input != "-" and (refused or done_parts):
            writer.abort(keep_parts=True)  # what is finished stays for --resume
            if refused:
                raise OutputError(f"{exc}; the chunks finished so far are kept: free space (or fix the cause) and "
                                  "rerun the same command with --resume") from exc
        elif writer is not None:
            writer.abort()
        raise
    except BaseException:
        if writer is not None:
            if done_parts and isinstance(writer, PartsWriter):
                writer.abort(keep_parts=True)  # never lose what an interrupted run already finished
            else:
                writer.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def job_state(tagger: Tagger, input: str, text_column, id_column, limit, on_error, chunk_rows,
              tokens_column: str | None = None, output_opts: OutputOptions | None = None) -> dict:
    """What must not change between a run and its --resume (anything that changes the rows written)."""
    if storage.is_remote(input):
        name, info = input, storage.resolve(input).info()
        size, mtime_ns = (info.size, info.mtime_ns) if info.type == FileType.File else (None, None)
    else:
        stat = Path(input).stat() if input != "-" and Path(input).is_file() else None
        name = str(Path(input).resolve()) if input != "-" else "-"
        size, mtime_ns = (stat.st_size, stat.st_mtime_ns) if stat else (None, None)
    return {
        "input": name,
        "input_size": size,
        "input_mtime_ns": mtime_ns,
        "text_column": text_column,
        "tokens_column": tokens_column,
        "id_column": id_column,
        "limit": limit,
        "on_error": on_error,
        "chunk_rows": chunk_rows,
        "model": str(tagger.bundle.path.resolve()),
        "model_files": {f: [st.st_size, int(st.st_mtime)] for f in ("model.onnx", "tokenizer.json")
                        if (st := (tagger.bundle.path / f).stat())},
        "input_files": _input_fingerprint(input),
        # aggregation, level, max_length, stride, windows, word_boundaries, batch_tokens, max_batch_size (resolved)
        **tagger.options.resume_state(),
        # keep_columns, min_score, labels, layout
        **(output_opts or OutputOptions()).resume_state(),
    }


def _input_fingerprint(input: str) -> list | None:
    """A folder's Parquet files (those the reader reads), each with its size and modification time (ns)."""
    if input == "-" or storage.is_remote(input) or not Path(input).is_dir():
        return None
    return sorted([str(Path(f).relative_to(input)), (st := Path(f).stat()).st_size, st.st_mtime_ns]
                  for f in parquet_files(input))


INPUT_KEYS = ("input", "input_size", "input_mtime_ns", "input_files")  # the input's fingerprint in job_state


def check_same_job(saved: dict, state: dict, input: str) -> None:
    """Refuse to resume an interrupted run over another input, a changed one, or with other settings."""
    if saved.get("input") == "-":
        raise UsageError("cannot resume: the interrupted run read stdin, which cannot be resumed; "
                         "run again without --resume")
    if "input_mtime_ns" not in saved:
        raise UsageError("cannot resume: the interrupted run was made by an earlier fasttag version, whose parts "
                         "do not record enough of the input to check it; pass --overwrite to start over")
    if saved.get("input") != state.get("input"):
        raise UsageError(f"cannot resume: the interrupted run read {saved.get('input')}, not {state.get('input')}; "
                         "repeat its exact command with --resume, or pass --overwrite to start over")
    changed = _input_changes(saved, state)
    if changed:
        raise UsageError(f"cannot resume: {input} changed since the interrupted run ({'; '.join(changed)}); "
                         "pass --overwrite to start over")
    # runs made before --level wrote entities; before --keep-columns etc., nested rows of all results; before
    # --max-text-bytes, the default limit applied; before --windows, full windows; before the duplicate window was
    # recorded, its default
    saved = {"level": "entities", "max_text_bytes": DEFAULT_MAX_TEXT_BYTES, "windows": "full",
             "dedup_window": DEFAULT_WINDOW_ROWS, **OUTPUT_DEFAULTS, **saved}
    differs = sorted(k for k in set(saved) | set(state) if k not in INPUT_KEYS and saved.get(k) != state.get(k))
    if differs:
        raise UsageError(
            f"cannot resume: the interrupted run used other settings ({', '.join(differs)}); "
            "repeat its exact command with --resume, or pass --overwrite to start over"
        )


def _input_changes(saved: dict, state: dict) -> list[str]:
    """What differs between the input's fingerprints (its size, modification time, files), in words."""
    changed = []
    if saved.get("input_size") != state.get("input_size"):
        changed.append(f"its size: {_bytes(saved.get('input_size'))} then, {_bytes(state.get('input_size'))} now")
    if saved.get("input_mtime_ns") != state.get("input_mtime_ns"):
        changed.append("its modification time")
    if saved.get("input_files") != state.get("input_files"):
        then = {f[0]: f[1:] for f in saved.get("input_files") or ()}
        now = {f[0]: f[1:] for f in state.get("input_files") or ()}
        for what, names in (("files changed", [f for f in then if f in now and then[f] != now[f]]),
                            ("files added", [f for f in now if f not in then]),
                            ("files removed", [f for f in then if f not in now])):
            if names:
                changed.append(f"{what}: {', '.join(sorted(names)[:5])}" + (", ..." if len(names) > 5 else ""))
    return changed


def _bytes(size: int | None) -> str:
    return "unknown" if size is None else plural(size, "byte")


def _stdout_rejects_path(overwrite: bool) -> str:
    """fasttag.rejects.jsonl, or when an earlier run left one (and not --overwrite) the first free .N name."""
    if overwrite or not Path(STDOUT_REJECTS).exists():
        return STDOUT_REJECTS
    n = 1
    while Path(name := STDOUT_REJECTS.replace(".jsonl", f".{n}.jsonl")).exists():
        n += 1
    return name


def done_parts_id_type(output: str, id_column: str | None) -> pa.DataType | None:
    """The id type of an interrupted run's first part, so that its resumed output keeps it."""
    if not id_column or output == "-" or storage.is_remote(output):
        return None
    for part in sorted(work_dir(output).glob("part-*.parquet")):
        id_type = pq.read_schema(part).field(id_column).type
        if not pa.types.is_null(id_type):
            return id_type
    return None


def _write_rejects(output: str, reader: CorpusReader, overwrite: bool = False) -> str:
    """Rejected lines beside the output (before it is committed), written whole or not at all.

    Each record holds the line number, the error and the line as text (`raw`); a line that is not valid
    UTF-8 also has its exact bytes in `raw_base64`.
    """
    remote = storage.is_remote(output)
    path = _stdout_rejects_path(overwrite) if output == "-" else f"{output}.rejects.jsonl"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fasttag-rejects-", dir=None if remote else (Path(path).resolve().parent))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for r in reader.stats.rejected:
                record = ({"line": r.line} if r.row is None else {"row": r.row}) | {"error": r.error, "raw": r.raw}
                if r.raw_base64 is not None:
                    record["raw_base64"] = r.raw_base64
                if r.raw_bytes is not None:  # an oversized row: `raw` is its start
                    record["raw_bytes"] = r.raw_bytes
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:  # a full disk: the output is not committed either
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {first_line(exc)}") from exc
    if remote:
        path = storage.add_suffix(output, ".rejects.jsonl")
        try:
            storage.upload(tmp, path)
        finally:
            os.unlink(tmp)
    else:
        try:
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            os.unlink(tmp)
            raise OutputError(f"cannot write {path}: {first_line(exc)}") from exc
    return path

