"""Images and boxes of a COCO ``instances_*.json`` (only the images listed there)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixseek.core.errors import InvalidInputError
from pixseek.ingest.tasks import ImageTask, ObjectSpec


@dataclass(frozen=True, slots=True)
class CocoSource:
    annotations: Path
    image_root: Path

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.annotations.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read COCO file {self.annotations}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise InvalidInputError(f"{self.annotations} is not a COCO annotation file")
        return data

    def split_name(self) -> str:
        stem = self.annotations.stem
        return stem.split("_", 1)[1] if stem.startswith("instances_") else stem

    def missing_files(self, sample: int = 50) -> tuple[int, int]:
        """(missing, checked) among the first ``sample`` images: a wrong image folder shows."""
        images = self._load()["images"][:sample]
        missing = sum(not (self.image_root / str(i.get("file_name", ""))).is_file() for i in images)
        return missing, len(images)

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
            yield ImageTask.for_file(
                self.image_root / image["file_name"],
                metadata={"split": split, "coco_id": image.get("id")},
                objects=tuple(by_image.get(image["id"], ())),
                expected_size=size,
            )

    def count(self) -> int:
        return len(self._load()["images"])
