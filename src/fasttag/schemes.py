"""What kind of task a label set is, and how a sequence of tags becomes spans.

A token-classification model is one of two kinds:

- a *span* task: entity labels with scheme prefixes and ``O`` for outside. IOB1/IOB2 use ``B-``/``I-``;
  BIOES adds ``E-`` (last word) and ``S-`` (a one-word entity); BILOU spells those ``L-`` and ``U-``.
- a *tag* task: one label per word and no prefixes (part-of-speech tags, morphology, any label set).

`detect_task` tells them apart from the labels alone (a model's id2label, or the tags of a data file).
IOB1 and IOB2 labels are the same set (``B-X``, ``I-X``): only data can tell them apart (see
``fasttag.labelled``); a model with ``B-``/``I-`` labels is decoded by the one rule below, which reads both.

**The span rule**, the same for every scheme, used by every command (run, eval, show, pre-tokenized input):
a word whose label is not ``O`` starts a new entity when

- its prefix begins one (``B-``, ``S-``, ``U-``), or
- the previous word is ``O``, of another type, or ends an entity (``E-``, ``S-``, ``L-``, ``U-``),

and otherwise continues the previous word's entity. So ``S-X`` is a one-word entity, ``B-X I-X E-X``
one entity, and ill-formed sequences are read leniently, never dropped: an ``I-X`` or ``E-X`` with no
``B-X`` before it starts an entity (as the transformers pipeline reads a stray ``I-X``), and an
``I-X`` after ``E-X`` starts a new one. For IOB2 models this is exactly the pipeline's grouping; for
BIOES/BILOU models it differs on purpose: the pipeline takes ``E-X`` and ``S-X`` for tags of their
own and splits such entities apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from fasttag.errors import SchemeError  # defined with the others; importable from here too

Kind = Literal["span", "tag"]
TagScheme = Literal["iob1", "iob2", "bioes", "bilou", "none"]  # "none": a tag task
KINDS: tuple[Kind, ...] = get_args(Kind)
TAG_SCHEMES: tuple[TagScheme, ...] = get_args(TagScheme)
SPAN_SCHEMES: tuple[TagScheme, ...] = ("iob1", "iob2", "bioes", "bilou")
OUTSIDE = "O"
# What a tag task predicts for a word with no sub-token (cut off by the length limit, or none from the tokenizer):
# no tag. Scoring counts the word wrong and lists no row for it (a tag task's labels need have no "O").
NO_TAG = ""

PREFIXES = frozenset("BIESLU")
BEGIN_PREFIXES = frozenset("BSU")  # a word with this prefix starts an entity
END_PREFIXES = frozenset("ESLU")  # a word with this prefix ends its entity
_SCHEME_PREFIXES = {"iob2": frozenset("BI"), "iob1": frozenset("BI"), "bioes": frozenset("BIES"),
                    "bilou": frozenset("BILU")}


@dataclass(frozen=True)
class Task:
    """A model's kind of task and the scheme of its labels (`none` for a tag task)."""

    kind: Kind
    scheme: TagScheme

    def describe(self, n_labels: int | None = None) -> str:
        """``span (BIOES)`` / ``tag (45 labels)`` (``tag (one label per word)`` without a count), as `info` shows it."""
        if self.kind == "span":
            return f"span ({self.scheme.upper()})"
        return f"tag ({n_labels} labels)" if n_labels is not None else "tag (one label per word)"

    @property
    def unpredicted(self) -> str:
        """The tag of a word with no sub-token: ``O`` (no entity) in a span task, `NO_TAG` in a tag task."""
        return OUTSIDE if self.kind == "span" else NO_TAG


def split_label(label: str) -> tuple[str | None, str]:
    """(prefix, type) of a label: ``("B", "PER")`` for ``B-PER``, ``(None, "NNP")`` for ``NNP``.

    The type keeps everything after the first ``-`` (``B-creative-work`` is of type ``creative-work``).
    """
    if len(label) > 2 and label[1] == "-" and label[0] in PREFIXES:
        return label[0], label[2:]
    return None, label


def detect_task(labels: Iterable[str], where: str = "the labels") -> Task:
    """The kind and scheme of a label set: prefixes present decide (see the module docstring).

    Raises `SchemeError` for a set that mixes prefixed and plain labels (other than ``O``), or BIOES's
    ``E-``/``S-`` with BILOU's ``L-``/``U-``.
    """
    labels = [str(x) for x in labels]
    prefixed = [x for x in labels if split_label(x)[0] is not None]
    if not prefixed:
        return Task("tag", "none")
    plain = [x for x in labels if x != OUTSIDE and split_label(x)[0] is None]
    if plain:
        raise SchemeError(
            f"{where} mix schemes: {_few(prefixed)} carry entity prefixes but {_few(plain)} do not; a span "
            "task's labels are O and B-/I-(/E-/S- or L-/U-) labels, a tag task's have no prefixes")
    prefixes = {split_label(x)[0] for x in prefixed}
    if prefixes & {"E", "S"} and prefixes & {"L", "U"}:
        raise SchemeError(f"{where} mix BIOES (E-, S-) and BILOU (L-, U-) prefixes: {_few(prefixed)}")
    if prefixes & {"E", "S"}:
        return Task("span", "bioes")
    if prefixes & {"L", "U"}:
        return Task("span", "bilou")
    return Task("span", "iob2")


def recorded_task(recorded: object, labels: Sequence[str], where: str = "the labels") -> Task:
    """A model's task: ``recorded`` (``{"kind": ..., "scheme": ...}``, as a manifest or a checkpoint's
    ``fasttag_task`` holds it) when it is one and the labels fit it, else `detect_task` of the labels.

    This is the one rule every command uses to tell what a model is. Raises `SchemeError` for labels
    that do not fit the recorded scheme, or (nothing recorded) that mix schemes.
    """
    if isinstance(recorded, dict):
        kind, scheme = recorded.get("kind"), recorded.get("scheme")
        if kind in KINDS and scheme in TAG_SCHEMES and (kind == "tag") == (scheme == "none"):
            check_scheme(labels, scheme, where=where)
            return Task(kind, scheme)
    return detect_task(labels, where=where)


def check_scheme(labels: Iterable[str], scheme: TagScheme, where: str = "the labels") -> None:
    """Raise `SchemeError` unless every label fits `scheme` (``none``: no prefixes at all)."""
    labels = list(labels)
    if scheme == "none":
        wrong = [x for x in labels if split_label(x)[0] is not None]
        if wrong:
            raise SchemeError(f"{where}: {_few(wrong)} carry entity prefixes, but the scheme is none (a tag task)")
        return
    allowed = _SCHEME_PREFIXES[scheme]
    wrong = [x for x in labels if x != OUTSIDE and split_label(x)[0] not in allowed]
    if wrong:
        raise SchemeError(f"{where}: {_few(wrong)} are not {scheme.upper()} labels")


def _few(labels: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(labels[:n])
    return shown + (f" (and {len(labels) - n} more)" if len(labels) > n else "")


def spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entities of one sentence as (first word, end word exclusive, type), by the span rule.

    Reads every span scheme (IOB1, IOB2, BIOES, BILOU) and is the reference for the vectorized
    `begins` that the run path uses.
    """
    out: list[tuple[int, int, str]] = []
    start, current, ended = -1, None, True
    for i, tag in enumerate(tags):
        prefix, kind = split_label(tag)
        if tag == OUTSIDE or prefix is None:
            if current is not None:
                out.append((start, i, current))
            start, current, ended = -1, None, True
            continue
        if prefix in BEGIN_PREFIXES or ended or kind != current:
            if current is not None:
                out.append((start, i, current))
            start, current = i, kind
        ended = prefix in END_PREFIXES
    if current is not None:
        out.append((start, len(tags), current))
    return out


def render(entities: Iterable[tuple[int, int, str]], n: int, scheme: TagScheme) -> list[str]:
    """Tags of `n` words for `entities` (as `spans` returns them) in a span scheme.

    IOB1 writes ``B-`` only where an entity directly follows one of the same type.
    """
    if scheme not in SPAN_SCHEMES:
        raise ValueError(f"render needs a span scheme, not {scheme!r}")
    tags = [OUTSIDE] * n
    last_end, last_type = -1, None
    for start, end, kind in sorted(entities):
        for i in range(start, end):
            tags[i] = "I-" + kind
        if scheme == "iob2":
            tags[start] = "B-" + kind
        elif scheme == "iob1":
            if start == last_end and kind == last_type:
                tags[start] = "B-" + kind
        else:
            single, last = ("S", "E") if scheme == "bioes" else ("U", "L")
            if end - start == 1:
                tags[start] = f"{single}-{kind}"
            else:
                tags[start], tags[end - 1] = "B-" + kind, f"{last}-{kind}"
        last_end, last_type = end, kind
    return tags


def convert(tags: Sequence[str], scheme: TagScheme) -> list[str]:
    """One sentence's tags, read by the span rule and written in `scheme` (e.g. IOB2 to BIOES)."""
    return render(spans(tags), len(tags), scheme)


@dataclass(frozen=True)
class SpanTable:
    """Per-label arrays for the vectorized span rule (`begins`)."""

    type_id: np.ndarray  # label id -> type id (O and plain labels: a type of their own)
    begins: np.ndarray  # label id -> its prefix starts an entity (B-, S-, U-)
    ends: np.ndarray  # label id -> its prefix ends an entity (E-, S-, L-, U-), and O

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> SpanTable:
        types: dict[str, int] = {}
        type_id, begins, ends = [], [], []
        for label in labels:
            prefix, kind = split_label(label)
            type_id.append(types.setdefault(kind if prefix else "\0" + kind, len(types)))
            begins.append(prefix in BEGIN_PREFIXES)
            ends.append(prefix is None or prefix in END_PREFIXES)
        return cls(np.asarray(type_id, dtype=np.int64), np.asarray(begins, dtype=bool),
                   np.asarray(ends, dtype=bool))

    def starts(self, label_ids: np.ndarray, first_in_doc: np.ndarray) -> np.ndarray:
        """Whether each unit (word or token) of a sequence starts a new group, by the span rule.

        `first_in_doc` marks each document's first unit. Units labelled ``O`` start groups of their own
        too (the caller drops them).
        """
        new = first_in_doc.copy()
        if len(label_ids) == 0:
            return new
        new |= self.begins[label_ids]
        new[1:] |= self.type_id[label_ids[1:]] != self.type_id[label_ids[:-1]]
        new[1:] |= self.ends[label_ids[:-1]]
        new[0] = True
        return new
