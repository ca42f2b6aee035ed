"""`Tagger`: the Python API over the engine (tokenize -> batch -> infer -> aggregate)."""

from __future__ import annotations

import math
import os
import queue
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fasttag.aggregate import Spans, decode_spans
from fasttag.batch import Batch, TokenBudgetBatcher
from fasttag.entities import ENTITIES_TYPE, ENTITY_TYPE, Entity
from fasttag.errors import InputError, UsageError
from fasttag.infer import OnnxModel, cpu_count, default_streams, default_threads, softmax
from fasttag.model import LabelScheme, ModelBundle, _read_json
from fasttag.options import EngineOptions
from fasttag.tokenization import DocumentTokenizer, TokenizedChunk

MAX_LENGTH_CAP = 512
DEFAULT_STRIDE = 128
# CPU: small batches run fastest (cache; two streams at once); GPU: wide batches.
CPU_BATCH_TOKENS, CPU_MAX_BATCH = 1024, 16
GPU_BATCH_TOKENS, GPU_MAX_BATCH = 65536, 1024


@dataclass
class TaggedChunk:
    """A chunk's documents and their entity spans (span.doc indexes `texts`)."""

    texts: list[str]
    spans: Spans
    n_windows: int
    n_tokens: int


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    excl = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - excl, lengths)


class Tagger:
    """Tags texts with an exported model.

    >>> tagger = Tagger.load("model-onnx")            # doctest: +SKIP
    >>> tagger.tag(["Ada Lovelace was born in London."])  # doctest: +SKIP
    [[Entity(start=0, end=12, label='PER', ...), Entity(start=25, end=31, label='LOC', ...)]]
    """

    def __init__(self, bundle: ModelBundle, options: EngineOptions | None = None, **kwargs: Any):
        """`options` (or keyword arguments named as its fields: `aggregation="first"`, `threads=2`, ...)
        say how to tag; keywords given with `options` replace its values."""
        options = _engine_options(options, kwargs)
        aggregation = options.aggregation
        max_length, stride, batch_tokens = options.max_length, options.stride, options.batch_tokens
        max_batch_size, device, threads, streams = (options.max_batch_size, options.device, options.threads,
                                                    options.streams)
        self.bundle = bundle
        self.aggregation = aggregation
        model_max = min(bundle.max_length, MAX_LENGTH_CAP)
        if max_length is not None and max_length > bundle.max_length:
            raise UsageError(f"--max-length {max_length} exceeds the model's maximum of {bundle.max_length}")
        self.max_length = int(max_length or model_max)
        threads = threads or default_threads()
        # CPU: several sessions, each on its share of the cores, running different batches at once, keep
        # the cores busier than one session that splits every operator across all of them (measured:
        # 1.13-1.26x on short texts with 2 cores; bench/RESULTS.md).
        total = threads or cpu_count()
        wanted = max(1, int(streams or default_streams(total)))
        if wanted > total:
            raise UsageError(f"--streams {wanted} needs at least {wanted} threads (each stream runs on its own "
                             f"threads), but there are {total}: raise --threads or lower --streams")
        per_stream = max(1, total // wanted) if wanted > 1 else threads
        self.model = OnnxModel(bundle.onnx_path, device=device, threads=per_stream)
        on_gpu = self.model.provider != "CPUExecutionProvider"
        self.streams = 1 if on_gpu else wanted
        self.sessions = [self.model] + [
            OnnxModel(bundle.onnx_path, device="cpu", threads=per_stream) for _ in range(self.streams - 1)
        ]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for session in self.sessions:
            self._free.put(session)
        self._pool: ThreadPoolExecutor | None = None
        tok_cfg_path = bundle.path / "tokenizer_config.json"
        tok_cfg = _read_json(tok_cfg_path) if tok_cfg_path.exists() else {}
        config = _read_json(bundle.path / "config.json") if (bundle.path / "config.json").exists() else {}
        unk = tok_cfg.get("unk_token")
        unk = unk.get("content") if isinstance(unk, dict) else unk
        if stride is None:  # 128, or half the window for models shorter than 258 tokens
            stride = min(DEFAULT_STRIDE, (self.max_length - 2) // 2)
        self.tokenizer = DocumentTokenizer.from_file(
            bundle.path / "tokenizer.json",
            max_length=self.max_length,
            stride=stride,
            word_boundaries=options.word_boundaries,
            pad_id=config.get("pad_token_id"),
            unk_token=unk,
        )
        self.scheme = LabelScheme.from_labels(bundle.labels)
        self.batcher = TokenBudgetBatcher(
            batch_tokens or (GPU_BATCH_TOKENS if on_gpu else CPU_BATCH_TOKENS),
            max_batch_size or (GPU_MAX_BATCH if on_gpu else CPU_MAX_BATCH),
            pad_multiple=32 if on_gpu else 1,  # few distinct shapes bound the GPU memory arena
            max_length=self.max_length,
        )
        # the options as they apply here, defaults resolved (what --resume records)
        self.options = options.replace(model_dir=str(bundle.path), max_length=self.max_length, stride=stride,
                                       batch_tokens=self.batcher.budget_tokens,
                                       max_batch_size=self.batcher.max_batch_size)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, options: EngineOptions | None = None,
             **kwargs: Any) -> Tagger:
        """Load the model `path` names (None: `options.model_dir`, else the embedded default model); options as for
        the constructor.

        `path` is an export folder, an ONNX folder without fasttag.json (optimum's), a transformers checkpoint
        folder or a hub model id (`options.revision` picks its version); the last two are exported to ONNX once,
        into fasttag's cache (`options.precision`; see `fasttag.resolve`), saying so on stderr.
        """
        from fasttag.options import PRECISIONS

        options = _engine_options(options, kwargs)
        bundle = ModelBundle.load(path if path is not None else options.model_dir, revision=options.revision,
                                  precision=options.precision, device=options.device)
        tagger = cls(bundle, options)
        # what --resume records: the commit a hub revision resolved to, and the precision that ran
        commit = bundle.origin.commit if bundle.origin else None
        tagger.options = tagger.options.replace(revision=commit or options.revision,
                                                precision=bundle.precision if bundle.precision in PRECISIONS else None)
        return tagger

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    # -- engine steps -------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> TokenizedChunk:
        return self.tokenizer(list(texts), word_level=self.aggregation != "simple")

    def model_inputs(self, chunk: TokenizedChunk, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """input_ids and attention_mask of one batch: [prefix specials] window tokens [suffix specials] padding."""
        w, tok = chunk.windows, self.tokenizer
        p = len(tok.prefix_ids)
        idx, rows, seq = batch.windows, len(batch.windows), batch.seq_len
        n = w.end[idx] - w.start[idx]
        input_ids = np.full((rows, seq), tok.pad_id, dtype=np.int64)
        flat = input_ids.reshape(-1)
        row_base = np.arange(rows, dtype=np.int64) * seq
        input_ids[:, :p] = tok.prefix_ids
        flat[_ranges(row_base + p, n)] = chunk.ids[_ranges(w.start[idx], n)]
        for j, special in enumerate(tok.suffix_ids):
            flat[row_base + p + n + j] = special
        attention_mask = (np.arange(seq)[None, :] < (n + tok.n_special)[:, None]).astype(np.int64)
        return input_ids, attention_mask

    def batches(self, chunk: TokenizedChunk) -> list[Batch]:
        w = chunk.windows
        return self.batcher.batches(w.end - w.start + self.tokenizer.n_special)

    def infer(self, chunk: TokenizedChunk) -> np.ndarray:
        """Probabilities (T, labels) for every content token, each from the window where it is most central."""
        w = chunk.windows
        p = len(self.tokenizer.prefix_ids)
        probs = np.zeros((chunk.n_tokens, len(self.bundle.labels)), dtype=np.float32)

        def put(batch: Batch, logits: np.ndarray) -> None:
            idx = batch.windows
            own = w.own_end[idx] - w.own_start[idx]
            row_base = np.arange(len(idx), dtype=np.int64) * batch.seq_len
            src = _ranges(row_base + p + (w.own_start[idx] - w.start[idx]), own)
            dst = _ranges(w.own_start[idx], own)
            probs[dst] = softmax(logits.reshape(-1, logits.shape[-1])[src])

        batches = self.batches(chunk)
        for batch, logits in zip(batches, self.run_model(self.model_inputs(chunk, b) for b in batches), strict=True):
            put(batch, logits)
        return probs

    def run_model(self, feeds: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        """Logits of each (input_ids, attention_mask), in order.

        With several streams, pool threads only run the sessions, taking batches as sessions come free;
        feeds are consumed and logits yielded here, with at most 2 x streams batches in flight.
        """
        if self.streams == 1:
            for feed in feeds:
                yield self.model.run(*feed)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.streams, thread_name_prefix="fasttag-infer")
        free = self._free

        def run_on_free_session(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
            session = free.get()  # as many sessions as pool threads: never waits
            try:
                return session.run(input_ids, attention_mask)
            finally:
                free.put(session)

        in_flight: deque = deque()
        try:
            for feed in feeds:
                in_flight.append(self._pool.submit(run_on_free_session, *feed))
                if len(in_flight) > 2 * self.streams:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:  # a failure, Ctrl-C or a consumer that stopped: cancel what has not started
            for future in in_flight:
                future.cancel()

    def decode(self, chunk: TokenizedChunk, probs: np.ndarray) -> Spans:
        return decode_spans(
            probs, chunk.offsets, chunk.doc_offsets, self.scheme, self.aggregation, chunk.skip, chunk.is_subword,
            chunk.trailing, chunk.texts,
        )

    def tag_chunk(self, texts: Sequence[str]) -> TaggedChunk:
        chunk = self.tokenize(texts)
        return self.finish_chunk(chunk)

    def finish_chunk(self, chunk: TokenizedChunk) -> TaggedChunk:
        spans = self.decode(chunk, self.infer(chunk))
        return TaggedChunk(chunk.texts, spans, len(chunk.windows), chunk.n_tokens)

    # -- public API ---------------------------------------------------------------------------
    def tag(self, texts: Iterable[str | None]) -> list[list[Entity]]:
        """Entities of each text, in order; None (or a null) gives an empty list.

        `texts` is a list (or other iterable) of strings, a pyarrow string Array or ChunkedArray, a
        NumPy array of str or object, or a pandas Series of strings. One string is not a list of
        texts: it raises `TypeError` (use `tag_text`).
        """
        out: list[list[Entity]] = []
        for chunk in bounded_chunks(as_texts(texts)):
            out.extend(self._entities(chunk))
        return out

    def tag_iter(self, texts: Iterable[str | None]) -> Iterator[list[Entity]]:
        """Entities of each text of a stream, in order, as `tag` gives them; the stream is read lazily.

        `texts` is anything `tag` takes; a generator is read a bounded chunk at a time (at most
        TAG_CHUNK_TEXTS texts or TAG_CHUNK_CHARS characters), as its entities are asked for.
        """
        for chunk in bounded_chunks(iter_texts(texts)):
            yield from self._entities(chunk)

    def _entities(self, texts: Sequence[str | None]) -> list[list[Entity]]:
        tagged = self.tag_chunk([t or "" for t in texts])
        texts = tagged.texts  # as tokenized: lone surrogates repaired
        out: list[list[Entity]] = [[] for _ in texts]
        labels = self.scheme.group_labels
        sp = tagged.spans
        for d, a, b, lab, sc in zip(
            sp.doc.tolist(), sp.start.tolist(), sp.end.tolist(), sp.label.tolist(), sp.score.tolist(), strict=True
        ):
            out[d].append(Entity(a, b, labels[lab], sc, texts[d][a:b]))
        return out

    def tag_text(self, text: str) -> list[Entity]:
        """Entities of one text (a document of any length)."""
        if not isinstance(text, str):
            raise TypeError(f"tag_text() takes one string, got {type(text).__name__}; for many texts use tag(texts)")
        return self.tag([text])[0]

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One label per word: the argmax label of the word's first sub-token ("O" for a word with no token).

        Words are tokenized one by one as training tokenizes them (so the first sub-token is the same
        token, a bare space marker included) and run through the same windows and batches as `tag`.
        """
        chunk, word_ids = self.tokenizer.words(sentences)
        label_ids = self.infer(chunk).argmax(axis=1)
        label_ids[chunk.skip] = -1
        out = []
        for d, words in enumerate(sentences):
            a, b = chunk.doc_offsets[d], chunk.doc_offsets[d + 1]
            ids = np.full(len(words), -1, dtype=np.int64)
            seen, first = np.unique(word_ids[a:b], return_index=True)  # each word's first token
            ok = seen >= 0
            ids[seen[ok]] = label_ids[a + first[ok]]
            out.append([self.bundle.labels[i] if i >= 0 else "O" for i in ids.tolist()])
        return out

    def entities_array(self, tagged: TaggedChunk) -> pa.ListArray:
        """The chunk's entities as list<struct<start, end, label, score, text>>, one list per document."""
        sp, texts = tagged.spans, tagged.texts
        counts = np.bincount(sp.doc, minlength=len(texts)) if len(sp) else np.zeros(len(texts), dtype=np.int64)
        list_offsets = np.zeros(len(texts) + 1, dtype=np.int32)
        np.cumsum(counts, out=list_offsets[1:])
        labels = pa.array(self.scheme.group_labels, type=pa.string())
        starts, ends = sp.start.tolist(), sp.end.tolist()
        text = [texts[d][a:b] for d, a, b in zip(sp.doc.tolist(), starts, ends, strict=True)]
        structs = pa.StructArray.from_arrays(
            [
                pa.array(sp.start, type=pa.int32()),
                pa.array(sp.end, type=pa.int32()),
                labels.take(pa.array(sp.label, type=pa.int64())),
                pa.array(sp.score, type=pa.float32()),
                pa.array(text, type=pa.string()),
            ],
            fields=list(ENTITY_TYPE),
        )
        return pa.ListArray.from_arrays(pa.array(list_offsets, type=pa.int32()), structs, type=ENTITIES_TYPE)

    def tag_table(self, table: pa.Table, text_column: str = "text", id_column: str | None = None) -> pa.Table:
        """A table with the id column (or `row`, 0-based) and `entities`, one row per input row."""
        from fasttag.formats import texts_from_column

        if text_column not in table.column_names:
            raise UsageError(f"no column {text_column!r}; columns: {', '.join(table.column_names)}")
        texts, _ = texts_from_column(table.column(text_column), text_column)
        parts = [self.entities_array(self.tag_chunk([t or "" for t in chunk])) for chunk in bounded_chunks(texts)]
        entities = pa.chunked_array(parts, type=ENTITIES_TYPE)
        if id_column:
            if id_column == "entities":
                raise UsageError("id_column cannot be 'entities': the output's entity column has that name")
            if id_column not in table.column_names:
                raise UsageError(f"no id column {id_column!r}; columns: {', '.join(table.column_names)}")
            ids = table.column(id_column)
            name = id_column
        else:
            ids, name = pa.array(np.arange(table.num_rows, dtype=np.int64)), "row"
        return pa.table({name: ids, "entities": entities})


def _engine_options(options: EngineOptions | None, kwargs: dict[str, Any]) -> EngineOptions:
    """`options` with `kwargs` (named as its fields) applied; an unknown keyword is a TypeError."""
    if options is not None and not isinstance(options, EngineOptions):
        raise TypeError(f"options must be an EngineOptions, got {type(options).__name__}")
    if options is None:
        return EngineOptions(**kwargs)
    return options.replace(**kwargs) if kwargs else options


# Tagger.tag and tag_iter tag at most this many texts (or characters, unless one text alone is longer) at once,
# so that the tokens, windows and probabilities of a long list are never all held together.
TAG_CHUNK_TEXTS = 2048
TAG_CHUNK_CHARS = 1 << 20


def bounded_chunks(texts: Iterable[str | None], max_texts: int | None = None,
                   max_chars: int | None = None) -> Iterator[list[str | None]]:
    """Consecutive lists of `texts`, each of at most `max_texts` texts and `max_chars` characters (a longer
    text is a chunk of its own); an iterator is read only as chunks are asked for."""
    max_texts = max_texts or TAG_CHUNK_TEXTS
    max_chars = max_chars or TAG_CHUNK_CHARS
    chunk: list[str | None] = []
    chars = 0
    for t in texts:
        n = len(t) if isinstance(t, str) else 0
        if chunk and (len(chunk) >= max_texts or chars + n > max_chars):
            yield chunk
            chunk, chars = [], 0
        chunk.append(t)
        chars += n
    if chunk:
        yield chunk


def iter_texts(texts: Any) -> Iterator[str | None]:
    """As `as_texts`, but a plain iterable (a generator, say) is read and checked one text at a time."""
    known = _known_texts(texts)
    if known is not None:
        yield from known
        return
    try:
        items = iter(texts)
    except TypeError as exc:
        raise TypeError(f"tag() takes a list of texts, got {type(texts).__name__}") from exc
    for i, t in enumerate(items):
        yield _text(t, i, "texts")


def as_texts(texts: Any) -> list[str | None]:
    """The texts `Tagger.tag` takes, as a list of str and None (for nulls); `TypeError` for anything else.

    Accepted: an iterable of str/None (NaN counts as null), a pyarrow Array or ChunkedArray of
    strings (string, large_string, string_view, or dictionary-encoded strings), a 1-D NumPy array of
    str or object, a pandas Series of strings. A bare string is refused, never iterated character
    by character. pandas is not imported unless `texts` comes from it.
    """
    known = _known_texts(texts)
    if known is not None:
        return known
    try:
        items = list(texts)
    except TypeError as exc:
        raise TypeError(f"tag() takes a list of texts, got {type(texts).__name__}") from exc
    return _checked(items, "texts")


def _known_texts(texts: Any) -> list[str | None] | None:
    """The texts of an Arrow, NumPy or pandas container; None for another iterable; TypeError for what is
    not texts (a string, a table, a mapping)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"tag() takes a list of texts, not one {type(texts).__name__}: use tag([text]) for a list of one "
            "document, or tag_text(text) for its entities alone"
        )
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        return _arrow_texts(texts)
    if isinstance(texts, (pa.Table, pa.RecordBatch)):
        raise TypeError("tag() takes texts, not a table: use tag_table(table, text_column=...), "
                        "or tag(table.column(name))")
    if isinstance(texts, np.ndarray):
        return _numpy_texts(texts)
    pd = sys.modules.get("pandas")  # an object from pandas means pandas is imported already
    if pd is not None:
        if isinstance(texts, (pd.Series, pd.Index)):
            return _checked(texts.to_numpy(dtype=object, na_value=None).tolist(), "pandas Series")
        if isinstance(texts, pd.DataFrame):
            raise TypeError("tag() takes texts, not a DataFrame: pass its text column, tag(df['text'])")
    if isinstance(texts, Mapping):
        raise TypeError(f"tag() takes a list of texts, not a {type(texts).__name__} (it would tag its keys)")
    return None


def _arrow_texts(texts: pa.Array | pa.ChunkedArray) -> list[str | None]:
    from fasttag.formats import texts_from_column

    if pa.types.is_null(texts.type):
        return [None] * len(texts)
    try:
        return texts_from_column(texts, "texts")[0]
    except InputError as exc:
        raise TypeError(f"tag() takes an Arrow array of strings, got one of type {texts.type}") from exc


def _numpy_texts(texts: np.ndarray) -> list[str | None]:
    if texts.ndim != 1:
        raise TypeError(f"tag() takes a 1-D array of texts, got one of shape {texts.shape}")
    if texts.dtype.kind == "U":
        return texts.tolist()
    if texts.dtype.kind == "O":
        return _checked(texts.tolist(), "NumPy array")
    raise TypeError(f"tag() takes a NumPy array of str or object, got dtype {texts.dtype}")


def _checked(items: list, what: str) -> list[str | None]:
    """`items` with nulls (None, NaN) as None and Arrow string scalars as str; TypeError at the first non-text."""
    return [_text(t, i, what) for i, t in enumerate(items)]


def _text(t: Any, i: int, what: str) -> str | None:
    """One item of texts: a str, or None for a null (None, NaN, a null Arrow scalar); TypeError otherwise."""
    if isinstance(t, str) or t is None:
        return t
    if isinstance(t, float) and math.isnan(t):
        return None
    if isinstance(t, pa.Scalar) and (pa.types.is_string(t.type) or pa.types.is_large_string(t.type)
                                     or pa.types.is_string_view(t.type) or pa.types.is_null(t.type)):
        return t.as_py()
    raise TypeError(f"{what}[{i}] is not a text (a str, or None for no text): got {type(t).__name__}")
