"""Several models per collection: reindex beside the active model, activation, separate text
towers, and label-free object search with region windows."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.collection.workspace import Workspace
from pixseek.core.errors import InvalidInputError, WrongModelError
from pixseek.core.filters import Filter
from pixseek.core.query import RegionQuery, SearchOptions, Term
from pixseek.ingest import FolderSource, IngestOptions, ingest
from pixseek.jobs.reindex import reindex
from pixseek.models import BatchEmbedder, EmbedderOptions, load_embedder
from pixseek.search import search
from tests.conftest import KeyedEmbedder, make_image

TEXTS = {"red": [1.0, 0, 0], "blue": [0, 0, 1.0]}


class ChannelEmbedder(BatchEmbedder):
    """Another 'model': 4-d vectors, channels reversed, optionally failing after some calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__("channel-test-embedder", 4, batch_size=2)
        self.calls = 0
        self.fail_after = fail_after

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("killed in the middle of a reindex")
        means = [np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images]
        return np.stack([[m[2], m[1], m[0], 100.0] for m in means])

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        table = {"blue": [1.0, 0, 0, 0], "red": [0, 0, 1.0, 0]}
        return np.asarray([table[t] for t in texts], dtype=np.float32)


@pytest.fixture()
def many(tmp_path) -> Path:
    folder = tmp_path / "many"
    for i in range(12):
        make_image(folder / f"{i:02d}.png", (20 * i, 255 - 20 * i, (50 * i) % 255))
    return folder


def ids_and_scores(hits) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    return [(h.id, round(h.score, 5)) for h in hits]


def test_reindex_resumes_and_searches_keep_the_old_model(tmp_path, many) -> None:
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([many]))
    before = ids_and_scores(search(collection, "red", SearchOptions(k=12)))
    options = IngestOptions(batch_size=2)
    with pytest.raises(RuntimeError, match="killed"):
        reindex(collection, ChannelEmbedder(fail_after=2), options=options)
    assert collection.index("channel-test-embedder").entry.state == "building"
    partial = collection.index("channel-test-embedder").store.count()
    assert 0 < partial < 12
    # searches still use the old model, untouched
    assert ids_and_scores(search(collection, "red", SearchOptions(k=12))) == before
    with pytest.raises(InvalidInputError, match="still being built"):
        collection.activate("channel-test-embedder")

    result = reindex(collection, ChannelEmbedder(), options=options)  # resumed
    assert result.ingest.skipped == partial and result.ingest.indexed == 12 - partial
    new = collection.index(result.index)
    assert new.store.count() == 12 and new.entry.state == "ready"
    assert collection.default_index == "default"
    assert ids_and_scores(search(collection, "red", SearchOptions(k=12))) == before
    collection.activate(result.index)
    after = search(collection, "red", SearchOptions(k=12))
    expected = ChannelEmbedder().embed_texts(["red"])[0]
    stored = new.store.get_vectors([after[0].id])[after[0].id]
    assert after[0].score == pytest.approx(float(expected @ stored), abs=1e-5)
    # reopened, the collection searches the activated model
    reopened = open_collection(tmp_path / "c", embedder=ChannelEmbedder())
    assert reopened.default_index == result.index
    assert collection.drop_index("default") == "default"
    assert set(open_collection(tmp_path / "c", embedder=ChannelEmbedder()).indexes) == {
        result.index
    }


def test_new_images_go_into_every_index(tmp_path, many) -> None:
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([many]))
    reindex(collection, ChannelEmbedder())
    make_image(many / "new.png", (1, 2, 250))
    ingest(collection, FolderSource([many]))
    assert [i.store.count() for i in collection.indexes.values()] == [13, 13]


def test_activation_is_atomic_for_a_concurrent_reader(tmp_path, many) -> None:
    root = tmp_path / "space"
    collection = open_collection(root / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([many]))
    name = reindex(collection, ChannelEmbedder()).index
    old = ids_and_scores(search(collection, "red", SearchOptions(k=12, index="default")))
    new = ids_and_scores(search(collection, "red", SearchOptions(k=12, index=name)))
    assert old != new
    workspace = Workspace(root)
    seen: list[list[tuple[str, float]]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            current = workspace.get("c")
            for index in current.indexes.values():  # this test's models are in-memory ones
                if index.name == "default":
                    index.bind(KeyedEmbedder(TEXTS))
                else:
                    index.bind(ChannelEmbedder())
            seen.append(ids_and_scores(search(current, "red", SearchOptions(k=12))))

    thread = threading.Thread(target=reader)
    thread.start()
    while len(seen) < 3:
        pass
    collection.activate(name)
    count = len(seen)
    while len(seen) < count + 3:
        pass
    stop.set()
    thread.join(10)
    assert all(result in (old, new) for result in seen)
    assert seen[0] == old and seen[-1] == new


def test_models_reindex_and_search_by_model_on_the_command_line(
    tmp_path, many, tiny_model, capsys
) -> None:
    from pixseek.demo.factory import ClipShape, build_clip

    other = build_clip(tmp_path / "other-clip", ClipShape(projection_dim=8), seed=3)
    collection = str(tmp_path / "c")
    torch = ("--runtime", "torch")
    assert (
        main(
            [
                "index",
                str(many),
                "--collection",
                collection,
                "--model",
                str(tiny_model),
                *torch,
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(["reindex", "--collection", collection, "--model", str(other), *torch, "--quiet"]) == 0
    )
    assert "is ready; activate it" in capsys.readouterr().out
    assert main(["models", "--collection", collection, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["dim"], r["records"], r["active"]) for r in rows] == [
        ("default", 16, 12, True),
        ("other-clip", 8, 12, False),
    ]
    assert main(["search", "red", "--collection", collection, "--model", str(other), "--json"]) == 0
    by_other = json.loads(capsys.readouterr().out)
    embedder = load_embedder(EmbedderOptions(model=str(other), runtime="torch"))
    opened = open_collection(collection)
    vectors = opened.index("other-clip").store.get_vectors([h["id"] for h in by_other])
    query = embedder.embed_texts(["red"])[0]
    assert [h["score"] for h in by_other] == pytest.approx(
        [float(vectors[h["id"]] @ query) for h in by_other], abs=1e-5
    )
    assert main(["drop-model", "--collection", collection, "--model", "default"]) == 2
    assert "active one" in capsys.readouterr().err
    assert main(["drop-model", "--collection", collection, "--model", str(other)]) == 0
    assert (
        main(["index", str(many), "--collection", collection, "--model", str(other), *torch]) == 2
    )
    assert "reindex" in capsys.readouterr().err


def test_a_separate_text_tower(tmp_path, tiny_model, many) -> None:
    from sentence_transformers import SentenceTransformer

    from pixseek.demo.factory import build_text_tower

    corpus = ["a red photo", "ein rotes Foto", "une photo rouge", "una foto roja"]
    tower = build_text_tower(tmp_path / "text16", dim=16, corpus=corpus)
    options = EmbedderOptions(model=str(tiny_model), runtime="torch", text_model=str(tower))
    embedder = load_embedder(options)
    reference = SentenceTransformer(str(tower), device="cpu").encode(corpus)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.allclose(embedder.embed_texts(corpus), reference, atol=1e-5)
    image_only = load_embedder(EmbedderOptions(model=str(tiny_model), runtime="torch"))
    picture = Image.new("RGB", (40, 30), (200, 10, 10))
    assert np.allclose(embedder.embed_images([picture]), image_only.embed_images([picture]))

    collection = open_collection(tmp_path / "c", options, create=True)
    ingest(collection, FolderSource([many]))
    reopened = open_collection(tmp_path / "c")  # remembers its text tower
    hits = search(reopened, "ein rotes Foto", SearchOptions(k=3))
    stored = reopened.index().store.get_vectors([hits[0].id])[hits[0].id]
    assert hits[0].score == pytest.approx(float(stored @ reference[1]), abs=1e-5)

    wrong = build_text_tower(tmp_path / "text8", dim=8, corpus=corpus)
    with pytest.raises(WrongModelError, match="8-d vectors"):
        load_embedder(
            EmbedderOptions(model=str(tiny_model), runtime="torch", text_model=str(wrong))
        )


class HistogramEmbedder(BatchEmbedder):
    """Colour histograms (4 bins a channel): a picture of one patch matches windows around it."""

    def __init__(self) -> None:
        super().__init__("histogram-test-embedder", 64)

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            bins = (np.asarray(image.convert("RGB")) // 64).reshape(-1, 3)
            codes = bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2]
            rows.append(np.bincount(codes, minlength=64).astype(np.float32))
        return np.stack(rows)

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def test_regions_find_a_patch_in_images_without_boxes(tmp_path, capsys) -> None:
    rng = np.random.default_rng(5)
    folder = tmp_path / "scenes"
    folder.mkdir()
    patch = np.zeros((40, 40, 3), np.uint8)
    patch[..., 0], patch[..., 2] = 250, 250  # magenta, with a checker of black
    patch[::8, :, :] = 0
    with_patch = set()
    for i in range(24):
        base = rng.integers(0, 160, 3)
        pixels = np.clip(rng.normal(base, 30, (120, 160, 3)), 0, 255).astype(np.uint8)
        if i % 3 == 0:
            x, y = int(rng.integers(0, 120)), int(rng.integers(0, 80))
            pixels[y : y + 40, x : x + 40] = patch
            with_patch.add(f"{i:02d}.png")
            if i == 0:
                query_box = (x, y, 40, 40)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    collection = str(tmp_path / "c")
    opened = open_collection(collection, embedder=HistogramEmbedder(), create=True)
    opened.set_regions((0.5, 1 / 3))
    ingest(opened, FolderSource([folder]))
    regions = opened.count(Filter.where({"kind": "object", "source": "region"}))
    assert regions == 24 * (9 + 25)
    query_image = next(
        r for r in opened.records(Filter.where({"kind": "image"})) if r.path.endswith("00.png")
    )
    hits = search(
        opened, Term(RegionQuery(query_image.id, query_box)), SearchOptions(k=200, kind="object")
    )
    assert all(h.record.source == "region" and h.box is not None for h in hits)
    ranked = list(dict.fromkeys(Path(h.path).name for h in hits))
    k = len(with_patch)
    precision = len(set(ranked[:k]) & with_patch) / k
    print(f"region search precision@{k}: {precision:.2f}")
    assert precision >= 0.85
    # re-running adds nothing; changing the image replaces its windows, never duplicates
    again = ingest(opened, FolderSource([folder]))
    assert again.indexed == 0 and opened.count(Filter.where({"source": "region"})) == regions
    Image.new("RGB", (90, 70), (9, 9, 9)).save(folder / "05.png")  # a new size: new windows
    assert ingest(opened, FolderSource([folder])).indexed == 1
    assert opened.count(Filter.where({"source": "region"})) == regions


def test_regions_with_the_model_pixseek_trained(tmp_path) -> None:
    """The same check with the shipped demo model (trained by `pixseek train` on shapes):
    a white cross pasted into a third of 24 noisy scenes, queried by its box."""
    from PIL import ImageDraw

    from pixseek.demo.demo import SHIPPED_MODEL

    rng = np.random.default_rng(5)
    folder = tmp_path / "scenes"
    folder.mkdir()
    with_patch, query_box = set(), (0, 0, 40, 40)
    for i in range(24):
        pixels = np.clip(rng.normal(rng.integers(0, 160, 3), 25, (120, 160, 3)), 0, 255)
        image = Image.fromarray(pixels.astype(np.uint8))
        if i % 3 == 0:
            x, y = int(rng.integers(0, 120)), int(rng.integers(0, 80))
            draw = ImageDraw.Draw(image)
            draw.rectangle((x + 4, y + 15, x + 36, y + 25), fill=(255, 255, 255))
            draw.rectangle((x + 15, y + 4, x + 25, y + 36), fill=(255, 255, 255))
            with_patch.add(f"{i:02d}.png")
            if i == 0:
                query_box = (x, y, 40, 40)
        image.save(folder / f"{i:02d}.png")
    options = EmbedderOptions(model=str(SHIPPED_MODEL), runtime="torch")
    collection = open_collection(tmp_path / "c", options, create=True)
    collection.set_regions((0.5, 1 / 3))
    ingest(collection, FolderSource([folder]))
    first = next(
        r for r in collection.records(Filter.where({"kind": "image"})) if r.path.endswith("00.png")
    )
    hits = search(
        collection, Term(RegionQuery(first.id, query_box)), SearchOptions(k=300, kind="object")
    )
    ranked = list(dict.fromkeys(Path(h.path).name for h in hits))
    k = len(with_patch)
    precision = len(set(ranked[:k]) & with_patch) / k
    print(f"region search with the demo model: precision@{k} {precision:.3f}")
    assert precision >= 0.75
