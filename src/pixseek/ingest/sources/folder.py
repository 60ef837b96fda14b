"""Images found by walking folders (streaming, sorted, never following directory links)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixseek.core.errors import InvalidInputError
from pixseek.imaging.decode import is_image_path
from pixseek.ingest.tasks import ImageTask


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A folder the walk could not list: its records must be kept, not synced away."""

    path: Path
    error: str


def _is_file(entry: os.DirEntry[str]) -> bool:
    """A link loop or a dangling link is still a file name worth reporting as a failure."""
    try:
        return entry.is_file()
    except OSError:
        return True


def walk_images(root: Path, unreadable: list[Unreadable] | None = None) -> Iterator[Path]:
    """Depth-first, sorted, streaming: never holds the whole listing in memory."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                items = sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            if unreadable is not None:
                unreadable.append(Unreadable(directory, exc.strerror or str(exc)))
            continue
        subdirs = []
        for entry in items:
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                subdirs.append(Path(entry.path))
            elif is_image_path(Path(entry.name)) and _is_file(entry):
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


@dataclass(slots=True)
class FolderSource:
    roots: Sequence[Path]
    label_from_folder: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    holdout: float = 0.0  # see ImageTask.holdout
    unreadable: list[Unreadable] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout < 1.0:
            raise InvalidInputError(f"--holdout is a fraction in [0, 1), not {self.holdout}")
        for root in self.roots:
            if not root.exists():
                raise InvalidInputError(f"no such file or directory: {root}")

    def _files(self, unreadable: list[Unreadable] | None) -> Iterator[Path]:
        for root in self.roots:
            if root.is_file():
                yield root
            else:
                yield from walk_images(root, unreadable)

    def tasks(self) -> Iterator[ImageTask]:
        self.unreadable.clear()
        for path in self._files(self.unreadable):
            metadata = dict(self.metadata)
            if self.label_from_folder:
                metadata["label"] = path.parent.name
            yield ImageTask.for_file(path, metadata=metadata, holdout=self.holdout)

    def count(self) -> int:
        return sum(1 for _ in self._files(None))
