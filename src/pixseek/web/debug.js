// pixseek web UI: the debugging workbench panels that app.js does not hold: label errors
// (confirm or dismiss each), the embedding map (a canvas scatter with hover thumbnails and a
// box or lasso selection that becomes the current result set) and uniqueness (the most
// unusual images, and a representative sample as the current result set, exported as CSV).
// Uses app.js's helpers ($, json, api, base, loadImage, thumbnailPath, render, status, state)
// and jobs.js's (jobPanel, element, csvCell, fileName).
"use strict";

const debugView = { map: null, colourBy: "label", tool: "box", selecting: null, selected: [] };

// The workbench panels share jobs.js's panel: one at a time, late answers dropped.
function panel(title, name = "workbench") {
  return jobPanel(title, name);
}

// Whether the panel opened with `heading` is still the one shown (no other panel since,
// nor the metrics or blind spots that app.js writes into the same place).
function stillShown(shown, heading) {
  return shown === jobsView.shown && heading.isConnected;
}

// ---- label errors ------------------------------------------------------------------------

async function showLabelErrors() {
  const holder = panel("finding label errors…", "label-errors");
  const shown = jobsView.shown, heading = holder.firstChild;
  try {
    const report = await json(base() + "/label-errors?top=30");
    if (!stillShown(shown, heading)) return;
    holder.firstChild.textContent = `${report.errors.length} of ${report.checked} labelled ` +
      `${report.kind}s whose ${report.neighbours} nearest neighbours suggest another label ` +
      "(most suspect first):";
    const list = document.createElement("div");
    list.className = "label-errors";
    for (const row of report.errors) list.appendChild(labelErrorRow(row));
    holder.appendChild(list);
  } catch (error) { holder.firstChild.textContent = error.message; }
}

function labelErrorRow(row) {
  const item = document.createElement("figure");
  item.className = "crop label-error";
  item.dataset.id = row.id;
  if (row.verdict) item.dataset.verdict = row.verdict;
  const img = document.createElement("img");
  img.alt = row.label || "object";
  loadImage(img, thumbnailPath(row.record, 224));
  const caption = document.createElement("figcaption");
  caption.textContent = `${row.label} → ${row.suggested}`;
  caption.title = `labelled ${row.label}; ${Math.round(100 * row.suggested_share)}% of its ` +
    `neighbours' vote says ${row.suggested} (mistakenness ${row.mistakenness.toFixed(2)})`;
  const score = document.createElement("span");
  score.className = "mistakenness";
  score.textContent = `mistakenness ${row.mistakenness.toFixed(2)}`;
  const actions = document.createElement("span");
  actions.className = "actions";
  const verdict = (value) => async () => {
    const next = item.dataset.verdict === value ? null : value;
    try {
      await api(`${base()}/label-errors/${encodeURIComponent(row.id)}`, {
        method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ verdict: next }) });
      if (next) item.dataset.verdict = next; else delete item.dataset.verdict;
    } catch (error) { status(error.message, true); }
  };
  actions.append(
    button("Wrong label", "confirm", verdict("confirmed")),
    button("Label is right", "dismiss", verdict("dismissed")),
  );
  item.append(img, caption, score, actions);
  return item;
}

// ---- the embedding map -------------------------------------------------------------------

const MAP_COLOURS = ["#1d6fe0", "#ff9500", "#1b7f3b", "#b00020", "#5856d6", "#a35200",
  "#00a3a3", "#d63384", "#6c757d", "#7a9e00", "#003f88", "#e85d04", "#2a9d8f", "#9d4edd",
  "#8d6e63", "#f4a261", "#264653", "#e76f51", "#118ab2"];

async function showMap() {
  const holder = panel("laying out the map…", "map");
  const shown = jobsView.shown, heading = holder.firstChild;
  try {
    await json(base() + "/map", {});            // bring it up to date (new points only)
    const points = [];
    for (let offset = 0; ; offset += 20000) {
      const page = await json(`${base()}/map?offset=${offset}&limit=20000`);
      points.push(...page.points);
      if (points.length >= page.total || !page.points.length) break;
    }
    if (!stillShown(shown, heading)) return;
    debugView.map = { points, grid: null };
    drawMapPanel(holder);
  } catch (error) { holder.firstChild.textContent = error.message; }
}

function drawMapPanel(holder) {
  const { points } = debugView.map;
  holder.firstChild.textContent = `${points.length} images and objects, laid out by UMAP. ` +
    "Hover for a picture; drag a box or a lasso to make the points inside the current results.";
  const controls = document.createElement("div");
  controls.className = "map-controls";
  const select = document.createElement("select");
  select.id = "map-colour";
  select.setAttribute("aria-label", "colour the map by");
  for (const field of ["label", "kind", "source", "outcome", "split"]) {
    const option = document.createElement("option");
    option.value = field;
    option.textContent = `colour: ${field}`;
    select.appendChild(option);
  }
  select.value = debugView.colourBy;
  select.addEventListener("change", () => { debugView.colourBy = select.value; paintMap(); });
  const tool = document.createElement("select");
  tool.id = "map-tool";
  tool.setAttribute("aria-label", "how to select points");
  for (const [value, text] of [["box", "select: box"], ["lasso", "select: lasso"]]) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    tool.appendChild(option);
  }
  tool.value = debugView.tool;
  tool.addEventListener("change", () => { debugView.tool = tool.value; });
  controls.append(select, tool);
  const stage = document.createElement("div");
  stage.className = "map-stage";
  const canvas = document.createElement("canvas");
  canvas.id = "map-canvas";
  canvas.width = Math.min(900, holder.clientWidth - 240 || 640);
  canvas.height = Math.round(canvas.width * 0.7);
  const tip = document.createElement("div");
  tip.id = "map-tip";
  tip.hidden = true;
  const legend = document.createElement("ul");
  legend.id = "map-legend";
  stage.append(canvas, tip, legend);
  holder.append(controls, stage);
  wireMap(canvas, tip);
  paintMap();
}

// Each point's colour: the field's values, most common first, get the first colours; the
// rest share the last. Computed once per field.
function mapColours() {
  const map = debugView.map, field = debugView.colourBy;
  if (map.colours && map.colours.field === field) return map.colours;
  // each point's value as a number (its first appearance), counted; then ranked
  const number = new Map(), counts = [], values = new Uint32Array(map.points.length);
  for (let n = 0; n < map.points.length; n++) {
    const value = map.points[n][field] || "(none)";
    let known = number.get(value);
    if (known === undefined) { known = counts.length; number.set(value, known); counts.push(0); }
    counts[known] += 1;
    values[n] = known;
  }
  const names = [...number.keys()];
  const ranked = counts.map((_, n) => n).sort((a, b) => counts[b] - counts[a]);
  const order = ranked.map((n) => [names[n], counts[n]]);
  const colour = new Map(order.slice(0, MAP_COLOURS.length - 1)
    .map(([value], n) => [value, MAP_COLOURS[n]]));
  const other = MAP_COLOURS[MAP_COLOURS.length - 1];
  const slot = new Uint8Array(names.length).fill(MAP_COLOURS.length - 1);
  ranked.slice(0, MAP_COLOURS.length - 1).forEach((n, rank) => { slot[n] = rank; });
  const codes = new Uint8Array(map.points.length);
  for (let n = 0; n < values.length; n++) codes[n] = slot[values[n]];
  map.colours = { field, colour, order, other, codes };
  return map.colours;
}

// A colour as one 32-bit pixel of an ImageData buffer, in this machine's byte order.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function pixel(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return (LITTLE_ENDIAN ? (255 << 24) | (b << 16) | (g << 8) | r
    : (r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
}

// The points' canvas pixels, computed once per canvas size.
function mapPixels(canvas) {
  const map = debugView.map;
  if (!map.px || map.width !== canvas.width || map.height !== canvas.height) {
    const count = map.points.length;
    map.px = new Int32Array(count);
    map.py = new Int32Array(count);
    const spanX = canvas.width - 2 * MAP_MARGIN, spanY = canvas.height - 2 * MAP_MARGIN;
    for (let n = 0; n < count; n++) {     // as toCanvas, without an array per point
      const p = map.points[n];
      map.px[n] = Math.round(MAP_MARGIN + p.x * spanX);
      map.py[n] = Math.round(canvas.height - MAP_MARGIN - p.y * spanY);
    }
    map.width = canvas.width;
    map.height = canvas.height;
    map.grid = null;
  }
  return map;
}

// Points are 3-pixel squares written straight into one pixel buffer, 32 bits at a time, and
// put on the canvas in one call: 100,000 points draw in a few milliseconds. The picture is
// kept, so a selection being dragged redraws only its outline over it.
function paintMap() {
  const canvas = $("map-canvas");
  if (!canvas) return;
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const image = context.createImageData(width, height);
  const pixels = new Uint32Array(image.data.buffer);
  pixels.fill(0xffffffff);
  const { colour, order, other, codes } = mapColours();
  const palette = Uint32Array.from(MAP_COLOURS, pixel);
  const { px, py } = mapPixels(canvas);
  for (let n = 0; n < px.length; n++) {
    const value = palette[codes[n]], x = px[n], y = py[n];
    for (let row = Math.max(0, y - 1); row <= Math.min(height - 1, y + 1); row++) {
      const at = row * width;
      for (let col = Math.max(0, x - 1); col <= Math.min(width - 1, x + 1); col++) {
        pixels[at + col] = value;
      }
    }
  }
  context.putImageData(image, 0, 0);
  debugView.map.image = image;
  const legend = $("map-legend");
  legend.innerHTML = "";
  for (const [value, count] of order.slice(0, 12)) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour.get(value) || other;
    li.append(swatch, document.createTextNode(`${value} (${count})`));
    legend.appendChild(li);
  }
}

const MAP_MARGIN = 10;
function toCanvas(p, canvas) {
  return [Math.round(MAP_MARGIN + p.x * (canvas.width - 2 * MAP_MARGIN)),
          Math.round(canvas.height - MAP_MARGIN - p.y * (canvas.height - 2 * MAP_MARGIN))];
}

// A coarse grid of the points' canvas cells finds the point under the pointer quickly.
function nearestPoint(canvas, x, y) {
  const map = mapPixels(canvas);
  if (!map.grid) {
    map.grid = new Map();
    for (let n = 0; n < map.px.length; n++) {
      const key = `${map.px[n] >> 3},${map.py[n] >> 3}`;
      if (!map.grid.has(key)) map.grid.set(key, []);
      map.grid.get(key).push(n);
    }
  }
  let best = null, bestDistance = 36;
  for (let gx = (x >> 3) - 1; gx <= (x >> 3) + 1; gx++) {
    for (let gy = (y >> 3) - 1; gy <= (y >> 3) + 1; gy++) {
      for (const n of map.grid.get(`${gx},${gy}`) || []) {
        const distance = (map.px[n] - x) ** 2 + (map.py[n] - y) ** 2;
        if (distance < bestDistance) { best = map.points[n]; bestDistance = distance; }
      }
    }
  }
  return best;
}

// Whether (x, y) is inside the polygon of corners (xs[i], ys[i]) (even-odd rule: a ray to
// the right crosses its edges an odd number of times).
function insidePolygon(x, y, xs, ys) {
  let inside = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    if ((ys[i] > y) !== (ys[j] > y)
        && x < ((xs[j] - xs[i]) * (y - ys[i])) / (ys[j] - ys[i]) + xs[i]) inside = !inside;
  }
  return inside;
}

// The points inside a lasso, tested once when it is closed: only those within its bounding
// box are tested against its edges.
function pointsInLasso(canvas, polygon) {
  const map = mapPixels(canvas);
  const xs = Float64Array.from(polygon, (v) => v[0]), ys = Float64Array.from(polygon, (v) => v[1]);
  const [left, right] = [Math.min(...xs), Math.max(...xs)];
  const [top, bottom] = [Math.min(...ys), Math.max(...ys)];
  const inside = [];
  for (let n = 0; n < map.px.length; n++) {
    const x = map.px[n], y = map.py[n];
    if (x < left || x > right || y < top || y > bottom) continue;
    if (insidePolygon(x, y, xs, ys)) inside.push(map.points[n]);
  }
  return inside;
}

function pointsInBox(canvas, [sx, sy], [x, y]) {
  const map = mapPixels(canvas);
  const [left, right] = [Math.min(sx, x), Math.max(sx, x)];
  const [top, bottom] = [Math.min(sy, y), Math.max(sy, y)];
  const inside = [];
  for (let n = 0; n < map.px.length; n++) {
    const px = map.px[n], py = map.py[n];
    if (px >= left && px <= right && py >= top && py <= bottom) inside.push(map.points[n]);
  }
  return inside;
}

// A selection's outline over the kept picture: a box from its first to its last point, or
// the lasso's closed path.
function outlineSelection(canvas, tool, path) {
  const context = canvas.getContext("2d");
  if (debugView.map.image) context.putImageData(debugView.map.image, 0, 0);
  context.strokeStyle = "#ff3b30";
  context.fillStyle = "rgba(255, 59, 48, 0.08)";
  context.lineWidth = 2;
  const [sx, sy] = path[0], [x, y] = path[path.length - 1];
  if (tool === "box") { context.strokeRect(sx, sy, x - sx, y - sy); return; }
  context.beginPath();
  context.moveTo(sx, sy);
  for (const [px, py] of path) context.lineTo(px, py);
  context.closePath();
  context.fill();
  context.stroke();
}

// While dragging, the outline is drawn at most once per frame.
function drawSelection(canvas) {
  const selecting = debugView.selecting;
  if (!selecting || selecting.frame) return;
  selecting.frame = requestAnimationFrame(() => {
    selecting.frame = 0;
    if (debugView.selecting === selecting) outlineSelection(canvas, selecting.tool, selecting.path);
  });
}

function wireMap(canvas, tip) {
  const at = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [Math.round((event.clientX - rect.left) * canvas.width / rect.width),
            Math.round((event.clientY - rect.top) * canvas.height / rect.height)];
  };
  let shown = null;
  canvas.addEventListener("pointermove", (event) => {
    const [x, y] = at(event);
    const selecting = debugView.selecting;
    if (selecting) {
      const [lx, ly] = selecting.path[selecting.path.length - 1];
      if (selecting.tool === "box") selecting.path[1] = [x, y];
      else if (Math.abs(x - lx) + Math.abs(y - ly) >= 3) selecting.path.push([x, y]);
      drawSelection(canvas);
      return;
    }
    const point = nearestPoint(canvas, x, y);
    if (!point) { tip.hidden = true; shown = null; return; }
    tip.style.left = `${Math.min(x + 12, canvas.width - 150)}px`;
    tip.style.top = `${Math.max(0, y - 140)}px`;
    tip.hidden = false;
    if (shown === point.id) return;
    shown = point.id;
    tip.innerHTML = "";
    const img = document.createElement("img");
    img.alt = point.label || point.kind;
    loadImage(img, thumbnailPath(point, 128));
    const text = document.createElement("div");
    text.textContent = [point.kind, point.label, point.source, point.outcome]
      .filter(Boolean).join(" · ");
    tip.append(img, text);
  });
  canvas.addEventListener("pointerleave", () => { tip.hidden = true; shown = null; });
  canvas.addEventListener("pointercancel", () => {
    debugView.selecting = null;
    if (debugView.map.image) canvas.getContext("2d").putImageData(debugView.map.image, 0, 0);
  });
  canvas.addEventListener("pointerdown", (event) => {
    const start = at(event);
    debugView.selecting = { tool: debugView.tool, path: [start, start], frame: 0 };
    if (canvas.setPointerCapture) canvas.setPointerCapture(event.pointerId);
    tip.hidden = true;
  });
  canvas.addEventListener("pointerup", (event) => {
    const selecting = debugView.selecting;
    if (!selecting) return;
    debugView.selecting = null;
    if (selecting.frame) cancelAnimationFrame(selecting.frame);
    const end = at(event);
    const path = selecting.tool === "box" ? [selecting.path[0], end] : [...selecting.path, end];
    const xs = path.map((v) => v[0]), ys = path.map((v) => v[1]);
    if (Math.max(...xs) - Math.min(...xs) < 3 || Math.max(...ys) - Math.min(...ys) < 3) {
      if (debugView.map.image) canvas.getContext("2d").putImageData(debugView.map.image, 0, 0);
      return;                       // a click, not a selection
    }
    outlineSelection(canvas, selecting.tool, path);   // stays until the map is painted again
    selectPoints(selecting.tool === "box" ? pointsInBox(canvas, path[0], end)
      : pointsInLasso(canvas, path), selecting.tool);
  });
}

// The selection becomes the current result set: its records are shown as results, and
// "Measure the detector on these images" and "Blind spots" work on their images.
async function selectPoints(points, tool = "box") {
  if (!points.length) { status(`no points in that ${tool}`); return; }
  debugView.selected = points;
  state.selection = [...new Set(points.map((p) => p.image_id))];
  state.query = null;
  setChip({ text: `${points.length} points selected on the map` });
  const records = points.slice(0, 500).map((p) => ({
    id: p.id, kind: p.kind, image_id: p.image_id, label: p.label, source: p.source,
    metadata: p.outcome ? { outcome: p.outcome } : {} }));
  render(records, false);
  $("pager").hidden = true;
  $("more").hidden = true;
  status(`${points.length} points selected (${state.selection.length} images)`);
}

// ---- uniqueness and a representative sample --------------------------------------------

const uniqueView = { size: 12, sample: null };

async function showUniqueness() {
  const holder = jobPanel("finding the most unusual images…", "uniqueness");
  const controls = element("div", "job-controls");
  const size = document.createElement("input");
  size.id = "sample-size";
  size.type = "number";
  size.min = "1";
  size.max = "10000";
  size.value = String(uniqueView.size);
  size.title = "how many images the sample has";
  size.setAttribute("aria-label", "sample size");
  const take = button("Representative sample", "sample", () => showSample(Number(size.value)));
  take.id = "sample-button";
  size.addEventListener("keydown", (event) => { if (event.key === "Enter") take.click(); });
  const exported = button("Export sample as CSV", "export-sample", exportSample);
  exported.id = "sample-export";
  exported.disabled = true;
  controls.append(element("span", "", "representative sample of"), size, take, exported);
  holder.appendChild(controls);
  const shown = jobsView.shown, heading = holder.firstChild;
  try {
    const report = await json(`${base()}/uniqueness`, { top: 24 });
    if (!stillShown(shown, heading)) return;
    holder.firstChild.textContent = `The ${report.unusual.length} most unusual of ` +
      `${plural(report.checked, "image")}: uniqueness is the mean cosine distance to the ` +
      `${report.neighbours} nearest images, over the largest (1: the most unusual). A ` +
      "representative sample covers the collection: each image taken is the one farthest " +
      "from those taken before.";
    const list = element("div", "unique-list");
    list.id = "unique-list";
    for (const row of report.unusual) list.appendChild(uniqueCard(row));
    holder.appendChild(list);
  } catch (error) { holder.firstChild.textContent = error.message; }
}

function uniqueCard(row) {
  const record = row.record;
  const item = element("figure", "crop unique");
  item.dataset.id = record.id;
  item.title = "search for images like this one";
  const img = document.createElement("img");
  img.alt = fileName(record.path);
  loadImage(img, thumbnailPath(record, 224));
  const caption = element("figcaption", "", fileName(record.path));
  const score = element("span", "uniqueness", `uniqueness ${row.uniqueness.toFixed(2)}`);
  item.append(img, caption, score);
  item.addEventListener("click", () => moreLikeThis(record));
  return item;
}

// The sample becomes the current result set (so "Measure the detector on these images"
// measures on it) and can be exported.
async function showSample(size) {
  if (!Number.isInteger(size) || size < 1) {
    status("the sample size is a whole number ≥ 1", true);
    return;
  }
  uniqueView.size = size;
  status(`choosing a representative sample of ${size}…`);
  const view = ++state.view;                  // a search started meanwhile wins
  try {
    const report = await json(`${base()}/uniqueness`, { top: 0, sample: size });
    if (view !== state.view) return;
    uniqueView.sample = report.sample;
    const exported = $("sample-export");
    if (exported) exported.disabled = !report.sample.length;
    state.selection = report.sample.map((row) => row.record.image_id);
    state.query = null;
    setChip({ text: `a representative sample of ${report.sample.length}` });
    render(report.sample.map((row) => row.record), false);
    $("pager").hidden = true;
    $("more").hidden = true;
    status(`a representative sample of ${report.sample.length} of ` +
      `${plural(report.checked, "image")}: every image is within cosine distance ` +
      `${report.coverage.toFixed(3)} of one of them`);
  } catch (error) { status(error.message, true); }
}

function exportSample() {
  const rows = [["rank", "id", "path", "label", "covers", "covering", "uniqueness"]];
  for (const row of uniqueView.sample || []) {
    rows.push([row.rank, row.id, row.record.path, row.record.label, row.covers, row.covering,
      row.uniqueness]);
  }
  const text = rows.map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = `${state.collection}-sample-${rows.length - 1}.csv`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  status(`exported a sample of ${plural(rows.length - 1, "image")}`);
}

$("label-errors-button").addEventListener("click", showLabelErrors);
$("uniqueness-button").addEventListener("click", showUniqueness);
$("map-button").addEventListener("click", showMap);
