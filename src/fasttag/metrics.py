"""Scores of predicted tag sequences: entity-level for span tasks (seqeval), word-level for tag tasks.

`fasttag train` and `fasttag eval` both score through `entity_scores` (span tasks) and `tag_scores` (tag
tasks), so their figures are comparable. Span tasks are scored strictly in the model's scheme by
default (seqeval's strict mode with IOB2, IOBES for BIOES, BILOU: an entity is a well-formed sequence,
so a stray I- starts nothing), or in seqeval's lenient conlleval-style ``mode="default"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from fasttag.errors import MissingExtraError
from fasttag.options import MODES, Mode
from fasttag.schemes import NO_TAG


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: Mode = "strict",
                  scheme: str = "iob2") -> dict:
    """Micro-averaged and per-type entity scores: ``{"precision", "recall", "f1", "support", "types": {...}}``.

    ``scheme`` (iob1, iob2, bioes, bilou) is the tags' scheme: strict mode reads entities by seqeval's
    class for it (IOB1, IOB2, IOBES, BILOU); default mode reads BILOU's ``L-``/``U-`` as ``E-``/``S-``.
    """
    try:
        from seqeval import scheme as seqeval_schemes
        from seqeval.metrics import classification_report
    except ImportError as exc:
        raise MissingExtraError("eval", "entity scoring", "seqeval") from exc
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if scheme not in SEQEVAL_SCHEMES:
        raise ValueError(f"entity scores need a span scheme ({', '.join(SEQEVAL_SCHEMES)}), not {scheme!r}")
    _check_lengths(y_true, y_pred)
    true, pred = [list(t) for t in y_true], [list(p) for p in y_pred]
    if mode == "strict":
        kwargs: dict = {"mode": "strict", "scheme": getattr(seqeval_schemes, SEQEVAL_SCHEMES[scheme])}
    else:
        kwargs = {}
        if scheme == "bilou":  # conlleval knows E- and S-, not L- and U-
            true, pred = _bilou_as_bioes(true), _bilou_as_bioes(pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on empty averages and undefined metrics
        report = classification_report(true, pred, output_dict=True, zero_division=0, **kwargs)
    micro = report.pop("micro avg")
    for key in ("macro avg", "weighted avg"):
        report.pop(key, None)

    def row(r: dict) -> dict:
        return {"precision": float(r["precision"]), "recall": float(r["recall"]), "f1": float(r["f1-score"]),
                "support": int(r["support"])}

    scores = row(micro)
    scores["types"] = {kind: row(r) for kind, r in sorted(report.items())}
    return scores


SEQEVAL_SCHEMES = {"iob1": "IOB1", "iob2": "IOB2", "bioes": "IOBES", "bilou": "BILOU"}  # seqeval.scheme classes


def _bilou_as_bioes(tags: list[list[str]]) -> list[list[str]]:
    swap = {"L": "E", "U": "S"}
    return [[swap[t[0]] + t[1:] if t[:1] in swap and t[1:2] == "-" else t for t in s] for s in tags]


def _check_lengths(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true sequences but {len(y_pred)} predicted")
    for n, (true, pred) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(true) != len(pred):
            raise ValueError(f"sequence {n}: {len(true)} true tags but {len(pred)} predicted")


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    """Precision, recall and F1 from counts (0 where undefined), with the gold count as support."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": n_gold}


def tag_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """Scores of a tag task (one label per word): word accuracy, per-tag and macro-averaged P/R/F1.

    ``{"accuracy", "correct", "words", "macro_precision", "macro_recall", "macro_f1", "tags": {tag: {"precision",
    "recall", "f1", "support"}}}``. The macro average is the unweighted mean over every tag in the gold or the
    predicted tags (as scikit-learn's classification_report averages), a tag never predicted scoring 0.
    A prediction of `fasttag.schemes.NO_TAG` (a word with no sub-token) is wrong and in no tag's row: it
    counts against the accuracy and its gold tag's recall, not as a tag of its own. Needs no seqeval.
    """
    _check_lengths(y_true, y_pred)
    tp: dict[str, int] = {}
    n_gold: dict[str, int] = {}
    n_pred: dict[str, int] = {}
    for true, pred in zip(y_true, y_pred, strict=True):
        for t, p in zip(true, pred, strict=True):
            n_gold[t] = n_gold.get(t, 0) + 1
            if p != NO_TAG:
                n_pred[p] = n_pred.get(p, 0) + 1
            if t == p:
                tp[t] = tp.get(t, 0) + 1
    words, correct = sum(n_gold.values()), sum(tp.values())
    tags = {tag: prf(tp.get(tag, 0), n_pred.get(tag, 0), n_gold.get(tag, 0)) for tag in sorted(n_gold.keys() | n_pred)}
    macro = {key: sum(s[key] for s in tags.values()) / len(tags) if tags else 0.0
             for key in ("precision", "recall", "f1")}
    return {"accuracy": correct / words if words else 0.0, "correct": correct, "words": words,
            **{f"macro_{key}": value for key, value in macro.items()}, "tags": tags}


def format_tag_table(scores: dict, title: str | None = None) -> str:
    """A plain-text table of a tag task's per-tag precision, recall, F1 and support, macro average and accuracy."""
    rows = list(scores["tags"].items())
    width = max([len("tag"), len("macro avg")] + [len(tag) for tag, _ in rows])
    header = f"{'tag':<{width}}  precision  recall      f1  support"
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for tag, s in rows:
        lines.append(f"{tag:<{width}}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:6.4f}  {s['support']:7d}")
    lines.append("-" * len(header))
    lines.append(f"{'macro avg':<{width}}  {scores['macro_precision']:9.4f}  {scores['macro_recall']:6.4f}  "
                 f"{scores['macro_f1']:6.4f}  {scores['words']:7d}")
    lines.append(f"{'accuracy':<{width}}  {'':9}  {'':6}  {scores['accuracy']:6.4f}  {scores['words']:7d}"
                 f"   ({scores['correct']:,} of {scores['words']:,} words)")
    return "\n".join(lines)


def format_scores_table(scores: dict, title: str | None = None) -> str:
    """A plain-text table of per-type and overall precision, recall, F1 and support."""
    rows = [(kind, s) for kind, s in scores["types"].items()]
    rows.append(("overall", scores))
    width = max([len("type")] + [len(kind) for kind, _ in rows])
    header = f"{'type':<{width}}  precision  recall      f1  support"
    lines = [title] if title else []
    lines.append(header)
    lines.append("-" * len(header))
    for i, (kind, s) in enumerate(rows):
        if i == len(rows) - 1 and len(rows) > 1:
            lines.append("-" * len(header))
        lines.append(
            f"{kind:<{width}}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:6.4f}"
            f"  {s['support']:7d}"
        )
    return "\n".join(lines)
