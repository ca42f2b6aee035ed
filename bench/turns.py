"""What the A/B benchmarks (`fusions.py`, `cpu_fusions.py`, `stream.py`) share: their options, the corpus they run,
and `fasttag run` of each tagger over it in turns (a warm-up each, then rounds in turning order), with the entities
each one found."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def arguments(doc: str | None, rows: int, rounds: int) -> argparse.ArgumentParser:
    """The options every A/B script takes: --rows, --rounds, --corpus, --conll, --threads."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=rows)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--corpus", choices=["sentences", "documents"], default="sentences")
    ap.add_argument("--conll", action="store_true", help="CoNLL-2003 test sentences/documents from ../shared/data")
    ap.add_argument("--threads", type=int, default=None)
    return ap


def texts(corpus: str, rows: int, conll: bool) -> list[str]:
    """`rows` generated sentences or documents, or CoNLL-2003 test sentences (or ~300-word texts of them)."""
    if conll:
        from corpora import conll_sentences, documents, require_data

        require_data()
        sentences = conll_sentences()
        return (sentences if corpus == "sentences" else documents(sentences, 300))[:rows]
    from fasttag import synthetic

    return synthetic.corpus(corpus, rows)


def in_turns(taggers: dict, texts: list[str], rounds: int) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Each tagger's seconds per round of `fasttag run` over `texts` (Parquet in, Parquet out), the order turning
    every round, and each row's entities as (start, end, label) lists, by tagger."""
    from fasttag.run import run

    seconds: dict[str, list[float]] = {name: [] for name in taggers}
    names = list(taggers)
    with tempfile.TemporaryDirectory() as tmp:
        src = str(Path(tmp) / "in.parquet")
        pq.write_table(pa.table({"text": texts}), src)
        outs = {name: str(Path(tmp) / f"{i}.parquet") for i, name in enumerate(names)}
        for name, tagger in taggers.items():
            run(tagger, src, outs[name], overwrite=True)  # warm-up
        for r in range(rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                started = time.perf_counter()
                run(taggers[name], src, outs[name], overwrite=True)
                seconds[name].append(time.perf_counter() - started)
        rows = {name: [[(e["start"], e["end"], e["label"]) for e in row] for row in
                       pq.read_table(path).column("entities").to_pylist()] for name, path in outs.items()}
    return seconds, rows
