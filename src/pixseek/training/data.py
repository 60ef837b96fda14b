"""Image-text pairs for training and evaluation, from a collection's labels or a captions file.

Captions files: CSV with ``path,caption`` columns, JSON lines with ``path`` (or
``id``) and ``caption``, or a COCO ``captions_*.json``. Paths are matched to the
collection's images by absolute path, then by path relative to the captions
file, then by file name.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter

if TYPE_CHECKING:  # only in annotations: training pairs load no collection code
    from pixseek.collection.collection import Collection
    from pixseek.core.records import Record

DEFAULT_TEMPLATES = ("a photo of a {label}",)


@dataclass(frozen=True, slots=True)
class Pair:
    image_id: str
    path: str
    text: str
    label: str | None = None


def _images(collection: Collection) -> list[Record]:
    return list(collection.records(Filter.where({"kind": "image"})))


HELD_OUT_SPLIT = "test"  # the images `pixseek index --holdout` puts aside


def part_of(collection: Collection, pairs: Sequence[Pair], held_out: bool) -> list[Pair]:
    """The pairs of the images held out (``split=test``), or of the others: training
    leaves the held-out images out, and comparing models measures on them alone (a model
    trained on them would win on its own training set). All of them where the collection
    holds none out."""
    test = Filter.where({"kind": "image", "split": HELD_OUT_SPLIT})
    held = {r.id for r in collection.records(test)}
    if not held:
        return list(pairs)
    return [p for p in pairs if (p.image_id in held) == held_out]


def pairs_from_labels(
    collection: Collection, templates: Sequence[str] = DEFAULT_TEMPLATES
) -> list[Pair]:
    """One pair per labelled image and template: ``a photo of a {label}``."""
    pairs = [
        Pair(r.id, r.path, t.format(label=r.label), r.label)
        for r in _images(collection)
        if r.label
        for t in templates
    ]
    if not pairs:
        raise InvalidInputError("no labelled images in this collection (index with labels)")
    return pairs


def _rows(path: Path) -> Iterable[dict[str, str]]:
    text = path.read_text()
    if path.suffix == ".csv":
        yield from csv.DictReader(text.splitlines())
    elif path.suffix in {".jsonl", ".ndjson"}:
        yield from (json.loads(line) for line in text.splitlines() if line.strip())
    else:
        data = json.loads(text)
        if not isinstance(data, dict) or "annotations" not in data:
            raise InvalidInputError(f"{path} is neither CSV, JSON lines nor COCO captions")
        names = {image["id"]: image["file_name"] for image in data.get("images", [])}
        for ann in data["annotations"]:
            yield {"path": names.get(ann["image_id"], ""), "caption": ann["caption"]}


def pairs_from_captions(collection: Collection, captions: Path) -> list[Pair]:
    try:
        rows = list(_rows(captions))
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInputError(f"cannot read captions {captions}: {exc}") from exc
    images = _images(collection)
    by_id = {r.id: r for r in images}
    by_path = {r.path: r for r in images}
    by_name: dict[str, Record] = {}
    for image in images:
        by_name.setdefault(Path(image.path).name, image)
    pairs = []
    for row in rows:
        caption = str(row.get("caption") or "").strip()
        key = str(row.get("id") or row.get("path") or "")
        resolved = str((captions.parent / key).resolve()) if key else ""
        record = (
            by_id.get(key)
            or by_path.get(key)
            or by_path.get(resolved)
            or by_name.get(Path(key).name)
        )
        if record is not None and caption:
            pairs.append(Pair(record.id, record.path, caption, record.label))
    if not pairs:
        raise InvalidInputError(f"no caption in {captions} matches an image of this collection")
    return pairs
