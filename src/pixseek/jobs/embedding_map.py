"""The embedding map: a 2-D layout of an index's images and objects (UMAP, umap-learn).

The layout is stored with the index (``maps/<index>.npz`` in the collection) with each
point's kind, label, source, outcome and split, so pages of it are served without
touching the store. Updating it adds the records indexed since, without recomputing the
rest: each new point starts where UMAP's own ``transform`` starts one, at the
membership-weighted mean of its nearest mapped neighbours. Records that are gone are
dropped. Once the added points outnumber a quarter of the fitted ones (or on request)
the whole layout is fitted again.
"""

from __future__ import annotations

import colorsys
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.atomic import write_atomic_with
from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import DAMAGED_NPZ, InvalidInputError, NotFoundError
from pixseek.core.optional import require_module
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors
from pixseek.stores.knn import exact_neighbours, load_all

FIELDS = ("id", "image_id", "kind", "label", "source", "outcome", "split")
COLOUR_FIELDS = ("label", "kind", "source", "outcome", "split")
REFIT_SHARE = 0.25  # added points over this share of the fitted ones: fit again
PLACE_NEIGHBOURS = 15
MAX_PAGE = 50_000


@dataclass(frozen=True, slots=True)
class EmbeddingMap:
    """Points of one index: ``xy`` in [0, 1]², and each point's fields as string columns."""

    index: str
    columns: dict[str, NDArray[np.str_]]
    xy: NDArray[np.float32]
    fitted: int  # points in the last full fit

    def __len__(self) -> int:
        return len(self.xy)

    def page(self, offset: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"offset ≥ 0 and 1 ≤ limit ≤ {MAX_PAGE}")
        end = min(len(self), offset + limit)
        return [
            {
                **{name: (_value(self.columns[name][i])) for name in FIELDS},
                "x": round(float(self.xy[i, 0]), 5),
                "y": round(float(self.xy[i, 1]), 5),
            }
            for i in range(offset, end)
        ]

    def page_dict(self, offset: int = 0, limit: int = 10_000) -> dict[str, Any]:
        """The one JSON shape of a page of the map (the API's)."""
        return {
            "index": self.index,
            "total": len(self),
            "offset": offset,
            "points": self.page(offset, limit),
        }


def _value(text: str) -> str | None:
    return text or None


@dataclass(frozen=True, slots=True)
class MapReport:
    index: str
    points: int
    added: int
    removed: int
    refitted: bool

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a map update (the CLI's --json and the API)."""
        return {
            "index": self.index,
            "points": self.points,
            "added": self.added,
            "removed": self.removed,
            "refitted": self.refitted,
        }


def map_path(collection: Collection, index: Index) -> Path:
    return collection.layout.maps / f"{index.name}.npz"


def load_map(collection: Collection, index: Index | None = None) -> EmbeddingMap:
    index = index or collection.index()
    path = map_path(collection, index)
    if not path.is_file():
        raise NotFoundError(
            f"index {index.name!r} has no map yet: run `pixseek map` (or POST .../map)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            columns = {name: data[name].astype(str) for name in FIELDS}
            xy, fitted = data["xy"].astype(np.float32), int(data["fitted"])
    except DAMAGED_NPZ as exc:
        raise NotFoundError(
            f"index {index.name!r} has a damaged map ({exc}): run `pixseek map` again"
        ) from exc
    return EmbeddingMap(index.name, columns, xy, fitted)


def _save(collection: Collection, index: Index, layout: EmbeddingMap) -> None:
    arrays: dict[str, Any] = {"xy": layout.xy, "fitted": np.int64(layout.fitted)}
    arrays.update((name, layout.columns[name]) for name in FIELDS)
    write_atomic_with(map_path(collection, index), lambda handle: np.savez(handle, **arrays))


def _columns(records: list[Record]) -> dict[str, NDArray[np.str_]]:
    def text(value: object) -> str:
        return "" if value is None else str(value)

    return {
        "id": np.array([r.id for r in records], dtype=str),
        "image_id": np.array([r.image_id for r in records], dtype=str),
        "kind": np.array([r.kind for r in records], dtype=str),
        "label": np.array([text(r.label) for r in records], dtype=str),
        "source": np.array([text(r.source) for r in records], dtype=str),
        "outcome": np.array([text(r.outcome) for r in records], dtype=str),
        "split": np.array([text(r.split) for r in records], dtype=str),
    }


def _normalised(xy: NDArray[np.floating]) -> NDArray[np.float32]:
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    scaled: NDArray[np.float32] = ((xy - low) / span).astype(np.float32)
    return scaled


# umap-learn's modules whose numba functions compile on first use
UMAP_COMPILED = ("umap_", "layouts", "spectral", "utils", "distances", "sparse")


@functools.cache
def _umap() -> Any:
    """umap-learn, with its compiled functions kept on disk: numba compiles them again in
    every process unless told to cache them (a first map of 300 vectors took 6.7 s in
    each new process, 0.28 s once they were kept; numba drops a kept function whose
    source changed). Once a process, on first use."""
    umap = require_module("umap", "map", "the embedding map")
    for name in UMAP_COMPILED:
        module = require_module(f"umap.{name}", "map", "the embedding map")
        for value in vars(module).values():
            keep = getattr(value, "enable_caching", None)  # numba's compiled functions
            if callable(keep):
                try:
                    keep()
                except RuntimeError:  # nowhere to keep them (read-only install, no home)
                    return umap
    return umap


def fit_layout(vectors: Vectors, seed: int = 0, neighbours: int = 15) -> NDArray[np.float32]:
    """UMAP of unit vectors into [0, 1]²."""
    count = len(vectors)
    if count < 5:  # too few for a neighbour graph: a row, in store order
        xy = np.stack([np.linspace(0, 1, count), np.full(count, 0.5)], axis=1)
        return xy.astype(np.float32) if count > 1 else np.full((count, 2), 0.5, np.float32)
    umap = _umap()
    model = umap.UMAP(
        n_neighbors=min(neighbours, count - 1),
        n_components=2,
        metric="euclidean",  # on unit vectors, the order of cosine distances
        random_state=seed,
        init="spectral" if count > neighbours + 2 else "random",
    )
    return _normalised(model.fit_transform(np.asarray(vectors, np.float32)))


def place(new: Vectors, mapped: Vectors, xy: NDArray[np.float32]) -> NDArray[np.float32]:
    """Where UMAP's transform starts new points: the membership-weighted mean of their
    nearest mapped neighbours' positions."""
    umap_ = _umap().umap_
    k = min(PLACE_NEIGHBOURS, len(mapped))
    rows, scores = exact_neighbours(new, mapped, k)
    distances = np.sqrt(np.clip(2 - 2 * scores, 0, None)).astype(np.float32)
    sigmas, rhos = umap_.smooth_knn_dist(distances, float(k))
    weights = np.exp(-np.clip(distances - rhos[:, None], 0, None) / sigmas[:, None])
    weights /= weights.sum(axis=1, keepdims=True)
    placed = umap_.init_transform(rows, weights.astype(np.float32), xy)
    return np.asarray(placed, np.float32)


def update_map(
    collection: Collection, index: Index | None = None, refit: bool = False, seed: int = 0
) -> MapReport:
    """Bring the index's stored map up to date with its records (see the module's notes)."""
    index = index or collection.index()
    records, vectors = load_all(index.store)
    if not records:
        raise InvalidInputError("this index holds nothing to map yet")
    columns = _columns(records)
    try:
        old = None if refit else load_map(collection, index)
    except NotFoundError:
        old = None
    ids = columns["id"]
    if old is not None:
        known = {str(i): n for n, i in enumerate(old.columns["id"])}
        where = np.array([known.get(str(i), -1) for i in ids], np.int64)
        kept = where >= 0
        added = int((~kept).sum())
        removed = len(old) - int(kept.sum())
        if kept.any() and added <= REFIT_SHARE * old.fitted:
            xy = np.zeros((len(records), 2), np.float32)
            xy[kept] = old.xy[where[kept]]
            if added:
                xy[~kept] = place(vectors[~kept], vectors[kept], xy[kept])
            _save(collection, index, EmbeddingMap(index.name, columns, xy, old.fitted))
            return MapReport(index.name, len(records), added, removed, False)
    else:
        removed = 0
    xy = fit_layout(vectors, seed)
    _save(collection, index, EmbeddingMap(index.name, columns, xy, len(records)))
    added = len(records) if old is None else len(records) - (len(old) - removed)
    return MapReport(index.name, len(records), added, removed, True)


def palette(count: int) -> list[tuple[int, int, int]]:
    """``count`` distinct colours (hues around the wheel, two lightnesses)."""
    colours = []
    for n in range(count):
        hue = (n * 0.618034) % 1.0
        light = 0.45 if n % 2 else 0.58
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def colour_values(layout: EmbeddingMap, by: str) -> tuple[list[str], NDArray[np.int64]]:
    """The values of ``by`` (most common first, at most 19 and "other") and each point's."""
    if by not in COLOUR_FIELDS:
        raise InvalidInputError(f"colour by one of {', '.join(COLOUR_FIELDS)}, not {by!r}")
    column = np.where(layout.columns[by] == "", "(none)", layout.columns[by])
    names, counts = np.unique(column, return_counts=True)
    order = [str(names[i]) for i in np.argsort(-counts, kind="stable")]
    shown = order[:19] + (["other"] if len(order) > 19 else [])
    position = {name: n for n, name in enumerate(shown)}
    codes = np.array([position.get(str(v), len(shown) - 1) for v in column], np.int64)
    return shown, codes


def render_png(layout: EmbeddingMap, by: str = "label", size: int = 1000) -> bytes:
    """The map as a PNG: points coloured by ``by``, with a legend on the right."""
    from PIL import Image, ImageDraw

    if not 200 <= size <= 8000:
        raise InvalidInputError("the picture's size is 200 to 8000 pixels")
    names, codes = colour_values(layout, by)
    colours = palette(len(names))
    legend = 260
    image = Image.new("RGB", (size + legend, size), (250, 250, 252))
    draw = ImageDraw.Draw(image)
    margin, radius = 20, max(1, size // 400)
    area = size - 2 * margin
    pixels = margin + layout.xy * area
    for (x, y), code in zip(pixels, codes, strict=True):
        draw.ellipse(
            (x - radius, (size - y) - radius, x + radius, (size - y) + radius),
            fill=colours[code],
        )
    counts = np.bincount(codes, minlength=len(names))
    draw.text((size + 10, 10), f"{len(layout)} points, colour: {by}", fill=(20, 20, 20))
    for n, (name, colour) in enumerate(zip(names, colours, strict=True)):
        top = 34 + 18 * n
        draw.rectangle((size + 10, top, size + 22, top + 12), fill=colour)
        draw.text((size + 28, top), f"{name[:28]} ({counts[n]})", fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
