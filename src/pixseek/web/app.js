// pixseek web UI: plain JavaScript over the HTTP API, no build step.
"use strict";

const PAGE = 48;          // results per "page" of a search; "load more" asks for the next
const state = {
  collection: null,
  query: null,            // the last search body, re-run when feedback or "load more" changes
  chip: null,             // what the user searched for, shown above the results
  k: PAGE,
  positives: [],          // relevance feedback: ids marked relevant
  negatives: [],          // ids marked not relevant
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

// An object's thumbnail is its crop; an image's is the whole image.
function thumbnailPath(record, size = 320) {
  return `${base()}/images/${encodeURIComponent(record.id)}/thumbnail?size=${size}`;
}

async function loadCollections(selected) {
  const collections = await json("/collections");
  const select = $("collection");
  select.innerHTML = "";
  for (const c of collections) {
    const option = document.createElement("option");
    option.value = c.name;
    option.textContent = `${c.name} (${c.images} images, ${c.objects} objects)`;
    select.appendChild(option);
  }
  if (!collections.length) {
    state.collection = null;
    showEmpty("No collections yet: upload images to start one.");
    status("");
    return;
  }
  state.collection = selected && collections.some((c) => c.name === selected)
    ? selected : collections[0].name;
  select.value = state.collection;
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

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function card(record, score) {
  const div = document.createElement("div");
  div.className = "result";
  div.dataset.id = record.id;
  div.dataset.kind = record.kind;
  const thumb = document.createElement("div");
  thumb.className = "thumb";
  thumb.title = "Search for more like this";
  const img = document.createElement("img");
  img.alt = record.label || record.kind;
  loadImage(img, thumbnailPath(record));
  thumb.appendChild(img);
  thumb.addEventListener("click", () => moreLikeThis(record));
  div.appendChild(thumb);
  const meta = document.createElement("div");
  meta.className = "meta";
  if (score !== undefined) {
    const s = document.createElement("span");
    s.className = "score";
    s.textContent = score.toFixed(3);
    meta.appendChild(s);
  }
  const kind = document.createElement("span");
  kind.className = `kind ${record.kind}`;
  kind.textContent = record.kind;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = record.label || "";
  const actions = document.createElement("span");
  actions.className = "actions";
  actions.append(
    button("More like this", "up", () => feedback(record.id, true)),
    button("Less like this", "down", () => feedback(record.id, false)),
    button("Draw a box", "draw", () => openViewer(record)),
  );
  meta.append(kind, label, actions);
  div.appendChild(meta);
  return div;
}

function render(items, withScores) {
  const results = $("results");
  results.innerHTML = "";
  for (const item of items) results.appendChild(card(item, withScores ? item.score : undefined));
}

function showEmpty(text) {
  $("results").innerHTML = "";
  $("pager").hidden = true;
  $("more").hidden = true;
  $("empty-text").textContent = text;
  $("empty").hidden = false;
}

async function showGallery(offset) {
  state.query = null;
  setChip(null);
  $("more").hidden = true;
  $("empty").hidden = true;
  if (!state.collection) return;
  state.offset = Math.max(0, offset);
  const label = $("label").value;
  const params = new URLSearchParams({ offset: state.offset, limit: state.pageSize });
  if (label) params.set("label", label);
  try {
    const page = await json(`${base()}/images?${params}`);
    if (!page.total && !label) {
      showEmpty(`${state.collection} has no images yet.`);
      status("");
      return;
    }
    render(page.records, false);
    $("pager").hidden = false;
    $("page-info").textContent =
      `${page.total ? state.offset + 1 : 0}–${state.offset + page.records.length} of ${page.total}`;
    $("prev").disabled = state.offset === 0;
    $("next").disabled = state.offset + page.records.length >= page.total;
    status(label ? `${page.total} images with "${label}"` : `${page.total} images in ${state.collection}`);
  } catch (error) { showError(error); }
}

// The chip says what was searched: the typed text, or the image, object or region clicked.
function setChip(chip) {
  state.chip = chip;
  const holder = $("query-chip");
  holder.innerHTML = "";
  $("query-bar").hidden = !chip;
  if (!chip) return;
  if (chip.image) {
    const img = document.createElement("img");
    img.alt = chip.text;
    if (chip.image.startsWith("data:")) img.src = chip.image; else loadImage(img, chip.image);
    holder.appendChild(img);
  }
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = chip.text;
  holder.appendChild(text);
}

function currentBody(extra) {
  const body = Object.assign({ k: state.k, kind: $("kind").value }, extra);
  const label = $("label").value;
  if (label) body.where = { label };
  body.more_like = state.positives.slice();
  body.less_like = state.negatives.slice();
  return body;
}

function showError(error) {
  $("results").innerHTML = "";    // stale results would look like answers to this query
  $("pager").hidden = true;
  $("more").hidden = true;
  status(error.message, true);
}

async function runSearch(body, chip, more = false) {
  $("debug-panel").hidden = true;
  if (!more) state.k = PAGE;
  state.query = body;
  if (chip !== undefined) setChip(chip);
  $("pager").hidden = true;
  $("empty").hidden = true;
  status("searching…");
  try {
    const { hits } = await json(base() + "/search", currentBody(body));
    render(hits, true);
    $("more").hidden = hits.length < state.k || state.k >= 1000;
    status(`${hits.length} results`);
  } catch (error) { showError(error); }
}

// A typed phrase is one query. "+term" / "-term" split it only when written explicitly:
// "a red car -grass" searches for "a red car" and away from "grass".
function textQuery(text) {
  if (!/(^|\s)[+-]\S/.test(text)) return { body: { text }, chip: { text: `"${text}"` } };
  const positives = [], negatives = [];
  for (const segment of text.split(/\s+(?=[+-]\S)/)) {
    const negative = segment.startsWith("-");
    const clean = segment.replace(/^[+-]/, "").replace(/^"(.*)"$/, "$1").trim();
    if (clean) (negative ? negatives : positives).push({ text: clean });
  }
  const shown = positives.map((p) => `"${p.text}"`).concat(negatives.map((n) => `− "${n.text}"`));
  return { body: { positives, negatives }, chip: { text: shown.join(" ") } };
}

function moreLikeThis(record) {
  const body = record.kind === "object" ? { object_id: record.id } : { image_id: record.id };
  runSearch(body, { image: thumbnailPath(record, 96), text: `similar to this ${record.kind}` });
}

function feedback(id, positive) {
  const [add, remove] = positive ? [state.positives, state.negatives] : [state.negatives, state.positives];
  if (!add.includes(id)) add.push(id);
  const index = remove.indexOf(id);
  if (index >= 0) remove.splice(index, 1);
  $("feedback").hidden = false;
  $("feedback-list").textContent = `${state.positives.length} relevant, ${state.negatives.length} not relevant`;
  if (!state.chip) setChip({ text: "results like the ones you marked" });
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
  canvas.onpointerdown = (event) => { start = point(event); };
  canvas.onpointermove = (event) => {
    if (!start) return;
    const [x, y] = point(event);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#ff3b30";
    context.lineWidth = 2;
    context.strokeRect(start[0], start[1], x - start[0], y - start[1]);
  };
  canvas.onpointerup = (event) => {
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
    const preview = regionPreview(image, box, record);
    closeViewer();
    $("kind").value = "object";
    runSearch({ image_id: record.image_id, box }, { image: preview, text: "similar to this region" });
  };
}

// A small picture of the drawn region, for the query chip.
function regionPreview(image, box, record) {
  const scaleX = image.naturalWidth / record.width, scaleY = image.naturalHeight / record.height;
  const canvas = document.createElement("canvas");
  const height = 72, width = Math.max(8, Math.round(height * box[2] / box[3]));
  canvas.width = Math.min(width, 240);
  canvas.height = height;
  try {
    canvas.getContext("2d").drawImage(image, box[0] * scaleX, box[1] * scaleY,
      box[2] * scaleX, box[3] * scaleY, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.8);
  } catch (error) { return ""; }
}

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer-canvas").getContext("2d").clearRect(0, 0, 9999, 9999);
}

async function upload(files) {
  if (!files.length) return;
  try {
    let name = state.collection;
    if (!name) {
      name = "photos";
      await json("/collections", { name });
    }
    const form = new FormData();
    for (const file of files) form.append("files", file);
    status(`uploading ${files.length} images…`);
    await api(`/collections/${encodeURIComponent(name)}/images`, { method: "POST", body: form });
    $("empty").hidden = true;
    await loadCollections(name);
  } catch (error) { showError(error); }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!text) { showGallery(0); return; }
  if (!state.collection) { status("upload images first", true); return; }
  const { body, chip } = textQuery(text);
  runSearch(body, chip);
});
$("collection").addEventListener("change", async (event) => {
  state.collection = event.target.value;
  state.positives = []; state.negatives = [];
  $("feedback").hidden = true;
  await loadLabels();
  showGallery(0);
});
$("label").addEventListener("change", () => (state.query ? runSearch(state.query) : showGallery(0)));
$("kind").addEventListener("change", () => { if (state.query) runSearch(state.query); });
$("clear-button").addEventListener("click", () => { $("query").value = ""; showGallery(0); });
$("prev").addEventListener("click", () => showGallery(state.offset - state.pageSize));
$("next").addEventListener("click", () => showGallery(state.offset + state.pageSize));
$("load-more").addEventListener("click", () => {
  state.k = Math.min(1000, state.k + PAGE);
  runSearch(state.query || {}, undefined, true);
});
$("viewer-close").addEventListener("click", closeViewer);
$("upload-input").addEventListener("change", (event) => upload([...event.target.files]));
$("feedback-clear").addEventListener("click", () => {
  state.positives = []; state.negatives = [];
  $("feedback").hidden = true;
  if (state.query) runSearch(state.query);
});

// Model debugging: the detector's metrics on the images of the current search, and its
// blind spots (clusters of missed objects ranked by how much more often they fail).
function fmt(value) { return value === null || value === undefined ? "–" : value.toFixed(3); }

function cell(row, key) {
  const inside = row[key], whole = row["whole_" + key];
  const worse = inside !== null && whole !== null && inside < whole - 0.05;
  return `<td class="${worse ? "worse" : ""}">${fmt(inside)}</td><td>${fmt(whole)}</td>`;
}

async function measure() {
  const panel = $("debug-panel");
  panel.hidden = false;
  panel.textContent = "measuring…";
  try {
    const report = await json(base() + "/slice", { query: currentBody(state.query || {}) });
    const rows = report.classes.sort((a, b) => b.truth - a.truth).map((row) => {
      const label = document.createElement("span");
      label.textContent = row.label;
      return `<tr><td>${label.innerHTML}</td><td>${row.truth}</td>${cell(row, "precision")}` +
        `${cell(row, "recall")}${cell(row, "ap50")}</tr>`;
    });
    panel.innerHTML =
      `<p>On these ${report.images} images: mAP ${fmt(report.map)} (all images ${fmt(report.whole_map)}), ` +
      `recall ${fmt(report.recall)} (all ${fmt(report.whole_recall)})</p>` +
      `<table><tr><th>class</th><th>objects</th><th>precision</th><th>all</th><th>recall</th>` +
      `<th>all</th><th>AP50</th><th>all</th></tr>${rows.join("")}</table>`;
  } catch (error) { panel.textContent = error.message; }
}

async function showBlindspots() {
  const panel = $("debug-panel");
  panel.hidden = false;
  panel.textContent = "finding blind spots…";
  try {
    const { blindspots } = await json(base() + "/blindspots?clusters=6");
    panel.innerHTML = "<p>Where the detector misses objects most often (lift: how many times " +
      "its usual miss rate):</p>";
    for (const spot of blindspots) {
      const div = document.createElement("div");
      div.className = "spot";
      const text = document.createElement("div");
      text.textContent = `lift ${spot.lift.toFixed(2)}: ${spot.errors} of ${spot.objects} missed` +
        ` (${Math.round(100 * spot.error_rate)}%), like “${spot.names.join("”, “")}”`;
      div.appendChild(text);
      for (const record of spot.examples) {
        const img = document.createElement("img");
        img.alt = record.label || "object";
        img.title = "search for objects like this";
        loadImage(img, thumbnailPath(record, 96));
        img.addEventListener("click", () => moreLikeThis(record));
        div.appendChild(img);
      }
      panel.appendChild(div);
    }
  } catch (error) { panel.textContent = error.message; }
}

$("measure-button").addEventListener("click", measure);
$("blindspots-button").addEventListener("click", showBlindspots);

loadCollections().catch((error) => showError(error));
