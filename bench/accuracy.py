"""End-to-end accuracy of a model on raw text, per aggregation and word rule (`fasttag eval --end-to-end`).

The labelled words of each data set are joined into texts (single sentences, or documents of consecutive
sentences), by spaces or as text is written (--join natural: "London.", "said,"), tagged through the run path
and scored as exact character spans.

    python bench/accuracy.py --model export/default --data conll-test:300 --data wnut-test \\
        --aggregation simple,first,max --word-boundaries whitespace,tokenizer

Each --data is NAME[:DOCUMENTS] with NAME one of the data sets below (read from ../shared/data, never
committed) or a path, and DOCUMENTS `sentences` (default), `docstart` or a number of words per text.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fasttag.evaluate import labelled_texts, span_scores  # noqa: E402
from fasttag.labelled import read_labelled  # noqa: E402
from fasttag.tagger import Tagger  # noqa: E402

DATA = Path(os.environ.get("FASTTAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = {
    "conll-test": DATA / "conll2003" / "test.txt",
    "conll-valid": DATA / "conll2003" / "valid.txt",
    "wikigold": DATA / "wikigold" / "wikigold.conll.txt",
    "wnut-test": DATA / "wnut17" / "test.conll",
}
# WNUT-17's types in CoNLL-2003's terms, to score a CoNLL model out of domain (an approximation:
# CoNLL tags products and creative works as MISC, groups and corporations as ORG).
WNUT_AS_CONLL = {"person": "PER", "location": "LOC", "corporation": "ORG", "group": "ORG",
                 "product": "MISC", "creative-work": "MISC"}


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    keep = [f for f in flags if f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")]
    return f"{model} ({os.cpu_count()} cores; {' '.join(keep) or 'no AVX2'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--aggregation", default="simple,first,max")
    ap.add_argument("--word-boundaries", default="whitespace,tokenizer")
    ap.add_argument("--join", default="spaces", help="spaces, natural or both (comma-separated): see join_words")
    ap.add_argument("--map-wnut", action="store_true",
                    help="score WNUT-17 types as CoNLL-2003 ones (PER, LOC, ORG, MISC)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"machine: {cpu()}")
    results = []
    for spec in args.data:
        name, _, documents = spec.partition(":")
        path = SETS.get(name, Path(name))
        if not path.exists():
            sys.exit(f"skipped: {path} not found (set FASTTAG_SHARED_DATA to the shared data folder)")
        labelled = read_labelled(path)
        for join in args.join.split(","):
            texts, gold = labelled_texts(labelled, documents or "sentences", join=join)
            if args.map_wnut and name.startswith("wnut"):
                gold = [[(a, b, WNUT_AS_CONLL[k]) for a, b, k in doc] for doc in gold]
            for agg in args.aggregation.split(","):
                for wb in args.word_boundaries.split(",") if agg != "simple" else ["tokenizer"]:
                    tagger = Tagger.load(args.model, aggregation=agg, word_boundaries=wb)
                    predicted = [[(e.start, e.end, e.label) for e in ents] for ents in tagger.tag(texts)]
                    s = span_scores(gold, predicted)
                    row = {"data": spec, "join": join, "texts": len(texts), "aggregation": agg,
                           "word_boundaries": wb, "f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
                           "partial_f1": s["partial"]["f1"], "types": {k: v["f1"] for k, v in s["types"].items()}}
                    results.append(row)
                    print(f"{spec:<18} {join:<7} {row['texts']:>6} texts  {agg:<8} {wb:<10}  F1 {row['f1']:.4f}  "
                          f"P {row['precision']:.4f}  R {row['recall']:.4f}  partial F1 {row['partial_f1']:.4f}",
                          flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
