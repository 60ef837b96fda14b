"""Near-duplicates, copy detection and nearest-neighbour classification."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pixseek.cli.main import main
from pixseek.collection import open_collection
from pixseek.core.errors import ImageDecodeError, InvalidInputError
from pixseek.ingest import FolderSource, ingest
from pixseek.jobs.classify import ClassifyOptions, classify_images, evaluate_split
from pixseek.jobs.dedup import DedupOptions, embedding_links, find_duplicates
from pixseek.jobs.match import MatchOptions, match_files, match_image
from tests.conftest import KeyedEmbedder
from tests.test_several_models import HistogramEmbedder

TEXTS = {"red": [1.0, 0, 0]}


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture with structure (a gradient and shapes), so perceptual hashes mean something."""
    rng = np.random.default_rng(seed)
    width, height = size
    top, bottom = rng.integers(0, 256, (2, 3))
    ramp = np.linspace(0, 1, height)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((1, width, 1))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse(
            (x, y, x + int(rng.integers(30, 120)), y + int(rng.integers(30, 100))), fill=colour
        )
    return image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(6):
        scene(seed).save(folder / f"scene{seed}.png")
    (folder / "scene0-copy.png").write_bytes((folder / "scene0.png").read_bytes())
    scene(1).resize((160, 120)).save(folder / "scene1-small.jpg", quality=85)
    return folder


def test_duplicates_by_tier_with_a_keeper(tmp_path, photos) -> None:
    collection = open_collection(tmp_path / "c", embedder=HistogramEmbedder(), create=True)
    ingest(collection, FolderSource([photos]))
    given = DedupOptions(threshold=0.99, phash_distance=8)
    groups = find_duplicates(collection, options=given).groups
    names = [sorted(Path(m.record.path).name for m in g.members) for g in groups]
    assert sorted(names) == [["scene0-copy.png", "scene0.png"], ["scene1-small.jpg", "scene1.png"]]
    by_name = {Path(m.record.path).name: m for g in groups for m in g.members}
    assert by_name["scene1.png"].keeper and not by_name["scene1-small.jpg"].keeper  # larger
    assert by_name["scene1-small.jpg"].tier == "phash"
    assert {by_name["scene0.png"].tier, by_name["scene0-copy.png"].tier} == {"exact"}
    only_embedding = find_duplicates(
        collection, options=DedupOptions(threshold=0.99, tiers=("embedding",))
    ).groups
    assert all(m.tier == "embedding" for g in only_embedding for m in g.members)
    small = next(
        m for g in only_embedding for m in g.members if m.record.path.endswith("small.jpg")
    )
    above = DedupOptions(threshold=min(1.0, small.score + 1e-4), tiers=("embedding",))
    strict = [
        sorted(Path(m.record.path).name for m in g.members)
        for g in find_duplicates(collection, options=above).groups
    ]
    assert ["scene1-small.jpg", "scene1.png"] not in strict  # the threshold is respected


def test_threshold_decides_what_embedding_links(tmp_path) -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(50, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    near = base[:10] + 0.05 * rng.normal(size=(10, 16)).astype(np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    vectors = np.concatenate([base, near])
    cosines = np.sum(base[:10] * near, axis=1)
    for threshold in (0.9, float(np.median(cosines))):
        a, b, scores = embedding_links(vectors, threshold, k=5)
        pairs = {tuple(sorted(p)) for p in zip(a.tolist(), b.tolist(), strict=True)}
        expected = {(i, 50 + i) for i in range(10) if cosines[i] >= threshold}
        assert pairs == expected and (scores >= threshold).all()


def test_match_finds_crops_and_re_encodes(tmp_path, photos) -> None:
    collection = open_collection(tmp_path / "c", embedder=HistogramEmbedder(), create=True)
    collection.set_regions((0.5, 1 / 3))
    ingest(collection, FolderSource([photos]))
    original = scene(3)
    crop = original.crop((30, 20, 290, 220))  # 80% crop, re-encoded at quality 30
    given = MatchOptions(threshold=0.9, phash_distance=8)
    matches = match_image(collection, jpeg(crop, 30), options=given).matches
    assert matches and Path(matches[0].record.path).name == "scene3.png"
    exact = match_image(collection, (photos / "scene2.png").read_bytes(), options=given).matches
    assert exact[0].tier == "exact" and Path(exact[0].record.path).name == "scene2.png"
    resized = match_image(collection, jpeg(scene(4).resize((200, 150)), 60), options=given)
    assert resized.matches[0].tier == "phash"
    assert Path(resized.matches[0].record.path).name == "scene4.png"
    yellow = jpeg(Image.new("RGB", (200, 200), (255, 255, 0)))
    assert match_image(collection, yellow, options=given).matches == []


def test_match_files_embeds_a_batch_at_a_time_and_answers_as_one_at_a_time(
    tmp_path, photos, monkeypatch
) -> None:
    """A folder of suspects: each batch is one model call (and one more for the views of
    those that match nothing as they are), the answers are those of one query at a time,
    and a file that cannot be read costs only its own answer."""
    collection = open_collection(tmp_path / "c", embedder=HistogramEmbedder(), create=True)
    ingest(collection, FolderSource([photos]))
    suspects = tmp_path / "suspects"
    suspects.mkdir()
    (suspects / "a-crop.jpg").write_bytes(jpeg(scene(3).crop((30, 20, 290, 220)), 30))
    (suspects / "b-small.jpg").write_bytes(jpeg(scene(4).resize((200, 150)), 60))
    (suspects / "c-yellow.jpg").write_bytes(jpeg(Image.new("RGB", (200, 200), (255, 255, 0))))
    (suspects / "d-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (suspects / "e-exact.png").write_bytes((photos / "scene2.png").read_bytes())
    paths = sorted(suspects.iterdir())
    paths.insert(2, tmp_path / "gone.jpg")
    given = MatchOptions(threshold=0.9, phash_distance=8)
    first = match_image(collection, (suspects / "c-yellow.jpg").read_bytes(), options=given)
    assert first.views == "made"  # for every later query, alone or in batches
    alone = {}
    for path in paths:
        try:
            alone[path] = match_image(collection, path.read_bytes(), options=given).to_dict()
        except (ImageDecodeError, OSError):
            alone[path] = None
    embedder = collection.index().embedder
    calls: list[int] = []
    embed = embedder.embed_images
    monkeypatch.setattr(
        embedder, "embed_images", lambda images: calls.append(len(images)) or embed(images)
    )
    answers = list(match_files(collection, paths, options=given, batch=4))
    assert [path for path, _ in answers] == paths
    for path, answer in answers:
        if alone[path] is None:
            assert isinstance(answer, ImageDecodeError)
        else:
            assert not isinstance(answer, ImageDecodeError)
            assert answer.to_dict() == alone[path]
    assert calls[0] == 3  # the first four files, one of them missing: one call
    assert len(calls) <= 4  # two batches, each with at most one call for views


@pytest.fixture()
def labelled(tmp_path) -> Path:
    """Train images of three colour classes; test images, one of them mislabelled."""
    root = tmp_path / "labelled"
    colours = {"red": (220, 20, 20), "green": (20, 200, 30), "blue": (20, 30, 220)}
    for label, colour in colours.items():
        (root / "train" / label).mkdir(parents=True)
        for i in range(3):
            shade = tuple(max(0, c - 15 * i) for c in colour)
            Image.new("RGB", (40, 30), shade).save(root / "train" / label / f"{i}.png")
    (root / "test" / "red").mkdir(parents=True)
    (root / "test" / "blue").mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (40, 30), (200 - 10 * i, 25, 25)).save(root / "test" / "red" / f"{i}.png")
    Image.new("RGB", (40, 30), (210, 30, 30)).save(root / "test" / "blue" / "wrong.png")
    return root


def test_classify_votes_and_evaluates_a_split(tmp_path, labelled) -> None:
    collection = open_collection(tmp_path / "c", embedder=KeyedEmbedder(TEXTS), create=True)
    for split in ("train", "test"):
        source = FolderSource([labelled / split], label_from_folder=True, metadata={"split": split})
        ingest(collection, source)
    buffer = io.BytesIO()
    Image.new("RGB", (30, 30), (30, 190, 40)).save(buffer, "PNG")
    prediction = classify_images(collection, [buffer.getvalue()], options=ClassifyOptions(k=3))[0]
    assert prediction.label == "green" and prediction.confidence == 1.0
    wide = classify_images(collection, [buffer.getvalue()], options=ClassifyOptions(k=9))[0]
    assert wide.label == "green" and 0.34 < wide.confidence < 1.0
    assert wide.alternatives[0][0] == "green" and len(wide.alternatives) == 3
    accuracy = evaluate_split(collection, "test", options=ClassifyOptions(k=3))
    # four red test images are red; the one labelled blue is red too: top-1 4/5,
    # and with k=3 only red images vote, so blue is not even among the alternatives
    assert (accuracy.images, accuracy.top1, accuracy.top5) == (5, 0.8, 0.8)
    assert evaluate_split(collection, "test", options=ClassifyOptions(k=9)).top5 == 1.0


def test_job_commands_and_their_errors(tmp_path, photos, labelled, tiny_model, capsys) -> None:
    collection = str(tmp_path / "c")
    model = ("--model", str(tiny_model), "--runtime", "torch", "--quiet")
    assert main(["index", str(photos), "--collection", collection, *model]) == 0
    capsys.readouterr()
    assert main(["duplicates", "--collection", collection, "--json", "--tiers", "exact"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert len(groups) == 1 and len(groups[0]["members"]) == 2
    out = tmp_path / "dups.csv"
    assert main(["duplicates", "--collection", collection, "--csv", str(out)]) == 0
    assert out.read_text().startswith("group,id,path")
    assert "groups to" in capsys.readouterr().out
    assert main(["match", str(photos / "scene2.png"), "--collection", collection, "--json"]) == 0
    matched = json.loads(capsys.readouterr().out)
    assert matched[0]["matches"][0]["tier"] == "exact"
    assert main(["match", str(tmp_path / "missing.png"), "--collection", collection]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["duplicates", "--collection", str(tmp_path / "nope")]) == 2
    assert "no pixseek collection" in capsys.readouterr().err
    assert main(["classify", "--evaluate", "--collection", collection]) == 2
    assert "no labelled images with split='test'" in capsys.readouterr().err
    assert main(["duplicates", "--collection", collection, "--tiers", "magic"]) == 2
    with pytest.raises(ImageDecodeError):
        match_image(open_collection(collection), b"not an image")


def test_job_routes(tmp_path, photos, tiny_model) -> None:
    import base64

    from fastapi.testclient import TestClient

    from pixseek.api import ServeSettings, create_app

    root = tmp_path / "root"
    collection = open_collection(root / "c", embedder=HistogramEmbedder(), create=True)
    ingest(collection, FolderSource([photos], label_from_folder=True))
    client = TestClient(
        create_app(ServeSettings(root=root)),
        raise_server_exceptions=False,
        base_url="http://localhost",
    )
    client.app.state.workspace.get("c").index().bind(HistogramEmbedder())  # type: ignore[attr-defined]
    given = {"threshold": 0.99, "phash_distance": 8, "views": "false"}
    found = client.get("/collections/c/duplicates", params=given).json()
    groups = found["groups"]
    assert len(groups) == 2 and all(any(m["keeper"] for m in g["members"]) for g in groups)
    assert found["views"] == 0 and all(m["view"] is None for g in groups for m in g["members"])
    viewed = client.get("/collections/c/duplicates", params={**given, "views": "true"}).json()
    assert viewed["views"] == len(list(photos.iterdir()))
    assert client.get("/collections/c/duplicates", params={"tiers": "nope"}).status_code == 422
    # a negative radius silently turned the hash tier off: refused (tiers leave it out)
    negative = client.get("/collections/c/duplicates", params={"phash_distance": -1})
    assert negative.status_code == 422, negative.text
    # a setting of a tier left out would be ignored: refused, and said why
    ignored = {"tiers": "exact,phash", "threshold": 0.9}
    refused = client.get("/collections/c/duplicates", params=ignored)
    assert refused.status_code == 422 and "threshold given, but the tiers" in refused.text
    for settings in ({"phash_distance": 4}, {"views": True}):
        with pytest.raises(InvalidInputError, match="given, but the tiers used are exact"):
            DedupOptions(tiers=("exact",), **settings)
    image = base64.b64encode((photos / "scene2.png").read_bytes()).decode()
    matches = client.post("/collections/c/match", json={"image": image}).json()["matches"]
    assert matches[0]["tier"] == "exact" and matches[0]["record"]["path"].endswith("scene2.png")
    assert client.post("/collections/c/match", json={"image": "!!"}).status_code == 422
    plain = client.post("/collections/c/match", json={"image": image, "views": False}).json()
    assert plain["views"] == "off" and plain["matches"] == matches
    for ignored in ({"k": 3}, {"treshold": 0.5}):  # not used by match: refused, not ignored
        refused = client.post("/collections/c/match", json={"image": image, **ignored})
        assert refused.status_code == 422, refused.text
    refused = client.post("/collections/c/classify", json={"image": image, "threshold": 0.5})
    assert refused.status_code == 422, refused.text
    # several at once: each answered as alone, a broken one in its place
    other = base64.b64encode((photos / "scene4.png").read_bytes()).decode()
    junk = base64.b64encode(b"not an image at all").decode()
    batch = client.post("/collections/c/match/batch", json={"images": [image, junk, other]})
    assert batch.status_code == 200, batch.text
    first, broken, last = batch.json()["results"]
    assert first == client.post("/collections/c/match", json={"image": image}).json()
    assert last == client.post("/collections/c/match", json={"image": other}).json()
    assert "not a recognised image" in broken["error"]
    too_many = client.post("/collections/c/match/batch", json={"images": [image] * 65})
    assert too_many.status_code == 422
    label = client.post("/collections/c/classify", json={"image": image, "k": 1}).json()
    assert label["label"] == "photos" and label["confidence"] == 1.0
    assert client.get("/collections/c/classify/evaluate").status_code == 422


def test_a_folder_collection_holds_out_a_split_for_evaluation(tmp_path, tiny_model, capsys) -> None:
    folder = tmp_path / "labelled"
    for label, colour in {"warm": (230, 40, 30), "cool": (30, 60, 230)}.items():
        (folder / label).mkdir(parents=True)
        for i in range(10):
            shade = tuple(max(0, c - 9 * i) for c in colour)
            Image.new("RGB", (48, 40), shade).save(folder / label / f"{i}.png")
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    plain, held = str(tmp_path / "plain"), str(tmp_path / "held")
    assert main(["index", str(folder), "--collection", plain, "--label-from-folder", *model]) == 0
    assert main(["classify", "--evaluate", "--collection", plain]) == 2
    assert "--holdout 0.2" in capsys.readouterr().err
    index = ["index", str(folder), "--collection", held, "--label-from-folder", "--holdout", "0.3"]
    assert main([*index, *model]) == 0
    splits = [r.split for r in open_collection(held).records() if r.kind == "image"]
    assert set(splits) == {"train", "test"} and 2 <= splits.count("test") <= 12
    capsys.readouterr()
    assert main(["classify", "--evaluate", "--collection", held]) == 0
    assert "top-1 accuracy" in capsys.readouterr().out
    # the split follows the content: the same run again changes nothing
    assert main([*index, *model]) == 0
    assert "indexed 0 images" in capsys.readouterr().out


class AngleEmbedder(KeyedEmbedder):
    """Red turns the vector: 0, 100 and 200 of red are 24° apart (cos 0.92), A to C 47°."""

    def embed_image_batch(self, images):  # type: ignore[no-untyped-def]
        angles = [np.radians(np.asarray(i, np.float32)[..., 0].mean() / 255 * 60) for i in images]
        return np.asarray([[np.cos(a), np.sin(a), 0.0] for a in angles], np.float32)


def test_duplicates_do_not_chain(tmp_path, capsys) -> None:
    """a~b, b~c, c~d, nothing else: b, linked to the most (then the larger of b and c),
    keeps a and c; d is like c, not like the keeper b, and joins no group."""
    folder = tmp_path / "chain"
    folder.mkdir()
    sizes = {"a": (80, 60), "b": (70, 50), "c": (60, 40), "d": (60, 40)}
    for name, red in {"a": 0, "b": 80, "c": 160, "d": 240}.items():
        Image.new("RGB", sizes[name], (red, 90, 90)).save(folder / f"{name}.png")
    collection = open_collection(tmp_path / "c", embedder=AngleEmbedder(TEXTS), create=True)
    ingest(collection, FolderSource([folder]))
    args = ["duplicates", "--collection", str(tmp_path / "c"), "--tiers", "embedding"]
    assert main([*args, "--threshold", "0.9", "--no-views", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    names = [sorted(Path(m["record"]["path"]).name for m in g["members"]) for g in groups]
    assert names == [["a.png", "b.png", "c.png"]]
    keeper = next(m for m in groups[0]["members"] if m["keeper"])
    assert keeper["record"]["path"].endswith("b.png")
