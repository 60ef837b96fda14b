"""Sources: where images (and their annotated objects) come from.

A source only yields :class:`ImageTask` values, lazily; decoding and embedding
happen downstream, so the same sources feed a local or a distributed run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pixseek.errors import InvalidInputError
from pixseek.imaging import is_image_path
from pixseek.records import BoxTuple


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    box: BoxTuple
    label: str | None = None
    source: str = "gt"
    score: float | None = None
    key: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageTask:
    """One image to index. ``objects=None`` leaves its stored objects untouched."""

    path: Path
    metadata: Mapping[str, Any] = field(default_factory=dict)
    objects: tuple[ObjectSpec, ...] | None = None
    expected_size: tuple[int, int] | None = None


class Source(Protocol):
    def tasks(self) -> Iterator[ImageTask]: ...

    def count(self) -> int | None:
        """How many tasks there will be, when cheap to know (for progress and ETA)."""


def _walk_images(root: Path) -> Iterator[Path]:
    """Depth-first, sorted, streaming: never holds the whole listing in memory."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                items = sorted(entries, key=lambda entry: entry.name)
        except OSError:
            continue
        subdirs = []
        for entry in items:
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                subdirs.append(Path(entry.path))
            elif entry.is_file() and is_image_path(Path(entry.name)):
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


@dataclass(frozen=True, slots=True)
class FolderSource:
    roots: Sequence[Path]
    label_from_folder: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for root in self.roots:
            if not root.exists():
                raise InvalidInputError(f"no such file or directory: {root}")

    def _files(self) -> Iterator[Path]:
        for root in self.roots:
            if root.is_file():
                yield root
            else:
                yield from _walk_images(root)

    def tasks(self) -> Iterator[ImageTask]:
        for path in self._files():
            metadata = dict(self.metadata)
            if self.label_from_folder:
                metadata["label"] = path.parent.name
            yield ImageTask(path=path, metadata=metadata)

    def count(self) -> int:
        return sum(1 for _ in self._files())


@dataclass(frozen=True, slots=True)
class CocoSource:
    """Images and boxes of a COCO ``instances_*.json``; only images listed there."""

    annotations: Path
    image_root: Path

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.annotations.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cannot read COCO file {self.annotations}: {exc}") from exc
        if not isinstance(data, dict) or "images" not in data:
            raise InvalidInputError(f"{self.annotations} is not a COCO annotation file")
        return data

    def split_name(self) -> str:
        stem = self.annotations.stem
        return stem.split("_", 1)[1] if stem.startswith("instances_") else stem

    def tasks(self) -> Iterator[ImageTask]:
        data = self._load()
        categories = {c["id"]: c["name"] for c in data.get("categories", [])}
        by_image: dict[Any, list[ObjectSpec]] = {}
        for ann in data.get("annotations", []):
            by_image.setdefault(ann["image_id"], []).append(
                ObjectSpec(
                    box=tuple(float(v) for v in ann["bbox"]),  # type: ignore[arg-type]
                    label=categories.get(ann.get("category_id")),
                    source="gt",
                    key=str(ann.get("id", "")),
                    metadata={"coco_id": ann.get("id"), "iscrowd": ann.get("iscrowd", 0)},
                )
            )
        split = self.split_name()
        for image in data["images"]:
            size = (int(image["width"]), int(image["height"])) if "width" in image else None
            yield ImageTask(
                path=self.image_root / image["file_name"],
                metadata={"split": split, "coco_id": image.get("id")},
                objects=tuple(by_image.get(image["id"], ())),
                expected_size=size,
            )

    def count(self) -> int:
        return len(self._load()["images"])
