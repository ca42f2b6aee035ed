"""The model's batches as one stream across chunks (`Tagger.finish_rows_stream`) against chunk by chunk (the model
drained at each chunk's end, and idle while the chunk is decoded and written), and both against onnxruntime alone on
the same batches, in turns over the same corpus.

    python bench/stream.py [--model export/default] [--rows 3453] [--rounds 6] [--corpus sentences|documents]
        [--conll]          # CoNLL-2003 test sentences (or ~300-word texts of them) from ../shared/data
        [--chunk-rows N]   # `fasttag run --chunk-rows` (default 2048)
        [--device cuda]    # on a GPU (one session): also the stream with that session in the caller's thread

Prints the CPU, each round's seconds, the ratio of the medians (chunk by chunk against the stream: above 1 means the
stream is faster), each one's share of onnxruntime alone (round by round, each pass against the onnxruntime pass
beside it) and whether they wrote the same entities. With one session (the GPU, or `--threads 1`), "stream, session
here" is the stream with the session run in the caller's thread, as one CPU stream runs, against "stream" with it in a
pool thread, as the GPU's runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import turns  # noqa: E402


def chunk_by_chunk(tagger):
    """`finish_rows_stream` as it was before it streamed: each chunk's batches run and drain before the next (and,
    with one session, in the caller's thread: `main` sets that)."""
    def finish(items):
        for key, prepared in items:
            yield key, tagger.finish_rows(prepared)
    return finish


def main() -> None:
    ap = turns.arguments(__doc__, rows=3453, rounds=6)
    ap.add_argument("--model", default="export/default")
    ap.add_argument("--chunk-rows", type=int, default=2048)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import onnxruntime as ort

    from fasttag import Tagger
    from fasttag.bench import onnxruntime_feeds, onnxruntime_pass
    from fasttag.machine import machine
    from fasttag.run import run

    print(f"machine: {machine().describe()}")
    texts = turns.texts(args.corpus, args.rows, args.conll)
    tagger = Tagger.load(args.model, threads=args.threads, device=args.device)
    print(f"onnxruntime {ort.__version__} ({tagger.provider}); {tagger.bundle.describe()}; {tagger.streams} streams, "
          f"{tagger.threads} threads; {len(texts):,} {args.corpus}{' (CoNLL-2003 test)' if args.conll else ''}, "
          f"chunks of {args.chunk_rows:,} rows; {args.rounds} rounds in turns")
    streamed = tagger.finish_rows_stream
    overlap = tagger.overlap
    systems = ["chunk by chunk", "stream"] + (["stream, session here"] if tagger.streams == 1 else [])
    seconds: dict[str, list[float]] = {name: [] for name in [*systems, "onnxruntime alone"]}
    with tempfile.TemporaryDirectory() as tmp:
        src = str(Path(tmp) / "in.parquet")
        outs = {name: str(Path(tmp) / f"{i}.parquet") for i, name in enumerate(systems)}
        pq.write_table(pa.table({"text": texts}), src)

        def one(name: str) -> float:
            if name == "onnxruntime alone":
                tagger.overlap = overlap
                return onnxruntime_pass(tagger, feeds)
            tagger.finish_rows_stream = chunk_by_chunk(tagger) if name == "chunk by chunk" else streamed
            # chunk by chunk as it was: one session (the GPU's) run in the caller's thread
            here = tagger.streams == 1 and name in ("chunk by chunk", "stream, session here")
            tagger.overlap = overlap and not here
            started = time.perf_counter()
            run(tagger, src, outs[name], overwrite=True, chunk_rows=args.chunk_rows)
            return time.perf_counter() - started

        feeds = onnxruntime_feeds(tagger, texts, chunk_rows=args.chunk_rows)
        names = list(seconds)
        for name in names:
            one(name)  # warm-up
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                seconds[name].append(one(name))
        entities = {name: pq.read_table(path).column("entities").to_pylist() for name, path in outs.items()}
    for name, times in seconds.items():
        print(f"  {name:20s}: median {statistics.median(times):.3f} s  ({', '.join(f'{t:.2f}' for t in times)})")
    alone = seconds["onnxruntime alone"]
    ratio = statistics.median(seconds["chunk by chunk"]) / statistics.median(seconds["stream"])
    rounds = [a / b for a, b in zip(seconds["chunk by chunk"], seconds["stream"], strict=True)]
    print(f"  chunk by chunk vs stream: {ratio:.3f}x (round by round {', '.join(f'{r:.3f}' for r in rounds)})")
    if "stream, session here" in seconds:
        here = statistics.median(seconds["stream, session here"]) / statistics.median(seconds["stream"])
        print(f"  session in the caller's thread vs in a pool thread: {here:.3f}x (above 1: the pool thread is faster)")
    for name in systems:
        shares = [a / b for a, b in zip(alone, seconds[name], strict=True)]
        print(f"  {name} at {statistics.mean(shares):.1%} of onnxruntime alone (mean of rounds; each "
              f"{', '.join(f'{s:.1%}' for s in shares)})")
    for name in systems[1:]:
        same = sum(a == b for a, b in zip(entities["chunk by chunk"], entities[name], strict=True))
        print(f"  {name}: the same entities (offsets, labels, scores) as chunk by chunk on {same:,} of "
              f"{len(texts):,} rows")


if __name__ == "__main__":
    main()
