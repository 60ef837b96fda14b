from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixseek.api import ServeSettings, create_app


def png(colour: tuple[int, int, int], size: tuple[int, int] = (60, 40)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, colour)
    image.paste((255, 255, 255), (10, 10, 30, 30))
    image.save(buffer, "PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture()
def settings(tmp_path, tiny_model) -> ServeSettings:
    return ServeSettings(
        root=tmp_path / "root", runtime="torch", model=str(tiny_model), max_upload_bytes=200_000
    )


@pytest.fixture()
def client(settings) -> TestClient:
    return TestClient(
        create_app(settings), raise_server_exceptions=False, base_url="http://localhost"
    )


@pytest.fixture()
def filled(client) -> dict[str, list[str]]:
    assert client.post("/collections", json={"name": "demo"}).status_code == 201
    body = {
        "images": [
            {
                "data": b64(png((200, 20, 20))),
                "metadata": {"split": "val", "tags": ["x"]},
                "boxes": [
                    {"box": [10, 10, 20, 20], "label": "square"},
                    {"box": [0, 0, 60, 40], "label": "frame", "source": "pred", "confidence": 0.7},
                ],
            },
            {"data": b64(png((20, 200, 20))), "metadata": {"label": "green"}},
            {"data": b64(png((20, 20, 200))), "filename": "blue.png"},
        ]
    }
    response = client.post("/collections/demo/images", json=body)
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    files = [
        ("files", ("a.png", png((250, 250, 0)), "image/png")),
        ("files", ("b.png", png((0, 250, 250)), "image/png")),
    ]
    multipart = client.post("/collections/demo/images", files=files)
    assert multipart.status_code == 200, multipart.text
    return {"json": ids, "multipart": multipart.json()["ids"]}


def test_health_docs_and_ui_page(client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert "/collections/{name}/search" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_collection_lifecycle(client, filled) -> None:
    listed = client.get("/collections").json()
    assert [c["name"] for c in listed] == ["demo"]
    assert listed[0]["images"] == 5 and listed[0]["objects"] == 2
    assert client.post("/collections", json={"name": "demo"}).status_code == 409
    assert client.post("/collections", json={"name": "../evil"}).status_code == 422
    assert client.get("/collections/nope").status_code == 404
    assert client.delete("/collections/demo").status_code == 204
    assert client.get("/collections/demo").status_code == 404


def test_uploads_keep_order_and_are_idempotent(client, filled) -> None:
    assert len(filled["json"]) == 3 and len(set(filled["json"])) == 3
    again = client.post(
        "/collections/demo/images", json={"images": [{"data": b64(png((20, 200, 20)))}]}
    )
    assert again.json()["ids"] == [filled["json"][1]]
    assert client.get("/collections/demo").json()["images"] == 5
    page = client.get("/collections/demo/images", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 5 and len(page["records"]) == 2
    green = client.get("/collections/demo/images", params={"label": "green"}).json()
    assert [r["id"] for r in green["records"]] == [filled["json"][1]]
    assert client.get("/collections/demo/labels", params={"kind": "object"}).json() == {
        "labels": {"frame": 1, "square": 1}
    }


def test_search_by_every_kind_of_query(client, filled) -> None:
    red = filled["json"][0]

    def hits(body):  # type: ignore[no-untyped-def]
        response = client.post("/collections/demo/search", json=body)
        assert response.status_code == 200, response.text
        return response.json()["hits"]

    text = hits({"text": "a red square", "k": 3})
    assert len(text) == 3 and set(text[0]) >= {"id", "kind", "path", "score", "box", "label"}
    assert hits({"image_id": red, "kind": "image"})[0]["id"] == red
    assert hits({"image": b64(png((200, 20, 20))), "kind": "image"})[0]["id"] == red
    objects = hits({"text": "square", "kind": "object"})
    assert {h["kind"] for h in objects} == {"object"} and len(objects) == 2
    square = next(h for h in objects if h["label"] == "square")
    assert hits({"object_id": square["id"]})[0]["id"] == square["id"]
    boxed = hits({"image_id": red, "box": [10, 10, 20, 20], "kind": "object"})
    assert boxed[0]["id"] == square["id"] and boxed[0]["score"] >= 0.999
    assert hits({"text": "x", "where": {"split": "val"}, "kind": "image"})[0]["id"] == red
    everything = hits({"image_id": red, "k": 20})
    cut = sorted(h["score"] for h in everything)[len(everything) // 2]
    above = hits({"image_id": red, "k": 20, "min_score": cut})
    assert above and above[0]["id"] == red
    assert [h["id"] for h in above] == [h["id"] for h in everything if h["score"] >= cut]
    assert len(above) < len(everything)
    mixed = hits(
        {"positives": [{"image_id": red}], "negatives": [{"text": "green", "weight": 0.5}]}
    )
    assert mixed and mixed[0]["id"] in (red, square["id"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 422, "empty"),
        ({"text": "   "}, 422, "empty"),
        ({"image_id": "missing"}, 404, "no record"),
        ({"object_id": "missing"}, 404, "no record"),
        ({"image_id": "RED", "box": [70, 50, 10, 10]}, 422, "outside"),
        ({"image_id": "RED", "box": [1, 2, 3]}, 422, "box"),
        ({"image": "not base64!"}, 422, "base64"),
        ({"image": b64(b"not an image")}, 422, "not a recognised image"),
        ({"text": "x", "where": {"colour": "red"}}, 422, "filterable"),
        ({"text": "x", "k": 0}, 422, ""),
        ({"text": "x", "image_id": "RED"}, 422, "one of"),
        # a field the body does not define is refused, not ignored: a misspelt option
        ({"text": "x", "min_scor": 0.9}, 422, "min_scor"),
        ({"positives": [{"text": "x", "wieght": 2}]}, 422, "wieght"),
    ],
)
def test_search_errors_are_4xx(client, filled, body, status, message) -> None:
    body = {k: (filled["json"][0] if v == "RED" else v) for k, v in body.items()}
    response = client.post("/collections/demo/search", json=body)
    assert response.status_code == status, response.text
    assert message in response.text


def test_every_json_body_refuses_unknown_fields(client) -> None:
    """The published contract: each JSON request body, and each object inside one (but
    free-form maps such as metadata), has ``additionalProperties: false``, so a misspelt
    option is a 422 rather than a silently different answer."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    components = spec["components"]["schemas"]

    def objects(schema: dict, seen: set[str], defs: dict) -> list[tuple[str, dict]]:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name in seen:
                return []
            seen.add(name)
            return objects({**defs, **components}[name], seen, defs)
        found = []
        if schema.get("type") == "object" and "properties" in schema:
            found.append((schema.get("title", "?"), schema))
        children = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
        for child in [*children, *([schema["items"]] if "items" in schema else [])]:
            found += objects(child, seen, defs)
        return found

    bodies = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            bodies += 1
            schema = media["schema"]
            for title, part in objects(schema, set(), schema.get("$defs", {})):
                assert part.get("additionalProperties") is False, (method, path, title)
    assert bodies >= 12


def test_an_unknown_query_parameter_is_refused(client, filled) -> None:
    """``?treshold=`` (misspelt) is a 422 that names what the route takes, not a listing
    or a grouping made with the defaults."""
    typo = client.get("/collections/demo/duplicates", params={"treshold": 0.9})
    assert typo.status_code == 422 and "'treshold'" in typo.text and "threshold" in typo.text
    assert client.get("/collections/demo/images", params={"limt": 2}).status_code == 422
    assert client.get("/collections/demo/images", params={"limit": 2}).status_code == 200


def test_upload_errors(client, filled, settings) -> None:
    bad = client.post("/collections/demo/images", json={"images": [{"data": b64(b"junk")}]})
    assert bad.status_code == 422 and "not a recognised image" in bad.text
    box = {"images": [{"data": b64(png((1, 2, 3))), "boxes": [{"box": [70, 50, 40, 40]}]}]}
    assert client.post("/collections/demo/images", json=box).status_code == 422
    big = client.post("/collections/demo/images", files=[("files", ("x.png", b"0" * 300_000))])
    assert big.status_code == 413
    assert client.post("/collections/demo/images", json={"images": []}).status_code == 422
    typo = {"images": [{"data": b64(png((1, 2, 3))), "metdata": {"label": "x"}}]}
    assert client.post("/collections/demo/images", json=typo).status_code == 422
    assert (
        client.post("/collections/nope/images", json={"images": [{"data": "x"}]}).status_code == 404
    )
    assert client.get("/collections/demo").json()["images"] == 5


def test_files_thumbnails_and_delete(client, filled, settings) -> None:
    red = filled["json"][0]
    file = client.get(f"/collections/demo/images/{red}/file")
    assert file.status_code == 200 and file.content == png((200, 20, 20))
    thumb = client.get(f"/collections/demo/images/{red}/thumbnail", params={"size": 32})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (60, 40)  # 32 is served at 64
    same = client.get(f"/collections/demo/images/{red}/thumbnail", params={"size": 50})
    assert same.content == thumb.content
    cached = list((settings.root / "demo" / "thumbnails").glob("*.jpg"))
    assert len(cached) == 1
    small = client.get(f"/collections/demo/images/{red}/thumbnail", params={"size": 16})
    assert small.status_code == 200
    assert len(list((settings.root / "demo" / "thumbnails").glob("*.jpg"))) == 1
    assert (
        client.get(f"/collections/demo/images/{red}/thumbnail", params={"size": 5000}).status_code
        == 422
    )
    assert client.get("/collections/demo/images/nope/file").status_code == 404
    assert client.get("/collections/demo/images/..%2F..%2Fetc%2Fpasswd/file").status_code == 404
    stored = Path(file.request.url.path)
    del stored
    assert client.delete(f"/collections/demo/images/{red}").status_code == 204
    assert client.delete(f"/collections/demo/images/{red}").status_code == 404
    assert (
        client.get("/collections/demo").json() | {}
        and client.get("/collections/demo").json()["objects"] == 0
    )
    assert len(list((settings.root / "demo" / "files").iterdir())) == 4


def test_api_key(settings, tiny_model) -> None:
    settings.api_key = "s3cret"
    client = TestClient(
        create_app(settings), raise_server_exceptions=False, base_url="http://localhost"
    )
    assert client.get("/health").status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/collections").status_code == 401
    assert client.get("/collections", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/collections", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_hit_fields_come_from_the_record(client, filled) -> None:
    """One definition of a record's fields: API hits, records and export all follow it."""
    from pixseek.core.records import PUBLIC_FIELDS, RECORD_FIELDS
    from pixseek.jobs.export import export_schema

    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["HitOut"]["properties"]) == {*PUBLIC_FIELDS, "score"}
    assert set(schema["RecordOut"]["properties"]) == set(PUBLIC_FIELDS)
    assert export_schema(4).names == [*RECORD_FIELDS, "split", "outcome", "tags", "vector"]
    hit = client.post("/collections/demo/search", json={"text": "frame", "kind": "object"})
    frame = next(h for h in hit.json()["hits"] if h["label"] == "frame")
    assert frame["confidence"] == 0.7 and "score" in frame


def test_a_file_whose_name_is_not_utf8_is_served(tmp_path, tiny_model) -> None:
    import os

    from pixseek.cli.main import main

    folder = tmp_path / "photos"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(raw, "wb") as handle:
        handle.write(png((10, 120, 200)))
    root = tmp_path / "root"
    model = ["--model", str(tiny_model), "--runtime", "torch", "--quiet"]
    assert main(["index", str(folder), "--collection", str(root / "odd"), *model]) == 0
    settings = ServeSettings(root=root, runtime="torch", model=str(tiny_model))
    client = TestClient(create_app(settings), base_url="http://localhost")
    image = client.get("/collections/odd/images").json()["records"][0]
    assert image["path"].startswith("bytes:") and image["path"].endswith("caf%E9.png")
    file = client.get(f"/collections/odd/images/{image['id']}/file")
    assert file.status_code == 200 and file.content == png((10, 120, 200))
    thumb = client.get(f"/collections/odd/images/{image['id']}/thumbnail")
    assert thumb.status_code == 200
