"""The web UI as a new user meets it: a typed phrase, a phone screen, errors, paging, uploads."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixseek.collection import open_collection
from pixseek.core.query import SearchOptions
from pixseek.search import search
from tests.conftest import CHROMIUM_FLAGS, make_image
from tests.serving import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The offline demo: synthetic shapes with captions and the shipped, trained model."""
    from pixseek.demo.demo import DemoOptions, build_demo

    return build_demo(DemoOptions(tmp_path_factory.mktemp("demo"), images=80))


def phrase_with_an_answer(demo) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A caption whose own image the library ranks first for the whole phrase."""
    for caption in sorted(set(demo.captions.values())):
        hits = search(demo.collection, caption, SearchOptions(k=1, kind="image"))
        if demo.captions.get(hits[0].path) == caption:
            return caption, hits[0].id
    raise AssertionError("the demo model finds no caption's image")


def browser(playwright, chromium_path: str):  # type: ignore[no-untyped-def]
    return playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)


def test_a_typed_phrase_is_one_query_on_a_phone(demo, chromium_path, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    phrase, expected = phrase_with_an_answer(demo)
    assert len(phrase.split()) >= 4
    shots = tmp_path / "screenshots"
    with running_server(demo.collection.root.parent) as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("images in shapes")
        page.select_option("#kind", "image")
        page.fill("#query", phrase)
        page.click("#search-button")
        expect(page.locator("#status")).to_contain_text("results", timeout=90_000)
        expect(page.locator("#query-chip")).to_have_text(f'"{phrase}"')
        expect(page.locator(".result").first).to_have_attribute("data-id", expected)
        # 48 results at first; "load more" asks for the next ones
        expect(page.locator(".result")).to_have_count(48)
        page.click("#load-more")
        expect(page.locator(".result")).to_have_count(80)
        expect(page.locator("#more")).to_be_hidden()
        page.screenshot(path=str(shots / "phone-results.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a 390px screen"
        columns = page.locator("#results").evaluate(
            "e => getComputedStyle(e).gridTemplateColumns.split(' ').length"
        )
        assert columns == 2

        # explicit syntax still works, and a bad query clears the stale results
        page.fill("#query", "a red circle -blue")
        page.click("#search-button")
        expect(page.locator("#query-chip")).to_have_text('"a red circle" − "blue"')
        page.fill("#query", "x" * 1200)
        page.click("#search-button")
        expect(page.locator("#status")).to_have_class("error")
        expect(page.locator(".result")).to_have_count(0)
        page.screenshot(path=str(shots / "phone-error.png"), full_page=True)
    assert not errors
    assert len(list(shots.glob("*.png"))) == 2


def test_an_empty_server_offers_an_upload(tmp_path, chromium_path, torch_embedder) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    photo = make_image(tmp_path / "first photo.png", (200, 30, 30))
    model = torch_embedder.name
    with (
        running_server(root, "--model", model, "--runtime", "torch") as url,
        sync_playwright() as p,
    ):
        page = browser(p, chromium_path).new_page(viewport=PHONE)
        page.goto(url + "/")
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator("#empty")).to_contain_text("No collections yet")
        page.screenshot(path=str(tmp_path / "empty.png"))
        page.set_input_files("#upload-input", str(photo))
        expect(page.locator(".result")).to_have_count(1, timeout=90_000)
        expect(page.locator("#status")).to_contain_text("1 images in photos")
        expect(page.locator("#empty")).to_be_hidden()
    collection = open_collection(root / "photos")
    assert collection.count() == 1
    assert Path(next(iter(collection.records())).path).parent == root / "photos" / "files"


def test_the_debug_panel(tmp_path, chromium_path, torch_embedder) -> None:
    """Detector metrics on the current results, and blind spots with example crops."""
    import json

    from PIL import Image, ImageDraw

    from pixseek.ingest import CocoSource, ingest

    images = tmp_path / "photos"
    images.mkdir()
    entries, truth, predictions = [], [], []
    for n in range(8):
        photo = Image.new("RGB", (160, 120), (30 * n, 120, 200 - 20 * n))
        draw = ImageDraw.Draw(photo)
        draw.rectangle((10, 10, 70, 60), fill=(0, 0, 0))
        draw.ellipse((80, 40, 150, 110), fill=(255, 255, 255))
        photo.save(images / f"p{n}.png")
        entries.append({"id": n, "file_name": f"p{n}.png", "width": 160, "height": 120})
        for k, box in enumerate(([10, 10, 60, 50], [80, 40, 70, 70])):
            truth.append(
                {
                    "id": n * 10 + k,
                    "image_id": n,
                    "category_id": k + 1,
                    "bbox": box,
                    "iscrowd": 0,
                    "area": box[2] * box[3],
                }
            )
            if k == 0 or n % 2 == 0:  # every other right-hand thing is missed
                predictions.append({"image_id": n, "category_id": k + 1, "bbox": box, "score": 0.9})
    categories = [{"id": 1, "name": "left thing"}, {"id": 2, "name": "right thing"}]
    gt = tmp_path / "instances_d.json"
    gt.write_text(json.dumps({"images": entries, "annotations": truth, "categories": categories}))
    pred = tmp_path / "predictions.json"
    pred.write_text(json.dumps(predictions))
    root = tmp_path / "root"
    collection = open_collection(root / "d", embedder=torch_embedder, create=True)
    ingest(collection, CocoSource(gt, images, pred))
    from playwright.sync_api import expect, sync_playwright

    with running_server(root, "--runtime", "torch") as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport={"width": 1200, "height": 900})
        page.goto(url + "/")
        expect(page.locator(".result")).to_have_count(8)
        page.select_option("#kind", "image")
        page.fill("#query", "a photo with a circle")
        page.click("#search-button")
        expect(page.locator("#status")).to_contain_text("results", timeout=90_000)
        page.click("#measure-button")
        row = page.locator("#debug-panel tr", has_text="right thing")
        expect(row).to_be_visible()
        expect(row.locator("td").nth(4)).to_have_text("0.500")  # recall on these images
        page.click("#blindspots-button")
        expect(page.locator("#debug-panel .spot").first).to_be_visible()
        expect(page.locator("#debug-panel .spot").first).to_contain_text("right thing")
        page.screenshot(path=str(tmp_path / "debug-panel.png"))
