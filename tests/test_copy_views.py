"""Duplicates through views: a copy turned by 10° and a 60% corner crop are other pictures
to an embedding, and are found by comparing each image's turned and corner views; the
views are embedded once and kept, and calibration measures the score they give."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.collection.collection import Collection
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.core.records import Record
from pixseek.imaging.decode import load_image_file
from pixseek.imaging.hashes import perceptual_hash
from pixseek.imaging.views import COPY_VIEWS, views
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.calibrate import CalibrationOptions, calibrate
from pixseek.jobs.copy_views import has_kept_views, kept_views, view_vectors, views_path
from pixseek.jobs.dedup import DedupOptions, find_duplicates
from pixseek.jobs.match import MatchOptions, match_files, match_image
from tests.copy_models import ThumbnailDescriptor
from tests.test_calibrate import photos  # noqa: F401  (the 90 photos fixture)

COPIED = 6


def copies_of(picture: Image.Image) -> dict[str, Image.Image]:
    w, h = picture.size
    return {
        "rotated": picture.rotate(-10, resample=Image.Resampling.BICUBIC),
        "corner": picture.crop((w - round(w * 0.6), 0, w, round(h * 0.6))),  # top right
    }


@pytest.fixture
def with_copies(tmp_path: Path, photos: Path) -> Collection:  # noqa: F811
    folder = tmp_path / "photos"
    folder.mkdir()
    originals = sorted(photos.iterdir())[:40]
    for number, path in enumerate(originals):
        shutil.copy(path, folder / path.name)
        if number < COPIED:
            picture = Image.open(path).convert("RGB")
            for kind, copy in copies_of(picture).items():
                copy.save(folder / f"{path.stem}-{kind}.png")
    collection = open_collection(tmp_path / "c", embedder=ThumbnailDescriptor(), create=True)
    ingest(collection, FolderSource([folder]))
    return collection


def found_copies(collection: Collection, options: DedupOptions) -> dict[str, int]:
    """How many copies of each kind share a group with their original."""
    found = {"rotated": 0, "corner": 0}
    for group in find_duplicates(collection, options=options).groups:
        names = [Path(m.record.path).stem for m in group.members]
        for name in names:
            stem, _, kind = name.rpartition("-")
            if kind in found and stem in names:
                found[kind] += 1
    return found


def test_views_find_rotated_copies_and_corner_crops(with_copies: Collection) -> None:
    calibration = calibrate(with_copies, options=CalibrationOptions(0.99, sample=30))
    assert calibration.views == list(COPY_VIEWS)
    # the views lift what calibration measures for the edits they put back
    assert calibration.recall_by_edit["rotate"] >= 0.8, calibration.summary()
    assert calibration.recall_by_edit["crop_60_corner"] >= 0.8, calibration.summary()
    plain = found_copies(with_copies, DedupOptions(views=False))
    seen = found_copies(with_copies, DedupOptions())
    assert seen == {"rotated": COPIED, "corner": COPIED}, (plain, seen, calibration.summary())
    assert plain["corner"] < COPIED  # an embedding alone misses them


def test_views_are_kept_and_follow_the_collection(with_copies: Collection) -> None:
    index = with_copies.index()
    records = list(with_copies.records(Filter.where({"kind": "image"})))
    calls: list[tuple[int, int]] = []
    first = view_vectors(with_copies, index, records, lambda *done: calls.append(done))
    assert first.embedded == len(records) and calls[-1] == (len(records), len(records))
    assert first.vectors.shape == (len(records) * len(COPY_VIEWS), index.dim)
    again = view_vectors(with_copies, index, records, lambda *_: pytest.fail("embedded again"))
    assert again.embedded == 0 and (again.vectors == first.vectors).all()
    # one image fewer: dropped from the kept file; a damaged file is made again
    smaller = view_vectors(with_copies, index, records[1:])
    assert smaller.embedded == 0 and len(smaller.vectors) == len(first.vectors) - len(COPY_VIEWS)
    views_path(with_copies, index).write_bytes(b"not a file of views")
    assert view_vectors(with_copies, index, records[:3]).embedded == 3
    # a file gone or broken since it was indexed: no views for it, the others are kept

    local_path(records[3].path).write_bytes(b"\x89PNG broken")
    local_path(records[4].path).unlink()
    later = view_vectors(with_copies, index, records[:5])
    assert later.unreadable == 2 and later.embedded == 0 and set(later.rows.tolist()) == {0, 1, 2}


def test_views_are_kept_as_float16_and_float32_files_are_still_read(
    with_copies: Collection,
) -> None:
    """Half the memory and file of float32 (a cosine moves by far less than any threshold's
    margin); a views file kept as float32 (before) is read and converted, not embedded
    again, and match searches it as float16."""
    index = with_copies.index()
    records = list(with_copies.records(Filter.where({"kind": "image"})))
    made = view_vectors(with_copies, index, records)
    path = views_path(with_copies, index)
    with np.load(path) as data:
        assert data["vectors"].dtype == np.float16
        signature, ids, hashes = str(data["signature"]), data["ids"], data["hashes"]
        wide = data["vectors"].astype(np.float32)
    picture = load_image_file(local_path(records[0].path))
    shown = [p for _, p, _ in views(picture, COPY_VIEWS)]
    exact = index.embedder.embed_images(shown)
    kept = made.vectors[: len(COPY_VIEWS)]
    assert np.abs(np.sum(kept * exact, axis=1) - 1.0).max() < 1e-3
    # each view's perceptual hash is kept with it (jobs.false_alarms compares them)
    first = kept_views(with_copies, index)
    assert first is not None and first.phash_known.all()
    rows = np.flatnonzero(first.ids == records[0].id)
    assert [int(h) for h in first.phashes[rows]] == [perceptual_hash(p) for p in shown]
    old = signature.replace("|float16", "|float32")  # a file from before: no view hashes
    np.savez(path, signature=np.str_(old), ids=ids, hashes=hashes, vectors=wide)
    assert has_kept_views(with_copies, index)
    again = view_vectors(with_copies, index, records, lambda *_: pytest.fail("embedded again"))
    assert again.embedded == 0 and np.allclose(again.vectors, made.vectors, atol=1e-3)
    searched = kept_views(with_copies, index)
    assert searched is not None and searched.vectors.dtype == np.float16
    assert not searched.phash_known.any()


def test_duplicates_through_the_cli_report_the_view(with_copies: Collection, capsys) -> None:  # type: ignore[no-untyped-def]
    """Once the views and the calibration are kept, the CLI needs no model to load."""
    calibrate(with_copies, options=CalibrationOptions(0.99, sample=30))
    find_duplicates(with_copies)
    assert main(["duplicates", "--collection", str(with_copies.layout.root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["views"] > 0 and result["calibrated"]
    members = [m for g in result["groups"] for m in g["members"]]
    corner = next(m for m in members if m["record"]["path"].endswith("-corner.png"))
    assert corner["view"] == "top right of the keeper", corner
    assert main(["duplicates", "--collection", str(with_copies.layout.root)]) == 0
    assert "(via top right of the keeper)" in capsys.readouterr().out


def corner_crop_of_an_original(collection: Collection, folder: Path) -> tuple[Record, Path]:
    """An outside file: the bottom left 60% of one of the collection's originals."""
    records = list(collection.records(Filter.where({"kind": "image"})))
    original = next(r for r in records if "-" not in Path(r.path).stem.split("image_")[-1])
    picture = Image.open(local_path(original.path)).convert("RGB")
    w, h = picture.size
    path = folder / "outside crop.png"
    picture.crop((0, h - round(h * 0.6), round(w * 0.6), h)).save(path)
    return original, path


def loads_the_descriptor_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI loads the collection's model by the name kept with its index, through the
    registry: here the test descriptor is what that name loads."""
    from pixseek.models import registry

    key = ("hf-clip", "onnx")
    real = registry._BUILDERS[key]
    monkeypatch.setitem(
        registry._BUILDERS,
        key,
        lambda o: ThumbnailDescriptor() if o.model == "thumbnail-descriptor" else real(o),
    )


def test_match_finds_a_corner_crop_on_a_freshly_indexed_collection(
    with_copies: Collection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing matches the crop as it is, nor turned: the first such query makes the
    collection's views (kept: the next query embeds none) and finds that corner, with its
    box. ``--no-views`` finds nothing."""
    calibrate(with_copies, options=CalibrationOptions(0.99, sample=30))
    original, crop = corner_crop_of_an_original(with_copies, tmp_path)
    root = str(with_copies.layout.root)
    loads_the_descriptor_by_name(monkeypatch)
    assert main(["match", str(crop), "--collection", root, "--json", "--no-views"]) == 0
    plain = json.loads(capsys.readouterr().out)[0]
    assert plain["views"] == "off"
    assert all(m["record"]["id"] != original.id for m in plain["matches"])
    assert not views_path(with_copies, with_copies.index()).exists()

    assert main(["match", str(crop), "--collection", root, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)[0]
    assert made["views"] == "made", made
    top = made["matches"][0]
    assert top["record"]["id"] == original.id and top["via"] == "bottom left view"
    x, y, w, h = top["box"]  # [x, y, w, h], as every box: the bottom left 60%
    assert x == 0 and y + h == original.height and w == round(0.6 * original.width)
    kept = views_path(with_copies, with_copies.index()).stat().st_mtime_ns
    assert main(["match", str(crop), "--collection", root]) == 0
    out = capsys.readouterr().out
    assert "1 match\n" in out and "(a bottom left view of it at [0.0," in out
    assert views_path(with_copies, with_copies.index()).stat().st_mtime_ns == kept


def test_match_makes_no_views_beyond_its_limit(with_copies: Collection, tmp_path: Path) -> None:
    """A collection larger than ``make_views_up_to`` (0: a server request) keeps its first
    query fast: no views are made, and the result says they are missing."""
    original, crop = corner_crop_of_an_original(with_copies, tmp_path)
    result = match_image(with_copies, crop.read_bytes(), options=MatchOptions(make_views_up_to=0))
    assert result.views == "missing" and result.to_dict()["views"] == "missing"
    assert all(m.record.id != original.id for m in result.matches)
    assert not views_path(with_copies, with_copies.index()).exists()


def test_a_batch_that_makes_the_views_says_so_for_every_query(
    with_copies: Collection, tmp_path: Path
) -> None:
    """Matched a batch at a time, a query found as it is beside one that made the views
    says they are kept now, not missing (the CLI would warn that none are kept)."""
    original, crop = corner_crop_of_an_original(with_copies, tmp_path)
    options = MatchOptions(threshold=0.99)
    answers = dict(match_files(with_copies, [local_path(original.path), crop], options=options))
    exact, cropped = answers[local_path(original.path)], answers[crop]
    assert not isinstance(exact, Exception) and not isinstance(cropped, Exception)
    assert exact.matches[0].tier == "exact" and exact.views == "kept"
    assert cropped.views == "made" and cropped.matches[0].record.id == original.id


def test_the_cli_warns_when_a_query_needed_views_that_are_missing(
    with_copies: Collection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond the size views are made at (here: any size), a crop that matches nothing as
    it is gets the warning; a query found as it is does not."""
    import pixseek.jobs.match

    original, crop = corner_crop_of_an_original(with_copies, tmp_path)
    loads_the_descriptor_by_name(monkeypatch)
    monkeypatch.setattr(pixseek.jobs.match, "_make_views", lambda *_: "missing")
    root = str(with_copies.layout.root)
    assert main(["match", str(local_path(original.path)), "--collection", root]) == 0
    assert "keeps no turned and corner views" not in capsys.readouterr().err
    assert main(["match", str(crop), "--collection", root, "--threshold", "0.99"]) == 0
    assert "keeps no turned and corner views" in capsys.readouterr().err


def test_a_query_view_is_embedded_only_where_calibration_needs_it(
    with_copies: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibration found every flipped copy without a mirrored view (this descriptor sees
    a mirror image as the same picture): a query that matches nothing embeds its turned
    and centre views, not the mirrored one. With a threshold given (calibration's recall
    was measured at its own) or without kept views, all four; and all four where match's
    threshold for outside images is above the lowest flipped copy's score."""
    calibration = calibrate(with_copies, options=CalibrationOptions(0.99, sample=30))
    level = calibration.false_alarms[-1]  # match's threshold for outside images
    at = calibration.threshold + 0.01
    lowest = {**calibration.lowest_by_edit, "flip": at, "rotate": at - 0.1, "border": 0.0}
    alarms = [replace(level, threshold=at, views=True)]
    with_copies.set_calibration(
        "default", replace(calibration, lowest_by_edit=lowest, false_alarms=alarms)
    )
    unseen = tmp_path / "unseen.png"
    Image.new("RGB", (90, 60), (250, 240, 10)).save(unseen)
    embedder = with_copies.index().embedder
    calls: list[int] = []
    embed = embedder.embed_images
    monkeypatch.setattr(embedder, "embed_images", lambda i: calls.append(len(i)) or embed(i))
    match_image(with_copies, unseen.read_bytes(), options=MatchOptions(views=True))
    assert views_path(with_copies, with_copies.index()).exists()
    calls.clear()
    assert match_image(with_copies, unseen.read_bytes()).matches == []
    assert calls == [1, 3]  # as it is, then turned either way and its centre
    calls.clear()
    match_image(with_copies, unseen.read_bytes(), options=MatchOptions(threshold=0.999))
    assert calls == [1, 4]
    measured = with_copies.index().entry.calibration
    assert measured is not None and measured.false_alarms
    raised = replace(measured.false_alarms[-1], threshold=at + 0.001)
    with_copies.set_calibration("default", replace(measured, false_alarms=[raised]))
    calls.clear()
    match_image(with_copies, unseen.read_bytes())
    assert calls == [1, 4]


def test_views_are_made_by_default_only_up_to_a_size(with_copies: Collection) -> None:
    """Beyond ``make_views_up_to`` images (VIEWS_MADE_UP_TO by default; 0 over HTTP) a run
    uses only the views kept (seven embeddings an image is hours at a million) and counts
    the images it has none for; --views makes them at any size."""
    images = with_copies.count(Filter.where({"kind": "image"}))
    small = DedupOptions(threshold=0.99, make_views_up_to=3)
    skipped = find_duplicates(with_copies, options=small)
    assert skipped.views == 0 and skipped.to_dict()["views_missing"] == images
    assert not views_path(with_copies, with_copies.index()).exists()
    forced = find_duplicates(with_copies, options=replace(small, views=True))
    assert forced.views == images and forced.views_missing == 0
    kept = find_duplicates(with_copies, options=small)
    assert kept.views == forced.views and kept.views_missing == 0  # kept: used at any size


def test_index_views_makes_them_and_later_runs_keep_them_up_to_date(
    tmp_path: Path, photo_folder: Path, tiny_model: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_image

    target = str(tmp_path / "c")
    base = ["index", str(photo_folder), "--collection", target, "--model", str(tiny_model)]
    assert main([*base, "--quiet"]) == 0
    assert "views of" not in capsys.readouterr().out  # not asked for, none kept: none made
    assert main([*base, "--quiet", "--views"]) == 0
    out = capsys.readouterr().out
    assert "views of 6 images kept for index" in out
    # match's levels with the views, measured here rather than inside the next match
    assert "index 'default': match: an outside image is a copy at" in out
    assert "with their kept views" in out
    make_image(photo_folder / "cool" / "teal.jpg", (20, 160, 160))
    assert main([*base, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "views of 7 images kept for index" in out and "(1 embedded now)" in out
    assert "match: an outside image" not in out  # grew by a sixth: the levels still fit
    collection = open_collection(Path(target))
    assert find_duplicates(collection, options=DedupOptions(views=None)).views == 7


@pytest.mark.parametrize("damage", ["another model", "cut short"])
def test_views_made_with_another_model_or_damaged_are_made_again(
    with_copies: Collection, tmp_path: Path, damage: str
) -> None:
    """A views file the index's model did not make (a model changed under the same index
    name) or a damaged one (cut short on disk) is no views at all: the first unmatched
    query makes them, and duplicates reads it without failing."""
    original, crop = corner_crop_of_an_original(with_copies, tmp_path)
    path = views_path(with_copies, with_copies.index())
    if damage == "another model":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, signature=np.str_("another model"), ids=[], hashes=[], vectors=[])
    else:
        find_duplicates(with_copies, options=DedupOptions(threshold=0.99))
        path.write_bytes(path.read_bytes()[:3000])
        assert find_duplicates(with_copies, options=DedupOptions(threshold=0.99)).views > 0
        path.write_bytes(path.read_bytes()[:3000])
    result = match_image(with_copies, crop.read_bytes())
    assert result.views == "made", result.to_dict()
    assert result.matches and result.matches[0].record.id == original.id


def test_a_query_is_turned_at_the_size_its_views_need() -> None:
    """A full-size query is made smaller before it is turned four ways, as far as its centre
    keeps twice the model's input; small images, and models of no declared input size,
    are left as they are."""
    from pixseek.imaging.views import CENTRE, enough_for

    large = Image.new("RGB", (4000, 3000), "white")
    assert enough_for(large, 224, CENTRE).size == (747, 560)
    assert min(enough_for(large, 224, CENTRE).size) * CENTRE >= 2 * 224
    small = Image.new("RGB", (300, 200), "white")
    assert enough_for(small, 224, CENTRE) is small
    assert enough_for(large, None, CENTRE) is large
