"""Deterministic, varied test sentences the tests write themselves (no shared data)."""

from __future__ import annotations

import random

FIRST = ["Ada", "Zoë", "José", "Björn", "Nguyễn", "Amélie", "Olu", "Siobhán", "Chen", "Anna-Lena", "O'Brien", "Łukasz"]
LAST = ["Lovelace", "Müller", "García", "Ødegaard", "Okafor", "Dupont", "Smith-Jones", "Kowalski", "Tanaka",
        "Fitzgerald"]
PLACES = ["London", "São Paulo", "Zürich", "New York", "Reykjavík", "Köln", "東京", "北京市", "Addis Ababa", "Montréal",
          "Rio de Janeiro"]
ORGS = ["Acme Corp.", "the United Nations", "Deutsche Bahn", "Apple Inc.", "Médecins Sans Frontières", "FC Barcelona",
        "IBM", "株式会社ソニー"]
MISC = ["English", "the 2022 World Cup", "Python 3.11", "Nobel Prize", "COVID-19", "iPhone 15", "Ramadan"]
VERBS = ["visited", "left", "joined", "met", "called", "praised", "criticised", "moved to", "wrote about",
         "signed with"]
EXTRAS = [
    "", " on Tuesday", " in 1999", " at 10:45 a.m.", " for $3,200.50", " (again)", " -- twice!", " 🚀🔥", " #breaking",
    " with 3.5% growth", ", reportedly,", " e.g. yesterday", " …", " on 2024-01-31", " near km 12.5",
]


def varied_sentences(n: int = 300, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        kind = i % 6
        if kind == 0:
            s = f"{person} {rng.choice(VERBS)} {rng.choice(PLACES)}{rng.choice(EXTRAS)}."
        elif kind == 1:
            s = f"{rng.choice(ORGS)} {rng.choice(VERBS)} {person}{rng.choice(EXTRAS)}, said {rng.choice(FIRST)}."
        elif kind == 2:
            s = (f"In {rng.choice(PLACES)}, {rng.choice(MISC)} drew {rng.randint(2, 99_000):,} "
                 f"people{rng.choice(EXTRAS)}.")
        elif kind == 3:
            s = (f"{rng.choice(PLACES)}-based {rng.choice(ORGS)} and {rng.choice(ORGS)}: "
                 f"{rng.choice(VERBS)} ({rng.choice(MISC)})")
        elif kind == 4:
            s = (f"“{person}” — {rng.choice(VERBS)} {rng.choice(PLACES)}/{rng.choice(PLACES)}; "
                 f"no. {rng.randint(1, 500)}!?")
        else:
            s = (f"{rng.choice(FIRST).upper()} {rng.choice(LAST)} @{rng.choice(LAST).lower()} "
                 f"{rng.choice(EXTRAS)} 中文 テスト café naïve")
        out.append(s)
    return out


def long_document(words: int, seed: int = 5) -> str:
    """A document of about `words` words made of varied sentences."""
    sents = varied_sentences(max(1, words // 8) + 10, seed=seed)
    text, count = [], 0
    for s in sents:
        text.append(s)
        count += len(s.split())
        if count >= words:
            break
    while count < words:
        s = sents[count % len(sents)]
        text.append(s)
        count += len(s.split())
    return " ".join(text)


def sentences_parquet(path, rows: int, sentences_per_row: int):
    """A Parquet file of `rows` rows (id "r0", "r1", ...; text: `sentences_per_row` varied sentences) at `path`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [" ".join(varied_sentences(sentences_per_row, seed=i)) for i in range(rows)]
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(rows)], "text": texts}), path)
    return path
