"""Where a collection keeps its parts inside its directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "pixseek.json"


@dataclass(frozen=True, slots=True)
class Layout:
    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def failures(self) -> Path:
        return self.root / "failures.sqlite"

    @property
    def feedback(self) -> Path:
        """Stored judgements (relevance feedback), see :mod:`pixseek.collection.feedback`."""
        return self.root / "feedback.sqlite"

    @property
    def files(self) -> Path:
        """Images the collection owns (uploads), named by content hash."""
        return self.root / "files"

    @property
    def thumbnails(self) -> Path:
        return self.root / "thumbnails"

    @property
    def embedded_store(self) -> Path:
        return self.root / "lance"

    @property
    def maps(self) -> Path:
        """2-D layouts of each index's vectors (``<index>.npz``)."""
        return self.root / "maps"

    @property
    def views(self) -> Path:
        """Each index's embeddings of turned and cropped views of its images
        (``<index>.npz``), kept for duplicate detection."""
        return self.root / "views"

    @property
    def label_reviews(self) -> Path:
        """Suspected label errors a user confirmed or dismissed."""
        return self.root / "label-reviews.json"

    @property
    def write_lock(self) -> Path:
        return self.root / ".write.lock"

    def exists(self) -> bool:
        return self.manifest.is_file()
