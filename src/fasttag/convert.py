"""Convert the output of `fasttag run`, with the corpus it tagged, into files that annotation and NLP tools read.

`convert` reads OUTPUT and its CORPUS together, chunk by chunk (`fasttag.show.iter_entities` and
`fasttag.read.CorpusReader`), checks row by row that they belong together exactly as
``fasttag show --entities`` does (`fasttag.show.belonging_text`), and hands the documents one at a time
to the writer of the format, one ``_write_*`` function each, chosen by name in `WRITERS`. Memory stays
that of one chunk and one document whatever the corpus size (except a single-file DocBin, see
``spacy``). The result is written under a hidden temporary name beside DEST and renamed onto DEST only
when complete; an existing DEST is replaced only with ``overwrite``.

All offsets are Python string indices (Unicode code points), as `fasttag run` writes them.

Formats:

``spacy``
    A DocBin (``.spacy``) whose ``doc.ents`` are the entities, for ``spacy train`` and
    ``DocBin.from_disk``. The text is tokenized by ``spacy.blank(lang)`` (``xx``, multi-language, by
    default). An entity whose ends are not on spaCy token boundaries is placed by ``Doc.char_span``'s
    ``alignment_mode``: ``expand`` (default) grows it to the tokens it touches, ``contract`` shrinks it to
    the tokens wholly inside it (dropped if there are none), ``strict`` drops it; all are counted. An
    entity that overlaps an earlier one after alignment is dropped and counted. Documents are in row order
    (doc i is row i); the ids are not stored, since DocBin's user data costs about 0.7 ms a document
    (msgpack looks up its encoders each time), twice the rest of the work. DEST ``x.spacy`` is one file
    (DocBin holds all documents in memory until it is written); DEST without that suffix is a folder of
    ``part-00000.spacy`` ... files of at most ``docs_per_file`` documents each, in constant memory, which
    ``spacy train`` reads as one corpus.
``label-studio``
    A JSON list of tasks in Label Studio's import format with pre-annotations (checked against the
    import guide, ``docs/source/guide/predictions.md`` "Import span pre-annotations for text" in
    HumanSignal/label-studio, the editor's result type, and the ML backend's NER examples):
    ``{"data": {"text": ..., ID: ...}, "predictions": [{"model_version", "score", "result": [{"id",
    "from_name", "to_name", "type": "labels", "value": {"start", "end", "text", "labels": [LABEL]},
    "score"}]}]}``. ``from_name``/``to_name`` name the ``<Labels>`` and ``<Text>`` tags of the labeling
    config (``label`` and ``text`` by default), ``ID`` is the output's id column (or ``row``). The task's
    score is its least confident entity's (so that sorting by score brings the doubtful tasks first); a
    task without entities has an empty result and no score. The tasks pass label-studio-sdk 2.1.2's
    ``LabelInterface.validate_prediction`` for an NER config (checked by hand: the SDK pins an older numpy
    and pulls in OpenCV, too much for the test extra). Label Studio counts ``start``/``end`` in code
    points, as Python does, since 2022 (label-studio-frontend PR #308, after issue #1347: earlier
    versions counted UTF-16 units, off by one after each emoji).
``prodigy``
    JSONL tasks for Prodigy's ``ner_manual`` interface (prodi.gy docs, "Annotation interfaces"):
    ``{"text", "tokens": [{"text", "start", "end", "id", "ws"}], "spans": [{"start", "end", "label",
    "token_start", "token_end"}], "meta": {ID: ...}}``, with ``token_end`` inclusive, as Prodigy writes
    it. Tokens follow spaCy's ``Doc`` (which Prodigy is built on): ``ws`` is a single following space,
    any other whitespace is a token of its own, so the tokens spell the text exactly; offsets are
    spaCy's, Python code points.
``conll``
    One token and its IOB2 tag per line (``token<TAB>tag``), a blank line after each document, and with
    ``docstart`` a ``-DOCSTART-`` line before each; ``fasttag train --train`` and ``fasttag eval --data``
    read it back (`fasttag.labelled.read_labelled`). An empty document writes no token line.
``brat``
    A folder with ``NAME.txt`` (the text, byte for byte) and ``NAME.ann`` per document, and an
    ``annotation.conf`` listing the labels. Each entity is a text-bound annotation
    ``T1<TAB>PER 0 12<TAB>Ada Lovelace`` (brat's standoff format); one that spans a line break is split
    into fragments (``T2<TAB>ORG 0 5;6 10<TAB>Royal Society``), since brat's lines cannot hold one.
    Labels have whitespace replaced by ``_``. NAME is the row id with every character other than
    letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``, a leading ``.`` prefixed with ``_``, cut
    to 120 bytes, Windows device names (``CON``, ``NUL``, ...) prefixed with ``_``; a name already
    taken (two ids that read the same, or differ only in case on such a file system) gets ``~ROW``, the
    row number, appended.

OUTPUT may be `fasttag run`'s entities level (an ``entities`` column) or its words level (``--level
words``: a ``words`` column, every word with its tag). Tokens (``conll``, ``prodigy``) are then the
words, and a span task's entities the B-/I- runs of the words' IOB2 tags (the span rule), scored by the
mean of their words' scores as ``run`` scores entities; a tag task's words (part-of-speech tags, without
prefixes) are written as CoNLL word/tag lines, as spaCy ``token.tag_`` (a Doc of the words), and as one
span per word in the other formats. At the entities level, tokens are the text's whitespace-delimited
words, cut where an entity starts or ends inside one (``London.`` with the entity ``London`` gives
``London`` and ``.``). At the tokens level (``--level tokens``: the sub-tokens not tagged O), the
entities are the B-/I- runs of consecutive sub-tokens, scored by their mean, as ``--aggregation simple``
gives them, and the tokens are as at the entities level. Pre-tokenized outputs and the flat layout are
refused. Entities that overlap an
earlier one cannot be written as IOB2 tags or ``ner_manual`` spans: in ``conll``, ``prodigy`` and
``spacy`` they are dropped and counted (`fasttag run` never writes any).
"""

from __future__ import annotations

import bisect
import gzip
import io
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fasttag.entities import Entity, Token, Word
from fasttag.errors import MissingExtraError, UsageError, first_line
from fasttag.options import DEFAULT_MAX_TEXT_BYTES
from fasttag.schemes import spans as span_runs
from fasttag.schemes import split_label

if TYPE_CHECKING:
    from fasttag.show import EntityRows

__all__ = ["ALIGNMENTS", "FORMATS", "ConvertOptions", "ConvertStats", "Document", "convert", "documents",
           "iob_tags", "tokens"]

ALIGNMENTS = ("expand", "contract", "strict")  # spaCy's Doc.char_span alignment modes
SPACY_SUFFIX = ".spacy"
CONLL_DEST_SUFFIXES = (".txt", ".conll", ".iob", ".bio", ".tsv")  # what fasttag.labelled reads as CoNLL
# Names that look like files: refused where DEST must be a folder.
FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".gz", ".parquet", ".spacy", ".ann", *CONLL_DEST_SUFFIXES)


@dataclass
class ConvertOptions:
    """What the formats take besides DEST (each applies to one format)."""

    lang: str = "xx"  # spacy: the language of spacy.blank
    alignment: str = "expand"  # spacy: Doc.char_span alignment_mode for entities off token boundaries
    docs_per_file: int = 10_000  # spacy, DEST a folder: documents per .spacy file
    from_name: str = "label"  # label-studio: the <Labels> tag's name
    to_name: str = "text"  # label-studio: the <Text> tag's name
    model_version: str = "fasttag"  # label-studio: the predictions' model_version
    docstart: bool = False  # conll: a -DOCSTART- line before each document

    def check(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise UsageError(f"--alignment must be one of {', '.join(ALIGNMENTS)}, got {self.alignment!r}")
        if self.docs_per_file < 1:
            raise UsageError(f"--docs-per-file must be at least 1, got {self.docs_per_file}")
        for name, value in (("--from-name", self.from_name), ("--to-name", self.to_name), ("--lang", self.lang)):
            if not value.strip():
                raise UsageError(f"{name} cannot be empty")


@dataclass
class Document:
    """One row: its number, id (the row number when the output has no id column), text and entities.

    `words` are the row's words when the output is `fasttag run`'s words level (``--level words``); the
    entities are then the B-/I- runs of their IOB2 tags (by the span rule, `fasttag.schemes.spans`), and a
    tag task's words (tags without prefixes, such as part-of-speech) are its `tagged` words.
    """

    row: int
    id: Any
    text: str
    entities: list[Entity]
    words: list[Word] | None = None
    id_name: str = "row"

    @property
    def tagged(self) -> list[Word]:
        """A tag task's words: those whose tag is neither O nor prefixed (B-PER)."""
        return [w for w in self.words or () if w.label != "O" and split_label(w.label)[0] is None]

    def spans(self) -> list[Entity]:
        """What the span formats write: the entities, and a tag task's words each as a span of its tag."""
        tagged = [Entity(w.start, w.end, w.label, w.score, w.text) for w in self.tagged]
        return sorted(self.entities + tagged, key=lambda e: (e.start, e.end)) if tagged else self.entities

    def word_spans(self) -> list[tuple[int, int]] | None:
        return None if self.words is None else [(w.start, w.end) for w in self.words]


@dataclass
class ConvertStats:
    format: str
    dest: str
    documents: int = 0
    empty: int = 0  # documents with no text
    entities: int = 0  # entities read (a tag task's tagged words count as entities)
    written: int = 0  # entities in the converted files
    words: int = 0  # words read, from a words-level output
    adjusted: int = 0  # spacy: entities moved onto token boundaries (expand, contract)
    unaligned: int = 0  # spacy: entities dropped for their token boundaries (strict, contract)
    overlapping: int = 0  # entities dropped for overlapping an earlier one
    files: int = 0  # files written (.spacy parts; brat pairs and annotation.conf)
    alignment: str = "expand"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        from fasttag.show import plural

        text = (f"wrote {self.dest} ({self.format}): {plural(self.documents, 'document')}"
                + (f" ({self.empty:,} without text)" if self.empty else "")
                + (f", {plural(self.words, 'word')}" if self.words else "")
                + f", {plural(self.written, 'entity')}")
        if self.written != self.entities:
            text += f" of {self.entities:,}"
        if self.files:
            text += f" in {plural(self.files, 'file')}"
        if self.adjusted:
            verb = "expanded" if self.alignment == "expand" else "contracted"
            text += f"; {self.adjusted:,} {verb} to spaCy token boundaries (--alignment {self.alignment})"
        if self.unaligned:
            why = "no whole token inside" if self.alignment == "contract" else "not on spaCy token boundaries"
            text += f"; {self.unaligned:,} dropped: {why} (--alignment {self.alignment})"
        if self.overlapping:
            text += f"; {self.overlapping:,} dropped: overlapping an earlier entity"
        return "".join([text, *(f"; {n}" for n in self.notes)])


# -- reading OUTPUT and CORPUS together -------------------------------------------------------------

def documents(output: str, corpus: str, text_column: str = "text", on_error: str = "stop",
              chunk_rows: int = 2048, *, max_text_bytes: int | None = DEFAULT_MAX_TEXT_BYTES,
              limit: int | None = None) -> Iterator[Document]:
    """Row i of OUTPUT with row i of CORPUS, read chunk by chunk, checked as `fasttag show --entities` checks.

    CORPUS's rows are those the run kept: bad lines and texts over `max_text_bytes` skipped where `on_error`
    is "skip", the first `limit` only. Raises InputError ("OUTPUT does not belong to CORPUS: ...") at the first
    row that does not belong, or when one file has more rows than the other.
    """
    from fasttag.read import CorpusReader
    from fasttag.show import iter_entities

    if output == "-" and corpus == "-":
        raise UsageError("OUTPUT and --input cannot both read stdin")
    reader = CorpusReader(corpus, text_column, chunk_rows=chunk_rows, on_error=on_error,  # type: ignore[arg-type]
                          max_text_bytes=max_text_bytes, limit=limit)
    texts = (t for chunk in reader for t in chunk.texts)
    rows = ((c, j) for c in iter_entities(output, chunk_rows, levels=("entities", "words", "tokens"))
            for j in range(len(c)))
    return _paired(output, corpus, texts, rows)


def _paired(output: str, corpus: str, texts: Iterator[str | None], rows: Iterator[tuple[EntityRows, int]]
            ) -> Iterator[Document]:
    from fasttag.show import belonging_text, not_belonging

    row = 0
    for chunk, j in rows:
        try:
            text = next(texts)
        except StopIteration:
            raise not_belonging(output, corpus, f"{corpus} has {row:,} rows but {output} has more "
                                                "(a run writes one output row per input row)") from None
        items = sorted(chunk.items[j], key=lambda e: (e.start, e.end))
        text = belonging_text(row, text, items, output, corpus, chunk.ids[j], chunk.id_name)
        doc_id = chunk.ids[j] if chunk.id_name not in (None, "row") else row
        if chunk.level == "words":
            yield Document(row, doc_id, text, entities_of_words(items, text), items, chunk.id_name or "row")
        elif chunk.level == "tokens":
            yield Document(row, doc_id, text, entities_of_tokens(items, text), None, chunk.id_name or "row")
        else:
            yield Document(row, doc_id, text, items, None, chunk.id_name or "row")
        row += 1
    if next(texts, _END) is not _END:
        raise not_belonging(output, corpus, f"{output} has {row:,} rows but {corpus} has more "
                                            "(a run writes one output row per input row)")


_END = object()


def entities_of_words(words: list[Word], text: str) -> list[Entity]:
    """The entities of a span task's words (in text order): the B-/I- runs of their tags, each scored by
    the mean of its words' scores, as `fasttag run` scores entities."""
    out = []
    for a, b, kind in span_runs([w.label for w in words]):
        start, end = words[a].start, words[b - 1].end
        score = sum(w.score for w in words[a:b]) / (b - a)
        out.append(Entity(start, end, kind, score, text[start:end]))
    return out


def entities_of_tokens(tokens: list[Token], text: str) -> list[Entity]:
    """The entities of a tokens-level output's sub-tokens (those not tagged O, with their full labels): the
    B-/I- runs of consecutive sub-tokens (a gap in `index` is an O sub-token between), each scored by the mean
    of its sub-tokens' scores, as `--aggregation simple` groups and scores them. A label without a prefix (a
    tag task's) is a span of its own."""
    tags: list[str] = []
    at: list[Token | None] = []
    previous: int | None = None
    for t in sorted(tokens, key=lambda t: t.index):
        if previous is not None and t.index != previous + 1:
            tags.append("O")
            at.append(None)
        tags.append(t.label)
        at.append(t)
        previous = t.index
    out = [Entity(t.start, t.end, t.label, t.score, t.text) for t in tokens if split_label(t.label)[0] is None
           and t.label != "O"]
    for a, b, kind in span_runs(tags):
        run = [t for t in at[a:b] if t is not None]
        start, end = run[0].start, run[-1].end
        out.append(Entity(start, end, kind, sum(t.score for t in run) / len(run), text[start:end]))
    return sorted(out, key=lambda e: (e.start, e.end))


# -- tokens and tags ------------------------------------------------------------------------------

_NON_SPACE = re.compile(r"\S+")


def tokens(text: str, entities: Iterable[Entity], words: Iterable[tuple[int, int]] | None = None
           ) -> list[tuple[int, int]]:
    """The (start, end) spans of the text's tokens: its whitespace-delimited words, cut where an entity
    (or one of `words`) starts or ends inside one. No token holds whitespace; every non-space character
    is in exactly one token."""
    points = {p for e in entities for p in (e.start, e.end)}
    if words:
        points.update(p for w in words for p in w)
    cuts = sorted(points)
    out: list[tuple[int, int]] = []
    k = 0
    for m in _NON_SPACE.finditer(text):
        start, end = m.span()
        while k < len(cuts) and cuts[k] <= start:
            k += 1
        while k < len(cuts) and cuts[k] < end:
            out.append((start, cuts[k]))
            start = cuts[k]
            k += 1
        out.append((start, end))
    return out


def iob_tags(spans: list[tuple[int, int]], entities: Iterable[Entity]) -> list[str]:
    """The IOB2 tag of each token of `tokens(...)`, for disjoint entities in start order."""
    tags = ["O"] * len(spans)
    i = 0
    for e in entities:
        while i < len(spans) and spans[i][1] <= e.start:
            i += 1
        prefix = "B-"
        while i < len(spans) and spans[i][0] < e.end:
            tags[i] = prefix + e.label
            prefix = "I-"
            i += 1
    return tags


def _disjoint(entities: Iterable[Entity], stats: ConvertStats) -> list[Entity]:
    """Entities in start order, less those that overlap an earlier one (counted)."""
    kept: list[Entity] = []
    for e in entities:
        if kept and e.start < kept[-1].end:
            stats.overlapping += 1
            continue
        kept.append(e)
    return kept


def _score(value: float) -> float:
    """A float32 score as its shortest decimal, as `fasttag run` writes it to JSONL."""
    return Entity(0, 0, "", value, "").to_dict()["score"]


def _json_id(value: Any) -> Any:
    """An id as JSON holds it: str, int, float, bool and None as they are, anything else as text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _dumps(obj: Any) -> str:
    from fasttag.write import json_dumps

    return json_dumps(obj)


# -- writers, one per format ----------------------------------------------------------------------

def _write_spacy(docs: Iterable[Document], path: Path, options: ConvertOptions, stats: ConvertStats) -> None:
    try:
        import spacy
        from spacy.tokens import Doc, DocBin
    except ImportError as exc:
        raise MissingExtraError("spacy", "fasttag convert --to spacy", exc.name or "spacy") from exc
    try:
        nlp = spacy.blank(options.lang)
    except ImportError as exc:  # an unknown code, or a language whose tokenizer needs another package
        raise UsageError(f"--lang {options.lang}: spaCy cannot make a blank pipeline ({first_line(exc)})") from exc
    stats.alignment = options.alignment
    one_file = not path.is_dir()  # a folder DEST is made before the writer starts
    docbin = DocBin()

    def flush() -> None:
        nonlocal docbin
        docbin.to_disk(path if one_file else path / f"part-{stats.files:05d}{SPACY_SUFFIX}")
        stats.files += 1
        docbin = DocBin()

    for d in docs:
        tagged = d.tagged
        if tagged:  # a tag task: a Doc of its words, each with its tag
            doc = _tagged_doc(nlp.vocab, d, Doc)
            stats.written += len(tagged)
            docbin.add(doc)
            if not one_file and len(docbin) >= options.docs_per_file:
                flush()
            continue
        doc = nlp.make_doc(d.text)
        spans: list[Any] = []
        for e in d.entities:
            span = doc.char_span(e.start, e.end, label=e.label, alignment_mode=options.alignment)
            if span is None:
                stats.unaligned += 1
                continue
            if spans and span.start < spans[-1].end:  # an expanded entity can reach into the next one
                stats.overlapping += 1
                continue
            if (span.start_char, span.end_char) != (e.start, e.end):
                stats.adjusted += 1
            spans.append(span)
        doc.ents = spans
        stats.written += len(spans)
        docbin.add(doc)
        if not one_file and len(docbin) >= options.docs_per_file:
            flush()
    if one_file or len(docbin) or not stats.files:  # a folder holds at least one file, maybe empty
        flush()
    if one_file:
        stats.files = 0  # DEST is the file: no count to report


def _tagged_doc(vocab: Any, d: Document, doc_class: Any) -> Any:
    """A spaCy Doc of a tag task's words, `token.tag_` their tags (whitespace tokens ``_SP``, as spaCy tags them)."""
    toks = _spacy_tokens(d.text, tokens(d.text, [], d.word_spans()))
    tag_of = {(w.start, w.end): w.label for w in d.words or ()}
    tags = [tag_of.get((t["start"], t["end"]), "_SP" if t["text"].isspace() else "") for t in toks]
    return doc_class(vocab, words=[t["text"] for t in toks], spaces=[t["ws"] for t in toks], tags=tags)


def _write_label_studio(docs: Iterable[Document], path: Path, options: ConvertOptions, stats: ConvertStats) -> None:
    with _open_text(path) as fh:
        fh.write("[")
        for n, d in enumerate(docs):
            results = [{
                "id": f"{d.row}-{k}",
                "from_name": options.from_name,
                "to_name": options.to_name,
                "type": "labels",
                "value": {"start": e.start, "end": e.end, "text": e.text, "labels": [e.label]},
                "score": _score(e.score),
            } for k, e in enumerate(d.spans())]
            prediction: dict[str, Any] = {"model_version": options.model_version}
            if results:
                prediction["score"] = _score(min(e.score for e in d.spans()))
            prediction["result"] = results
            data = {"text": d.text}
            if d.id_name == "text":  # the id column's own name is taken by the document
                if not n:
                    stats.notes.append("the id column 'text' is written as data.text_id (data.text is the document)")
                data["text_id"] = _json_id(d.id)
            else:
                data[d.id_name] = _json_id(d.id)
            fh.write(",\n" if n else "\n")
            fh.write(_dumps({"data": data, "predictions": [prediction]}))
            stats.written += len(results)
        fh.write("\n]\n" if stats.documents else "]\n")


def _spacy_tokens(text: str, spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Tokens as spaCy's Doc (and so Prodigy) has them: a single following space is `ws`, other whitespace
    is a token of its own; joined with their `ws`, they spell the text."""
    out: list[dict[str, Any]] = []

    def space(start: int, end: int) -> None:
        if start < end and out and text[start] == " ":
            out[-1]["ws"] = True
            start += 1
        if start < end:
            out.append({"text": text[start:end], "start": start, "end": end, "id": len(out), "ws": False})

    pos = 0
    for start, end in spans:
        space(pos, start)
        out.append({"text": text[start:end], "start": start, "end": end, "id": len(out), "ws": False})
        pos = end
    space(pos, len(text))
    return out


def _write_prodigy(docs: Iterable[Document], path: Path, options: ConvertOptions, stats: ConvertStats) -> None:
    with _open_text(path) as fh:
        for d in docs:
            entities = _disjoint(d.spans(), stats)
            toks = _spacy_tokens(d.text, tokens(d.text, entities, d.word_spans()))
            starts = [t["start"] for t in toks]
            ends = [t["end"] for t in toks]
            spans = [{"start": e.start, "end": e.end, "label": e.label,
                      "token_start": bisect.bisect_right(ends, e.start),  # the first token ending after start
                      "token_end": bisect.bisect_left(starts, e.end) - 1}  # the last token starting before end
                     for e in entities]
            fh.write(_dumps({"text": d.text, "tokens": toks, "spans": spans, "meta": {d.id_name: _json_id(d.id)}}))
            fh.write("\n")
            stats.written += len(spans)


def _write_conll(docs: Iterable[Document], path: Path, options: ConvertOptions, stats: ConvertStats) -> None:
    markers = 0  # words of the text that CoNLL readers take for a document marker
    blockless = 0  # documents with no token: no lines of their own (a blank block is no block to CoNLL readers)
    with _open_text(path) as fh:
        for d in docs:
            if options.docstart:
                fh.write("-DOCSTART-\tO\n\n")
            if d.words is not None:  # the words and their own tags: IOB2 for a span task, a tag task's as they are
                lines = [(w.text, w.label) for w in d.words if w.text.strip()]
                stats.written += len(d.entities) + len(d.tagged)
            else:
                entities = _disjoint(d.entities, stats)
                spans = tokens(d.text, entities)
                lines = [(d.text[s:e], tag) for (s, e), tag in zip(spans, iob_tags(spans, entities), strict=True)]
                stats.written += len(entities)
            if lines:
                markers += sum(word == "-DOCSTART-" for word, _ in lines)
                fh.writelines(f"{word}\t{tag}\n" for word, tag in lines)
                fh.write("\n")
            else:
                blockless += 1
    if blockless and not options.docstart:
        stats.notes.append(f"{blockless:,} document{'s' if blockless > 1 else ''} with no token (no text, or "
                           "only whitespace) left no lines, so the blocks do not line up with the rows one for one: "
                           "pass --docstart to give every row its own -DOCSTART- line")
    if markers:
        stats.notes.append(f"{markers:,} word{'s' if markers > 1 else ''} '-DOCSTART-' of the text written as "
                           "they are: CoNLL readers ('fasttag train' and 'eval' among them) read such a line as a "
                           "document boundary")


# str.splitlines' line boundaries: an .ann line cannot hold one
_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")
_NOT_NAME = re.compile(r"[^\w.-]|_", flags=re.UNICODE)
_DEVICE_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
NAME_BYTES = 120


def brat_name(value: Any) -> str:
    """A file name (without suffix) made from a row id, as the brat writer names each document's pair."""
    name = _NOT_NAME.sub("_", "" if value is None else str(value)) or "_"
    if name.startswith("."):
        name = "_" + name
    if name.split(".")[0].upper() in _DEVICE_NAMES:
        name = "_" + name
    return name.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore")


def _fragments(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The pieces of text[start:end] between line breaks (the whole span when it holds none)."""
    pieces, pos = [], start
    for m in _LINE_BREAK.finditer(text, start, end):
        if m.start() > pos:
            pieces.append((pos, m.start()))
        pos = m.end()
    if pos < end:
        pieces.append((pos, end))
    return pieces or [(start, end)]


def _write_brat(docs: Iterable[Document], path: Path, options: ConvertOptions, stats: ConvertStats) -> None:
    labels: dict[str, None] = {}  # in order of appearance; a model has a handful
    for d in docs:
        name = brat_name(d.id if d.id_name != "row" else d.row)
        if (path / f"{name}.txt").exists():
            name = f"{name}~{d.row}"  # '~' is never in a brat_name: this one is free
        lines = []
        for k, e in enumerate(d.spans(), start=1):
            label = re.sub(r"\s", "_", e.label)
            labels.setdefault(label)
            pieces = _fragments(d.text, e.start, e.end)
            offsets = ";".join(f"{s} {t}" for s, t in pieces)
            lines.append(f"T{k}\t{label} {offsets}\t{' '.join(d.text[s:t] for s, t in pieces)}\n")
        with open(path / f"{name}.txt", "x", encoding="utf-8", newline="") as fh:
            fh.write(d.text)
        with open(path / f"{name}.ann", "x", encoding="utf-8", newline="") as fh:
            fh.writelines(lines)
        stats.written += len(lines)
        stats.files += 2
    with open(path / "annotation.conf", "w", encoding="utf-8") as fh:
        fh.write("[entities]\n" + "".join(f"{label}\n" for label in labels) + "\n[relations]\n\n[events]\n\n"
                 "[attributes]\n")
    stats.files += 1  # annotation.conf: every file written is counted


Writer = Callable[[Iterable[Document], Path, ConvertOptions, ConvertStats], None]
WRITERS: dict[str, Writer] = {
    "spacy": _write_spacy,
    "label-studio": _write_label_studio,
    "prodigy": _write_prodigy,
    "conll": _write_conll,
    "brat": _write_brat,
}
FORMATS = tuple(WRITERS)


# -- DEST -----------------------------------------------------------------------------------------

def dest_is_folder(format: str, dest: str) -> bool:
    """Whether DEST is written as a folder (brat; spacy without the .spacy suffix), after checking its name."""
    if format not in WRITERS:
        raise UsageError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
    name = Path(dest).name.lower()
    if dest in ("", "-") or not name:
        raise UsageError(f"-o {dest!r}: give a file or folder name ('fasttag convert' does not write to stdout)")
    if format == "spacy":
        if name.endswith(SPACY_SUFFIX):
            return False
        if name.endswith(FILE_SUFFIXES):
            raise UsageError(f"-o {dest}: --to spacy writes a .spacy file, or a folder of them (a name without "
                             "a file suffix)")
        return True
    if format == "brat":
        if name.endswith(FILE_SUFFIXES):
            raise UsageError(f"-o {dest}: --to brat writes a folder of .txt and .ann files (a name without "
                             "a file suffix)")
        return True
    wanted = {"label-studio": (".json",), "prodigy": (".jsonl",),
              "conll": CONLL_DEST_SUFFIXES + tuple(s + ".gz" for s in CONLL_DEST_SUFFIXES)}[format]
    if not name.endswith(wanted):
        raise UsageError(f"-o {dest}: --to {format} writes a {' or '.join(wanted[:5])} file")
    return False


def check_dest(format: str, dest: str, overwrite: bool, sources: Iterable[str] = ()) -> bool:
    """Refuse a DEST that would lose data or cannot be written, before anything is read; whether it is a folder."""
    folder = dest_is_folder(format, dest)
    target = Path(dest)
    for source in sources:
        if source != "-" and Path(source).exists() and target.exists() and target.resolve() == Path(source).resolve():
            raise UsageError(f"-o {dest} is one of the files being converted")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise UsageError(f"{dest} exists; pass --overwrite to replace it")
    from fasttag.write import check_output_folder

    check_output_folder(dest)
    return folder


@contextmanager
def _atomic(dest: Path, folder: bool) -> Iterator[Path]:
    """A temporary path beside `dest`, renamed onto it when the block completes, removed when it fails."""
    tmp = dest.with_name(f".fasttag-tmp-{os.getpid()}-{dest.name}")  # hidden; the name keeps its suffixes
    _remove(tmp)
    try:
        if folder:
            tmp.mkdir()
        yield tmp
        if folder or dest.is_dir():
            old = dest.with_name(f".fasttag-old-{os.getpid()}-{dest.name}")
            if dest.exists() or dest.is_symlink():
                dest.rename(old)  # a folder cannot be replaced in one rename: move it aside first
            tmp.rename(dest)
            _remove(old)
        else:
            os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text file for a writer, gzipped when its name ends in .gz, on disk before it is renamed."""
    with open(path, "wb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.name.endswith(".gz") else raw  # type: ignore[assignment]
        fh = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        yield fh
        fh.flush()
        fh.detach()
        if stream is not raw:
            stream.close()  # the gzip trailer; raw stays open
        raw.flush()
        os.fsync(raw.fileno())


# -- the conversion -------------------------------------------------------------------------------

def convert(output: str, corpus: str, format: str, dest: str, options: ConvertOptions | None = None, *,
            text_column: str = "text", on_error: str = "stop", overwrite: bool = False,
            chunk_rows: int = 2048, max_text_bytes: int | None = DEFAULT_MAX_TEXT_BYTES,
            limit: int | None = None) -> ConvertStats:
    """Write `fasttag run`'s OUTPUT on CORPUS as `format` to DEST; DEST appears only when complete.

    CORPUS is read as the run read it: `on_error`, `max_text_bytes` and `limit` as that run's."""
    options = options or ConvertOptions()
    options.check()
    folder = check_dest(format, dest, overwrite, (output, corpus))
    stats = ConvertStats(format, dest, alignment=options.alignment)
    docs = documents(output, corpus, text_column, on_error, chunk_rows, max_text_bytes=max_text_bytes, limit=limit)
    with _atomic(Path(dest), folder) as tmp:
        WRITERS[format](_counted(docs, stats), tmp, options, stats)
    return stats


def _counted(docs: Iterable[Document], stats: ConvertStats) -> Iterator[Document]:
    for d in docs:
        stats.documents += 1
        stats.entities += len(d.entities) + len(d.tagged)
        stats.words += len(d.words or ())
        stats.empty += not d.text
        yield d
