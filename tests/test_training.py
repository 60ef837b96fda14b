"""Training a tiny CLIP from scratch with ``pixseek train``, measured through index + search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixseek.cli import main
from pixseek.collection.collection import open_collection
from pixseek.demo.demo import DEMO_SHAPE
from pixseek.demo.factory import build_clip
from pixseek.demo.synthetic import write_dataset
from pixseek.ingest import CocoSource, ingest
from pixseek.models import EmbedderOptions
from pixseek.search import SearchOptions, search
from pixseek.training import TrainOptions, pairs_from_captions, train
from pixseek.training.loop import trainable

pytestmark = pytest.mark.slow


def captions_of(folder: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in (folder / "captions.jsonl").open()]
    return {str((folder / row["path"]).resolve()): row["caption"] for row in rows}


def index(root: Path, model: Path, images: Path):  # type: ignore[no-untyped-def]
    collection = open_collection(
        root, EmbedderOptions(model=str(model), runtime="torch"), create=True
    )
    ingest(collection, CocoSource(images / "instances.json", images))
    return collection


def recall_at_5(collection, captions: dict[str, str]) -> float:  # type: ignore[no-untyped-def]
    """Share of held-out captions with an image of exactly that caption in the top 5."""
    queries = sorted(set(captions.values()))
    hits = 0
    for query in queries:
        found = search(collection, query, SearchOptions(k=5, kind="image"))
        hits += any(captions[hit.path] == query for hit in found)
    return hits / len(queries)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("shapes")
    train_images = write_dataset(root / "train", 2400, seed=1)
    held_out = write_dataset(root / "held-out", 120, seed=2)
    corpus = [json.loads(line)["caption"] for line in (train_images / "captions.jsonl").open()]
    start = build_clip(root / "untrained", DEMO_SHAPE, corpus, seed=0)
    return root, train_images, held_out, start


@pytest.fixture(scope="module")
def shapes_pairs(shapes, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The training images' (image, caption) pairs, indexed once for the tests that train
    a step or two on a few of them."""
    _, train_images, _, start = shapes
    collection = index(tmp_path_factory.mktemp("pairs") / "col", start, train_images)
    return pairs_from_captions(collection, train_images / "captions.jsonl")


def test_trained_model_finds_shapes_the_untrained_one_cannot(shapes, capsys) -> None:
    root, train_images, held_out, start = shapes
    training_set = index(root / "train-col", start, train_images)
    code = main(
        [
            "train",
            "--collection",
            str(training_set.root),
            "--out",
            str(root / "trained"),
            "--captions",
            str(train_images / "captions.jsonl"),
            "--epochs",
            "40",
            "--lr",
            "3e-3",
            "--batch-size",
            "128",
            "--seed",
            "0",
            "--patience",
            "8",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "saved the model of epoch" in capsys.readouterr().out
    captions = captions_of(held_out)
    trained = recall_at_5(index(root / "trained-col", root / "trained", held_out), captions)
    untrained = recall_at_5(index(root / "untrained-col", start, held_out), captions)
    print(f"held-out text→image recall@5: trained {trained:.3f}, untrained {untrained:.3f}")
    assert trained >= 0.9
    assert untrained <= 0.4


@pytest.mark.parametrize("mode", ["projection", "lit"])
def test_locked_weights_stay_bit_identical(shapes, shapes_pairs, tmp_path, mode) -> None:
    start = shapes[3]
    pairs = shapes_pairs[:200]
    out = tmp_path / mode
    train(str(start), pairs, out, TrainOptions(mode=mode, epochs=1, batch_size=32))
    before, after = load_file(start / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    locked = {name for name in before if not trainable(name, mode)}
    assert locked and not (changed & locked)
    assert changed, "the trainable weights must move"
    if mode == "projection":
        assert changed <= {"visual_projection.weight", "text_projection.weight", "logit_scale"}


def test_training_is_deterministic(shapes, shapes_pairs, tmp_path) -> None:
    start = shapes[3]
    pairs = shapes_pairs[:128]
    options = TrainOptions(epochs=1, batch_size=32, seed=3)
    train(str(start), pairs, tmp_path / "a", options)
    train(str(start), pairs, tmp_path / "b", options)
    a, b = (
        load_file(tmp_path / "a" / "model.safetensors"),
        load_file(tmp_path / "b" / "model.safetensors"),
    )
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_demo_runs_offline_with_the_shipped_model(tmp_path, capsys) -> None:
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--images", "200"]) == 0
    out = capsys.readouterr().out
    assert "demo collection:" in out and out.count('search "') == 3
    first_query = out.split('search "')[1].split('"')[0]
    first_hit = out.split('search "')[1].splitlines()[1].split("  ", 2)[-1].strip()
    assert first_hit == first_query


def test_a_saturated_recall_does_not_stop_training_at_its_first_epoch() -> None:
    """Five held-out images: recall@5 is 1.0 from the first epoch, and every later epoch
    counted as no better, so training stopped after ``patience`` more and kept epoch 1
    while its loss still fell. Training offers (recall@5, mean reciprocal rank): the rank
    breaks ties, and where both are perfect the later epoch is kept and training goes on."""
    import torch

    from pixseek.training.loop import BestEpoch

    model = torch.nn.Linear(2, 2)
    best = BestEpoch(patience=2, validated=True, ceiling=(1.0, 1.0))
    assert not best.offer(model, 1, (1.0, 0.5))
    assert not best.offer(model, 2, (1.0, 0.7)) and best.epoch == 2  # a better rank
    assert not best.offer(model, 3, (1.0, 0.6))
    assert best.offer(model, 4, (1.0, 0.6)) and best.epoch == 2  # two worse: stop
    perfect = BestEpoch(patience=2, validated=True, ceiling=(1.0, 1.0))
    for epoch in range(1, 7):
        assert not perfect.offer(model, epoch, (1.0, 1.0))
    assert perfect.epoch == 6
