"""Duplicates tagged once: `fasttag run` on a corpus where a share of rows repeat earlier ones, against the same
number of distinct rows, interleaved in one process (target: >= 1.3x with 30% repeated rows).

    python bench/dedup.py [--model EXPORT] [--rows 4000] [--repeat 0.3] [--rounds 3] [--window 8192]

Both corpora are generated (fasttag.synthetic, the same length distribution); the repeated rows copy a
row among the previous `--reach` rows. The same Tagger runs both, with the duplicate window on; the
output of the repeated corpus is checked against a run with the window off (float models: equal
tables; int8: the same number of rows).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def corpora(rows: int, repeat: float, reach: int, seed: int) -> tuple[list[str], list[str]]:
    from fasttag import synthetic

    fresh = synthetic.sentences(2 * rows, seed=seed)
    distinct = fresh[:rows]
    rng = np.random.default_rng(seed + 1)
    repeated: list[str] = []
    new = iter(fresh[rows:])
    for i in range(rows):
        if i and rng.random() < repeat:
            repeated.append(repeated[i - 1 - int(rng.integers(min(reach, i)))])
        else:
            repeated.append(next(new))
    return distinct, repeated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="export folder (default: the embedded default model)")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--repeat", type=float, default=0.3, help="share of rows that repeat an earlier row")
    ap.add_argument("--reach", type=int, default=4000, help="a repeat copies one of this many previous rows")
    ap.add_argument("--window", type=int, default=8192, help="--dedup-window of the timed runs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from fasttag import Tagger
    from fasttag.run import run

    distinct, repeated = corpora(args.rows, args.repeat, args.reach, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, texts in (("distinct", distinct), ("repeated", repeated)):
            paths[name] = str(Path(tmp) / f"{name}.parquet")
            pq.write_table(pa.table({"text": texts}), paths[name])
        tagger = Tagger.load(args.model, dedup_window=args.window, threads=args.threads)
        out = str(Path(tmp) / "out.parquet")
        run(tagger, paths["distinct"], out, overwrite=True)  # warm-up
        seconds: dict[str, list[float]] = {"distinct": [], "repeated": []}
        duplicates = 0
        for _ in range(args.rounds):
            for name in ("distinct", "repeated"):
                started = time.perf_counter()
                summary = run(tagger, paths[name], out, overwrite=True)
                seconds[name].append(time.perf_counter() - started)
                if name == "repeated":
                    duplicates = summary.duplicates
        check = str(Path(tmp) / "check.parquet")
        run(tagger, paths["repeated"], out, overwrite=True)
        run(Tagger.load(args.model, dedup_window=0, threads=args.threads), paths["repeated"], check, overwrite=True)
        same = pq.read_table(out).equals(pq.read_table(check))
    d, r = np.median(seconds["distinct"]), np.median(seconds["repeated"])
    print(f"model: {tagger.bundle.describe()} on {tagger.provider}, {tagger.threads} threads, {tagger.streams} streams")
    print(f"{args.rows:,} rows; repeated corpus: {duplicates:,} duplicate rows ({duplicates / args.rows:.0%}) "
          f"tagged once (--dedup-window {args.window})")
    print(f"distinct: {d:.2f}s, repeated: {r:.2f}s (medians of {args.rounds} interleaved rounds)")
    print(f"same output as without the window: {same}"
          + ("" if same or tagger.bundle.precision != "int8" else " (int8: scores depend on the batch)"))
    print(f"speed ratio repeated / distinct: {d / r:.2f}x (target >= 1.3x)")
    if not same and tagger.bundle.precision != "int8":
        sys.exit("the output with the window differs from the output without it")


if __name__ == "__main__":
    main()
