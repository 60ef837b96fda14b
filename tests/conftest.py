"""Shared fixtures: tiny CLIP checkpoints built locally, real photos when present."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.collection.collection import Collection, open_collection
from pixseek.demo.factory import build_clip
from pixseek.models import BatchEmbedder, EmbedderOptions, load_embedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO = DATA / "coco-mini"
CALTECH = DATA / "caltech101" / "101_ObjectCategories"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    return path


@pytest.fixture(scope="session")
def coco() -> Path:
    return require(COCO)


@pytest.fixture(scope="session")
def coco_images(coco: Path) -> list[Path]:
    return sorted((coco / "val2017").glob("*.jpg"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CLIP saved with save_pretrained, loaded like any user model."""
    return build_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture(scope="session")
def torch_embedder(tiny_model: Path):  # type: ignore[no-untyped-def]
    return load_embedder(EmbedderOptions(model=str(tiny_model), runtime="torch"))


def stable_folder(name: str) -> Path:
    """An empty folder whose absolute path is the same in every run. Image ids follow
    absolute paths, and so does which images or judgements are held out; a test whose
    outcome rests on that split would otherwise change with pytest's run counter in its
    temporary paths (a training test passed or failed by which run it was)."""
    folder = Path(tempfile.gettempdir()) / f"pixseek-tests-{os.getuid()}" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def make_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(sum(color))
    pixels = np.clip(rng.normal(0, 12, (size[1], size[0], 3)) + color, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture()
def photo_folder(tmp_path: Path) -> Path:
    """Six small generated photos in two class folders."""
    root = tmp_path / "photos"
    colors = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 220)}
    for name, color in colors.items():
        folder = "warm" if name == "red" else "cool"
        make_image(root / folder / f"{name}.jpg", color)
        make_image(root / folder / f"{name}-2.png", tuple(c // 2 + 40 for c in color))  # type: ignore[arg-type]
    return root


@pytest.fixture()
def collection(tmp_path: Path, torch_embedder) -> Collection:  # type: ignore[no-untyped-def]
    return open_collection(tmp_path / "collection", embedder=torch_embedder, create=True)


class KeyedEmbedder(BatchEmbedder):
    """Known vectors: texts by a table, images by their mean colour (for exact expectations)."""

    def __init__(self, texts: dict[str, Sequence[float]], dim: int = 3) -> None:
        super().__init__("keyed-test-embedder", dim)
        self.texts = texts

    def embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images])

    def embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray([self.texts[text] for text in texts], dtype=np.float32)


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Milvus standalone server on loopback (the ``milvus`` package), for the session."""
    try:
        from milvus import default_server
    except ImportError:
        pytest.skip("the milvus server package is not installed (pip install -e '.[dev]')")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    default_server.set_base_dir(str(tmp_path_factory.mktemp("milvus")))
    # the query node searches newly built graphs after 1 s, not 10 (the server's default,
    # which its package's settings do not reach): each store persist waits for that
    template = default_server.config.template_text
    handoff = "  checkHandoffInterval: 5000\n"
    if template.count(handoff) == 1:
        default_server.config.template_text = template.replace(
            handoff, handoff + "  updateNextTargetInterval: 1\n"
        )
    default_server.listen_port = port
    default_server.start()
    try:
        yield f"milvus://127.0.0.1:{port}"
    finally:
        default_server.stop()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a test module that trains a tiny model: the same summation
    order every run (two threads sent a training test to either side of its bar), and a
    model this small trains fastest so, whatever else the cores run."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
