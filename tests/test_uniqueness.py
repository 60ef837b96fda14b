"""Uniqueness and the representative sample: planted outliers score highest, k-centre greedy
takes one image of every cluster before a second of any, and the CLI and the API print the
same report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.collection.collection import Collection
from pixseek.core.errors import InvalidInputError
from pixseek.core.filters import Filter
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.uniqueness import (
    central_row,
    find_uniqueness,
    k_centre_greedy,
    mean_neighbour_distance,
    uniqueness_scores,
)
from pixseek.models import BatchEmbedder

DIM = 16


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clusters(sizes: Sequence[int], spread: float = 0.05, seed: int = 0) -> np.ndarray:
    """Clusters around orthogonal directions (cluster ``c``: rows near axis ``c``)."""
    rng = np.random.default_rng(seed)
    parts = [np.eye(DIM)[c] + rng.normal(0, spread, (size, DIM)) for c, size in enumerate(sizes)]
    return unit(np.concatenate(parts))


def test_planted_outliers_get_the_top_scores() -> None:
    rng = np.random.default_rng(1)
    common = clusters([40, 40, 40])
    outliers = unit(rng.normal(0, 1, (3, DIM)) + 2 * np.eye(DIM)[[10, 12, 14]])
    vectors = np.concatenate([common, outliers])
    distances = mean_neighbour_distance(vectors, 5)
    scores = uniqueness_scores(distances)
    assert scores.max() == pytest.approx(1.0) and scores.min() >= 0
    top = set(np.argsort(-scores)[:3].tolist())
    assert top == {120, 121, 122}
    assert scores[:120].max() < 0.5 * scores[120:].min()
    # identical rows are not unusual at all; a single row has no neighbours to differ from
    assert not uniqueness_scores(mean_neighbour_distance(np.repeat(common[:1], 4, 0), 3)).any()
    assert mean_neighbour_distance(common[:1], 5).tolist() == [0.0]


def test_k_centre_greedy_takes_every_cluster_before_a_second_of_any() -> None:
    sizes = [60, 5, 30, 2, 12, 40]  # small clusters count as much as large ones
    vectors = clusters(sizes)
    cluster_of = np.repeat(np.arange(len(sizes)), sizes)
    picked = k_centre_greedy(vectors, len(sizes))
    assert sorted(cluster_of[picked.rows].tolist()) == list(range(len(sizes)))
    assert picked.rows[0] == central_row(vectors)
    assert picked.covering[0] is None
    following = [c for c in picked.covering[1:] if c is not None]
    assert following == sorted(following, reverse=True) and min(following) > 0.5
    assert picked.covers == [sizes[c] for c in cluster_of[picked.rows]]
    assert picked.radius < 0.1  # every row is near its own cluster's pick
    # more picks than clusters: the seventh is a second of some cluster, nearer than before
    more = k_centre_greedy(vectors, len(sizes) + 1)
    assert more.rows[: len(sizes)] == picked.rows
    assert (more.covering[-1] or 0) < 0.2 and sum(more.covers) == len(vectors)
    # the same vectors, the same sample; a sample larger than the set is the whole set
    assert k_centre_greedy(vectors, len(sizes)).rows == picked.rows
    assert sorted(k_centre_greedy(vectors[:7], 50).rows) == list(range(7))
    with pytest.raises(InvalidInputError):
        k_centre_greedy(vectors, 0)


class PlantedEmbedder(BatchEmbedder):
    """An image's vector is an axis chosen by its red channel (``cluster * 20``), nudged
    along the last axis by its green channel, so the test knows which images cluster and
    which stand alone."""

    def __init__(self, name: str = "planted-test-embedder") -> None:
        super().__init__(name, DIM)

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            red, green, _ = np.asarray(image.convert("RGB"), np.float32).mean(axis=(0, 1))
            row = np.full(DIM, 0.01, np.float32)
            row[int(red / 20 + 0.5) % DIM] += 1.0
            row[DIM - 1] += (green - 40) / 100
            rows.append(row)
        return np.stack(rows)

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def planted_folder(root: Path) -> Path:
    """Three labelled clusters of 6 images each, and two images that stand alone."""
    for cluster in range(3):
        for n in range(6):
            colour = (cluster * 20, 40 + n * 3, 90)
            path = root / f"cluster{cluster}" / f"{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 24), colour).save(path)
    for cluster in (8, 12):
        path = root / "odd" / f"odd{cluster}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), (cluster * 20, 40, 90)).save(path)
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    work = tmp_path_factory.mktemp("unique")
    collection = open_collection(work / "root" / "c", embedder=PlantedEmbedder(), create=True)
    source = FolderSource([planted_folder(work / "photos")], label_from_folder=True)
    assert ingest(collection, source).failed == 0
    return collection


def test_the_cli_lists_the_odd_ones_and_a_sample(planted, capsys) -> None:
    root = str(planted.root)
    assert main(["uniqueness", "--collection", root, "--sample", "5", "--top", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 20 and report["neighbours"] == 5
    assert {row["record"]["label"] for row in report["unusual"][:2]} == {"odd"}
    assert report["unusual"][0]["uniqueness"] == 1.0 and len(report["unusual"]) == 3
    labels = [row["record"]["label"] for row in report["sample"]]
    assert sorted(labels) == ["cluster0", "cluster1", "cluster2", "odd", "odd"]
    assert [row["rank"] for row in report["sample"]] == [1, 2, 3, 4, 5]
    assert sum(row["covers"] for row in report["sample"]) == 20
    assert report["coverage"] < 0.05  # every image is near its own cluster's pick
    # a filter narrows the set; the table names the images
    assert main(["unique", "--collection", root, "--where", "label=cluster1", "--sample", "2"]) == 0
    printed = capsys.readouterr().out
    assert "most unusual of 6 images" in printed and "representative sample of 2" in printed
    assert "odd" not in printed
    assert main(["uniqueness", "--collection", root, "--sample", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["uniqueness", "--collection", root, "--where", "label=nothing"]) == 2
    assert "no images matching the filter" in capsys.readouterr().err


def test_the_api_answers_with_the_same_report(planted) -> None:
    from fastapi.testclient import TestClient

    from pixseek.api import ServeSettings, create_app

    client = TestClient(
        create_app(ServeSettings(root=planted.root.parent)), base_url="http://localhost"
    )
    body = {"sample": 4, "top": 5, "k": 3, "where": "label!=cluster2"}
    answer = client.post("/collections/c/uniqueness", json=body)
    assert answer.status_code == 200, answer.text
    expected = find_uniqueness(
        planted, k=3, top=5, sample=4, where=Filter.parse("label!=cluster2")
    ).to_dict()
    assert answer.json() == json.loads(json.dumps(expected))
    assert answer.json()["checked"] == 14
    for bad in ({"sample": 0}, {"k": 0}, {"where": "label=="}, {"kind": "region"}):
        assert client.post("/collections/c/uniqueness", json=bad).status_code == 422, bad
    assert client.post("/collections/c/uniqueness", json={"where": "label=x"}).status_code == 422
    assert client.post("/collections/nope/uniqueness", json={}).status_code == 404
    assert client.post("/collections/c/uniqueness", json={"model": "nope"}).status_code == 404
