"""Soak: N short rows through one `fasttag run` subprocess; steady throughput, flat memory, no row lost.

    python bench/soak.py [--rows 2000000] [--model EXPORT] [--chunk-rows 2048] [--format parquet|jsonl]

While the run works, its parts folder and /proc/PID/status are sampled: each part's completion time
(its modification time) gives the throughput of every tenth of the input, and VmRSS gives memory
over time. Printed: rows/s per tenth and the last tenth's ratio to the first (target: >= 0.90),
RSS at the end of each tenth and the last tenth's ratio to the first (target: <= 1.10), the peak
(VmHWM), and whether the output holds every input row once, in order (ids 0..N-1). Record the
figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpus import varied_sentences  # noqa: E402

FASTTAG = [sys.executable, "-c", "from fasttag.cli import main; main()"]


def write_corpus(path: Path, rows: int) -> None:
    """`rows` short rows, ids 0..rows-1, written in pieces to bound memory: CoNLL-like sentences, cycled, each
    ending with its row number, so that every row is distinct (the duplicate window tags a repeat only once)."""
    sentences = varied_sentences(10_000, seed=3)
    piece = 100_000
    if path.suffix == ".parquet":
        schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, rows, piece):
                ids = range(start, min(rows, start + piece))
                texts = [f"{sentences[i % len(sentences)]} ({i})" for i in ids]
                writer.write_table(pa.table({"id": list(ids), "text": texts}, schema=schema), row_group_size=50_000)
        return
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(json.dumps({"id": i, "text": f"{sentences[i % len(sentences)]} ({i})"}) + "\n")


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a live process, in kB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--model", default=None, help="export folder (default: the embedded default model)")
    ap.add_argument("--chunk-rows", type=int, default=2048)
    ap.add_argument("--format", choices=("parquet", "jsonl"), default="parquet", help="of the input")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fasttag-soak-") as tmp:
        root = Path(tmp)
        src = root / f"in.{args.format}"
        t0 = time.perf_counter()
        write_corpus(src, args.rows)
        print(f"corpus: {args.rows:,} rows, {src.stat().st_size / 1e6:,.1f} MB ({time.perf_counter() - t0:.0f}s)",
              flush=True)
        out = root / "out.parquet"
        parts_dir = root / f".{out.name}.fasttag-parts"
        cmd = FASTTAG + ["run", str(src), "-o", str(out), "--id-column", "id", "--chunk-rows", str(args.chunk_rows),
                         "-q", *(["--model", args.model] if args.model else [])]
        started = time.time()
        proc = subprocess.Popen(cmd)
        finished: dict[int, float] = {}  # part index -> its modification time
        samples: list[tuple[float, int]] = []  # (seconds since start, VmRSS kB)
        peak = 0
        while proc.poll() is None:
            st = status(proc.pid)
            if "VmRSS" in st:
                samples.append((time.time() - started, st["VmRSS"]))
                peak = max(peak, st.get("VmHWM", 0))
            try:
                for part in parts_dir.glob("part-*.parquet"):
                    index = int(part.name.split("-")[1].split(".")[0])
                    if index not in finished:
                        finished[index] = part.stat().st_mtime
            except OSError:
                pass  # the folder is removed once the parts are joined
            time.sleep(args.interval)
        wall = time.time() - started
        if proc.returncode != 0:
            sys.exit(f"fasttag run failed (exit {proc.returncode})")
        ids = pq.read_table(out, columns=["id"]).column("id").to_numpy()
        complete = len(ids) == args.rows and bool((ids == range(args.rows)).all()) if len(ids) == args.rows else False
        print(f"run: {wall:.0f}s wall; rows in {args.rows:,}, rows out {len(ids):,}; every row once, in order: "
              f"{complete}", flush=True)
        n_parts = -(-args.rows // args.chunk_rows)
        missing = n_parts - len(finished)
        if missing:
            print(f"({missing} parts were joined before they were sampled: raise the rate with --interval)")
        print("tenth | rows/s | RSS MB at its end")
        rates, rss = [], []
        previous = started
        for k in range(10):
            last_row = (k + 1) * args.rows // 10 - 1
            part = last_row // args.chunk_rows
            done = finished.get(part)
            if done is None:
                continue
            first_row = k * args.rows // 10
            rate = (last_row + 1 - first_row) / max(done - previous, 1e-9)
            previous = done
            at = [kb for t, kb in samples if t <= done - started]
            rates.append(rate)
            rss.append((at[-1] if at else 0) / 1024)
            print(f"{k + 1:>5} | {rate:>8,.0f} | {rss[-1]:,.0f}")
        if len(rates) >= 2:
            print(f"throughput last tenth / first tenth: {rates[-1] / rates[0]:.3f} (target >= 0.90; the first tenth "
                  "includes loading the model)")
            print(f"RSS last tenth / first tenth: {rss[-1] / max(rss[0], 1e-9):.3f} (target <= 1.10); "
                  f"peak RSS {peak / 1024:,.0f} MB")
        if not complete:
            sys.exit("rows were lost or duplicated")


if __name__ == "__main__":
    main()
