"""The ingest stages: prepare (read, hash, decode, crop, preprocess for each target
model), embed (each target model's inputs) and store (replace stale objects, upsert).

Stages are plain callables over small values, so a local thread pool or a
distributed engine can run them alike. :func:`pixseek.ingest.write.write_prepared`
chains embed and store over every index of a collection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from pixseek.collection.failures import Failure
from pixseek.core.errors import PixseekError
from pixseek.core.filters import Filter
from pixseek.core.ids import content_hash, holdout_split, image_id_for_uri, object_id
from pixseek.core.records import Record
from pixseek.imaging.crops import crop_box, validate_box
from pixseek.imaging.decode import DecodeOptions, decode_image_sized
from pixseek.imaging.hashes import image_hashes
from pixseek.ingest.tasks import ImageTask, ObjectSpec
from pixseek.models.base import Embedder, PreparedImageEmbedder, Vectors
from pixseek.stores.base import VectorStore

# What the target indexes know of an image: (content hash, source hash) when every one
# holds it with the same hashes, None when only some do (it is written again to all).
ImageState = Mapping[str, tuple[str, str] | None]
ModelInput = Any  # a PIL image, or the prepared inputs of a PreparedImageEmbedder


@dataclass(slots=True)
class Prepared:
    """An image ready to embed: its record, its objects' records and, for each target
    index (by name), one model input per record."""

    image: Record
    objects: list[Record]
    inputs: dict[str, list[ModelInput]]
    replaces_objects: bool
    existed: bool
    failures: list[Failure] = field(default_factory=list)
    replaces_regions: bool = False

    @property
    def records(self) -> list[Record]:
        return [self.image, *self.objects]

    @property
    def size(self) -> int:
        """Model inputs per target (the image and its objects)."""
        return 1 + len(self.objects)


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str


@dataclass(frozen=True, slots=True)
class Failed:
    failure: Failure


Outcome = Prepared | Skipped | Failed


def source_hash(task: ImageTask, regions: Sequence[float] = ()) -> str:
    """What, besides pixels, decides an image's records: its metadata, objects and regions."""
    if task.signature:
        return task.signature
    objects = None
    if task.objects is not None:
        objects = [
            [list(o.box), o.label, o.source, o.confidence, o.key, dict(o.metadata)]
            for o in task.objects
        ]
    parts: list[Any] = [dict(task.metadata), objects]
    if regions:
        parts.append(list(regions))
    if task.holdout:
        parts.append({"holdout": task.holdout})
    return content_hash(json.dumps(parts, sort_keys=True, default=str).encode())


REGION_SOURCE = "region"


def region_specs(width: int, height: int, scales: Sequence[float]) -> list[ObjectSpec]:
    """Overlapping windows at each scale (a fraction of each side), half a window apart:
    object search on images that have no boxes."""
    specs = []
    for scale in scales:
        w, h = width * scale, height * scale
        steps_x = max(1, round((width - w) / (w / 2)) + 1)
        steps_y = max(1, round((height - h) / (h / 2)) + 1)
        for j in range(steps_y):
            for i in range(steps_x):
                x = 0.0 if steps_x == 1 else i * (width - w) / (steps_x - 1)
                y = 0.0 if steps_y == 1 else j * (height - h) / (steps_y - 1)
                box = (round(x, 2), round(y, 2), round(w, 2), round(h, 2))
                key = f"{scale:g}:{i},{j}"
                specs.append(ObjectSpec(box=box, source=REGION_SOURCE, key=key))
    return specs


class Preparer:
    """Turns an :class:`ImageTask` into an :class:`Outcome` with the inputs of every target
    model (``embedders`` by index name); never raises for bad input."""

    def __init__(
        self,
        embedders: Mapping[str, Embedder],
        state: ImageState,
        crop_margin: float,
        decode: DecodeOptions | None = None,
        regions: Sequence[float] = (),
    ) -> None:
        self.embedders = dict(embedders)
        self.state = state
        self.crop_margin = crop_margin
        self.decode = decode or DecodeOptions()
        self.regions = tuple(regions)

    def __call__(self, task: ImageTask) -> Outcome:
        path = task.uri
        try:
            return self._prepare(task, path)
        except PixseekError as exc:
            return Failed(Failure(path, str(exc)))
        except OSError as exc:
            return Failed(Failure(path, f"cannot read file: {exc.strerror or exc}"))
        except Exception as exc:  # one broken file must never stop a long ingest
            return Failed(Failure(path, f"{type(exc).__name__}: {exc}"))

    def _add_inputs(self, prepared: Prepared, image: Image.Image) -> None:
        for name, embedder in self.embedders.items():
            model_input = (
                embedder.prepare_image(image)
                if isinstance(embedder, PreparedImageEmbedder)
                else image
            )
            prepared.inputs.setdefault(name, []).append(model_input)

    def _prepare(self, task: ImageTask, path: str) -> Outcome:
        data = task.read()
        image_id = image_id_for_uri(path)
        digest, signature = content_hash(data), source_hash(task, self.regions)
        previous = self.state.get(image_id)
        if previous == (digest, signature):
            return Skipped(path)
        image, (width, height) = decode_image_sized(data, self.decode, task.expected_size)
        metadata = {k: v for k, v in task.metadata.items() if k != "label"}
        if task.holdout and "split" not in metadata:
            metadata["split"] = holdout_split(digest, task.holdout)
        label = task.metadata.get("label")
        record = Record(
            id=image_id,
            kind="image",
            image_id=image_id,
            path=path,
            width=width,
            height=height,
            label=None if label is None else str(label),
            metadata=metadata,
            content_hash=digest,
            source_hash=signature,
            hashes=image_hashes(image).encode(),
        )
        existed = image_id in self.state
        prepared = Prepared(record, [], {}, task.objects is not None, existed)
        self._add_inputs(prepared, image)
        specs = [*(task.objects or ()), *region_specs(width, height, self.regions)]
        prepared.replaces_regions = bool(self.regions) and existed
        if specs:
            # the whole-image vector comes from the (draft) decode above, as it does for a
            # query by file; crops need every pixel, so they come from a full decode
            full = image
            if image.size != (width, height):
                full_options = replace(self.decode, draft_size=None)
                full = decode_image_sized(data, full_options, task.expected_size)[0]
            for spec in specs:
                self._add_object(prepared, full, spec)
        return prepared

    def _add_object(self, prepared: Prepared, image: Image.Image, spec: ObjectSpec) -> None:
        parent = prepared.image
        try:
            box = validate_box(spec.box, image.width, image.height)
        except PixseekError as exc:
            where = f"{parent.path}#object={spec.key or list(spec.box)}"
            prepared.failures.append(Failure(where, str(exc)))
            return
        prepared.objects.append(
            Record(
                id=spec.id or object_id(parent.id, box, spec.label, spec.source, spec.key),
                kind="object",
                image_id=parent.id,
                path=parent.path,
                width=parent.width,
                height=parent.height,
                box=box,
                label=spec.label,
                source=spec.source,
                confidence=spec.confidence,
                metadata={**parent.metadata, **spec.metadata},
                content_hash=parent.content_hash,
            )
        )
        self._add_inputs(prepared, crop_box(image, box, self.crop_margin))


class EmbedStep:
    """Embeds a batch of prepared images with every target model: index name → vectors,
    one row per record in batch order."""

    def __init__(self, embedders: Mapping[str, Embedder]) -> None:
        self.embedders = dict(embedders)

    def __call__(self, batch: Sequence[Prepared]) -> dict[str, Vectors]:
        return {
            name: embed_inputs(embedder, [item for p in batch for item in p.inputs[name]])
            for name, embedder in self.embedders.items()
        }


def embed_inputs(embedder: Embedder, inputs: Sequence[ModelInput]) -> Vectors:
    if isinstance(embedder, PreparedImageEmbedder) and inputs and isinstance(inputs[0], dict):
        return embedder.embed_prepared(inputs)
    return embedder.embed_images(inputs)


class StoreStep:
    """Writes embedded images into one store, one atomic upsert per batch: keeps the
    metadata of images whose objects are not replaced, drops objects the new version lacks."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def __call__(self, batch: Sequence[Prepared], vectors: Vectors) -> None:
        if not batch:
            return
        self._keep_metadata_of_untouched(batch)
        self._drop_stale_objects(batch)
        records = [record for prepared in batch for record in prepared.records]
        self.store.upsert(records, np.asarray(vectors, dtype=np.float32))

    def _keep_metadata_of_untouched(self, batch: Sequence[Prepared]) -> None:
        """A folder pass over annotated images keeps the metadata written earlier."""
        ids = [p.image.id for p in batch if p.existed and not p.replaces_objects]
        if not ids:
            return
        existing = self.store.get(ids)
        for prepared in batch:
            old = existing.get(prepared.image.id)
            if old is not None and not prepared.replaces_objects:
                merged = {**old.metadata, **prepared.image.metadata}
                label = prepared.image.label or old.label
                prepared.image = replace(prepared.image, metadata=merged, label=label)

    def _drop_stale_objects(self, batch: Sequence[Prepared]) -> None:
        """Objects (or only regions) of changed images that the new version lacks."""
        keep = {record.id for p in batch for record in p.objects}
        stale: list[str] = []
        for only_regions in (False, True):
            changed = [
                p.image.id
                for p in batch
                if p.existed
                and (p.replaces_objects if not only_regions else p.replaces_regions)
                and not (only_regions and p.replaces_objects)
            ]
            if not changed:
                continue
            where: dict[str, str | list[str]] = {"kind": "object", "image_id": changed}
            if only_regions:
                where["source"] = REGION_SOURCE
            for records, _ in self.store.scan(Filter.where(where)):
                stale += [r.id for r in records if r.id not in keep]
        self.store.delete(stale)
