"""Images and boxes of a COCO ``instances_*.json`` (only the images listed there)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixseek.core.errors import InvalidInputError
from pixseek.ingest.sources.folder import walk_images
from pixseek.ingest.tasks import ImageTask, ObjectSpec


@dataclass(frozen=True, slots=True)
class FilesCheck:
    missing: int  # of the first ``checked`` images the file names, not in the folder
    checked: int
    unlisted: int  # image files in the folder that the file does not name


@dataclass(frozen=True, slots=True)
class CocoSource:
    """``predictions``: a detector's output in the COCO results format (image_id,
    category_id, bbox, score), stored as ``source=pred`` objects beside the ground truth;
    every object then carries its ``outcome`` (see :mod:`pixseek.core.matching`)."""

    annotations: Path
    image_root: Path
    predictions: Path | None = None
    iou_threshold: float = 0.5

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.annotations.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read COCO file {self.annotations}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise InvalidInputError(f"{self.annotations} is not a COCO annotation file")
        return data

    def split_name(self) -> str:
        """``instances_val2017.json`` → ``val``: the split without COCO's release year."""
        stem = self.annotations.stem
        name = stem.split("_", 1)[1] if stem.startswith("instances_") else stem
        return re.sub(r"(?<=[A-Za-z])(19|20)\d\d$", "", name) or name

    def files_check(self, sample: int = 50) -> FilesCheck:
        """How the image folder and the COCO file's ``file_name`` entries meet (one read of
        the file): a wrong folder shows as every sampled image missing, and images in the
        folder that the file does not name are not indexed by it (an image folder often
        holds more than one split's annotations)."""
        images = self._load()["images"]
        named = [os.path.normpath(self.image_root / str(i.get("file_name", ""))) for i in images]
        sampled = named[:sample]
        listed = set(named)
        return FilesCheck(
            missing=sum(not os.path.isfile(path) for path in sampled),
            checked=len(sampled),
            unlisted=sum(os.path.normpath(p) not in listed for p in walk_images(self.image_root)),
        )

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
        predicted = self._predictions(categories)
        split = self.split_name()
        for image in data["images"]:
            size = (int(image["width"]), int(image["height"])) if "width" in image else None
            objects = by_image.get(image["id"], [])
            if self.predictions is not None:
                objects = with_outcomes(objects, predicted.get(image["id"], []), self.iou_threshold)
            yield ImageTask.for_file(
                self.image_root / image["file_name"],
                metadata={"split": split, "coco_id": image.get("id")},
                objects=tuple(objects),
                expected_size=size,
            )

    def _predictions(self, categories: dict[Any, str]) -> dict[Any, list[ObjectSpec]]:
        if self.predictions is None:
            return {}
        try:
            rows = json.loads(self.predictions.read_text())
            found: dict[Any, list[ObjectSpec]] = {}
            for number, row in enumerate(rows):
                found.setdefault(row["image_id"], []).append(
                    ObjectSpec(
                        box=tuple(float(v) for v in row["bbox"]),  # type: ignore[arg-type]
                        label=categories.get(row["category_id"], str(row["category_id"])),
                        source="pred",
                        confidence=float(row["score"]),
                        key=f"pred-{number}",
                    )
                )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"{self.predictions} is not a COCO results file (a list of image_id, "
                f"category_id, bbox and score): {exc}"
            ) from exc
        return found

    def count(self) -> int:
        return len(self._load()["images"])


def with_outcomes(
    truth: list[ObjectSpec], predictions: list[ObjectSpec], threshold: float
) -> list[ObjectSpec]:
    """Ground truth and predictions of one image, each with its ``outcome`` in metadata."""
    from dataclasses import replace

    from pixseek.core.matching import Box, match

    truth_outcomes, prediction_outcomes = match(
        [Box(t.box, t.label, crowd=bool(t.metadata.get("iscrowd"))) for t in truth],
        [Box(p.box, p.label, p.confidence or 0.0) for p in predictions],
        threshold,
    )
    return [
        replace(spec, metadata={**spec.metadata, "outcome": outcome})
        for spec, outcome in zip(
            [*truth, *predictions], [*truth_outcomes, *prediction_outcomes], strict=True
        )
    ]
