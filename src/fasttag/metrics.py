"""Entity-level precision, recall and F1 over IOB2 tag sequences, without torch or seqeval.

The scores equal seqeval's ``mode="strict", scheme=IOB2`` figures (tests check this): an entity is a
``B-X`` followed by the longest run of ``I-X``; an ``I-`` tag that continues nothing starts no
entity and is ignored; a predicted entity counts only when its type, start and end all match.
Written here in plain Python so that `fasttag eval` can score on the light install (seqeval pulls in
scikit-learn) and report the same numbers `fasttag train` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

Span = tuple[int, str, int, int]  # (sentence index, type, start, end), end exclusive


def strict_spans(tags: Sequence[str], sentence: int = 0) -> list[Span]:
    """The entities of one IOB2 tag sequence, read strictly (see the module docstring)."""
    spans: list[Span] = []
    start = -1
    kind = ""
    for i, tag in enumerate(tags):
        if start >= 0 and tag[:2] == "I-" and tag[2:] == kind:
            continue
        if start >= 0:
            spans.append((sentence, kind, start, i))
            start = -1
        if tag[:2] == "B-":
            start, kind = i, tag[2:]
    if start >= 0:
        spans.append((sentence, kind, start, len(tags)))
    return spans


def _prf(correct: int, predicted: int, support: int) -> dict[str, float | int]:
    # Zero divided by zero scores 0, as seqeval does (it also warns; we do not).
    precision = correct / predicted if predicted else 0.0
    recall = correct / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "predicted": predicted,
        "correct": correct,
    }


def entity_scores(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "strict"
) -> dict:
    """Micro-averaged and per-type entity scores of predicted against true IOB2 tag sequences.

    Returns ``{"precision", "recall", "f1", "support", "predicted", "correct", "types": {TYPE:
    {same keys}}}``; ``support`` counts true entities, ``predicted`` predicted ones. Types are
    sorted and include every type seen in either the truth or the predictions.
    """
    if mode != "strict":
        raise ValueError(f"unsupported mode {mode!r}: only 'strict' is implemented")
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true sequences but {len(y_pred)} predicted")
    true_spans: set[Span] = set()
    pred_spans: set[Span] = set()
    for n, (true, pred) in enumerate(zip(y_true, y_pred)):
        if len(true) != len(pred):
            raise ValueError(f"sequence {n}: {len(true)} true tags but {len(pred)} predicted")
        true_spans.update(strict_spans(true, n))
        pred_spans.update(strict_spans(pred, n))
    correct_spans = true_spans & pred_spans
    support = _count_types(true_spans)
    predicted = _count_types(pred_spans)
    correct = _count_types(correct_spans)
    scores: dict = _prf(len(correct_spans), len(pred_spans), len(true_spans))
    scores["types"] = {
        kind: _prf(correct[kind], predicted[kind], support[kind])
        for kind in sorted(set(support) | set(predicted))
    }
    return scores


def _count_types(spans: Iterable[Span]) -> Counter[str]:
    return Counter(span[1] for span in spans)


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
