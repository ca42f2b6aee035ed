"""`fasttag eval`: entity-level P/R/F1 of an exported model on labelled data, through the run engine."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fasttag.errors import MissingExtraError, ModelError, OutputError
from fasttag.labelled import is_tag, read_labelled
from fasttag.tagger import Tagger

MODES = ("strict", "default")


def evaluate(
    tagger: Tagger,
    data: str | Path,
    mode: str = "strict",
    tag_column: str = "ner_tags",
    labels: list[str] | None = None,
    scheme: str = "auto",
) -> dict:
    """seqeval scores of `tagger` on `data`; each word's prediction comes from its first sub-token."""
    from fasttag.metrics import entity_scores

    not_iob = [label for label in tagger.labels if not is_tag(label)]
    if not_iob:
        raise ModelError(
            f"the model's labels are not IOB2 tags ({', '.join(not_iob[:5])}{', ...' if len(not_iob) > 5 else ''}): "
            "eval scores IOB2 entities, so it needs a model trained on O/B-X/I-X labels (its config.json id2label)"
        )
    gold = read_labelled(data, tag_column=tag_column, labels=labels, scheme=scheme)
    started = time.perf_counter()
    predicted = tagger.predict_words(gold.tokens)
    seconds = time.perf_counter() - started
    scores = entity_scores(gold.tags, predicted, mode=mode)
    scores["data"] = {
        "path": str(data),
        "sentences": len(gold),
        "words": gold.n_words,
        "scheme": gold.scheme,
        "repaired_tags": gold.repaired,
    }
    scores["model"] = {"path": str(tagger.bundle.path), "precision": tagger.bundle.precision}
    scores["mode"] = mode
    scores["seconds"] = seconds
    unknown = sorted({t for s in gold.tags for t in s} - set(tagger.labels))
    if unknown:
        scores["labels_unknown_to_model"] = unknown
    return scores


def write_json(scores: dict, path: str | Path) -> None:
    """Write the scores whole or not at all (a temporary file beside `path`, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(json.dumps(scores, indent=2) + "\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from None


def require_seqeval() -> None:
    try:
        import seqeval  # noqa: F401
    except ImportError:
        raise MissingExtraError("eval", "fasttag eval", "seqeval") from None
