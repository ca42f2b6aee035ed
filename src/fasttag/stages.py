"""Where a run's time goes: seconds per stage, measured on the run path itself (a few clock reads per chunk
and per batch, never per row), and how much of what the model ran was padding."""

from __future__ import annotations

from dataclasses import asdict, dataclass

STAGES = ("read", "tokenize", "infer", "decode", "write")


@dataclass
class StageTimes:
    """Seconds spent in each stage, summed over chunks. `fasttag run` reads and tokenizes the next chunk in a
    background thread while the model runs on the current one, so the stages overlap: their sum can exceed
    the wall time. `tokenize` includes finding duplicates; `decode` turning probabilities into result columns
    (and copying duplicates' results); `infer` the model's batches, their inputs and softmax; `write` the
    output options' shaping (filters, kept columns, flat layout) and writing the parts."""

    read: float = 0.0
    tokenize: float = 0.0
    infer: float = 0.0
    decode: float = 0.0
    write: float = 0.0
    model_tokens: int = 0  # tokens the model ran, padding included
    padding_tokens: int = 0  # of those, padding

    def seconds(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in STAGES}

    def shares(self) -> dict[str, float]:
        """Each stage's share of the stages' summed time."""
        total = sum(self.seconds().values())
        return {name: (value / total if total else 0.0) for name, value in self.seconds().items()}

    @property
    def padding_share(self) -> float:
        return self.padding_tokens / self.model_tokens if self.model_tokens else 0.0

    def add(self, other: StageTimes) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def reset(self) -> None:
        for name, value in asdict(StageTimes()).items():
            setattr(self, name, value)
