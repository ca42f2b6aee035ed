"""A reproducible benchmark corpus: news-like sentences and documents with realistic lengths, made from a seed.

Sentence lengths follow a log-normal close to CoNLL-2003's news sentences (median about 12 words, a
long tail, capped at 80); words mix common English words with capitalised names, places and
organisations, and some numbers and punctuation, so that tokenizers split them as they split news text.
Documents are consecutive sentences up to about `words_per_doc` words (300 by default: the issue's
"documents"). The same seed gives the same corpus on every machine and numpy version (numpy's PCG64).
"""

from __future__ import annotations

import numpy as np

COMMON = (
    "the of and to in a is that for on was with he it as at by from his an were are which this be has had "
    "not but they have been who their its one after also new first two than more year said will would there "
    "government people last over week team season market shares percent police minister president state "
    "officials city country world company group match game won lost against told reporters talks meeting "
    "expected added under between before during about against since while three four five million billion"
).split()
NAMES = (
    "John Smith Maria Garcia Ahmed Khan Li Wei Anna Müller Pierre Dubois Kenji Sato Olga Petrova James Brown "
    "Fatima Zahra Carlos Silva Emma Johnson"
).split()
PLACES = (
    "London Paris Berlin Tokyo Moscow Beijing Washington Madrid Rome Cairo Nairobi Sydney Toronto Brazil "
    "Germany France Japan Russia China India Mexico Canada Australia Egypt Kenya Spain Italy"
).split()
ORGS = ("Reuters United Nations European Union NATO Microsoft Siemens Toyota FIFA Barclays Gazprom Interpol "
        "Red Cross World Bank").split()
PUNCT = (",", ",", ".", ";", ":", "'s")

CORPORA = ("sentences", "documents")


def sentences(n: int, seed: int = 0) -> list[str]:
    """`n` sentences of news-like text."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.lognormal(mean=2.5, sigma=0.55, size=n)), 2, 80).astype(int)
    return [_sentence(rng, int(k)) for k in lengths]


def documents(n: int, words_per_doc: int = 300, seed: int = 0) -> list[str]:
    """`n` documents of about `words_per_doc` words each (whole sentences)."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        parts, words = [], 0
        target = max(1, int(rng.normal(words_per_doc, words_per_doc * 0.15)))
        while words < target:
            k = int(np.clip(np.rint(rng.lognormal(2.5, 0.55)), 2, 80))
            parts.append(_sentence(rng, k))
            words += k
        docs.append(" ".join(parts))
    return docs


def corpus(kind: str, n: int, seed: int = 0) -> list[str]:
    if kind == "sentences":
        return sentences(n, seed)
    if kind == "documents":
        return documents(n, seed=seed)
    raise ValueError(f"corpus must be one of {', '.join(CORPORA)}, got {kind!r}")


def _sentence(rng: np.random.Generator, k: int) -> str:
    kinds = rng.choice(5, size=k, p=[0.72, 0.08, 0.08, 0.06, 0.06])
    words = []
    for i, kind in enumerate(kinds):
        pool = (COMMON, NAMES, PLACES, ORGS, None)[kind]
        word = str(rng.integers(1, 2000)) if pool is None else pool[rng.integers(len(pool))]
        if i == 0:
            word = word[:1].upper() + word[1:]
        words.append(word)
        if i < k - 1 and rng.random() < 0.06:
            words[-1] += PUNCT[rng.integers(len(PUNCT))]
    return " ".join(words) + "."
