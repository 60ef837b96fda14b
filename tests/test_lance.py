"""LanceDB specifics: its SQL compiler, id index, cross-process reads, old tables and the
in-memory index of large tables."""

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
from pixseek.core.records import Record
from pixseek.core.vectors import l2_normalize
from pixseek.stores import knn
from pixseek.stores.contract import DIM, sample
from pixseek.stores.lance import memory as memory_module
from pixseek.stores.lance import store as lance
from pixseek.stores.lance.sql import to_sql
from pixseek.stores.lance.store import LanceStore
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
    import lance as lance_format

    from pixseek.stores.lance.schema import records_to_arrow

    rows, vectors = sample(6)
    table = records_to_arrow(rows, vectors, DIM)
    table = table.rename_columns(["score" if n == "confidence" else n for n in table.column_names])
    table = table.drop_columns(["outcome", "hashes"])  # a filter column, a field added later
    lance_format.write_dataset(table, str(tmp_path / "old.lance"))
    store = open_store(str(tmp_path), "old", DIM)
    assert store.get(["r0"])["r0"].confidence == 0.5
    assert store.get(["r0"])["r0"].hashes == ""
    assert store.get(["r1"])["r1"].confidence is None
    assert store.count(Filter.parse("outcome=FN")) == 0
    rows[1] = replace(rows[1], metadata={**rows[1].metadata, "outcome": "FN"})
    store.upsert(rows[1:2], vectors[1:2])
    assert [r.id for r, _ in store.search(vectors[0], 10, Filter.parse("outcome=FN"))] == ["r1"]


def large_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int = 400
) -> tuple[LanceStore, list[Record], np.ndarray]:
    """A table past ANN_FROM (lowered to 100) with its graph built and saved."""
    monkeypatch.setattr(lance, "ANN_FROM", 100)
    rows, _ = sample(n)
    vectors = l2_normalize(np.random.default_rng(2).normal(size=(n, DIM))).astype(np.float32)
    store = open_store(str(tmp_path / "lance"), "big", DIM)
    assert isinstance(store, LanceStore)
    store.upsert(rows, vectors)
    store.persist()
    return store, rows, vectors


def exact_ids(
    rows: list[Record], vectors: np.ndarray, query: np.ndarray, keep: list[int]
) -> list[str]:
    scores = vectors[keep] @ query
    return [rows[keep[i]].id for i in np.argsort(-scores, kind="stable")[:10]]


def no_exact_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("searched the table exactly instead of the memory index")

    monkeypatch.setattr(LanceStore, "_exact_search", refuse)


def test_large_tables_search_from_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ANN_FROM rows a search is answered from the graph and the columns in memory
    (no table query), with exact cosine scores; filters keep k whenever k rows match."""
    store, rows, vectors = large_store(tmp_path, monkeypatch)
    assert (tmp_path / "lance" / "big.hnsw").is_file()
    no_exact_scans(monkeypatch)
    monkeypatch.setattr(LanceStore, "_select", lambda *a: pytest.fail("read the table"))
    everyone = list(range(len(rows)))
    for q in range(0, 400, 40):
        hits = store.search(vectors[q], 10)
        assert [r.id for r, _ in hits] == exact_ids(rows, vectors, vectors[q], everyone)
        assert hits[0][0] == rows[q] and abs(hits[0][1] - 1.0) < 1e-5
    dogs = [i for i in everyone if rows[i].label == "dog"]
    found = store.search(vectors[5], 10, Filter.parse("label=dog"))
    assert [r.id for r, _ in found] == exact_ids(rows, vectors, vectors[5], dogs)
    rare = store.search(vectors[0], 10, Filter.parse("id=r1,r2,r3"))
    assert {r.id for r, _ in rare} == {"r1", "r2", "r3"}
    # a batch (records taken for all queries at once) returns what one search at a time does
    batch = knn.search_many(store, vectors[:20], 10, Filter.parse("label=dog"))
    assert batch == [store.search(v, 10, Filter.parse("label=dog")) for v in vectors[:20]]


def test_memory_filters_match_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filters evaluated in memory keep exactly the rows the table's SQL keeps: or, in,
    parentheses, negation of absent values, tags."""
    store, _, vectors = large_store(tmp_path, monkeypatch)
    expressions = [
        "label=dog and split=val or tags in (t1, t2) and kind=image",
        "(label=cat or tags=t0) and split=train",
        "id in (r1, r2, r47) or kind=object and label not in (dog)",
        "tags!=t1",
        "outcome!=FN and label=cat",
        "outcome=FN",
    ]
    for expression in expressions:
        flt = Filter.parse(expression)
        memory = {r.id for r, _ in store.search(vectors[0], 400, flt)}
        table = {r.id for r, _ in store._exact_search(vectors[0], 400, flt)}
        assert memory == table and len(memory) == store.count(flt), expression


def test_selective_filters_keep_recall_and_k(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter keeping 1% of the rows returns the exact top k (searched over those rows);
    one keeping half walks the graph with the filter inside and still fills k."""
    monkeypatch.setattr(lance, "ANN_FROM", 100)
    monkeypatch.setattr(memory_module, "EXACT_ROWS", 0)
    n = 3000
    rows = [
        replace(r, label="rare" if i % 100 == 0 else r.label) for i, r in enumerate(sample(n)[0])
    ]
    vectors = l2_normalize(np.random.default_rng(3).normal(size=(n, DIM))).astype(np.float32)
    store = open_store(str(tmp_path), "big", DIM)
    store.upsert(rows, vectors)
    store.persist()
    no_exact_scans(monkeypatch)
    rare = [i for i in range(n) if rows[i].label == "rare"]
    full = 0
    for q in range(0, n, 150):
        hits = store.search(vectors[q], 10, Filter.parse("label=rare"))
        assert [r.id for r, _ in hits] == exact_ids(rows, vectors, vectors[q], rare)
        dog_hits = store.search(vectors[q], 10, Filter.parse("label=dog"))
        assert all(r.label == "dog" for r, _ in dog_hits)
        full += len(dog_hits) == 10
    assert full == len(range(0, n, 150))


WRITER = """
import sys
import numpy as np
from pixseek.stores.registry import open_store
store = open_store(sys.argv[1], "big", {dim})
rows = __import__("pixseek.stores.contract", fromlist=["sample"]).sample(400)[0]
vectors = -np.asarray(np.eye({dim}, dtype=np.float32)[[1, 2]])
store.upsert(rows[9:11], vectors)
store.delete(["r7", "r8"])
"""


def test_fresh_after_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After another process writes, the memory index reads only the rows written since
    its version (and the row ids, as rows were deleted), never scanning exactly."""
    store, _, vectors = large_store(tmp_path, monkeypatch)
    store.search(vectors[0], 10)
    no_exact_scans(monkeypatch)
    monkeypatch.setattr(LanceStore, "_build", lambda *a: pytest.fail("rebuilt the graph"))
    read: list[int] = []
    original = LanceStore._written_since

    def written_since(self: LanceStore, table: object, version: int) -> object:
        got = original(self, table, version)
        read.append(got.num_rows)
        return got

    monkeypatch.setattr(LanceStore, "_written_since", written_since)
    script = WRITER.format(dim=DIM)
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "lance")], check=True)
    store.refresh()
    flipped = -np.eye(DIM, dtype=np.float32)[1]
    assert store.search(flipped, 1)[0][0].id == "r9"
    ids = [r.id for r, _ in store.search(vectors[7], 400)]
    assert "r7" not in ids and "r8" not in ids and len(ids) == 398
    assert read == [2] and store.count() == 398
    memory = store.memory_index()
    assert memory is not None and memory.buffered == 2 and memory.graph.dead == 4
    # a third handle loads the saved graph and catches up the same way
    other = open_store(str(tmp_path / "lance"), "big", DIM)
    assert [r.id for r, _ in other.search(vectors[3], 10)] == [
        r.id for r, _ in store.search(vectors[3], 10)
    ]
    # persist folds the new rows into the graph and saves it for every process
    store.persist()
    assert memory.buffered == 0 and store.search(flipped, 1)[0][0].id == "r9"


def test_tables_without_stable_row_ids_search_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables created before stable row ids have no graph (their row ids move when
    rows are rewritten): searches stay exact and right."""
    import lance as lance_format

    from pixseek.stores.lance.schema import records_to_arrow

    rows, vectors = sample(200)
    table = records_to_arrow(rows, vectors, DIM).replace_schema_metadata(None)
    lance_format.write_dataset(table, str(tmp_path / "old.lance"))
    store = open_store(str(tmp_path), "old", DIM)
    assert isinstance(store, LanceStore)
    monkeypatch.setattr(lance, "ANN_FROM", 10)
    store.persist()
    assert store.memory_index() is None and not (tmp_path / "old.hnsw").exists()
    assert store.search(vectors[4], 1)[0][0].id == "r4"


def test_persist_folds_the_rows_just_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handle that searched while its table was small, then wrote a large batch: persist
    brings its memory up to the table first, so the saved graph holds the batch. (Looking
    the table's version up inside persist once counted as the memory being checked, and
    the batch stayed in every process's flat buffer, scanned whole by each search.)"""
    from pixseek.stores.lance import ann

    monkeypatch.setattr(lance, "ANN_FROM", 100)
    rows, _ = sample(400)
    vectors = l2_normalize(np.random.default_rng(4).normal(size=(400, DIM))).astype(np.float32)
    store = open_store(str(tmp_path / "lance"), "grown", DIM)
    assert isinstance(store, LanceStore)
    store.upsert(rows[:50], vectors[:50])
    store.persist()
    assert store.search(vectors[0], 1)[0][0].id == rows[0].id
    store.upsert(rows[50:], vectors[50:])
    store.persist()
    memory = store.memory_index()
    assert memory is not None and memory.graph.size == 400 and memory.buffered == 0
    saved = ann.saved_stamp(store._graph_path)
    assert saved is not None and saved[1] == 400


def test_a_reader_loads_a_graph_that_grew_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another handle (a CLI beside a server) writes and persists many rows: the reader
    loads the larger saved graph instead of keeping those rows in its flat buffer."""
    monkeypatch.setattr(lance, "RELOAD_AFTER", 100)
    store, rows, vectors = large_store(tmp_path, monkeypatch, n=400)
    reader = open_store(str(tmp_path / "lance"), "big", DIM)
    assert isinstance(reader, LanceStore)
    assert [r.id for r, _ in reader.search(vectors[0], 1)] == [rows[0].id]
    more, _ = sample(700)
    extra = l2_normalize(np.random.default_rng(6).normal(size=(300, DIM))).astype(np.float32)
    store.upsert(more[400:], extra)
    store.persist()
    reader.refresh()
    assert [r.id for r, _ in reader.search(extra[5], 1)] == [more[405].id]
    memory = reader.memory_index()
    assert memory is not None and memory.buffered == 0 and memory.graph.size == 700
