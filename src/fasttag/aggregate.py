"""Turn per-token probabilities into entity spans, vectorized over every document of a chunk.

The rules are transformers' TokenClassificationPipeline's (`simple`, `first`, `average`, `max`),
rewritten as array operations: a unit (token, or word for the word strategies) starts a new group
when its document changes, its tag (label without B-/I-) differs from the previous unit's, or it is a
B- label; a group's label is its first unit's label after the first "-", its score the mean of its
units' scores; groups labelled "O" are dropped.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from fasttag.model import LabelScheme
from fasttag.options import AGGREGATIONS as STRATEGIES
from fasttag.options import Aggregation


@dataclass
class Spans:
    """Entities of a chunk as parallel arrays, sorted by (doc, start)."""

    doc: np.ndarray  # int64 document index within the chunk
    start: np.ndarray  # int64 character offset
    end: np.ndarray  # int64 character offset (exclusive)
    label: np.ndarray  # int64 index into LabelScheme.group_labels
    score: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.doc)

    @classmethod
    def empty(cls) -> Spans:
        i = np.zeros(0, dtype=np.int64)
        return cls(i, i, i, i, np.zeros(0, dtype=np.float32))


def _group_starts(first_in_doc: np.ndarray, tag: np.ndarray, begin: np.ndarray) -> np.ndarray:
    new = first_in_doc.copy()
    new[1:] |= tag[1:] != tag[:-1]
    new |= begin
    new[0] = True
    return np.flatnonzero(new)


def _segment_ends(starts: np.ndarray, n: int) -> np.ndarray:
    return np.append(starts[1:], n) - 1


def decode_spans(
    probs: np.ndarray,
    offsets: np.ndarray,
    doc_offsets: np.ndarray,
    scheme: LabelScheme,
    strategy: Aggregation = "simple",
    skip: np.ndarray | None = None,
    is_subword: np.ndarray | None = None,
    trailing: np.ndarray | None = None,
    texts: list[str] | None = None,
) -> Spans:
    """Entity spans from token probabilities `probs` (T, labels) and character `offsets` (T, 2).

    `trailing` marks the trailing punctuation of whitespace words: a run of such tokens is split off
    as a word of its own from its first token the model tags "O", and stays in the word otherwise.
    With `texts`, spans are widened to whole grapheme clusters (`snap_to_graphemes`).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"aggregation strategy must be one of {', '.join(STRATEGIES)}")
    n_docs = len(doc_offsets) - 1
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(doc_offsets))
    if skip is not None and skip.any():
        keep = ~skip
        probs, offsets, doc_of = probs[keep], offsets[keep], doc_of[keep]
        is_subword = is_subword[keep] if is_subword is not None else None
        trailing = trailing[keep] if trailing is not None else None
    n = len(doc_of)
    if n == 0:
        return Spans.empty()
    first_in_doc = np.ones(n, dtype=bool)
    first_in_doc[1:] = doc_of[1:] != doc_of[:-1]

    if strategy == "simple":
        label = probs.argmax(axis=1)
        score = np.take_along_axis(probs, label[:, None], axis=1)[:, 0]
        u_start, u_end, u_doc, u_first = offsets[:, 0], offsets[:, 1], doc_of, first_in_doc
    else:
        word_start = first_in_doc if is_subword is None else (first_in_doc | ~is_subword)
        if trailing is not None and trailing.any():
            outside = scheme.ignored_group[scheme.group_label_id[probs.argmax(axis=1)]]
            cut = trailing & outside
            prev_cut = np.zeros(n, dtype=bool)
            prev_cut[1:] = cut[:-1]
            word_start = word_start | (cut & ~prev_cut)
        ws = np.flatnonzero(word_start)
        we = _segment_ends(ws, n)
        if strategy == "first":
            unit = probs[ws]
            label = unit.argmax(axis=1)
            score = np.take_along_axis(unit, label[:, None], axis=1)[:, 0]
        elif strategy == "average":
            counts = (we - ws + 1).astype(np.float32)
            unit = np.add.reduceat(probs, ws, axis=0) / counts[:, None]
            label = unit.argmax(axis=1)
            score = np.take_along_axis(unit, label[:, None], axis=1)[:, 0]
        else:  # max: the word takes the label of its most confident token (the first one on ties)
            tmax = probs.max(axis=1)
            word_id = np.cumsum(word_start) - 1
            best = np.maximum.reduceat(tmax, ws)
            candidate = np.where(tmax == best[word_id], np.arange(n), n)
            pick = np.minimum.reduceat(candidate, ws)
            label = probs[pick].argmax(axis=1)
            score = tmax[pick]
        u_start, u_end, u_doc, u_first = offsets[ws, 0], offsets[we, 1], doc_of[ws], first_in_doc[ws]

    gs = _group_starts(u_first, scheme.tag_id[label], scheme.is_begin[label])
    ge = _segment_ends(gs, len(label))
    g_score = np.add.reduceat(score.astype(np.float64), gs) / (ge - gs + 1)
    g_label = scheme.group_label_id[label[gs]]
    keep = ~scheme.ignored_group[g_label]
    gs, ge = gs[keep], ge[keep]
    spans = Spans(
        doc=u_doc[gs].astype(np.int64),
        start=u_start[gs].astype(np.int64),
        end=u_end[ge].astype(np.int64),
        label=g_label[keep].astype(np.int64),
        score=g_score[keep].astype(np.float32),
    )
    return snap_to_graphemes(spans, texts) if texts is not None else spans


def _joins(ch: str) -> bool:
    """A character that belongs to the grapheme cluster before it: a combining mark, or a zero-width joiner."""
    return ch == "\u200d" or unicodedata.category(ch)[0] == "M"


def snap_to_graphemes(spans: Spans, texts: list[str]) -> Spans:
    """Spans widened so that none starts or ends inside a grapheme cluster.

    Tokenizers that normalize text drop combining marks (``Zoe`` + U+0308), so an entity's last token
    can end before the mark that completes its last letter: the end is moved over trailing marks (and
    over a zero-width joiner with the character it joins), a start inside a cluster back to its base.
    Only spans next to a character from U+0300 on are looked at.
    """
    if not len(spans):
        return spans
    start, end = spans.start.copy(), spans.end.copy()
    n = len(start)
    for k in range(n):
        d = spans.doc[k]
        text, a, b = texts[d], int(start[k]), int(end[k])
        # never into the next entity, nor back over the previous one: spans stay disjoint
        limit = int(spans.start[k + 1]) if k + 1 < n and spans.doc[k + 1] == d else len(text)
        floor = int(end[k - 1]) if k and spans.doc[k - 1] == d else 0
        if b < limit and text[b] >= "\u0300":
            while b < limit and _joins(text[b]):
                b = min(limit, b + 2) if text[b] == "\u200d" else b + 1
        if floor < a < len(text) and text[a] >= "\u0300":
            while a > floor and _joins(text[a]):
                a -= 1
        start[k], end[k] = a, b
    return Spans(spans.doc, start, end, spans.label, spans.score)
