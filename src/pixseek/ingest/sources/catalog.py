"""The images already in a collection, with their objects: the source a reindex reads.

Each task carries the stored record's id, metadata, objects (with their ids) and
source signature, so another model's index gets exactly the same records, and a
re-run skips what it already embedded. Region objects are not copied: the stages
make them again from the collection's region setting, with the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from pixseek.collection.collection import Collection
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.imaging.decode import read_image_bytes
from pixseek.ingest.stages import REGION_SOURCE
from pixseek.ingest.tasks import ImageTask, ObjectSpec


def _spec(record: Record) -> ObjectSpec:
    assert record.box is not None
    return ObjectSpec(
        box=record.box,
        label=record.label,
        source=record.source or "gt",
        confidence=record.confidence,
        metadata=dict(record.metadata),
        id=record.id,
    )


@dataclass(frozen=True, slots=True)
class CatalogSource:
    collection: Collection

    def tasks(self) -> Iterator[ImageTask]:
        objects: dict[str, list[ObjectSpec]] = {}
        for record in self.collection.records(Filter.where({"kind": "object"})):
            if record.source != REGION_SOURCE and record.box is not None:
                objects.setdefault(record.image_id, []).append(_spec(record))
        for image in self.collection.records(Filter.where({"kind": "image"})):
            metadata = dict(image.metadata)
            if image.label is not None:
                metadata["label"] = image.label
            yield ImageTask(
                uri=image.path,
                read=partial(read_image_bytes, local_path(image.path)),
                metadata=metadata,
                objects=tuple(objects.get(image.id, ())),
                expected_size=(image.width, image.height),
                signature=image.source_hash,
            )

    def count(self) -> int:
        return self.collection.count(Filter.where({"kind": "image"}))
