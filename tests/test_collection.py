"""Collections: named indexes, the write lock, deletion and manifest migrations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.collection import open_collection
from pixseek.collection.manifest import SCHEMA_VERSION, table_name
from pixseek.core.errors import CollectionExistsError, NotFoundError, WrongModelError
from pixseek.core.filters import Filter
from pixseek.core.query import SearchOptions
from pixseek.ingest import FolderSource, IngestOptions, ingest
from pixseek.models import BatchEmbedder
from pixseek.search import search
from tests.conftest import KeyedEmbedder


class ChannelEmbedder(BatchEmbedder):
    """Another 'model': 4-d vectors from the colour channels in a different order."""

    def __init__(self) -> None:
        super().__init__("channel-test-embedder", 4)

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        means = [np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images]
        return np.stack([[m[2], m[1], m[0], 100.0] for m in means])

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        table = {"blue": [1.0, 0, 0, 0], "red": [0, 0, 1.0, 0]}
        return np.asarray([table[t] for t in texts], dtype=np.float32)


TEXTS = {"red": [1.0, 0, 0], "blue": [0, 0, 1.0]}


def test_a_second_named_index_works_beside_the_first(tmp_path: Path, photo_folder: Path) -> None:
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([photo_folder]))
    second = collection.add_index("channels", ChannelEmbedder())
    assert second.store.count() == 0  # built by ingest, not copied
    report = ingest(collection, FolderSource([photo_folder]), IngestOptions(index="channels"))
    assert report.indexed == 6 and second.store.count() == 6

    default_red = search(collection, "red", SearchOptions(k=1))
    channel_red = search(collection, "red", SearchOptions(k=1, index="channels"))
    assert Path(default_red[0].path).name == "red.jpg"
    assert Path(channel_red[0].path).name == "red.jpg"
    # each index scores in its own model's space
    red = Image.open(photo_folder / "warm" / "red.jpg").convert("RGB")
    for embedder, hit in (
        (KeyedEmbedder(TEXTS), default_red[0]),
        (ChannelEmbedder(), channel_red[0]),
    ):
        expected = float(embedder.embed_texts(["red"])[0] @ embedder.embed_images([red])[0])
        assert hit.score == pytest.approx(expected, abs=1e-4)
    with pytest.raises(NotFoundError, match="no index 'nope'"):
        search(collection, "red", SearchOptions(index="nope"))
    with pytest.raises(CollectionExistsError):
        collection.add_index("channels", ChannelEmbedder())

    info = collection.info()
    assert [(i.name, i.dim, i.records) for i in info.indexes] == [
        ("channels", 4, 6),
        ("default", 3, 6),
    ]
    removed = collection.remove([default_red[0].id])
    assert removed == 1 and second.store.count() == 5 and collection.count() == 5

    reopened = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS))
    assert set(reopened.indexes) == {"default", "channels"}
    assert reopened.index("channels").model == "channel-test-embedder"
    assert reopened.index("channels").store.count() == 5


def test_an_index_refuses_another_model(tmp_path: Path) -> None:
    open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    with pytest.raises(WrongModelError, match="not comparable"):
        open_collection(tmp_path / "c", embedder=ChannelEmbedder())


def test_version_1_manifests_are_migrated(tmp_path: Path, photo_folder: Path) -> None:
    root = tmp_path / "old"
    collection = open_collection(root, embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([photo_folder]))
    name = "keyed-test-embedder"
    old = {
        "schema_version": 1,
        "store": "lance",
        "default_model": name,
        "models": {name: {"dim": 3, "table": table_name(name), "runtime": "x", "precision": "y"}},
        "crop_margin": 0.2,
    }
    (root / "pixseek.json").write_text(json.dumps(old))
    reopened = open_collection(root, embedder=KeyedEmbedder(TEXTS))
    entry = reopened.index().entry
    assert (entry.model, entry.runtime, entry.precision) == (name, "x", "y")
    assert reopened.crop_margin == 0.2 and reopened.count(Filter.where({"kind": "image"})) == 6
    assert search(reopened, "red", SearchOptions(k=1))[0].path.endswith("red.jpg")
    assert SCHEMA_VERSION == 2


def test_another_runtime_asked_for_picks_its_own_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An index made on ONNX int8, searched with ``--runtime torch``: the stored int8 was
    inherited, and torch refused it ("supports fp32 and fp16, not 'int8'")."""
    from pixseek.collection import collection as module
    from pixseek.collection.manifest import IndexEntry
    from pixseek.models.options import EmbedderOptions

    asked: list[EmbedderOptions] = []
    monkeypatch.setattr(module, "load_embedder", asked.append)
    entry = IndexEntry(model="/m", dim=8, table="t", runtime="onnx", precision="int8")
    for given in (
        EmbedderOptions(),
        EmbedderOptions(runtime="torch"),
        EmbedderOptions(runtime="torch", precision="fp16"),
    ):
        module._options_for(entry, given)()
    assert [(o.runtime, o.precision) for o in asked] == [
        ("onnx", "int8"),
        ("torch", "auto"),
        ("torch", "fp16"),
    ]
