"""Turn per-token probabilities into tokens, words or entity spans, vectorized over every document of a chunk.

Three steps, each an array operation over the whole chunk:

- *units*: the tokens themselves (`simple`, and the tokens level), or words (`first`, `average`,
  `max`: transformers' TokenClassificationPipeline's word strategies), each with a label id and a score;
- *tags*: for the words level, each word's tag (for a span task its IOB2 tag, by the span rule);
- *groups*: entities, by the span rule of `fasttag.schemes` (`SpanTable.starts`): a unit starts a new
  entity when its document changes, its prefix begins one (B-, S-, U-), its type differs from the
  previous unit's, or the previous unit ends one (E-, S-, L-, U-, O). For IOB2 labels this is exactly
  the pipeline's grouping; BIOES/BILOU entities are kept whole where the pipeline splits them. A
  group's label is its type, its score the mean of its units' scores; groups outside every entity
  (``O``) are dropped.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass

import numpy as np

from fasttag.model import LabelScheme
from fasttag.options import AGGREGATIONS as STRATEGIES
from fasttag.options import Aggregation


@dataclass
class Spans:
    """Entities (or words, or tokens) of a chunk as parallel arrays, sorted by (doc, start)."""

    doc: np.ndarray  # int64 document index within the chunk
    start: np.ndarray  # int64 character offset (a token index for pre-tokenized input)
    end: np.ndarray  # int64 character offset, exclusive
    label: np.ndarray  # int64 index into the level's labels (LabelScheme.group_labels for entities)
    score: np.ndarray  # float32
    token: np.ndarray | None = None  # int64 flat index of each span's first token in the chunk

    def __len__(self) -> int:
        return len(self.doc)

    @classmethod
    def empty(cls) -> Spans:
        i = np.zeros(0, dtype=np.int64)
        return cls(i, i, i, i, np.zeros(0, dtype=np.float32), i)


@dataclass
class Units:
    """The units of a chunk that get a label (tokens, or words), in document order."""

    doc: np.ndarray  # int64 document index
    first: np.ndarray  # int64 flat index of the unit's first token in the chunk
    start: np.ndarray  # int64 character offset of its first token's start
    end: np.ndarray  # int64 character offset of its last token's end
    label: np.ndarray  # int64 label id (the model's label)
    score: np.ndarray  # float32 the label's probability, as the strategy takes it
    first_in_doc: np.ndarray  # bool: the first unit of its document

    def __len__(self) -> int:
        return len(self.doc)

    def take(self, index: np.ndarray) -> Units:
        return Units(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


def _segment_ends(starts: np.ndarray, n: int) -> np.ndarray:
    return np.append(starts[1:], n) - 1


def _first_in_doc(doc_of: np.ndarray) -> np.ndarray:
    first = np.ones(len(doc_of), dtype=bool)
    first[1:] = doc_of[1:] != doc_of[:-1]
    return first


def _argmax_scores(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    label = probs.argmax(axis=1)
    return label, np.take_along_axis(probs, label[:, None], axis=1)[:, 0]


def token_units(probs: np.ndarray, offsets: np.ndarray, doc_offsets: np.ndarray,
                skip: np.ndarray | None = None) -> Units:
    """Every token (but those in `skip`, the special tokens inside a text) as a unit with its argmax label."""
    n_docs = len(doc_offsets) - 1
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(doc_offsets))
    index = np.arange(len(doc_of), dtype=np.int64)
    if skip is not None and skip.any():
        index = np.flatnonzero(~skip)
    probs, offsets, doc_of = probs[index], offsets[index], doc_of[index]
    label, score = _argmax_scores(probs)
    return Units(doc_of, index, offsets[:, 0].astype(np.int64), offsets[:, 1].astype(np.int64), label.astype(np.int64),
                 score.astype(np.float32), _first_in_doc(doc_of))


def word_units(probs: np.ndarray, offsets: np.ndarray, doc_offsets: np.ndarray, scheme: LabelScheme,
               strategy: Aggregation = "first", skip: np.ndarray | None = None, is_subword: np.ndarray | None = None,
               trailing: np.ndarray | None = None) -> Units:
    """Words as units, each labelled from its tokens by `strategy` (first, average or max), as the pipeline does.

    A word is a token that is not `is_subword` and the tokens after it that are. `trailing` marks the
    trailing punctuation of whitespace words: a run of such tokens is split off as a word of its own
    from its first token whose label `scheme.splits_trailing` (outside the entity, or any tag of a tag task).
    """
    if strategy not in ("first", "average", "max"):
        raise ValueError(f"words take the first, average or max strategy, not {strategy!r}")
    n_docs = len(doc_offsets) - 1
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(doc_offsets))
    index = np.arange(len(doc_of), dtype=np.int64)
    if skip is not None and skip.any():
        index = np.flatnonzero(~skip)
        probs, offsets, doc_of = probs[index], offsets[index], doc_of[index]
        is_subword = is_subword[index] if is_subword is not None else None
        trailing = trailing[index] if trailing is not None else None
    n = len(doc_of)
    if n == 0:
        return token_units(probs, offsets, np.zeros(1, dtype=np.int64))
    first_in_doc = _first_in_doc(doc_of)
    word_start = first_in_doc if is_subword is None else (first_in_doc | ~is_subword)
    if trailing is not None and trailing.any():
        cut = trailing & scheme.splits_trailing[probs.argmax(axis=1)]
        prev_cut = np.zeros(n, dtype=bool)
        prev_cut[1:] = cut[:-1]
        word_start = word_start | (cut & ~prev_cut)
    ws = np.flatnonzero(word_start)
    we = _segment_ends(ws, n)
    if strategy == "first":
        label, score = _argmax_scores(probs[ws])
    elif strategy == "average":
        counts = (we - ws + 1).astype(np.float32)
        label, score = _argmax_scores(np.add.reduceat(probs, ws, axis=0) / counts[:, None])
    else:  # max: the word takes the label of its most confident token (the first one on ties)
        tmax = probs.max(axis=1)
        word_id = np.cumsum(word_start) - 1
        best = np.maximum.reduceat(tmax, ws)
        candidate = np.where(tmax == best[word_id], np.arange(n), n)
        pick = np.minimum.reduceat(candidate, ws)
        label = probs[pick].argmax(axis=1)
        score = tmax[pick]
    return Units(doc_of[ws], index[ws], offsets[ws, 0].astype(np.int64), offsets[we, 1].astype(np.int64),
                 label.astype(np.int64), score.astype(np.float32), first_in_doc[ws])


def units_of(probs: np.ndarray, offsets: np.ndarray, doc_offsets: np.ndarray, scheme: LabelScheme,
             strategy: Aggregation = "simple", skip: np.ndarray | None = None, is_subword: np.ndarray | None = None,
             trailing: np.ndarray | None = None) -> Units:
    """The units `strategy` labels: tokens for `simple` (and `none`), words for the others."""
    if strategy not in STRATEGIES:
        raise ValueError(f"aggregation strategy must be one of {', '.join(STRATEGIES)}")
    if strategy in ("simple", "none"):
        return token_units(probs, offsets, doc_offsets, skip)
    return word_units(probs, offsets, doc_offsets, scheme, strategy, skip, is_subword, trailing)


def group_units(units: Units, scheme: LabelScheme) -> Spans:
    """Entities of `units` by the span rule (see the module docstring); start/end are the units' own."""
    if not len(units):
        return Spans.empty()
    gs = np.flatnonzero(scheme.spans.starts(units.label, units.first_in_doc))
    ge = _segment_ends(gs, len(units))
    g_score = np.add.reduceat(units.score.astype(np.float64), gs) / (ge - gs + 1)
    g_label = scheme.group_label_id[units.label[gs]]
    keep = ~scheme.ignored_group[g_label]
    gs, ge = gs[keep], ge[keep]
    return Spans(doc=units.doc[gs], start=units.start[gs], end=units.end[ge], label=g_label[keep].astype(np.int64),
                 score=g_score[keep].astype(np.float32), token=units.first[gs])


def word_tags(units: Units, scheme: LabelScheme) -> np.ndarray:
    """Each word's tag as an index into `scheme.word_labels`: for a span task the IOB2 tag the span rule
    reads (``S-PER`` is ``B-PER``, ``E-PER`` is ``I-PER``, a stray ``I-PER`` after ``O`` is ``B-PER``), so
    that the entities are exactly the words' B-/I- runs; for a tag task the model's label."""
    if scheme.kind == "tag" or not len(units):
        return scheme.word_begin[units.label]
    starts = scheme.spans.starts(units.label, units.first_in_doc)
    return np.where(starts, scheme.word_begin[units.label], scheme.word_inside[units.label])


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
    spans = group_units(units_of(probs, offsets, doc_offsets, scheme, strategy, skip, is_subword, trailing), scheme)
    return snap_to_graphemes(spans, texts) if texts is not None else spans


def decode_words(
    probs: np.ndarray,
    offsets: np.ndarray,
    doc_offsets: np.ndarray,
    scheme: LabelScheme,
    strategy: Aggregation = "first",
    skip: np.ndarray | None = None,
    is_subword: np.ndarray | None = None,
    trailing: np.ndarray | None = None,
    texts: list[str] | None = None,
) -> Spans:
    """Every word, ``O`` included, with its tag (`word_tags`: label indexes `scheme.word_labels`) and score.

    Words are those `decode_spans` groups into entities with the same arguments.
    """
    units = word_units(probs, offsets, doc_offsets, scheme, strategy, skip, is_subword, trailing)
    spans = Spans(units.doc, units.start, units.end, word_tags(units, scheme), units.score, units.first)
    return snap_to_graphemes(spans, texts) if texts is not None else spans


def decode_tokens(probs: np.ndarray, offsets: np.ndarray, doc_offsets: np.ndarray, scheme: LabelScheme,
                  skip: np.ndarray | None = None) -> Spans:
    """The pipeline's `aggregation_strategy="none"`: every token whose label is not ignored (``O``), with
    its full label (label indexes `scheme.labels`), its score and offsets; `token` is its flat index."""
    units = token_units(probs, offsets, doc_offsets, skip)
    keep = np.flatnonzero(~scheme.ignored_label[units.label])
    units = units.take(keep)
    return Spans(units.doc, units.start, units.end, units.label, units.score, units.first)


def _joins(ch: str) -> bool:
    """A character that belongs to the grapheme cluster before it: a combining mark, or a zero-width joiner."""
    return ch == "\u200d" or unicodedata.category(ch)[0] == "M"


def code_points(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's texts as one array of code points (uint32) and each text's first index in it (D+1,)."""
    base = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), out=base[1:])
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return cps, base


def snap_to_graphemes(spans: Spans, texts: list[str]) -> Spans:
    """Spans widened so that none starts or ends inside a grapheme cluster.

    Tokenizers that normalize text drop combining marks (``Zoe`` + U+0308), so an entity's last token
    can end before the mark that completes its last letter: the end is moved over trailing marks (and
    over a zero-width joiner with the character it joins), a start inside a cluster back to its base.
    Only spans next to a character from U+0300 on are looked at (found with array operations).
    """
    if not len(spans):
        return spans
    cps, base = code_points(texts)
    if not len(cps):
        return spans
    length = np.diff(base)[spans.doc]
    g_start, g_end = base[spans.doc] + spans.start, base[spans.doc] + spans.end
    top = len(cps) - 1
    after = np.where(spans.end < length, cps[np.minimum(g_end, top)], 0)
    at = np.where((spans.start > 0) & (spans.start < length), cps[np.minimum(g_start, top)], 0)
    candidates = np.flatnonzero((after >= 0x300) | (at >= 0x300))
    if len(candidates):  # only where that character joins the one before it (asked once per distinct character)
        chars = np.unique(np.concatenate([after[candidates], at[candidates]]))
        joining = chars[[_joins(chr(c)) for c in chars.tolist()]]
        candidates = candidates[np.isin(after[candidates], joining) | np.isin(at[candidates], joining)]
    if not len(candidates):
        return spans
    start, end = spans.start.copy(), spans.end.copy()
    n = len(start)
    for k in candidates.tolist():
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
    return dataclasses.replace(spans, start=start, end=end)
