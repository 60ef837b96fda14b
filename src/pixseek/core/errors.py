"""Typed errors raised by the library.

Every error a user can cause derives from :class:`PixseekError`, so the CLI and the
HTTP API can turn it into a message (and a 4xx status) instead of a traceback.
"""

from __future__ import annotations

import zipfile

# what reading a damaged or cut-short .npz (kept views, a map, a saved graph's arrays)
# raises: disks and copies damage files that were written whole
DAMAGED_NPZ = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class PixseekError(Exception):
    """Base class of every error caused by input, configuration or environment."""


class NotFoundError(PixseekError):
    """A record, collection or model that does not exist."""


class UnknownIdError(NotFoundError):
    def __init__(self, record_id: str) -> None:
        super().__init__(f"no record with id {record_id!r} in this collection")
        self.record_id = record_id


class CollectionNotFoundError(NotFoundError):
    pass


class CollectionExistsError(PixseekError):
    pass


class ModelLoadError(PixseekError):
    """The model could not be loaded (offline, missing directory, broken checkpoint)."""


class UnknownBackendError(PixseekError):
    pass


class InvalidInputError(PixseekError):
    """A request that is well-formed but cannot be served (bad box, empty query...)."""


class InvalidBoxError(InvalidInputError):
    pass


class EmptyQueryError(InvalidInputError):
    pass


class UnsupportedQueryError(InvalidInputError):
    """A query the index's model cannot answer (text on an image-only model)."""


class CalibrationError(InvalidInputError):
    """Too few readable images to measure how a model scores copies."""


class InvalidFilterError(InvalidInputError):
    pass


class ImageDecodeError(InvalidInputError):
    """An image that cannot be decoded: corrupt, truncated, too large or not an image."""


class DeviceError(InvalidInputError):
    """A device name that is not known, or one this machine does not have (cuda without
    a GPU)."""


class WrongModelError(PixseekError):
    """The collection was built with another model (vectors would not be comparable)."""


class StorageError(PixseekError):
    """The collection's files are unreadable or of an unsupported version."""


class MissingDependencyError(PixseekError):
    """A feature whose optional package is not installed; the message names the extra."""


class CollectionBusyError(PixseekError):
    """Another writer holds the collection's write lock."""
