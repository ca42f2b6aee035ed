"""`fasttag run --engine ray`: the same tagging, spread over the workers of a Ray cluster with Ray Data.

Ray Data reads the corpus (Parquet, or JSONL with Arrow's JSON reader); a pool of actors, each
holding one `Tagger` (one onnxruntime session, loaded once when the actor starts), tags batches of
rows with the local engine's own steps; Ray Data writes the rows as a folder of Parquet part files,
and `_SUCCESS` is written into the folder once all of them are.

Row numbers: without an id column, the `row` column must be the 0-based input row number, as in a
local run, but Ray Data reads in parallel and has no global row index. So the input's text (and id)
column is read in file order (`preserve_order`) into Ray's object store, and each block, whose row
count is then known, is numbered from the rows of the blocks before it: a row's number is its
position in the input, whatever the block layout or the number of workers. The reading finishes
before tagging starts (reading is fast next to tagging); the texts wait in the object store, which
spills to disk when full.

Ray is imported only here, and only when this engine is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow.fs import FileSelector, FileType, LocalFileSystem

from fasttag import errors, storage
from fasttag.dedup import DuplicateWindow, window_rows
from fasttag.errors import (
    FasttagError,
    InputError,
    Interrupted,
    MissingExtraError,
    OutputError,
    UsageError,
    first_line,
)
from fasttag.formats import (
    FILE_SUFFIXES,
    corpus_format,
    is_text_type,
    parquet_files,
    parse_jsonl_line,
    texts_from_column,
)
from fasttag.options import KEEP_ALL, EngineOptions, OutputOptions
from fasttag.read import id_array, kept_json_columns
from fasttag.run import output_schema
from fasttag.shape import Shaper, ShapeStats
from fasttag.write import check_output_folder

SUCCESS_FILE = "_SUCCESS"


@dataclass
class RayOptions:
    """Where and how wide to run: the cluster address (None: a new local Ray) and the actor pool."""

    address: str | None = None
    workers: int | None = None  # None: as many as the cluster's CPUs (or GPUs) allow
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0


@dataclass
class RaySummary:
    rows: int = 0
    workers: int = 0
    seconds: float = 0.0
    shape: ShapeStats = field(default_factory=ShapeStats)  # what --min-score/--labels dropped, rows without results
    output_opts: OutputOptions = field(default_factory=OutputOptions)
    result_name: str = "entity"
    duplicates: int = 0  # rows whose results a worker copied from an identical text's (its duplicate window)

    def line(self) -> str:
        s = max(self.seconds, 1e-9)
        text = (f"{self.rows:,} rows in {self.seconds:.1f}s ({self.rows / s:,.0f} rows/s) "
                f"on {self.workers} Ray worker{'s' if self.workers != 1 else ''}")
        if self.duplicates:
            text += f"; {self.duplicates:,} duplicate row{'s' if self.duplicates != 1 else ''} tagged once"
        return text + self.shape.describe(self.output_opts, self.result_name)


class ShapeCounter:
    """A Ray actor (made with ray.remote where used) adding up the workers' `ShapeStats` and the duplicates their
    windows found."""

    def __init__(self) -> None:
        self.stats = ShapeStats()
        self.duplicates = 0

    def add(self, stats: ShapeStats, duplicates: int = 0) -> None:
        self.stats.add(stats)
        self.duplicates += duplicates

    def total(self) -> ShapeStats:
        return self.stats

    def total_duplicates(self) -> int:
        return self.duplicates


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("ray", "--engine ray", "ray") from exc
    return ray


# -- paths ----------------------------------------------------------------------------------------
def check_ray_paths(input: str, output: str, overwrite: bool) -> None:
    """Refuse what cannot work or would mix runs, before Ray starts or the model loads."""
    if input == "-" or output == "-":
        raise UsageError("--engine ray reads files and writes a folder: stdin/stdout (-) need --engine local")
    if storage.without_query(input).rstrip("/") == storage.without_query(output).rstrip("/"):
        raise UsageError("the output path is the input path; choose another output")
    if _inside(input, output):  # --overwrite empties the output folder
        raise UsageError(f"the input {input} lies inside the output folder {output}; choose another output")
    if storage.is_remote(input):
        remote = storage.resolve(input)
        if not remote.exists():
            why = remote.missing_container()
            raise InputError(f"input {input} does not exist" + (f" ({why})" if why else ""))
    elif not Path(input).exists():
        raise InputError(f"input {input} does not exist")
    corpus_format(input)
    if storage.is_remote(output):
        remote = storage.resolve(output, OutputError)
        info = remote.info(OutputError)
        if info.type == FileType.File:
            raise UsageError(f"output {output} is a file; --engine ray writes a folder of Parquet files")
        _refuse_file_name(output)
        if info.type == FileType.Directory and not overwrite and _remote_entries(remote):
            raise UsageError(f"output folder {output} is not empty; pass --overwrite to replace its contents")
        why = remote.missing_container(OutputError)
        if why and info.type == FileType.NotFound:
            raise OutputError(f"cannot write {output}: {why}")
        return
    out = Path(output)
    if out.is_file():
        raise UsageError(f"output {output} is a file; --engine ray writes a folder of Parquet files")
    _refuse_file_name(output)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"output folder {output} is not empty; pass --overwrite to replace its contents")
    check_output_folder(output)


def _refuse_file_name(output: str) -> None:
    name = storage.without_query(output).rstrip("/")
    suffix = next((x for x in sorted(FILE_SUFFIXES, key=len, reverse=True) if name.lower().endswith(x)), None)
    if suffix and len(name) > len(suffix) and name[-len(suffix) - 1] not in "/\\":
        raise UsageError(f"--engine ray writes OUTPUT as a folder of Parquet files, but {output} ends in {suffix} "
                         f"like a file: name the folder without it (e.g. {name[:-len(suffix)]})")


def _inside(input: str, folder: str) -> bool:
    if storage.is_remote(input) or storage.is_remote(folder):
        return storage.without_query(input).startswith(storage.without_query(folder).rstrip("/") + "/")
    return Path(folder).resolve() in Path(input).resolve().parents


def _remote_entries(remote: storage.RemotePath) -> list:
    with storage.remote_errors(remote.uri, OutputError):
        return remote.fs.get_file_info(FileSelector(remote.path, recursive=False))


def _clear_output(output: str) -> None:
    """Empty the output folder (--overwrite), so that no part file of an earlier run survives."""
    if storage.is_remote(output):
        remote = storage.resolve(output, OutputError)
        if remote.is_dir(OutputError):
            with storage.remote_errors(output, OutputError):
                remote.fs.delete_dir_contents(remote.path)
    elif Path(output).is_dir():
        for entry in Path(output).iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _filesystem_and_path(path: str):
    """What Ray Data's read/write functions take: a pyarrow filesystem (None: local) and a path in it."""
    if storage.is_remote(path):
        remote = storage.resolve(path)
        return remote.fs, remote.path
    return None, str(Path(path).resolve())


# -- the actor ------------------------------------------------------------------------------------
class TagBatches:
    """A Ray Data actor: one Tagger (one onnxruntime session) loaded in `__init__`, used for every batch."""

    def __init__(self, model_ref: list, engine_opts: EngineOptions, text_column: str, id_name: str,
                 tokens_column: str | None = None, output_opts: OutputOptions | None = None,
                 kept_names: tuple[str, ...] = (), counter=None):
        import ray

        from fasttag.tagger import Tagger

        # The export folder travels through Ray's object store: workers on other machines need no copy of it.
        files = ray.get(model_ref[0])
        folder = tempfile.mkdtemp(prefix="fasttag-model-")
        try:
            for name, data in files.items():
                Path(folder, name).write_bytes(data)
            self.tagger = Tagger.load(folder, engine_opts)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the session and tokenizer are in memory now
        self.text_column = text_column
        self.tokens_column = tokens_column
        self.id_name = id_name
        self.shaper = self.tagger.shaper(output_opts, pretokenized=tokens_column is not None)
        self.kept_names = list(kept_names)
        self.counter = counter
        self._ray = ray
        # each worker its own duplicate window, over the batches it tags (see fasttag.dedup)
        rows = window_rows(engine_opts.dedup_window, self.tagger.bundle.precision)
        self.window = DuplicateWindow(rows, pretokenized=tokens_column is not None) if rows else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.tokens_column:
            values = _checked_token_lists(batch, self.tokens_column, self.id_name)
        else:
            values, _ = texts_from_column(batch.column(self.text_column), self.text_column)
        pretokenized = self.tokens_column is not None
        tagged = self.tagger.finish_rows(self.tagger.prepare_rows(values, pretokenized, self.window))
        kept = batch.select(self.kept_names) if self.kept_names else None
        table, stats = self.shaper.shape(self.id_name, batch.column(self.id_name), kept, tagged.arrays)
        if self.counter is not None:
            self._ray.get(self.counter.add.remote(stats, tagged.duplicates))  # counted before the rows are written
        return table


def _checked_token_lists(batch: pa.Table, column: str, id_name: str) -> list:
    """A batch's token lists; a bad one is an `InputError` naming its row by its id (or row number)."""
    from fasttag.read import token_list_error

    values = batch.column(column).to_pylist()
    for i, value in enumerate(values):
        if value is not None and (why := token_list_error(value)):
            raise InputError(f"tokens column {column!r}, the row with {id_name} {batch.column(id_name)[i].as_py()!r}: "
                             f"{why}; --engine local can skip such rows (--on-error skip)")
    return values


def _model_files(engine_opts: EngineOptions, tokens_column: str | None = None,
                 output_opts: OutputOptions | None = None) -> tuple[dict[str, bytes], Shaper, str]:
    """The export folder's files, the shaper of the results and their name (entity, word, tagged token), once
    the model and options proved loadable here.

    (A bad model or option is then one line, not a worker's traceback.)
    """
    from fasttag.tagger import Tagger

    tagger = Tagger.load(options=engine_opts.replace(device="cpu", threads=1, streams=1))
    if tokens_column:
        tagger.check_pretokenized()
    shaper = tagger.shaper(output_opts, pretokenized=tokens_column is not None)
    name = "entity" if tokens_column and tagger.level == "entities" else (
        {"entities": "entity", "words": "word", "tokens": "tagged token"}[tagger.level])
    path = tagger.bundle.path
    del tagger
    return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()}, shaper, name


# -- the run --------------------------------------------------------------------------------------
def run_ray(
    engine_opts: EngineOptions,
    input: str,
    output: str,
    text_column: str = "text",
    id_column: str | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    batch_rows: int = 2048,
    options: RayOptions | None = None,
    quiet: bool = False,
    tokens_column: str | None = None,
    output_opts: OutputOptions | None = None,
) -> RaySummary:
    """Tag every row of `input` into the Parquet folder `output` on Ray; same rows as `fasttag.run.run`
    (`output_opts`: the kept columns, filters and layout, as there).

    Each worker runs one session (`engine_opts.streams` is ignored) on `engine_opts.threads` threads (default 1).
    With `tokens_column`, each row's token list is tagged instead of its text (as `fasttag.run.run` does).
    """
    options = options or RayOptions()
    engine_opts = engine_opts.replace(threads=engine_opts.threads or 1, streams=1)
    check_ray_paths(input, output, overwrite)
    ray = import_ray()
    output_opts = output_opts or OutputOptions()
    files, shaper, result_name = _model_files(engine_opts, tokens_column, output_opts)
    started_here = False
    with _ray_logs(quiet):
        if not ray.is_initialized():
            address = options.address or (None if os.environ.get("RAY_ADDRESS") else "local")
            on_sigterm = signal.getsignal(signal.SIGTERM)
            try:
                ray.init(address=address, logging_level=logging.CRITICAL if quiet else logging.WARNING,
                         log_to_driver=not quiet, include_dashboard=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UsageError(f"cannot join the Ray cluster at {options.address}: {first_line(exc)}") from exc
            if callable(on_sigterm) and threading.current_thread() is threading.main_thread():
                # ray.init replaces a driver's SIGTERM handler with sys.exit(15); `fasttag run`'s (stop as
                # Ctrl-C does, exit 143) is put back
                signal.signal(signal.SIGTERM, on_sigterm)
            started_here = True
        try:
            summary = _run_dataset(ray, files, engine_opts, input, output, tokens_column or text_column, id_column,
                                   limit, overwrite, batch_rows, options, quiet, shaper, tokens_column, output_opts)
            summary.output_opts, summary.result_name = output_opts, result_name
            return summary
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through `fasttag run` (errors.Stopped)
            raise Interrupted(output, hint=f"{output} has no {SUCCESS_FILE}: its part files are not a complete "
                                           "output; rerun the command with --overwrite") from exc
        finally:
            if started_here:
                ray.shutdown()


def _run_dataset(ray, files, engine_opts: EngineOptions, input, output, text_column, id_column, limit, overwrite,
                 batch_rows, options: RayOptions, quiet: bool, shaper: Shaper,
                 tokens_column: str | None = None, output_opts: OutputOptions | None = None) -> RaySummary:
    """The run on Ray: `text_column` (with `tokens_column`, that column: the same name) read and tagged."""
    ctx = ray.data.DataContext.get_current()
    # No progress bars and no "Starting execution ..." lines under --quiet (print_on_execution_start: Ray >= 2.40)
    settings = {"enable_progress_bars": not quiet, "print_on_execution_start": not quiet}
    saved = {name: getattr(ctx, name) for name in settings if hasattr(ctx, name)}
    try:
        for name in saved:
            setattr(ctx, name, settings[name])
        workers = options.workers or _default_workers(ray, options)
        started = time.perf_counter()
        kept = _kept_columns(input, shaper, text_column, id_column)
        ds, id_name, rows, kept_fields = _read(ray, input, text_column, id_column, limit, workers, batch_rows,
                                               tokens_column is not None, kept)
        counter = ray.remote(num_cpus=0)(ShapeCounter).remote()
        if overwrite:
            _clear_output(output)
        fs, path = _filesystem_and_path(output)
        if ds is not None:
            ds = ds.map_batches(
                TagBatches,
                # the workers load the resolved export folder: no hub revision applies to it
                fn_constructor_args=([ray.put(files)], engine_opts.replace(model_dir=None, revision=None), text_column,
                                     id_name),
                fn_constructor_kwargs={"tokens_column": tokens_column, "output_opts": output_opts,
                                       "kept_names": tuple(kept), "counter": counter},
                batch_size=batch_rows,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=_actor_cpus(ray, options, workers),
                num_gpus=options.gpus_per_worker or None,
            )
            try:
                ds.write_parquet(path, filesystem=fs)
            except Exception as exc:  # a task's exception, as Ray re-raises it on the driver
                raise _job_error(exc) from exc
        id_field = output_schema(pa.string() if id_column else None, id_column, []).field(0)
        _finish(output, fs, path, shaper.schema(id_field, kept_fields), empty=ds is None)
        return RaySummary(rows=rows, workers=workers, seconds=time.perf_counter() - started,
                          shape=ray.get(counter.total.remote()), duplicates=ray.get(counter.total_duplicates.remote()))
    finally:
        for name, value in saved.items():
            setattr(ctx, name, value)


# Ray's loggers in the driver: its core, Ray Data (which logs to the console at INFO on its own handler).
RAY_LOGGERS = ("ray", "ray.data")


@contextlib.contextmanager
def _ray_logs(quiet: bool):
    """With `quiet`, nothing from Ray on stderr: no INFO/WARNING lines, no worker output, no C++ log lines.

    Ray's Python loggers are set to CRITICAL. Its C++ core, which ray.init starts in this process, writes
    its own lines to file descriptor 2 (and says so when told to log less through RAY_BACKEND_LOG_LEVEL),
    so fd 2 points at a scratch file until the run ends; a failure is still reported, as one line, after.
    """
    if not quiet:
        yield
        return
    loggers = [logging.getLogger(name) for name in RAY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)  # a failure is fasttag's one error line, not also Ray's log of it
    try:
        with _stderr_fd_to_scratch():
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _stderr_fd_to_scratch():
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to silence
        yield
        return
    try:
        with tempfile.TemporaryFile() as scratch:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(scratch.fileno(), 2)
            try:
                yield
            finally:
                if sys.stderr is not None:
                    sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _default_workers(ray, options: RayOptions) -> int:
    resources = ray.cluster_resources()
    if options.gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // options.gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // options.cpus_per_worker))


def _actor_cpus(ray, options: RayOptions, workers: int) -> float:
    """The CPUs each actor reserves: its threads, but leaving one CPU for Ray Data's read and write tasks.

    Actors hold their CPUs for the whole run; if they held all of them, the read tasks that feed them
    could never be scheduled and the run would wait forever (on a 2-CPU machine with 2 workers, say).
    """
    total = ray.cluster_resources().get("CPU", 1)
    return max(0.0, min(options.cpus_per_worker, (total - 1) / workers))


def _kept_columns(input: str, shaper: Shaper, column: str, id_column: str | None) -> list[str]:
    """The input columns `--keep-columns` names, `all` resolved from the input's first file (or JSONL line)."""
    keep = shaper.options.keep_columns
    if keep != KEEP_ALL:
        shaper.check_kept(list(keep), id_column or "row")
        return list(keep)
    if corpus_format(input) == "parquet":
        import pyarrow.dataset as pads

        fs, path = _filesystem_and_path(str(parquet_files(input)[0]))
        with storage.remote_errors(input, InputError):
            names = pads.dataset(path, filesystem=fs, format="parquet").schema.names
    else:
        from fasttag.formats import JsonlLines, close_lines, open_lines

        fh = open_lines(input)
        try:
            first = next((line.value for line in JsonlLines(fh, input) if isinstance(line.value, dict)), {})
        finally:
            close_lines(fh)
        names = list(first)
    return shaper.kept_names(names, column, id_column)


def _read(ray, input: str, text_column: str, id_column: str | None, limit: int | None, workers: int,
          batch_rows: int, pretokenized: bool = False, kept: list[str] | None = None):
    """The input as numbered blocks: the text (or, `pretokenized`, tokens) column, the id column (or `row`), in
    input order.

    Ray Data reads the input with its own readers, in file order (`preserve_order`), into the object
    store. Each block's row count then gives its first row, so every row is numbered by its position
    in the input, however Ray laid out the blocks and however many workers tag them. Blocks are also
    cut to at most a few thousand rows, so that every worker gets work even from a single file.
    """
    fs, path = _filesystem_and_path(input)
    kept = kept or []
    columns = [text_column] + ([id_column] if id_column and id_column != text_column else [])
    columns += [c for c in kept if c not in columns]
    kept_fields = [pa.field(c, pa.null()) for c in kept]  # JSONL: each block infers its own types
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        if corpus_format(input) == "parquet":
            # The local engine's file list and order (Ray would sort a folder's files differently).
            paths = [_filesystem_and_path(str(f))[1] for f in parquet_files(input)]
            schema = _check_parquet_columns(input, fs, paths[0], columns, pretokenized)
            kept_fields = [schema.field(c) for c in kept]
            ds = ray.data.read_parquet(paths, filesystem=fs, columns=columns, schema=schema)
        else:
            # Lines parsed with the local reader's rules (json.loads; a non-string text counts as empty).
            ds = ray.data.read_text(path, filesystem=fs).map_batches(
                _parse_jsonl, batch_format="pyarrow", fn_kwargs={"text_column": text_column, "id_column": id_column,
                                                                 "where": input, "pretokenized": pretokenized,
                                                                 "kept": kept})
        if limit is not None:
            ds = ds.limit(limit)
        blocks = ds.materialize().to_arrow_refs()
    except Exception as exc:
        raise _job_error(exc, InputError, input) from exc
    finally:
        ctx.execution_options.preserve_order = saved
    count = ray.remote(num_cpus=0)(_num_rows)
    cut = ray.remote(num_cpus=0)(_cut)
    sizes = ray.get([count.remote(b) for b in blocks])
    # One type per kept column for every block (a JSON field null in one block and numbers in another, a Parquet
    # column declared int32 in one file and int64 in another), as the local engine promotes them; else the
    # output folder's files would disagree and could not be read as one table.
    schema = None
    if kept:
        schemas = ray.get([ray.remote(num_cpus=0)(_schema).remote(b) for b in blocks])
        try:
            schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else None
        except (pa.ArrowException, ValueError) as exc:
            raise InputError(f"{input}: a kept column (--keep-columns) holds values of different types in "
                             f"different rows ({first_line(exc)})") from exc
        if schema is not None:
            kept_fields = [schema.field(c) for c in kept]
    total = sum(sizes)
    piece_rows = max(batch_rows, -(-total // (workers * 16)))
    pieces, first = [], 0
    for block, n in zip(blocks, sizes, strict=True):
        for start in range(0, n, piece_rows):
            length = min(piece_rows, n - start)
            pieces.append(cut.remote(block, start, length, None if id_column else first + start, schema))
        first += n
    return (ray.data.from_arrow_refs(pieces) if pieces else None), (id_column or "row"), total, kept_fields


def _parse_jsonl(batch: pa.Table, text_column: str, id_column: str | None, where: str, pretokenized: bool = False,
                 kept: list[str] | None = None) -> pa.Table:
    """JSONL lines (Ray's `text` column) into the text (or tokens) and id columns, as `fasttag.read` parses them."""
    from fasttag.read import token_list_error

    texts: list = []
    ids: list = []
    kept = [c for c in kept or () if c not in (text_column, id_column)]
    kept_values: list[list] = [[] for _ in kept]
    for text_line in batch.column("text").to_pylist():
        line = parse_jsonl_line(text_line)
        if line is None:
            continue
        if line.error is not None:
            why = line.exc.msg if isinstance(line.exc, json.JSONDecodeError) else line.error
            raise InputError(f"{where}: malformed JSON ({why}); --engine local reports the line and can skip it "
                             "(--on-error skip)") from line.exc
        obj = line.value
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object on every line, got {type(obj).__name__}")
        what = "tokens" if pretokenized else "text"
        if text_column not in obj:
            found = ", ".join(list(obj)[:20]) or "none"
            raise InputError(
                f"{where}: no {what} field {text_column!r}; fields found: {found} (choose one with --{what}-column)")
        text = obj[text_column]
        if pretokenized:
            if text is not None and (problem := token_list_error(text)):
                raise InputError(f"{where}: tokens field {text_column!r}: {problem}; --engine local reports the "
                                 "line and can skip it (--on-error skip)")
            texts.append(text)
        else:
            texts.append(text if isinstance(text, str) else None)
        if id_column:
            ids.append(obj.get(id_column))
        for values, name in zip(kept_values, kept, strict=True):
            values.append(obj.get(name))
    columns = {text_column: pa.array(texts, type=pa.large_list(pa.large_string()) if pretokenized else pa.string())}
    if id_column and id_column != text_column:
        columns[id_column] = id_array(ids, id_column)
    columns.update(kept_json_columns(where, kept, kept_values))
    return pa.table(columns)


def _num_rows(table: pa.Table) -> int:
    return table.num_rows


def _schema(table: pa.Table) -> pa.Schema:
    return table.schema


def _cut(table: pa.Table, start: int, length: int, first_row: int | None, schema: pa.Schema | None = None
         ) -> pa.Table:
    """Rows [start, start + length) of a block, cast to `schema` when given; with `first_row`, numbered from it in
    a `row` column."""
    from fasttag.write import conformed

    piece = table.slice(start, length)
    if schema is not None:
        piece = conformed(piece, schema)
    if first_row is not None:
        piece = piece.append_column("row", pa.array(range(first_row, first_row + length), type=pa.int64()))
    return piece


def _check_parquet_columns(input: str, fs, path: str, columns: list[str], pretokenized: bool = False) -> pa.Schema:
    """The schema to read `columns` with (the text as `large_string`, whatever each file's text type: files of
    dictionary and string_view text cannot be joined as they are; token lists as `large_list<large_string>`);
    a missing column is named here, in one line, rather than deep inside a Ray task."""
    import pyarrow.dataset as pads

    from fasttag.read import is_token_list_type

    with storage.remote_errors(input, InputError):
        schema = pads.dataset(path, filesystem=fs, format="parquet").schema
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise InputError(f"{input}: no column {missing[0]!r}; columns found: {', '.join(schema.names)}")
    ttype = schema.field(columns[0]).type
    if pretokenized:
        if not is_token_list_type(ttype):
            raise InputError(f"{input}: tokens column {columns[0]!r} has type {ttype}, expected a list of strings")
        read_as = pa.large_list(pa.large_string())
    elif not is_text_type(ttype):  # string, large_string, string_view, dictionary: as the local reader
        raise InputError(f"{input}: text column {columns[0]!r} has type {ttype}, expected string")
    else:
        read_as = pa.large_string()
    return pa.schema([pa.field(columns[0], read_as)] + [schema.field(c) for c in columns[1:]])


def _finish(output: str, fs, path: str, schema: pa.Schema, empty: bool) -> None:
    """Mark the folder complete with `_SUCCESS`; an empty input still gives a Parquet file with the schema."""
    fs = fs or LocalFileSystem()
    with storage.remote_errors(output, OutputError):
        fs.create_dir(path, recursive=True)
        if empty:
            with fs.open_output_stream(f"{path}/part-empty.parquet", compression=None) as fh:
                pq.write_table(schema.empty_table(), fh)
        with fs.open_output_stream(f"{path}/{SUCCESS_FILE}", compression=None) as fh:
            fh.write(b"")


def _cause(exc: BaseException) -> BaseException:
    """The exception a Ray task raised, under the layers Ray wraps it in: the first fasttag error, else the root.

    A fasttag error's own cause (the JSONDecodeError under "malformed JSON", say) is not what the user is told.
    """
    seen = set()
    while id(exc) not in seen and not isinstance(exc, FasttagError):
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _job_error(exc: BaseException, default: type[FasttagError] = FasttagError, where: str = "") -> FasttagError:
    """One line for an exception out of Ray: the fasttag error a worker raised, or the root cause."""
    cause = _cause(exc)
    if isinstance(cause, FasttagError):
        return _one_line(cause)
    # An actor that failed to start reaches the driver as ActorDiedError, the worker's traceback as text.
    layer: BaseException | None = exc
    while layer is not None:
        found = re.findall(r"^fasttag\.errors\.(\w+): (.+)$", str(layer), re.M)
        if found:
            name, message = found[-1]
            cls = getattr(errors, name, FasttagError)
            return _one_line(cls(message) if cls is not errors.MissingExtraError else FasttagError(message))
        layer = layer.__cause__ or layer.__context__
    if where:
        return default(f"{where}: {type(cause).__name__}: {first_line(cause)}")
    return default(f"the Ray job failed: {type(cause).__name__}: {first_line(cause)}")


def _one_line(exc: FasttagError) -> FasttagError:
    """A fasttag error raised in a worker, of the same class, as one line (Ray appends the remote traceback)."""
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    error = type(exc).__new__(type(exc))
    Exception.__init__(error, first_line(message) or type(exc).__name__)
    return error
