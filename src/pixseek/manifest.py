"""The collection manifest (``pixseek.json``): which models and store it uses.

Written atomically (temp file + rename). Older layouts are upgraded by the
ordered migrations below, so a collection made by an older pixseek still opens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from pixseek.errors import StorageError
from pixseek.files import write_atomic

MANIFEST_NAME = "pixseek.json"
SCHEMA_VERSION = 1
DEFAULT_CROP_MARGIN = 0.1


class ModelEntry(BaseModel):
    """One model's vectors in this collection, and the runtime they were made with."""

    dim: int
    table: str
    runtime: str = "auto"
    precision: str = "auto"


class Manifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    store: str = "lance"
    default_model: str
    models: dict[str, ModelEntry]
    crop_margin: float = Field(default=DEFAULT_CROP_MARGIN, ge=0.0, le=1.0)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    @classmethod
    def new(cls, model: ModelEntry, name: str, crop_margin: float | None = None) -> Manifest:
        margin = DEFAULT_CROP_MARGIN if crop_margin is None else crop_margin
        return cls(default_model=name, models={name: model}, crop_margin=margin)

    @property
    def model_entry(self) -> ModelEntry:
        return self.models[self.default_model]


def table_name(model: str) -> str:
    """Vectors are keyed by model: each model of a collection gets its own table."""
    return "records_" + hashlib.blake2b(model.encode(), digest_size=6).hexdigest()


Migration = Callable[[dict[str, Any]], dict[str, Any]]
# version N -> the function that upgrades a raw version-N manifest to N+1.
MIGRATIONS: dict[int, Migration] = {}


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


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
        return Manifest.model_validate(migrate(raw))
    except FileNotFoundError:
        raise
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise StorageError(f"unreadable collection manifest {path}: {exc}") from exc


def write_manifest(root: Path, manifest: Manifest) -> None:
    write_atomic(root / MANIFEST_NAME, manifest.model_dump_json(indent=2).encode(), durable=True)
