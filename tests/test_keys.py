"""Scoped API keys: roles, collection scopes, revocation, the write log, and judgements
stored through the API."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from pixseek.api import ServeSettings, create_app
from pixseek.api.audit import WriteLog
from pixseek.api.deps import required_role
from pixseek.cli import main
from tests.test_api import b64, png


def make_key(capsys, root, role: str, *extra: str) -> str:  # type: ignore[no-untyped-def]
    assert main(["keys", "create", "--root", str(root), "--role", role, *extra, "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)["token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def server(tmp_path, tiny_model):  # type: ignore[no-untyped-def]
    settings = ServeSettings(
        root=tmp_path / "root", runtime="torch", model=str(tiny_model), api_key="s3cret"
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    admin = auth("s3cret")
    for name in ("pets", "other"):
        assert client.post("/collections", json={"name": name}, headers=admin).status_code == 201
    images = {"images": [{"data": b64(png((200, 20, 20)))}, {"data": b64(png((20, 20, 200)))}]}
    ids = client.post("/collections/pets/images", json=images, headers=admin).json()["ids"]
    return settings, client, ids


def test_every_route_has_a_role_and_unknown_writes_need_admin() -> None:
    assert required_role("POST", "/collections/{name}/search") == "search"
    assert required_role("POST", "/collections/{name}/images") == "write"
    assert required_role("DELETE", "/collections/{name}") == "admin"
    assert required_role("POST", "/collections/{name}/something-new") == "admin"
    assert required_role("GET", "/collections/{name}/feedback") == "admin"


def test_a_search_key_searches_and_cannot_write_or_delete(server, capsys) -> None:
    settings, client, ids = server
    token = make_key(capsys, settings.root, "search", "--collections", "pets")
    key = auth(token)
    listed = client.get("/collections", headers=key)
    assert [c["name"] for c in listed.json()] == ["pets"]  # only what the key covers
    found = client.post("/collections/pets/search", json={"text": "red"}, headers=key)
    assert found.status_code == 200 and found.json()["hits"]
    assert (
        client.get(f"/collections/pets/images/{ids[0]}/thumbnail", headers=key).status_code == 200
    )
    upload = {"images": [{"data": b64(png((0, 200, 0)))}]}
    refused = {
        "upload": client.post("/collections/pets/images", json=upload, headers=key),
        "remove": client.delete(f"/collections/pets/images/{ids[0]}", headers=key),
        "drop": client.delete("/collections/pets", headers=key),
        "create": client.post("/collections", json={"name": "new"}, headers=key),
        "feedback export": client.get("/collections/pets/feedback", headers=key),
        "other collection": client.post(
            "/collections/other/search", json={"text": "red"}, headers=key
        ),
    }
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 403)
    assert client.get("/collections/pets", headers=key).json()["images"] == 2
    assert client.get("/collections/pets", headers=auth(token + "x")).status_code == 401


def test_a_write_key_adds_and_removes_images_only(server, capsys) -> None:
    settings, client, ids = server
    key = auth(make_key(capsys, settings.root, "write"))
    upload = {"images": [{"data": b64(png((0, 200, 0)))}]}
    assert client.post("/collections/other/images", json=upload, headers=key).status_code == 200
    assert client.delete(f"/collections/pets/images/{ids[0]}", headers=key).status_code == 204
    assert client.delete("/collections/pets", headers=key).status_code == 403
    assert client.post("/collections", json={"name": "x"}, headers=key).status_code == 403


def test_keys_are_stored_hashed_listed_and_revoked(server, capsys) -> None:
    settings, client, _ = server
    token = make_key(capsys, settings.root, "admin", "--name", "ops")
    key_id = token.split("_")[1]
    stored = (settings.root / ".pixseek-keys.json").read_text()
    assert token.split("_", 2)[2] not in stored and key_id in stored
    assert main(["keys", "list", "--root", str(settings.root)]) == 0
    out = capsys.readouterr().out
    assert key_id in out and "admin" in out and "active" in out and "ops" in out
    assert client.delete("/collections/other", headers=auth(token)).status_code == 204
    assert main(["keys", "revoke", key_id, "--root", str(settings.root)]) == 0
    assert client.get("/collections", headers=auth(token)).status_code == 401
    assert main(["keys", "revoke", "nope", "--root", str(settings.root)]) == 2
    # a scope naming what no collection can be called covered nothing, silently: refused
    scoped = ["keys", "create", "--root", str(settings.root), "--role", "search"]
    assert main([*scoped, "--collections", "pets,../x"]) == 2
    assert "invalid collection name '../x'" in capsys.readouterr().err
    assert client.get("/collections", headers=auth("s3cret")).status_code == 200  # --api-key


def test_keys_alone_make_the_server_ask_for_one(tmp_path, tiny_model, capsys) -> None:
    settings = ServeSettings(root=tmp_path / "root", runtime="torch", model=str(tiny_model))
    client = TestClient(create_app(settings), base_url="http://localhost")
    assert client.get("/collections").status_code == 200  # no key configured: loopback only
    token = make_key(capsys, settings.root, "search")
    assert client.get("/collections").status_code == 401
    assert client.get("/collections", headers=auth(token)).status_code == 200


def test_writes_are_logged_with_their_key(server, capsys) -> None:
    settings, client, ids = server
    token = make_key(capsys, settings.root, "search")
    key_id = token.split("_")[1]
    client.delete(f"/collections/pets/images/{ids[0]}", headers=auth(token))
    client.post("/collections/pets/search", json={"text": "red"}, headers=auth(token))
    entries = WriteLog(settings.root).read()
    assert [(e["key_id"], e["method"], e["status"]) for e in entries][-1] == (
        key_id,
        "DELETE",
        403,
    )
    assert [e["key_id"] for e in entries[:3]] == ["api-key"] * 3  # two creates, an upload
    assert not any(e["path"].endswith("/search") for e in entries)
    assert all(e["at"] > 0 for e in entries)


def test_judgements_are_stored_exported_and_removed_with_their_image(server, capsys) -> None:
    settings, client, ids = server
    token = make_key(capsys, settings.root, "search")
    body = {"text": "red", "more_like": [ids[0]], "less_like": [ids[1]], "remember": True}
    answer = client.post("/collections/pets/search", json=body, headers=auth(token))
    assert answer.status_code == 200 and answer.json()["remembered"] == 2
    direct = {"judgements": [{"query": {"image_id": ids[1]}, "result_id": ids[0], "value": -1}]}
    assert (
        client.post("/collections/pets/feedback", json=direct, headers=auth(token)).status_code
        == 201
    )
    bad = {"judgements": [{"query": {"text": "red"}, "result_id": "nope", "value": 1}]}
    assert (
        client.post("/collections/pets/feedback", json=bad, headers=auth(token)).status_code == 404
    )
    # a fresh server on the same root still has them
    again = TestClient(create_app(settings), raise_server_exceptions=False)
    stored = again.get("/collections/pets/feedback", headers=auth("s3cret")).json()["judgements"]
    key_id = token.split("_")[1]
    assert [
        (j["query_kind"], j["query"], j["result_id"], j["value"], j["key_id"]) for j in stored
    ] == [
        ("text", "red", ids[0], 1, key_id),
        ("text", "red", ids[1], -1, key_id),
        ("record", ids[1], ids[0], -1, key_id),
    ]
    root = settings.root / "pets"
    out = settings.root.parent / "judgements.csv"
    assert main(["feedback", "export", str(out), "--collection", str(root)]) == 0
    assert len(out.read_text().splitlines()) == 4
    assert (
        again.delete(f"/collections/pets/images/{ids[1]}", headers=auth("s3cret")).status_code
        == 204
    )
    left = again.get("/collections/pets/feedback", headers=auth("s3cret")).json()["judgements"]
    assert [(j["result_id"], j["value"]) for j in left] == [(ids[0], 1)]


def test_search_remember_from_the_cli(server, capsys) -> None:
    settings, _, ids = server
    root = str(settings.root / "pets")
    argv = ["search", "red", "--collection", root, "--more-like", ids[0], "--remember", "--json"]
    assert main(argv) == 0
    assert "stored 1 judgements" in capsys.readouterr().err
    assert main(["feedback", "export", "--collection", root]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["query"], r["result_id"], r["value"], r["key_id"]) for r in rows] == [
        ("red", ids[0], 1, "cli")
    ]
