"""The contract every :class:`VectorStore` backend must meet, as runnable checks.

A backend's tests call each function of :data:`CHECKS` with a factory that
opens (or re-opens) one table of its store; pixseek's own suite runs them on
every built-in backend, and a third-party backend can run them on its own.
Checks raise ``AssertionError`` with what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pixseek.core.errors import WrongModelError
from pixseek.core.filters import Filter
from pixseek.core.records import Record
from pixseek.core.vectors import Vectors, l2_normalize
from pixseek.stores.base import VectorStore
from pixseek.stores.knn import search_many

DIM = 8
OpenStore = Callable[[int], VectorStore]  # opens the same table each call, for this dimension


def sample(n: int, label_every: int = 2) -> tuple[list[Record], Vectors]:
    """``n`` records (every third an object) with labels, splits, tags and random vectors."""
    rng = np.random.default_rng(7)
    vectors = l2_normalize(rng.normal(size=(n, DIM)))
    rows = [
        Record(
            id=f"r{i}",
            kind="image" if i % 3 else "object",
            image_id=f"r{i - i % 3}",
            path=f"/p/{i}.jpg",
            width=100,
            height=80,
            box=(1.0, 2.0, 30.5, 40.25) if i % 3 == 0 else None,
            label="dog" if i % label_every == 0 else "cat",
            confidence=0.5 if i % 3 == 0 else None,
            metadata={"split": "val" if i < n // 2 else "train", "tags": ["t" + str(i % 4)]},
        )
        for i in range(n)
    ]
    return rows, vectors


def check_upsert_get_count_delete(open_store: OpenStore) -> None:
    store = open_store(DIM)
    rows, vectors = sample(30)
    store.upsert(rows, vectors)
    store.upsert(rows[:10], vectors[:10])  # an upsert replaces, never duplicates
    assert store.count() == 30, store.count()
    got = store.get(["r0", "r4", "missing"])
    assert set(got) == {"r0", "r4"}, set(got)
    assert got["r0"] == rows[0], (got["r0"], rows[0])
    assert np.allclose(store.get_vectors(["r5"])["r5"], vectors[5])
    store.delete(["r0", "r1"])
    assert store.count() == 28
    store.delete_where(Filter.where({"label": "cat"}))
    assert store.count() == store.count(Filter.where({"label": "dog"})) == 14


def check_search_is_exact_cosine_and_filters_keep_k(open_store: OpenStore) -> None:
    store = open_store(DIM)
    rows, vectors = sample(60)
    store.upsert(rows, vectors)
    query = vectors[11]
    hits = store.search(query, 5)
    assert hits[0][0].id == "r11" and abs(hits[0][1] - 1.0) < 1e-5, hits[0]
    expected = [f"r{i}" for i in np.argsort(-(vectors @ query))[:5]]
    assert [r.id for r, _ in hits] == expected
    scores = [s for _, s in hits]
    assert np.allclose(scores, np.sort(vectors @ query)[::-1][:5], atol=1e-5)
    dogs = store.search(query, 10, Filter.where({"label": "dog", "split": "val"}))
    assert len(dogs) == 10, len(dogs)  # a filter never empties a page that k records fill
    assert all(r.label == "dog" and r.split == "val" for r, _ in dogs)
    tagged = store.search(query, 100, Filter.parse("tags=t1 and kind=image"))
    assert tagged and all("t1" in r.tags and r.kind == "image" for r, _ in tagged)
    not_dog = store.search(query, 100, Filter.parse("label!=dog"))
    assert len(not_dog) == 30 and all(r.label == "cat" for r, _ in not_dog)
    # many queries at once (a store's own batch call where it has one) answer as one by one
    for flt in (None, Filter.where({"label": "dog"})):
        each = [store.search(v, 4, flt) for v in vectors[:3]]
        many = search_many(store, vectors[:3], 4, flt)
        assert [[r.id for r, _ in hits] for hits in many] == [[r.id for r, _ in h] for h in each]


def check_filters_with_or_in_and_groups(open_store: OpenStore) -> None:
    """``or`` (``and`` binding tighter), ``in`` lists and parentheses, in every operation."""
    store = open_store(DIM)
    rows, vectors = sample(48)
    store.upsert(rows, vectors)
    cases: dict[str, Callable[[Record], bool]] = {
        "label=dog and split=val or tags in (t1, t2) and kind=image": lambda r: (
            (r.label == "dog" and r.split == "val")
            or (bool({"t1", "t2"} & set(r.tags)) and r.kind == "image")
        ),
        "(label=cat or tags=t0) and split=train": lambda r: (
            (r.label == "cat" or "t0" in r.tags) and r.split == "train"
        ),
        "id in (r1, r2, r47) or kind=object and label not in (dog)": lambda r: (
            r.id in {"r1", "r2", "r47"} or (r.kind == "object" and r.label != "dog")
        ),
    }
    for expression, keep in cases.items():
        flt = Filter.parse(expression)
        expected = {r.id for r in rows if keep(r)}
        assert expected and len(expected) < len(rows), expression  # the case tells apart
        assert store.count(flt) == len(expected), (expression, store.count(flt), len(expected))
        found = {r.id for r, _ in store.search(vectors[0], len(rows), flt)}
        assert found == expected, (expression, sorted(found ^ expected))
        scanned = {r.id for batch, _ in store.scan(flt) for r in batch}
        assert scanned == expected, (expression, sorted(scanned ^ expected))
    either = Filter.where({"label": "cat"}).or_(Filter.where({"id": ["r0", "r2"]}))
    store.delete_where(either)
    assert sorted(r.id for batch, _ in store.scan() for r in batch) == sorted(
        r.id for r in rows if r.label == "dog" and r.id not in {"r0", "r2"}
    )


def check_scan_streams_everything_with_vectors(open_store: OpenStore) -> None:
    store = open_store(DIM)
    rows, vectors = sample(25)
    store.upsert(rows, vectors)
    seen: dict[str, Vectors] = {}
    for batch, batch_vectors in store.scan(with_vectors=True):
        assert batch_vectors is not None
        seen.update({r.id: v for r, v in zip(batch, batch_vectors, strict=True)})
    assert len(seen) == 25 and np.allclose(seen["r7"], vectors[7])
    objects = [r for batch, _ in store.scan(Filter.where({"kind": "object"})) for r in batch]
    assert sorted(r.id for r in objects) == sorted(r.id for r in rows if r.kind == "object")
    page = store.page(Filter.where({"kind": "image"}), 2, 5)
    assert len(page) == 5 and all(r.kind == "image" for r in page)


def check_refuses_vectors_of_another_dimension(open_store: OpenStore) -> None:
    store = open_store(DIM)
    rows, _ = sample(2)
    try:
        store.upsert(rows, np.zeros((2, DIM + 1), dtype=np.float32))
    except WrongModelError:
        return
    raise AssertionError("a store accepted vectors of the wrong dimension")


def check_persists_and_reopens(open_store: OpenStore) -> None:
    store = open_store(DIM)
    rows, vectors = sample(20)
    store.upsert(rows, vectors)
    store.persist()
    again = open_store(DIM)
    assert again.count() == 20
    store.upsert(rows[:1], vectors[:1] * -1)  # a write through another handle...
    again.refresh()  # ...is seen once the reader refreshes
    assert np.allclose(again.get_vectors(["r0"])["r0"], -vectors[0])
    assert [r.id for r, _ in again.search(vectors[3], 5)] == [
        r.id for r, _ in store.search(vectors[3], 5)
    ]


def check_drop_removes_the_table(open_store: OpenStore) -> None:
    store = open_store(DIM)
    rows, vectors = sample(5)
    store.upsert(rows, vectors)
    store.drop()
    assert open_store(DIM).count() == 0  # opening again starts an empty table


CHECKS: tuple[Callable[[OpenStore], None], ...] = (
    check_upsert_get_count_delete,
    check_search_is_exact_cosine_and_filters_keep_k,
    check_filters_with_or_in_and_groups,
    check_scan_streams_everything_with_vectors,
    check_refuses_vectors_of_another_dimension,
    check_persists_and_reopens,
    check_drop_removes_the_table,
)
