"""The web UI in a real Chromium: text search, 'more like this', and drawing a box."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pixseek.collection.collection import open_collection
from pixseek.ingest import CocoSource, ingest
from tests.conftest import CHROMIUM_FLAGS, make_image
from tests.serving import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def served_root(tmp_path_factory, torch_embedder) -> Path:
    """A collection of eight generated photos with two annotated boxes each."""
    root = tmp_path_factory.mktemp("served")
    images = root / "photos"
    colours = [
        (220, 40, 40),
        (40, 200, 60),
        (40, 60, 220),
        (230, 200, 30),
        (150, 60, 200),
        (30, 180, 190),
        (240, 140, 30),
        (120, 120, 120),
    ]
    entries, annotations = [], []
    for index, colour in enumerate(colours):
        path = make_image(images / f"photo{index}.jpg", colour, size=(160, 120))
        with Image.open(path) as photo:  # distinct contents for the two boxes
            photo = photo.copy()
        draw = ImageDraw.Draw(photo)
        draw.rectangle((10, 10, 70, 60), fill=(0, 0, 0))
        draw.ellipse((80, 40, 150, 110), fill=(255, 255, 255))
        photo.save(path)
        entries.append({"id": index, "file_name": f"photo{index}.jpg", "width": 160, "height": 120})
        for box_index, box in enumerate(([10, 10, 60, 50], [80, 40, 70, 70])):
            annotations.append(
                {
                    "id": index * 10 + box_index,
                    "image_id": index,
                    "category_id": box_index + 1,
                    "bbox": box,
                }
            )
    coco = {
        "images": entries,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "left thing"}, {"id": 2, "name": "right thing"}],
    }
    (root / "instances_demo.json").write_text(json.dumps(coco))
    collection = open_collection(
        root / "collections" / "demo", embedder=torch_embedder, create=True
    )
    ingest(collection, CocoSource(root / "instances_demo.json", images))
    return root / "collections"


def test_search_click_and_draw(served_root, chromium_path, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with running_server(served_root, "--runtime", "torch") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator(".result")).to_have_count(8)
        expect(page.locator("#status")).to_contain_text("8 images")
        page.screenshot(path=str(shots / "1-gallery.png"))
        page.select_option("#label", "left thing")  # an object label: images holding one
        expect(page.locator("#status")).to_contain_text("8 images with")
        expect(page.locator(".result")).to_have_count(8)
        page.select_option("#label", "")

        page.fill("#query", "a red photo")
        page.click("#search-button")
        expect(page.locator("#query-chip")).to_have_text('"a red photo"')
        # the first query loads the model in the server
        expect(page.locator("#status")).to_contain_text("results", timeout=90_000)
        results = page.locator(".result")
        expect(results.first.locator(".score")).to_be_visible()
        assert results.count() == 24  # 8 images + 16 objects
        page.wait_for_function(
            "[...document.querySelectorAll('.result img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=str(shots / "2-text-search.png"))

        first_image = page.locator('.result[data-kind="image"]').first
        clicked = first_image.get_attribute("data-id")
        first_image.locator(".thumb").click()
        expect(page.locator("#query-chip")).to_contain_text("similar to this image")
        expect(page.locator(".result").first).to_have_attribute("data-id", clicked or "")
        expect(page.locator(".result .score").first).to_have_text("1.000")
        page.screenshot(path=str(shots / "3-more-like-this.png"))

        page.locator('.result[data-kind="image"] .draw').first.click()
        expect(page.locator("#viewer")).to_be_visible()
        page.wait_for_function("document.getElementById('viewer-image').naturalWidth > 0")
        canvas = page.locator("#viewer-canvas").bounding_box()
        assert canvas is not None and canvas["width"] > 100
        x0, y0 = canvas["x"] + canvas["width"] * 0.5, canvas["y"] + canvas["height"] * 0.33
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + canvas["width"] * 0.44, y0 + canvas["height"] * 0.58, steps=5)
        page.screenshot(path=str(shots / "4-drawing.png"))
        page.mouse.up()
        expect(page.locator("#viewer")).to_be_hidden()
        expect(page.locator("#status")).to_contain_text("results")
        kinds = page.locator(".result").evaluate_all("els => els.map(e => e.dataset.kind)")
        assert kinds and set(kinds) == {"object"}
        expect(page.locator(".result .label").first).to_have_text("right thing")
        # the query chip shows the drawn region; object hits show their crops (boxes of 70x70
        # and 60x50 pixels), not their whole 160x120 images
        expect(page.locator("#query-chip")).to_contain_text("similar to this region")
        chip = page.locator("#query-chip img")
        expect(chip).to_have_attribute("src", re.compile("^data:image/jpeg"))
        page.wait_for_function(
            "[...document.querySelectorAll('.result img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        sizes = page.locator(".result img").evaluate_all(
            "els => els.map(e => [e.naturalWidth, e.naturalHeight])"
        )
        crops = {(71, 71), (61, 51)}
        assert sizes and all(tuple(size) in crops for size in sizes), sizes
        for name in ("More like this", "Less like this", "Draw a box"):
            expect(page.get_by_role("button", name=name).first).to_be_visible()
        page.screenshot(path=str(shots / "5-object-search.png"))
        # the box switched the kind to objects; the next typed query has the kind it had
        expect(page.locator("#kind")).to_have_value("object")
        page.fill("#query", "a red thing")
        page.click("#search-button")
        expect(page.locator("#query-chip")).to_have_text('"a red thing"')
        expect(page.locator("#kind")).not_to_have_value("object")
        browser.close()
    assert not errors
    assert len(list(shots.glob("*.png"))) == 5
