"""How far exports of one model are from a reference export and from one another, token by token, on the same
batches: the share of tokens whose argmax label agrees, and the mean and largest |logit difference|.

    python bench/agreement.py REFERENCE EXPORT [EXPORT ...] [--conll] [--corpus documents] [--rows N]

REFERENCE is usually the fp32 export and the EXPORTs int8 files made from it in different ways. A table of F1 on
one split moves by tenths of a point from int8 noise alone; these shares, on tens of thousands of tokens, show
whether two files differ from each other more than each differs from the reference. The texts (`--rows` generated
sentences or documents, or CoNLL-2003 test texts with `--conll`) are cut into windows of at most 126 text tokens
and batched as `bench/ort_alone.py` batches them; onnxruntime runs with fasttag's CPU graph settings on
`--threads` threads (default 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).parent))
from fasttag.infer import CPU_DISABLED_OPTIMIZERS  # noqa: E402
from ort_alone import STRIDE, WINDOW, batches_of  # noqa: E402
from turns import texts  # noqa: E402


def windows(tokenizer_file: Path, corpus: list[str]) -> list[list[int]]:
    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.no_truncation()
    tok.no_padding()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls is None or sep is None:
        sys.exit(f"{tokenizer_file}: no [CLS]/[SEP] tokens (this script takes BERT-style tokenizers)")
    out = []
    for text in corpus:
        ids = tok.encode(text, add_special_tokens=False).ids
        for start in range(0, max(1, len(ids) - STRIDE), WINDOW - STRIDE):
            out.append([cls, *ids[start:start + WINDOW], sep])
            if start + WINDOW >= len(ids):
                break
    return out


def logits(export: str, batches, threads: int) -> np.ndarray:
    """The export's logits on every real (unpadded) token of `batches`, one row per token."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(Path(export) / "model.onnx"), opts, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=list(CPU_DISABLED_OPTIMIZERS))
    names = {i.name for i in session.get_inputs()}
    rows = []
    for ids, mask in batches:
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        rows.append(session.run(None, feed)[0][mask.astype(bool)])
    return np.concatenate(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--corpus", choices=["sentences", "documents"], default="sentences")
    ap.add_argument("--conll", action="store_true", help="CoNLL-2003 test sentences/documents from ../shared/data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("reference")
    ap.add_argument("exports", nargs="+")
    args = ap.parse_args()
    batches = batches_of(windows(Path(args.reference) / "tokenizer.json", texts(args.corpus, args.rows, args.conll)))
    names = [args.reference, *args.exports]
    found = {name: logits(name, batches, args.threads) for name in names}
    tokens = len(found[args.reference])
    print(f"{tokens:,} tokens in {len(batches)} batches")
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            same = float(np.mean(found[a].argmax(-1) == found[b].argmax(-1)))
            diff = np.abs(found[a] - found[b])
            print(f"{a} vs {b}: argmax agrees on {same:.3%} of tokens; |logit difference| mean {diff.mean():.4f},"
                  f" max {diff.max():.3f}")


if __name__ == "__main__":
    main()
