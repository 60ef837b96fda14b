"""Copy calibration: measured on a collection's own images, for models whose similarity
scales differ, it reproduces its target precision on copies it has not seen; duplicates
and match use it, and the hash tier works from hashes stored at ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.collection import Collection, open_collection
from pixseek.core.filters import Filter
from pixseek.imaging.edits import EDITS, edited
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.calibrate import (
    EXPECTED_RECALL,
    CalibrationOptions,
    calibrate,
    sample_images,
    sample_size,
)
from pixseek.jobs.precision import wilson_lower
from tests.conftest import CALTECH
from tests.copy_models import CompressedDescriptor, ThumbnailDescriptor
from tests.test_jobs import scene


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 photos: Caltech-101's when present, else generated scenes."""
    folder = tmp_path_factory.mktemp("photos")
    if CALTECH.is_dir():
        classes = sorted(p for p in CALTECH.iterdir() if p.is_dir())[:90]
        for c in classes:  # one a class: a class's first photos are often near-copies
            first = sorted(c.glob("*.jpg"))[0]
            shutil.copy(first, folder / f"{c.name}-{first.name}")
    else:
        for seed in range(90):
            scene(seed).save(folder / f"scene{seed}.png")
    return folder


def held_out_precision(collection, calibration, held_out, neighbours=10):  # type: ignore[no-untyped-def]
    """Precision and recall at the calibrated threshold on copies of images the
    calibration did not edit, with other edits (another seed), scored as duplicates
    scores them: a copy against its source and the source's views; the pairs that are
    not copies, each copy's nearest other images and each view's."""
    from pixseek.core.paths import local_path
    from pixseek.imaging.decode import load_image_file
    from pixseek.imaging.views import COPY_VIEWS, views

    index = collection.index()
    images = Filter.where({"kind": "image"})
    sources = index.store.get_vectors([r.id for r in held_out])
    true = false = copies = 0
    for row, record in enumerate(held_out):
        picture = load_image_file(local_path(record.path))
        turned = index.embedder.embed_images([v for _, v, _ in views(picture, COPY_VIEWS)])
        edits = [edited(picture, name, 7_000 + row * 31 + n) for n, name in enumerate(EDITS)]
        for vector in index.embedder.embed_images(edits):
            copies += 1
            best = max(float(vector @ sources[record.id]), float((turned @ vector).max()))
            true += best >= calibration.threshold
        for vector in [*index.embedder.embed_images(edits), *turned]:
            hits = index.store.search(vector, neighbours + 1, images)
            others = [s for r, s in hits if r.id != record.id][:neighbours]
            false += sum(s >= calibration.threshold for s in others)
    return true / max(1, true + false), true / copies


@pytest.mark.parametrize("model", [ThumbnailDescriptor, CompressedDescriptor])
def test_calibration_reproduces_its_target_on_held_out_copies(tmp_path, photos, model) -> None:
    collection = open_collection(tmp_path / "c", embedder=model(), create=True)
    ingest(collection, FolderSource([photos]))
    options = CalibrationOptions(target_precision=0.98, sample=30)
    calibration = calibrate(collection, options=options)
    assert calibration.precision >= 0.98 and calibration.images == 30
    assert set(calibration.recall_by_edit) == set(EDITS) == set(calibration.lowest_by_edit)
    for edit, lowest in calibration.lowest_by_edit.items():  # every copy found at or below
        every = calibration.recall_by_edit[edit] == 1.0
        assert lowest >= calibration.threshold - 1e-6 if every else lowest < calibration.threshold
    # kept with the index, and shown by info
    reopened = open_collection(tmp_path / "c", embedder=model())
    assert reopened.index().entry.calibration == calibration
    sampled = {r.id for r in sample_images(collection.index(), 30, 0)}
    held_out = [
        r for r in collection.records(Filter.where({"kind": "image"})) if r.id not in sampled
    ]
    precision, recall = held_out_precision(collection, calibration, held_out[:30])
    assert precision >= 0.95, (precision, recall, calibration.threshold)
    assert abs(recall - calibration.recall) < 0.15
    # P(copy) rises with the score and is about the precision at the threshold
    assert calibration.probability(calibration.threshold - 0.2) < calibration.probability(1.0)
    print(model.__name__, calibration.summary(), "held out:", precision, recall)


def test_the_two_models_need_different_thresholds(tmp_path, photos) -> None:
    found = []
    for model in (ThumbnailDescriptor, CompressedDescriptor):
        collection = open_collection(tmp_path / model.__name__, embedder=model(), create=True)
        ingest(collection, FolderSource([photos]))
        options = CalibrationOptions(target_precision=0.95, sample=24)
        found.append(calibrate(collection, options=options).threshold)
    assert abs(found[0] - found[1]) > 0.05, found  # no fixed number serves both


def test_hash_tier_reads_stored_hashes_and_looks_past_embedding_neighbours(
    tmp_path, photos, monkeypatch, capsys
) -> None:
    """A grayscale copy is far from its original for a colour model, so it is not among
    its embedding neighbours; the stored perceptual hashes link them anyway, and no image
    file is read to do it. --across split lists only the pairs that cross splits."""
    from PIL import Image, ImageOps

    from pixseek.cli.main import main
    from pixseek.core.paths import local_path
    from pixseek.jobs.dedup import DedupOptions, find_duplicates
    from tests.test_several_models import HistogramEmbedder

    folder = tmp_path / "photos"
    folder.mkdir()
    originals = sorted(photos.iterdir())[:12]
    for path in originals:
        shutil.copy(path, folder / path.name)
    gray = ImageOps.grayscale(Image.open(originals[0])).convert("RGB")
    gray.save(folder / "gray-copy.png")
    collection = open_collection(tmp_path / "c", embedder=HistogramEmbedder(), create=True)
    ingest(collection, FolderSource([folder]))
    assert all(r.hashes for r in collection.records(Filter.where({"kind": "image"})))

    def no_reading(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("an image file was read")

    monkeypatch.setattr("pixseek.jobs.calibrate.load_image_file", no_reading)
    options = DedupOptions(threshold=0.999, phash_distance=8, neighbours=2, views=False)
    groups = find_duplicates(collection, options=options).groups
    pairs = [sorted(local_path(m.record.path).name for m in g.members) for g in groups]
    assert sorted([originals[0].name, "gray-copy.png"]) in pairs
    linked = next(g for g in groups if len(g.members) == 2 and "gray" in str(g.members))
    assert {m.tier for m in linked.members} == {"phash"}

    # splits: the copy in test, its original in train, everything else in train too
    records = list(collection.records(Filter.where({"kind": "image"})))
    for record in records:
        split = "test" if record.path.endswith("gray-copy.png") else "train"
        vectors = collection.index().store.get_vectors([record.id])
        from dataclasses import replace

        collection.index().store.upsert(
            [replace(record, metadata={**record.metadata, "split": split})],
            np.stack([vectors[record.id]]),
        )
    given = ["--threshold", "0.999", "--phash-distance", "8", "--no-views", "--json"]
    args = ["duplicates", "--collection", str(tmp_path / "c"), "--across", "split", *given]
    assert main(args) == 0
    import json

    crossing = json.loads(capsys.readouterr().out)
    assert crossing["across"] == "split" and len(crossing["groups"]) == 1
    splits = {m["record"]["metadata"]["split"] for m in crossing["groups"][0]["members"]}
    assert splits == {"train", "test"}


def test_multi_index_hashing_finds_what_brute_force_finds(monkeypatch) -> None:
    from pixseek.jobs import dedup

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 2**63, 3000, dtype=np.uint64)
    for i in range(0, 300, 3):  # plant pairs 0 to 8 bits apart
        flips = rng.choice(64, size=i % 9, replace=False)
        codes[i + 1] = codes[i] ^ np.uint64(sum(1 << int(f) for f in flips))
    brute = dedup.hash_links(codes, 8)
    monkeypatch.setattr(dedup, "BRUTE_FORCE_HASHES_UP_TO", 0)
    hashed = dedup.hash_links(codes, 8)
    as_set = lambda links: set(zip(*(part.tolist() for part in links), strict=True))  # noqa: E731
    assert as_set(brute) == as_set(hashed)
    assert {(i, i + 1) for i in range(0, 300, 3)} <= {(a, b) for a, b, _ in as_set(brute)}


def test_match_reports_views_and_parts(tmp_path, photos) -> None:
    """A rotated copy is found through a view of the query turned back; a corner crop
    through a region window, with that window's box."""
    from PIL import Image

    from pixseek.jobs.match import MatchOptions, match_image

    folder = tmp_path / "photos"
    folder.mkdir()
    originals = sorted(photos.iterdir())[:10]
    for path in originals:
        shutil.copy(path, folder / path.name)
    collection = open_collection(tmp_path / "c", embedder=ThumbnailDescriptor(), create=True)
    collection.set_regions((0.5,))
    ingest(collection, FolderSource([folder]))
    calibration = calibrate(collection, options=CalibrationOptions(0.95, sample=10))
    picture = Image.open(originals[2]).convert("RGB")

    def encoded(image: Image.Image) -> bytes:
        import io

        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    rotated = picture.rotate(10, resample=Image.Resampling.BICUBIC)
    result = match_image(collection, encoded(rotated))
    assert result.calibrated and result.threshold == calibration.threshold
    assert result.matches and result.matches[0].record.path.endswith(originals[2].name)
    assert result.matches[0].view != "as is" or result.matches[0].tier == "phash"
    w, h = picture.size
    corner = picture.crop((0, 0, w // 2, h // 2))
    parts = match_image(collection, encoded(corner), options=MatchOptions(views=False))
    top = parts.matches[0]
    assert top.record.path.endswith(originals[2].name) and top.via == "region"
    assert top.box is not None and top.box[0] == 0 and top.box[1] == 0
    assert top.probability is not None and top.to_dict()["box"] == list(top.box)


def test_calibration_through_the_cli(tmp_path, photos, tiny_model, capsys) -> None:
    import json

    from pixseek.cli.main import main

    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(photos.iterdir())[:8]:
        shutil.copy(path, folder / path.name)
    c = str(tmp_path / "c")
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    assert main(["index", str(folder), "--collection", c, *model]) == 0
    assert "calibrated copy detection for index 'default'" in capsys.readouterr().out
    assert main(["info", "--collection", c]) == 0
    out = capsys.readouterr().out
    assert "copies:     copies at cosine >=" in out
    assert "match: an outside image is a copy at cosine >=" in out  # jobs.false_alarms
    args = ["calibrate", "--collection", c, "--target-precision", "0.9", "--sample", "6"]
    assert main([*args, "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["target_precision"] == 0.9 and measured["images"] == 6
    (alarms,) = measured["false_alarms"]
    assert alarms["queries"] == 8 and alarms["threshold"] >= measured["threshold"]
    assert main(["calibrate", "--collection", c, "--target-precision", "2"]) == 2
    assert "target precision" in capsys.readouterr().err


def test_too_few_images_to_measure(tmp_path, photos, tiny_model, capsys) -> None:
    """Below the images calibration needs, duplicates still runs: exact and near-identical
    pictures only, and it says it is not calibrated."""
    import json

    from pixseek.cli.main import main

    folder = tmp_path / "few"
    folder.mkdir()
    first, second = sorted(photos.iterdir())[:2]
    shutil.copy(first, folder / "a.jpg")
    shutil.copy(first, folder / "a-copy.jpg")
    shutil.copy(second, folder / "b.jpg")
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    assert main(["index", str(folder), "--collection", str(tmp_path / "c"), *model]) == 0
    capsys.readouterr()
    assert main(["duplicates", "--collection", str(tmp_path / "c"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calibrated"] is False and result["threshold"] == 1.0
    assert [len(g["members"]) for g in result["groups"]] == [2]
    assert main(["duplicates", "--collection", str(tmp_path / "c")]) == 0
    assert "not calibrated" in capsys.readouterr().out


@pytest.mark.parametrize("model", [ThumbnailDescriptor, CompressedDescriptor])
def test_min_score_auto_is_the_calibrated_no_match_cutoff(tmp_path, photos, model) -> None:
    """A query by image keeps what is alike and drops unrelated images, on either model's
    scale (no fixed number does both); text queries are told to give a number."""
    import io

    from PIL import Image

    from pixseek.core.errors import InvalidInputError
    from pixseek.core.query import ImageQuery, SearchOptions, Term, TextQuery
    from pixseek.search import search

    every = sorted(photos.iterdir())
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in every[:30]:
        shutil.copy(path, folder / path.name)
    collection = open_collection(tmp_path / "c", embedder=model(), create=True)
    ingest(collection, FolderSource([folder]))
    calibration = calibrate(collection, options=CalibrationOptions(0.95, sample=20))

    def query(path: Path, resized: bool = False) -> Term:
        image = Image.open(path).convert("RGB")
        if resized:
            image = image.resize((image.width // 2, image.height // 2))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        return Term(ImageQuery(buffer.getvalue()))

    auto = SearchOptions(k=5, kind="image", min_score="auto")
    copy = search(collection, [query(every[3], resized=True)], auto)
    assert copy and copy[0].record.path.endswith(every[3].name)
    assert all(hit.score >= calibration.unrelated for hit in copy)
    unseen = [search(collection, [query(path)], auto) for path in every[60:80]]
    assert sum(bool(hits) for hits in unseen) <= 2  # the 99th percentile of unrelated
    everything = search(collection, [query(every[60])], SearchOptions(k=5, kind="image"))
    assert len(everything) == 5  # without the cutoff, unrelated images are returned
    with pytest.raises(InvalidInputError, match="for text queries is measured on the"):
        search(collection, [Term(TextQuery("a dog"))], auto)


def test_min_score_auto_through_the_cli_and_the_api() -> None:
    from pixseek.api.schemas.search import SearchIn
    from pixseek.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["similar", "x.jpg", "--collection", "c", "--min-score", "auto"])
    assert args.min_score == "auto"
    assert (
        parser.parse_args(["search", "x", "--collection", "c", "--min-score", "0.3"]).min_score
        == 0.3
    )
    assert SearchIn(image_id="a", min_score="auto").options().min_score == "auto"


SEEN_EDITS = ("resize", "jpeg", "flip", "crop_60_corner", "grayscale", "brightness", "rotate")


def with_families(tmp_path: Path, photos: Path, count: int, edits: tuple[str, ...]) -> Collection:
    """``count`` photos, the first 20 with a copy by each of ``edits``, indexed with the
    thumbnail descriptor: p00.png, p00-flip.png, ..."""
    folder = tmp_path / "family"
    folder.mkdir()
    for number, path in enumerate(sorted(photos.iterdir())[:count]):
        picture = Image.open(path).convert("RGB")
        picture.save(folder / f"p{number:02d}.png")
        if number < 20:
            for n, name in enumerate(edits):
                edited(picture, name, number * 100 + n).save(folder / f"p{number:02d}-{name}.png")
    collection = open_collection(tmp_path / "c", embedder=ThumbnailDescriptor(), create=True)
    ingest(collection, FolderSource([folder]))
    return collection


def test_a_collection_full_of_its_own_copies_still_calibrates(tmp_path, photos) -> None:
    """Most images sampled from a collection being de-duplicated have copies in it; those
    are no evidence against a threshold. Counted as unrelated images, they pushed the
    threshold to 1.0 (the embedding tier linked nothing) on 20 photos x 7 edits among 60
    others; left out, duplicates finds the copies, and nothing else. (The copies in the
    collection are made with edits this model sees through, through views for corners and
    turns: copies it cannot see as copies it cannot tell from unrelated images either.)"""
    from pixseek.jobs.dedup import find_duplicates

    collection = with_families(tmp_path, photos, 80, SEEN_EDITS)
    calibration = calibrate(collection)
    assert calibration.threshold < 0.999, calibration.summary()
    right = wrong = 0
    together: set[tuple[str, str]] = set()
    for group in find_duplicates(collection).groups:
        names = [Path(m.record.path).stem for m in group.members]
        for name in names[1:]:
            same = name.split("-")[0] == names[0].split("-")[0]
            right, wrong = right + same, wrong + (not same)
        together |= {(a, b) for a in names for b in names}
    assert wrong <= 0.01 * (right + wrong), (right, wrong)
    for name in ("resize", "jpeg", "flip", "crop_60_corner", "grayscale"):
        found = sum((f"p{n:02d}", f"p{n:02d}-{name}") in together for n in range(20))
        assert found >= 18, (name, found, calibration.summary())


BENCH_EDITS = ("resize", "jpeg", "crop_80", "crop_60_corner", "flip", "rotate", "brightness")
BENCH_EDITS += ("grayscale", "text")


def test_a_copy_already_in_the_collection_is_no_evidence_against_the_hash_radius(
    tmp_path: Path, photos: Path
) -> None:
    """A sampled image that is itself a copy (brightened, say) gets a mirrored copy that is
    the same picture as the collection's mirror image of its original. Counted as an
    unrelated image within a few bits, it shrank the radius to exact hashes (0 bits) on 20
    photos x 9 edits among 20 others; it is a copy, and the radius keeps brightened and
    re-encoded copies."""
    hashes = calibrate(with_families(tmp_path, photos, 40, BENCH_EDITS)).hashes
    assert hashes.radius >= 4, hashes
    assert hashes.recall_by_edit["brightness"] >= 0.9, hashes


def test_hash_neighbours_of_copies_count_where_unrelated_pictures_share_hashes() -> None:
    """Copies of one other sampled image that close: a family, presumed copies. Copies of
    many (plain pages, blank backgrounds): hashes say nothing, and nothing is presumed."""
    from pixseek.imaging.hashes import ImageHashes
    from pixseek.jobs.calibrate import _few_hash_partners

    def copies(codes: list[int]) -> list[ImageHashes]:
        return [ImageHashes(phash=code, colour=0) for code in codes]

    rng = np.random.default_rng(0)
    sources = [n for n in range(20) for _ in range(2)]
    apart = [int(code) for code in rng.integers(0, 2**63, 20) for _ in range(2)]
    assert _few_hash_partners(copies(apart), sources, 20).all()
    family = list(apart)
    family[2:4] = family[0:2]  # image 1's copies are image 0's pictures
    assert _few_hash_partners(copies(family), sources, 20).all()
    alike = [7] * 40  # every copy hashes the same
    assert not _few_hash_partners(copies(alike), sources, 20).any()


def test_a_high_target_precision_samples_enough_images_to_show_it() -> None:
    """The copies of 40 images cannot show a precision of 0.999 (the lower end of its
    Wilson interval stays below it with no wrong pair at all), so such a target turned
    every tier off; it now samples enough images, and 0.99 keeps the 40."""

    def most_shown(images: int) -> float:
        kept = np.asarray([images * len(EDITS) * EXPECTED_RECALL])
        return float(wilson_lower(kept, kept)[0])

    assert most_shown(40) < 0.999
    needed = sample_size(CalibrationOptions(target_precision=0.999))
    assert needed > 40 and most_shown(needed) >= 0.999 > most_shown(needed - 2)
    assert sample_size(CalibrationOptions()) == 40
    assert sample_size(CalibrationOptions(sample=200, target_precision=0.999)) == 200
