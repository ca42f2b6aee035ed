"""Read labelled sentences (words and their tags) for training and evaluation.

Formats, chosen by extension (``.gz`` allowed on the text ones):

- CoNLL columns (``.txt .conll .iob .bio .tsv``): the word in the first column, the tag in the
  column ``tag_column`` names by index (``1`` is the second column, negative indexes count from the
  end; the last column unless told), separated by tabs (when the line has one) or spaces; a blank
  line between sentences; ``-DOCSTART-`` lines skipped. Every line of a file must have the same
  number of columns. CoNLL-2003's columns are word, POS, chunk, NER: ``tag_column=1`` reads POS.
- JSON lines (``.jsonl .ndjson``) and Parquet (``.parquet``): a ``tokens`` list column and a tag
  list column named by ``tag_column`` (``ner_tags`` unless told), holding tag strings or integers
  that index ``labels``. Parquet files written by HuggingFace ``datasets`` carry their ClassLabel
  names, used when no ``labels`` are given.

The scheme of the tags (``scheme``) is one of `fasttag.options.SCHEMES`; ``auto`` detects it from
the tags (see `fasttag.schemes`): no prefixes at all is a *tag task* (``none``: POS tags, any label
set), ``E-``/``S-`` prefixes BIOES, ``L-``/``U-`` BILOU, ``B-``/``I-`` alone IOB1 or IOB2 (below); a
file of nothing but ``O`` is IOB2. Tags that mix schemes, or that do not fit the scheme given, are an
error naming the file and line of the first tag that does not fit.

IOB tags come out as IOB2. IOB1 (``I-`` starts an entity, ``B-`` only separates two adjacent entities
of one type) and IOB2 with stray ``I-`` tags are mended by the same rule: an ``I-X`` that does not
follow ``B-X`` or ``I-X`` becomes ``B-X``. ``auto`` takes a file as IOB1 when some ``I-`` tag starts an
entity and no ``B-`` tag does (a ``B-X`` right after ``B-X``/``I-X`` does not count); otherwise as
IOB2, where each mended tag is an annotation error, counted in ``repaired`` so that the caller can
warn. BIOES, BILOU and tag-task tags are kept as they are. ``convert_to`` (``iob2``, ``bioes``,
``bilou``) rewrites span tags into another scheme after reading (`fasttag.schemes.convert`), e.g. to
train a BIOES model from IOB2 data.

Only the standard library and pyarrow here: the light install's `fasttag eval` reads with it too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fasttag.errors import InputError, UsageError
from fasttag.formats import (
    CONLL_SUFFIXES,
    JsonLine,
    JsonlLines,
    close_lines,
    labelled_format,
    numbered_lines,
    open_lines,
)
from fasttag.options import CONVERT_SCHEMES, SCHEMES, ConvertScheme, Scheme
from fasttag.schemes import OUTSIDE, Task, convert, detect_task, split_label

__all__ = ["CONLL_SUFFIXES", "SCHEMES", "LabelledData", "make_labelled", "order_labels", "parse_labels",
           "read_labelled", "tag_column_of"]
DOCSTART = "-DOCSTART-"
DEFAULT_TAG_FIELD = "ner_tags"  # the tag column of JSONL, Parquet and hub data unless told
# The prefixes each span scheme allows (besides O), in the order `order_labels` lists them.
SCHEME_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES", "bilou": "BILU"}
TagColumn = str | int | None


@dataclass
class LabelledData:
    """Sentences of words with one tag per word, and where each sentence came from."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str
    # Where each sentence starts, 1-based: a line number, or a row number when unit is "row".
    locations: list[int] = field(default_factory=list)
    # "word-line": one line per word (CoNLL); "line": one line per sentence (JSONL); "row": a row.
    unit: str = "row"
    scheme: str = "iob2"  # the scheme the source was read as (iob1, iob2, bioes, bilou, none)
    repaired: int = 0  # I- tags turned into B- (annotation errors when scheme is iob2)
    # Document index of each sentence (from -DOCSTART- lines or a document column); empty: unknown.
    documents: list[int] = field(default_factory=list)
    # The task of `tags` as held: IOB1 is held as IOB2, converted data in the scheme converted to.
    task: Task = field(default_factory=lambda: Task("span", "iob2"))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def labels(self) -> list[str]:
        """The ordered label list of the tags present (see `order_labels`)."""
        return order_labels((tag for sentence in self.tags for tag in sentence), self.task)

    @property
    def n_words(self) -> int:
        return sum(len(sentence) for sentence in self.tokens)

    def where(self, sentence: int, word: int | None = None) -> str:
        """``FILE:LINE`` (or ``FILE: row N``) of a sentence, or of one of its words."""
        loc = self.locations[sentence] if self.locations else sentence + 1
        if self.unit == "word-line":
            return f"{self.source}:{loc + (word or 0)}"
        place = f"{self.source}:{loc}" if self.unit == "line" else f"{self.source}: row {loc}"
        return place if word is None else f"{place} (word {word + 1})"


def is_tag(tag: object) -> bool:
    """Whether ``tag`` is ``O``, ``B-TYPE`` or ``I-TYPE``."""
    return isinstance(tag, str) and (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2))


def order_labels(tags: Iterable[str], task: Task | None = None) -> list[str]:
    """The label list of a set of tags, in a stable order that does not depend on the data's order.

    Span tasks: ``O`` first, then per entity type in alphabetical order its labels in the scheme's
    prefix order (``B-``, ``I-``; BIOES ``B- I- E- S-``; BILOU ``B- I- L- U-``), every prefix listed for
    every type seen, even if some never occur. Tag tasks: the tags sorted (by code point).
    ``task`` defaults to what `detect_task` finds (only ``O``, or nothing: IOB2).
    """
    seen = set(tags)
    if task is None:
        task = detect_task(seen) if seen - {OUTSIDE} else Task("span", "iob2")
    if task.kind == "tag":
        return sorted(seen)
    types = {split_label(tag)[1] for tag in seen if tag != OUTSIDE}
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in sorted(types) for prefix in SCHEME_PREFIXES[task.scheme]]


def parse_labels(labels: str | Sequence[str] | None, where: str = "the label list") -> list[str] | None:
    """Check a label list (or a comma-separated string of labels); None stays None.

    Any labels will do (a tag task's too), as long as they are distinct and of one scheme.
    """
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    labels = list(labels)
    if not labels:
        raise UsageError(f"{where} is empty")
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        raise UsageError(f"label {bad[0]!r} in {where} is not a non-empty string")
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise UsageError(f"label {label!r} is listed twice")
        seen.add(label)
    detect_task(labels, where=where)  # SchemeError for a list that mixes schemes
    return labels


def tag_column_of(tag_column: TagColumn, kind: str, source: str = "the data") -> str | int:
    """The tag column for a format: an index for CoNLL files (default -1, the last), a name otherwise.

    ``tag_column`` may be an int, a string of digits (``"1"``, ``"-1"``, as the CLI passes it) or a name.
    """
    if kind == "conll":
        if tag_column is None:
            return -1
        if isinstance(tag_column, int) and not isinstance(tag_column, bool):
            index = tag_column
        elif isinstance(tag_column, str) and re.fullmatch(r"[+-]?\d+", tag_column.strip()):
            index = int(tag_column)
        else:
            raise UsageError(f"--tag-column {tag_column!r} names a JSONL/Parquet column, but {source} is CoNLL "
                             "column text: give the tag column's index (1 for the second column, -1 for the last)")
        if index == 0:
            raise UsageError("--tag-column 0 is the word column; the tags are in column 1 or after (-1: the last)")
        return index
    if tag_column is None:
        return DEFAULT_TAG_FIELD
    if not isinstance(tag_column, str):
        raise UsageError(f"--tag-column {tag_column!r} is a column index, which only CoNLL files take; "
                         f"{source} names its columns: give the tag column's name")
    return tag_column


def detect_scheme(tags: Iterable[Sequence[str]]) -> str:
    """``"iob1"`` if some ``I-`` tag starts an entity and no ``B-`` tag does, else ``"iob2"``."""
    i_starts = False
    for sentence in tags:
        prev = "O"
        for tag in sentence:
            starts = prev == "O" or prev[2:] != tag[2:]
            if tag[:2] == "B-" and starts:
                return "iob2"
            if tag[:2] == "I-" and starts:
                i_starts = True
            prev = tag
    return "iob1" if i_starts else "iob2"


def to_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """IOB2 tags of one sentence: each ``I-X`` not after ``B-X``/``I-X`` becomes ``B-X``.

    Returns the tags and how many were changed.
    """
    out = list(tags)
    changed = 0
    prev = "O"
    for i, tag in enumerate(out):
        if tag[:2] == "I-" and (prev == "O" or prev[2:] != tag[2:]):
            out[i] = "B-" + tag[2:]
            changed += 1
        prev = tag
    return out, changed


def read_labelled(
    path: str | Path,
    *,
    tag_column: TagColumn = None,
    labels: Sequence[str] | None = None,
    scheme: Scheme = "auto",
    convert_to: ConvertScheme | None = None,
    format: str | None = None,
) -> LabelledData:
    """Read a labelled file (CoNLL columns, JSONL or Parquet) into `LabelledData`.

    ``tag_column``: the CoNLL column index, or the JSONL/Parquet column name (see `tag_column_of`).
    ``labels``, when given, is the complete label list of the data: integer tags index it, and a
    tag outside it is an error. ``format`` (``"conll"``, ``"jsonl"``, ``"parquet"``) overrides the
    extension. ``scheme`` and ``convert_to``: see the module docstring.
    """
    path = Path(path)
    labels = parse_labels(labels)
    kind = labelled_format(str(path), format)
    column = tag_column_of(tag_column, kind, str(path))
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    documents: list[int] = []
    if kind == "conll":
        assert isinstance(column, int)
        tokens, tags, locations, documents = _read_conll(path, column)
        unit = "word-line"
    elif kind == "jsonl":
        assert isinstance(column, str)
        tokens, tags, locations = _read_jsonl(path, column)
        unit = "line"
    else:
        assert isinstance(column, str)
        tokens, tags, locations, labels = _read_parquet(path, column, labels)
        unit = "row"
    data = make_labelled(
        tokens, tags, str(path), labels=labels, scheme=scheme, convert_to=convert_to, locations=locations, unit=unit
    )
    data.documents = documents
    return data


def make_labelled(
    tokens: list[list[str]],
    tags: list[list[Any]],
    source: str,
    *,
    labels: Sequence[str] | None = None,
    scheme: Scheme = "auto",
    convert_to: ConvertScheme | None = None,
    locations: list[int] | None = None,
    unit: str = "row",
) -> LabelledData:
    """Check raw tags (strings, or integers indexing ``labels``), mend IOB tags to IOB2, convert if asked."""
    if scheme not in SCHEMES:
        raise UsageError(f"unknown tag scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
    if convert_to is not None and convert_to not in CONVERT_SCHEMES:
        raise UsageError(f"--convert-to must be one of {', '.join(CONVERT_SCHEMES)}, not {convert_to!r}")
    labels = parse_labels(labels, where=f"{source}: the labels")
    data = LabelledData(tokens, tags, source, locations or [], unit)
    if not tokens:
        raise InputError(f"{source}: no labelled sentences found")
    allowed = set(labels) if labels is not None else None
    for n, sentence in enumerate(tags):
        for w, tag in enumerate(sentence):
            if not isinstance(tag, str):
                sentence[w] = tag = _label_of_index(tag, labels, data, n, w)
            if not tag.strip():
                raise InputError(f"{data.where(n, w)}: empty tag {tag!r}")
            if allowed is not None and tag not in allowed:
                raise InputError(f"{data.where(n, w)}: tag {tag!r} is not in the given labels")
    data.scheme = _resolve_scheme(data, scheme)
    if data.scheme in ("iob1", "iob2"):
        for n, sentence in enumerate(tags):
            fixed, changed = to_iob2(sentence)
            if changed:
                if allowed is not None:
                    for w, (old, new) in enumerate(zip(sentence, fixed, strict=True)):
                        if new not in allowed:
                            raise InputError(
                                f"{data.where(n, w)}: tag {old!r} starts an entity, as {new!r}, "
                                "which is not in the given labels"
                            )
                tags[n] = fixed
                data.repaired += changed
        data.task = Task("span", "iob2")
    else:
        data.task = Task("tag", "none") if data.scheme == "none" else Task("span", data.scheme)  # type: ignore[arg-type]
    if convert_to is not None:
        if data.task.kind == "tag":
            raise UsageError(f"--convert-to {convert_to}: {source} holds tags without scheme prefixes (a tag "
                             "task), which have no spans to convert")
        if convert_to != data.task.scheme:
            for n, sentence in enumerate(tags):
                tags[n] = convert(sentence, convert_to)
            data.task = Task("span", convert_to)
    return data


def _resolve_scheme(data: LabelledData, scheme: Scheme) -> str:
    """The scheme the tags are in: `scheme` checked against every tag, or (auto) detected from them.

    Raises `InputError` naming the first tag (file and line) that mixes schemes or does not fit.
    """
    first: dict[str, tuple[int, int, str]] = {}  # "prefixed", "plain", "ES", "LU" -> first such tag
    allowed = SCHEME_PREFIXES.get(scheme)
    for n, sentence in enumerate(data.tags):
        for w, tag in enumerate(sentence):
            prefix, _ = split_label(tag)
            if scheme == "none":
                if prefix is not None:
                    raise InputError(
                        f"{data.where(n, w)}: tag {tag!r} carries an entity prefix, but the scheme is none (a tag "
                        "task, whose tags have no prefixes); for span tags give --scheme auto or their scheme")
                continue
            if scheme != "auto":
                assert allowed is not None
                if tag != OUTSIDE and (prefix is None or prefix not in allowed):
                    raise InputError(f"{data.where(n, w)}: tag {tag!r} is not a {scheme.upper()} tag (O, or "
                                      f"{'/'.join(p + '-' for p in allowed)}TYPE){_scheme_hint(prefix)}")
                continue
            if tag == OUTSIDE:
                continue
            keys = ["plain"] if prefix is None else ["prefixed"] + [k for k in ("ES", "LU") if prefix in k]
            for key in keys:
                first.setdefault(key, (n, w, tag))
            for a, b, why in (("plain", "prefixed", "tags with and without entity prefixes"),
                              ("ES", "LU", "BIOES (E-, S-) and BILOU (L-, U-) prefixes")):
                if a in first and b in first:
                    (n1, w1, t1), (n2, w2, t2) = sorted((first[a], first[b]))
                    raise InputError(
                        f"{data.where(n2, w2)}: tag {t2!r} does not fit {data.where(n1, w1)}'s {t1!r}: the tags mix "
                        f"{why}; a span task's tags are O and B-/I- (IOB), B-/I-/E-/S- (BIOES) or B-/I-/L-/U- "
                        "(BILOU) tags, a tag task's have no prefixes")
    if scheme != "auto":
        return scheme
    if "plain" in first:
        return "none"
    if "ES" in first:
        return "bioes"
    if "LU" in first:
        return "bilou"
    return detect_scheme(data.tags)


def _scheme_hint(prefix: str | None) -> str:
    if prefix is None:
        return "; tags without prefixes are a tag task: give --scheme none (or auto)"
    if prefix in "ES":
        return "; E-/S- tags are BIOES: give --scheme bioes (or auto)"
    if prefix in "LU":
        return "; L-/U- tags are BILOU: give --scheme bilou (or auto)"
    return ""


def _label_of_index(tag: Any, labels: list[str] | None, data: LabelledData, n: int, w: int) -> str:
    if isinstance(tag, bool) or not isinstance(tag, int):
        raise InputError(f"{data.where(n, w)}: tag {tag!r} is neither a string nor an integer")
    if labels is None:
        raise InputError(
            f"{data.where(n, w)}: tags are integers; give the label names in order "
            "(--labels O,B-PER,I-PER,...)"
        )
    if not 0 <= tag < len(labels):
        raise InputError(f"{data.where(n, w)}: tag {tag} is out of range for {len(labels)} labels")
    return labels[tag]


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """Numbered text lines, with decoding and gzip errors reported by file and line."""
    # Decoded line by line (not through a text wrapper, which decodes ahead in blocks) so that a
    # bad byte is reported at its own line.
    fh = open_lines(str(path))
    try:
        for lineno, raw in numbered_lines(fh, str(path)):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not UTF-8 text ({exc.reason})") from exc
            yield lineno, (line[1:] if lineno == 1 and line[:1] == "\ufeff" else line)
    finally:
        close_lines(fh)


def _read_conll(path: Path, column: int = -1) -> tuple[list[list[str]], list[list[Any]], list[int], list[int]]:
    tokens: list[list[str]] = []
    tags: list[list[Any]] = []
    locations: list[int] = []
    documents: list[int] = []
    document = 0
    words: list[str] = []
    word_tags: list[str] = []
    columns = 0
    columns_line = 0

    def end_sentence() -> None:
        if words:
            tokens.append(words.copy())
            tags.append(word_tags.copy())
            documents.append(document)
            words.clear()
            word_tags.clear()

    for lineno, line in _lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            end_sentence()
            continue
        # Tabs, when present, separate the columns, so a word may hold a space.
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if fields[0] == DOCSTART:
            end_sentence()
            document += 1 if tokens else 0
            continue
        if len(fields) < 2:
            raise InputError(
                f"{path}:{lineno}: expected a word and a tag separated by a space or tab, "
                f"got {line!r}"
            )
        if column == -len(fields):
            raise InputError(f"{path}:{lineno}: --tag-column {column} is the word column of this line's "
                             f"{len(fields)} columns")
        if not -len(fields) < column < len(fields):
            raise InputError(
                f"{path}:{lineno}: no tag column {column} (--tag-column): the line has {len(fields)} columns, "
                f"the word and {len(fields) - 1} tag column{'s' if len(fields) > 2 else ''}"
            )
        if not columns:
            columns, columns_line = len(fields), lineno
        elif len(fields) != columns:
            raise InputError(
                f"{path}:{lineno}: {len(fields)} columns, but line {columns_line} has {columns}"
            )
        if not words:
            locations.append(lineno)
        words.append(fields[0])
        word_tags.append(fields[column])
    end_sentence()
    return tokens, tags, locations, documents


def _read_jsonl(path: Path, tag_column: str) -> tuple[list[list[str]], list[list[Any]], list[int]]:
    tokens: list[list[str]] = []
    tags: list[list[Any]] = []
    locations: list[int] = []
    fh = open_lines(str(path))
    try:
        for line in JsonlLines(fh, str(path)):
            record = _json_record(path, line)
            words, word_tags = _check_record(
                record.get("tokens"), record.get(tag_column), tag_column, f"{path}:{line.lineno}"
            )
            if words:
                tokens.append(words)
                tags.append(word_tags)
                locations.append(line.lineno)
    finally:
        close_lines(fh)
    return tokens, tags, locations


def _json_record(path: Path, line: JsonLine) -> Any:
    if line.exc is not None:
        if isinstance(line.exc, UnicodeDecodeError):
            raise InputError(f"{path}:{line.lineno}: not UTF-8 text ({line.exc.reason})") from line.exc
        why = line.exc.msg if isinstance(line.exc, json.JSONDecodeError) else line.error
        raise InputError(f"{path}:{line.lineno}: not valid JSON ({why})") from line.exc
    if not isinstance(line.value, dict):
        raise InputError(f"{path}:{line.lineno}: expected a JSON object per line")
    return line.value


def _check_record(words: Any, word_tags: Any, tag_column: str, where: str) -> tuple[list, list]:
    if words is None:
        raise InputError(f"{where}: no 'tokens' field")
    if word_tags is None:
        index = tag_column.lstrip("+-").isdigit()
        hint = ("a column index names a CoNLL column only; give the tag field's name" if index
                else "name the tag field with --tag-column")
        raise InputError(f"{where}: no {tag_column!r} field ({hint})")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise InputError(f"{where}: 'tokens' is not a list of strings")
    if not isinstance(word_tags, list):
        raise InputError(f"{where}: {tag_column!r} is not a list")
    if len(words) != len(word_tags):
        raise InputError(f"{where}: {len(words)} tokens but {len(word_tags)} tags")
    return words, word_tags


def _read_parquet(
    path: Path, tag_column: str, labels: list[str] | None
) -> tuple[list[list[str]], list[list[Any]], list[int], list[str] | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        missing = [c for c in ("tokens", tag_column) if c not in schema.names]
        if missing:
            raise InputError(
                f"{path}: no {missing[0]!r} column (columns: {', '.join(schema.names)})"
                + ("; name the tag column with --tag-column" if missing[0] == tag_column else "")
            )
        table = pq.read_table(path, columns=["tokens", tag_column])
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet ({exc})") from exc
    if labels is None:
        labels = _classlabel_names(schema, tag_column)
    tokens: list[list[str]] = []
    tags: list[list[Any]] = []
    locations: list[int] = []
    column_tags = table.column(tag_column).to_pylist()
    for row, (words, word_tags) in enumerate(zip(table.column("tokens").to_pylist(), column_tags, strict=True)):
        words, word_tags = _check_record(words, word_tags, tag_column, f"{path}: row {row + 1}")
        if words:
            tokens.append(words)
            tags.append(word_tags)
            locations.append(row + 1)
    return tokens, tags, locations, labels


def _classlabel_names(schema: Any, tag_column: str) -> list[str] | None:
    """The ClassLabel names HuggingFace ``datasets`` stores in a Parquet file's metadata."""
    try:
        meta = json.loads((schema.metadata or {})[b"huggingface"])
        feature = meta["info"]["features"][tag_column]
        inner = feature.get("feature", feature)
        names = list(inner["names"]) if inner.get("_type") == "ClassLabel" else []
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    # Names of any label set (a POS column's too) name the integer tags.
    return names if names and all(isinstance(name, str) for name in names) else None
