"""Adding images that arrive as bytes (API uploads) rather than as files on disk.

Uploaded bytes are stored inside the collection (``files/<content hash>.<ext>``),
so the collection owns them; the same bytes uploaded twice are one image.
Unlike a folder ingest, an upload is all-or-nothing: any undecodable image or
bad box rejects the whole request before anything is indexed. Uploading the
same bytes again merges the new metadata into the old, and replaces the
image's objects only when new boxes are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixseek.collection import Collection
from pixseek.errors import ImageDecodeError, UnknownIdError
from pixseek.files import write_atomic
from pixseek.ids import content_hash, image_id_for_path
from pixseek.imaging import decode_image_sized, validate_box
from pixseek.ingest.sources import ImageTask, ObjectSpec
from pixseek.ingest.stages import Failed, Prepared, Preparer, Writer
from pixseek.store.filters import Filter

FILES_DIR = "files"
FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tiff",
    "MPO": ".jpg",
}


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    metadata: Mapping[str, Any] = field(default_factory=dict)
    boxes: Sequence[ObjectSpec] = ()
    filename: str = ""


def _suffix(data: bytes) -> str:
    from io import BytesIO

    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as image:
            return FORMAT_SUFFIX.get(str(image.format), ".img")
    except Exception:
        return ".img"


def _validate(upload: Upload, index: int) -> tuple[int, int]:
    """Decode once to reject bad input early; returns the upright size."""
    try:
        _, size = decode_image_sized(upload.data)
    except ImageDecodeError as exc:
        name = upload.filename or f"image {index}"
        raise ImageDecodeError(f"{name}: {exc}") from exc
    for box in upload.boxes:
        validate_box(box.box, *size)
    return size


def _store_file(folder: Path, data: bytes) -> Path:
    target = folder / (content_hash(data) + _suffix(data))
    if not target.exists():
        write_atomic(target, data)
    return target


def add_images(collection: Collection, uploads: Sequence[Upload]) -> list[str]:
    """Index uploaded images (with optional boxes); returns their ids in input order."""
    for index, upload in enumerate(uploads):
        _validate(upload, index)
    folder = collection.root / FILES_DIR
    paths = [_store_file(folder, upload.data) for upload in uploads]
    ids = [image_id_for_path(path) for path in paths]
    existing = collection.store.get(ids)
    tasks = []
    for upload, path, image_id in zip(uploads, paths, ids, strict=True):
        old = existing.get(image_id)
        metadata = dict(upload.metadata)
        if old is not None:  # the same bytes again: new metadata is merged into the old
            metadata = {**old.metadata, **({"label": old.label} if old.label else {}), **metadata}
        objects = tuple(upload.boxes) or None
        tasks.append(ImageTask(path=path, metadata=metadata, objects=objects))
    preparer = Preparer(collection.embedder, {}, collection.manifest.crop_margin)
    prepared: list[Prepared] = []
    for task in tasks:
        outcome = preparer(task)
        if isinstance(outcome, Failed):
            raise ImageDecodeError(outcome.failure.error)
        assert isinstance(outcome, Prepared)
        outcome.existed = outcome.image.id in existing  # new boxes replace the old ones
        prepared.append(outcome)
    Writer(collection.embedder, collection.store).write(prepared)
    return ids


def owned_file(collection: Collection, path: str) -> bool:
    """Whether ``path`` is a file the collection stored itself (an upload)."""
    folder = (collection.root / FILES_DIR).resolve()
    return Path(path).resolve().is_relative_to(folder)


def remove_image(collection: Collection, image_id: str) -> None:
    """Remove an image and its objects; an uploaded file goes too once no record uses it."""
    record = collection.get(image_id)
    if record.kind != "image":
        raise UnknownIdError(image_id)
    collection.remove([image_id])
    if owned_file(collection, record.path) and not collection.count(
        Filter.where({"path": record.path})
    ):
        Path(record.path).unlink(missing_ok=True)
