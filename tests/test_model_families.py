"""A third-party model family, installed as its own distribution with entry-point metadata,
works through the CLI: index, image and object search, duplicates, match, classify; a text
query on its image-only model is a clear error. The family is kept in the manifest and
used again when the collection is reopened without naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_image

PLUGIN = '''
import numpy as np
from pixseek.models import BatchEmbedder
from pixseek.models.base import IMAGE_ONLY


class Histogram(BatchEmbedder):
    """Colour histograms: an image-only model with no text tower and no fixed input size."""

    def __init__(self, name):
        super().__init__(name, 24, capabilities=IMAGE_ONLY)

    def embed_image_batch(self, images):
        rows = []
        for image in images:
            pixels = np.asarray(image.convert("RGB").resize((32, 32)))
            parts = [np.histogram(pixels[..., c], bins=8, range=(0, 256))[0] for c in range(3)]
            rows.append(np.concatenate(parts).astype(np.float32) + 1e-3)
        return np.stack(rows)


def build(options):
    return Histogram(options.model)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding the plugin package and its installed-distribution metadata."""
    site = tmp_path_factory.mktemp("site")
    (site / "pixseek_histogram").mkdir()
    (site / "pixseek_histogram" / "__init__.py").write_text(PLUGIN)
    info = site / "pixseek_histogram-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pixseek-histogram\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[pixseek.embedders]\nhistogram:numpy = pixseek_histogram:build\n"
    )
    return site


def cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "pixseek.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_plugin_family_through_the_cli(
    tmp_path: Path,
    plugin_site: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pixseek.cli.main import main
    from pixseek.models import registry

    photos = tmp_path / "photos"
    for name, colour in {"red": (220, 30, 30), "blue": (20, 40, 220)}.items():
        make_image(photos / name / f"{name}-1.png", colour)
        make_image(photos / name / f"{name}-2.png", tuple(c // 2 + 40 for c in colour))  # type: ignore[arg-type]
    collection = str(tmp_path / "c")

    listed = cli(plugin_site, "models", "--available")
    assert listed.returncode == 0 and "histogram:numpy" in listed.stdout.split()
    assert "hf-clip:onnx" in listed.stdout

    family = ("--family", "histogram", "--model", "histogram-8")
    made = cli(
        plugin_site, "index", str(photos), "--collection", collection, *family,
        "--label-from-folder", "--quiet",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "indexed 4 images" in made.stdout
    manifest = json.loads((tmp_path / "c" / "pixseek.json").read_text())
    assert manifest["indexes"]["default"]["family"] == "histogram"

    # reopened without --family: the manifest's family loads the model
    query = str(photos / "red" / "red-1.png")
    similar = cli(plugin_site, "similar", query, "--collection", collection, "-k", "2", "--json")
    assert similar.returncode == 0, similar.stderr
    hits = json.loads(similar.stdout)
    assert [h["label"] for h in hits] == ["red", "red"]
    # the rest in this process (the same CLI, without a start-up each), the plugin's
    # distribution on the path
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    assert main(["similar", query, "--box", "0,0,32,24", "--collection", collection]) == 0
    capsys.readouterr()
    assert main(["search", "a red square", "--collection", collection]) == 2
    assert "embeds images only" in capsys.readouterr().err
    assert main(["duplicates", "--collection", collection, "--json"]) == 0
    assert "groups" in json.loads(capsys.readouterr().out)
    assert main(["match", query, "--collection", collection, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["matches"]
    assert main(["classify", query, "--collection", collection, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "red"
    assert main(["index", str(photos), "--collection", str(tmp_path / "x"),
                 "--family", "nope", "--model", "x"]) == 2  # fmt: skip
    unknown = capsys.readouterr().err
    assert "no embedder for model family 'nope'" in unknown and "histogram:numpy" in unknown


def test_a_family_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from pixseek.api import ServeSettings, create_app
    from pixseek.models import registry

    plugin: dict[str, object] = {}
    exec(PLUGIN, plugin)
    monkeypatch.setitem(registry._BUILDERS, ("histogram", "numpy"), plugin["build"])
    client = TestClient(create_app(ServeSettings(root=tmp_path)), base_url="http://localhost")
    body = {"name": "h", "model": "histogram-8", "family": "histogram"}
    assert client.post("/collections", json=body).status_code == 201
    unknown = client.post("/collections", json={"name": "x", "model": "m", "family": "nope"})
    assert unknown.status_code == 422 and "histogram:numpy" in unknown.json()["detail"]

    def png(colour: tuple[int, int, int]) -> str:
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    images = [{"data": png(c)} for c in ((200, 10, 10), (10, 10, 200))]
    added = client.post("/collections/h/images", json={"images": images})
    assert added.status_code == 200, added.text
    by_image = client.post("/collections/h/search", json={"image": png((190, 20, 20)), "k": 1})
    assert by_image.status_code == 200
    assert by_image.json()["hits"][0]["id"] == added.json()["ids"][0]
    by_text = client.post("/collections/h/search", json={"text": "red"})
    assert by_text.status_code == 422 and "embeds images only" in by_text.json()["detail"]
