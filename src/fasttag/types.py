"""Plain data types shared by the engine's steps."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Entity:
    """One tagged span: ``text == document[start:end]``."""

    start: int
    end: int
    label: str
    score: float
    text: str


ENTITY_TYPE = pa.struct(
    [
        pa.field("start", pa.int32()),
        pa.field("end", pa.int32()),
        pa.field("label", pa.string()),
        pa.field("score", pa.float32()),
        pa.field("text", pa.string()),
    ]
)
ENTITIES_TYPE = pa.list_(ENTITY_TYPE)
