"""Show documents with their entities highlighted: in the terminal (rich) or as a self-contained HTML page.

A document is a ``(text, items)`` pair: entities (or tokens, drawn the same way, with their full labels),
or words, drawn with their tags as tagged corpora write them (``New/NNP York/NNP``). They come from
`Tagger.tag` (or `tag_pretokenized`, through `pretokenized_doc`) or, without running a model, from the
output of `fasttag run` lined up with its input (`read_entities` + `align`).
"""

from __future__ import annotations

import html
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fasttag.entities import RESULT_COLUMNS, Entity, Token, TokenTags, Word
from fasttag.errors import InputError
from fasttag.formats import JsonlLines, close_lines, corpus_format, open_lines, parquet_files

Item = Entity | Word | Token
Doc = tuple[str, Sequence[Item]]

# displaCy's colours for the CoNLL labels, so pages look familiar; any other label gets a palette
# colour chosen by a stable hash of its name (the same colour in every run and on every machine).
LABEL_COLOURS = {"PER": "#aa9cfc", "LOC": "#ff9561", "ORG": "#7aecec", "MISC": "#feca74"}
PALETTE = (
    "#bfeeb7", "#c887fb", "#9cc9cc", "#ffeb80", "#ff8197", "#f0d0ff", "#bfe1d9", "#e4e7d2", "#fdb8b8", "#a3d8f4",
)


def label_colour(label: str) -> str:
    """A background colour (#rrggbb) for `label`: fixed for PER/LOC/ORG/MISC, hashed into PALETTE otherwise."""
    fixed = LABEL_COLOURS.get(label.upper())
    return fixed or PALETTE[zlib.crc32(label.encode("utf-8")) % len(PALETTE)]


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def _colour(label: str, full: bool) -> str:
    """`label_colour` of a label; of its type for a full label (a word's or token's B-PER: PER's colour), so
    that the words of one entity share it."""
    if not full:
        return label_colour(label)
    from fasttag.schemes import split_label

    return label_colour(split_label(label)[1])


def label_counts(docs: Sequence[Doc]) -> dict[str, int]:
    """Items per label (words tagged O left out), known labels first (PER, LOC, ORG, MISC), then the others
    alphabetically."""
    counts: dict[str, int] = {}
    for _, entities in docs:
        for e in entities:
            if isinstance(e, Word) and e.label == "O":
                continue
            counts[e.label] = counts.get(e.label, 0) + 1
    order = {label: i for i, label in enumerate(LABEL_COLOURS)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0].upper(), len(order)), kv[0])))


def segments(text: str, entities: Sequence[Item]) -> Iterator[tuple[str, Item | None]]:
    """The text cut into plain stretches (entity None) and entity stretches, in order.

    Entities are taken in start order; one that overlaps an earlier one is not drawn (the engine never
    produces overlaps; hand-made files might).
    """
    pos = 0
    for e in sorted(entities, key=lambda e: (e.start, e.end)):
        if e.start < pos or e.end <= e.start or e.end > len(text):  # (a zero-width token has nothing to draw)
            continue
        if e.start > pos:
            yield text[pos:e.start], None
        yield text[e.start:e.end], e
        pos = e.end
    if pos < len(text):
        yield text[pos:], None


def drawn_entities(docs: Sequence[Doc]) -> int:
    """How many entities (words, tokens) `render_terminal`/`render_html` draw (all of them, unless some overlap)."""
    return sum(1 for text, entities in docs for _, e in segments(text, entities) if e is not None)


def noun(docs: Sequence[Doc]) -> str:
    """What the documents' items are: "entity", "word" or "token" (the first item's kind; "entity" for none)."""
    first = next((e for _, items in docs for e in items), None)
    return "word" if isinstance(first, Word) else "token" if isinstance(first, Token) else "entity"


def _tagged(piece: str, w: Item) -> bool:
    """Whether a word is drawn with its tag: every word of a tag task, a span task's words but O."""
    return isinstance(w, Word) and w.label != "O" and bool(piece)


def pretokenized_doc(tokens: Sequence[str] | None, tagged: TokenTags) -> Doc:
    """A pre-tokenized row as a document: its tokens joined by single spaces, each a `Word` with its tag (a
    token without one is plain text); lone surrogates read as U+FFFD, one for one, as the tagger reads them."""
    from fasttag.tokenization import repair_surrogates

    tokens = repair_surrogates([t if isinstance(t, str) else "" for t in tokens or []])[0]
    text, words, pos = " ".join(tokens), [], 0
    for token, tag, score in zip(tokens, tagged.tags, tagged.scores, strict=False):
        if tag is not None:
            words.append(Word(pos, pos + len(token), tag, float(score or 0.0), token))
        pos += len(token) + 1
    return text, words


# -- terminal -------------------------------------------------------------------------------------

def render_terminal(docs: Sequence[Doc], console, titles: Sequence[str] | None = None) -> None:
    """Print each document with its entities on their label's colour, then a legend with counts.

    `console` is a `rich.console.Console`. Without colours (not a terminal, or NO_COLOR set) entities are
    bracketed instead: ``[Ada Lovelace PER]``.
    """
    from rich.text import Text

    plain = console.color_system is None or console.no_color
    for i, (text, entities) in enumerate(docs):
        title = titles[i] if titles is not None else f"row {i}"
        console.print(Text(title, style="bold dim"))
        line = Text()
        if not text:
            line.append("(empty)", style="dim italic")
        previous: Item | None = None
        for piece, e in segments(text, entities):
            if isinstance(e, Word):
                # word/TAG, as tagged corpora write it; words the text joins (London.) are spaced apart
                if isinstance(previous, Word) and previous.end == e.start and (_tagged(piece, e)
                                                                                or _tagged("x", previous)):
                    line.append(" ")
                line.append(piece)
                if _tagged(piece, e):
                    line.append(f"/{e.label}", style=None if plain else f"bold {_colour(e.label, True)}")
            elif e is None:
                line.append(piece)
            elif plain:
                line.append(f"[{piece} {e.label}]")
            else:
                # padded inside the box, so that neighbouring entities stay two boxes
                style = f"black on {_colour(e.label, isinstance(e, Token))}"
                line.append(f" {piece}", style=style)
                line.append(f" {e.label} ", style=f"bold {style}")
            previous = e
        # soft_wrap: no hard line breaks inside a document; the terminal wraps it
        console.print(line, highlight=False, soft_wrap=True)
        console.print()
    legend = Text("labels: ", style="bold")
    counts = label_counts(docs)
    full = noun(docs) != "entity"
    for j, (label, count) in enumerate(counts.items()):
        if j:
            legend.append("  ")
        legend.append(f" {label} " if not plain else label, style=f"bold black on {_colour(label, full)}")
        legend.append(f" {count}")
    if not counts:
        legend.append("none", style="dim")
    legend.append(f"   ({plural(len(docs), 'document')}, {plural(sum(counts.values()), noun(docs))})", style="dim")
    console.print(legend, highlight=False)


# -- HTML -----------------------------------------------------------------------------------------

PAGE_CSS = """
body { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.3em; font-weight: 600; }
.legend { margin: 1em 0 2em; line-height: 2.2; }
.swatch { padding: 0.3em 0.6em; margin-right: 0.4em; border-radius: 0.35em; font-size: 0.8em; font-weight: bold; }
.count { margin-right: 1.2em; color: #555; }
.doc { border-top: 1px solid #ddd; padding: 0.8em 0; }
.meta { color: #888; font-size: 0.8em; }
.entities { line-height: 2.5; white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { color: #aaa; font-style: italic; }
mark { padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; border-radius: 0.35em;
       box-decoration-break: clone; -webkit-box-decoration-break: clone; color: #222; }
mark .label { font-size: 0.8em; font-weight: bold; line-height: 1; vertical-align: middle;
              margin-left: 0.5em; font-variant: all-small-caps; letter-spacing: 0.03em; }
.word { display: inline-flex; flex-direction: column; align-items: center; vertical-align: top;
        line-height: 1.4; margin: 0 0.12em; }
.word .tag { font-size: 0.7em; font-weight: bold; line-height: 1.2; padding: 0 0.35em; border-radius: 0.3em;
             color: #222; }
""".strip()


def _word(piece: str, w: Word) -> str:
    """A word with its tag under it (an interlinear gloss); a span task's O words are plain text."""
    if not _tagged(piece, w):
        return html.escape(piece)
    tip = html.escape(f"{w.label} {w.score:.3f} [{w.start}:{w.end}]")
    return (f'<span class="word" title="{tip}">{html.escape(piece)}<span class="tag" style="background: '
            f'{_colour(w.label, True)}">{html.escape(w.label)}</span></span>')


def _mark(piece: str, e: Item) -> str:
    tip = html.escape(f"{e.label} {e.score:.3f} [{e.start}:{e.end}]")
    return (f'<mark class="entity" style="background: {_colour(e.label, isinstance(e, Token))}" title="{tip}">'
            f'{html.escape(piece)}<span class="label">{html.escape(e.label)}</span></mark>')


def render_html(docs: Sequence[Doc], titles: Sequence[str] | None = None, heading: str = "fasttag") -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external assets) in displaCy's entity style.

    One block per document, each entity a ``<mark>`` on its label's colour with the label after the text;
    a legend with the count per label on top. Every piece of text is HTML-escaped.
    """
    counts = label_counts(docs)
    full = noun(docs) != "entity"
    legend = "".join(
        f'<span class="swatch" style="background: {_colour(label, full)}">{html.escape(label)}</span>'
        f'<span class="count">{count}</span>'
        for label, count in counts.items()
    ) or f'<span class="empty">no {plural(2, noun(docs))[2:]}</span>'
    blocks = []
    for i, (text, entities) in enumerate(docs):
        title = titles[i] if titles is not None else f"row {i}"
        body = "".join(html.escape(piece) if e is None else _word(piece, e) if isinstance(e, Word) else _mark(piece, e)
                       for piece, e in segments(text, entities))
        body = body or '<span class="empty">(empty)</span>'
        blocks.append(
            f'<section class="doc">\n<div class="meta">{html.escape(title)}</div>\n'
            f'<div class="entities" dir="auto">{body}</div>\n</section>'
        )
    n_entities = sum(counts.values())
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        # The page needs nothing but its own inline styles; forbid everything else.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(heading)}</title>",
        f"<style>\n{PAGE_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(heading)}</h1>",
        f'<div class="legend">{legend}<span class="count">{plural(len(docs), "document")}, '
        f'{plural(n_entities, noun(docs))}</span></div>',
        *blocks,
        "</body>",
        "</html>",
        "",
    ])


# -- an existing run's output ---------------------------------------------------------------------

@dataclass
class EntityRows:
    """Consecutive rows of a `fasttag run` output: their ids and results.

    `id_name` is the output's id column (``row`` for row numbers) or None; `level` is the result column
    read, ``entities`` (each row's `items` are `Entity`) or ``words`` (`Word`).
    """

    id_name: str | None
    ids: list[Any]
    items: list[list[Any]]
    level: str = "entities"

    def __len__(self) -> int:
        return len(self.items)


def _entity(obj: Any, where: str, cls: type = Entity) -> Any:
    try:
        fields = (int(obj["start"]), int(obj["end"]), str(obj["label"]), float(obj.get("score") or 0.0),
                  str(obj["text"]))
        return cls(*fields, int(obj["index"]), str(obj["token"])) if cls is Token else cls(*fields)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = {"Word": "a word", "Token": "a token"}.get(cls.__name__, "an entity")
        struct = "start, end, label, score, text, index, token" if cls is Token else "start, end, label, score, text"
        raise InputError(f"{where}: {what} is not {{{struct}}}: {obj!r:.200}") from exc


def _item_types() -> tuple[dict[str, type], tuple[str, ...]]:
    """The item class of each result column read, and the names of every result column (not the id)."""
    return {"entities": Entity, "words": Word, "tokens": Token}, RESULT_COLUMNS


def iter_entities(path: str, chunk_rows: int = 2048, levels: Sequence[str] = ("entities",)) -> Iterator[EntityRows]:
    """A `fasttag run` output in chunks of at most `chunk_rows` rows, read as it is consumed (constant memory).

    `levels` are the result columns taken (``entities``, ``words``, ``tokens``), the first one the output has.
    """
    if path != "-" and not Path(path).exists():
        raise InputError(f"entities file {path} does not exist")
    if corpus_format(path) == "parquet":
        return _iter_parquet_entities(path, chunk_rows, levels)
    return _iter_jsonl_entities(path, chunk_rows, levels)


def read_entities(path: str, limit: int, levels: Sequence[str] = ("entities",)
                  ) -> tuple[str | None, list[Any], list[list[Any]]]:
    """The first `limit` rows of a `fasttag run` output: (id column name or None, ids, items per row), the items
    from the first of `levels` the output has (see `iter_entities`)."""
    id_name: str | None = None
    ids: list[Any] = []
    rows: list[list[Any]] = []
    for chunk in iter_entities(path, max(1, min(limit, 2048)), levels):
        id_name = chunk.id_name
        ids.extend(chunk.ids[: limit - len(rows)])
        rows.extend(chunk.items[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return id_name, ids, rows


def _columns(levels: Sequence[str]) -> str:
    return " or ".join(repr(level) for level in levels)


FLAT_FIELDS = ("start", "end", "label", "score", "text")  # the columns of a `run --layout flat` output
PRETOKENIZED_OUTPUT = ("an output of 'fasttag run --tokens-column' (a tag per input token, its entities in tokens, "
                       "not characters): 'fasttag show --entities ... --tokens-column' reads it; 'convert' does not")


def _no_level(names: Sequence[str], levels: Sequence[str], what: str = "column") -> str:
    """Why an output without any of `levels` cannot be read: a flat layout, a level not read here, or not run's."""
    if all(name in names for name in FLAT_FIELDS):
        return ("a 'fasttag run --layout flat' output (one row per result); this reads the nested layout (one row "
                "per input row): run again without --layout flat")
    other = next((name for name in ("entities", "words", "tokens") if name in names and name not in levels), None)
    if other is not None:
        return (f"a 'fasttag run --level {other}' output, which this does not read: it reads the "
                f"{' or '.join(levels)} level (run with --level {levels[0]})")
    return f"no {_columns(levels)} {what}; is it an output of 'fasttag run'?"


def _iter_parquet_entities(path: str, chunk_rows: int, levels: Sequence[str]) -> Iterator[EntityRows]:
    files = parquet_files(path)  # a folder's hidden files (a Ray run's _SUCCESS, say) are not rows
    types, result_columns = _item_types()
    n = 0
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{f}: not a readable Parquet file ({exc})") from exc
        names = pf.schema_arrow.names
        level = next((c for c in levels if c in names), None)
        if "tags" in names:  # its entities too are in tokens, not characters
            raise InputError(f"{f}: {PRETOKENIZED_OUTPUT}")
        if level is None:
            raise InputError(f"{f}: {_no_level(names, levels)} (columns: {', '.join(names)})")
        others = [n for n in names if n not in result_columns]
        id_name = others[0] if others else None
        cls = types[level]
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=[*others[:1], level]):
                items = [[_entity(e, f"{f}, row {n + j}", cls) for e in value or []]
                         for j, value in enumerate(batch.column(level).to_pylist())]
                ids = batch.column(id_name).to_pylist() if id_name else [None] * len(items)
                n += len(items)
                yield EntityRows(id_name, ids, items, level)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{f}: corrupt or truncated Parquet data ({exc})") from exc


def _iter_jsonl_entities(path: str, chunk_rows: int, levels: Sequence[str]) -> Iterator[EntityRows]:
    where = "stdin" if path == "-" else path
    types, result_columns = _item_types()
    id_name: str | None = None
    level: str | None = None
    chunk = EntityRows(None, [], [])
    fh = open_lines(path)
    try:
        for line in JsonlLines(fh, where):
            if line.error is not None:
                raise InputError(f"{where}, line {line.lineno}: not JSON ({line.error})") from line.exc
            obj = line.value
            if level is None and isinstance(obj, dict):  # the first line decides which result column is read
                if isinstance(obj.get("tags", None), list):
                    raise InputError(f"{where}, line {line.lineno}: {PRETOKENIZED_OUTPUT}")
                level = next((c for c in levels if isinstance(obj.get(c, None), list)), None)
                chunk.level = level or levels[0]
            if not isinstance(obj, dict) or level is None or not isinstance(obj.get(level, None), list):
                why = _no_level(list(obj) if isinstance(obj, dict) and level is None else [], [level] if level
                                else levels, "list")
                raise InputError(f"{where}, line {line.lineno}: {why}")
            if id_name is None:
                id_name = next((k for k in obj if k not in result_columns), None)
                chunk.id_name = id_name
            cls = types[level]
            chunk.items.append([_entity(e, f"{where}, line {line.lineno}", cls) for e in obj[level]])
            chunk.ids.append(obj.get(id_name) if id_name else None)
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = EntityRows(id_name, [], [], level)
        if len(chunk):
            yield chunk
    finally:
        close_lines(fh)


def read_tags(path: str, limit: int) -> tuple[str | None, list[Any], list[TokenTags]]:
    """The first `limit` rows of a `fasttag run --tokens-column` output: (id column or None, ids, tags per row)."""
    if path != "-" and not Path(path).exists():
        raise InputError(f"entities file {path} does not exist")
    id_name: str | None = None
    ids: list[Any] = []
    rows: list[TokenTags] = []
    if corpus_format(path) == "parquet":
        for f in parquet_files(path):
            try:
                schema = pq.read_schema(f)
                if "tags" not in schema.names:
                    raise InputError(f"{f}: no 'tags' column (columns: {', '.join(schema.names)}); is it an output of "
                                     "'fasttag run --tokens-column'?")
                others = [n for n in schema.names if n not in RESULT_COLUMNS]
                id_name = others[0] if others else None
                for batch in pq.ParquetFile(f).iter_batches(batch_size=max(1, min(limit, 2048)),
                                                            columns=[*others[:1], "tags", "scores"]):
                    tags, scores = batch.column("tags").to_pylist(), batch.column("scores").to_pylist()
                    batch_ids = batch.column(id_name).to_pylist() if id_name else [None] * len(tags)
                    for t, sc, i in zip(tags, scores, batch_ids, strict=True):
                        rows.append(TokenTags(t or [], sc or []))
                        ids.append(i)
                        if len(rows) >= limit:
                            return id_name, ids, rows
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{f}: not a readable Parquet file ({exc})") from exc
        return id_name, ids, rows
    where = "stdin" if path == "-" else path
    fh = open_lines(path)
    try:
        for line in JsonlLines(fh, where):
            if len(rows) >= limit:
                break
            obj = line.value
            if line.error is not None or not isinstance(obj, dict) or not isinstance(obj.get("tags"), list):
                raise InputError(f"{where}, line {line.lineno}: no 'tags' list; is it an output of 'fasttag run "
                                 "--tokens-column'?")
            if id_name is None:
                id_name = next((k for k in obj if k not in RESULT_COLUMNS), None)
            rows.append(TokenTags(obj["tags"], obj.get("scores") or [None] * len(obj["tags"])))
            ids.append(obj.get(id_name) if id_name else None)
    finally:
        close_lines(fh)
    return id_name, ids, rows


def not_belonging(output: str, input: str, why: str) -> InputError:
    """The error of an output that is not the run of that input: "OUTPUT does not belong to INPUT: why"."""
    return InputError(f"{output} does not belong to {input}: {why}")


def belonging_text(i: int, text: str | None, entities: Sequence[Entity], output: str = "OUTPUT",
                   input: str = "INPUT", id: Any = None, id_name: str | None = None) -> str:
    """Row i's text as the run tagged it, after checking that the output's row i belongs to it.

    `fasttag run` writes one output row per input row, in order (a ``row`` id is the row number), and
    every entity's text is the input slice; anything else means the files do not line up, and
    InputError says where. Text that is not a string is the empty document; lone surrogates are read as
    U+FFFD, one for one, as run tags them (its entity texts carry the repaired text).
    """
    from fasttag.tokenization import repair_surrogates

    if id_name == "row" and id != i:
        raise not_belonging(output, input, f"output row {i} has row number {id!r}")
    text = repair_surrogates([text])[0][0] if isinstance(text, str) else ""
    for e in entities:
        # (a token may be zero-width: some tokenizers give a bare space marker no extent)
        if text[e.start:e.end] != e.text or not 0 <= e.start <= e.end <= len(text) or \
                (e.start == e.end and not isinstance(e, Token)):
            raise not_belonging(output, input, f"row {i}: entity {e.text!r} at {e.start}:{e.end}, "
                                               f"but the input text there is {text[e.start:e.end]!r}")
    return text


def align(texts: Sequence[str | None], rows: Sequence[Sequence[Entity]], output: str = "OUTPUT",
          input: str = "INPUT", ids: Sequence[Any] | None = None, id_name: str | None = None) -> list[Doc]:
    """Pair row i of a run's output with row i of its input, checking that they belong together
    (see `belonging_text`)."""
    if len(texts) != len(rows):
        raise not_belonging(output, input, f"within the first {max(len(texts), len(rows))} rows, {output} has "
                                           f"{len(rows)} and {input} has {len(texts)} (a run writes one output "
                                           "row per input row)")
    return [(belonging_text(i, text, entities, output, input, ids[i] if ids is not None else None, id_name),
             list(entities))
            for i, (text, entities) in enumerate(zip(texts, rows, strict=True))]
