"""`Tagger`: the Python API over the engine (tokenize -> batch -> infer -> aggregate)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import queue
import sys
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fasttag.aggregate import (
    Spans,
    Units,
    decode_spans,
    decode_tokens,
    decode_words,
    group_units,
    word_tags,
    word_units,
)
from fasttag.batch import Batch, TokenBudgetBatcher
from fasttag.dedup import DuplicateWindow, Plan
from fasttag.entities import (
    LEVEL_TYPES,
    SCORES_TYPE,
    TAGS_TYPE,
    TOKEN_SPAN_TYPE,
    TOKEN_SPANS_TYPE,
    Entity,
    Token,
    TokenSpan,
    TokenTags,
    Word,
    result_fields,
    text_slices,
)
from fasttag.errors import InputError, UsageError
from fasttag.infer import OnnxModel, cpu_count, default_streams, default_threads, softmax
from fasttag.model import LabelScheme, ModelBundle, _read_json
from fasttag.options import EngineOptions, Level, OutputOptions
from fasttag.schemes import Task
from fasttag.shape import Shaper
from fasttag.stages import StageTimes
from fasttag.tokenization import DocumentTokenizer, TokenizedChunk

MAX_LENGTH_CAP = 512
DEFAULT_STRIDE = 128
# CPU: small batches run fastest (cache; two streams at once); GPU: wide batches.
CPU_BATCH_TOKENS, CPU_MAX_BATCH = 1024, 16
GPU_BATCH_TOKENS, GPU_MAX_BATCH = 65536, 1024


@dataclass
class TaggedChunk:
    """A chunk's documents and their results at the tagger's level (span.doc indexes `texts`).

    `spans` holds the entities, words or tokens (for pre-tokenized input: the entities, in token indices);
    `index` the tokens level's positions in the model input; `tags`/`scores` pre-tokenized input's tag (an
    index into `LabelScheme.word_labels`, -1 for none) and score of each input token, `word_offsets` each
    row's first input token.
    """

    texts: list[str]
    spans: Spans
    n_windows: int
    n_tokens: int
    index: np.ndarray | None = None
    token_ids: np.ndarray | None = None
    tags: np.ndarray | None = None
    scores: np.ndarray | None = None
    word_offsets: np.ndarray | None = None

    @property
    def n_results(self) -> int:
        """Entities, words or tokens found (pre-tokenized input: entities, or tagged tokens at the words level)."""
        if self.tags is not None and not len(self.spans):
            return int((self.tags >= 0).sum())
        return len(self.spans)


@dataclass
class PreparedRows:
    """A chunk of rows ready for the model: the values to tag now, and (with a duplicate window) the plan that
    maps the chunk's rows to them."""

    tokenized: TokenizedChunk
    plan: Plan | None


@dataclass
class RowResults:
    """Every row's result columns, and what it took: windows and tokens run, results, repaired texts, duplicates."""

    arrays: dict[str, pa.Array]
    n_windows: int
    n_tokens: int
    n_results: int
    repaired: int
    duplicates: int = 0
    window_chunk: Any = None  # with a duplicate window: the chunk's distinct values and results as it holds them


def resolve_level(options: EngineOptions, task: Task) -> Level:
    """The level `options` ask for, by the task when not given; a level the task cannot give is refused."""
    level: Level = "tokens" if options.aggregation == "none" else (
        options.level or ("entities" if task.kind == "span" else "words"))
    if level == "entities" and task.kind == "tag":
        raise UsageError("--level entities needs a span task (labels such as B-PER, I-PER); this model is a tag "
                         "task (one label per word, no entity prefixes): use --level words (its default) or tokens")
    if level == "words" and options.aggregation == "simple":
        raise UsageError("--aggregation simple labels sub-tokens one by one, but the words level (the default for "
                         "a tag task) labels words: use --aggregation first, average or max")
    return level


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    excl = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - excl, lengths)


class _Inferring:
    """One chunk's probabilities as its batches' logits come in (`Tagger.infer`, `Tagger.infer_stream`)."""

    def __init__(self, tagger: Tagger, key: Any, chunk: TokenizedChunk) -> None:
        self.tagger, self.key, self.chunk = tagger, key, chunk
        self.probs = np.zeros((chunk.n_tokens, len(tagger.bundle.labels)), dtype=np.float32)
        self.batches = tagger.batches(chunk)
        self.left = len(self.batches)
        w, stages = chunk.windows, tagger.stages
        model_tokens = sum(b.padded_tokens for b in self.batches)
        stages.model_tokens += model_tokens
        stages.padding_tokens += model_tokens - int((w.end - w.start).sum()) - len(w) * tagger.tokenizer.n_special

    def feeds(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self.tagger.model_inputs(self.chunk, b) for b in self.batches)

    def take(self, logits: np.ndarray) -> None:
        """The logits of the first batch whose logits have not come in yet."""
        self.put(self.batches[len(self.batches) - self.left], logits)

    def put(self, batch: Batch, logits: np.ndarray) -> None:
        w = self.chunk.windows
        idx = batch.windows
        own = w.own_end[idx] - w.own_start[idx]
        row_base = np.arange(len(idx), dtype=np.int64) * batch.seq_len
        src = _ranges(row_base + len(self.tagger.tokenizer.prefix_ids) + (w.own_start[idx] - w.start[idx]), own)
        dst = _ranges(w.own_start[idx], own)
        self.probs[dst] = softmax(logits.reshape(-1, logits.shape[-1])[src])
        self.left -= 1


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
        self.task: Task = bundle.task  # span or tag: the manifest's record, else what the labels say
        self.level = resolve_level(options, self.task)
        if self.level == "tokens":
            aggregation = "none"
        self.aggregation = aggregation
        model_max = min(bundle.max_length, MAX_LENGTH_CAP)
        if max_length is not None and max_length > bundle.max_length:
            raise UsageError(f"--max-length {max_length} exceeds the model's maximum of {bundle.max_length}")
        run_window = bundle.manifest.get("run") or {}  # the window the export recorded for `run` (--run-max-length)
        if max_length is None and run_window.get("max_length"):
            max_length = min(int(run_window["max_length"]), model_max)
            if stride is None and run_window.get("stride") is not None:
                stride = min(int(run_window["stride"]), (max_length - 2) // 2)
        self.max_length = int(max_length or model_max)
        self.tuned: str | None = None  # where the tuned setting in use came from, said in run's first line
        if options.tuned and _tuned_applies(options, device):
            from fasttag.machine import machine
            from fasttag.tuning import architecture_key, load_tuned, tuned_path

            found = load_tuned(machine().key(), architecture_key(bundle))
            if found is not None:
                setting = found[0]
                batch_tokens, max_batch_size = setting.batch_tokens, setting.max_batch_size
                streams, threads = setting.streams, setting.threads
                self.tuned = f"tuned setting from {tuned_path()}: {setting.describe()}"
        threads = threads or default_threads()
        # CPU: several sessions, each on its share of the cores, running different batches at once, keep
        # the cores busier than one session that splits every operator across all of them (measured:
        # 1.13-1.26x on short texts with 2 cores; bench/RESULTS.md).
        total = threads or cpu_count()
        self.threads = total  # onnxruntime threads in all, shared by the streams
        wanted = max(1, int(streams or default_streams(total)))
        if wanted > total:
            raise UsageError(f"--streams {wanted} needs at least {wanted} threads (each stream runs on its own "
                             f"threads), but there are {total}: raise --threads or lower --streams")
        per_stream = max(1, total // wanted) if wanted > 1 else threads
        self.model = OnnxModel(bundle.onnx_path, device=device, threads=per_stream)
        on_gpu = self.model.provider != "CPUExecutionProvider"
        if on_gpu and self.tuned:  # a CPU sweep's batches do not apply to the GPU that came up (--device auto)
            batch_tokens = max_batch_size = None
            self.tuned = None
        self.streams = 1 if on_gpu else wanted
        self.sessions = [self.model] + [
            OnnxModel(bundle.onnx_path, device="cpu", threads=per_stream) for _ in range(self.streams - 1)
        ]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for session in self.sessions:
            self._free.put(session)
        self._pool: ThreadPoolExecutor | None = None
        # Sessions run in pool threads (while this thread builds inputs, decodes and writes) with several CPU
        # streams, and with the GPU's one; one CPU stream runs in the caller's thread, its threads being all the
        # cores there are.
        self.overlap = self.streams > 1 or on_gpu
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
            windows=options.windows,
        )
        self.scheme = LabelScheme.from_labels(bundle.labels, kind=self.task.kind)
        self._vocab: pa.Array | None = None
        self.stages = StageTimes()  # seconds per stage and padding, summed over every chunk this tagger ran
        self.batcher = TokenBudgetBatcher(
            batch_tokens or (GPU_BATCH_TOKENS if on_gpu else CPU_BATCH_TOKENS),
            max_batch_size or (GPU_MAX_BATCH if on_gpu else CPU_MAX_BATCH),
            pad_multiple=32 if on_gpu else 1,  # few distinct shapes bound the GPU memory arena
            max_length=self.max_length,
        )
        # the options as they apply here, defaults resolved (what --resume records)
        self.options = options.replace(model_dir=str(bundle.path), max_length=self.max_length, stride=stride,
                                       batch_tokens=self.batcher.budget_tokens,
                                       max_batch_size=self.batcher.max_batch_size, level=self.level,
                                       aggregation=aggregation)

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
        return self.tokenizer(list(texts), word_level=self.level != "tokens" and self.aggregation != "simple")

    def prepare(self, values: Sequence[Any], pretokenized: bool = False) -> TokenizedChunk:
        """A chunk of input values tokenized: texts (None and non-strings as empty texts), or with `pretokenized`
        token lists (None as an empty list), each token a word (see `check_pretokenized`)."""
        started = time.perf_counter()
        try:
            if pretokenized:
                self.check_pretokenized()
                return self.tokenizer.pretokenized([list(v) if v is not None else [] for v in values])
            return self.tokenize([t if isinstance(t, str) else "" for t in values])
        finally:
            self.stages.tokenize += time.perf_counter() - started

    def prepare_rows(self, values: Sequence[Any], pretokenized: bool = False,
                     window: DuplicateWindow | None = None) -> PreparedRows:
        """`prepare` for a chunk of rows; with `window`, only the values it has not seen recently are tokenized
        (see `fasttag.dedup`). May run in another thread than `finish_rows`, in chunk order."""
        if window is None:
            return PreparedRows(self.prepare(values, pretokenized), None)
        started = time.perf_counter()
        plan = window.plan(values)
        self.stages.tokenize += time.perf_counter() - started
        return PreparedRows(self.prepare(plan.new_values, pretokenized), plan)

    def finish_rows(self, prepared: PreparedRows) -> RowResults:
        """The result columns of every row of a prepared chunk (duplicates' results copied), with its counts."""
        return self._row_results(prepared, self.finish_chunk(prepared.tokenized))

    def finish_rows_stream(self, items: Iterable[tuple[Any, PreparedRows]]) -> Generator[tuple[Any, RowResults], None,
                                                                                         None]:
        """`finish_rows` for a stream of (key, prepared chunk), in order, with the model kept busy across chunks
        (with several streams or on the GPU): the next chunk's first batches already run while the caller handles
        (writes) one chunk's results. See `infer_stream`."""
        with contextlib.closing(self._finish_stream(((key, prepared), prepared.tokenized)
                                                    for key, prepared in items)) as stream:
            for (key, prepared), tagged in stream:
                yield key, self._row_results(prepared, tagged)

    def _finish_stream(self, items: Iterable[tuple[Any, TokenizedChunk]]) -> Generator[tuple[Any, TaggedChunk], None,
                                                                                        None]:
        """`finish_chunk` over a stream of (key, chunk), through `infer_stream`."""
        with contextlib.closing(self.infer_stream(items)) as stream:
            for key, chunk, probs in stream:
                decoding = time.perf_counter()
                try:
                    tagged = self._decode_chunk(chunk, probs)
                finally:
                    self.stages.decode += time.perf_counter() - decoding
                yield key, tagged

    def _row_results(self, prepared: PreparedRows, tagged: TaggedChunk) -> RowResults:
        tokenized, plan = prepared.tokenized, prepared.plan
        arrays = self.result_arrays(tagged)
        if plan is None:
            return RowResults(arrays, tagged.n_windows, tagged.n_tokens, tagged.n_results, tokenized.repaired)
        started = time.perf_counter()
        repaired = np.zeros(len(plan.new), dtype=bool)
        if tokenized.repaired:
            repaired[:] = [isinstance(v, str) and v != t for v, t in zip(plan.new_values, tokenized.texts,
                                                                        strict=True)]
        arrays, n_repaired = DuplicateWindow.merge(plan, arrays, repaired)
        n_results = tagged.n_results if plan.trivial else self._count_results(arrays, tagged)
        self.stages.decode += time.perf_counter() - started
        return RowResults(arrays, tagged.n_windows, tagged.n_tokens, n_results, n_repaired, plan.duplicates,
                          plan.chunk)

    def _count_results(self, arrays: dict[str, pa.Array], tagged: TaggedChunk) -> int:
        """`TaggedChunk.n_results` of the rows' columns (duplicates' results included)."""
        if tagged.tags is None:
            return int(pc.sum(pc.list_value_length(arrays[self.level])).as_py() or 0)
        entities = arrays.get("entities")
        if entities is not None and (n := int(pc.sum(pc.list_value_length(entities)).as_py() or 0)):
            return n
        tags = pc.list_flatten(arrays["tags"])
        return len(tags) - tags.null_count

    def check_pretokenized(self) -> None:
        """Refuse the options pre-tokenized input cannot take: it gets one tag per input token."""
        if self.level == "tokens":
            raise UsageError("--tokens-column gives one tag per input token; --level tokens (--aggregation none) "
                             "lists sub-tokens of a text: use --text-column")
        if self.aggregation == "simple":
            raise UsageError("--tokens-column tags whole tokens: --aggregation simple (sub-token by sub-token) does "
                             "not apply; use first, average or max")

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
        inferring = _Inferring(self, None, chunk)
        for logits in self.run_model(inferring.feeds()):
            assert logits is not None  # no marks among these feeds
            inferring.take(logits)
        return inferring.probs

    def infer_stream(self, items: Iterable[tuple[Any, TokenizedChunk]]) -> Generator[tuple[Any, TokenizedChunk,
                                                                                           np.ndarray], None, None]:
        """(key, chunk, probabilities) of each (key, chunk) of a stream, in order: `infer` over one run of the
        sessions. With several streams (or on the GPU) no session waits at a chunk's end for the last batch of it
        to finish, nor while the caller handles a finished chunk: the next chunk's first batches are in flight by
        then (`items` is read one chunk ahead, and a chunk is handed over as soon as its last batch is in). With
        one CPU stream, the session runs here, between the caller's steps.

        An error from `items` is raised once the chunks before it are handed over; one from the sessions (or
        from building a batch's inputs) at once.

        `stages.infer` gets the time spent here, less the time the caller and `items` take."""
        waiting = [0.0]  # seconds spent in `items` (the chunk's preparation, when it is not ready yet)
        queued: deque[_Inferring] = deque()
        failed: list[Exception] = []  # raised by `items`: raised here once the chunks before it are handed over

        def feeds() -> Iterator[tuple[np.ndarray, np.ndarray] | None]:
            it = iter(items)
            while True:
                pulling = time.perf_counter()
                try:
                    item = next(it, None)
                except Exception as exc:
                    failed.append(exc)
                    return
                finally:
                    waiting[0] += time.perf_counter() - pulling
                if item is None:
                    return
                key, chunk = item
                entry = _Inferring(self, key, chunk)
                queued.append(entry)
                yield from entry.feeds()
                # a mark: control comes back here once the chunk's batches are in, to hand it over (a chunk with no
                # batch too), so that chunks are not read further ahead than the batches in flight
                yield None

        results = self.run_model(feeds())
        started: float | None = time.perf_counter()  # None while the caller has a chunk
        try:
            while True:
                logits = next(results, _END)
                if logits is not None and logits is not _END:
                    next(e for e in queued if e.left).take(logits)
                # the chunks at the front that are complete (a chunk with no batch is complete at once; once the
                # sessions are done, every chunk is)
                while queued and not queued[0].left:
                    done = queued.popleft()
                    assert started is not None
                    self.stages.infer += time.perf_counter() - started - waiting[0]
                    started = None
                    yield done.key, done.chunk, done.probs
                    started, waiting[0] = time.perf_counter(), 0.0
                if logits is _END:
                    break
            if failed:
                raise failed[0]
        finally:
            results.close()  # a failure or a consumer that stopped: what has not started is cancelled
            if started is not None:
                self.stages.infer += time.perf_counter() - started - waiting[0]

    def run_model(self, feeds: Iterable[tuple[np.ndarray, np.ndarray] | None]) -> Generator[np.ndarray | None, None,
                                                                                          None]:
        """Logits of each (input_ids, attention_mask), in order; a None feed (a mark between chunks) comes back as
        None in its place.

        With several streams (and on the GPU), pool threads only run the sessions, taking batches as sessions
        come free; feeds are consumed and logits yielded here, in order, with at most 2 x streams batches in
        flight (and as many marks).
        """
        if not self.overlap:
            for feed in feeds:
                yield None if feed is None else self.model.run(*feed)
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

        cap = 2 * self.streams
        in_flight: deque[Future | None] = deque()  # batches' futures, and marks (None)
        counts = {"batches": 0, "marks": 0}

        def pop():
            future = in_flight.popleft()
            counts["marks" if future is None else "batches"] -= 1
            return None if future is None else future.result()

        try:
            for feed in feeds:
                in_flight.append(None if feed is None else self._pool.submit(run_on_free_session, *feed))
                counts["marks" if feed is None else "batches"] += 1
                # a mark goes back as soon as the batches before it have; marks do not take batches' places
                while in_flight and (in_flight[0] is None or counts["batches"] > cap or counts["marks"] > cap):
                    yield pop()
            while in_flight:
                yield pop()
        finally:  # a failure, Ctrl-C or a consumer that stopped: cancel what has not started
            for future in in_flight:
                if future is not None:
                    future.cancel()

    def decode(self, chunk: TokenizedChunk, probs: np.ndarray) -> Spans:
        """The level's results from a chunk's probabilities: entities, words or tokens."""
        args = (probs, chunk.offsets, chunk.doc_offsets, self.scheme)
        if self.level == "tokens":
            return decode_tokens(*args, chunk.skip)
        decode = decode_words if self.level == "words" else decode_spans
        return decode(*args, self.aggregation, chunk.skip, chunk.is_subword, chunk.trailing, chunk.texts)

    def tag_chunk(self, values: Sequence[Any], pretokenized: bool = False) -> TaggedChunk:
        return self.finish_chunk(self.prepare(values, pretokenized))

    def finish_chunk(self, chunk: TokenizedChunk) -> TaggedChunk:
        started = time.perf_counter()
        probs = self.infer(chunk)
        decoding = time.perf_counter()
        self.stages.infer += decoding - started
        try:
            return self._decode_chunk(chunk, probs)
        finally:
            self.stages.decode += time.perf_counter() - decoding

    def _decode_chunk(self, chunk: TokenizedChunk, probs: np.ndarray) -> TaggedChunk:
        if chunk.word_ids is not None:
            return self._finish_pretokenized(chunk, probs)
        spans = self.decode(chunk, probs)
        tagged = TaggedChunk(chunk.texts, spans, len(chunk.windows), chunk.n_tokens)
        if self.level == "tokens" and spans.token is not None:
            # the token's position in its document's model input: [CLS] (the template's prefix) is 0
            tagged.index = spans.token - chunk.doc_offsets[spans.doc] + len(self.tokenizer.prefix_ids)
            tagged.token_ids = chunk.ids[spans.token]
        return tagged

    def _finish_pretokenized(self, chunk: TokenizedChunk, probs: np.ndarray) -> TaggedChunk:
        """Each input token's tag and score from its sub-tokens (by the aggregation), and the entities in token
        indices; a token the tokenizer turns into nothing gets no tag, and breaks an entity."""
        assert chunk.word_ids is not None and chunk.word_offsets is not None
        keep = np.flatnonzero(~chunk.skip & (chunk.word_ids >= 0))
        word_of = chunk.word_ids[keep]
        doc_offsets = np.searchsorted(keep, chunk.doc_offsets)
        doc_of = np.repeat(np.arange(len(chunk.texts), dtype=np.int64), np.diff(doc_offsets))
        sub = np.zeros(len(keep), dtype=bool)
        sub[1:] = (word_of[1:] == word_of[:-1]) & (doc_of[1:] == doc_of[:-1])
        units = word_units(probs[keep], chunk.offsets[keep], doc_offsets, self.scheme, self.aggregation,
                           is_subword=sub)
        word = word_of[units.first]
        gap = np.ones(len(units), dtype=bool)
        gap[1:] = (word[1:] != word[:-1] + 1) | (units.doc[1:] != units.doc[:-1])
        units = Units(units.doc, keep[units.first], word, word + 1, units.label, units.score, units.first_in_doc | gap)
        flat = chunk.word_offsets[units.doc] + word
        n_words = int(chunk.word_offsets[-1])
        tags = np.full(n_words, -1, dtype=np.int64)
        tags[flat] = word_tags(units, self.scheme)
        scores = np.zeros(n_words, dtype=np.float32)
        scores[flat] = units.score
        spans = group_units(units, self.scheme) if self.level == "entities" else Spans.empty()
        return TaggedChunk(chunk.texts, spans, len(chunk.windows), chunk.n_tokens, tags=tags, scores=scores,
                           word_offsets=chunk.word_offsets)

    # -- public API ---------------------------------------------------------------------------
    def tag(self, texts: Iterable[str | None]) -> list[list[Any]]:
        """The results of each text, in order, at the tagger's level: lists of `Entity` (the entities level),
        `Word` (words) or `Token` (tokens); None (or a null) gives an empty list.

        `texts` is a list (or other iterable) of strings, a pyarrow string Array or ChunkedArray, a
        NumPy array of str or object, or a pandas Series of strings. One string is not a list of
        texts: it raises `TypeError` (use `tag_text`).
        """
        out: list[list[Any]] = []
        items = ((None, self.prepare(chunk)) for chunk in bounded_chunks(as_texts(texts)))
        for _, tagged in self._finish_stream(items):  # the model kept busy from one chunk to the next
            out.extend(self._python_results(tagged))
        return out

    def tag_iter(self, texts: Iterable[str | None]) -> Iterator[list[Any]]:
        """The results of each text of a stream, in order, as `tag` gives them; the stream is read lazily.

        `texts` is anything `tag` takes; a generator is read a bounded chunk at a time (at most
        TAG_CHUNK_TEXTS texts or TAG_CHUNK_CHARS characters), as its results are asked for.
        """
        for chunk in bounded_chunks(iter_texts(texts)):
            yield from self._results(chunk)

    def _results(self, texts: Sequence[str | None]) -> list[list[Any]]:
        return self._python_results(self.tag_chunk(texts))

    def _python_results(self, tagged: TaggedChunk) -> list[list[Any]]:
        """Python results straight from the arrays (pyarrow's converters would import pandas)."""
        texts = tagged.texts  # as tokenized: lone surrogates repaired
        sp = tagged.spans
        out: list[list[Any]] = [[] for _ in texts]
        names = {"entities": self.scheme.group_labels, "words": self.scheme.word_labels,
                 "tokens": self.scheme.labels}[self.level]
        columns = [sp.doc.tolist(), sp.start.tolist(), sp.end.tolist(), sp.label.tolist(), sp.score.tolist()]
        if self.level == "tokens":
            assert tagged.index is not None and tagged.token_ids is not None
            tok = self.tokenizer
            for d, a, b, lab, sc, i, t in zip(*columns, tagged.index.tolist(), tagged.token_ids.tolist(),
                                              strict=True):
                text = texts[d][a:b]
                token = text if t == tok.unk_id else (tok.tokenizer.id_to_token(t) or "")
                out[d].append(Token(a, b, names[lab], sc, text, i, token))
            return out
        cls = Entity if self.level == "entities" else Word
        for d, a, b, lab, sc in zip(*columns, strict=True):
            out[d].append(cls(a, b, names[lab], sc, texts[d][a:b]))
        return out

    def tag_pretokenized(self, sentences: Iterable[Sequence[str] | None]) -> list[TokenTags]:
        """One tag and score per token of each token list (a span task's tags in IOB2), and for a span task at
        the entities level its entities in token indices; None gives empty lists.

        The tokens are the words: each is tokenized into sub-tokens as training tokenizes pre-split words,
        and long lists run through the same windows as long texts. A list that is empty, or holds a token
        that is not a string, empty or whitespace, is a `ValueError` naming it.
        """
        from fasttag.read import token_list_error

        checked: list[list[str] | None] = []
        for i, tokens in enumerate(sentences):
            if isinstance(tokens, tuple):
                tokens = list(tokens)
            if tokens is not None and (why := token_list_error(tokens)):
                raise ValueError(f"sentences[{i}]: {why}")
            checked.append(tokens)  # type: ignore[arg-type]
        out: list[TokenTags] = []
        names = self.scheme.word_labels
        for a in range(0, len(checked), TAG_CHUNK_TEXTS):
            tagged = self.tag_chunk(checked[a:a + TAG_CHUNK_TEXTS], pretokenized=True)
            assert tagged.tags is not None and tagged.scores is not None and tagged.word_offsets is not None
            tags = [names[t] if t >= 0 else None for t in tagged.tags.tolist()]
            scores = [sc if t >= 0 else None for t, sc in zip(tagged.tags.tolist(), tagged.scores.tolist(),
                                                               strict=True)]
            sp = tagged.spans
            entities: list[list[TokenSpan]] = [[] for _ in tagged.texts]
            for d, x, y, lab, sc in zip(sp.doc.tolist(), sp.start.tolist(), sp.end.tolist(), sp.label.tolist(),
                                        sp.score.tolist(), strict=True):
                entities[d].append(TokenSpan(x, y, self.scheme.group_labels[lab], sc))
            bounds = tagged.word_offsets.tolist()
            out.extend(TokenTags(tags[x:y], scores[x:y], entities[d] if self.level == "entities" else None)
                       for d, (x, y) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)))
        return out

    def tag_text(self, text: str) -> list[Any]:
        """The results of one text (a document of any length) at the tagger's level (entities by default)."""
        if not isinstance(text, str):
            raise TypeError(f"tag_text() takes one string, got {type(text).__name__}; for many texts use tag(texts)")
        return self.tag([text])[0]

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One label per word: the argmax label of the word's first sub-token.

        A word with no token (cut off by the length limit, or none from the tokenizer) is ``O`` in a span task
        and `fasttag.schemes.NO_TAG` (``""``) in a tag task, which scoring counts as wrong, in no tag's row.

        Words are tokenized one by one as training tokenizes them (so the first sub-token is the same
        token, a bare space marker included) and run through the same windows and batches as `tag`.
        """
        chunk, word_ids = self.tokenizer.words(sentences)
        label_ids = self.infer(chunk).argmax(axis=1)
        label_ids[chunk.skip] = -1
        missing = self.bundle.task.unpredicted
        out = []
        for d, words in enumerate(sentences):
            a, b = chunk.doc_offsets[d], chunk.doc_offsets[d + 1]
            ids = np.full(len(words), -1, dtype=np.int64)
            seen, first = np.unique(word_ids[a:b], return_index=True)  # each word's first token
            ok = seen >= 0
            ids[seen[ok]] = label_ids[a + first[ok]]
            out.append([self.bundle.labels[i] if i >= 0 else missing for i in ids.tolist()])
        return out

    def result_labels(self) -> list[str]:
        """The labels the level's items can carry: entity types (entities; O is none), the words' tags (words),
        the model's labels (tokens)."""
        if self.level == "entities":
            return [g for g, ignored in zip(self.scheme.group_labels, self.scheme.ignored_group, strict=True)
                    if not ignored]
        return self.scheme.word_labels if self.level == "words" else self.scheme.labels

    def shaper(self, output: OutputOptions | None = None, pretokenized: bool = False) -> Shaper:
        """How `output` (kept columns, filters, layout) shapes this tagger's results (see `fasttag.shape`)."""
        return Shaper(output or OutputOptions(), self.level, self.result_labels(), pretokenized,
                      self.result_fields(pretokenized))

    def result_fields(self, pretokenized: bool = False) -> list[pa.Field]:
        """The result columns this tagger writes after the id column (see `fasttag.entities.result_fields`)."""
        return result_fields(self.level, pretokenized)

    def result_arrays(self, tagged: TaggedChunk) -> dict[str, pa.Array]:
        """The chunk's result columns, one list per document: `entities`, `words` or `tokens` (the level's
        struct type), or for pre-tokenized input `tags`, `scores` (and `entities` in token indices)."""
        started = time.perf_counter()
        try:
            return self._result_arrays(tagged)
        finally:
            self.stages.decode += time.perf_counter() - started

    def _result_arrays(self, tagged: TaggedChunk) -> dict[str, pa.Array]:
        if tagged.tags is not None:
            return self._pretokenized_arrays(tagged)
        sp, texts, level = tagged.spans, tagged.texts, self.level
        names = {"entities": self.scheme.group_labels, "words": self.scheme.word_labels,
                 "tokens": self.scheme.labels}[level]
        text = text_slices(texts, sp.doc, sp.start, sp.end)
        fields = [pa.array(sp.start, type=pa.int32()), pa.array(sp.end, type=pa.int32()),
                  pa.array(names, type=pa.string()).take(pa.array(sp.label, type=pa.int64())),
                  pa.array(sp.score, type=pa.float32()), text]
        if level == "tokens":
            assert tagged.index is not None and tagged.token_ids is not None
            vocab = self.vocabulary().take(pa.array(np.minimum(tagged.token_ids, len(self.vocabulary()) - 1)))
            # an unknown token is its text, as the pipeline gives it
            token = pc.if_else(pa.array(tagged.token_ids == self.tokenizer.unk_id), text, vocab)
            fields += [pa.array(tagged.index, type=pa.int32()), token]
        item = LEVEL_TYPES[level].value_type
        structs = pa.StructArray.from_arrays(fields, fields=list(item))
        return {level: pa.ListArray.from_arrays(_list_offsets(sp.doc, len(texts)), structs, type=LEVEL_TYPES[level])}

    def entities_array(self, tagged: TaggedChunk) -> pa.ListArray:
        """The chunk's results at the tagger's level (entities, words or tokens), one list per document."""
        return self.result_arrays(tagged)[self.level]

    def _pretokenized_arrays(self, tagged: TaggedChunk) -> dict[str, pa.Array]:
        assert tagged.tags is not None and tagged.scores is not None and tagged.word_offsets is not None
        offsets = pa.array(tagged.word_offsets.astype(np.int32))
        none = tagged.tags < 0
        tags = pa.array(self.scheme.word_labels, type=pa.string()).take(pa.array(np.maximum(tagged.tags, 0),
                                                                                  mask=none))
        scores = pa.array(tagged.scores, type=pa.float32(), mask=none)
        out = {"tags": pa.ListArray.from_arrays(offsets, tags, type=TAGS_TYPE),
               "scores": pa.ListArray.from_arrays(offsets, scores, type=SCORES_TYPE)}
        if self.level == "entities":
            sp = tagged.spans
            structs = pa.StructArray.from_arrays(
                [pa.array(sp.start, type=pa.int32()), pa.array(sp.end, type=pa.int32()),
                 pa.array(self.scheme.group_labels, type=pa.string()).take(pa.array(sp.label, type=pa.int64())),
                 pa.array(sp.score, type=pa.float32())], fields=list(TOKEN_SPAN_TYPE))
            out["entities"] = pa.ListArray.from_arrays(_list_offsets(sp.doc, len(tagged.texts)), structs,
                                                       type=TOKEN_SPANS_TYPE)
        return out

    def vocabulary(self) -> pa.Array:
        """Each token id's vocabulary entry (the tokens level's `token`), built once."""
        if self._vocab is None:
            tok = self.tokenizer.tokenizer
            size = tok.get_vocab_size(with_added_tokens=True)
            self._vocab = pa.array([tok.id_to_token(i) or "" for i in range(size)], type=pa.string())
        return self._vocab

    def tag_table(self, table: pa.Table, text_column: str = "text", id_column: str | None = None,
                  tokens_column: str | None = None, output: OutputOptions | None = None,
                  **output_kwargs: Any) -> pa.Table:
        """The rows `fasttag run` writes for `table`: the id column (or `row`, 0-based), the kept columns and the
        result columns (`result_fields`), one row per input row (or per result, with ``layout="flat"``).

        `tokens_column` names a column of token lists to tag instead of the text column. `output` (or keyword
        arguments named as its fields: ``keep_columns=["url"]``, ``min_score={"PER": 0.9}``, ``labels=["PER"]``,
        ``layout="flat"``) shape the rows as run's options of those names do.
        """
        return self._tag_tables([table], table.schema, text_column, id_column, tokens_column,
                                _output_options(output, output_kwargs))[0]

    def tag_dataframe(self, df: Any, text_column: str = "text", id_column: str | None = None,
                      tokens_column: str | None = None, output: OutputOptions | None = None,
                      **output_kwargs: Any) -> Any:
        """`tag_table` for a pandas or Polars DataFrame, returning a DataFrame of the same library: the columns go
        through Arrow (no Python loop per row); pandas gets Arrow-backed columns (`pd.ArrowDtype`), so the types
        are run's exactly; Polars its own types for them (String, List, Struct)."""
        opts = _output_options(output, output_kwargs)
        pd, pl = sys.modules.get("pandas"), sys.modules.get("polars")  # a DataFrame means its library is imported
        if pd is not None and isinstance(df, pd.DataFrame):
            # Arrow names columns by their text (a column 0 is "0"), and so do these arguments
            text_column = str(text_column)
            id_column, tokens_column = (None if c is None else str(c) for c in (id_column, tokens_column))
            columns = {str(c): c for c in df.columns}
            needed = self._needed_columns(list(columns), text_column, id_column, tokens_column, opts)
            frame = df[[columns[n] for n in needed]]
            try:
                table = pa.Table.from_pandas(frame, preserve_index=False)
            except UnicodeEncodeError:  # a lone surrogate, which Arrow's UTF-8 cannot hold: read as U+FFFD, as tag()
                table = pa.Table.from_pandas(_surrogates_repaired(frame), preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise TypeError(f"the DataFrame's columns {needed} cannot be read as Arrow: {exc}") from exc
            out = self.tag_table(table, text_column, id_column, tokens_column, opts)
            return out.to_pandas(types_mapper=pd.ArrowDtype)
        if pl is not None and isinstance(df, pl.DataFrame):
            needed = self._needed_columns(df.columns, text_column, id_column, tokens_column, opts)
            out = self.tag_table(df.select(needed).to_arrow(), text_column, id_column, tokens_column, opts)
            return pl.from_arrow(out)
        if pl is not None and isinstance(df, pl.LazyFrame):
            raise TypeError("tag_dataframe() takes a DataFrame, not a LazyFrame: collect() it first")
        raise TypeError(f"tag_dataframe() takes a pandas or Polars DataFrame, got {type(df).__name__}")

    def tag_dataset(self, dataset: Any, text_column: str = "text", id_column: str | None = None,
                    tokens_column: str | None = None, output: OutputOptions | None = None,
                    batch_rows: int | None = None, **output_kwargs: Any) -> Any:
        """`tag_table` for a Hugging Face `datasets.Dataset`, read as Arrow batches of `batch_rows` rows (default
        TAG_CHUNK_TEXTS; a memory-mapped dataset is not loaded whole); returns a `datasets.Dataset` of run's rows
        (`row` numbers the rows in the dataset's order, after any `select` or `shuffle`)."""
        opts = _output_options(output, output_kwargs)
        datasets = sys.modules.get("datasets")
        if datasets is None or not isinstance(dataset, datasets.Dataset):
            hint = " (an IterableDataset: tag_dataframe or tag_table on its batches)" if datasets is not None and \
                isinstance(dataset, datasets.IterableDataset) else ""
            raise TypeError(f"tag_dataset() takes a datasets.Dataset, got {type(dataset).__name__}{hint}")
        needed = self._needed_columns(dataset.column_names, text_column, id_column, tokens_column, opts)
        selected = dataset.select_columns(needed)
        schema = selected.features.arrow_schema
        batches = selected.with_format("arrow").iter(batch_size=batch_rows or TAG_CHUNK_TEXTS)
        out = self._tag_tables(batches, schema, text_column, id_column, tokens_column, opts)[0]
        return datasets.Dataset(out.replace_schema_metadata(None))

    def _needed_columns(self, names: Sequence[str], text_column: str, id_column: str | None,
                        tokens_column: str | None, opts: OutputOptions) -> list[str]:
        """The columns of a frame that tagging reads: the text (or tokens) column, the id column, the kept ones."""
        column = tokens_column or text_column
        missing = [c for c in (column, id_column) if c and c not in names]
        if missing:
            raise UsageError(f"no column {missing[0]!r}; columns: {', '.join(map(str, names))}")
        kept = self.shaper(opts, tokens_column is not None).kept_names(names, column, id_column)
        return list(dict.fromkeys([column, *([id_column] if id_column else []), *kept]))

    def _tag_tables(self, tables: Iterable[pa.Table], schema: pa.Schema, text_column: str, id_column: str | None,
                    tokens_column: str | None, opts: OutputOptions) -> tuple[pa.Table, Any]:
        """Run's rows for consecutive `tables` (all of `schema`), and what the filters dropped (`ShapeStats`)."""
        from fasttag.formats import texts_from_column
        from fasttag.shape import ShapeStats

        column = tokens_column or text_column
        names = schema.names
        if column not in names:
            raise UsageError(f"no column {column!r}; columns: {', '.join(names)}")
        shaper = self.shaper(opts, tokens_column is not None)
        if id_column:
            from fasttag.shape import check_id_column

            check_id_column(id_column)
            if id_column not in names:
                raise UsageError(f"no id column {id_column!r}; columns: {', '.join(names)}")
        id_name = id_column or "row"
        kept_names = shaper.kept_names(names, column, id_column)
        missing = [c for c in kept_names if c not in names]
        if missing:
            raise UsageError(f"no column {missing[0]!r} to keep (keep_columns); columns: {', '.join(names)}")
        id_field = schema.field(id_column) if id_column else pa.field("row", pa.int64())
        out_schema = shaper.schema(pa.field(id_name, id_field.type), [schema.field(c) for c in kept_names])
        tag = (lambda chunk: self.tag_chunk(chunk, pretokenized=True)) if tokens_column else self.tag_chunk
        parts: list[pa.Table] = []
        stats = ShapeStats()
        first_row = 0
        for table in tables:
            n = table.num_rows
            ids = table.column(id_column) if id_column else pa.array(np.arange(first_row, first_row + n,
                                                                               dtype=np.int64))
            kept = table.select(kept_names) if kept_names else None
            chunks: list[list[Any]]
            if tokens_column:
                from fasttag.read import token_lists

                values = token_lists(table.column(tokens_column), tokens_column)
                chunks = [values[a:a + TAG_CHUNK_TEXTS] for a in range(0, len(values), TAG_CHUNK_TEXTS)]
            else:
                chunks = list(bounded_chunks(texts_from_column(table.column(text_column), text_column)[0]))
            a = 0
            for chunk in chunks:
                part, shaped = shaper.shape(id_name, ids.slice(a, len(chunk)),
                                            kept.slice(a, len(chunk)) if kept is not None else None,
                                            self.result_arrays(tag(chunk)))
                parts.append(part.cast(out_schema))
                stats.add(shaped)
                a += len(chunk)
            first_row += n
        return pa.concat_tables([out_schema.empty_table(), *parts]), stats


def _surrogates_repaired(df: Any) -> Any:
    """A copy of a pandas frame whose strings (in object columns, and in lists of them) have each lone surrogate
    replaced by U+FFFD, one for one, as the tagger reads such text (`repair_surrogates`)."""
    from fasttag.tokenization import repair_surrogates

    def fixed(value: Any) -> Any:
        if isinstance(value, str):
            return repair_surrogates([value])[0][0]
        if isinstance(value, (list, tuple)):  # a token list
            return [fixed(v) for v in value]
        return value

    out = df.copy()
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = out[name].map(fixed)
    return out


def _list_offsets(doc: np.ndarray, n_docs: int) -> pa.Array:
    """List offsets (int32) grouping results sorted by document into one list per document."""
    counts = np.bincount(doc, minlength=n_docs) if len(doc) else np.zeros(n_docs, dtype=np.int64)
    offsets = np.zeros(n_docs + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets, type=pa.int32())


def _output_options(output: OutputOptions | None, kwargs: dict[str, Any]) -> OutputOptions:
    """`output` with `kwargs` (named as its fields) applied; an unknown keyword is a TypeError."""
    if output is not None and not isinstance(output, OutputOptions):
        raise TypeError(f"output must be an OutputOptions, got {type(output).__name__}")
    if output is None:
        return OutputOptions(**kwargs)
    return dataclasses.replace(output, **kwargs) if kwargs else output


def _tuned_applies(options: EngineOptions, device: str) -> bool:
    """A tuned setting is used only where no batch option is given (nor FASTTAG_THREADS/STREAMS) and the CPU runs."""
    if any(getattr(options, name) is not None for name in ("batch_tokens", "max_batch_size", "streams", "threads")):
        return False
    if os.environ.get("FASTTAG_THREADS", "").strip() or os.environ.get("FASTTAG_STREAMS", "").strip():
        return False
    return device in ("cpu", "auto")  # with auto, dropped again if a GPU comes up


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
_END: Any = object()  # `Tagger.infer_stream`: the sessions are done
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
