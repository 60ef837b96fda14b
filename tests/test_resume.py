"""Kill an ingest with SIGKILL mid-run; re-running the same command finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pixseek.collection.collection import exists, open_collection
from pixseek.core.filters import Filter
from pixseek.ingest import FolderSource, ingest

FILES = 600


def write_images(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"part{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:04d}.png")


def index_command(folder: Path, collection: Path, model: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pixseek.cli",
        "index",
        str(folder),
        "--collection",
        str(collection),
        "--model",
        str(model),
        "--runtime",
        "torch",
        "--batch-size",
        "4",
        "--quiet",
    ]


def count_now(collection: Path) -> int:
    if not exists(collection):
        return 0
    try:
        return open_collection(collection).count()
    except Exception:  # the table may not exist yet
        return 0


def test_kill_and_resume(tmp_path, tiny_model) -> None:
    folder, collection = tmp_path / "images", tmp_path / "col"
    write_images(folder, FILES)
    process = subprocess.Popen(
        index_command(folder, collection, tiny_model),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while count_now(collection) < 40 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    at_kill = count_now(collection)
    assert 40 <= at_kill < FILES, "the kill must land in the middle of the ingest"

    resumed = subprocess.run(
        index_command(folder, collection, tiny_model), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    col = open_collection(collection)
    ids = [r.id for r in col.records()]
    assert len(ids) == len(set(ids)) == FILES
    assert f"{at_kill} unchanged, 0 failed" in resumed.stdout
    indexed = int(resumed.stdout.split("indexed ")[1].split(" ")[0])
    assert indexed == FILES - at_kill


def test_sync_drops_deleted_files_only(collection, photo_folder, tmp_path) -> None:
    other = tmp_path / "elsewhere"
    write_images(other, 2)
    ingest(collection, FolderSource((photo_folder,)))
    ingest(collection, FolderSource((other,)))
    (photo_folder / "warm" / "red.jpg").unlink()
    from pixseek.ingest import IngestOptions

    report = ingest(collection, FolderSource((photo_folder,)), IngestOptions(sync=True))
    assert report.removed == 1
    paths = {r.path for r in collection.records(Filter.where({"kind": "image"}))}
    assert len(paths) == 5 + 2
    assert not any(p.endswith("red.jpg") for p in paths)
    without_sync = ingest(collection, FolderSource((photo_folder / "cool",)))
    assert without_sync.removed == 0 and collection.count() == 7
