"""The VectorStore contract, run against every backend in STORE_BACKENDS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pixseek.errors import InvalidFilterError, WrongModelError
from pixseek.models import l2_normalize
from pixseek.records import Record
from pixseek.store.filters import Filter, to_sql
from pixseek.store.registry import open_store

STORE_BACKENDS = ["lance"]
DIM = 8


def records(n: int, label_every: int = 2) -> tuple[list[Record], np.ndarray]:
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
            metadata={"split": "val" if i < n // 2 else "train", "tags": ["t" + str(i % 4)]},
        )
        for i in range(n)
    ]
    return rows, vectors


@pytest.fixture(params=STORE_BACKENDS)
def store(request, tmp_path):  # type: ignore[no-untyped-def]
    return open_store(request.param, tmp_path, "records_test", DIM)


def test_upsert_get_count_delete(store) -> None:
    rows, vectors = records(30)
    store.upsert(rows, vectors)
    store.upsert(rows[:10], vectors[:10])
    assert store.count() == 30
    got = store.get(["r0", "r4", "missing"])
    assert set(got) == {"r0", "r4"}
    assert got["r0"].box == (1.0, 2.0, 30.5, 40.25)
    assert got["r0"].metadata["split"] == "val"
    assert np.allclose(store.get_vectors(["r5"])["r5"], vectors[5])
    store.delete(["r0", "r1"])
    assert store.count() == 28
    store.delete_where(Filter.where({"label": "cat"}))
    assert store.count() == store.count(Filter.where({"label": "dog"})) == 14


def test_search_is_exact_cosine_and_filters_keep_k(store) -> None:
    rows, vectors = records(60)
    store.upsert(rows, vectors)
    query = vectors[11]
    hits = store.search(query, 5)
    assert hits[0][0].id == "r11" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    expected = np.argsort(-(vectors @ query))[:5]
    assert [r.id for r, _ in hits] == [f"r{i}" for i in expected]
    dogs = store.search(query, 10, Filter.where({"label": "dog", "split": "val"}))
    assert len(dogs) == 10
    assert all(r.label == "dog" and r.split == "val" for r, _ in dogs)
    tagged = store.search(query, 100, Filter.parse("tags=t1 and kind=image"))
    assert tagged and all("t1" in r.tags and r.kind == "image" for r, _ in tagged)
    not_dog = store.search(query, 100, Filter.parse("label!=dog"))
    assert len(not_dog) == 30 and all(r.label == "cat" for r, _ in not_dog)


def test_scan_streams_everything_with_vectors(store) -> None:
    rows, vectors = records(25)
    store.upsert(rows, vectors)
    seen = {}
    for batch, batch_vectors in store.scan(with_vectors=True):
        for record, vector in zip(batch, batch_vectors, strict=True):
            seen[record.id] = vector
    assert len(seen) == 25 and np.allclose(seen["r7"], vectors[7])


def test_refuses_vectors_of_another_dimension(store) -> None:
    rows, _ = records(2)
    with pytest.raises(WrongModelError):
        store.upsert(rows, np.zeros((2, DIM + 1), dtype=np.float32))


def test_filter_syntax_and_escaping() -> None:
    flt = Filter.parse("label='it''s',cat and split!=train")
    assert to_sql(flt) == (
        "label IN ('it''''s', 'cat') AND (split IS NULL OR split NOT IN ('train'))"
    )
    with pytest.raises(InvalidFilterError, match="filterable fields"):
        Filter.parse("colour=red")
    with pytest.raises(InvalidFilterError, match="cannot parse"):
        Filter.parse("label dog")


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_persists_across_processes(backend, tmp_path) -> None:
    rows, vectors = records(20)
    store = open_store(backend, tmp_path, "records_test", DIM)
    store.upsert(rows, vectors)
    store.persist()
    here = [r.id for r, _ in store.search(vectors[3], 5)]
    script = textwrap.dedent(f"""
        import numpy as np
        from pixseek.store.registry import open_store
        store = open_store({backend!r}, __import__("pathlib").Path({str(tmp_path)!r}),
                           "records_test", {DIM})
        query = np.array({vectors[3].tolist()!r}, dtype=np.float32)
        print(",".join(r.id for r, _ in store.search(query, 5)), store.count())
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [",".join(here), "20"]


def test_lance_indexes_ids_of_large_tables(tmp_path, monkeypatch) -> None:
    from pixseek.store import lance

    monkeypatch.setattr(lance, "ID_INDEX_FROM", 20)
    store = open_store("lance", tmp_path, "records_test", DIM)
    rows, vectors = records(30)
    store.upsert(rows[:25], vectors[:25])
    store.persist()
    assert store._indexed("id")
    store.upsert(rows[25:], vectors[25:])  # rows the index has not seen yet
    assert set(store.get(["r3", "r27"])) == {"r3", "r27"}
    store.persist()
    assert set(store.get(["r28"])) == {"r28"} and store.count() == 30
