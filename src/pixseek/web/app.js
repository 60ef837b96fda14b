// pixseek web UI: plain JavaScript over the HTTP API, no build step.
"use strict";

const state = {
  collection: null,
  query: null,          // the last search body, re-run when feedback changes
  positives: [],        // relevance feedback: ids marked relevant
  negatives: [],        // ids marked not relevant
  offset: 0,
  pageSize: 40,
};
const $ = (id) => document.getElementById(id);

function apiKey() { return localStorage.getItem("pixseek-api-key") || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    const key = window.prompt("This server needs an API key:");
    if (key) { localStorage.setItem("pixseek-api-key", key); return api(path, options); }
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { const body = await response.json(); detail = body.detail || detail; } catch (e) { /* not json */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response;
}

async function json(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  return (await api(path, options)).json();
}

// Images need the API key too, so they are fetched and shown as blob URLs.
async function loadImage(img, path) {
  try {
    const blob = await (await api(path)).blob();
    img.src = URL.createObjectURL(blob);
  } catch (error) { img.alt = "unavailable"; }
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function base() { return "/collections/" + encodeURIComponent(state.collection); }

async function loadCollections() {
  const collections = await json("/collections");
  const select = $("collection");
  select.innerHTML = "";
  for (const c of collections) {
    const option = document.createElement("option");
    option.value = c.name;
    option.textContent = `${c.name} (${c.images} images, ${c.objects} objects)`;
    select.appendChild(option);
  }
  if (!collections.length) { status("No collections yet: index some images first."); return; }
  state.collection = collections[0].name;
  await loadLabels();
  await showGallery(0);
}

async function loadLabels() {
  const { labels } = await json(base() + "/labels");
  const select = $("label");
  select.innerHTML = '<option value="">any label</option>';
  for (const [label, count] of Object.entries(labels)) {
    const option = document.createElement("option");
    option.value = label;
    option.textContent = `${label} (${count})`;
    select.appendChild(option);
  }
}

function card(record, score) {
  const div = document.createElement("div");
  div.className = "result";
  div.dataset.id = record.id;
  div.dataset.kind = record.kind;
  const thumb = document.createElement("div");
  thumb.className = "thumb";
  thumb.title = "more like this";
  const img = document.createElement("img");
  img.alt = record.label || record.kind;
  loadImage(img, `${base()}/images/${encodeURIComponent(record.image_id)}/thumbnail?size=320`);
  thumb.appendChild(img);
  if (record.box && record.width && record.height) {
    const [x, y, w, h] = record.box;
    const box = document.createElement("div");
    box.className = "box-overlay";
    box.style.left = (100 * x / record.width) + "%";
    box.style.top = (100 * y / record.height) + "%";
    box.style.width = (100 * w / record.width) + "%";
    box.style.height = (100 * h / record.height) + "%";
    thumb.appendChild(box);
  }
  thumb.addEventListener("click", () => moreLikeThis(record));
  div.appendChild(thumb);
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.innerHTML = (score === undefined ? "" : `<span class="score">${score.toFixed(3)}</span>`) +
    `<span class="kind ${record.kind}">${record.kind}</span>` +
    `<span class="label"></span>` +
    `<span class="actions"><button class="up" title="more like this one (relevant)">▲</button>` +
    `<button class="down" title="less like this one (not relevant)">▼</button>` +
    `<button class="draw" title="draw a box on this image">▭</button></span>`;
  meta.querySelector(".label").textContent = record.label || "";
  meta.querySelector(".up").addEventListener("click", () => feedback(record.id, true));
  meta.querySelector(".down").addEventListener("click", () => feedback(record.id, false));
  meta.querySelector(".draw").addEventListener("click", () => openViewer(record));
  div.appendChild(meta);
  return div;
}

function render(items, withScores) {
  const results = $("results");
  results.innerHTML = "";
  for (const item of items) results.appendChild(card(item, withScores ? item.score : undefined));
}

async function showGallery(offset) {
  state.query = null;
  state.offset = Math.max(0, offset);
  const label = $("label").value;
  const params = new URLSearchParams({ offset: state.offset, limit: state.pageSize });
  if (label) params.set("label", label);
  const page = await json(`${base()}/images?${params}`);
  render(page.records, false);
  $("pager").hidden = false;
  $("page-info").textContent =
    `${page.total ? state.offset + 1 : 0}–${state.offset + page.records.length} of ${page.total}`;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + page.records.length >= page.total;
  status(`${page.total} images in ${state.collection}`);
}

function currentBody(extra) {
  const body = Object.assign({ k: 48, kind: $("kind").value }, extra);
  const label = $("label").value;
  if (label) body.where = { label };
  body.more_like = state.positives.slice();
  body.less_like = state.negatives.slice();
  return body;
}

async function runSearch(body) {
  state.query = body;
  $("pager").hidden = true;
  status("searching…");
  try {
    const { hits } = await json(base() + "/search", currentBody(body));
    render(hits, true);
    status(`${hits.length} results`);
  } catch (error) { status(error.message, true); }
}

function textQuery(text) {
  const positives = [], negatives = [];
  for (const token of text.match(/[+-]?"[^"]*"|\S+/g) || []) {
    const negative = token.startsWith("-");
    const clean = token.replace(/^[+-]/, "").replace(/^"|"$/g, "");
    if (clean) (negative ? negatives : positives).push({ text: clean });
  }
  return { positives, negatives };
}

function moreLikeThis(record) {
  runSearch(record.kind === "object" ? { object_id: record.id } : { image_id: record.id });
}

function feedback(id, positive) {
  const [add, remove] = positive ? [state.positives, state.negatives] : [state.negatives, state.positives];
  if (!add.includes(id)) add.push(id);
  const index = remove.indexOf(id);
  if (index >= 0) remove.splice(index, 1);
  $("feedback").hidden = false;
  $("feedback-list").textContent = `${state.positives.length} relevant, ${state.negatives.length} not relevant`;
  runSearch(state.query || {});
}

// Drawing a box on the full image: screen pixels are mapped to the image's own pixels.
function openViewer(record) {
  const image = $("viewer-image"), canvas = $("viewer-canvas");
  $("viewer").hidden = false;
  image.onload = () => {
    canvas.width = image.clientWidth;
    canvas.height = image.clientHeight;
  };
  loadImage(image, `${base()}/images/${encodeURIComponent(record.image_id)}/file`);
  let start = null;
  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  };
  const context = canvas.getContext("2d");
  canvas.onmousedown = (event) => { start = point(event); };
  canvas.onmousemove = (event) => {
    if (!start) return;
    const [x, y] = point(event);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#ff3b30";
    context.lineWidth = 2;
    context.strokeRect(start[0], start[1], x - start[0], y - start[1]);
  };
  canvas.onmouseup = (event) => {
    if (!start) return;
    const [x, y] = point(event);
    const sx = record.width / canvas.width, sy = record.height / canvas.height;
    const left = Math.max(0, Math.min(start[0], x)), top = Math.max(0, Math.min(start[1], y));
    const box = [left * sx, top * sy, Math.abs(x - start[0]) * sx, Math.abs(y - start[1]) * sy]
      .map((v) => Math.round(v * 100) / 100);
    start = null;
    box[2] = Math.min(box[2], record.width - box[0]);
    box[3] = Math.min(box[3], record.height - box[1]);
    if (box[2] < 2 || box[3] < 2) return;
    closeViewer();
    $("kind").value = "object";
    runSearch({ image_id: record.image_id, box });
  };
}

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer-canvas").getContext("2d").clearRect(0, 0, 9999, 9999);
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!text) { showGallery(0); return; }
  runSearch(textQuery(text));
});
$("collection").addEventListener("change", async (event) => {
  state.collection = event.target.value;
  state.positives = []; state.negatives = [];
  await loadLabels();
  showGallery(0);
});
$("label").addEventListener("change", () => (state.query ? runSearch(state.query) : showGallery(0)));
$("kind").addEventListener("change", () => { if (state.query) runSearch(state.query); });
$("clear-button").addEventListener("click", () => { $("query").value = ""; showGallery(0); });
$("prev").addEventListener("click", () => showGallery(state.offset - state.pageSize));
$("next").addEventListener("click", () => showGallery(state.offset + state.pageSize));
$("viewer-close").addEventListener("click", closeViewer);
$("feedback-clear").addEventListener("click", () => {
  state.positives = []; state.negatives = [];
  $("feedback").hidden = true;
  if (state.query) runSearch(state.query);
});

loadCollections().catch((error) => status(error.message, true));
