"""Records stored in a collection and the hits returned by search.

Images and objects share one record type so that one table (and one query) serves
both; ``kind`` tells them apart. Free ``metadata`` travels with every record;
a few keys of it (``split``, ``tags``) are also stored as columns so that stores
can filter on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["image", "object"]
KINDS: tuple[Kind, ...] = ("image", "object")
BoxTuple = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Record:
    """One searchable item: a whole image or an object (a box) inside one."""

    id: str
    kind: Kind
    image_id: str
    path: str
    width: int
    height: int
    box: BoxTuple | None = None
    label: str | None = None
    source: str | None = None
    score: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    source_hash: str = ""

    @property
    def split(self) -> str | None:
        value = self.metadata.get("split")
        return None if value is None else str(value)

    @property
    def tags(self) -> list[str]:
        value = self.metadata.get("tags") or []
        if isinstance(value, str):
            return [value]
        return [str(tag) for tag in value]


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result; ``score`` is the cosine similarity to the query."""

    id: str
    kind: Kind
    image_id: str
    path: str
    score: float
    width: int
    height: int
    box: BoxTuple | None
    label: str | None
    source: str | None
    metadata: Mapping[str, Any]

    @classmethod
    def from_record(cls, record: Record, score: float) -> Hit:
        return cls(
            id=record.id,
            kind=record.kind,
            image_id=record.image_id,
            path=record.path,
            score=score,
            width=record.width,
            height=record.height,
            box=record.box,
            label=record.label,
            source=record.source,
            metadata=dict(record.metadata),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "image_id": self.image_id,
            "path": self.path,
            "score": round(self.score, 6),
            "width": self.width,
            "height": self.height,
            "box": list(self.box) if self.box is not None else None,
            "label": self.label,
            "source": self.source,
            "metadata": dict(self.metadata),
        }
