"""pixseek.jobs.false_alarms: match calls an outside image a copy only where few of the
collection's own images, asked as if unseen, would match another image.

The model here sees each picture by the colours of its four quadrants (12 numbers), so
every score is set by construction: unrelated pictures, look-alike pairs at cosine 0.96
(another photo of the same thing), and copies at 0.995.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.collection import Collection, open_collection
from pixseek.core.calibration import CopyCalibration, HashCalibration
from pixseek.core.filters import Filter
from pixseek.imaging.views import COPY_VIEWS
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.false_alarms import false_alarms_of
from pixseek.jobs.match import MatchOptions, match_image
from pixseek.models.base import BatchEmbedder

DIM = 12
LOOK_ALIKE, OUTSIDE_LOOK_ALIKE, COPY = 0.96, 0.93, 0.995


class Quadrants(BatchEmbedder):
    """An image's four quadrants' mean colours, centred on grey."""

    def __init__(self) -> None:
        super().__init__("quadrants", DIM)

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            pixels = np.asarray(image.convert("RGB"), np.float32)
            h, w = pixels.shape[0] // 2, pixels.shape[1] // 2
            parts = [pixels[:h, :w], pixels[:h, w:], pixels[h:, :w], pixels[h:, w:]]
            rows.append(np.concatenate([p.mean(axis=(0, 1)) for p in parts]) - 128.0)
        return np.asarray(rows, np.float32)

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def picture(vector: np.ndarray, path: Path) -> Path:
    colours = np.clip(np.round(128 + 100 * vector), 0, 255).astype(np.uint8).reshape(4, 3)
    image = Image.new("RGB", (64, 64))
    for n, colour in enumerate(colours):
        image.paste(
            tuple(int(c) for c in colour),
            ((n % 2) * 32, (n // 2) * 32, (n % 2) * 32 + 32, (n // 2) * 32 + 32),
        )
    image.save(path)
    return path


def near(vector: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at ``cosine`` to ``vector``."""
    other = rng.normal(size=DIM)
    other -= (other @ vector) * vector
    other /= np.linalg.norm(other)
    return cosine * vector + np.sqrt(1 - cosine**2) * other


@pytest.fixture()
def reference(tmp_path: Path) -> tuple[Collection, list[np.ndarray]]:
    """200 unrelated pictures and 10 look-alike pairs; a calibration that calls pairs at
    0.9 copies (as duplicates would) and presumes images at 0.99 copies."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "photos"
    folder.mkdir()
    vectors = [v / np.linalg.norm(v) for v in rng.normal(size=(200, DIM))]
    vectors += [near(vectors[n], LOOK_ALIKE, rng) for n in range(10)]
    for n, vector in enumerate(vectors):
        picture(vector, folder / f"{n:03d}.png")
    collection = open_collection(tmp_path / "c", embedder=Quadrants(), create=True)
    ingest(collection, FolderSource([folder]))
    calibration = CopyCalibration(
        threshold=0.9,
        target_precision=0.99,
        precision=0.99,
        recall=0.9,
        hashes=HashCalibration(radius=-1),
        presumed_copy=0.99,
        views=list(COPY_VIEWS),
    )
    collection.set_calibration("default", calibration)
    return collection, vectors


def test_an_outside_look_alike_is_no_copy_and_a_copy_still_is(
    reference: tuple[Collection, list[np.ndarray]], tmp_path: Path
) -> None:
    collection, vectors = reference
    rng = np.random.default_rng(11)
    look_alike = picture(near(vectors[50], OUTSIDE_LOOK_ALIKE, rng), tmp_path / "other.png")
    copy = picture(near(vectors[60], COPY, rng), tmp_path / "copy.png")
    for views in (False, True):
        options = MatchOptions(views=views)
        assert match_image(collection, look_alike.read_bytes(), options=options).matches == []
        found = match_image(collection, copy.read_bytes(), options=options)
        assert [Path(m.record.path).name for m in found.matches] == ["060.png"]
        assert OUTSIDE_LOOK_ALIKE < found.threshold < COPY
    # duplicates' own threshold, given, still calls the look-alike a copy
    given = match_image(collection, look_alike.read_bytes(), options=MatchOptions(threshold=0.9))
    assert [Path(m.record.path).name for m in given.matches] == ["050.png"]


def test_the_levels_are_kept_and_measured_again_when_the_collection_grows(
    reference: tuple[Collection, list[np.ndarray]], tmp_path: Path
) -> None:
    collection, vectors = reference
    index = collection.index()
    calibration = index.entry.calibration
    assert calibration is not None
    first = false_alarms_of(collection, index, calibration, False, 20)
    assert first.queries == first.records == 210 and not first.views
    # the look-alikes, both ways, but for pairs whose coarse blocks hash as one picture
    assert 0.03 < first.rate <= 20 / 210
    assert first.threshold > LOOK_ALIKE - 0.01
    kept = index.entry.calibration
    assert kept is not None and kept.false_alarms == [first]
    assert false_alarms_of(collection, index, kept, False, 20) == first
    # a collection full of its own copies (above the presumed-copy score) is no alarm
    rng = np.random.default_rng(3)
    more = tmp_path / "more"
    more.mkdir()
    for n in range(100):
        picture(near(vectors[n], COPY, rng), more / f"copy{n:03d}.png")
    ingest(collection, FolderSource([more]))
    assert collection.count(Filter.where({"kind": "image"})) == 310
    again = false_alarms_of(collection, index, kept, False, 20)
    assert again.records == 310 and again.rate == pytest.approx(first.rate, abs=0.03)


def test_an_older_calibration_keeps_the_duplicates_levels(
    reference: tuple[Collection, list[np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured once, not again on every query, with views asked for or not."""
    from pixseek.jobs import false_alarms

    measured: list[bool] = []
    measure = false_alarms.measure
    monkeypatch.setattr(false_alarms, "measure", lambda *a: measured.append(True) or measure(*a))
    collection, _ = reference
    index = collection.index()
    older = replace(index.entry.calibration, presumed_copy=0.0)  # type: ignore[type-var]
    for views in (False, True):
        alarms = false_alarms_of(collection, index, older, views, 20)
        assert (alarms.threshold, alarms.radius, alarms.views) == (0.9, -1, False)  # none kept
        kept = index.entry.calibration
        assert kept is not None and alarms in kept.false_alarms  # not asked again each query
        older = kept
    assert len(measured) == 1
    false_alarms_of(collection, index, older, True, 20)
    assert len(measured) == 1


def test_levels_kept_with_views_do_not_read_the_views(
    reference: tuple[Collection, list[np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query found as it is never reads the kept views (seconds at 100,000 images): nor
    do the levels measured with them, once kept."""
    from pixseek.jobs import false_alarms
    from pixseek.jobs.copy_views import view_vectors

    collection, _ = reference
    index = collection.index()
    view_vectors(collection, index, list(collection.records(Filter.where({"kind": "image"}))))
    calibration = index.entry.calibration
    assert calibration is not None
    first = false_alarms_of(collection, index, calibration, True, 20)
    assert first.views
    monkeypatch.setattr(false_alarms, "kept_views", lambda *_: pytest.fail("views read"))
    kept = index.entry.calibration
    assert kept is not None
    assert false_alarms_of(collection, index, kept, True, 20) == first


def test_levels_are_measured_where_views_or_images_are_added_not_by_a_query(
    reference: tuple[Collection, list[np.ndarray]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """keep_levels (``pixseek index``, the views job) measures what the next match would
    otherwise measure inside its request: with the views once they are kept, and again
    once the collection has grown by a quarter; a match after it measures nothing."""
    from pixseek.jobs import false_alarms
    from pixseek.jobs.copy_views import view_vectors
    from pixseek.jobs.false_alarms import keep_levels

    collection, vectors = reference
    index = collection.index()
    view_vectors(collection, index, list(collection.records(Filter.where({"kind": "image"}))))
    [(name, levels)] = keep_levels(collection)
    assert name == "default" and levels.views and levels.records == 210
    assert keep_levels(collection) == []  # kept, and still fitting
    measure = false_alarms.measure
    monkeypatch.setattr(false_alarms, "measure", lambda *_: pytest.fail("measured by a query"))
    copy = picture(near(vectors[60], COPY, np.random.default_rng(5)), tmp_path / "copy.png")
    found = match_image(collection, copy.read_bytes())
    assert [Path(m.record.path).name for m in found.matches] == ["060.png"]
    assert found.threshold == levels.threshold
    more = tmp_path / "more"
    more.mkdir()
    rng = np.random.default_rng(9)
    for n in range(60):
        picture(rng.normal(size=DIM) / 4, more / f"new{n:03d}.png")
    ingest(collection, FolderSource([more]))
    monkeypatch.setattr(false_alarms, "measure", measure)
    [(_, grown)] = keep_levels(collection)
    assert grown.records == 270 and grown.views


def test_a_query_does_not_wait_for_another_writer_to_keep_the_levels(
    reference: tuple[Collection, list[np.ndarray]],
) -> None:
    """Another process holds the collection's write lock (a long ``index`` run): the
    levels are measured and used, and kept by a later query."""
    import subprocess
    import sys
    import time

    collection, _ = reference
    index = collection.index()
    calibration = index.entry.calibration
    assert calibration is not None
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            f"lock = FileLock({str(collection.layout.write_lock)!r}); lock.acquire(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        alarms = false_alarms_of(collection, index, calibration, False, 20)
        assert time.monotonic() - started < 30
        assert alarms.threshold > LOOK_ALIKE - 0.01
        assert index.entry.calibration == calibration  # not kept while the other writes
    finally:
        holder.kill()
        holder.wait()
    assert false_alarms_of(collection, index, calibration, False, 20) == alarms
    assert index.entry.calibration is not None
    assert index.entry.calibration.false_alarms == [alarms]


def test_queries_without_hashes_do_not_widen_the_radius() -> None:
    """Two of a thousand images met another within 6 bits, but only those two had a hash
    to compare: at most 1% of the hashed ones may match, so the radius stays under 6."""
    from pixseek.imaging.hashes import PHASH_BITS
    from pixseek.jobs.false_alarms import hash_radius

    bits = np.full(1000, PHASH_BITS + 1)
    bits[:2] = 6
    assert hash_radius(bits, 0.01, 10) == 5
    bits[2:300] = 30  # with hashes, far from every other: 300 asked, 3 may match
    assert hash_radius(bits, 0.01, 10) == 10
    assert hash_radius(np.full(5, PHASH_BITS + 1), 0.01, 8) == 8


def test_the_turned_views_are_compared_by_their_hashes_too(
    reference: tuple[Collection, list[np.ndarray]],
) -> None:
    """match compares a query's turned and centre views' hashes with their candidates'; an
    image asked as if unseen is compared the same way, through its kept views' hashes."""
    from pixseek.core.records import Record
    from pixseek.imaging.hashes import ImageHashes, hamming
    from pixseek.jobs.copy_views import kept_views, view_vectors
    from pixseek.jobs.false_alarms import KEPT_QUERY_VIEWS, _own_views, _Unlike
    from pixseek.stores.knn import search_many

    collection, _ = reference
    index = collection.index()
    records: list[Record] = sorted(
        collection.records(Filter.where({"kind": "image"})), key=lambda r: r.id
    )[:12]
    view_vectors(collection, index, list(collection.records(Filter.where({"kind": "image"}))))
    kept = kept_views(collection, index)
    assert kept is not None and kept.phash_known.all()
    unlike = _Unlike(0.99)
    _, bits = _own_views(index, records, kept, 20, unlike)
    for n, record in enumerate(records):
        rows = [
            int(np.flatnonzero((kept.ids == record.id) & (kept.names == COPY_VIEWS.index(v)))[0])
            for v in KEPT_QUERY_VIEWS
        ]
        found = search_many(index.store, kept.vectors[rows].astype(np.float32), 21)
        expected = min(
            hamming(int(kept.phashes[row]), ImageHashes.decode(other.hashes).phash)  # type: ignore[union-attr]
            for row, hits in zip(rows, found, strict=True)
            for other, score in hits
            if unlike(record, other, score)
        )
        assert bits[n] == expected
