"""Peak RSS of `fasttag run` on a corpus and on one 10x larger: memory must not grow with the corpus.

    python bench/rss.py --model EXPORT [--rows 20000] [--factor 10] [--dedup-window 8192] [--generated]
    python bench/rss.py --generated --sizes 5000,20000,50000,200000   # where the peak stops growing

Each run is a fresh `fasttag run` subprocess; peak RSS is its ru_maxrss. Prints both figures and
the ratio (target: at most 1.10). The duplicate window is on (--dedup-window, 8,192 rows, also for an int8
model); the CoNLL corpus repeats its sentences cyclically, so with the window on nearly every row past the first
pass is a copy; --generated uses distinct generated sentences instead (no ../shared data needed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

RUNNER = (
    "import resource, sys; from fasttag.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
    "print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)\n"
)


def peak_rss(args: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, check=True)
    line = [x for x in out.stderr.splitlines() if x.startswith("PEAK_RSS_MB")][-1]
    return float(line.split()[1]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="export folder (default: the embedded default model)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--dedup-window", type=int, default=8192, help="0: off")
    ap.add_argument("--generated", action="store_true", help="distinct generated sentences, not CoNLL's")
    ap.add_argument("--sizes", default=None,
                    help="comma-separated row counts, each its own run: the peak at each, each against the first")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [args.rows, args.rows * args.factor]

    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpora import conll_sentences, require_data

    if args.generated:
        from fasttag.synthetic import sentences

        base = sentences(max(sizes))
    else:
        require_data()
        base = conll_sentences()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in sizes:
            texts = [base[i % len(base)] for i in range(n)]
            src = Path(tmp) / f"in-{n}.parquet"
            pq.write_table(pa.table({"text": texts}), src, row_group_size=10_000)
            cmd = ["run", str(src), "-o", str(Path(tmp) / f"out-{n}.parquet"), "-q", "--dedup-window",
                   str(args.dedup_window)]
            if args.model:
                cmd += ["--model", args.model]
            results[n] = peak_rss(cmd)
            print(f"{n:>9,} rows: peak RSS {results[n][0]:,.0f} MB ({results[n][1]:.0f}s)")
        if args.sizes:
            first = sizes[0]
            for n in sizes[1:]:
                print(f"{n:>9,} rows / {first:,} rows peak RSS: {results[n][0] / results[first][0]:.3f}"
                      f"{' (target <= 1.10)' if n == 10 * first else ''}")
            return
        small, large = (results[n][0] for n in sorted(results))
        print(f"ratio {args.factor}x corpus / 1x corpus peak RSS: {large / small:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
