import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import long_document
from fasttag.model import ModelBundle
from fasttag.tokenization import DocumentTokenizer


def _tokenizer(export_dir, max_length=32, stride=8, **kw):
    bundle = ModelBundle.load(export_dir)
    return DocumentTokenizer.from_file(bundle.path / "tokenizer.json", max_length=max_length, stride=stride, **kw)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 400), max_length=st.integers(6, 40), stride_frac=st.floats(0, 0.95))
def test_windows_partition_tokens_by_nearest_centre(bert_export, n, max_length, stride_frac):
    tok = _tokenizer(bert_export, max_length=max_length, stride=0)
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
