"""The onnxruntime fusions fasttag leaves out on the CPU (`fasttag.infer.CPU_DISABLED_OPTIMIZERS`), measured on this
machine: each fused operator alone against the operators it replaces, then `fasttag run` with the fusions on and off,
in turns, over the same corpus.

    python bench/cpu_fusions.py [--model export/default] [--rows 3453] [--rounds 4] [--corpus sentences|documents]
        [--conll]   # CoNLL-2003 test sentences (or ~300-word texts of them) from ../shared/data

Prints the CPU, the kernel times (one thread, median of 5 blocks), each round's seconds, the ratio of the medians (off
against on: above 1 means leaving the fusions out is faster) and how many rows got the same entities (offsets and
labels) both ways.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import turns  # noqa: E402


def kernels(tokens: int = 320, hidden: int = 384) -> list[tuple[str, float, float]]:
    """(fusion, microseconds fused, microseconds unfused) for each fusion left out, on (tokens, hidden), 1 thread."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    inits = [onnx.numpy_helper.from_array(rng.random(hidden, dtype=np.float32), name) for name in ("gamma", "beta")]
    x, skip = (helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", "S", hidden]) for n in ("x", "skip"))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Add", ["x", "skip"], ["sum"]),
             helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12)]
    model = helper.make_model(helper.make_graph(nodes, "add_layernorm", [x, skip], [y], inits),
                              opset_imports=[helper.make_operatorsetid("", 17)])
    model.ir_version = 8  # what every onnxruntime this project supports reads
    feed = {"x": rng.standard_normal((16, tokens // 16, hidden), dtype=np.float32),
            "skip": rng.standard_normal((16, tokens // 16, hidden), dtype=np.float32)}

    def micro(disabled: list[str]) -> float:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled)
        for _ in range(50):
            sess.run(None, feed)
        blocks = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(400):
                sess.run(None, feed)
            blocks.append((time.perf_counter() - started) / 400 * 1e6)
        return statistics.median(blocks)

    return [("SkipLayerNormFusion", micro([]), micro(["SkipLayerNormFusion"]))]


def main() -> None:
    ap = turns.arguments(__doc__, rows=3453, rounds=4)
    ap.add_argument("--model", default="export/default")
    args = ap.parse_args()

    import onnxruntime as ort

    from fasttag import Tagger, infer
    from fasttag.machine import machine

    print(f"machine: {machine().describe()}")
    print(f"onnxruntime {ort.__version__}, left out on the CPU: {', '.join(infer.CPU_DISABLED_OPTIMIZERS)}")
    for name, fused, unfused in kernels():
        print(f"kernel  {name}: fused {fused:.1f} us, unfused {unfused:.1f} us ({fused / unfused:.2f}x the time), "
              "320 tokens x 384, 1 thread")
    texts = turns.texts(args.corpus, args.rows, args.conll)
    kept = infer.CPU_DISABLED_OPTIMIZERS
    try:
        infer.CPU_DISABLED_OPTIMIZERS = ()
        taggers = {"on": Tagger.load(args.model, threads=args.threads, device="cpu")}
    finally:
        infer.CPU_DISABLED_OPTIMIZERS = kept
    taggers["off"] = Tagger.load(args.model, threads=args.threads, device="cpu")
    seconds, rows = turns.in_turns(taggers, texts, args.rounds)
    same = sum(a == b for a, b in zip(rows["on"], rows["off"], strict=True))
    print(f"{len(texts):,} {args.corpus}{' (CoNLL-2003 test)' if args.conll else ''}, {args.rounds} rounds, "
          f"fusions on and off in turns")
    for name, times in seconds.items():
        print(f"  fusions {name:3s}: median {statistics.median(times):.3f} s  ({', '.join(f'{t:.2f}' for t in times)})")
    ratio = statistics.median(seconds["on"]) / statistics.median(seconds["off"])
    rounds = [a / b for a, b in zip(seconds["on"], seconds["off"], strict=True)]
    print(f"  off vs on: {ratio:.3f}x (round by round {', '.join(f'{r:.3f}' for r in rounds)}); "
          f"same entities on {same:,} of {len(texts):,} rows ({same / len(texts):.1%})")


if __name__ == "__main__":
    main()
