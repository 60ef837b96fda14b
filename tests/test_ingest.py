from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixseek.collection.collection import open_collection
from pixseek.core.errors import InvalidInputError, WrongModelError
from pixseek.core.filters import Filter
from pixseek.ingest import CocoSource, FolderSource, ingest
from pixseek.models import EmbedderOptions


def test_folder_ingest_skips_broken_files_and_reports_them(collection, photo_folder) -> None:
    (photo_folder / "cool" / "empty.jpg").write_bytes(b"")
    (photo_folder / "cool" / "notes.JPG").write_text("this is not an image")
    good = (photo_folder / "warm" / "red.jpg").read_bytes()
    (photo_folder / "warm" / "cut.jpg").write_bytes(good[:200])
    (photo_folder / "warm" / "readme.txt").write_text("ignored: not an image suffix")
    report = ingest(collection, FolderSource((photo_folder,), label_from_folder=True))
    assert (report.indexed, report.failed) == (6, 3)
    errors = {Path(f.path).name: f.error for f in report.failures}
    assert "empty" in errors["empty.jpg"]
    assert "not a recognised image" in errors["notes.JPG"]
    assert "truncated" in errors["cut.jpg"]
    info = collection.info()
    assert (info.images, info.objects, info.failures) == (6, 0, 3)
    assert collection.count(Filter.where({"label": "warm"})) == 2


def test_reindex_adds_nothing_and_updates_changed_files(collection, photo_folder) -> None:
    source = FolderSource((photo_folder,))
    assert ingest(collection, source).indexed == 6
    again = ingest(collection, source)
    assert (again.indexed, again.skipped) == (0, 6)
    assert collection.count() == 6
    from tests.conftest import make_image

    make_image(photo_folder / "warm" / "red.jpg", (250, 250, 0))
    changed = ingest(collection, source)
    assert (changed.indexed, changed.skipped, collection.count()) == (1, 5, 6)


def test_coco_import_counts_and_exact_boxes(collection, coco) -> None:
    annotations = coco / "annotations" / "instances_val2017.json"
    data = json.loads(annotations.read_text())
    report = ingest(collection, CocoSource(annotations, coco / "val2017"))
    assert report.failed == 0
    assert collection.count(Filter.where({"kind": "image"})) == len(data["images"])
    assert collection.count(Filter.where({"kind": "object"})) == len(data["annotations"])
    objects = collection.records(Filter.where({"kind": "object"}))
    stored = {r.metadata["coco_id"]: r for r in objects}
    names = {c["id"]: c["name"] for c in data["categories"]}
    for ann in data["annotations"]:
        record = stored[ann["id"]]
        assert list(record.box) == [float(v) for v in ann["bbox"]]
        assert record.label == names[ann["category_id"]]
        assert record.split == "val"
    assert ingest(collection, CocoSource(annotations, coco / "val2017")).indexed == 0


def test_bad_boxes_fail_alone(collection, photo_folder, tmp_path) -> None:
    coco = {
        "images": [{"id": 1, "file_name": "warm/red.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20]},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [70, 50, 30, 30]},
            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10]},
        ],
        "categories": [{"id": 1, "name": "blob"}],
    }
    path = tmp_path / "instances_mini.json"
    path.write_text(json.dumps(coco))
    report = ingest(collection, CocoSource(path, photo_folder))
    assert (report.indexed, report.objects, report.failed) == (1, 1, 2)
    assert {f.path.rsplit("=", 1)[1] for f in report.failures} == {"11", "12"}
    coco["annotations"] = coco["annotations"][:1]
    path.write_text(json.dumps(coco))
    ingest(collection, CocoSource(path, photo_folder))
    assert collection.failures.count() == 0
    assert collection.count(Filter.where({"kind": "object"})) == 1


def test_changed_annotations_replace_old_objects(collection, photo_folder, tmp_path) -> None:
    def write(boxes: list[list[float]]) -> CocoSource:
        anns = [{"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in enumerate(boxes)]
        data = {
            "images": [{"id": 1, "file_name": "warm/red.jpg"}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "blob"}],
        }
        (tmp_path / "instances_x.json").write_text(json.dumps(data))
        return CocoSource(tmp_path / "instances_x.json", photo_folder)

    ingest(collection, write([[1, 1, 10, 10], [20, 20, 10, 10]]))
    ingest(collection, write([[2, 2, 10, 10]]))
    objects = list(collection.records(Filter.where({"kind": "object"})))
    assert [r.box for r in objects] == [(2.0, 2.0, 10.0, 10.0)]


def test_collection_refuses_another_model(tmp_path, tiny_model, torch_embedder) -> None:
    from pixseek.demo.factory import ClipShape, build_clip

    col = open_collection(tmp_path / "c", embedder=torch_embedder, create=True)
    other = build_clip(tmp_path / "other", ClipShape(projection_dim=8), seed=1)
    with pytest.raises(WrongModelError, match="not comparable"):
        open_collection(col.root, EmbedderOptions(model=str(other), runtime="torch"))


def test_a_url_list_is_indexed_and_bad_urls_fail_alone(tmp_path, photo_folder) -> None:
    import functools
    import http.server
    import threading

    from pixseek.ingest import UrlListSource
    from tests.conftest import KeyedEmbedder

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(photo_folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    listing = tmp_path / "urls.txt"
    listing.write_text(
        f"# photos\n{base}/warm/red.jpg\n{base}/cool/blue.jpg  # a comment\n{base}/missing.jpg\n"
    )
    try:
        collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder({}), create=True)
        report = ingest(collection, UrlListSource(listing))
    finally:
        server.shutdown()
    assert (report.indexed, report.failed) == (2, 1)
    assert {r.path for r in collection.records()} == {
        f"{base}/warm/red.jpg",
        f"{base}/cool/blue.jpg",
    }
    assert "404" in report.failures[0].error
    listing.write_text("file:///etc/passwd\n")
    with pytest.raises(InvalidInputError, match="not an http"):
        list(UrlListSource(listing).tasks())
