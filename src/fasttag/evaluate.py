"""`fasttag eval`: scores of an exported model on labelled data, through the run engine.

The scores follow the model's task (`ModelBundle.task`): a span task is scored by seqeval's
entity-level precision, recall and F1 in the model's scheme; a tag task by word accuracy, per-tag
precision, recall and F1 and their macro average (`fasttag.metrics`), as `fasttag train` scores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fasttag.errors import InputError, MissingExtraError, UsageError
from fasttag.labelled import LabelledData, TagColumn, read_labelled
from fasttag.options import JOINS, Join, Mode, Scheme
from fasttag.schemes import Task, convert, spans
from fasttag.tagger import Tagger
from fasttag.write import write_text_whole

# How `evaluate_end_to_end` groups sentences into texts: one text per sentence, one per -DOCSTART-
# document, or a whole number N: consecutive sentences until a text has at least N words.
GROUPINGS = ("sentences", "docstart")
Span = tuple[int, int, str]
# How labelled words become text (`join_words`, `options.JOINS`): "spaces" keeps each word apart, as it was
# labelled; "natural" writes them as text is written ("London.", "said,", "(Reuters)", "Germany's").
_NO_SPACE_BEFORE = frozenset([".", ",", ";", ":", "!", "?", ")", "]", "}", "%", "...", "'s", "'S", "n't", "N'T",
                              "'re", "'ve", "'ll", "'d", "'m", "'RE", "'VE", "'LL", "'D", "'M"])
_NO_SPACE_AFTER = frozenset(["(", "[", "{", "$", "#"])


def read_gold(
    data: str | Path,
    task: Task,
    task_labels: list[str],
    tag_column: TagColumn = None,
    labels: list[str] | None = None,
    scheme: Scheme = "auto",
) -> LabelledData:
    """The labelled data as the model's task reads it.

    For a span-task model the data may be in any span scheme: tags in another scheme than the
    model's are converted to it (`fasttag.schemes.convert`, by the lenient span rule), as ``fasttag
    train --convert-to`` converted the data the model was trained on. Data of the other kind is an
    error (data of nothing but ``O`` tags fits a tag-task model too).
    """
    gold = read_labelled(data, tag_column=tag_column, labels=labels, scheme=scheme)
    if task.kind == "tag" and gold.task.kind == "span" and all(t == "O" for s in gold.tags for t in s):
        gold.task = task
    if gold.task.kind != task.kind:
        what = ("tags without entity prefixes (a tag task)" if gold.task.kind == "tag"
                else f"span tags ({gold.task.scheme.upper()})")
        raise InputError(f"{data} holds {what}, but the model is a {task.describe(len(task_labels))} task: give "
                         "data of its kind (in CoNLL files, choose the tag column with --tag-column)")
    if gold.task.scheme != task.scheme:
        gold.tags = [convert(sentence, task.scheme) for sentence in gold.tags]
        gold.task = task
    return gold


def evaluate(
    tagger: Tagger,
    data: str | Path,
    mode: Mode = "strict",
    tag_column: TagColumn = None,
    labels: list[str] | None = None,
    scheme: Scheme = "auto",
) -> dict:
    """Scores of `tagger` on `data`, each word's prediction from its first sub-token, by the model's task.

    Span tasks: seqeval entity scores (``mode`` strict in the model's scheme, or default); tag tasks:
    `fasttag.metrics.tag_scores` (``mode`` does not apply). ``scores["metric"]`` names the headline
    figure (``f1`` or ``accuracy``), as ``metrics.json`` of `fasttag train` does.
    """
    from fasttag.metrics import entity_scores, tag_scores

    task = tagger.bundle.task
    gold = read_gold(data, task, tagger.labels, tag_column=tag_column, labels=labels, scheme=scheme)
    started = time.perf_counter()
    predicted = tagger.predict_words(gold.tokens)
    seconds = time.perf_counter() - started
    if task.kind == "tag":
        scores = tag_scores(gold.tags, predicted)
    else:
        scores = entity_scores(gold.tags, predicted, mode=mode, scheme=task.scheme)
    scores["kind"], scores["scheme"] = task.kind, task.scheme
    scores["metric"] = "accuracy" if task.kind == "tag" else "f1"
    scores["data"] = {
        "path": str(data),
        "sentences": len(gold),
        "words": gold.n_words,
        "scheme": gold.scheme,
        "repaired_tags": gold.repaired,
        **({"converted_to": task.scheme} if _converted(gold, task) else {}),
    }
    scores["model"] = {"path": str(tagger.bundle.path), "precision": tagger.bundle.precision}
    scores["mode"] = mode if task.kind == "span" else None
    scores["seconds"] = seconds
    _note_unknown_labels(scores, gold, tagger)
    return scores


def _note_unknown_labels(scores: dict, gold: LabelledData, tagger) -> None:
    """The data's tags the model has not (`labels_unknown_to_model`, which the CLI warns of): their entities can
    only be missed, whichever way the scores are taken."""
    unknown = sorted({t for s in gold.tags for t in s} - set(tagger.labels))
    if unknown:
        scores["labels_unknown_to_model"] = unknown


def _converted(gold: LabelledData, task: Task) -> bool:
    """Whether the data's tags were read in another scheme than the model's (IOB1 is read as IOB2)."""
    return task.kind == "span" and ("iob2" if gold.scheme == "iob1" else gold.scheme) != task.scheme


def join_words(words: list[str], join: Join = "spaces") -> tuple[str, list[int]]:
    """One sentence's text rebuilt from its labelled words, and each word's start in it.

    ``spaces``: the words joined by single spaces. ``natural``: as text is written, no space before closing
    punctuation and clitics (``. , ; : ! ? ) ] } % ... 's n't 're 've 'll 'd 'm``), none after an opening
    bracket, ``$`` or ``#``, and straight double quotes taken as opening and closing in turn (no space after an
    opening one, none before a closing one). Every word keeps its characters, so gold spans hold.
    """
    if join not in JOINS:
        raise UsageError(f"--join must be one of {', '.join(JOINS)}, not {join!r}")
    parts: list[str] = []
    starts: list[int] = []
    pos, glue, quote_open = 0, False, False
    for i, word in enumerate(words):
        if i:
            space = join == "spaces" or not (glue or word in _NO_SPACE_BEFORE or (word == '"' and quote_open))
            if space:
                parts.append(" ")
                pos += 1
        starts.append(pos)
        parts.append(word)
        pos += len(word)
        if join == "natural":
            if word == '"':
                quote_open = not quote_open
                glue = quote_open  # an opening quote holds on to the next word
            else:
                glue = word in _NO_SPACE_AFTER
    return "".join(parts), starts


def gold_spans(words: list[str], tags: list[str], base: int = 0, join: Join = "spaces") -> list[Span]:
    """Character spans (start, end, type) of the entities of one sentence whose words are joined by `join_words`.

    Entities are read by the span rule of `fasttag.schemes` (any span scheme).
    """
    starts = [base + s for s in join_words(words, join)[1]]
    return [(starts[a], starts[b - 1] + len(words[b - 1]), kind) for a, b, kind in spans(tags)]


def gold_words(words: list[str], tags: list[str], base: int = 0, join: Join = "spaces") -> list[Span]:
    """Character spans (start, end, tag) of every word of one sentence whose words are joined by `join_words`."""
    starts = join_words(words, join)[1]
    return [(base + s, base + s + len(word), tag) for s, word, tag in zip(starts, words, tags, strict=True)]


def labelled_texts(gold: LabelledData, documents: str | int = "sentences", units: str = "entities",
                   join: Join = "spaces") -> tuple[list[str], list[list[Span]]]:
    """Raw texts rebuilt from labelled words (`join_words`; sentences of one text apart by a space), and each
    text's gold spans.

    ``documents``: ``"sentences"`` (a text per sentence), ``"docstart"`` (a text per ``-DOCSTART-``
    document) or N (consecutive sentences joined until a text has at least N words). ``units``:
    ``"entities"`` (`gold_spans`) or ``"words"`` (`gold_words`: every word with its tag).
    """
    if join not in JOINS:
        raise UsageError(f"--join must be one of {', '.join(JOINS)}, not {join!r}")
    spans_of = gold_words if units == "words" else gold_spans
    if isinstance(documents, str) and documents.isdigit():
        documents = int(documents)
    if documents not in GROUPINGS and not (isinstance(documents, int) and documents > 0):
        raise UsageError(f"--documents must be sentences, docstart or a number of words, not {documents!r}")
    texts: list[str] = []
    spans: list[list[Span]] = []
    cur: list[str] = []
    cur_spans: list[Span] = []
    length = words = 0
    doc_of = gold.documents or [0] * len(gold)

    def flush() -> None:
        nonlocal length, words
        if cur:
            texts.append(" ".join(cur))
            spans.append(cur_spans.copy())
        cur.clear()
        cur_spans.clear()
        length = words = 0

    for n, (sentence, tags) in enumerate(zip(gold.tokens, gold.tags, strict=True)):
        if documents == "sentences" or (documents == "docstart" and n and doc_of[n] != doc_of[n - 1]):
            flush()
        base = length + (1 if cur else 0)
        cur_spans.extend(spans_of(sentence, tags, base, join))
        text = join_words(sentence, join)[0]
        cur.append(text)
        length = base + len(text)
        words += len(sentence)
        if isinstance(documents, int) and words >= documents:
            flush()
    flush()
    return texts, spans


def span_scores(gold: list[list[Span]], predicted: list[list[Span]]) -> dict:
    """Exact-match (start, end, label) scores, overall and per type, and a partial-overlap figure.

    Partial: a predicted span counts when it overlaps a gold span of its type, a gold span when a
    predicted span of its type overlaps it.
    """
    from fasttag.metrics import prf

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold texts but {len(predicted)} predicted")
    kinds = sorted({s[2] for doc in gold for s in doc} | {s[2] for doc in predicted for s in doc})
    tp = dict.fromkeys(kinds, 0)
    n_gold = dict.fromkeys(kinds, 0)
    n_pred = dict.fromkeys(kinds, 0)
    pred_hit = gold_hit = 0
    for g_doc, p_doc in zip(gold, predicted, strict=True):
        g_set = set(g_doc)
        for s in g_doc:
            n_gold[s[2]] += 1
        for s in p_doc:
            n_pred[s[2]] += 1
            tp[s[2]] += s in g_set
        pred_hit += sum(any(g[2] == p[2] and p[0] < g[1] and g[0] < p[1] for g in g_doc) for p in p_doc)
        gold_hit += sum(any(g[2] == p[2] and p[0] < g[1] and g[0] < p[1] for p in p_doc) for g in g_doc)
    scores = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    scores["types"] = {k: prf(tp[k], n_pred[k], n_gold[k]) for k in kinds if n_gold[k] or n_pred[k]}
    total_pred, total_gold = sum(n_pred.values()), sum(n_gold.values())
    p = pred_hit / total_pred if total_pred else 0.0
    r = gold_hit / total_gold if total_gold else 0.0
    scores["partial"] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}
    return scores


def word_scores(gold: list[list[Span]], predicted: list[list[Span]]) -> dict:
    """End-to-end scores of a tag task: gold words against the words the run path found, by exact spans.

    A gold word is right when a predicted word has its (start, end) and its tag; so a word the run
    path cut differently (``Inc.`` as ``Inc`` and ``.``) is wrong whatever its tag. Returns
    `fasttag.metrics.tag_scores`' figures (accuracy over the gold words; per tag, a predicted word
    counts against the precision of its tag) and ``boundaries``: the share of gold words found whole.
    """
    from fasttag.metrics import prf

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold texts but {len(predicted)} predicted")
    tp: dict[str, int] = {}
    n_gold: dict[str, int] = {}
    n_pred: dict[str, int] = {}
    whole = 0
    for g_doc, p_doc in zip(gold, predicted, strict=True):
        g_set, g_bounds = set(g_doc), {(a, b) for a, b, _ in g_doc}
        for _, _, tag in g_doc:
            n_gold[tag] = n_gold.get(tag, 0) + 1
        whole += len(g_bounds & {(a, b) for a, b, _ in p_doc})
        for w in p_doc:
            n_pred[w[2]] = n_pred.get(w[2], 0) + 1
            if w in g_set:
                tp[w[2]] = tp.get(w[2], 0) + 1
    words, correct = sum(n_gold.values()), sum(tp.values())
    tags = {t: prf(tp.get(t, 0), n_pred.get(t, 0), n_gold.get(t, 0)) for t in sorted(n_gold.keys() | n_pred)}
    macro = {key: sum(x[key] for x in tags.values()) / len(tags) if tags else 0.0
             for key in ("precision", "recall", "f1")}
    return {"accuracy": correct / words if words else 0.0, "correct": correct, "words": words,
            **{f"macro_{key}": value for key, value in macro.items()}, "tags": tags,
            "boundaries": whole / words if words else 0.0}


def evaluate_end_to_end(
    tagger: Tagger,
    data: str | Path,
    documents: str | int = "sentences",
    tag_column: TagColumn = None,
    labels: list[str] | None = None,
    scheme: Scheme = "auto",
    join: Join = "spaces",
) -> dict:
    """What `fasttag run` gets on raw text: the labelled words joined into texts (sentences or documents; `join`:
    by spaces or as text is written, see `join_words`), tagged through the run path (the tagger's aggregation,
    word rule, windows and batches).

    Span tasks: the entities (level entities) scored as exact character spans against the gold
    entities (`span_scores`). Tag tasks: the words (level words) scored against the gold words
    (`word_scores`). The tagger must be at its task's default level.
    """
    task = tagger.bundle.task
    level = "words" if task.kind == "tag" else "entities"
    if getattr(tagger, "level", level) != level:
        raise UsageError(f"end-to-end scoring of a {task.kind} task reads --level {level}, not {tagger.level}")
    gold = read_gold(data, task, tagger.labels, tag_column=tag_column, labels=labels, scheme=scheme)
    texts, gold_sp = labelled_texts(gold, documents, units="words" if task.kind == "tag" else "entities", join=join)
    started = time.perf_counter()
    predicted = [[(e.start, e.end, e.label) for e in ents] for ents in tagger.tag(texts)]
    seconds = time.perf_counter() - started
    scores = word_scores(gold_sp, predicted) if task.kind == "tag" else span_scores(gold_sp, predicted)
    scores["kind"], scores["scheme"] = task.kind, task.scheme
    scores["metric"] = "accuracy" if task.kind == "tag" else "f1"
    scores["data"] = {
        "path": str(data),
        "sentences": len(gold),
        "words": gold.n_words,
        "texts": len(texts),
        "documents": documents,
        "join": join,
        "scheme": gold.scheme,
        "repaired_tags": gold.repaired,
    }
    scores["model"] = {"path": str(tagger.bundle.path), "precision": tagger.bundle.precision}
    scores["mode"] = "end-to-end"
    scores["aggregation"] = tagger.aggregation
    scores["word_boundaries"] = tagger.tokenizer.word_boundaries
    scores["seconds"] = seconds
    _note_unknown_labels(scores, gold, tagger)
    return scores


def write_json(scores: dict, path: str | Path) -> None:
    """Write the scores whole or not at all (a temporary file beside `path`, then a rename)."""
    write_text_whole(path, json.dumps(scores, indent=2) + "\n")


def require_seqeval() -> None:
    try:
        import seqeval  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("eval", "fasttag eval", "seqeval") from exc
