"""Relevance feedback and evaluation, on constructed vectors with known answers."""

from __future__ import annotations

import pytest

from pixseek.collection.collection import open_collection
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.compare import rank
from pixseek.jobs.evaluate import evaluate
from pixseek.search import Feedback, SearchOptions, search
from pixseek.training import pairs_from_labels
from pixseek.training.data import Pair
from tests.conftest import KeyedEmbedder, make_image


@pytest.fixture()
def jaguars(tmp_path):  # type: ignore[no-untyped-def]
    """'jaguar' is ambiguous: halfway between cars (red) and cats (green)."""
    for i in range(12):
        make_image(tmp_path / "photos" / "car" / f"car{i}.png", (230, 10 * i, 10))
        make_image(tmp_path / "photos" / "cat" / f"cat{i}.png", (10 * i, 230, 10))
    prompts = {"a photo of a car": [1, 0.3, 0], "a photo of a cat": [0.3, 1, 0]}
    embedder = KeyedEmbedder({"jaguar": [1, 1, 0], **prompts})
    collection = open_collection(tmp_path / "c", embedder=embedder, create=True)
    ingest(collection, FolderSource((tmp_path / "photos",), label_from_folder=True))
    return collection


def precision_at_10(hits, label: str) -> float:  # type: ignore[no-untyped-def]
    return sum(hit.label == label for hit in hits[:10]) / 10


def test_feedback_raises_precision(jaguars) -> None:
    plain = search(jaguars, "jaguar", SearchOptions(k=10))
    assert precision_at_10(plain, "car") <= 0.6
    car = next(h for h in search(jaguars, "jaguar", SearchOptions(k=24)) if h.label == "car")
    cat = next(h for h in plain if h.label == "cat")
    feedback = Feedback(positives=(car.id,), negatives=(cat.id,))
    marked = search(jaguars, "jaguar", SearchOptions(k=10, feedback=feedback))
    assert precision_at_10(marked, "car") == 1.0
    alone = search(jaguars, [], SearchOptions(k=10, feedback=Feedback(positives=(cat.id,))))
    assert precision_at_10(alone, "cat") == 1.0
    weak = Feedback(positives=(car.id,), negatives=(cat.id,), beta=0.0, gamma=0.0)
    unchanged = search(jaguars, "jaguar", SearchOptions(k=10, feedback=weak))
    assert [h.id for h in unchanged] == [h.id for h in plain]


def test_evaluate_matches_a_hand_computed_example(tmp_path) -> None:
    folder = tmp_path / "photos"
    for name, colour in {
        "red": (230, 10, 10),
        "green": (10, 230, 10),
        "blue": (10, 10, 230),
    }.items():
        make_image(folder / name / f"{name}.png", colour)
    embedder = KeyedEmbedder(
        {
            "r": [1, 0, 0],
            "g": [0.9, 0.1, 0],
            "b": [0, 0, 1],  # 'g' lies closer to red
            "red": [1, 0, 0],
            "green": [1, 0.5, 0],
            "blue": [0, 1, 1],  # green images look 'blue'
        }
    )
    collection = open_collection(tmp_path / "c", embedder=embedder, create=True)
    ingest(collection, FolderSource((folder,), label_from_folder=True))
    ids = {r.label: r for r in collection.page(None, 0, 10)}
    pairs = [
        Pair(ids[label].id, ids[label].path, text, label)
        for label, text in (("red", "r"), ("green", "g"), ("blue", "b"))
    ]
    report = evaluate(collection.index(), pairs, ks=(1, 2))
    # text→image: r→red (1st), g→red then green (2nd), b→blue (1st)
    assert report.text_to_image == {1: pytest.approx(2 / 3), 2: 1.0}
    # image→text: each image's own caption ranks first
    assert report.image_to_text == {1: 1.0, 2: 1.0}
    labelled = pairs_from_labels(collection, templates=("{label}",))
    zero_shot = evaluate(
        collection.index(), labelled, ks=(1,), templates=("{label}",), zero_shot=True
    )
    assert zero_shot.zero_shot_accuracy == pytest.approx(2 / 3)


def test_evaluate_on_coco_captions(coco, torch_embedder, tmp_path, capsys) -> None:
    import json

    from pixseek.cli import main
    from pixseek.ingest import CocoSource

    collection = open_collection(tmp_path / "coco", embedder=torch_embedder, create=True)
    ingest(
        collection, CocoSource(coco / "annotations" / "instances_val2017.json", coco / "val2017")
    )
    captions = coco / "annotations" / "captions_val2017.json"
    expected = json.loads(captions.read_text())
    code = main(
        ["evaluate", "--collection", str(collection.root), "--captions", str(captions), "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == len({a["image_id"] for a in expected["annotations"]})
    assert report["texts"] == len({a["caption"].strip() for a in expected["annotations"]})
    for direction in ("text_to_image", "image_to_text"):
        recalls = [report[direction][k] for k in ("1", "5", "10")]
        assert recalls == sorted(recalls) and all(0 <= r <= 1 for r in recalls)


def test_a_candidate_is_ranked_on_the_images_its_rivals_are(jaguars) -> None:
    """The collection's own model, given as a candidate, scores what its index scores:
    both are measured on the same sample (it had been scored on 10 images against the
    index's 24, where a recall is higher whatever the model)."""
    pairs = pairs_from_labels(jaguars)
    rows = rank(jaguars, pairs, candidates=[jaguars.index().embedder], sample=10)
    index, candidate = sorted(rows, key=lambda r: r.index.startswith("("))
    assert index.truth is not None and candidate.truth is not None
    assert index.truth.images == candidate.truth.images == 10
    assert index.truth.text_to_image == candidate.truth.text_to_image
    assert index.score == candidate.score and index.by_truth and candidate.by_truth
