from __future__ import annotations

from pathlib import Path

import pytest

from pixseek.collection.collection import open_collection
from pixseek.core.errors import (
    EmptyQueryError,
    InvalidBoxError,
    InvalidFilterError,
    InvalidInputError,
    UnknownIdError,
)
from pixseek.core.filters import Filter
from pixseek.ingest import CocoSource, FolderSource, ingest
from pixseek.search import (
    ImageQuery,
    RecordQuery,
    RegionQuery,
    SearchOptions,
    Term,
    TextQuery,
    parse_term,
    search,
)
from tests.conftest import KeyedEmbedder, make_image


@pytest.fixture(scope="module")
def coco_collection(tmp_path_factory, torch_embedder, coco):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("coco") / "collection"
    collection = open_collection(root, embedder=torch_embedder, create=True)
    annotations = coco / "annotations" / "instances_val2017.json"
    ingest(collection, CocoSource(annotations, coco / "val2017"))
    return collection


def test_query_by_indexed_image_returns_it_first(coco_collection) -> None:
    image = list(coco_collection.records(Filter.where({"kind": "image"})))[3]
    hits = search(coco_collection, Term(RecordQuery(image.id)), SearchOptions(k=5))
    assert hits[0].id == image.id and hits[0].score >= 0.999
    by_file = search(
        coco_collection,
        Term(ImageQuery(Path(image.path).read_bytes())),
        SearchOptions(k=3, kind="image"),
    )
    assert by_file[0].id == image.id and by_file[0].score >= 0.999


def test_query_by_object_id_and_by_drawn_box(coco_collection) -> None:
    objects = list(coco_collection.records(Filter.where({"kind": "object"})))
    # a mid-sized box: a box covering the whole image ties with the image itself
    target = sorted(objects, key=lambda r: r.box[2] * r.box[3])[len(objects) // 2]
    hits = search(coco_collection, Term(RecordQuery(target.id)), SearchOptions(k=5))
    assert hits[0].id == target.id and hits[0].score >= 0.999
    drawn = search(
        coco_collection,
        Term(RegionQuery(target.image_id, target.box)),
        SearchOptions(k=5, kind="object"),
    )
    assert drawn[0].id == target.id and drawn[0].score >= 0.999
    assert drawn[0].box == target.box and drawn[0].label == target.label


def test_label_filter_returns_k_hits_of_that_label(coco_collection) -> None:
    persons = coco_collection.count(Filter.where({"label": "person"}))
    assert persons > 20
    hits = search(
        coco_collection, "people", SearchOptions(k=20, where=Filter.parse("label=person"))
    )
    assert len(hits) == 20 and {hit.label for hit in hits} == {"person"}
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_kind_and_min_score(coco_collection) -> None:
    images = search(coco_collection, "a street", SearchOptions(k=7, kind="image"))
    assert len(images) == 7 and {h.kind for h in images} == {"image"}
    everything = search(coco_collection, "a street", SearchOptions(k=50))
    cut = everything[10].score
    above = search(coco_collection, "a street", SearchOptions(k=50, min_score=cut))
    assert [h.id for h in above] == [h.id for h in everything if h.score >= cut]


def test_bad_queries_raise_typed_errors(coco_collection) -> None:
    image = next(iter(coco_collection.records(Filter.where({"kind": "image"}))))
    with pytest.raises(UnknownIdError):
        search(coco_collection, Term(RecordQuery("no-such-id")))
    with pytest.raises(InvalidBoxError, match="outside"):
        search(coco_collection, Term(RegionQuery(image.id, (image.width + 5, 0, 50, 50))))
    # a box that overlaps the edge is clipped to the image: the same as the clipped box
    edge = search(coco_collection, Term(RegionQuery(image.id, (image.width - 40, -10, 80, 60))))
    inside = search(coco_collection, Term(RegionQuery(image.id, (image.width - 40, 0, 40, 50))))
    assert [h.id for h in edge] == [h.id for h in inside]
    with pytest.raises(EmptyQueryError):
        search(coco_collection, [])
    with pytest.raises(EmptyQueryError):
        search(coco_collection, "   ")
    with pytest.raises(InvalidFilterError):
        search(coco_collection, "x", SearchOptions(where=Filter.parse("colour=red")))


@pytest.fixture()
def colour_collection(tmp_path):  # type: ignore[no-untyped-def]
    embedder = KeyedEmbedder({"yellowish": [1, 1, 0], "green": [0, 1, 0], "red": [1, 0, 0]})
    folder = tmp_path / "colours"
    make_image(folder / "red.png", (230, 10, 10))
    make_image(folder / "yellow.png", (230, 230, 10))
    make_image(folder / "green.png", (10, 230, 10))
    collection = open_collection(tmp_path / "c", embedder=embedder, create=True)
    ingest(collection, FolderSource((folder,)))
    return collection


def names(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(hit.path).stem for hit in hits]


def test_negative_terms_move_results(colour_collection) -> None:
    plain = search(colour_collection, "yellowish", SearchOptions(k=3))
    assert names(plain)[0] == "yellow"
    minus_green = search(colour_collection, [parse_term("+yellowish"), parse_term("-green")])
    assert names(minus_green) == ["red", "yellow", "green"]
    minus_red = search(colour_collection, [parse_term("yellowish"), parse_term("-1*red")])
    assert names(minus_red)[0] == "green"


def test_image_ids_as_weighted_terms(colour_collection) -> None:
    ids = {Path(h.path).stem: h.id for h in search(colour_collection, "red", SearchOptions(k=3))}
    hits = search(
        colour_collection, [parse_term(f"id:{ids['yellow']}"), parse_term(f"-id:{ids['green']}")]
    )
    assert names(hits)[0] == "red"
    with pytest.raises(EmptyQueryError, match="cancel"):
        search(colour_collection, [Term(TextQuery("red")), Term(TextQuery("red"), -1.0)])


def test_parse_term() -> None:
    assert parse_term("dog") == Term(TextQuery("dog"), 1.0)
    assert parse_term("-grass") == Term(TextQuery("grass"), -1.0)
    assert parse_term("+0.5*a cat") == Term(TextQuery("a cat"), 0.5)
    assert parse_term("-id:abc") == Term(RecordQuery("abc"), -1.0)
    with pytest.raises(EmptyQueryError):
        parse_term("-")
    assert parse_term("2*a b").weight == 2.0 and parse_term("-a").weight == -1.0
    with pytest.raises(InvalidInputError, match="characters"):
        parse_term("x" * 5000)  # a huge query is refused before the tokenizer sees it
