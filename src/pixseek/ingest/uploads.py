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
from functools import partial
from pathlib import Path
from typing import Any

from pixseek.collection.collection import Collection
from pixseek.collection.media import owned_file, store_owned_file
from pixseek.core.errors import ImageDecodeError, UnknownIdError
from pixseek.core.filters import Filter
from pixseek.core.ids import image_id_for_uri
from pixseek.imaging.crops import validate_box
from pixseek.imaging.decode import DEFAULT_DECODE, DecodeOptions, decode_image_sized, image_format
from pixseek.ingest.stages import Failed, Prepared, Preparer
from pixseek.ingest.tasks import ImageTask, ObjectSpec
from pixseek.ingest.write import embedders_of, target_indexes, write_prepared

UPLOAD_LOCK_TIMEOUT_S = 30.0
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


def _validate(upload: Upload, index: int, decode: DecodeOptions) -> str:
    """Decode once to reject bad input early; returns the file suffix of its format."""
    name = upload.filename or f"image {index}"
    try:
        _, size = decode_image_sized(upload.data, decode)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{name}: {exc}") from exc
    for box in upload.boxes:
        validate_box(box.box, *size)
    return FORMAT_SUFFIX.get(image_format(upload.data) or "", ".img")


def _bytes(data: bytes) -> bytes:
    return data


def add_images(
    collection: Collection, uploads: Sequence[Upload], decode: DecodeOptions = DEFAULT_DECODE
) -> list[str]:
    """Index uploaded images (with optional boxes); returns their ids in input order."""
    suffixes = [_validate(upload, i, decode) for i, upload in enumerate(uploads)]
    with collection.writing(timeout=UPLOAD_LOCK_TIMEOUT_S):
        indexes = target_indexes(collection)
        paths = [
            store_owned_file(collection, u.data, s) for u, s in zip(uploads, suffixes, strict=True)
        ]
        ids = [image_id_for_uri(str(path.resolve())) for path in paths]
        existing = collection.get_many(ids)
        # every index gets the image (a reindexed collection stays complete), regions too;
        # an image uploaded again is written again (its old objects are replaced or kept)
        state = dict.fromkeys(existing)
        preparer = Preparer(
            embedders_of(indexes), state, collection.crop_margin, decode, collection.regions
        )
        prepared: list[Prepared] = []
        for upload, path, image_id in zip(uploads, paths, ids, strict=True):
            old = existing.get(image_id)
            metadata = dict(upload.metadata)
            if old is not None:  # the same bytes again: new metadata is merged into the old
                label = {"label": old.label} if old.label else {}
                metadata = {**old.metadata, **label, **metadata}
            task = ImageTask(
                uri=str(path.resolve()),
                read=partial(_bytes, upload.data),
                metadata=metadata,
                objects=tuple(upload.boxes) or None,
            )
            outcome = preparer(task)
            if isinstance(outcome, Failed):
                raise ImageDecodeError(outcome.failure.error)
            assert isinstance(outcome, Prepared)
            prepared.append(outcome)  # an image uploaded again: new boxes replace the old ones
        write_prepared(indexes, prepared)
    return ids


def remove_image(collection: Collection, image_id: str) -> None:
    """Remove an image and its objects; an uploaded file goes too once no record uses it."""
    record = collection.get(image_id)
    if record.kind != "image":
        raise UnknownIdError(image_id)
    with collection.writing(timeout=UPLOAD_LOCK_TIMEOUT_S):
        collection.remove([image_id])
        if owned_file(collection, record.path) and not collection.count(
            Filter.where({"path": record.path})
        ):
            Path(record.path).unlink(missing_ok=True)
