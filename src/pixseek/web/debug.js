// pixseek web UI: the debugging workbench panels that app.js does not hold: label errors
// (confirm or dismiss each) and the embedding map (a canvas scatter with hover thumbnails and
// a box selection that becomes the current result set). Uses app.js's helpers ($, json, api,
// base, loadImage, thumbnailPath, render, status, state).
"use strict";

const debugView = { map: null, colourBy: "label", selecting: null };

function panel(title) {
  const holder = $("debug-panel");
  holder.hidden = false;
  holder.innerHTML = "";
  const heading = document.createElement("p");
  heading.textContent = title;
  holder.appendChild(heading);
  return holder;
}

// ---- label errors ------------------------------------------------------------------------

async function showLabelErrors() {
  const holder = panel("finding label errors…");
  try {
    const report = await json(base() + "/label-errors?top=30");
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
  const holder = panel("laying out the map…");
  try {
    await json(base() + "/map", {});            // bring it up to date (new points only)
    const points = [];
    for (let offset = 0; ; offset += 20000) {
      const page = await json(`${base()}/map?offset=${offset}&limit=20000`);
      points.push(...page.points);
      if (points.length >= page.total || !page.points.length) break;
    }
    debugView.map = { points, grid: null };
    drawMapPanel(holder);
  } catch (error) { holder.firstChild.textContent = error.message; }
}

function drawMapPanel(holder) {
  const { points } = debugView.map;
  holder.firstChild.textContent = `${points.length} images and objects, laid out by UMAP. ` +
    "Hover for a picture; drag a box to make the points inside the current results.";
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
  controls.appendChild(select);
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

function mapColours() {
  const field = debugView.colourBy;
  const counts = new Map();
  for (const p of debugView.map.points) {
    const value = p[field] || "(none)";
    counts.set(value, (counts.get(value) || 0) + 1);
  }
  const order = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  const colour = new Map(order.slice(0, MAP_COLOURS.length - 1)
    .map(([value], n) => [value, MAP_COLOURS[n]]));
  return { colour, order, field, other: MAP_COLOURS[MAP_COLOURS.length - 1] };
}

// Points are drawn as 3-pixel squares straight into the pixel buffer: fast at 100,000 points.
function paintMap() {
  const canvas = $("map-canvas");
  if (!canvas) return;
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const image = context.createImageData(width, height);
  image.data.fill(255);
  const { colour, order, field, other } = mapColours();
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const cache = new Map();
  for (const p of debugView.map.points) {
    const hex = colour.get(p[field] || "(none)") || other;
    if (!cache.has(hex)) cache.set(hex, rgb(hex));
    const [r, g, b] = cache.get(hex);
    const [x, y] = toCanvas(p, canvas);
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const px = x + dx, py = y + dy;
        if (px < 0 || py < 0 || px >= width || py >= height) continue;
        const at = 4 * (py * width + px);
        image.data[at] = r; image.data[at + 1] = g; image.data[at + 2] = b; image.data[at + 3] = 255;
      }
    }
  }
  context.putImageData(image, 0, 0);
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
  const map = debugView.map;
  if (!map.grid) {
    map.grid = new Map();
    map.points.forEach((p, n) => {
      const [px, py] = toCanvas(p, canvas);
      const key = `${px >> 3},${py >> 3}`;
      if (!map.grid.has(key)) map.grid.set(key, []);
      map.grid.get(key).push(n);
    });
  }
  let best = null, bestDistance = 36;
  for (let gx = (x >> 3) - 1; gx <= (x >> 3) + 1; gx++) {
    for (let gy = (y >> 3) - 1; gy <= (y >> 3) + 1; gy++) {
      for (const n of map.grid.get(`${gx},${gy}`) || []) {
        const [px, py] = toCanvas(map.points[n], canvas);
        const distance = (px - x) ** 2 + (py - y) ** 2;
        if (distance < bestDistance) { best = map.points[n]; bestDistance = distance; }
      }
    }
  }
  return best;
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
    if (debugView.selecting) {
      paintMap();
      const [sx, sy] = debugView.selecting;
      const context = canvas.getContext("2d");
      context.strokeStyle = "#ff3b30";
      context.lineWidth = 2;
      context.strokeRect(sx, sy, x - sx, y - sy);
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
  canvas.addEventListener("pointerdown", (event) => {
    debugView.selecting = at(event);
    tip.hidden = true;
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!debugView.selecting) return;
    const [sx, sy] = debugView.selecting, [x, y] = at(event);
    debugView.selecting = null;
    paintMap();
    const [left, right] = [Math.min(sx, x), Math.max(sx, x)];
    const [top, bottom] = [Math.min(sy, y), Math.max(sy, y)];
    if (right - left < 3 || bottom - top < 3) return;
    const inside = debugView.map.points.filter((p) => {
      const [px, py] = toCanvas(p, canvas);
      return px >= left && px <= right && py >= top && py <= bottom;
    });
    selectPoints(inside);
  });
}

// The selection becomes the current result set: its records are shown as results, and
// "Measure the detector on these images" measures on their images.
async function selectPoints(points) {
  if (!points.length) { status("no points in that box"); return; }
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

$("label-errors-button").addEventListener("click", showLabelErrors);
$("map-button").addEventListener("click", showMap);
