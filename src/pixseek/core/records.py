"""Records stored in a collection and the hits returned by search.

Images and objects share one record type so that one table (and one query) serves
both; ``kind`` tells them apart. Free ``metadata`` travels with every record;
a few keys of it (``split``, ``tags``) are also stored as columns so that stores
can filter on them.

:class:`Record` is the one definition of a record's fields: the store schema, the
export columns, the JSON of hits and the API's response model are all derived
from it, so a new field is added here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["image", "object"]
BoxTuple = tuple[float, float, float, float]

# Fields that exist for change detection during ingest and for copy detection, not for users.
INTERNAL_FIELDS = frozenset({"content_hash", "source_hash", "hashes"})


@dataclass(frozen=True, slots=True)
class Record:
    """One searchable item: a whole image or an object (a box) inside one.

    ``confidence`` is a detector's score for predicted objects (``source="pred"``);
    it is unrelated to the similarity score of a search :class:`Hit`.
    """

    id: str
    kind: Kind
    image_id: str
    path: str
    width: int
    height: int
    box: BoxTuple | None = None
    label: str | None = None
    source: str | None = None
    confidence: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    source_hash: str = ""
    # an image's perceptual hashes, "<phash hex>:<colour hash hex>" (imaging.hashes)
    hashes: str = ""

    @property
    def split(self) -> str | None:
        value = self.metadata.get("split")
        return None if value is None else str(value)

    @property
    def outcome(self) -> str | None:
        """TP, FP, FN or wrong_class: how a detector did on this object (see core.matching)."""
        value = self.metadata.get("outcome")
        return None if value is None else str(value)

    @property
    def tags(self) -> list[str]:
        value = self.metadata.get("tags") or []
        if isinstance(value, str):
            return [value]
        return [str(tag) for tag in value]


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Record))
PUBLIC_FIELDS: tuple[str, ...] = tuple(n for n in RECORD_FIELDS if n not in INTERNAL_FIELDS)


def record_dict(record: Record) -> dict[str, Any]:
    """The public fields of a record as plain JSON-ready values."""
    values: dict[str, Any] = {name: getattr(record, name) for name in PUBLIC_FIELDS}
    values["box"] = list(record.box) if record.box is not None else None
    values["metadata"] = dict(record.metadata)
    return values


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result: a record and its cosine similarity to the query."""

    record: Record
    score: float

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def kind(self) -> Kind:
        return self.record.kind

    @property
    def image_id(self) -> str:
        return self.record.image_id

    @property
    def path(self) -> str:
        return self.record.path

    @property
    def box(self) -> BoxTuple | None:
        return self.record.box

    @property
    def label(self) -> str | None:
        return self.record.label

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.record.metadata

    def to_dict(self) -> dict[str, Any]:
        return {**record_dict(self.record), "score": round(self.score, 6)}
