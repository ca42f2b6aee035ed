import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import long_document
from fasttag import Tagger, UsageError
from fasttag.model import ModelBundle
from fasttag.run import Interrupted, run
from fasttag.tokenization import DocumentTokenizer
from fasttag.write import STATE_FILE, work_dir
from interrupt import stop_after


def _tokenizer(export_dir, max_length=32, stride=8, **kw):
    bundle = ModelBundle.load(export_dir)
    return DocumentTokenizer.from_file(bundle.path / "tokenizer.json", max_length=max_length, stride=stride, **kw)


@pytest.mark.parametrize("layout", ["even", "full"])
@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 400), max_length=st.integers(6, 40), stride_frac=st.floats(0, 0.95))
def test_windows_partition_tokens_by_nearest_centre(bert_export, layout, n, max_length, stride_frac):
    tok = _tokenizer(bert_export, max_length=max_length, stride=0, windows=layout)
    L = tok.window_tokens
    tok.stride = min(int(stride_frac * L), L - 1)
    w = tok._windows(np.array([0, n]))
    if n == 0:
        assert len(w) == 0
        return
    assert (w.end - w.start <= L).all() and w.start[0] == 0 and w.end[-1] == n
    # owned ranges tile [0, n) in order, each inside its window
    assert w.own_start[0] == 0 and w.own_end[-1] == n
    assert (w.own_start[1:] == w.own_end[:-1]).all()
    assert ((w.start <= w.own_start) & (w.own_end <= w.end) & (w.own_start < w.own_end)).all()
    # every token is owned by a window in which it is most central
    centres = (w.start + w.end - 1) / 2
    for k in range(len(w)):
        for p in range(w.own_start[k], w.own_end[k]):
            containing = np.flatnonzero((w.start <= p) & (p < w.end))
            best = np.abs(centres[containing] - p).min()
            assert abs(centres[k] - p) == best


def test_offsets_index_python_strings(export_factory, family):
    tok = _tokenizer(export_factory(family), max_length=64, stride=16)
    texts = ["Zoë 🚀 visited 東京 — naïve café", "", "   ", "a\x00b\tc\u202eRTL\u05d0\u05d1", "e\u0301galite\u0301"]
    chunk = tok(texts, word_level=True)
    for d, text in enumerate(texts):
        offs = chunk.offsets[chunk.doc_offsets[d]:chunk.doc_offsets[d + 1]]
        assert ((0 <= offs[:, 0]) & (offs[:, 0] <= offs[:, 1]) & (offs[:, 1] <= len(text))).all()


def test_long_document_is_windowed_not_truncated(bert_export):
    tok = _tokenizer(bert_export, max_length=128, stride=32)
    doc = long_document(2000)
    chunk = tok([doc])
    assert chunk.n_tokens > 2000
    assert len(chunk.windows) > chunk.n_tokens // 126
    assert chunk.windows.own_end[-1] == chunk.n_tokens


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 400), max_length=st.integers(6, 40), stride_frac=st.floats(0, 0.95),
       breaks=st.sets(st.integers(1, 399), max_size=60))
def test_packed_windows_cut_at_sentence_starts_and_tile_the_document(bert_export, n, max_length, stride_frac, breaks):
    tok = _tokenizer(bert_export, max_length=max_length, stride=0, windows="sentences")
    L = tok.window_tokens
    tok.stride = min(int(stride_frac * L), L - 1)
    b = np.array(sorted(x for x in breaks if x < n), dtype=np.int64)
    w = tok._windows(np.array([0, n]), b)
    assert (w.end - w.start <= L).all() and w.start[0] == 0 and w.end[-1] == n
    assert (w.start[1:] > w.start[:-1]).all() and (w.start[1:] <= w.end[:-1]).all()  # in order, no gap
    assert w.own_start[0] == 0 and w.own_end[-1] == n and (w.own_start[1:] == w.own_end[:-1]).all()
    assert ((w.start <= w.own_start) & (w.own_end <= w.end) & (w.own_start < w.own_end)).all()
    for k in range(len(w) - 1):
        if w.end[k] in set(b.tolist()) and w.end[k] - w.start[k] >= L // 2 and w.start[k + 1] == w.end[k]:
            # cut at a sentence start: the windows meet, each token owned by the one it is in
            assert w.own_end[k] == w.end[k]
        else:  # no sentence start in reach: a full window, the next overlapping it by the stride
            assert w.end[k] - w.start[k] == L and w.start[k + 1] == w.end[k] - tok.stride
            assert not ((b > w.start[k] + L // 2 - 1) & (b <= w.end[k])).any() or L // 2 == 0


def test_sentence_starts_skip_initials_and_lower_case(bert_export):
    tok = _tokenizer(bert_export, max_length=32, stride=0, windows="sentences")
    text = "He met J. Smith of the U.S. Army. Then he left! \"Why?\" she asked. no capital. 3 cats came."
    chunk = tok([text])
    starts = tok._sentence_starts(chunk.texts, chunk.doc_offsets, chunk.ids, chunk.offsets)
    words = [text[chunk.offsets[i, 0]:].split()[0] for i in starts]
    assert words == ["Then", '"Why?"', "3"]


def test_sentence_windows_start_where_sentences_start_and_cost_fewer_tokens(bert_export):
    doc = " ".join(f"Sentence {k} tells of Paris and of London in the year {1900 + k}." for k in range(60))
    packed = Tagger.load(bert_export, max_length=32, stride=8, windows="sentences")
    fixed = Tagger.load(bert_export, max_length=32, stride=8, windows="full")
    chunk = packed.tokenizer([doc])
    w = chunk.windows
    assert len(w) > 10
    first_words = {doc[chunk.offsets[s, 0]:].split()[0] for s in w.start}
    assert first_words == {"Sentence"}  # every window begins a sentence
    assert (w.start[1:] == w.end[:-1]).all()  # and meets the next without overlap
    fixed_w = fixed.tokenizer([doc]).windows
    assert int((w.end - w.start).sum()) < int((fixed_w.end - fixed_w.start).sum())  # fewer tokens to infer
    # every character of the document is still tagged: the entities tile the same text (scores may differ)
    ents = packed.tag([doc])[0]
    assert ents and all(doc[e.start:e.end] == e.text for e in ents)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 600), max_length=st.integers(6, 40), stride_frac=st.floats(0, 0.95))
def test_even_windows_are_one_width_and_overlap_by_the_stride(bert_export, n, max_length, stride_frac):
    tok = _tokenizer(bert_export, max_length=max_length, stride=0, windows="even")
    L = tok.window_tokens
    tok.stride = S = min(int(stride_frac * L), L - 1)
    w = tok._windows(np.array([0, n]))
    width = w.end - w.start
    assert (width == width[0]).all() and width[0] <= L
    if n <= L:
        assert len(w) == 1 and width[0] == n
        return
    overlap = w.end[:-1] - w.start[1:]
    assert (overlap[:-1] == S).all() and overlap[-1] >= S  # only the last may overlap more, to end at n
    # as many windows as full ones overlapping by S, and never more tokens
    assert len(w) == -(-(n - S) // (L - S))
    assert int(width.sum()) <= len(w) * L


def test_another_window_layout_is_another_job(bert_export, tmp_path):
    doc = " ".join(f"Sentence {k} tells of Paris and of London in the year {1900 + k}." for k in range(20))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"{k}. {doc}"}) + "\n" for k in range(30)))
    even = Tagger.load(bert_export, max_length=32, stride=8)
    reference = tmp_path / "ref.parquet"
    run(even, str(src), str(reference), chunk_rows=10)
    out = tmp_path / "o.parquet"
    with pytest.raises(Interrupted):
        run(even, str(src), str(out), chunk_rows=10, progress=stop_after(2))
    for layout in ("full", "sentences"):
        with pytest.raises(UsageError, match=r"other settings \(windows\)"):
            run(Tagger.load(bert_export, max_length=32, stride=8, windows=layout), str(src), str(out),
                chunk_rows=10, resume=True)
    # a run recorded before --windows existed cut full windows: not this job either
    state_file = work_dir(str(out)) / STATE_FILE
    saved = json.loads(state_file.read_text())
    del saved["windows"]
    state_file.write_text(json.dumps(saved))
    with pytest.raises(UsageError, match=r"other settings \(windows\)"):
        run(even, str(src), str(out), chunk_rows=10, resume=True)
    saved["windows"] = "even"
    state_file.write_text(json.dumps(saved))
    assert run(even, str(src), str(out), chunk_rows=10, resume=True).resumed_rows == 20
    assert pq.read_table(out).equals(pq.read_table(reference))


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet=st.characters(codec=None, exclude_categories=["Cn"]), max_size=12),
                      max_size=6), data=st.data())
def test_chars_around_reads_each_token_start_as_a_loop_over_the_texts_would(texts, data):
    """The one-buffer reading of the characters around each token start, against a plain loop per text (empty
    texts, lone surrogates, characters outside the BMP, starts at and past a text's end)."""
    from fasttag.tokenization import _chars_around

    starts = [data.draw(st.lists(st.integers(0, len(t) + 1) if t else st.just(0), max_size=5)) for t in texts]
    doc_offsets = np.concatenate([[0], np.cumsum([len(s) for s in starts])]).astype(np.int64)
    offsets = np.array([[s, s + 1] for row in starts for s in row], dtype=np.int64).reshape(-1, 2)
    before, at = _chars_around(texts, doc_offsets, offsets)
    expected_before, expected_at = [], []
    for text, row in zip(texts, starts, strict=True):
        for s in row:
            expected_before.append(ord(text[min(max(s - 1, 0), len(text) - 1)]) if text else 0)
            expected_at.append(ord(text[s]) if s < len(text) else 0)
    assert before.tolist() == expected_before and at.tolist() == expected_at


def test_the_position_limit_of_models_whose_positions_start_after_the_padding_index(tmp_path):
    from fasttag.model import max_length_from

    for kind, pad, limit in [("bert", 0, 512), ("roberta", 1, 512), ("xlm-roberta", 1, 512), ("ibert", 1, 512),
                             ("luke", 1, 512), ("mpnet", 0, 512), ("mpnet", 1, 512), ("roberta", None, 512)]:
        mpe = 512 if kind == "bert" else 514
        config = {"model_type": kind, "max_position_embeddings": mpe, "pad_token_id": pad}
        assert max_length_from(config, tmp_path) == limit, (kind, pad)  # MPNet's padding index is 1 whatever the pad
