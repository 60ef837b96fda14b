"""The VectorStore contract (pixseek.stores.contract), run against every backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pixseek.core.filters import Filter
from pixseek.stores.base import VectorStore
from pixseek.stores.contract import CHECKS
from pixseek.stores.registry import open_store


def lance_location(tmp_path: Path) -> str:
    return str(tmp_path / "lance")


def lance_uri(tmp_path: Path) -> str:
    return "lance://" + str(tmp_path / "lance-by-uri")


# backend name -> where its store lives for one test
STORE_BACKENDS: dict[str, Callable[[Path], str]] = {"lance": lance_location, "lance-uri": lance_uri}


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("backend", [*STORE_BACKENDS, "milvus"])
def test_store_contract(backend: str, check, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    if backend == "milvus":
        location = request.getfixturevalue("milvus_server")
    else:
        location = STORE_BACKENDS[backend](tmp_path)
    table = "t_" + uuid.uuid4().hex[:12]  # servers are shared between tests

    def opener(dim: int) -> VectorStore:
        return open_store(location, table, dim)

    check(opener)


def test_a_store_that_breaks_the_contract_is_caught(tmp_path: Path) -> None:
    """The checks can fail: a store whose search ignores filters does not pass."""
    from pixseek.stores.contract import check_search_is_exact_cosine_and_filters_keep_k

    class IgnoresFilters:
        def __init__(self, inner: VectorStore) -> None:
            self.inner = inner

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.inner, name)

        def search(self, vector, k, flt=None):  # type: ignore[no-untyped-def]
            return self.inner.search(vector, k)

    location = lance_location(tmp_path)
    with pytest.raises(AssertionError):
        check_search_is_exact_cosine_and_filters_keep_k(
            lambda dim: IgnoresFilters(open_store(location, "t", dim))  # type: ignore[arg-type,return-value]
        )


def test_milvus_expressions_of_or_in_and_groups() -> None:
    from pixseek.core.filters import Filter
    from pixseek.stores.milvus.expr import to_expr

    assert to_expr(Filter.parse("""label=a and split!=b or tags in (x, 'y"z')""")) == (
        """(((label in ["a"]) and (split not in ["b"])) or """
        """((array_contains_any(tags, ["x", "y\\"z"]))))"""
    )
    assert to_expr(Filter.parse("(label=a or label=b) and kind=image")) == (
        """(((label in ["a"])) or ((label in ["b"]))) and (kind in ["image"])"""
    )


def test_unknown_store_scheme_is_a_clear_error(tmp_path: Path) -> None:
    from pixseek.core.errors import UnknownBackendError

    with pytest.raises(UnknownBackendError, match="unknown store 'nosuch'"):
        open_store("nosuch://host:1", "t", 4)


def test_a_collection_on_milvus(milvus_server, tmp_path, photo_folder, capsys) -> None:  # type: ignore[no-untyped-def]
    """The same collection API over a Milvus server: index, search, filter, remove, reopen."""
    from pixseek.collection import open_collection
    from pixseek.core.filters import Filter
    from pixseek.core.query import SearchOptions
    from pixseek.ingest import FolderSource, ingest
    from pixseek.search import search
    from tests.conftest import KeyedEmbedder

    embedder = KeyedEmbedder({"red": [1.0, 0, 0]})
    collection = open_collection(
        tmp_path / "c", embedder=embedder, create=True, store=milvus_server
    )
    other = open_collection(tmp_path / "d", embedder=embedder, create=True, store=milvus_server)
    report = ingest(collection, FolderSource([photo_folder], label_from_folder=True))
    assert report.indexed == 6 and other.count() == 0  # two collections, one server
    hits = search(collection, "red", SearchOptions(k=3, where=Filter.parse("label=warm")))
    assert Path(hits[0].path).name == "red.jpg" and {h.label for h in hits} == {"warm"}
    assert collection.remove([hits[0].id]) == 1
    reopened = open_collection(tmp_path / "c", embedder=embedder)
    assert reopened.count() == 5 and reopened.info().store == milvus_server


def test_milvus_persist_waits_for_the_graph(
    milvus_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After persist every flushed row is in Milvus's graph and searched through it: right
    after a flush, rows are searched through a temporary coarse index, where a 1% filter
    found 0.48 of its true top 10 at 100,000 rows (0.96 once the graph was built), and for
    some seconds more after the server reports the graph built (0.65 at 20,000 rows, 1.0
    once the query node loaded it). Persist polls the server's index progress until no row
    is pending, then the query node until it searches every row through the graph (a
    segment too small for one is scanned exactly): a real server, then a slow one."""
    import numpy as np

    from pixseek.core.records import Record
    from pixseek.core.vectors import l2_normalize
    from pixseek.stores.milvus import store as milvus_store

    store = open_store(milvus_server, f"wait_{uuid.uuid4().hex[:8]}", 8)
    count = 20_000
    vectors = l2_normalize(np.random.default_rng(0).normal(size=(count, 8))).astype(np.float32)
    rare = np.arange(count) % 100 == 0  # 1% of the rows
    records = [
        Record(
            id=f"r{i}",
            kind="image",
            image_id=f"r{i}",
            path="",
            width=1,
            height=1,
            label="rare" if rare[i] else "common",
        )
        for i in range(count)
    ]
    store.upsert(records, vectors)
    store.persist()
    client: Any = store._client  # type: ignore[attr-defined]
    progress = client.describe_index(store._name, "vector")  # type: ignore[attr-defined]
    assert progress["pending_index_rows"] == 0 and progress["indexed_rows"] == count
    missed = 0
    for query in vectors[:50]:
        scores = np.where(rare, vectors @ query, -np.inf)
        truth = {f"r{i}" for i in np.argsort(-scores)[:10]}
        found = {r.id for r, _ in store.search(query, 10, Filter.parse("label=rare"))}
        missed += len(truth - found)
    assert missed == 0
    store.drop()

    pending = [3000, 1000, 0]

    class SlowServer:
        def flush(self, name: str) -> None:
            pass

        def describe_index(self, name: str, index: str) -> dict[str, int]:
            return {"pending_index_rows": pending.pop(0) if len(pending) > 1 else pending[0]}

    served = [False, False, True]
    monkeypatch.setattr(milvus_store, "INDEX_POLL_S", 0.0)
    slow = object.__new__(milvus_store.MilvusStore)
    slow._client, slow._name = SlowServer(), "slow"
    monkeypatch.setattr(slow, "_served", lambda: served.pop(0))
    slow.persist()
    assert pending == [0] and served == []


def test_milvus_widens_the_graph_walk_for_selective_filters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A filter keeping 1% of the rows walks a graph 100 times as wide as an unfiltered
    search (64) where Milvus walks the graph with it, so that the filtered rows it meets
    are as many; the share is counted once and reused."""
    from pixseek.stores.milvus.store import MAX_EF, MilvusStore

    store = object.__new__(MilvusStore)
    store._shares = {}
    counts = {"": 100_000, "rare": 1_000, "none": 0}
    calls: list[str] = []

    def count(flt: Filter | None = None) -> int:
        key = "" if flt is None else flt.conditions[0].values[0]
        calls.append(key)
        return counts[key]

    monkeypatch.setattr(store, "count", count)
    assert store._breadth(10, None) == 64
    assert store._breadth(10, Filter.parse("label=rare")) == 6400
    assert store._breadth(10, Filter.parse("label=rare")) == 6400
    assert store._breadth(100, Filter.parse("label=rare")) == 10_000
    assert calls.count("rare") == 1
    assert store._breadth(10, Filter.parse("label=none")) == MAX_EF
