"""Whatever a client sends, the API answers with a 2xx or a 4xx, never a 500."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixseek.api import ServeSettings, create_app
from tests.test_api import b64, png

FIELDS = [
    "text",
    "image_id",
    "object_id",
    "image",
    "box",
    "weight",
    "k",
    "kind",
    "where",
    "min_score",
    "positives",
    "negatives",
    "more_like",
    "less_like",
    "feedback_weights",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["IMAGE", "OBJECT", "image", "object"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from([*FIELDS, "label", "x"]), inner, max_size=4),
    ),
    max_leaves=10,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, tiny_model):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("fuzz")
    client = TestClient(
        create_app(
            ServeSettings(
                root=root, runtime="torch", model=str(tiny_model), max_upload_bytes=100_000
            )
        ),
        raise_server_exceptions=False,
        base_url="http://localhost",
    )
    client.post("/collections", json={"name": "f"})
    body = {"images": [{"data": b64(png((200, 0, 0))), "boxes": [{"box": [5, 5, 10, 10]}]}]}
    ids = client.post("/collections/f/images", json=body).json()["ids"]
    objects = client.post("/collections/f/search", json={"text": "x", "kind": "object"}).json()
    return client, ids[0], objects["hits"][0]["id"]


def _substitute(value, image_id: str, object_id: str):  # type: ignore[no-untyped-def]
    if value == "IMAGE":
        return image_id
    if value == "OBJECT":
        return object_id
    if isinstance(value, list):
        return [_substitute(v, image_id, object_id) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, image_id, object_id) for k, v in value.items()}
    return value


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_search_never_fails_with_500(fuzz_client, body) -> None:
    client, image_id, object_id = fuzz_client
    body = _substitute(body, image_id, object_id)
    response = client.post("/collections/f/search", json=body)
    assert response.status_code < 500, (body, response.text)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=300),
    boxes=st.lists(st.lists(st.floats(-10, 100), min_size=0, max_size=5), max_size=3),
)
def test_uploads_never_fail_with_500(fuzz_client, data, boxes) -> None:
    client, _, _ = fuzz_client
    body = {
        "images": [{"data": base64.b64encode(data).decode(), "boxes": [{"box": b} for b in boxes]}]
    }
    assert client.post("/collections/f/images", json=body).status_code < 500
    files = [("files", ("x.jpg", data, "image/jpeg"))]
    assert client.post("/collections/f/images", files=files).status_code < 500


@pytest.mark.parametrize(
    "raw",
    [
        '{"text": NaN}',
        '{"image_id": "IMAGE", "box": [0, 0, Infinity, 1]}',
        '{"text": "x", "k": 1e999}',
        "not json",
        '{"text": "x", "weight": -Infinity}',
    ],
)
def test_non_standard_json_numbers_are_rejected_cleanly(fuzz_client, raw) -> None:
    client, image_id, _ = fuzz_client
    response = client.post(
        "/collections/f/search",
        content=raw.replace("IMAGE", image_id),
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
