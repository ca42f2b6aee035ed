"""The entity type the engine returns, and its Arrow schema as every output writes it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Entity:
    """One tagged span: ``text == document[start:end]``."""

    start: int
    end: int
    label: str
    score: float
    text: str

    def to_dict(self) -> dict:
        """The entity as `fasttag run` writes it to JSONL: plain ints, str and float, ready for `json.dumps`.

        The score is a float32 written as its shortest decimal (0.9977015, not 0.9977015256881714).
        """
        return {"start": int(self.start), "end": int(self.end), "label": str(self.label),
                "score": float(str(np.float32(self.score))), "text": str(self.text)}


ENTITY_TYPE = pa.struct(
    [
        pa.field("start", pa.int32()),
        pa.field("end", pa.int32()),
        pa.field("label", pa.string()),
        pa.field("score", pa.float32()),
        pa.field("text", pa.string()),
    ]
)
# The list's item is named "element", as Parquet (and so `fasttag run` and `--engine ray`) names it: one
# schema whether the entities come from `Tagger.tag_table`, a Parquet output or a JSONL reader.
ENTITIES_TYPE = pa.list_(pa.field("element", ENTITY_TYPE))
