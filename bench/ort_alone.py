"""onnxruntime alone on several exports of one model, on the same batches: CoNLL-2003 test sentences, and ~300-word
texts cut into 128-token windows overlapping by 16, length-sorted into batches of at most 1,024 tokens and 16 rows,
2 threads (THREADS), the graph fusions `fasttag run` uses on the CPU (without
`fasttag.infer.CPU_DISABLED_OPTIMIZERS`). No fasttag code runs in the timed loop; the exports take turns every few
batches (so that the host's drift falls on all of them alike); the first export is the baseline.

    python bench/ort_alone.py EXPORT [EXPORT ...]        # ROUNDS=5 for more rounds (default 3)
    python bench/ort_alone.py export/default export/default@all-fusions   # THREADS=1: one thread a session

An EXPORT ending in `@all-fusions` is that export with every onnxruntime fusion (the CPU_DISABLED_OPTIMIZERS too).

Prints each export's median seconds per corpus and its speed against the first.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).parent))
from corpora import conll_sentences, documents, require_data  # noqa: E402
from fasttag.infer import CPU_DISABLED_OPTIMIZERS  # noqa: E402

WINDOW, STRIDE, BUDGET, ROWS = 126, 16, 1024, 16  # text tokens per window (128 with [CLS] and [SEP])
BLOCK = 8  # batches run by one export before the next takes its turn
ALL = "@all-fusions"


def batches_of(seqs: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    seqs = sorted(seqs, key=len)
    groups: list[list[list[int]]] = []
    cur: list[list[int]] = []
    for s in seqs:
        if cur and (len(cur) + 1 > ROWS or (len(cur) + 1) * max(len(s), len(cur[-1])) > BUDGET):
            groups.append(cur)
            cur = []
        cur.append(s)
    if cur:
        groups.append(cur)
    out = []
    for g in groups:
        width = max(map(len, g))
        ids = np.zeros((len(g), width), np.int64)
        mask = np.zeros((len(g), width), np.int64)
        for i, s in enumerate(g):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
        out.append((ids, mask))
    return out


def main() -> None:
    models = sys.argv[1:]
    if not models:
        sys.exit(__doc__)
    require_data()
    tok = Tokenizer.from_file(str(Path(models[0].removesuffix(ALL)) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    sentences = conll_sentences()
    short = [[cls, *tok.encode(s, add_special_tokens=False).ids, sep] for s in sentences]
    windows = []
    for doc in documents(sentences, 300):
        ids = tok.encode(doc, add_special_tokens=False).ids
        for start in range(0, max(1, len(ids) - STRIDE), WINDOW - STRIDE):
            windows.append([cls, *ids[start:start + WINDOW], sep])
            if start + WINDOW >= len(ids):
                break
    sets = {"short": batches_of(short), "docs": batches_of(windows)}
    for name, batches in sets.items():
        print(f"{name}: {len(batches)} batches, {sum(int(m.sum()) for _, m in batches):,} tokens")
    sessions, inputs = {}, {}
    for path in models:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(os.environ.get("THREADS", 2))
        sessions[path] = ort.InferenceSession(str(Path(path.removesuffix(ALL)) / "model.onnx"), opts,
                                              providers=["CPUExecutionProvider"],
                                              disabled_optimizers=[] if path.endswith(ALL)
                                              else list(CPU_DISABLED_OPTIMIZERS))
        inputs[path] = {i.name for i in sessions[path].get_inputs()}

    def run(path: str, batches) -> None:
        for ids, mask in batches:
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in inputs[path]:
                feed["token_type_ids"] = np.zeros_like(ids)
            sessions[path].run(None, feed)

    for path in models:
        run(path, sets["short"][:20])  # warm-up
    rounds = int(os.environ.get("ROUNDS", 3))
    times: dict[tuple[str, str], list[float]] = {(p, k): [] for p in models for k in sets}
    for r in range(rounds):
        for name, batches in sets.items():
            spent = dict.fromkeys(models, 0.0)
            # blocks of BLOCK batches, each run by every export in turn (the order turning each block), so that the
            # host's drift over a pass falls on all exports alike
            for b, first in enumerate(range(0, len(batches), BLOCK)):
                block = batches[first:first + BLOCK]
                turn = (b + r) % len(models)
                for path in models[turn:] + models[:turn]:
                    t0 = time.perf_counter()
                    run(path, block)
                    spent[path] += time.perf_counter() - t0
            for path in models:
                times[(path, name)].append(spent[path])
    for name in sets:
        base = statistics.median(times[(models[0], name)])
        for path in models:
            med = statistics.median(times[(path, name)])
            rounds_s = ", ".join(f"{x:.2f}" for x in times[(path, name)])
            print(f"{name:6s} {path:32s} {med:7.3f}s  {base / med:5.3f}x the first  ({rounds_s})")


if __name__ == "__main__":
    main()
