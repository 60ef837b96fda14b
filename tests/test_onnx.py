from __future__ import annotations

import numpy as np
import pytest

from pixseek.imaging.decode import load_image_file
from pixseek.models import EmbedderOptions, load_embedder
from pixseek.models.hf_clip.onnx_build import export_dir
from pixseek.models.registry import resolve_runtime

TEXTS = [
    "a",
    "a photo of a dog",
    "taxis",
    "cars waiting for pedestrians to cross the street "
    "next to the big red bus stop in the middle of the city at night",
]


@pytest.fixture(scope="module")
def onnx_fp32(tiny_model):  # type: ignore[no-untyped-def]
    return load_embedder(EmbedderOptions(model=str(tiny_model), runtime="onnx", precision="fp32"))


def test_onnx_fp32_matches_torch(torch_embedder, onnx_fp32, photo_folder) -> None:
    images = [load_image_file(p) for p in sorted(photo_folder.rglob("*.*"))]
    assert (
        np.abs(torch_embedder.embed_images(images) - onnx_fp32.embed_images(images)).max() <= 1e-4
    )
    # texts of different lengths in one padded batch, and alone
    assert np.abs(torch_embedder.embed_texts(TEXTS) - onnx_fp32.embed_texts(TEXTS)).max() <= 1e-4
    alone = np.concatenate([onnx_fp32.embed_texts([t]) for t in TEXTS])
    assert np.abs(torch_embedder.embed_texts(TEXTS) - alone).max() <= 1e-4


def test_int8_keeps_cosine_on_real_photos(tiny_model, torch_embedder, coco_images) -> None:
    int8 = load_embedder(EmbedderOptions(model=str(tiny_model), runtime="onnx", precision="int8"))
    images = [load_image_file(p) for p in coco_images[:40]]
    cosine = (torch_embedder.embed_images(images) * int8.embed_images(images)).sum(axis=1)
    assert cosine.mean() >= 0.99
    assert cosine.min() >= 0.95


def test_export_is_cached_by_model_and_precision(tiny_model, onnx_fp32) -> None:
    folder = export_dir(str(tiny_model), "fp32")
    assert (folder / "image.onnx").is_file() and (folder / "text.onnx").is_file()
    stamp = (folder / "image.onnx").stat().st_mtime_ns
    load_embedder(EmbedderOptions(model=str(tiny_model), runtime="onnx", precision="fp32"))
    assert (folder / "image.onnx").stat().st_mtime_ns == stamp
    assert export_dir(str(tiny_model), "int8") != folder
    assert not list(folder.parent.glob(".export-*"))


def test_automatic_runtime_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from pixseek.models.runtimes import base

    cpu = resolve_runtime(EmbedderOptions(device="cpu"))
    assert (cpu.runtime, cpu.precision) == ("onnx", "int8")
    monkeypatch.setattr(base, "_check_torch_device", lambda *_: None)  # as if a GPU were here
    gpu = resolve_runtime(EmbedderOptions(device="cuda"))
    assert (gpu.runtime, gpu.precision) == ("torch", "fp16")


TEXTS = [
    "a red car",
    "Cars waiting for pedestrians to cross the street, at night, in the rain!",
    "ünïcödé — 東京 taxi",
    "x " * 200,  # longer than the model reads: truncated
    "a",
]


@pytest.mark.parametrize("model_kind", ["tiny", "demo"])
def test_the_light_tokenizer_matches_transformers(tiny_model, model_kind) -> None:
    from pixseek.demo.demo import SHIPPED_MODEL
    from pixseek.models.hf_clip.light import FastTokenizer
    from pixseek.models.hf_clip.loading import load_processor

    model = str(tiny_model if model_kind == "tiny" else SHIPPED_MODEL)
    light = FastTokenizer.load(model)
    assert light is not None
    reference = load_processor(model).tokenizer
    for padding in (True, "max_length"):
        ours = light(TEXTS, padding=padding, truncation=True, max_length=16)
        theirs = reference(
            TEXTS, padding=padding, truncation=True, max_length=16, return_tensors="np"
        )
        for key in ("input_ids", "attention_mask"):
            assert np.array_equal(ours[key], theirs[key]), (padding, key)


@pytest.mark.parametrize(
    "command", [["search", "a red photo"], ["match", "{folder}/a.png", "--quiet"]]
)
def test_a_cli_query_loads_neither_torch_nor_transformers(tmp_path, tiny_model, command) -> None:
    """Start-up time: a text search or an image query on the ONNX runtime needs neither
    library (an image query used to import both to preprocess one image: about 4 of its
    5 seconds; models.hf_clip.pixels)."""
    import subprocess
    import sys

    from pixseek.collection import open_collection
    from pixseek.ingest import FolderSource, ingest
    from pixseek.models import EmbedderOptions
    from tests.conftest import make_image

    folder = tmp_path / "photos"
    make_image(folder / "a.png", (200, 10, 10))
    make_image(folder / "b.png", (10, 200, 10))
    options = EmbedderOptions(model=str(tiny_model), runtime="onnx", precision="fp32")
    ingest(open_collection(tmp_path / "c", options, create=True), FolderSource([folder]))
    argv = [part.format(folder=folder) for part in command]
    script = (
        "import sys; from pixseek.cli.main import main; "
        f"code = main({[*argv, '--collection', str(tmp_path / 'c')]!r}); "
        "print(code, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 False False", out.stdout + out.stderr


def test_ingest_threads_load_the_image_processor_once(tmp_path, tiny_model) -> None:
    """A fresh process: both decode threads reach the lazily loaded image processor (and the
    first import of transformers) at once; every image is indexed."""
    import subprocess
    import sys

    from tests.conftest import make_image

    folder = tmp_path / "photos"
    for i in range(8):
        make_image(folder / f"{i}.png", (30 * i, 200 - 20 * i, 90))
    for run in range(2):
        command = [
            sys.executable, "-m", "pixseek.cli", "index", str(folder),
            "--collection", str(tmp_path / f"c{run}"), "--model", str(tiny_model),
            "--runtime", "onnx", "--precision", "fp32", "--workers", "2", "--quiet",
        ]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "indexed 8 images" in out.stdout and "0 failed" in out.stdout, out.stdout


def test_the_automatic_device_of_a_cpu_only_torch_needs_no_import() -> None:
    """The CPU-only wheel (what the README installs) says so in its version: a new
    collection's device is known without importing torch."""
    import subprocess
    import sys
    from importlib.metadata import version

    if not version("torch").endswith("+cpu"):
        pytest.skip("a torch build with accelerators: it must be asked")
    script = (
        "import sys; from pixseek.models.runtimes.base import select_device; "
        "print(select_device(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "False"], out.stdout + out.stderr
