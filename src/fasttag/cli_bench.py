"""`fasttag bench`."""

from __future__ import annotations

import json

import click

from fasttag.bench import COMPARISONS
from fasttag.options import EngineOptions, engine_option, engine_options
from fasttag.synthetic import CORPORA


@click.command()
@click.argument("input", metavar="[INPUT]", required=False)
@engine_options
@click.option("--text-column", default="text", show_default=True, help="Column (or JSON field) holding the text.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N rows of INPUT.")
@click.option("--corpus", "kind", type=click.Choice(CORPORA), default="sentences", show_default=True,
              help="Without INPUT: the generated corpus, news-like sentences or ~300-word documents.")
@click.option("--docs", type=click.IntRange(min=1), default=None,
              help="Without INPUT: documents to generate (default: 2000 sentences or 150 documents; --tune: 600 or "
                   "80).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated corpus.")
@click.option("--passes", type=click.IntRange(min=1), default=5, show_default=True, help="Timed passes.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed passes first.")
@click.option("--compare", type=click.Choice(COMPARISONS), default=None,
              help="pipeline: also time the transformers token-classification pipeline (PyTorch) on the same corpus "
                   "and threads, and print fasttag's speed over it (needs the 'train' extra and the checkpoint); "
                   "onnxruntime: the same sessions alone on the same batches, and fasttag's share of that limit.")
@click.option("--checkpoint", default=None, metavar="DIR",
              help="The PyTorch checkpoint (or hub id) --compare pipeline runs (default: --model, when it names one).")
@click.option("--tune", is_flag=True,
              help="Sweep batch tokens, rows per batch, streams and threads (the defaults included) and save the "
                   "fastest for this machine and model architecture, for 'fasttag run' to use.")
@click.option("--tune-seconds", type=click.FloatRange(min=1), default=120, show_default=True,
              help="--tune's time budget, about (a last check of the best against the defaults may run past it).")
@click.option("--ignore-tuned", is_flag=True,
              help="Measure the built-in defaults, not the setting --tune saved (used, as by 'fasttag run', when no "
                   "--batch-tokens, --streams or --threads is given).")
@click.option("--json", "json_path", default=None, metavar="FILE",
              help="Also write the figures as JSON to FILE, replacing it if it exists (- for stdout, instead of the "
                   "table).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@engine_option("dedup_window")
def bench(input, engine_opts: EngineOptions, text_column, limit, kind, docs, seed, passes, warmup, compare,
          checkpoint, tune, tune_seconds, ignore_tuned, json_path, quiet, dedup_window):
    """Measure how fast 'fasttag run' tags on this machine: tokens/s, words/s and documents/s with a 95%
    interval, the share of each stage (read, tokenize, infer, decode, write), the padding, and the machine
    (CPU, cores, AVX2/AVX-512/VNNI/AMX, onnxruntime and its provider).

    INPUT is a corpus as 'fasttag run' takes it (a file, not stdin); without it a generated corpus is used
    (--corpus, --docs, --seed: the same corpus everywhere). After --warmup untimed passes, each of --passes
    runs the whole corpus through the run path, from a Parquet file to a Parquet file. With --tune, a sweep
    of about --tune-seconds finds the fastest batch setting for this machine and model architecture and
    saves it in the user's config folder (FASTTAG_CONFIG_DIR overrides it); 'fasttag run' (and 'fasttag
    bench' itself) then uses it when no --batch-tokens, --streams or --threads is given, and says so in its
    first line. A setting is saved only if it beat the defaults measured in the same sweep (else the
    defaults are).

    \b
    Example:
      fasttag bench
      fasttag bench --corpus documents --model my-export --json bench.json
      fasttag bench corpus.parquet --limit 5000 --compare pipeline --checkpoint ckpt
      fasttag bench --compare onnxruntime
      fasttag bench --tune --tune-seconds 60
    """
    from fasttag.bench import bench as run_bench
    from fasttag.bench import tune as run_tune
    from fasttag.errors import UsageError

    if input == "-":
        raise UsageError("fasttag bench reads INPUT several times: give a file, not stdin")
    to_stdout = json_path == "-"
    if json_path and not to_stdout:  # before the passes: the input, a folder, a missing folder (replaced if it exists)
        from fasttag.write import check_report_path

        check_report_path(json_path, "--json", True, [input])
    engine_opts = engine_opts.replace(dedup_window=dedup_window)

    def log(message: str) -> None:
        if not quiet:
            click.echo(f"fasttag: {message}", err=True)

    if tune:
        if compare:
            raise UsageError("--tune and --compare are separate runs: choose one")
        result = run_tune(engine_opts, input, text_column, limit, kind, docs, seconds=tune_seconds, seed=seed,
                          log=log)
        lines, data = result.lines(), result.as_dict()
    else:
        bench_result = run_bench(engine_opts.replace(tuned=not ignore_tuned), input, text_column, limit, kind, docs,
                                 passes, warmup, seed, compare, checkpoint, log=log)
        lines, data = bench_result.lines(), bench_result.as_dict()
    if not to_stdout:
        for line in lines:
            click.echo(line)
    if json_path:
        text = json.dumps(data, indent=2)
        if to_stdout:
            click.echo(text)
        else:
            from fasttag.write import write_text_whole

            write_text_whole(json_path, text + "\n")  # whole or not at all
