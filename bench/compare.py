"""Side-by-side throughput of fasttag and the transformers pipeline on the same model and corpus.

One invocation runs every system on every corpus, alternating systems within each round, each
warmed up and in its own subprocess (so peak RSS is per system), and prints documents/s, tokens/s,
peak RSS and the ratio of each system to the first (of the median times, and round by round: the median of
each round's ratio, which the host's slow and fast spells move less), plus entity parity between systems 1 and 3.

    python bench/compare.py --checkpoint CKPT --fp32 EXPORT --int8 EXPORT_INT8 [--corpora short,docs,long]

Systems:
  pipeline-pt   transformers pipeline("token-classification", aggregation_strategy="simple"), PyTorch, batch_size 32
  pipeline-ort  the same pipeline on optimum's ORTModelForTokenClassification with fasttag's fp32 model.onnx
  fasttag-fp32  fasttag.run() end to end: Parquet in, Parquet out
  fasttag-int8  the same with the int8 export
  ort-limit     onnxruntime alone on fasttag's fp32 windows, pre-tokenized, length-sorted, same batches
                and the same sessions (--streams) as fasttag
Optional (--systems): ort-limit-int8, the same limit for the int8 export.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SYSTEMS = ["pipeline-pt", "pipeline-ort", "fasttag-fp32", "fasttag-int8", "ort-limit"]
OPTIONAL = ["ort-limit-int8"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers (one system, one corpus, in a fresh process) ------------------------------------------
def worker(args) -> dict:
    import pyarrow.parquet as pq

    texts = pq.read_table(args.corpus_file).column("text").to_pylist()
    warm = texts[:64]
    system = args.worker
    entities = None
    if system.startswith("pipeline"):
        import warnings

        warnings.filterwarnings("ignore")
        import transformers as tf

        if system == "pipeline-pt":
            import torch

            torch.set_num_threads(args.threads)
            model = tf.AutoModelForTokenClassification.from_pretrained(args.checkpoint)
            device = "cuda:0" if args.device == "cuda" else "cpu"
        else:
            from optimum.onnxruntime import ORTModelForTokenClassification

            provider = "CUDAExecutionProvider" if args.device == "cuda" else "CPUExecutionProvider"
            model = ORTModelForTokenClassification.from_pretrained(args.fp32, file_name="model.onnx", provider=provider)
            device = None
        tok = tf.AutoTokenizer.from_pretrained(args.checkpoint)
        pipe = tf.pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple",
                           device=device)
        pipe(warm, batch_size=32)
        t0 = time.perf_counter()
        out = pipe(texts, batch_size=32)
        seconds = time.perf_counter() - t0
        entities = [[(int(e["start"]), int(e["end"]), e["entity_group"]) for e in doc] for doc in out]
    elif system.startswith("fasttag"):
        from fasttag import Tagger
        from fasttag.run import run

        tagger = Tagger.load(args.fp32 if system == "fasttag-fp32" else args.int8, threads=args.threads,
                             streams=args.streams, device=args.device, dedup_window=args.dedup_window,
                             **({"windows": args.windows} if args.windows else {}),
                             **({"aggregation": args.aggregation} if args.aggregation else {}))
        tagger.tag(warm)
        out_path = Path(args.tmp) / f"{system}.parquet"
        t0 = time.perf_counter()
        run(tagger, args.corpus_file, str(out_path), overwrite=True)
        seconds = time.perf_counter() - t0
        rows = pq.read_table(out_path).column("entities").to_pylist()
        entities = [[(e["start"], e["end"], e["label"]) for e in doc] for doc in rows]
    else:  # ort-limit(-int8): only session.run over fasttag's own batches, inputs prepared beforehand
        from fasttag import Tagger

        tagger = Tagger.load(args.int8 if system == "ort-limit-int8" else args.fp32, threads=args.threads,
                             streams=args.streams, device=args.device,
                             **({"windows": args.windows} if args.windows else {}))
        feeds = []
        for start in range(0, len(texts), 2048):  # the same chunks and batches as fasttag run
            chunk = tagger.tokenize(texts[start:start + 2048])
            feeds += [tagger.model_inputs(chunk, batch) for batch in tagger.batches(chunk)]
        # the same sessions as fasttag, through the same Tagger.run_model
        for _ in tagger.run_model(feeds[:4]):
            pass
        t0 = time.perf_counter()
        for _ in tagger.run_model(feeds):
            pass
        seconds = time.perf_counter() - t0
    result = {"system": system, "seconds": seconds, "docs": len(texts), "peak_rss_mb": peak_rss_mb()}
    if entities is not None:
        ent_file = Path(args.tmp) / f"{system}.entities.json"
        ent_file.write_text(json.dumps(entities))
        result["entities_file"] = str(ent_file)
    return result


# -- orchestration ---------------------------------------------------------------------------------
def count_tokens(fp32: str, texts: list[str]) -> int:
    from fasttag import Tagger

    tagger = Tagger.load(fp32)
    return sum(tagger.tokenize(texts[i:i + 2048]).n_tokens for i in range(0, len(texts), 2048))


def parity(a_file: str, b_file: str) -> float:
    a = json.loads(Path(a_file).read_text())
    b = json.loads(Path(b_file).read_text())
    sa = {(d, *e) for d, doc in enumerate(a) for e in doc}
    sb = {(d, *e) for d, doc in enumerate(b) for e in doc}
    return len(sa & sb) / max(len(sa | sb), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="PyTorch checkpoint folder (the export's source model)")
    ap.add_argument("--fp32", required=True, help="fasttag fp32 export of that checkpoint")
    ap.add_argument("--int8", required=True, help="fasttag int8 export of that checkpoint")
    ap.add_argument("--corpora", default="short,docs,long")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--rounds", type=int, default=2, help="rounds; systems alternate within each, median reported")
    ap.add_argument("--limit", type=int, default=None, help="documents per corpus (default: all)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--streams", type=int, default=None, help="fasttag's --streams (default: fasttag's own default)")
    ap.add_argument("--dedup-window", type=int, default=0,
                    help="fasttag's --dedup-window (default 0: off, so that fasttag runs every row, as the others do)")
    ap.add_argument("--windows", default=None, help="fasttag's --windows (default: fasttag's own)")
    ap.add_argument("--aggregation", default=None,
                    help="fasttag's --aggregation (default: fasttag's own; 'simple' for a meaningful parity)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where every system runs")
    ap.add_argument("--json", default=None, help="write all figures to this file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--corpus-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpora import corpus, require_data

    require_data()
    systems = args.systems.split(",")
    unknown = [x for x in systems if x not in SYSTEMS + OPTIONAL]
    if unknown:
        sys.exit(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS + OPTIONAL)}")
    failed: dict[str, str] = {}  # system -> last line of its error, skipped from then on
    report = {"machine": f"{os.cpu_count()} CPU cores", "threads": args.threads, "streams": args.streams,
              "device": args.device, "corpora": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.corpora.split(","):
            texts = corpus(name)[: args.limit]
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(pa.table({"text": texts}), path)
            tokens = count_tokens(args.fp32, texts)
            runs: dict[str, list[dict]] = {s: [] for s in systems}
            for r in range(args.rounds):
                order = systems if r % 2 == 0 else list(reversed(systems))
                for system in order:
                    if system in failed:
                        continue
                    cmd = [sys.executable, __file__, "--worker", system, "--corpus-file", str(path), "--tmp", tmp,
                           "--checkpoint", args.checkpoint, "--fp32", args.fp32, "--int8", args.int8,
                           "--threads", str(args.threads), "--device", args.device]
                    if args.streams:
                        cmd += ["--streams", str(args.streams)]
                    cmd += ["--dedup-window", str(args.dedup_window)]
                    if args.aggregation:
                        cmd += ["--aggregation", args.aggregation]
                    if args.windows:
                        cmd += ["--windows", args.windows]
                    out = subprocess.run(cmd, capture_output=True, text=True)
                    if out.returncode:
                        # a system that cannot run here (no optimum, no CUDA provider) is reported, not fatal
                        lines = [x for x in out.stderr.strip().splitlines() if x.strip()] or [f"exit {out.returncode}"]
                        failed[system] = lines[-1][:200]
                        print(f"  {name} {system} FAILED:\n{out.stderr[-3000:]}", file=sys.stderr)
                        continue
                    runs[system].append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(f"  {name} round {r + 1} {system}: {runs[system][-1]['seconds']:.2f}s", file=sys.stderr)
            rows = {}
            for system in systems:
                if not runs[system]:
                    continue
                secs = statistics.median(x["seconds"] for x in runs[system])
                rows[system] = {
                    "seconds": secs,
                    "docs_per_s": len(texts) / secs,
                    "tokens_per_s": tokens / secs,
                    "peak_rss_mb": max(x["peak_rss_mb"] for x in runs[system]),
                    "all_seconds": [x["seconds"] for x in runs[system]],
                }
            base = next(iter(rows.values()))["seconds"] if rows else 0.0
            first = next(iter(rows), None)
            for system in rows:
                rows[system]["ratio_to_first"] = base / rows[system]["seconds"]
                # round by round (the systems of a round run minutes apart at most): the host's slower and
                # faster spells fall on both sides of each ratio
                paired = [a["seconds"] / b["seconds"] for a, b in zip(runs[first], runs[system], strict=False)]
                rows[system]["round_ratios_to_first"] = paired
                rows[system]["median_round_ratio"] = statistics.median(paired)
            extra = {}
            if "pipeline-pt" in rows and "fasttag-fp32" in rows:
                extra["parity_pipeline_pt_vs_fasttag_fp32"] = parity(
                    runs["pipeline-pt"][-1]["entities_file"], runs["fasttag-fp32"][-1]["entities_file"])
            if "ort-limit" in rows and "fasttag-fp32" in rows:
                extra["fasttag_fp32_share_of_model_limit"] = (
                    rows["ort-limit"]["seconds"] / rows["fasttag-fp32"]["seconds"])
            if "ort-limit-int8" in rows and "fasttag-int8" in rows:
                extra["fasttag_int8_share_of_model_limit"] = (
                    rows["ort-limit-int8"]["seconds"] / rows["fasttag-int8"]["seconds"])
            report["corpora"][name] = {"docs": len(texts), "tokens": tokens, "systems": rows, **extra}
            print_table(name, len(texts), tokens, rows, extra)
    for system, why in failed.items():
        print(f"- {system}: did not run ({why})")
    report["failed"] = failed
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def print_table(name, docs, tokens, rows, extra) -> None:
    print(f"\n### {name}: {docs:,} documents, {tokens:,} tokens")
    if not rows:
        print("(no system ran)")
        return
    first = next(iter(rows))
    print(f"| system | docs/s | tokens/s | peak RSS MB | vs {first} | round by round: median (each round) |")
    print("|---|---:|---:|---:|---:|---|")
    for system, r in rows.items():
        each = ", ".join(f"{x:.2f}" for x in r["round_ratios_to_first"])
        print(f"| {system} | {r['docs_per_s']:,.0f} | {r['tokens_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} "
              f"| {r['ratio_to_first']:.2f}x | {r['median_round_ratio']:.2f}x ({each}) |")
    for k, v in extra.items():
        print(f"- {k}: {v:.4f}")


if __name__ == "__main__":
    main()
