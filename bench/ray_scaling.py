"""Throughput of `fasttag run --engine ray` with 1, 2, ... workers against the local engine, in one run.

    python bench/ray_scaling.py --model EXPORT [--rows 4000] [--workers 1,2]

Every system tags the same Parquet corpus (CoNLL-2003 test sentences from ../shared/data when
present, else generated varied sentences) end to end, Parquet in and Parquet out:

  local-all   the local engine, onnxruntime on all cores (the default `fasttag run`)
  local-1     the local engine on one thread: what one Ray worker has
  ray-N       --engine ray with N workers of one thread each, on a local Ray started once
              beforehand (its start-up is not timed; each run's actor start and model load are)

It prints seconds, rows/s, tokens/s and each system's ratio to local-all, then Ray's fixed cost
per run: the time of a 2-row run, which no corpus size amortizes away.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))


def sentences(n: int) -> tuple[list[str], str]:
    from corpora import CONLL_TEST, conll_sentences

    if CONLL_TEST.exists():
        pool, source = conll_sentences(), "CoNLL-2003 test sentences"
    else:
        from corpus import varied_sentences

        pool, source = varied_sentences(n, seed=1), "generated varied sentences (tests/corpus.py)"
    return [pool[i % len(pool)] for i in range(n)], source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Export folder (default: the embedded default model).")
    parser.add_argument("--rows", type=int, default=4000, help="Sentences in the corpus.")
    parser.add_argument("--workers", default="1,2", help="Comma-separated Ray worker counts to measure.")
    parser.add_argument("--chunk-rows", type=int, default=512, help="Rows per chunk (local) and per batch (ray).")
    args = parser.parse_args()

    import ray

    from fasttag.model import ModelBundle
    from fasttag.options import EngineOptions
    from fasttag.ray_engine import RayOptions, run_ray
    from fasttag.run import run
    from fasttag.tagger import Tagger

    cores = os.cpu_count() or 1
    texts, source = sentences(args.rows)
    bundle = ModelBundle.load(args.model)
    work = Path(tempfile.mkdtemp(prefix="fasttag-ray-bench-"))
    corpus = work / "corpus.parquet"
    pq.write_table(pa.table({"text": texts}), corpus)
    tokens = Tagger.load(args.model, threads=cores).tokenize(texts).n_tokens
    print(f"model {bundle.path} ({bundle.precision}); {len(texts):,} {source}, {tokens:,} tokens; {cores} cores",
          flush=True)

    results: list[tuple[str, float]] = []
    for name, threads in (("local-all", cores), ("local-1", 1)):
        tagger = Tagger.load(args.model, threads=threads)
        tagger.tag(texts[:64])  # warm-up
        started = time.perf_counter()
        run(tagger, str(corpus), str(work / f"{name}.parquet"), overwrite=True, chunk_rows=args.chunk_rows)
        results.append((name, time.perf_counter() - started))
        print(f"  {name}: {results[-1][1]:.1f}s", flush=True)

    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    ray_start = time.perf_counter() - started
    try:
        small = work / "small.parquet"
        pq.write_table(pa.table({"text": texts[:2]}), small)
        started = time.perf_counter()
        run_ray(EngineOptions(model_dir=args.model, threads=1), str(small), str(work / "small-out"), overwrite=True,
                options=RayOptions(workers=1), quiet=True)
        fixed = time.perf_counter() - started
        for workers in [int(w) for w in args.workers.split(",")]:
            started = time.perf_counter()
            run_ray(EngineOptions(model_dir=args.model, threads=1), str(corpus), str(work / f"ray-{workers}"),
                    overwrite=True, batch_rows=args.chunk_rows, options=RayOptions(workers=workers), quiet=True)
            results.append((f"ray-{workers}", time.perf_counter() - started))
            print(f"  ray-{workers}: {results[-1][1]:.1f}s", flush=True)
    finally:
        ray.shutdown()

    base = results[0][1]
    print(f"\n{'system':<10} {'seconds':>8} {'rows/s':>9} {'tokens/s':>10} {'vs local-all':>13}")
    for name, seconds in results:
        print(f"{name:<10} {seconds:>8.1f} {len(texts) / seconds:>9,.0f} {tokens / seconds:>10,.0f} "
              f"{base / seconds:>12.2f}x")
    by_name = dict(results)
    if "ray-1" in by_name and "ray-2" in by_name:
        print(f"\nray-2 / ray-1: {by_name['ray-1'] / by_name['ray-2']:.2f}x")
    print(f"Ray start (once, not timed above): {ray_start:.1f}s; "
          f"fixed cost of a Ray run (2 rows, 1 worker): {fixed:.1f}s")


if __name__ == "__main__":
    main()
