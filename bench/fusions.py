"""A/B of two exports of the same checkpoint (e.g. `fasttag export --fuse` against the plain export), interleaved in
one process: `fasttag run` over the same corpus, alternately, and the speed ratio B / A.

    python bench/fusions.py --a EXPORT_A --b EXPORT_B [--rows 2000] [--rounds 4] [--corpus sentences|documents]
        [--conll]   # CoNLL-2003 test sentences (../shared/data) instead of generated ones

Prints each system's median seconds and the ratio, and how often the two agree on the entities (labels and
offsets), so that a faster graph that tags differently is seen as such.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import turns  # noqa: E402


def main() -> None:
    ap = turns.arguments(__doc__, rows=2000, rounds=4)
    ap.add_argument("--a", required=True, help="export folder A (the baseline)")
    ap.add_argument("--b", required=True, help="export folder B")
    args = ap.parse_args()

    from fasttag import Tagger
    from fasttag.machine import machine

    texts = turns.texts(args.corpus, args.rows, args.conll)
    taggers = {name: Tagger.load(path, threads=args.threads) for name, path in (("A", args.a), ("B", args.b))}
    seconds, rows = turns.in_turns(taggers, texts, args.rounds)
    same = sum(a == b for a, b in zip(rows["A"], rows["B"], strict=True)) / len(texts)
    print(f"machine: {machine().describe()}")
    for name, tagger in taggers.items():
        fused = tagger.bundle.manifest.get("fusions")
        each = ", ".join(f"{s:.2f}" for s in seconds[name])
        print(f"{name}: {tagger.bundle.describe()}{f', fused {fused}' if fused else ''}: median "
              f"{np.median(seconds[name]):.2f}s over {args.rounds} rounds ({each})")
    print(f"{len(texts):,} {'CoNLL-2003' if args.conll else 'generated'} {args.corpus}; rows with the same entities: "
          f"{same:.1%}")
    print(f"speed ratio B / A: {np.median(seconds['A']) / np.median(seconds['B']):.2f}x")


if __name__ == "__main__":
    main()
