"""Benchmark corpora built at run time from ../shared/data/conll2003/test.txt (never committed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA = Path(os.environ.get("FASTTAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CONLL_TEST = DATA / "conll2003" / "test.txt"


def require_data() -> None:
    if not CONLL_TEST.exists():
        sys.exit(f"skipped: {CONLL_TEST} not found (the benchmark corpora are built from ../shared/data; "
                 "set FASTTAG_SHARED_DATA to its folder)")


def conll_sentences(path: Path = CONLL_TEST) -> list[str]:
    sents, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sents.append(" ".join(words))
                words = []
            continue
        words.append(line.split()[0])
    if words:
        sents.append(" ".join(words))
    return sents


def documents(sentences: list[str], words_per_doc: int) -> list[str]:
    """Consecutive sentences joined into documents of about `words_per_doc` words."""
    docs, cur, n = [], [], 0
    for s in sentences:
        cur.append(s)
        n += len(s.split())
        if n >= words_per_doc:
            docs.append(" ".join(cur))
            cur, n = [], 0
    if cur:
        docs.append(" ".join(cur))
    return docs


def corpus(name: str) -> list[str]:
    sents = conll_sentences()
    if name == "short":
        return sents
    if name == "docs":
        return documents(sents, 300)
    if name == "long":
        return documents(sents, 1200)  # well over 512 tokens each: the window path
    raise ValueError(name)
