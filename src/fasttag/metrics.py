"""Entity-level precision, recall and F1 over IOB2 tag sequences, computed by seqeval.

`fasttag train` and `fasttag eval` both score through `entity_scores`, so their figures are
comparable: strict IOB2 by default (an entity is a B-X followed by I-X tags; a stray I- starts
nothing), or seqeval's lenient conlleval-style ``mode="default"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from fasttag.errors import MissingExtraError
from fasttag.options import MODES, Mode


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: Mode = "strict") -> dict:
    """Micro-averaged and per-type entity scores: ``{"precision", "recall", "f1", "support", "types": {...}}``."""
    try:
        from seqeval.metrics import classification_report
        from seqeval.scheme import IOB2
    except ImportError as exc:
        raise MissingExtraError("eval", "entity scoring", "seqeval") from exc
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true sequences but {len(y_pred)} predicted")
    for n, (true, pred) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(true) != len(pred):
            raise ValueError(f"sequence {n}: {len(true)} true tags but {len(pred)} predicted")
    kwargs = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on empty averages and undefined metrics
        report = classification_report(
            [list(t) for t in y_true], [list(p) for p in y_pred], output_dict=True, zero_division=0, **kwargs
        )
    micro = report.pop("micro avg")
    for key in ("macro avg", "weighted avg"):
        report.pop(key, None)

    def row(r: dict) -> dict:
        return {"precision": float(r["precision"]), "recall": float(r["recall"]), "f1": float(r["f1-score"]),
                "support": int(r["support"])}

    scores = row(micro)
    scores["types"] = {kind: row(r) for kind, r in sorted(report.items())}
    return scores


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
