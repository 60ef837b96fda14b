"""The debugging workbench in Chromium: blind spots with a planted failure, label errors
with verdicts, the embedding map (hover, box and lasso selections, measuring a selection,
its blind spots), uniqueness with a representative sample exported as CSV, and the map's
drawing time at 100,000 points."""

from __future__ import annotations

import csv
import io
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
        page = browser.new_page(viewport=DESKTOP, accept_downloads=True)
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

        # a lasso (a diamond) selects the points inside it; blind spots are found among them
        page.click("#map-button")
        expect(page.locator("#map-canvas")).to_be_visible(timeout=60_000)
        page.select_option("#map-tool", "lasso")
        box = page.locator("#map-canvas").bounding_box()
        assert box is not None
        left, top, width, height = box["x"], box["y"], box["width"], box["height"]
        diamond = [(0.5, 0.03), (0.97, 0.5), (0.5, 0.97), (0.03, 0.5)]
        page.mouse.move(left + width * 0.5, top + height * 0.03)
        page.mouse.down()
        for fx, fy in [*diamond[1:], diamond[0]]:
            page.mouse.move(left + width * fx, top + height * fy, steps=6)
        page.mouse.up()
        expect(page.locator("#status")).to_contain_text("points selected")
        chosen, pixels, size = page.evaluate(
            "[debugView.selected.map((p) => p.id), debugView.map.points.map((p, n) =>"
            " [p.id, debugView.map.px[n], debugView.map.py[n]]),"
            " [$('map-canvas').width, $('map-canvas').height]]"
        )
        corners = [(fx * size[0], fy * size[1]) for fx, fy in diamond]
        inside = {i for i, x, y in pixels if in_diamond(x, y, corners, -3)}
        near = {i for i, x, y in pixels if in_diamond(x, y, corners, 3)}
        assert 0 < len(inside) < total and inside <= set(chosen) <= near
        page.screenshot(path=str(shots / "5-map-lasso.png"))
        page.click("#blindspots-button")
        expect(page.locator("#debug-panel")).to_contain_text("selected images", timeout=120_000)

        # uniqueness: the most unusual images, then a sample as the results, exported
        page.click("#uniqueness-button")
        expect(page.locator(".unique").first).to_contain_text("uniqueness 1.00", timeout=60_000)
        expect(page.locator(".unique")).to_have_count(24)  # the top 24 of 30
        page.fill("#sample-size", "5")
        page.click("#sample-button")
        expect(page.locator("#query-chip")).to_contain_text("representative sample of 5")
        expect(page.locator(".result")).to_have_count(5)
        page.screenshot(path=str(shots / "6-uniqueness-sample.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#sample-export")
        rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
        assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"] and rows[0]["covering"] == ""
    assert not errors, errors


def in_diamond(x: float, y: float, corners: list[tuple[float, float]], margin: float) -> bool:
    """Whether (x, y) is inside the convex polygon ``corners`` (clockwise on screen), with
    its edges moved ``margin`` pixels outwards (negative: inwards)."""
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        if cross < -margin * ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5:
            return False
    return True


MAP_POINTS = 100_000
SYNTHETIC_MAP = """(count) => {
  // clusters of points as UMAP lays them out, coloured by 25 labels (20 colours)
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const points = [];
  for (let n = 0; n < count; n++) {
    const c = n % 25, angle = random() * 6.283, r = 0.08 * Math.sqrt(random());
    points.push({ id: `p${n}`, image_id: `i${n >> 2}`, kind: n % 4 ? "object" : "image",
      label: `class${c}`, source: "gt", outcome: n % 7 ? "TP" : "FN", split: null,
      x: 0.1 + 0.8 * ((c % 5) / 4) + r * Math.cos(angle) - 0.04,
      y: 0.1 + 0.8 * (Math.floor(c / 5) / 4) + r * Math.sin(angle) - 0.04 });
  }
  debugView.map = { points, grid: null };
  let start = performance.now();
  drawMapPanel(panel(""));          // the first draw also works out colours and pixels
  const first = performance.now() - start;
  const repaints = [];
  for (let run = 0; run < 5; run++) {
    start = performance.now();
    paintMap();
    repaints.push(performance.now() - start);
  }
  const canvas = $("map-canvas"), lasso = [];
  for (let n = 0; n < 64; n++) {    // a lasso of 64 points around the map's centre
    const angle = (n / 64) * 6.283;
    lasso.push([canvas.width * (0.5 + 0.3 * Math.cos(angle)),
      canvas.height * (0.5 + 0.3 * Math.sin(angle))]);
  }
  start = performance.now();
  const selected = pointsInLasso(canvas, lasso).length;
  return { first, repaints, lasso: performance.now() - start, selected };
}"""


def test_the_map_draws_100000_points(tmp_path, chromium_path, shots) -> None:  # noqa: F811
    """How long the map takes to draw 100,000 points, and to find those in a lasso (written
    to the screenshot folder and printed, never asserted: the machine's load decides it)."""
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "root").mkdir()
    with running_server(tmp_path / "root") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        expect(page.locator("#empty")).to_be_visible()
        timings = page.evaluate(SYNTHETIC_MAP, MAP_POINTS)
        assert page.evaluate("debugView.map.points.length") == MAP_POINTS
        assert 0 < timings["selected"] < MAP_POINTS
        page.screenshot(path=str(shots / "1-map-100000-points.png"), full_page=True)
        (shots / "timings.json").write_text(json.dumps({"points": MAP_POINTS, **timings}))
        repaint = sorted(timings["repaints"])[len(timings["repaints"]) // 2]
        print(
            f"map of {MAP_POINTS} points: first draw {timings['first']:.1f} ms, repaint "
            f"{repaint:.1f} ms (median), lasso {timings['lasso']:.1f} ms"
        )
    assert not errors, errors
