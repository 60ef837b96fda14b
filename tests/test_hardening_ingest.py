"""Ingest and CLI defects found as an attacker and a new user: each test failed before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.core.errors import CollectionBusyError, ImageDecodeError
from pixseek.core.filters import Filter
from pixseek.core.paths import local_path
from pixseek.core.query import RegionQuery, SearchOptions, Term
from pixseek.imaging.decode import decode_image, read_image_bytes
from pixseek.ingest import FolderSource, IngestOptions, ingest
from pixseek.search import search
from tests.conftest import KeyedEmbedder, make_image

TEXTS = {"red": [1.0, 0, 0]}


def cli(*args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "pixseek.cli", *map(str, args)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_two_concurrent_index_runs_never_duplicate(tmp_path, tiny_model) -> None:
    folder = tmp_path / "many"
    for i in range(120):
        make_image(folder / f"{i:03d}.png", (i * 2 % 255, 80, 200 - i))
    collection = tmp_path / "c"
    args = ("index", folder, "--collection", collection, "--model", tiny_model)
    first = cli(*args, "--runtime", "torch", "--quiet", "--batch-size", "8")
    second = cli(*args, "--runtime", "torch", "--quiet", "--batch-size", "8")
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    opened = open_collection(collection)
    assert opened.index().store.count() == 120  # rows, not distinct ids: duplicates would show
    assert len({r.id for r in opened.records()}) == 120
    indexed = [int(out.split("indexed ")[1].split()[0]) for out, _ in outs]
    assert sorted(indexed) == [0, 120]  # the second run waited, then found nothing to do


def test_a_second_writer_waits_and_readers_never_do(tmp_path, photo_folder) -> None:
    root = tmp_path / "c"
    writer = open_collection(root, embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(writer, FolderSource([photo_folder]))
    other = open_collection(root, embedder=KeyedEmbedder(TEXTS))
    with writer.writing():
        busy = pytest.raises(CollectionBusyError, match="another process is writing")
        with busy, other.writing(timeout=0.2):
            pass
        assert other.count() == 6  # reading needs no lock
        assert other.get(next(iter(other.records())).id)
    with other.writing(timeout=0.2):  # released: the next writer gets in
        pass


def test_sync_keeps_records_under_an_unreadable_folder(tmp_path, photo_folder, monkeypatch) -> None:
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([photo_folder]))
    from pixseek.ingest.sources import folder as folder_module

    real_scandir = os.scandir
    unreadable = photo_folder / "warm"

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(folder_module.os, "scandir", scandir)
    report = ingest(collection, FolderSource([photo_folder]), IngestOptions(sync=True))
    assert report.removed == 0
    assert collection.count(Filter.where({"kind": "image"})) == 6
    failures = {f.path: f.error for f in collection.failures.list()}
    assert "cannot list folder" in failures[str(unreadable)]


def test_symlink_loops_fail_alone_and_undecodable_names_are_kept(tmp_path, photo_folder) -> None:
    (photo_folder / "loop.jpg").symlink_to(photo_folder / "loop.jpg")
    (photo_folder / "cool" / "up").symlink_to(photo_folder, target_is_directory=True)
    raw_name = os.path.join(os.fsencode(photo_folder), b"caf\xe9.jpg")
    with open(raw_name, "wb") as handle:
        handle.write((photo_folder / "warm" / "red.jpg").read_bytes())
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    for run in range(2):  # and again on a re-run, which finds it indexed
        report = ingest(collection, FolderSource([photo_folder]))
        assert collection.count(Filter.where({"kind": "image"})) == 7
        assert report.indexed == (7 if run == 0 else 0)
        names = {Path(f.path).name for f in report.failures}
        assert names == {"loop.jpg"}, names
    logged = {Path(f.path).name for f in collection.failures.list()}
    assert logged == {"loop.jpg"}
    stored = [r for r in collection.records() if r.path.startswith("bytes:")]
    assert len(stored) == 1 and stored[0].path.endswith("/caf%E9.jpg")
    assert os.fsencode(local_path(stored[0].path)) == raw_name
    # searching by it reads the file back; --sync keeps it (its file is there)
    region = RegionQuery(stored[0].id, (0.0, 0.0, 64.0, 48.0))
    hits = search(collection, [Term(region)], SearchOptions(k=1, kind="image"))
    assert hits[0].id == stored[0].id
    synced = ingest(collection, FolderSource([photo_folder]), IngestOptions(sync=True))
    assert synced.removed == 0


def test_index_fails_when_nothing_could_be_indexed(
    tmp_path, photo_folder, tiny_model, capsys
) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not an image at all")
    model = ("--model", str(tiny_model), "--runtime", "torch", "--quiet")
    code = main(["index", str(junk), "--collection", str(tmp_path / "c"), *model])
    assert code == 1 and "no image could be indexed" in capsys.readouterr().err
    coco = tmp_path / "instances_x.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "elsewhere/a.jpg"}]}))
    args = ["index", str(photo_folder), "--coco", str(coco), "--collection", str(tmp_path / "d")]
    assert main([*args, *model]) == 2
    assert "none of the first 1 images" in capsys.readouterr().err
    assert main(["index", str(photo_folder), "--collection", str(tmp_path / "e"), *model]) == 0
    # a COCO file naming some of the folder's images: the others were left out unsaid
    some = {"images": [{"id": 1, "file_name": "warm/red.jpg"}], "annotations": []}
    coco.write_text(json.dumps(some))
    assert main([*args[:-1], str(tmp_path / "f"), *model]) == 0
    assert "5 image files in" in capsys.readouterr().err


def test_huge_and_fake_files_are_refused_before_they_are_read(tmp_path) -> None:
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as handle:  # sparse: 2 GiB on paper, nothing on disk
        handle.truncate(2 * 1024**3)
    fake = tmp_path / "fake.jpg"
    with open(fake, "wb") as handle:
        handle.write(b"#!/bin/sh\n" + b"x" * (50 * 1024 * 1024))
    tracemalloc.start()
    with pytest.raises(ImageDecodeError, match="limit"):
        read_image_bytes(huge)
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        read_image_bytes(fake)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1024 * 1024, peak


def test_bomb_pngs_are_refused_from_their_header() -> None:
    import io

    buffer = io.BytesIO()
    Image.new("L", (9400, 9400)).save(buffer, "PNG")  # ~90 KB, 88 Mpx
    tracemalloc.start()
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(buffer.getvalue())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, peak


def test_large_jpegs_are_drafted_under_the_budget(tmp_path) -> None:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (7000, 5000), (10, 200, 30)).save(buffer, "JPEG")  # 35 Mpx: over budget
    image = decode_image(buffer.getvalue())
    assert image.width * image.height <= 25_000_000 and image.getpixel((5, 5))[1] > 150


def test_32_bit_integer_images_keep_their_values(tmp_path) -> None:
    values = np.arange(64 * 48, dtype=np.int32).reshape(48, 64) % 256
    path = tmp_path / "eight-bit-in-i.tiff"
    Image.fromarray(values, mode="I").save(path)
    decoded = np.asarray(decode_image(path.read_bytes()))
    assert decoded[..., 0].max() == 255 and np.array_equal(decoded[..., 0], values)
    wide = np.arange(64 * 48, dtype=np.int32).reshape(48, 64) * 20  # up to 61420
    path = tmp_path / "wide.tiff"
    Image.fromarray(wide, mode="I").save(path)
    decoded = np.asarray(decode_image(path.read_bytes()))[..., 0]
    assert decoded.min() == 0 and decoded.max() == 255


def test_where_and_box_parsing(tmp_path, photo_folder, tiny_model, capsys) -> None:
    collection = tmp_path / "c"
    model = ("--model", str(tiny_model), "--runtime", "torch")
    common = ("--collection", str(collection), *model)
    assert main(["index", str(photo_folder), "--quiet", "--label-from-folder", *common]) == 0
    capsys.readouterr()

    def hits(*args: str) -> list[dict[str, object]]:
        assert main(["search", "red", "--json", *args, "--collection", str(collection)]) == 0
        return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]

    single = hits("--where", "label=warm")
    assert single and hits("--where", "label==warm") == single
    assert (
        main(["search", "red", "--where", "label = = warm", "--collection", str(collection)]) == 2
    )
    assert "cannot parse filter" in capsys.readouterr().err
    image = single[0]
    box = f"-5,-5,{int(image['width']) // 2},{int(image['height']) // 2}"
    args = ["similar", "--id", str(image["id"]), "--box", box, "--json", "--collection"]
    assert main([*args, str(collection)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) and "clipped" in captured.err


def test_help_is_for_users(capsys) -> None:
    from pixseek.cli.main import build_parser

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "pixseek index ~/Pictures" in text and "thin face" not in text
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, sub in commands.choices.items()  # type: ignore[union-attr]
        for action in sub._actions
        if not action.help and action.dest != "help"
    ]
    assert not missing, missing


def test_info_shows_runtime_and_precision(tmp_path, photo_folder, tiny_model, capsys) -> None:
    common = ["--collection", str(tmp_path / "c"), "--model", str(tiny_model)]
    assert main(["index", str(photo_folder), "--quiet", *common, "--runtime", "torch"]) == 0
    capsys.readouterr()
    assert main(["info", "--collection", str(tmp_path / "c")]) == 0
    assert "runtime:    torch (fp32)" in capsys.readouterr().out


def test_a_writer_in_another_thread_waits_its_turn(tmp_path, photo_folder) -> None:
    """Two writers in one process (server threads) serialise instead of failing."""
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    order: list[str] = []
    with collection.writing():
        thread = threading.Thread(
            target=lambda: (collection.writing().__enter__(), order.append("second"))
        )
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]
