import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttag.batch import TokenBudgetBatcher


@settings(deadline=None)  # a timing limit would fail on a busy machine, not on a wrong answer
@given(lengths=st.lists(st.integers(1, 512), max_size=300), budget=st.integers(1, 8192), cap=st.integers(1, 128))
def test_every_window_once_within_budget(lengths, budget, cap):
    lengths = np.array(lengths, dtype=np.int64)
    batches = TokenBudgetBatcher(budget, cap).batches(lengths)
    seen = np.concatenate([b.windows for b in batches]) if batches else np.zeros(0, int)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert b.seq_len >= lengths[b.windows].max()
        assert len(b.windows) <= cap
        assert len(b.windows) == 1 or b.padded_tokens <= budget


def test_sorting_limits_padding():
    lengths = np.array([10, 100, 12, 98, 11, 99])
    batches = TokenBudgetBatcher(300, 64).batches(lengths)
    assert [sorted(b.windows.tolist()) for b in batches] == [[1, 3, 5], [0, 2, 4]]
