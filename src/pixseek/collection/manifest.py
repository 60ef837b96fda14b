"""The collection manifest (``pixseek.json``): its named indexes and where they are stored.

Written atomically (temp file + rename). Older layouts are upgraded by the
ordered migrations below, so a collection made by an older pixseek still opens.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from pixseek.collection.atomic import write_atomic
from pixseek.core.calibration import CopyCalibration
from pixseek.core.errors import NotFoundError, StorageError
from pixseek.models.split import split_name

SCHEMA_VERSION = 2
DEFAULT_CROP_MARGIN = 0.1
DEFAULT_INDEX = "default"
DEFAULT_FAMILY = "hf-clip"
READY, BUILDING = "ready", "building"


class IndexEntry(BaseModel):
    """One index: a model's vectors, the table holding them, and how they were made."""

    model: str
    dim: int
    table: str
    family: str = DEFAULT_FAMILY  # the model logic that built it (a registered family)
    runtime: str = "auto"
    precision: str = "auto"
    precision_note: str = ""  # why this precision: the int8 check's result, if one ran
    text_model: str = ""  # a separate text tower, when the model's own is not used
    state: str = READY  # BUILDING while a reindex fills it
    calibration: CopyCalibration | None = None  # how its model scores copies (jobs.calibrate)

    @property
    def key(self) -> str:
        """The embedder name this index's vectors come from (image and text towers)."""
        return split_name(self.model, self.text_model)

    @classmethod
    def for_embedder(
        cls, embedder: Any, family: str = DEFAULT_FAMILY, table: str = "", state: str = READY
    ) -> IndexEntry:
        image = getattr(embedder, "image", embedder)  # a split-tower embedder's image side
        text = getattr(embedder, "text", None)
        return cls(
            model=image.name,
            family=family,
            text_model=text.name if text is not None else "",
            dim=embedder.dim,
            table=table or table_name(embedder.name),
            runtime=str(getattr(embedder, "runtime", "auto")),
            precision=str(getattr(embedder, "precision", "auto")),
            precision_note=str(getattr(embedder, "precision_note", "")),
            state=state,
        )


class Manifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    store: str = "lance"  # "lance": the embedded store in the collection; else a store URI
    table_prefix: str = ""  # a shared server's tables are this collection's by their prefix
    default_index: str = DEFAULT_INDEX
    indexes: dict[str, IndexEntry]
    crop_margin: float = Field(default=DEFAULT_CROP_MARGIN, ge=0.0, le=1.0)
    regions: list[float] = Field(default_factory=list)  # window scales of label-free objects
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    @classmethod
    def new(cls, entry: IndexEntry, crop_margin: float | None = None, store: str = "") -> Manifest:
        margin = DEFAULT_CROP_MARGIN if crop_margin is None else crop_margin
        remote = bool(store) and store != "lance"
        prefix = f"px{uuid.uuid4().hex[:12]}_" if remote else ""
        return cls(
            indexes={DEFAULT_INDEX: entry},
            crop_margin=margin,
            store=store if remote else "lance",
            table_prefix=prefix,
        )

    def index_entry(self, name: str = "") -> IndexEntry:
        return self.indexes[self.index_name(name)]

    def index_name(self, name_or_model: str = "") -> str:
        """An index by its name, or by its model (hub id, directory or split-tower name)."""
        if not name_or_model:
            return self.default_index
        if name_or_model in self.indexes:
            return name_or_model
        for name, entry in self.indexes.items():
            if name_or_model in (entry.model, entry.key):
                return name
        raise NotFoundError(
            f"no index {name_or_model!r} in this collection; it has "
            + ", ".join(f"{n} ({e.key})" for n, e in sorted(self.indexes.items()))
        )


def table_name(model: str) -> str:
    """Vectors are keyed by model: each model of a collection gets its own table."""
    return "records_" + hashlib.blake2b(model.encode(), digest_size=6).hexdigest()


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 keyed entries by model with a default model; v2 names indexes."""
    models: dict[str, dict[str, Any]] = raw.pop("models", {})
    default = raw.pop("default_model")
    indexes = {DEFAULT_INDEX: {"model": default, **models.pop(default)}}
    for number, (model, entry) in enumerate(sorted(models.items()), start=2):
        indexes[f"index-{number}"] = {"model": model, **entry}
    return {**raw, "default_index": DEFAULT_INDEX, "indexes": indexes}


Migration = Callable[[dict[str, Any]], dict[str, Any]]
# version N -> the function that upgrades a raw version-N manifest to N+1.
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    version = int(raw.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"this collection has format version {version}; this pixseek reads up to "
            f"{SCHEMA_VERSION}. Upgrade pixseek."
        )
    while version < SCHEMA_VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
        raw["schema_version"] = version
    return raw


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text())
        return Manifest.model_validate(migrate(raw))
    except FileNotFoundError:
        raise
    except (OSError, json.JSONDecodeError, ValidationError, KeyError, TypeError) as exc:
        raise StorageError(f"unreadable collection manifest {path}: {exc}") from exc


def write_manifest(path: Path, manifest: Manifest) -> None:
    write_atomic(path, manifest.model_dump_json(indent=2).encode(), durable=True)
