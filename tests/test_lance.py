"""LanceDB specifics: its SQL compiler, id index, cross-process reads and old tables."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pixseek.core.errors import InvalidFilterError
from pixseek.core.filters import Filter
from pixseek.stores.contract import DIM, sample
from pixseek.stores.lance import store as lance
from pixseek.stores.lance.sql import to_sql
from pixseek.stores.registry import open_store


def test_filter_sql_and_escaping() -> None:
    flt = Filter.parse("label='it''s',cat and split!=train")
    assert to_sql(flt) == (
        "label IN ('it''s', 'cat') AND (split IS NULL OR split NOT IN ('train'))"
    )
    assert to_sql(Filter.parse("tags=a")) == "array_has_any(tags, ['a'])"
    assert to_sql(Filter.parse("label=a and split=b or tags in (x, 'y z')")) == (
        "((label IN ('a') AND split IN ('b')) OR (array_has_any(tags, ['x', 'y z'])))"
    )
    assert to_sql(Filter.parse("label=traffic light or path=/p/img (1).jpg")) == (
        "((label IN ('traffic light')) OR (path IN ('/p/img (1).jpg')))"
    )
    assert to_sql(Filter.parse("(label=a or label=b) and kind not in (object)")) == (
        "((label IN ('a')) OR (label IN ('b'))) AND (kind IS NULL OR kind NOT IN ('object'))"
    )
    with pytest.raises(InvalidFilterError, match="filterable fields"):
        Filter.parse("colour=red")
    with pytest.raises(InvalidFilterError, match="cannot parse"):
        Filter.parse("label dog")


def test_persists_across_processes(tmp_path: Path) -> None:
    rows, vectors = sample(20)
    location = str(tmp_path / "lance")
    store = open_store(location, "records_test", DIM)
    store.upsert(rows, vectors)
    store.persist()
    here = [r.id for r, _ in store.search(vectors[3], 5)]
    script = textwrap.dedent(f"""
        import numpy as np
        from pixseek.stores.registry import open_store
        store = open_store({location!r}, "records_test", {DIM})
        query = np.array({vectors[3].tolist()!r}, dtype=np.float32)
        print(",".join(r.id for r, _ in store.search(query, 5)), store.count())
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [",".join(here), "20"]


def test_indexes_ids_of_large_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lance, "ID_INDEX_FROM", 20)
    store = open_store(str(tmp_path), "records_test", DIM)
    rows, vectors = sample(30)
    store.upsert(rows[:25], vectors[:25])
    store.persist()
    assert store._indexed("id")  # type: ignore[attr-defined]
    store.upsert(rows[25:], vectors[25:])  # rows the index has not seen yet
    assert set(store.get(["r3", "r27"])) == {"r3", "r27"}
    store.persist()
    assert set(store.get(["r28"])) == {"r28"} and store.count() == 30


def test_tables_with_the_old_score_column_are_upgraded(tmp_path: Path) -> None:
    """Tables written before ``score`` became ``confidence``, and before the ``outcome``
    filter column, open and keep their values."""
    import lancedb

    from pixseek.stores.lance.schema import records_to_arrow

    rows, vectors = sample(6)
    table = records_to_arrow(rows, vectors, DIM)
    table = table.rename_columns(["score" if n == "confidence" else n for n in table.column_names])
    table = table.drop_columns(["outcome"])  # a filter column added later
    lancedb.connect(str(tmp_path)).create_table("old", data=table)
    store = open_store(str(tmp_path), "old", DIM)
    assert store.get(["r0"])["r0"].confidence == 0.5
    assert store.get(["r1"])["r1"].confidence is None
    assert store.count(Filter.parse("outcome=FN")) == 0
    rows[1] = replace(rows[1], metadata={**rows[1].metadata, "outcome": "FN"})
    store.upsert(rows[1:2], vectors[1:2])
    assert [r.id for r, _ in store.search(vectors[0], 10, Filter.parse("outcome=FN"))] == ["r1"]


def test_hnsw_beside_large_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ANN_FROM rows searches go through the HNSW graph, re-ranked exactly; writes keep
    it in step; another process's writes are searched exactly until the next persist."""
    from pixseek.core.vectors import l2_normalize
    from pixseek.stores.lance.ann import HnswSidecar

    monkeypatch.setattr(lance, "ANN_FROM", 100)
    rows, _ = sample(400)
    vectors = l2_normalize(np.random.default_rng(2).normal(size=(400, DIM)))
    location = str(tmp_path / "lance")
    store = open_store(location, "big", DIM)
    store.upsert(rows, vectors)
    store.persist()
    assert (tmp_path / "lance" / "big.hnsw").is_file()
    calls: list[int] = []
    original = HnswSidecar.query
    monkeypatch.setattr(
        HnswSidecar, "query", lambda self, v, k: calls.append(k) or original(self, v, k)
    )

    def exact(query: np.ndarray, allowed: list[int], k: int = 10) -> list[str]:
        scores = vectors[allowed] @ query
        return [rows[allowed[i]].id for i in np.argsort(-scores)[:k]]

    everyone = list(range(400))
    for q in range(0, 400, 40):
        assert [r.id for r, _ in store.search(vectors[q], 10)] == exact(vectors[q], everyone)
    assert len(calls) == 10
    dogs = [i for i in everyone if rows[i].label == "dog"]  # half the rows: through HNSW
    assert [r.id for r, _ in store.search(vectors[5], 10, Filter.parse("label=dog"))] == exact(
        vectors[5], dogs
    )
    calls.clear()
    rare = Filter.parse("id=r1,r2,r3")  # selective: exact, and all three come back
    assert {r.id for r, _ in store.search(vectors[0], 10, rare)} == {"r1", "r2", "r3"}
    assert not calls
    # writes in this process keep the graph in step
    store.upsert(rows[7:8], -vectors[7:8])
    assert store.search(-vectors[7], 1)[0][0].id == "r7" and calls
    store.delete(["r7"])
    assert "r7" not in [r.id for r, _ in store.search(-vectors[7], 10)]
    # another handle (process) writes: this one searches exactly, still right
    other = open_store(location, "big", DIM)
    other.upsert(rows[9:10], -vectors[9:10])
    store.refresh()
    calls.clear()
    assert store.search(-vectors[9], 1)[0][0].id == "r9" and not calls
    other.persist()  # rebuilds and saves the graph for the new version
    store.refresh()
    assert store.search(-vectors[9], 1)[0][0].id == "r9" and calls
