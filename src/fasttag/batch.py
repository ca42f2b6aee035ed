"""Pack model windows into length-sorted batches under a token budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    """Window indices (into a chunk's Windows) that run together, padded to `seq_len`."""

    windows: np.ndarray
    seq_len: int

    @property
    def padded_tokens(self) -> int:
        return len(self.windows) * self.seq_len


class TokenBudgetBatcher:
    """Sorts windows by length and packs them so that rows x padded length stays within `budget_tokens`.

    Sorting inside one chunk (the bounded look-ahead) keeps padding low; `max_batch_size` caps the rows,
    which matters on CPUs where very wide batches fall out of cache.
    """

    def __init__(self, budget_tokens: int, max_batch_size: int = 64, pad_multiple: int = 1,
                 max_length: int | None = None):
        if budget_tokens < 1:
            raise ValueError("budget_tokens must be positive")
        self.budget_tokens = int(budget_tokens)
        self.max_batch_size = max(1, int(max_batch_size))
        self.pad_multiple = max(1, int(pad_multiple))
        self.max_length = max_length

    def padded_length(self, n: int) -> int:
        m = self.pad_multiple
        padded = -(-n // m) * m
        return min(padded, self.max_length) if self.max_length else padded

    def batches(self, lengths: np.ndarray) -> list[Batch]:
        """Batches over windows of the given lengths (special tokens included), longest first."""
        if len(lengths) == 0:
            return []
        order = np.argsort(-lengths, kind="stable")
        out: list[Batch] = []
        i, n = 0, len(order)
        while i < n:
            seq_len = self.padded_length(int(lengths[order[i]]))
            rows = max(1, min(self.max_batch_size, self.budget_tokens // seq_len))
            out.append(Batch(order[i : i + rows], seq_len))
            i += rows
        return out
