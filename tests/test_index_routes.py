"""A collection's indexes over HTTP: listed with the active one marked, and switched."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pixseek.api import ServeSettings, create_app
from pixseek.collection import open_collection
from pixseek.collection.manifest import BUILDING
from pixseek.core.calibration import CopyCalibration, FalseAlarms
from pixseek.ingest import FolderSource, ingest
from tests.test_uniqueness import PlantedEmbedder, planted_folder


def test_indexes_are_listed_and_searches_switched(tmp_path) -> None:
    collection = open_collection(tmp_path / "root" / "c", embedder=PlantedEmbedder(), create=True)
    collection.add_index("second", PlantedEmbedder("planted-second"))
    collection.add_index("half-built", PlantedEmbedder("planted-third"), state=BUILDING)
    assert ingest(collection, FolderSource([planted_folder(tmp_path / "photos")])).failed == 0
    alarms = FalseAlarms(0.93, 6, 0.02, 20, 60, views=False)
    calibrated = CopyCalibration(0.9, 0.99, 0.995, 0.8, false_alarms=[alarms])
    collection.set_calibration(collection.default_index, calibrated)
    client = TestClient(
        create_app(ServeSettings(root=tmp_path / "root")), base_url="http://localhost"
    )
    listed = client.get("/collections/c/indexes").json()
    names = [row["name"] for row in listed["indexes"]]
    assert listed["active"] == collection.default_index and "second" in names
    assert [row["name"] for row in listed["indexes"] if row["active"]] == [listed["active"]]
    second = next(row for row in listed["indexes"] if row["name"] == "second")
    assert second["model"] == "planted-second" and second["records"] == 20 and second["dim"] == 16
    assert second["calibration"] is None  # not calibrated yet
    (active,) = [row for row in listed["indexes"] if row["active"]]
    shown = active["calibration"]  # duplicates' levels, and match's for outside images
    assert (shown["threshold"], shown["false_alarms"][0]["threshold"]) == (0.9, 0.93)

    switched = client.put("/collections/c/indexes/active", json={"index": "second"})
    assert switched.status_code == 200, switched.text
    assert switched.json()["active"] == "second"
    assert open_collection(tmp_path / "root" / "c").default_index == "second"
    assert client.get("/collections/c").json()["model"] == "planted-second"
    # by model too; an unknown index is a 404, one still being built a 422
    by_model = client.put("/collections/c/indexes/active", json={"index": "planted-test-embedder"})
    assert by_model.json()["active"] != "second"
    assert client.put("/collections/c/indexes/active", json={"index": "nope"}).status_code == 404
    building = client.put("/collections/c/indexes/active", json={"index": "half-built"})
    assert building.status_code == 422 and "still being built" in building.text
    assert client.get("/collections/nope/indexes").status_code == 404
