"""The web UI as a new user meets it: a typed phrase, a phone screen, errors, paging, uploads."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pixseek.collection import open_collection
from pixseek.core.query import SearchOptions
from pixseek.ingest import CocoSource, FolderSource, ingest
from pixseek.search import search
from tests.conftest import CHROMIUM_FLAGS, make_image
from tests.serving import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 900}


@pytest.fixture()
def shots(request, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    """Where a test saves its screenshots: $PIXSEEK_SCREENSHOTS/<test>, else a temporary folder."""
    chosen = os.environ.get("PIXSEEK_SCREENSHOTS")
    folder = (Path(chosen) if chosen else tmp_path / "screenshots") / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def test_a_typed_phrase_is_one_query_on_a_phone(demo, chromium_path, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    phrase, expected = phrase_with_an_answer(demo)
    assert len(phrase.split()) >= 4
    with running_server(demo.collection.root.parent) as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        missing: list[str] = []  # the favicon was a 404 on every page load
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("images in shapes")
        assert not missing
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
        # said as a sentence, not the API's JSON list of errors
        expect(page.locator("#status")).to_have_text(
            "text: String should have at most 1000 characters"
        )
        expect(page.locator(".result")).to_have_count(0)
        page.screenshot(path=str(shots / "phone-error.png"), full_page=True)
    assert not errors
    assert len(list(shots.glob("*.png"))) == 2


def test_an_empty_server_offers_an_upload(tmp_path, chromium_path, torch_embedder, shots) -> None:
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
        page.screenshot(path=str(shots / "empty.png"))
        page.set_input_files("#upload-input", str(photo))
        expect(page.locator(".result")).to_have_count(1, timeout=90_000)
        expect(page.locator("#status")).to_contain_text("1 image in photos")
        expect(page.locator("#empty")).to_be_hidden()
    collection = open_collection(root / "photos")
    assert collection.count() == 1
    assert Path(next(iter(collection.records())).path).parent == root / "photos" / "files"


def detector_photos(folder: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Eight photos with three annotated things; the detector misses some right and top ones."""
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    truth: list[dict] = []
    predictions: list[dict] = []
    boxes = ([10, 10, 60, 50], [80, 40, 70, 70], [100, 4, 50, 24])
    for n in range(8):
        photo = Image.new("RGB", (160, 120), (30 * n, 120, 200 - 20 * n))
        draw = ImageDraw.Draw(photo)
        draw.rectangle((10, 10, 70, 60), fill=(0, 0, 0))
        draw.ellipse((80, 40, 150, 110), fill=(255, 255, 255))
        draw.rectangle((100, 4, 150, 28), fill=(250, 220, 0))
        photo.save(folder / f"p{n}.png")
        entries.append({"id": n, "file_name": f"p{n}.png", "width": 160, "height": 120})
        for k, box in enumerate(boxes):
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
            found = k == 0 or (k == 1 and n % 2 == 0) or (k == 2 and n % 4 != 0)
            if found:  # recall: left 1.0, right 0.5, top 0.75
                score = 0.9 if k < 2 else 0.8
                predictions.append(
                    {"image_id": n, "category_id": k + 1, "bbox": box, "score": score}
                )
    return entries, truth, predictions


@pytest.fixture(scope="module")
def detector_root(tmp_path_factory, torch_embedder):  # type: ignore[no-untyped-def]
    """Collection "d": ground truth and a detector's predictions; "plain": photos only."""
    base = tmp_path_factory.mktemp("detector")
    entries, truth, predictions = detector_photos(base / "photos")
    categories = [
        {"id": 1, "name": "left thing"},
        {"id": 2, "name": "right thing"},
        {"id": 3, "name": "top thing"},
    ]
    gt = base / "instances_d.json"
    gt.write_text(json.dumps({"images": entries, "annotations": truth, "categories": categories}))
    pred = base / "predictions.json"
    pred.write_text(json.dumps(predictions))
    root = base / "root"
    collection = open_collection(root / "d", embedder=torch_embedder, create=True)
    ingest(collection, CocoSource(gt, base / "photos", pred))
    plain = open_collection(root / "plain", embedder=torch_embedder, create=True)
    for n, colour in enumerate([(220, 40, 40), (40, 200, 60), (40, 60, 220)]):
        make_image(base / "plain" / f"q{n}.png", colour, size=(120, 90))
    ingest(plain, FolderSource([base / "plain"]))
    ids = {Path(r.path).name: r.id for r in collection.records() if r.kind == "image"}
    return root, base / "photos", ids


def all_images_loaded(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "[...document.querySelectorAll('.result img, #debug-panel img, #query-chip img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def test_the_debug_panel(detector_root, chromium_path, shots) -> None:
    """Detector metrics on the current results, sortable; blind spots with legible crops;
    ground truth and predictions told apart on the result cards."""
    from playwright.sync_api import expect, sync_playwright

    root = detector_root[0]
    with running_server(root, "--runtime", "torch") as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#collection")).to_have_value("d")
        expect(page.locator(".result")).to_have_count(8)
        expect(page.locator("#blindspots-button")).to_be_visible()

        # the same thing annotated and predicted: two cards, told apart by their badges
        page.select_option("#kind", "object")
        page.fill("#query", "a white circle")
        page.click("#search-button")
        expect(page.locator("#status")).to_contain_text("results", timeout=90_000)
        expect(page.locator(".result")).to_have_count(24 + 18)
        gt_cards = page.locator('.result[data-source="gt"]')
        pred_cards = page.locator('.result[data-source="pred"]')
        expect(gt_cards).to_have_count(24)
        expect(pred_cards).to_have_count(18)
        for text in gt_cards.locator(".source").all_inner_texts():
            assert text == "GT"
        gt_outcomes = gt_cards.locator(".outcome").all_inner_texts()
        assert gt_outcomes.count("FN") == 6 and gt_outcomes.count("TP") == 18
        pred_badges = pred_cards.locator(".source").all_inner_texts()
        assert sorted(set(pred_badges)) == ["pred 0.80", "pred 0.90"], pred_badges
        assert set(pred_cards.locator(".outcome").all_inner_texts()) == {"TP"}
        expect(page.locator(".result .outcome-FN").first).to_have_css("color", "rgb(176, 0, 32)")
        all_images_loaded(page)
        page.screenshot(path=str(shots / "1-gt-and-pred-badges.png"))

        # metrics of the current results, sorted by any column
        page.select_option("#kind", "image")
        expect(page.locator("#status")).to_contain_text("8 results", timeout=90_000)
        expect(page.locator("#measure-button")).to_be_visible()
        page.click("#measure-button")
        panel = page.locator("#debug-panel")
        row = panel.locator("tbody tr", has_text="right thing")
        expect(row).to_be_visible()
        expect(row.locator("td").nth(4)).to_have_text("0.500")  # recall on these images

        def classes() -> list[str]:
            return panel.locator("tbody tr td:first-child").all_inner_texts()

        def sort(key: str) -> None:
            panel.locator(f'th[data-key="{key}"] button').click()

        sort("recall")
        assert classes() == ["left thing", "top thing", "right thing"]
        expect(panel.locator('th[data-key="recall"]')).to_have_attribute("aria-sort", "descending")
        sort("recall")
        assert classes() == ["right thing", "top thing", "left thing"]
        expect(panel.locator('th[data-key="recall"]')).to_have_attribute("aria-sort", "ascending")
        page.screenshot(path=str(shots / "2-metrics-by-recall.png"))
        sort("label")
        assert classes() == ["left thing", "right thing", "top thing"]
        sort("label")
        assert classes() == ["top thing", "right thing", "left thing"]
        sort("whole_ap50")
        assert classes()[0] == "left thing" and classes()[-1] == "right thing"
        sort("precision")  # all 1.000: ties keep the class order
        assert classes() == ["left thing", "right thing", "top thing"]
        for key in ("truth", "whole_precision", "whole_recall", "ap50"):
            sort(key)
            expect(panel.locator(f'th[data-key="{key}"]')).to_have_attribute(
                "aria-sort", "descending"
            )
            assert sorted(classes()) == ["left thing", "right thing", "top thing"]
        assert panel.locator('th[aria-sort="none"]').count() == 7

        # blind spots: crops at least 96 px, each with a label one can read
        page.click("#blindspots-button")
        expect(panel.locator(".spot").first).to_be_visible()
        expect(panel.locator(".spot").first).to_contain_text("thing")
        crops = panel.locator(".crop")
        assert crops.count() >= 2
        all_images_loaded(page)
        for index in range(crops.count()):
            crop = crops.nth(index)
            box = crop.locator("img").bounding_box()
            assert box is not None and box["width"] >= 96 and box["height"] >= 96, box
            caption = crop.locator("figcaption")
            assert caption.inner_text() in ("right thing", "top thing")
            size = float(caption.evaluate("e => getComputedStyle(e).fontSize").rstrip("px"))
            assert size >= 12
            assert caption.evaluate("e => e.scrollWidth <= e.clientWidth")  # not cut off
        page.screenshot(path=str(shots / "3-blind-spots.png"))
    assert not errors


def test_the_detector_tools_need_predictions(detector_root, chromium_path, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = detector_root[0]
    with running_server(root, "--runtime", "torch") as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=DESKTOP)
        page.goto(url + "/")
        expect(page.locator(".result")).to_have_count(8)
        expect(page.locator("#blindspots-button")).to_be_visible()
        # (a first search here lets the server finish loading its models, one at a time)
        page.fill("#query", "a red photo")
        page.click("#search-button")
        expect(page.locator("#status")).to_contain_text("48 results", timeout=90_000)
        expect(page.locator("#measure-button")).to_be_visible()
        page.select_option("#collection", "plain")
        expect(page.locator("#status")).to_contain_text("3 images in plain")
        expect(page.locator("#blindspots-button")).to_be_hidden()
        page.fill("#query", "a red photo")
        page.click("#search-button")
        expect(page.locator("#status")).to_contain_text("3 results", timeout=90_000)
        expect(page.locator("#query-bar")).to_be_visible()
        expect(page.locator("#measure-button")).to_be_hidden()
        expect(page.locator("#blindspots-button")).to_be_hidden()
        all_images_loaded(page)
        page.screenshot(path=str(shots / "no-predictions.png"))
        # back on the collection with predictions, both come back
        page.select_option("#collection", "d")
        expect(page.locator("#blindspots-button")).to_be_visible()
        page.click("#search-button")
        expect(page.locator("#measure-button")).to_be_visible(timeout=90_000)


def file_in_page(page, path: Path, mime: str):  # type: ignore[no-untyped-def]
    """A DataTransfer holding the file, as a drop or a paste carries it."""
    return page.evaluate_handle(
        """([data, name, type]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            return transfer;
        }""",
        [base64.b64encode(path.read_bytes()).decode(), path.name, mime],
    )


def test_search_by_an_outside_image(detector_root, chromium_path, shots) -> None:
    """An image chosen, pasted or dropped on the search bar searches the current collection."""
    from playwright.sync_api import expect, sync_playwright

    root, photos, ids = detector_root
    with running_server(root, "--runtime", "torch") as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator(".result")).to_have_count(8)
        page.select_option("#kind", "image")
        first = page.locator(".result").first

        # chosen with the file input
        page.set_input_files("#image-query-input", str(photos / "p3.png"))
        expect(page.locator("#query-chip")).to_contain_text("similar to p3.png")
        expect(page.locator("#status")).to_contain_text("8 results", timeout=90_000)
        expect(first).to_have_attribute("data-id", ids["p3.png"])
        expect(first.locator(".score")).to_have_text("1.000")
        expect(page.locator("#query-chip img")).to_have_attribute(
            "src", re.compile("^data:image/png;base64,")
        )
        all_images_loaded(page)
        page.screenshot(path=str(shots / "1-chosen-file.png"))

        # pasted from the clipboard while typing in the search box
        page.focus("#query")
        pasted = file_in_page(page, photos / "p5.png", "image/png")
        page.evaluate(
            """(transfer) => document.activeElement.dispatchEvent(new ClipboardEvent("paste",
                { clipboardData: transfer, bubbles: true, cancelable: true }))""",
            pasted,
        )
        expect(page.locator("#query-chip")).to_contain_text("similar to the pasted image")
        expect(first).to_have_attribute("data-id", ids["p5.png"])
        expect(first.locator(".score")).to_have_text("1.000")
        all_images_loaded(page)
        page.screenshot(path=str(shots / "2-pasted.png"))
        # a pasted text is still just text
        page.fill("#query", "")
        page.evaluate(
            """() => { const transfer = new DataTransfer();
                transfer.setData("text/plain", "a white circle");
                document.getElementById("query").dispatchEvent(new ClipboardEvent("paste",
                    { clipboardData: transfer, bubbles: true, cancelable: true })); }"""
        )
        expect(page.locator("#query-chip")).to_contain_text("similar to the pasted image")

        # dragged from the desktop and dropped on the search bar
        dropped = file_in_page(page, photos / "p6.png", "image/png")
        page.dispatch_event("#query", "dragenter", {"dataTransfer": dropped})
        page.dispatch_event("#query", "dragover", {"dataTransfer": dropped})
        expect(page.locator("#search-form")).to_have_class(re.compile("dropping"))
        expect(page.locator("#drop-hint")).to_be_visible()
        page.screenshot(path=str(shots / "3-dragging-over.png"))
        page.dispatch_event("#query", "drop", {"dataTransfer": dropped})
        expect(page.locator("#search-form")).not_to_have_class(re.compile("dropping"))
        expect(page.locator("#query-chip")).to_contain_text("similar to p6.png")
        expect(first).to_have_attribute("data-id", ids["p6.png"])
        expect(first.locator(".score")).to_have_text("1.000")
        all_images_loaded(page)
        page.screenshot(path=str(shots / "4-dropped.png"))

        # a large photo is scaled down in the browser before it is sent
        big = photos.parent / "big photo.png"
        Image.open(photos / "p2.png").resize((3200, 2400)).save(big)
        page.set_input_files("#image-query-input", str(big))
        expect(page.locator("#query-chip img")).to_have_attribute(
            "src", re.compile("^data:image/jpeg;base64,"), timeout=30_000
        )
        expect(first).to_have_attribute("data-id", ids["p2.png"], timeout=90_000)

        # a file that is not an image says so, and nothing is searched
        text = photos.parent / "notes.txt"
        text.write_text("not an image")
        page.dispatch_event(
            "#query", "drop", {"dataTransfer": file_in_page(page, text, "text/plain")}
        )
        expect(page.locator("#status")).to_have_class("error")
        expect(page.locator("#status")).to_contain_text("not an image")
    assert not errors


def test_adding_images_to_a_collection_that_has_some(
    tmp_path, chromium_path, torch_embedder, shots
) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "root"
    collection = open_collection(root / "pets", embedder=torch_embedder, create=True)
    make_image(tmp_path / "start" / "a.png", (200, 40, 40))
    make_image(tmp_path / "start" / "b.png", (40, 200, 40))
    ingest(collection, FolderSource([tmp_path / "start"]))
    new = [
        make_image(tmp_path / "new" / "c.png", (40, 40, 200)),
        make_image(tmp_path / "new" / "d.png", (200, 200, 40)),
    ]
    with running_server(root, "--runtime", "torch") as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=DESKTOP)
        page.goto(url + "/")
        expect(page.locator(".result")).to_have_count(2)
        expect(page.locator("#empty")).to_be_hidden()
        expect(page.locator("#add-images")).to_be_visible()
        all_images_loaded(page)
        page.screenshot(path=str(shots / "1-before.png"))
        page.set_input_files("#upload-input", [str(path) for path in new])
        expect(page.locator("#status")).to_contain_text("Added 2 images to pets", timeout=90_000)
        expect(page.locator("#status")).to_contain_text("4 images in pets")
        expect(page.locator(".result")).to_have_count(4)
        expect(page.locator("#collection option")).to_have_text("pets (4 images, 0 objects)")
        all_images_loaded(page)
        page.screenshot(path=str(shots / "2-after.png"))
        # on a phone too the button is there, and the page does not overflow
        page.set_viewport_size(PHONE)
        expect(page.locator("#add-images")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        page.screenshot(path=str(shots / "3-phone.png"))
    assert open_collection(root / "pets").count() == 4


def test_the_api_key_form(detector_root, chromium_path, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = detector_root[0]
    with (
        running_server(root, "--runtime", "torch", "--api-key", "s3cret") as url,
        sync_playwright() as p,
    ):
        page = browser(p, chromium_path).new_page(viewport=DESKTOP)
        dialogs: list[str] = []

        def refuse(dialog) -> None:  # type: ignore[no-untyped-def]
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", refuse)
        page.goto(url + "/")
        form = page.locator("#key-form")
        expect(form).to_be_visible()
        expect(form).to_contain_text("This server needs an API key")
        expect(page.locator("#key-input")).to_be_focused()
        page.screenshot(path=str(shots / "1-asked.png"))
        page.fill("#key-input", "wrong")
        page.press("#key-input", "Enter")
        expect(form).to_contain_text("not accepted")
        expect(form).to_be_visible()
        page.screenshot(path=str(shots / "2-rejected.png"))
        page.fill("#key-input", "s3cret")
        page.click("#key-submit")
        expect(form).to_be_hidden()
        expect(page.locator(".result")).to_have_count(8)
        all_images_loaded(page)  # thumbnails are fetched with the key too
        assert page.evaluate("sessionStorage.getItem('pixseek-api-key')") == "s3cret"
        assert page.evaluate("localStorage.getItem('pixseek-api-key')") is None
        page.screenshot(path=str(shots / "3-in.png"))
        # a reload in the same tab keeps the key
        page.reload()
        expect(page.locator(".result")).to_have_count(8)
        expect(form).to_be_hidden()
        # a key that stops working (a 401 later on) brings the form back, then goes on;
        # any request may be the first to meet it (a thumbnail still loading, or the gallery
        # the click asks for), so the click goes to the button whatever covers it by then
        page.evaluate("sessionStorage.setItem('pixseek-api-key', 'old key')")
        page.dispatch_event("#clear-button", "click")
        expect(form).to_be_visible()
        expect(form).to_contain_text("not accepted")
        page.fill("#key-input", "s3cret")
        page.press("#key-input", "Enter")
        expect(form).to_be_hidden()
        expect(page.locator("#status")).to_contain_text("8 images in d")
        # a new tab (a new browser session) asks again
        other = page.context.browser.new_page(viewport=DESKTOP)  # type: ignore[union-attr]
        other.goto(url + "/")
        expect(other.locator("#key-form")).to_be_visible()
    assert not dialogs


def test_close_matches_only(tmp_path, chromium_path, shots) -> None:
    """The "close matches only" box sends min_score "auto": a search by an image keeps
    only what scores above the calibrated level of unrelated pictures, and a text query
    the collection's labels could not calibrate says why instead of showing everything."""
    from playwright.sync_api import expect, sync_playwright

    from pixseek.demo.demo import DemoOptions, build_demo
    from pixseek.jobs.calibrate import calibrate

    demo = build_demo(DemoOptions(tmp_path / "demo", images=80))
    calibration = calibrate(demo.collection)
    with running_server(demo.collection.root.parent) as url, sync_playwright() as p:
        page = browser(p, chromium_path).new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("images in shapes")
        page.select_option("#kind", "image")
        page.fill("#query", "a red circle")
        page.click("#search-button")
        expect(page.locator(".result")).to_have_count(48, timeout=90_000)
        first = page.locator(".result").first.get_attribute("data-id")
        page.check("#close-only")  # the same text query again, with the cutoff
        expect(page.locator("#status")).to_have_class("error")
        expect(page.locator("#status")).to_contain_text('min_score "auto"')
        expect(page.locator("#status")).to_contain_text('untick "close matches only"')
        page.screenshot(path=str(shots / "text-cutoff-refused.png"))
        page.uncheck("#close-only")
        expect(page.locator(".result")).to_have_count(48)
        page.locator(".result .thumb").first.click()  # similar to this image
        expect(page.locator("#query-chip")).to_contain_text("similar to this image")
        expect(page.locator(".result")).to_have_count(48)
        page.check("#close-only")
        expect(page.locator("#status")).not_to_contain_text("searching", timeout=30_000)
        kept = page.locator(".result")
        expect(kept.first).to_have_attribute("data-id", str(first))
        shown = kept.count()
        assert 0 < shown < 48
        scores = [float(s) for s in page.locator(".result .score").all_inner_texts()]
        assert min(scores) >= calibration.unrelated - 1e-3
        page.screenshot(path=str(shots / "close-matches.png"))
    assert not errors
