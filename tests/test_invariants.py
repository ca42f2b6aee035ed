"""Invariants under hypothesis: span decoding, the JSONL reader, and the tagger end to end."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasttag import Tagger
from fasttag.aggregate import STRATEGIES, decode_spans
from fasttag.errors import InputError
from fasttag.infer import softmax
from fasttag.model import LabelScheme
from fasttag.read import CorpusReader

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC"]
SCHEME = LabelScheme.from_labels(LABELS)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@pytest.fixture(scope="module")
def taggers(bert_export):
    return {s: Tagger.load(bert_export, aggregation=s) for s in STRATEGIES}


def check_spans(ents, text, labels, tokens=False):
    prev_end = 0
    for e in ents:
        assert prev_end <= e.start <= e.end <= len(text) and (tokens or e.start < e.end)
        assert e.text == text[e.start:e.end]
        assert e.label in labels
        assert 0.0 <= e.score <= 1.0 + 1e-6
        prev_end = e.end


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=8), strategy=st.sampled_from(STRATEGIES))
def test_entities_sorted_disjoint_in_bounds_and_exact(taggers, texts, strategy):
    tagger = taggers[strategy]
    out = tagger.tag(texts)
    assert len(out) == len(texts)
    tokens = strategy == "none"  # the tokens level: full labels
    labels = set(tagger.scheme.labels if tokens else tagger.scheme.group_labels) - {"O"}
    for ents, text in zip(out, texts, strict=True):
        check_spans(ents, text, labels, tokens)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_single_window_equals_direct_model_call(taggers, text):
    """A document that fits one window: the window-merging path equals one plain model call."""
    tagger = taggers["simple"]
    tok = tagger.tokenizer
    enc = tok.tokenizer.encode(text, add_special_tokens=True)
    if len(enc.ids) > tok.max_length:
        return
    logits = tagger.model.run(np.array([enc.ids], dtype=np.int64), np.ones((1, len(enc.ids)), dtype=np.int64))[0]
    mask = np.array(enc.special_tokens_mask, dtype=bool)
    p, s = len(tok.prefix_ids), len(tok.suffix_ids)
    content = slice(p, len(enc.ids) - s)
    spans = decode_spans(softmax(logits[content]), np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)[content],
                         np.array([0, len(enc.ids) - p - s]), tagger.scheme, "simple", skip=mask[content],
                         texts=[text])  # run snaps spans to whole grapheme clusters (a mark the tokenizer dropped)
    direct = [(int(a), int(b), tagger.scheme.group_labels[lab])
              for a, b, lab in zip(spans.start, spans.end, spans.label, strict=True)]
    assert [(e.start, e.end, e.label) for e in tagger.tag([text])[0]] == direct


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n_docs=st.integers(1, 5), strategy=st.sampled_from(STRATEGIES))
def test_decode_spans_fuzz(data, n_docs, strategy):
    sizes = data.draw(st.lists(st.integers(0, 12), min_size=n_docs, max_size=n_docs))
    doc_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(doc_offsets[-1])
    raw = data.draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n * len(LABELS), max_size=n * len(LABELS)))
    probs = np.array(raw, dtype=np.float32).reshape(n, len(LABELS)) + 1e-6
    probs /= probs.sum(axis=1, keepdims=True)
    offsets = []
    for size in sizes:
        pos = 0
        for _ in range(size):
            gap, width = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 3))
            offsets.append((pos + gap, pos + gap + width))
            pos += gap + width
    offsets = np.array(offsets, dtype=np.int64).reshape(-1, 2)
    skip = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    sub = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    sp = decode_spans(probs, offsets, doc_offsets, SCHEME, strategy, skip=skip, is_subword=sub)
    assert (np.diff(sp.doc) >= 0).all()
    for d in range(n_docs):
        mine = np.flatnonzero(sp.doc == d)
        a, b = doc_offsets[d], doc_offsets[d + 1]
        lo = offsets[a:b, 0].min() if b > a else 0
        hi = offsets[a:b, 1].max() if b > a else 0
        assert (sp.start[mine] >= lo).all() and (sp.end[mine] <= hi).all()
        assert (sp.start[mine][1:] >= sp.end[mine][:-1]).all()
    assert all(SCHEME.group_labels[lab] != "O" for lab in sp.label)
    assert ((sp.score >= 0) & (sp.score <= 1.0001)).all()


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda t: json.dumps({"text": t}).encode(), TEXT),
    st.builds(lambda v: json.dumps(v).encode(), st.one_of(st.integers(), st.lists(st.integers(), max_size=3),
                                                          st.none())),
), max_size=30))
def test_jsonl_reader_fuzz(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "in.jsonl"
    path.write_bytes(b"\n".join(lines))
    reader = CorpusReader(str(path), chunk_rows=7, on_error="skip")
    try:
        rows = sum(len(c.texts) for c in reader)
    except InputError as exc:
        assert "line" in str(exc)  # an object without the text field stops the run, naming the line
        return
    non_blank = sum(1 for line in b"\n".join(lines).split(b"\n") if line.strip())
    assert rows + len(reader.stats.rejected) == non_blank
    assert reader.stats.rows == rows


def test_streams_give_the_same_entities(bert_export):
    """Several sessions running batches at once write each token once: same output as one session."""
    rng = np.random.default_rng(0)
    words = ["Ada", "Lovelace", "London", "went", "to", "the", "Paris", "bank", ",", "Müller", "42", "e-mail"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(0, 400, size=120)]
    one = Tagger.load(bert_export, streams=1, batch_tokens=256, max_length=64, stride=16)
    three = Tagger.load(bert_export, streams=3, threads=3, batch_tokens=256, max_length=64, stride=16)
    assert three.streams == 3 and len(three.batches(three.tokenize(texts))) > 20
    a, b = one.tag(texts), three.tag(texts)
    assert [[(e.start, e.end, e.label) for e in d] for d in b] == [[(e.start, e.end, e.label) for e in d] for d in a]
    scores = np.array([e.score for d in a for e in d]), np.array([e.score for d in b for e in d])
    assert len(scores[0]) > 100 and np.allclose(*scores, atol=1e-5)


def _chunks_for_the_stream(tagger):
    rng = np.random.default_rng(1)
    words = ["Ada", "Lovelace", "London", "went", "to", "the", "Paris", "bank", ",", "Müller"]
    texts = lambda n: [" ".join(rng.choice(words, size=int(k))) for k in rng.integers(1, 90, size=n)]  # noqa: E731
    # chunks with no batch (empty texts) at the front, in the middle and at the end
    return [["", None], texts(40), [""], texts(25), texts(30), [None]]


@pytest.mark.parametrize("streams,overlap", [(1, False), (1, True), (2, True)])
def test_the_model_runs_on_from_one_chunk_to_the_next(bert_export, monkeypatch, streams, overlap):
    """`finish_rows_stream` gives each chunk what `finish_rows` gives it, in order, while the next chunk's
    batches are already built and running: the sessions never wait for the caller at a chunk's end. (One
    session in a pool thread, `overlap`, is what the GPU runs.)"""
    tagger = Tagger.load(bert_export, streams=streams, threads=streams, batch_tokens=128, max_length=64, stride=16)
    assert tagger.overlap == (streams > 1)
    tagger.overlap = overlap
    chunks = _chunks_for_the_stream(tagger)
    alone = [tagger.finish_rows(tagger.prepare_rows(c)) for c in chunks]
    n_batches = [len(tagger.batches(tagger.prepare_rows(c).tokenized)) for c in chunks]
    assert n_batches[0] == n_batches[2] == n_batches[5] == 0 and min(n_batches[1], n_batches[3]) > 2 * streams

    built = [0]
    real = tagger.model_inputs
    monkeypatch.setattr(tagger, "model_inputs", lambda *a: built.__setitem__(0, built[0] + 1) or real(*a))
    got, built_when_handed = [], []
    for key, results in tagger.finish_rows_stream((i, tagger.prepare_rows(c)) for i, c in enumerate(chunks)):
        got.append((key, results))
        built_when_handed.append(built[0])
    assert [key for key, _ in got] == list(range(len(chunks)))
    for (_, results), expected in zip(got, alone, strict=True):
        assert results.n_windows == expected.n_windows and results.n_tokens == expected.n_tokens
        assert results.n_results == expected.n_results
        assert all(results.arrays[k].equals(expected.arrays[k]) for k in expected.arrays), results.arrays
    # when chunk 1 (40 texts) is handed over, batches of chunk 3 (after the empty chunk 2) are already built and
    # running, as many as are in flight (2 per stream); one session in this thread has none in flight
    ahead = 2 * streams if overlap else 0
    assert built_when_handed[1] == sum(n_batches[:2]) + ahead
    assert built_when_handed[-1] == sum(n_batches)


def test_the_stream_counts_the_model_s_time_not_the_caller_s(bert_export):
    import time

    tagger = Tagger.load(bert_export, streams=2, threads=2, batch_tokens=64)
    chunks = [["Ada Lovelace lived in London ."] * 20 for _ in range(3)]
    tagger.stages.reset()

    def items():
        for i, c in enumerate(chunks):
            time.sleep(0.3)  # reading and tokenizing a chunk that is not ready yet
            yield i, tagger.prepare_rows(c)

    started = time.perf_counter()
    for _ in tagger.finish_rows_stream(items()):
        time.sleep(0.3)  # the caller writing a chunk
    elapsed = time.perf_counter() - started
    assert 0 < tagger.stages.infer < elapsed - 1.75


def test_a_stream_the_caller_stops_stops_the_sessions(bert_export, monkeypatch):
    import threading

    tagger = Tagger.load(bert_export, streams=2, threads=2, batch_tokens=64, max_length=64, stride=16)
    chunks = [["Ada Lovelace lived in London ."] * 60 for _ in range(4)]
    per_chunk = len(tagger.batches(tagger.prepare_rows(chunks[0]).tokenized))
    calls, gate = [], threading.Event()
    for m in tagger.sessions:
        real = m.run

        def run(ids, mask, real=real):
            calls.append(1)
            if len(calls) > per_chunk:  # chunk 1's batches wait until the caller has stopped
                gate.wait(10)
            return real(ids, mask)

        monkeypatch.setattr(m, "run", run)
    stream = tagger.finish_rows_stream((i, tagger.prepare_rows(c)) for i, c in enumerate(chunks))
    key, _ = next(stream)
    stream.close()  # a caller that failed writing chunk 0, or stopped: the batches queued behind are cancelled
    gate.set()
    for done in [tagger._pool.submit(lambda: None) for _ in tagger.sessions]:
        done.result()  # the pool is idle again
    # at most one batch of chunk 1 started on each session (fewer where a session's thread had not picked its
    # batch up yet when the caller stopped: a busy machine); the other two in flight never did
    assert key == 0 and per_chunk <= len(calls) <= per_chunk + 2
    ran = len(calls)
    assert tagger.finish_rows(tagger.prepare_rows(chunks[0])).n_windows == 60  # the sessions are free again
    assert len(calls) == ran + per_chunk


def test_chunks_are_read_no_further_ahead_than_the_batches_in_flight(bert_export):
    """Chunks with no batch (rows with no text) are handed over as they come, not gathered behind a long one."""
    tagger = Tagger.load(bert_export, streams=2, threads=2, batch_tokens=64, max_length=64, stride=16)
    pulled = [0]

    def items():
        for i in range(60):
            pulled[0] += 1
            yield i, tagger.prepare_rows(["Ada Lovelace lived in London ."] * 40 if i == 0 else [None] * 5)

    pulled_when_handed = {key: pulled[0] for key, _ in tagger.finish_rows_stream(items())}
    assert list(pulled_when_handed) == list(range(60))
    assert pulled_when_handed[0] <= 1 + 2 * 2 + 1, pulled_when_handed  # at most as many marks as batches in flight
    assert all(n - key <= 2 * 2 + 1 for key, n in pulled_when_handed.items()), pulled_when_handed


def test_a_chunk_that_fails_to_prepare_stops_the_stream_after_the_chunks_before(bert_export):
    tagger = Tagger.load(bert_export, streams=2, threads=2, batch_tokens=64)

    def items():
        yield 0, tagger.prepare_rows(["Ada Lovelace lived in London ."] * 30)
        raise InputError("row 31: not a text")

    keys = []
    with pytest.raises(InputError, match="row 31"):
        for key, results in tagger.finish_rows_stream(items()):
            keys.append((key, results.n_windows))
    # the failure came while chunk 0's batches ran, and was raised once chunk 0 was handed over, as without the
    # stream: what comes before a bad chunk is written
    assert keys == [(0, 30)]
    assert tagger.finish_rows(tagger.prepare_rows(["Ada"])).n_windows == 1


def test_a_failing_stream_raises_and_the_rest_is_cancelled(bert_export, monkeypatch):
    tagger = Tagger.load(bert_export, streams=2, threads=2, batch_tokens=64)
    calls = []

    def boom(input_ids, attention_mask):
        calls.append(1)
        raise RuntimeError("onnxruntime failed")

    for m in tagger.sessions:
        monkeypatch.setattr(m, "run", boom)
    texts = ["Ada Lovelace lived in London ."] * 200
    with pytest.raises(RuntimeError, match="onnxruntime failed"):
        tagger.tag(texts)
    assert len(calls) < len(tagger.batches(tagger.tokenize(texts)))
