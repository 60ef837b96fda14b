"""Distributed ingest on a local Ray cluster gives the same records and vectors as local ingest."""

from __future__ import annotations

import numpy as np
import pytest

from pixseek.cli.main import main
from pixseek.collection import open_collection

pytestmark = pytest.mark.slow


def test_ray_ingest_equals_local_ingest(tmp_path, photo_folder, tiny_model, capsys) -> None:
    pytest.importorskip("ray.data", reason="pip install 'ray[data]' (in the dev extras)")
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    model = ("--model", str(tiny_model), "--runtime", "torch", "--quiet", "--label-from-folder")
    local, distributed = str(tmp_path / "local"), str(tmp_path / "ray")
    assert main(["index", str(photo_folder), "--collection", local, *model]) == 0
    ray = ["--engine", "ray", "--batch-size", "4"]
    assert main(["index", str(photo_folder), "--collection", distributed, *model, *ray]) == 0
    out = capsys.readouterr().out
    assert "indexed 6 images" in out and "1 failed" in out
    a, b = open_collection(local), open_collection(distributed)
    records_a = {r.id: r for r in a.records()}
    records_b = {r.id: r for r in b.records()}
    assert records_a == records_b
    vectors_a = a.index().store.get_vectors(list(records_a))
    vectors_b = b.index().store.get_vectors(list(records_b))
    assert all(np.allclose(vectors_a[i], vectors_b[i], atol=1e-5) for i in records_a)
    assert b.failures.count() == 1
    # a re-run on the cluster skips what is indexed
    assert main(["index", str(photo_folder), "--collection", distributed, *model, *ray]) == 0
    assert "indexed 0 images" in capsys.readouterr().out
