"""A feature whose optional package is missing names the extra that installs it, through
the CLI, instead of ending in a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pixseek.cli.main import main


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ("ray", ["--engine", "ray"], "pixseek[ray]"),
        ("pymilvus", ["--store", "milvus://127.0.0.1:9"], "pixseek[milvus]"),
    ],
    ids=["ray", "milvus"],
)
def test_missing_extra_is_named(
    tmp_path: Path,
    photo_folder: Path,
    tiny_model: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    blocked: str,
    args: list[str],
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)  # import of it raises ImportError
    collection = str(tmp_path / "c")
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    assert main(["index", str(photo_folder), "--collection", collection, *model, *args]) == 2
    err = capsys.readouterr().err
    assert f"pip install '{extra}'" in err and blocked in err
    assert "Traceback" not in err
    if blocked == "pymilvus":  # nothing half-made is left behind to trip the next run
        assert not (tmp_path / "c" / "pixseek.json").exists()
