"""Cost of run's output options (`fasttag.shape`) against the plain Python a user would write instead.

On synthetic results (ROWS rows of up to 8 entities, kept columns), times in the same process:

  python-loop   to_pylist, filter by --min-score / --labels and explode in Python, from_pylist (the baseline)
  shape         Shaper.shape with the same filters and --layout flat (Arrow and numpy)
  shape-nested  Shaper.shape with the filters only (--layout nested)

and prints rows/s and each one's speed as a ratio to the baseline, after checking that both give the same rows.

    python bench/shape.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from fasttag.entities import ENTITIES_TYPE
from fasttag.options import OutputOptions
from fasttag.shape import Shaper

LABELS = ["LOC", "MISC", "ORG", "PER"]
FLOORS = {"PER": 0.9}
DEFAULT = 0.5
KEEP = {"PER", "LOC", "ORG"}


def synthetic(rows: int, seed: int = 0) -> tuple[pa.Array, pa.Table, pa.ListArray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 9, rows)
    n = int(counts.sum())
    start = rng.integers(0, 500, n).astype(np.int32)
    items = pa.StructArray.from_arrays(
        [pa.array(start), pa.array(start + rng.integers(1, 20, n).astype(np.int32)),
         pa.array(LABELS, type=pa.string()).take(pa.array(rng.integers(0, len(LABELS), n))),
         pa.array(rng.random(n, dtype=np.float32)), pa.array(np.full(n, "Ada Lovelace", dtype=object))],
        fields=list(ENTITIES_TYPE.value_type))
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    results = pa.ListArray.from_arrays(pa.array(offsets), items, type=ENTITIES_TYPE)
    kept = pa.table({"url": pa.array([f"https://example.org/{i}" for i in range(rows)]),
                     "year": pa.array(rng.integers(1990, 2025, rows).astype(np.int16))})
    return pa.array(np.arange(rows, dtype=np.int64)), kept, results


def python_loop(ids: pa.Array, kept: pa.Table, results: pa.ListArray) -> pa.Table:
    out = []
    for i, url, year, row in zip(ids.to_pylist(), kept.column("url").to_pylist(), kept.column("year").to_pylist(),
                                 results.to_pylist(), strict=True):
        for e in row:
            if e["label"] in KEEP and e["score"] >= FLOORS.get(e["label"], DEFAULT):
                out.append({"row": i, "url": url, "year": year, **e})
    schema = pa.schema([pa.field("row", pa.int64()), kept.schema.field("url"), kept.schema.field("year"),
                        *ENTITIES_TYPE.value_type])
    return pa.Table.from_pylist(out, schema=schema)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    ids, kept, results = synthetic(args.rows)
    opts = dict(keep_columns="url,year", min_score="0.5,PER=0.9", labels="PER,LOC,ORG")
    flat = Shaper(OutputOptions(**opts, layout="flat"), "entities", LABELS)
    nested = Shaper(OutputOptions(**opts), "entities", LABELS)
    systems = {
        "python-loop": lambda: python_loop(ids, kept, results),
        "shape": lambda: flat.shape("row", ids, kept, {"entities": results})[0],
        "shape-nested": lambda: nested.shape("row", ids, kept, {"entities": results})[0],
    }
    assert systems["shape"]().equals(systems["python-loop"]()), "the shaper and the baseline disagree"
    best: dict[str, float] = {}
    for _ in range(args.repeat):  # alternate the systems within each round
        for name, fn in systems.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
    base = best["python-loop"]
    print(f"{args.rows:,} rows, {len(results.values):,} entities; best of {args.repeat}")
    for name, seconds in best.items():
        print(f"{name:13s} {args.rows / seconds:14,.0f} rows/s  {base / seconds:6.1f}x python-loop")


if __name__ == "__main__":
    main()
