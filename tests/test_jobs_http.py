"""Training, reindexing and comparing as HTTP jobs: id, progress, result, and a restart in
between; then the same through the typed client's transport."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from pixseek.api import ServeSettings, create_app
from pixseek.api.background import JOBS_DIR
from pixseek.collection.collection import open_collection
from tests.test_loop import QUERIES, judged  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": "Bearer s3cret"}


def wait(client: TestClient, job_id: str, timeout: float = 300) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", headers=ADMIN).json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)


def test_the_loop_as_jobs_that_survive_a_restart(judged, tiny_model, capsys) -> None:  # noqa: F811
    root = judged.parent / "served"
    root.mkdir()
    judged.rename(root / "shapes")
    settings = ServeSettings(root=root, runtime="torch", model=str(tiny_model), api_key="s3cret")
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    body = {"kind": "train", "epochs": 15, "lr": 3e-3, "batch_size": 32}
    started = client.post("/collections/shapes/jobs", json=body, headers=ADMIN)
    assert started.status_code == 202, started.text
    trained = wait(client, started.json()["id"])
    assert trained["state"] == "done", trained
    assert trained["progress"] == 1.0 and trained["result"]["hard_negatives"] > 0
    model = f"job:{trained['id']}"
    built = wait(
        client,
        client.post(
            "/collections/shapes/jobs", json={"kind": "reindex", "model": model}, headers=ADMIN
        ).json()["id"],
    )
    assert built["state"] == "done" and built["result"]["activated"] is False, built

    # a new server on the same root: finished jobs keep their results; queued ones run
    again = TestClient(create_app(settings), raise_server_exceptions=False)
    assert again.get(f"/jobs/{trained['id']}", headers=ADMIN).json() == trained
    pending = {
        "id": "pending00001",
        "kind": "compare",
        "collection": "shapes",
        "state": "running",
        "progress": 0.5,
        "params": {"index": "", "activate_if_better": True},
    }
    (root / JOBS_DIR / "pending00001.json").write_text(json.dumps(pending))
    third = TestClient(create_app(settings), raise_server_exceptions=False)
    compared = wait(third, "pending00001")
    assert compared["state"] == "done", compared
    result = compared["result"]
    assert result["shadow"]["feedback"]["ndcg_at_10"] > result["active"]["feedback"]["ndcg_at_10"]
    assert (
        result["activated"]
        and open_collection(root / "shapes").default_index == built["result"]["index"]
    )
    assert [j["id"] for j in third.get("/jobs", headers=ADMIN).json()][-1] == "pending00001"

    bad = third.post(
        "/collections/shapes/jobs", json={"kind": "reindex", "model": "/etc"}, headers=ADMIN
    )
    assert bad.status_code == 422
    assert (
        third.post("/collections/nope/jobs", json={"kind": "compare"}, headers=ADMIN).status_code
        == 404
    )
    assert (
        wait(
            third,
            third.post(
                "/collections/shapes/jobs",
                json={"kind": "reindex", "model": "job:nope"},
                headers=ADMIN,
            ).json()["id"],
        )["state"]
        == "failed"
    )
