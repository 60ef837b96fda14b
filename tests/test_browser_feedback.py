"""The web UI with a search-only key: it signs in with the form, and its "More/Less like
this" buttons store judgements with the collection, under that key."""

from __future__ import annotations

import json

import pytest

from pixseek.cli import main
from pixseek.collection import open_collection
from tests.conftest import CHROMIUM_FLAGS, make_image
from tests.serving import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_feedback_buttons_store_judgements(tmp_path, tiny_model, chromium_path, capsys) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "root"
    colours = [(220, 30, 30), (30, 200, 40), (20, 40, 220), (230, 220, 30)]
    for n, colour in enumerate(colours):
        make_image(tmp_path / "photos" / f"{n}.png", colour)
    model = ["--model", str(tiny_model), "--runtime", "torch"]
    assert (
        main(
            [
                "index",
                str(tmp_path / "photos"),
                "--collection",
                str(root / "pets"),
                "--quiet",
                *model,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["keys", "create", "--root", str(root), "--role", "search", "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    with running_server(root, *model) as url, sync_playwright() as p:
        page = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#key-form")).to_be_visible()
        page.fill("#key-input", token)
        page.press("#key-input", "Enter")
        expect(page.locator("#key-form")).to_be_hidden()
        expect(page.locator("#status")).to_contain_text("images in pets")
        page.fill("#query", "a red square")
        page.click("#search-button")
        expect(page.locator(".result")).to_have_count(4)
        first, second = (page.locator(".result").nth(i).get_attribute("data-id") for i in (0, 1))
        stored = lambda response: response.url.endswith("/feedback")  # noqa: E731
        with page.expect_response(stored) as up:
            page.locator(".result").nth(0).locator("button.up").click()
        assert up.value.status == 201
        expect(page.locator("#feedback-list")).to_contain_text("1 relevant")
        with page.expect_response(stored) as down:
            page.locator(f'.result[data-id="{second}"] button.down').click()
        assert down.value.status == 201
        expect(page.locator("#feedback-list")).to_contain_text("1 not relevant")
        # another query starts without these marks (they were sent with every later search)
        searches: list[dict] = []  # type: ignore[type-arg]
        page.on(
            "request",
            lambda r: (
                searches.append(json.loads(r.post_data or "{}"))
                if r.url.endswith("/search")
                else None
            ),
        )
        page.fill("#query", "a green square")
        page.click("#search-button")
        expect(page.locator("#query-chip")).to_have_text('"a green square"')
        expect(page.locator("#feedback")).to_be_hidden()
        expect(page.locator(".result")).to_have_count(4)
        assert searches and all(
            not s.get("more_like") and not s.get("less_like") for s in searches
        ), searches
        assert not errors
    kept = open_collection(root / "pets").feedback.list()
    assert [(j.query, j.result_id, j.value, j.key_id) for j in kept] == [
        ("a red square", first, 1, token.split("_")[1]),
        ("a red square", second, -1, token.split("_")[1]),
    ]
