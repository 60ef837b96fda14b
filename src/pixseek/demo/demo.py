"""``pixseek demo``: a collection of synthetic shapes, a model, and example searches,
all made offline on a fresh install.

The model is the small one shipped in the package (made by
``scripts/train_demo_model.py`` with ``pixseek train``), or one trained here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixseek.collection.collection import Collection, exists, open_collection
from pixseek.core.query import SearchOptions
from pixseek.core.records import Hit
from pixseek.demo.factory import ClipShape, build_clip
from pixseek.demo.synthetic import COLOURS, SHAPES, read_captions, write_dataset
from pixseek.ingest import CocoSource, ingest
from pixseek.models.options import EmbedderOptions
from pixseek.search.engine import search

SHIPPED_MODEL = Path(__file__).resolve().parent / "model"
EXAMPLE_COUNT = 3


@dataclass(frozen=True, slots=True)
class DemoOptions:
    directory: Path
    images: int = 400
    train: bool = False
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Demo:
    collection: Collection
    model: str
    captions: dict[str, str]


def train_demo_model(out: Path, work: Path, progress: Any = None, seed: int = 0) -> Path:
    """Train a tiny CLIP from scratch on synthetic captions, through ``pixseek train``'s code."""
    from pixseek.training import TrainOptions, pairs_from_captions, train

    images = work / "training-images"
    if not (images / "captions.jsonl").is_file():
        write_dataset(images, DEMO_TRAINING_IMAGES, seed=seed + 1)
    captions = [row["caption"] for row in read_captions(images)]
    start = build_clip(work / "untrained-model", DEMO_SHAPE, captions, seed=seed)
    collection = open_collection(
        work / "training-collection",
        EmbedderOptions(model=str(start), runtime="torch"),
        create=True,
    )
    ingest(collection, CocoSource(images / "instances.json", images))
    pairs = pairs_from_captions(collection, images / "captions.jsonl")
    options = TrainOptions(
        epochs=DEMO_EPOCHS, batch_size=128, learning_rate=3e-3, seed=seed, patience=8
    )
    train(str(start), pairs, out, options, progress)
    return out


DEMO_SHAPE = ClipShape(
    hidden=64,
    intermediate=128,
    layers=2,
    heads=2,
    vision_hidden=64,
    vision_intermediate=128,
    vision_layers=3,
    vision_heads=2,
    image_size=32,
    patch_size=8,
    projection_dim=32,
    max_text_length=16,
)
DEMO_EPOCHS = 40
DEMO_TRAINING_IMAGES = 2400


def build_demo(options: DemoOptions, progress: Any = None) -> Demo:
    images = options.directory / "images"
    if not (images / "instances.json").is_file():
        write_dataset(images, options.images, seed=options.seed)
    model = SHIPPED_MODEL
    if options.train or not (SHIPPED_MODEL / "config.json").is_file():
        model = options.directory / "model"
        if not (model / "config.json").is_file():
            train_demo_model(model, options.directory / "training", progress)
    root = options.directory / "collections" / "shapes"
    if exists(root):
        collection = open_collection(root)
    else:
        collection = open_collection(root, EmbedderOptions(model=str(model)), create=True)
    ingest(collection, CocoSource(images / "instances.json", images))
    captions = {
        str((images / row["path"]).resolve()): row["caption"] for row in read_captions(images)
    }
    return Demo(collection, str(model), captions)


def example_queries(demo: Demo, count: int = EXAMPLE_COUNT, k: int = 4) -> list[str]:
    """Queries the demo's model answers: among colour-and-shape phrases and captions that
    several images share, those whose top ``k`` images most often show that colour and
    shape (measured here, on this collection), then the most common."""
    counts: dict[str, int] = {}
    for caption in demo.captions.values():
        counts[caption] = counts.get(caption, 0) + 1
    phrases = {f"a {colour} {shape}" for colour in COLOURS for shape in SHAPES}
    candidates = sorted(phrases | {caption for caption, n in counts.items() if n > 1})
    scored = []
    for query in candidates:
        hits = search(demo.collection, query, SearchOptions(k=k, kind="image"))
        shown = [demo.captions.get(hit.record.path, "") for hit in hits]
        right = sum(shows(caption, query) for caption in shown)
        scored.append((-right, -counts.get(query, 0), query))
    return [query for *_, query in sorted(scored)[:count]]


def shows(caption: str, query: str) -> bool:
    """Whether an image with ``caption`` has the colour and the shape ``query`` asks for."""
    words, asked = set(caption.split()), set(query.split())
    wanted = asked & (set(COLOURS) | set(SHAPES))
    return bool(wanted) and wanted <= words


def example_searches(
    demo: Demo, queries: Sequence[str], k: int = 3
) -> Iterator[tuple[str, list[Hit]]]:
    for query in queries:
        yield query, search(demo.collection, query, SearchOptions(k=k, kind="image"))
