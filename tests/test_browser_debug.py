"""The debugging workbench in Chromium: blind spots with a planted failure, label errors
with verdicts, the embedding map (hover, box selection, measuring the selection)."""

from __future__ import annotations

import json

import pytest

from pixseek.collection import open_collection
from pixseek.ingest import CocoSource, ingest
from tests.conftest import CHROMIUM_FLAGS
from tests.serving import running_server
from tests.test_browser_ui import shots  # noqa: F401  (the screenshot folder fixture)
from tests.test_debug import miss_small_boxes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DESKTOP = {"width": 1280, "height": 1000}
IMAGES = 30


@pytest.fixture(scope="module")
def workbench(coco, tmp_path_factory, torch_embedder):  # type: ignore[no-untyped-def]
    """30 COCO-mini images; a detector that misses every box under 32×32 px."""
    work = tmp_path_factory.mktemp("workbench")
    predictions, _ = miss_small_boxes(coco, work)
    data = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    annotated = sorted({a["image_id"] for a in data["annotations"]})[:IMAGES]
    data["images"] = [i for i in data["images"] if i["id"] in annotated]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in annotated]
    (work / "gt.json").write_text(json.dumps(data))
    kept = [p for p in json.loads(predictions.read_text()) if p["image_id"] in annotated]
    predictions.write_text(json.dumps(kept))
    root = work / "root"
    collection = open_collection(root / "coco", embedder=torch_embedder, create=True)
    assert (
        ingest(collection, CocoSource(work / "gt.json", coco / "val2017", predictions)).failed == 0
    )
    return root


def test_the_workbench_panels(workbench, chromium_path, shots) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with running_server(workbench, "--runtime", "torch") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("images in coco")
        expect(page.locator("#blindspots-button")).to_be_visible(timeout=30_000)

        # blind spots: the planted failure first, with its interval
        page.click("#blindspots-button")
        expect(page.locator(".spot").first).to_be_visible(timeout=120_000)
        first = page.locator(".spot").first
        expect(first).to_contain_text("area: small")
        expect(first).to_contain_text("95%")
        page.screenshot(path=str(shots / "1-blindspots.png"), full_page=True)

        # label errors: confirm one, dismiss another; the verdicts are stored
        page.click("#label-errors-button")
        expect(page.locator(".label-error").first).to_be_visible(timeout=60_000)
        rows = page.locator(".label-error")
        rows.nth(0).locator("button.confirm").click()
        expect(rows.nth(0)).to_have_attribute("data-verdict", "confirmed")
        rows.nth(1).locator("button.dismiss").click()
        expect(rows.nth(1)).to_have_attribute("data-verdict", "dismissed")
        page.screenshot(path=str(shots / "2-label-errors.png"), full_page=True)
        reviews = json.loads((workbench / "coco" / "label-reviews.json").read_text())
        assert sorted(reviews.values()) == ["confirmed", "dismissed"]

        # the map: a hover shows the picture; a box selection becomes the results
        page.click("#map-button")
        expect(page.locator("#map-canvas")).to_be_visible(timeout=180_000)
        total = page.evaluate("debugView.map.points.length")
        assert total == open_collection(workbench / "coco").count()
        x, y = page.evaluate(
            "(() => { const c = $('map-canvas'), r = c.getBoundingClientRect();"
            " const [x, y] = toCanvas(debugView.map.points[0], c);"
            " return [r.left + x * r.width / c.width, r.top + y * r.height / c.height]; })()"
        )
        page.mouse.move(x, y)
        expect(page.locator("#map-tip img")).to_be_visible()
        page.select_option("#map-colour", "outcome")
        page.mouse.move(x + 1, y)
        expect(page.locator("#map-legend")).to_contain_text("FN")
        page.screenshot(path=str(shots / "3-map-hover.png"), full_page=True)
        box = page.locator("#map-canvas").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] - 2, steps=5)
        page.mouse.up()
        expect(page.locator("#status")).to_contain_text("points selected")
        assert page.locator(".result").count() > 0
        page.click("#measure-button")
        expect(page.locator("#debug-panel")).to_contain_text("On these", timeout=60_000)
        page.screenshot(path=str(shots / "4-map-selection-measured.png"))
    assert not errors, errors
