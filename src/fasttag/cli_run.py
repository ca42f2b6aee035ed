"""`fasttag run`."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator

import click

from fasttag.options import (
    DEFAULT_MAX_TEXT_BYTES,
    ENGINES,
    ON_ERROR,
    EngineOptions,
    OutputOptions,
    engine_option,
    engine_options,
    output_options,
)


@click.command()
@click.argument("input", metavar="INPUT")
@click.option("-o", "--output", required=True, metavar="OUTPUT",
              help="Output .parquet or .jsonl (.jsonl.gz) file, or - for JSONL on stdout; with --engine ray, a folder.")
@engine_options
@click.option("--text-column", default="text", show_default=True, help="Column (or JSON field) holding the text.")
@click.option("--tokens-column", default=None, metavar="NAME",
              help="Tag pre-tokenized rows instead: NAME holds each row's tokens (a list of strings). The output has "
                   "one tag and score per token ('tags', 'scores'; a span task's tags in IOB2) and, for a span task, "
                   "'entities' in token indices.")
@click.option("--id-column", default=None,
              help="Column copied to the output to identify rows (default: 'row', the 0-based row number).")
@output_options
@click.option("--on-error", type=click.Choice(ON_ERROR), default="stop", show_default=True,
              help="Bad JSONL lines: stop with an error, or skip them and record them in OUTPUT.rejects.jsonl "
                   "(with -o -: fasttag.rejects.jsonl in the current folder).")
@click.option("--max-text-bytes", type=click.IntRange(min=0), default=DEFAULT_MAX_TEXT_BYTES, show_default=True,
              metavar="N", help="A text longer than N bytes (UTF-8) is a bad row, as --on-error says (its tokens and "
                                "scores take memory in proportion to it); 0: no limit.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file (or an interrupted run's parts).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run of the same command, keeping its finished chunks.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Tag only the first N rows.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Rows read, length-sorted and written together (the batching look-ahead; the unit of --resume).")
@engine_option("dedup_window")
@click.option("--ignore-tuned", is_flag=True,
              help="Do not use the setting 'fasttag bench --tune' saved for this machine and model (used otherwise "
                   "when no --batch-tokens, --streams or --threads is given; the first line says so).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
              help="local: this process; ray: the workers of a Ray cluster (needs the 'ray' extra).")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="[ray] Join this Ray cluster ('auto': the one 'ray start' runs here); default: start a local Ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="[ray] Actors, each holding one model session (default: the cluster's CPUs / --threads, or GPUs).")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=None,
              help="[ray] GPUs each worker reserves (e.g. 1, or 0.5 to share a GPU between two workers).")
def run(input, output, engine_opts: EngineOptions, output_opts: OutputOptions, text_column, tokens_column, id_column,
        on_error, max_text_bytes, overwrite, resume, limit, chunk_rows, dedup_window, ignore_tuned, quiet, engine,
        ray_address, workers, gpus_per_worker):
    """Tag every row of INPUT and write one row of results per input row to OUTPUT.

    INPUT is a .parquet file or a folder of them, a .jsonl/.ndjson file (optionally .gz), or - for JSONL on
    stdin. Each output row holds the id column (or 'row') and the results, in a column named for the level
    (--level): 'entities' (the default for a span task such as NER), a list of {start, end, label, score,
    text} with character offsets into the input text; 'words' (the default for a tag task such as
    part-of-speech), every word with its tag, in the same form; or 'tokens', every sub-token not tagged O,
    with its index and vocabulary token too. With --tokens-column: 'tags' and 'scores', one per input
    token, and for a span task 'entities' as {token_start, token_end, label, score}.

    --keep-columns copies input columns beside the id; --min-score and --labels drop results; --layout flat
    writes one row per result (id, kept columns, start, end, label, score, text) instead of one per input row.

    INPUT and OUTPUT may be s3://, gs:// or hdfs:// URIs. --engine ray runs on a Ray cluster and writes
    OUTPUT as a folder of Parquet part files (same rows as a local run).

    \b
    Example:
      fasttag run corpus.parquet -o entities.parquet --id-column doc_id
      fasttag run corpus.jsonl -o pos.jsonl --model my-pos-export --level words
      fasttag run sentences.parquet -o tags.parquet --tokens-column tokens
      fasttag run corpus.parquet -o flat.parquet --keep-columns url,date --min-score 0.5,PER=0.9 --layout flat
      cat docs.jsonl | fasttag run - -o - --model my-export > entities.jsonl
      fasttag run s3://bucket/corpus/ -o s3://bucket/entities/ --engine ray --ray-address auto
    """
    from fasttag.run import check_engine_options
    from fasttag.run import run as run_corpus
    from fasttag.shape import check_id_column

    engine_opts = engine_opts.replace(dedup_window=dedup_window, tuned=not ignore_tuned and engine == "local")
    check_id_column(id_column, "--id-column")
    check_engine_options(engine, ray_address=ray_address, workers=workers, gpus_per_worker=gpus_per_worker,
                         resume=resume, on_error=on_error, streams=engine_opts.streams)
    if engine == "ray":
        from fasttag.ray_engine import RayOptions, run_ray

        options = RayOptions(address=ray_address, workers=workers, gpus_per_worker=gpus_per_worker or 0.0,
                             cpus_per_worker=float(engine_opts.threads or 1))
        with stop_on_sigterm(output):
            ray_summary = run_ray(engine_opts, input, output, text_column=text_column, id_column=id_column,
                                  limit=limit, overwrite=overwrite, batch_rows=chunk_rows, options=options,
                                  quiet=quiet, tokens_column=tokens_column, output_opts=output_opts)
        if not quiet:
            click.echo(f"fasttag: {ray_summary.line()}", err=True)
        return
    bar = None
    tokens = 0

    def loaded(tagger) -> None:  # once the paths are checked and the model loaded, before the first row
        nonlocal bar
        if quiet:
            return
        note = f" ({tagger.model.note})" if tagger.model.note else ""
        tuned = f"; {tagger.tuned}" if tagger.tuned else ""
        click.echo(f"fasttag: {tagger.bundle.describe()} on {tagger.provider}{note}{tuned}", err=True)
        if sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(unit=" rows", file=sys.stderr, dynamic_ncols=True)

    def progress(rows: int, n_tokens: int) -> None:
        nonlocal tokens
        if bar is not None:
            tokens += n_tokens
            bar.update(rows)
            bar.set_postfix_str(f"{tokens / max(bar.format_dict['elapsed'], 1e-9):,.0f} tokens/s")

    try:
        with stop_on_sigterm(output, stdin=input == "-"):
            summary = run_corpus(engine_opts, input, output, text_column=text_column, id_column=id_column,
                                 limit=limit, on_error=on_error, overwrite=overwrite, resume=resume,
                                 chunk_rows=chunk_rows, progress=progress, on_loaded=loaded,
                                 tokens_column=tokens_column, output_opts=output_opts,
                                 max_text_bytes=max_text_bytes or None)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        click.echo(f"fasttag: {summary.line()}", err=True)


@contextlib.contextmanager
def stop_on_sigterm(output: str, stdin: bool = False) -> Iterator[None]:
    """SIGTERM (Kubernetes, Slurm, systemd) stops the run as Ctrl-C does, with exit 143; a file-size limit
    (`ulimit -f`) fails the write that passes it, in one line, instead of killing the process (SIGXFSZ)."""
    from fasttag.errors import Interrupted, Stopped, Terminated

    def stop(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one while the run cleans up changes nothing
        raise Stopped

    try:
        saved = {signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
                 signal.SIGXFSZ: signal.signal(signal.SIGXFSZ, signal.SIG_IGN)}
    except ValueError:  # not the main thread (an embedding program's worker): its signals are its own
        yield
        return
    try:
        yield
    except Interrupted as exc:
        if isinstance(exc.__cause__, Stopped):
            raise Terminated(exc) from exc
        raise
    except Stopped as exc:  # before the run's first step (loading the model, checking the paths): nothing was written
        raise Terminated(Interrupted(output, resumable=_left_parts(output), stdin=stdin)) from exc
    except KeyboardInterrupt as exc:  # Ctrl-C there too: said as `run` says it once it has started
        raise Interrupted(output, resumable=_left_parts(output), stdin=stdin) from exc
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _left_parts(output: str) -> bool:
    """Whether an earlier interrupted run of `output` left finished parts for --resume (kept by a run stopped before
    its first step, which wrote nothing)."""
    from fasttag import storage
    from fasttag.errors import UsageError
    from fasttag.write import saved_state

    if output == "-" or storage.is_remote(output):
        return False
    try:
        return saved_state(output) is not None
    except (UsageError, OSError):
        return False
