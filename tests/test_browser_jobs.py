"""The collection jobs in Chromium: duplicate groups marked and exported, an outside image
matched with the part that matched drawn, images classified, the models listed, a reindex
followed to the end and searches switched back to the first index."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from PIL import Image

from pixseek.collection import open_collection
from pixseek.demo.factory import build_clip
from pixseek.ingest import CocoSource, FolderSource, ingest
from tests.conftest import CHROMIUM_FLAGS, make_image
from tests.serving import running_server
from tests.test_browser_ui import shots  # noqa: F401  (the screenshot folder fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DESKTOP = {"width": 1280, "height": 1000}


@pytest.fixture(scope="module")
def shop(coco, tmp_path_factory, torch_embedder):  # type: ignore[no-untyped-def]
    """Labelled photos with an exact and a resized copy, and three COCO images with boxes."""
    work = tmp_path_factory.mktemp("jobs")
    photos = work / "photos"
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 220)}
    for name, colour in colours.items():
        make_image(photos / ("warm" if name == "red" else "cool") / f"{name}.jpg", colour, (96, 72))
    shutil.copy(photos / "cool" / "blue.jpg", photos / "cool" / "blue-copy.jpg")
    Image.open(photos / "warm" / "red.jpg").resize((80, 60)).save(photos / "warm" / "red-small.png")
    data = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    kept = sorted({a["image_id"] for a in data["annotations"]})[:3]
    data["images"] = [i for i in data["images"] if i["id"] in kept]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    (work / "gt.json").write_text(json.dumps(data))
    root = work / "root"
    collection = open_collection(root / "shop", embedder=torch_embedder, create=True)
    assert ingest(collection, FolderSource([photos], label_from_folder=True)).failed == 0
    assert ingest(collection, CocoSource(work / "gt.json", coco / "val2017")).failed == 0
    # an outside image: the largest annotated object, cut out of its photo
    biggest = max(data["annotations"], key=lambda a: a["area"])
    image = next(i for i in data["images"] if i["id"] == biggest["image_id"])
    x, y, w, h = biggest["bbox"]
    crop = Image.open(coco / "val2017" / image["file_name"]).crop((x, y, x + w, y + h))
    crop.save(work / "outside-crop.jpg")
    build_clip(work / "models" / "other-clip", seed=1)  # a second model to reindex with
    return root, photos, work / "outside-crop.jpg", work / "models"


def test_every_job_panel(shop, chromium_path, shots) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    root, photos, crop, models_root = shop
    models = ("--models-root", str(models_root))
    with running_server(root, "--runtime", "torch", *models) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#status")).to_contain_text("images in shop")

        # duplicates: two groups, each with one keeper; mark the copies and export them
        page.click("#duplicates-button")
        expect(page.locator(".job-heading")).to_contain_text("calibrated", timeout=60_000)
        page.fill("#dup-threshold", "0.99")  # a random tiny model calibrates to no copies
        page.press("#dup-threshold", "Enter")
        expect(page.locator(".job-heading")).to_contain_text("threshold 0.990")
        # the server made no views inside the request, and says so
        expect(page.locator(".views-note")).to_contain_text("turned copies and crops")
        # it sees every solid colour's corners alike, too: compare the images as they are
        page.uncheck("#dup-views")
        expect(page.locator("#dup-views")).not_to_be_checked()
        groups = page.locator(".dup-group")
        expect(groups).to_have_count(2)
        for n in range(2):
            expect(groups.nth(n).locator(".dup-member.keeper")).to_have_count(1)
        expect(page.locator(".dup-member .tier-exact")).to_have_count(2)
        expect(page.locator("#dup-export")).to_be_disabled()
        page.click("button.mark-all")
        expect(page.locator("#dup-marked")).to_have_text("2 marked")
        page.screenshot(path=str(shots / "1-duplicates-marked.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#dup-export")
        rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
        marked = sorted(r["path"].rsplit("/", 1)[-1] for r in rows)
        assert marked == ["blue-copy.jpg", "red-small.png"] or marked == [
            "blue.jpg",
            "red-small.png",
        ], marked
        assert all(r["id"] and r["keeper"] != r["id"] for r in rows)
        page.select_option("#dup-across", "split")
        expect(page.locator(".job-heading")).to_contain_text("only across split")
        expect(page.locator(".dup-group")).to_have_count(0)

        # match: a crop of a collection photo finds that photo, with the part that matched
        page.click("#match-button")
        page.fill("#match-threshold", "0.97")
        page.press("#match-threshold", "Enter")
        # two files: each answered under its own heading
        page.set_input_files("#match-input", [str(crop), str(photos / "cool" / "green.jpg")])
        expect(page.locator(".match-summary")).to_have_count(2, timeout=30_000)
        expect(page.locator(".match-summary").nth(0)).to_contain_text("found", timeout=30_000)
        expect(page.locator(".match-summary").nth(1)).to_contain_text(
            "of green.jpg found", timeout=30_000
        )
        boxes = page.locator(".match .match-box")
        expect(boxes.first).to_be_visible()
        # the boxes sit inside their thumbnails once those have loaded and been laid out
        page.wait_for_function(
            "[...document.querySelectorAll('.match-box')].every(b => {"
            " const f = b.parentElement.getBoundingClientRect(), r = b.getBoundingClientRect();"
            " return r.width > 4 && r.left >= f.left - 1 && r.right <= f.right + 1; })",
            timeout=15_000,
        )
        page.wait_for_function(
            "[...document.querySelectorAll('.match img')].every(i => i.complete && i.naturalWidth)"
        )
        page.screenshot(path=str(shots / "2-match.png"), full_page=True)
        # no views are kept: the panel offers to make them, as a background job
        expect(page.locator(".views-note")).to_contain_text("crops of a corner")
        page.click("#make-views")
        expect(page.locator(".views-note")).to_contain_text("in the background")

        # classify: each image gets its folder's label with a confidence
        page.click("#classify-button")
        chosen = [photos / "warm" / "red.jpg", photos / "cool" / "green.jpg"]
        page.set_input_files("#classify-input", [str(path) for path in chosen])
        expect(page.locator(".classified").nth(1)).to_have_attribute("data-label", "cool")
        expect(page.locator(".classified").nth(0)).to_have_attribute("data-label", "warm")
        expect(page.locator(".classify-label").first).to_contain_text("%")
        page.screenshot(path=str(shots / "3-classify.png"), full_page=True)

        # models: the collection's active model, and its background jobs
        page.click("#models-button")
        expect(page.locator("#models-table tr.current")).to_contain_text("shop")
        expect(page.locator("#models-table tr.current")).to_contain_text("tiny-clip")
        views = page.locator("#job-list .job").first
        expect(views).to_contain_text("views")
        expect(views).to_have_class("job job-done", timeout=60_000)
        page.fill("#reindex-model", "other-clip")
        page.click(".reindex-form button")
        job = page.locator("#job-list .job").nth(1)
        expect(job).to_contain_text("reindex other-clip")
        expect(job).to_have_class("job job-done", timeout=60_000)
        expect(job).to_contain_text("100%")
        page.screenshot(path=str(shots / "4-models-reindexed.png"), full_page=True)

        # the collection's indexes: the new one is active; switch searches back to the first
        expect(page.locator("#indexes-table tr[data-index]")).to_have_count(2)
        active = page.locator("#indexes-table tr.active")
        expect(active).to_contain_text("other-clip")
        expect(active).to_have_attribute("data-index", open_collection(root / "shop").default_index)
        first = page.locator("#indexes-table tr:not(.active)[data-index]")
        expect(first).to_contain_text("tiny-clip")
        name = first.get_attribute("data-index")
        first.locator("button.activate-index").click()
        expect(page.locator("#indexes-table tr.active")).to_have_attribute("data-index", name)
        expect(page.locator("#status")).to_contain_text(f"use the index {name} now")
        expect(page.locator("#models-table tr.current")).to_contain_text("tiny-clip")
        assert open_collection(root / "shop").default_index == name
        page.screenshot(path=str(shots / "5-index-switched.png"), full_page=True)
    assert not errors, errors
