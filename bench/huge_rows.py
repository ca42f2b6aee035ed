"""One huge document through `fasttag run`: peak RSS when it is tagged, and when --max-text-bytes refuses it.

    python bench/huge_rows.py [--model EXPORT] [--mb 100] [--tag-mb 1,4,16]

For each size in --tag-mb, a single document of that many MB (JSONL and Parquet, plus one short
row) is tagged with no size limit (--max-text-bytes 0): peak RSS grows with the document, which is
why the limit exists. Then the --mb document (default 100 MB) is run with the default limit and
--on-error skip: refused, counted, the short row tagged, in bounded memory. Each run is a fresh
subprocess; peak RSS is its VmHWM. Record the figures in bench/RESULTS.md.
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

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over execve, so a child's would start at this process's RSS,
# which holds the document
RUNNER = (
    "import sys; from fasttag.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
    "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM:')][0].split()[1]\n"
    "print('PEAK_RSS_MB', int(hwm) / 1024, file=sys.stderr)\n"
)


def document(megabytes: float) -> str:
    size = int(megabytes * 1_000_000)
    sentences = " ".join(varied_sentences(2000, seed=5))
    return (sentences * (size // len(sentences) + 1))[:size]


def write_inputs(folder: Path, text: str) -> list[Path]:
    jsonl = folder / "huge.jsonl"
    with open(jsonl, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": text}) + "\n" + json.dumps({"text": "Ada Lovelace lives in London."}) + "\n")
    parquet = folder / "huge.parquet"
    pq.write_table(pa.table({"text": [text, "Ada Lovelace lives in London."]}), parquet)
    return [jsonl, parquet]


def peak_rss(args: list[str]) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True)
    line = [x for x in out.stderr.splitlines() if x.startswith("PEAK_RSS_MB")][-1]
    summary = next((x for x in out.stderr.splitlines() if x.startswith(("fasttag: 2 rows", "fasttag: 1 row",
                                                                         "Error"))), "")
    return float(line.split()[1]), time.perf_counter() - t0, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="export folder (default: the embedded default model)")
    ap.add_argument("--mb", type=float, default=100, help="size of the document refused by the default limit")
    ap.add_argument("--tag-mb", default="1,4", help="sizes (MB) of documents tagged without a limit")
    args = ap.parse_args()
    model = ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for mb in [float(x) for x in args.tag_mb.split(",") if x]:
            for src in write_inputs(root, document(mb)):
                rss, seconds, _ = peak_rss(["run", str(src), "-o", str(root / "out.parquet"), "--overwrite",
                                            "--max-text-bytes", "0", *model])
                print(f"tagged   {mb:>6.1f} MB {src.suffix[1:]:<7}: peak RSS {rss:,.0f} MB ({seconds:.0f}s)",
                      flush=True)
        for src in write_inputs(root, document(args.mb)):
            rss, seconds, summary = peak_rss(["run", str(src), "-o", str(root / "out.parquet"), "--overwrite",
                                              "--on-error", "skip", *model])
            print(f"refused  {args.mb:>6.1f} MB {src.suffix[1:]:<7}: peak RSS {rss:,.0f} MB ({seconds:.0f}s)  "
                  f"{summary}", flush=True)


if __name__ == "__main__":
    main()
