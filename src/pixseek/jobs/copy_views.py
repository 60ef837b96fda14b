"""Embeddings of views of a collection's images (turned either way, cut to each corner),
kept with the index, so that duplicate detection finds rotated copies and corner crops.

An embedding sees a copy turned by 10°, or cut to 60% of the picture from one corner, as a
different picture (see :mod:`pixseek.imaging.views`). Comparing each image's views with
every image finds them: a corner crop is close to that corner of its source. The views
cost an embedding each, so they are made once: kept in the collection
(``views/<index>.npz``) by record id and content hash, and a later run embeds only the
images added or changed since. Images whose files cannot be read have no views.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pixseek.collection.atomic import write_atomic_with
from pixseek.collection.collection import Collection
from pixseek.collection.index import Index
from pixseek.core.errors import DAMAGED_NPZ, ImageDecodeError
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.core.vectors import l2_normalize
from pixseek.imaging.decode import decode_options_for, load_image_file
from pixseek.imaging.hashes import perceptual_hash
from pixseek.imaging.views import COPY_VIEWS, views
from pixseek.stores.knn import Nearest

CHUNK = 32  # images decoded and embedded at a time (seven views each)
# kept as float16: half the memory and file of float32 (at 100,000 images of 512
# dimensions, 0.7 GB instead of 1.4). A cosine moves by 1.5e-5 at 512 dimensions (at most
# 4e-5 measured; 2e-5 to 4e-5 at 256 and 32, at most 2e-4): only a threshold within 1e-4
# of 1, which a model that sees photos alike calibrates to, decides otherwise at its margin
KEPT_DTYPE = np.float16
NORMALIZE_BLOCK = 2048  # images whose views are normalized at a time
SAVE_EVERY_S = 60.0  # a long first run keeps what it has embedded this often

Progress = Callable[[int, int], None]  # (images done, images to embed)


@dataclass(frozen=True, slots=True)
class ViewVectors:
    """``vectors[i]`` is view ``COPY_VIEWS[names[i]]`` of ``records[rows[i]]``."""

    rows: NDArray[np.int64]
    names: NDArray[np.int64]
    vectors: NDArray[np.float16]  # unit rows
    embedded: int  # images embedded by this call (the rest were kept)
    unreadable: int  # images whose files could not be read: no views

    @property
    def images(self) -> int:
        """How many images have views here."""
        return len(self.rows) // len(COPY_VIEWS)


@dataclass(frozen=True, slots=True)
class _Views:
    """One image's views: the content hash they were made from, a (views, dim) array, and
    each view's perceptual hash (None in files kept before those were)."""

    content_hash: str
    vectors: NDArray[np.float16]
    phashes: NDArray[np.uint64] | None = None


@dataclass(slots=True)
class _Kept:
    """Each image's views, by record id."""

    by_id: dict[str, _Views]


@dataclass(frozen=True, slots=True)
class KeptViews:
    """Every kept view, a row each: the image's id and content hash, the view (a number in
    ``COPY_VIEWS``) and its unit vector; ``nearest`` searches them (at 100,000 images, 700,000
    views: a scan of them all would cost each unmatched match query far more than its
    embedding)."""

    ids: NDArray[np.str_]
    hashes: NDArray[np.str_]
    names: NDArray[np.int64]
    vectors: NDArray[np.float16]
    nearest: Nearest
    # each view's perceptual hash, where ``phash_known`` (views kept before hashes were not)
    phashes: NDArray[np.uint64]
    phash_known: NDArray[np.bool_]


def views_path(collection: Collection, index: Index) -> Path:
    return collection.layout.views / f"{index.name}.npz"


def has_kept_views(collection: Collection, index: Index) -> bool:
    """Are views kept for ``index``, made with its model? (Only the file's signature is
    read, once for each version of the file: match asks on every query.)"""
    path = views_path(collection, index)
    try:
        stat = path.stat()
    except OSError:
        return False
    return _readable(_file_signature(str(path), stat.st_mtime_ns, stat.st_size), _signature(index))


@functools.lru_cache(maxsize=16)
def _file_signature(path: str, changed: int, size: int) -> str:
    """What a views file says it was made with; "" when it cannot be read (made again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["signature"])
    except DAMAGED_NPZ:
        return ""


def kept_views(collection: Collection, index: Index) -> KeptViews | None:
    """The views kept for ``index`` (by :func:`view_vectors`), None when there are none;
    read once for each version of the file (match asks for them on every query)."""
    path = views_path(collection, index)
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_kept(str(path), stat.st_mtime_ns, stat.st_size, _signature(index))


@functools.lru_cache(maxsize=4)
def _read_kept(path: str, changed: int, size: int, signature: str) -> KeptViews | None:
    kept = _load(Path(path), signature)
    if not kept.by_id:
        return None
    ids = sorted(kept.by_id)
    count = len(COPY_VIEWS)
    each = [kept.by_id[i] for i in ids]
    vectors = _unit_rows([v.vectors for v in each], each[0].vectors.shape[1])
    phashes, known = _phash_rows(each)
    return KeptViews(
        np.repeat(np.asarray(ids, dtype=str), count),
        np.repeat(np.asarray([v.content_hash for v in each], dtype=str), count),
        np.tile(np.arange(count, dtype=np.int64), len(ids)),
        vectors,
        Nearest(vectors),
        phashes.ravel(),
        np.repeat(known, count),
    )


def _phash_rows(each: Sequence[_Views]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """Every image's views' perceptual hashes, (images, views), zero where not kept; and
    which images have them."""
    count = len(COPY_VIEWS)
    known = np.asarray([v.phashes is not None for v in each], dtype=bool)
    phashes = np.zeros((len(each), count), np.uint64)
    for row, v in enumerate(each):
        if v.phashes is not None:
            phashes[row] = v.phashes
    return phashes, known


def _unit_rows(images: Sequence[NDArray[np.float16]], dim: int) -> NDArray[np.float16]:
    """The images' views (each a (views, dim) array) as unit rows in one float16 array,
    normalized a block at a time: never a float32 copy of them all."""
    count = len(COPY_VIEWS)
    vectors = np.empty((len(images) * count, dim), KEPT_DTYPE)
    for start in range(0, len(images), NORMALIZE_BLOCK):
        block = np.stack(images[start : start + NORMALIZE_BLOCK]).reshape(-1, dim)
        vectors[start * count : start * count + len(block)] = l2_normalize(block)
    return vectors


def _signature(index: Index) -> str:
    """What the kept vectors were made with: a model change makes them stale."""
    return f"{index.entry.model}|{index.dim}|{','.join(COPY_VIEWS)}|{np.dtype(KEPT_DTYPE).name}"


def _readable(stored: str, signature: str) -> bool:
    """A file's signature made with the same model and views as ``signature``: files kept
    as float32 (before float16) are read and converted, not embedded again."""
    made_with, _, dtype = stored.rpartition("|")
    return made_with == signature.rpartition("|")[0] and dtype in ("float16", "float32")


def _load(path: Path, signature: str) -> _Kept:
    if not path.is_file():
        return _Kept({})
    try:
        with np.load(path, allow_pickle=False) as data:
            if not _readable(str(data["signature"]), signature):
                return _Kept({})
            ids, hashes = data["ids"], data["hashes"]
            vectors = data["vectors"].astype(KEPT_DTYPE, copy=False)
            phashes = data["phashes"] if "phashes" in data.files else None
            known = data["phash_known"] if "phash_known" in data.files else None
            pairs = zip(ids.tolist(), hashes.tolist(), strict=True)
            return _Kept(
                {
                    str(i): _Views(
                        str(h),
                        vectors[n],
                        phashes[n]
                        if phashes is not None and known is not None and known[n]
                        else None,
                    )
                    for n, (i, h) in enumerate(pairs)
                }
            )
    except DAMAGED_NPZ:  # a damaged cache is made again
        return _Kept({})


def _save(path: Path, signature: str, kept: _Kept, dim: int) -> None:
    """Written beside the target and renamed into place: readers see a whole file."""
    ids = sorted(kept.by_id)
    each = [kept.by_id[i] for i in ids]
    vectors = (
        np.stack([v.vectors for v in each])
        if ids
        else np.zeros((0, len(COPY_VIEWS), dim), KEPT_DTYPE)
    )
    phashes, known = _phash_rows(each)
    write_atomic_with(
        path,
        lambda handle: np.savez(
            handle,
            signature=np.str_(signature),
            ids=np.asarray(ids, dtype=str),
            hashes=np.asarray([v.content_hash for v in each], dtype=str),
            vectors=vectors,
            phashes=phashes,
            phash_known=known,
        ),
    )


def view_vectors(
    collection: Collection,
    index: Index,
    records: Sequence[Record],
    progress: Progress | None = None,
    embed: bool = True,
) -> ViewVectors:
    """The views of ``records`` (images), embedded now where the kept ones are missing or
    stale (unless not ``embed``: then only the kept ones); what is no longer in
    ``records`` is dropped from the kept file."""
    path, signature = views_path(collection, index), _signature(index)
    kept = _load(path, signature)
    current = {r.id: r for r in records}
    stale = [r for r in records if _made_from(kept, r.id) != r.content_hash]
    stale = stale if embed else []
    fresh = _Kept(
        {
            i: v
            for i, v in kept.by_id.items()
            if i in current and v.content_hash == current[i].content_hash
        }
    )

    def save() -> None:
        _save(path, signature, fresh, index.dim)

    unreadable = _embed(index, stale, fresh, save, progress)
    if stale or len(fresh.by_id) != len(kept.by_id):
        save()
    return _gather(records, fresh, index.dim, len(stale) - unreadable, unreadable)


def _made_from(kept: _Kept, image_id: str) -> str:
    views_of = kept.by_id.get(image_id)
    return views_of.content_hash if views_of is not None else ""


def keeps_views(collection: Collection) -> bool:
    """Does any ready index keep views (made once by duplicates, match, the views job or
    ``pixseek index --views``)? Then adding images should make theirs."""
    return any(
        index.ready and has_kept_views(collection, index) for index in collection.indexes.values()
    )


def refresh_views(
    collection: Collection, make: bool = False, progress: Progress | None = None
) -> list[tuple[str, ViewVectors]]:
    """Bring the kept views of every ready index up to date with its images (those added
    or changed since), and make them for every image where none are kept if ``make``: what
    ``pixseek index --views`` does, and every later ``index`` run of a collection with views,
    so that match finds crops of new images too."""
    images = list(collection.records(Filter.where({"kind": "image"})))
    done = []
    for name, index in sorted(collection.indexes.items()):
        if index.ready and (make or views_path(collection, index).is_file()):
            done.append((name, view_vectors(collection, index, images, progress)))
    return done


def _embed(
    index: Index,
    stale: Sequence[Record],
    into: _Kept,
    save: Callable[[], None],
    progress: Progress | None,
) -> int:
    """Embed the views of ``stale`` into ``into``, a chunk at a time; the unreadable count.
    The model is loaded only when there is something to embed."""
    if not stale:
        return 0
    decode = decode_options_for(index.embedder.capabilities.input_size)
    unreadable, saved = 0, time.monotonic()
    for start in range(0, len(stale), CHUNK):
        pictures, owners = [], []
        for record in stale[start : start + CHUNK]:
            try:
                image = load_image_file(local_path(record.path), decode)
            except (ImageDecodeError, OSError):
                unreadable += 1
                continue
            pictures += [picture for _, picture, _ in views(image, COPY_VIEWS)]
            owners.append(record)
        if owners:
            vectors = index.embedder.embed_images(pictures).astype(KEPT_DTYPE)
            shaped = vectors.reshape(len(owners), len(COPY_VIEWS), -1)
            # each view's hash too: match compares a query's turned views' hashes, and
            # jobs.false_alarms asks the collection's own images the same way
            hashed = np.asarray([perceptual_hash(p) for p in pictures], np.uint64)
            hashed = hashed.reshape(len(owners), len(COPY_VIEWS))
            for record, rows, phashes in zip(owners, shaped, hashed, strict=True):
                into.by_id[record.id] = _Views(record.content_hash, rows, phashes)
        if progress is not None:
            progress(min(start + CHUNK, len(stale)), len(stale))
        if time.monotonic() - saved > SAVE_EVERY_S:
            save()
            saved = time.monotonic()
    return unreadable


def _gather(
    records: Sequence[Record], kept: _Kept, dim: int, embedded: int, unreadable: int
) -> ViewVectors:
    rows = [n for n, r in enumerate(records) if r.id in kept.by_id]
    count = len(COPY_VIEWS)
    return ViewVectors(
        np.repeat(np.asarray(rows, np.int64), count),
        np.tile(np.arange(count, dtype=np.int64), len(rows)),
        _unit_rows([kept.by_id[records[n].id].vectors for n in rows], dim),
        embedded,
        unreadable,
    )
