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
  total: 0,               // images in the gallery's last page request
  report: null,           // the last slice metrics, re-rendered when a column is sorted
  sort: { key: "truth", descending: true },
  view: 0,                // bumped by each gallery page or search: late answers to older ones are dropped
  selection: null,        // image ids chosen on the map: the current result set when set
};
const $ = (id) => document.getElementById(id);

// The API key is kept for this browser tab only (sessionStorage), and asked for in a form.
const KEY = "pixseek-api-key";
localStorage.removeItem(KEY);   // never kept across sessions
function apiKey() { return sessionStorage.getItem(KEY) || ""; }

let keyWanted = null;           // one pending question, shared by every request that got a 401

function askForKey(rejected) {
  if (!keyWanted) {
    keyWanted = new Promise((resolve) => {
      $("key-message").textContent = rejected
        ? "That key was not accepted. Enter this server's API key."
        : "This server needs an API key.";
      $("key-input").value = "";
      $("key-overlay").hidden = false;
      $("key-input").focus();
      $("key-form").onsubmit = (event) => {
        event.preventDefault();
        const key = $("key-input").value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY, key);
        $("key-overlay").hidden = true;
        $("key-input").value = "";
        keyWanted = null;
        resolve();
      };
    });
  }
  return keyWanted;
}

async function api(path, options = {}) {
  for (;;) {
    const sent = apiKey();
    const headers = Object.assign({}, options.headers || {});
    if (sent) headers["Authorization"] = "Bearer " + sent;
    const response = await fetch(path, Object.assign({}, options, { headers }));
    if (response.status === 401) {
      // a key that changed while this request was on its way is tried before asking again
      if (apiKey() === sent) await askForKey(Boolean(sent));
      continue;
    }
    if (!response.ok) {
      let detail = response.statusText;
      try { const body = await response.json(); detail = body.detail || detail; } catch (e) { /* not json */ }
      throw new Error(readable(detail));
    }
    return response;
  }
}

// A validation error's detail is a list of {loc, msg}: said as "text: too long", not JSON
function readable(detail) {
  if (typeof detail === "string") return detail;
  if (!Array.isArray(detail)) return JSON.stringify(detail);
  return detail.map((d) => {
    const field = (d.loc || []).filter((part) => part !== "body").join(".");
    return field ? `${field}: ${d.msg}` : d.msg;
  }).join("; ");
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

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

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
    showDetectorTools(false);
    status("");
    return;
  }
  state.collection = selected && collections.some((c) => c.name === selected)
    ? selected : collections[0].name;
  select.value = state.collection;
  await loadLabels();
  checkPredictions();
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
  if (record.source) div.dataset.source = record.source;
  actions.append(
    button("More like this", "up", () => feedback(record.id, true)),
    button("Less like this", "down", () => feedback(record.id, false)),
    button("Draw a box", "draw", () => openViewer(record)),
  );
  meta.append(kind, ...sourceBadges(record), label, actions);
  div.appendChild(meta);
  return div;
}

// Ground truth and a detector's predictions of the same thing look alike: badges tell them
// apart, with the prediction's confidence and how each was matched (TP, FP, FN, ...).
const OUTCOMES = {
  TP: { text: "TP", pred: "correct: matches a ground-truth box of its class (IoU ≥ 0.5)",
        gt: "found: a prediction of its class matches it (IoU ≥ 0.5)" },
  FP: { text: "FP", pred: "false positive: matches no ground-truth box", gt: "false positive" },
  FN: { text: "FN", pred: "missed", gt: "missed: no prediction of its class matches it" },
  wrong_class: { text: "wrong class", pred: "overlaps a ground-truth box of another class",
                 gt: "predicted as another class" },
  ignored: { text: "ignored", pred: "matches a crowd box: not counted",
             gt: "crowd box: not counted" },
};

function badge(text, className, title) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  if (title) span.title = title;
  return span;
}

function sourceBadges(record) {
  if (record.kind !== "object" || !record.source) return [];
  const badges = [];
  if (record.source === "pred") {
    const confidence = typeof record.confidence === "number" ? " " + record.confidence.toFixed(2) : "";
    badges.push(badge("pred" + confidence, "source pred", "a detector's prediction, with its confidence"));
  } else if (record.source === "gt") {
    badges.push(badge("GT", "source gt", "ground truth: an annotated box"));
  } else {
    badges.push(badge(record.source, `source ${record.source}`,
      record.source === "region" ? "a window of the image (no annotation)" : ""));
  }
  const outcome = record.metadata && record.metadata.outcome;
  if (outcome) {
    const known = OUTCOMES[outcome];
    const role = record.source === "pred" ? "pred" : "gt";
    badges.push(badge(known ? known.text : outcome, `outcome outcome-${outcome}`,
      known ? known[role] : ""));
  }
  return badges;
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
  state.selection = null;
  setChip(null);
  $("more").hidden = true;
  $("empty").hidden = true;
  if (!state.collection) return;
  const view = ++state.view;
  state.offset = Math.max(0, offset);
  const label = $("label").value;
  const params = new URLSearchParams({ offset: state.offset, limit: state.pageSize });
  if (label) params.set("label", label);
  try {
    const page = await json(`${base()}/images?${params}`);
    if (view !== state.view) return;
    state.total = page.total;
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
    status(label ? `${plural(page.total, "image")} with "${label}"`
      : `${plural(page.total, "image")} in ${state.collection}`);
  } catch (error) { if (view === state.view) showError(error); }
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
  if ($("close-only").checked) body.min_score = "auto";  // the index's calibrated cutoff
  body.more_like = state.positives.slice();
  body.less_like = state.negatives.slice();
  return body;
}

function showError(error) {
  $("results").innerHTML = "";    // stale results would look like answers to this query
  $("pager").hidden = true;
  $("more").hidden = true;
  // the API asks for a number where no cutoff was measured: here, that box is the way out
  const cutoff = $("close-only").checked && error.message.includes('min_score "auto"');
  status(cutoff ? `${error.message} — or untick "close matches only"` : error.message, true);
}

// A new query starts without the marks made on another one's results
function forgetMarks() {
  state.positives = []; state.negatives = [];
  $("feedback").hidden = true;
}

async function runSearch(body, chip, more = false) {
  $("debug-panel").hidden = true;
  state.selection = null;
  if (chip !== undefined) forgetMarks();
  if (!more) state.k = PAGE;
  state.query = body;
  if (chip !== undefined) setChip(chip);
  $("pager").hidden = true;
  $("empty").hidden = true;
  status("searching…");
  const view = ++state.view;
  try {
    const { hits } = await json(base() + "/search", currentBody(body));
    if (view !== state.view) return;
    render(hits, true);
    $("more").hidden = hits.length < state.k || state.k >= 1000;
    const regionless = body.box && !hits.length && $("kind").value === "object";
    status(regionless ? "0 results: this collection has no objects to compare a region with " +
      "(index it with --coco boxes or --regions grid)" : plural(hits.length, "result"));
  } catch (error) { if (view === state.view) showError(error); }
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

// Each mark is also stored with the collection as a judgement of the query (when the query
// is one text, image, object or box), so that it can train and measure models later.
function rememberJudgement(id, positive) {
  const query = {};
  for (const key of ["text", "image_id", "object_id", "image", "box"]) {
    if (state.query && state.query[key] !== undefined) query[key] = state.query[key];
  }
  if (!query.text && !query.image_id && !query.object_id && !query.image) return;
  json(base() + "/feedback", { judgements: [{ query, result_id: id, value: positive ? 1 : -1 }] })
    .catch((error) => status(`the mark was not stored: ${error.message}`, true));
}

function feedback(id, positive) {
  rememberJudgement(id, positive);
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
    if (state.kindBeforeBox === undefined) state.kindBeforeBox = $("kind").value;
    $("kind").value = "object";  // a region is compared with objects, until the next typed query
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

// Adding images works on any collection, new or not; with none yet, it starts "photos".
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
    status(`adding ${plural(files.length, "image")} to ${name}…`);
    const { ids } = await (await api(`/collections/${encodeURIComponent(name)}/images`,
      { method: "POST", body: form })).json();
    $("empty").hidden = true;
    $("query").value = "";
    await loadCollections(name);
    if (state.collection === name && !$("status").classList.contains("error")) {
      status(`Added ${plural(ids.length, "image")} to ${name}. ${plural(state.total, "image")} in ${name}`);
    }
  } catch (error) { showError(error); }
}

// Searching by an outside image: chosen, pasted or dropped on the search bar. Big or unusual
// files are re-encoded in the browser (at most 1024 px a side), others are sent as they are.
const SENT_AS_IS = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];
const MAX_QUERY_SIDE = 1024, MAX_QUERY_BYTES = 4 * 1024 * 1024;

function readAsDataURL(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("could not read the image"));
    reader.readAsDataURL(blob);
  });
}

async function queryImage(file) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    try { await img.decode(); } catch (error) { throw new Error(`${file.name || "this file"} is not an image this browser can read`); }
    const scale = Math.min(1, MAX_QUERY_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
    if (scale === 1 && SENT_AS_IS.includes(file.type) && file.size <= MAX_QUERY_BYTES) {
      return await readAsDataURL(file);
    }
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.92);
  } finally { URL.revokeObjectURL(url); }
}

function imageFile(transfer) {
  if (!transfer) return null;
  for (const item of transfer.items || []) {
    if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
  }
  return [...(transfer.files || [])].find((f) => f.type.startsWith("image/")) || null;
}

function carriesFiles(event) {
  return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
}

async function searchByImage(file, text) {
  if (!file) { status("that is not an image file", true); return; }
  if (!state.collection) { status("upload images first", true); return; }
  try {
    const data = await queryImage(file);
    $("query").value = "";
    await runSearch({ image: data }, { image: data, text });
  } catch (error) { showError(error); }
}

const searchForm = $("search-form");
searchForm.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  searchForm.classList.add("dropping");
});
searchForm.addEventListener("dragleave", (event) => {
  if (!searchForm.contains(event.relatedTarget)) searchForm.classList.remove("dropping");
});
searchForm.addEventListener("drop", (event) => {
  searchForm.classList.remove("dropping");
  if (!carriesFiles(event)) return;
  event.preventDefault();
  const file = imageFile(event.dataTransfer);
  searchByImage(file, file ? `similar to ${file.name || "the dropped image"}` : "");
});
// a file dropped anywhere else must not replace the page
window.addEventListener("dragover", (event) => { if (carriesFiles(event)) event.preventDefault(); });
window.addEventListener("drop", (event) => {
  if (!carriesFiles(event) || event.defaultPrevented) return;
  event.preventDefault();
  status("Drop an image on the search bar to search by it, or use “Add images” to add it.");
});
document.addEventListener("paste", (event) => {
  if (!$("key-overlay").hidden) return;
  const file = imageFile(event.clipboardData);
  if (!file) return;              // a pasted text goes where texts go
  event.preventDefault();
  searchByImage(file, "similar to the pasted image");
});
$("image-query-input").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";        // the same file can be chosen again
  if (file) searchByImage(file.type.startsWith("image/") ? file : null, `similar to ${file.name}`);
});

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("query").value.trim();
  if (!text) { showGallery(0); return; }
  if (!state.collection) { status("upload images first", true); return; }
  if (state.kindBeforeBox !== undefined) {  // the kind a drawn box switched to objects
    $("kind").value = state.kindBeforeBox;
    state.kindBeforeBox = undefined;
  }
  const { body, chip } = textQuery(text);
  runSearch(body, chip);
});
$("collection").addEventListener("change", async (event) => {
  state.collection = event.target.value;
  forgetMarks();
  $("debug-panel").hidden = true;
  await loadLabels();
  checkPredictions();
  showGallery(0);
});
$("label").addEventListener("change", () => (state.query ? runSearch(state.query) : showGallery(0)));
$("kind").addEventListener("change", () => {
  state.kindBeforeBox = undefined;  // chosen: kept
  if (state.query) runSearch(state.query);
});
$("close-only").addEventListener("change", () => { if (state.query) runSearch(state.query); });
$("clear-button").addEventListener("click", () => {
  $("query").value = "";
  forgetMarks();
  showGallery(0);
});
$("prev").addEventListener("click", () => showGallery(state.offset - state.pageSize));
$("next").addEventListener("click", () => showGallery(state.offset + state.pageSize));
$("load-more").addEventListener("click", () => {
  state.k = Math.min(1000, state.k + PAGE);
  runSearch(state.query || {}, undefined, true);
});
$("viewer-close").addEventListener("click", closeViewer);
$("upload-input").addEventListener("change", (event) => {
  const files = [...event.target.files];
  event.target.value = "";
  upload(files);
});
$("feedback-clear").addEventListener("click", () => {
  forgetMarks();
  if (state.query) runSearch(state.query);
});

// Model debugging: the detector's metrics on the images of the current search, and its
// blind spots (clusters of missed objects ranked by how much more often they fail).
function fmt(value) { return value === null || value === undefined ? "–" : value.toFixed(3); }

// The detector tools need predictions (objects with source=pred). One filtered search from
// any stored image (its stored vector: no model runs) tells whether the collection has any.
function showDetectorTools(shown) {
  $("measure-button").hidden = !shown;
  $("blindspots-button").hidden = !shown;
  if (!shown) $("debug-panel").hidden = true;
}

async function checkPredictions() {
  const name = state.collection;
  showDetectorTools(false);
  let found = false;
  try {
    const page = await json(`${base()}/images?limit=1`);
    if (page.records.length) {
      const { hits } = await json(base() + "/search",
        { image_id: page.records[0].id, kind: "object", k: 1, where: { source: "pred" } });
      found = hits.length > 0;
    }
  } catch (error) { found = false; }
  // hidden already above: a panel opened meanwhile stays open
  if (name === state.collection && found) showDetectorTools(true);
}

// The metrics table: each column sorts when its header is clicked (again: the other way).
const METRIC_COLUMNS = [
  { key: "label", text: "class", title: "class" },
  { key: "truth", text: "objects", title: "ground-truth objects on these images" },
  { key: "precision", text: "these", title: "precision on these images", group: "precision" },
  { key: "whole_precision", text: "all", title: "precision on all images", group: "precision" },
  { key: "recall", text: "these", title: "recall on these images", group: "recall" },
  { key: "whole_recall", text: "all", title: "recall on all images", group: "recall" },
  { key: "ap50", text: "these", title: "AP at IoU 0.5 on these images", group: "AP50" },
  { key: "whole_ap50", text: "all", title: "AP at IoU 0.5 on all images", group: "AP50" },
];

function compareRows(key, descending) {
  return (a, b) => {
    const x = a[key], y = b[key];
    const missingX = x === null || x === undefined, missingY = y === null || y === undefined;
    if (missingX || missingY) return missingX - missingY;      // no value: always last
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return (descending ? -order : order) || a.label.localeCompare(b.label);
  };
}

function sortBy(key) {
  const sort = state.sort;
  if (sort.key === key) sort.descending = !sort.descending;
  else { sort.key = key; sort.descending = key !== "label"; }
  renderMetrics();
}

function renderMetrics() {
  const report = state.report, panel = $("debug-panel");
  const summary = document.createElement("p");
  summary.textContent = `On these ${report.images} images: mAP ${fmt(report.map)} ` +
    `(all images ${fmt(report.whole_map)}), recall ${fmt(report.recall)} (all ${fmt(report.whole_recall)})`;
  const table = document.createElement("table");
  table.className = "metrics";
  const head = table.createTHead();
  const groups = head.insertRow(), names = head.insertRow();
  const { key: sortKey, descending } = state.sort;
  for (const column of METRIC_COLUMNS) {
    const th = document.createElement("th");
    th.dataset.key = column.key;
    th.setAttribute("aria-sort", column.key !== sortKey ? "none" : descending ? "descending" : "ascending");
    const b = button(column.text, "sort", () => sortBy(column.key));
    b.title = `sort by ${column.title}`;
    th.appendChild(b);
    if (column.group) {
      if (!column.key.startsWith("whole_")) {
        const group = document.createElement("th");
        group.colSpan = 2;
        group.scope = "colgroup";
        group.textContent = column.group;
        groups.appendChild(group);
      }
      names.appendChild(th);
    } else {
      th.rowSpan = 2;
      groups.appendChild(th);
    }
  }
  const body = table.createTBody();
  for (const row of report.classes.slice().sort(compareRows(sortKey, descending))) {
    const tr = body.insertRow();
    for (const column of METRIC_COLUMNS) {
      const td = tr.insertCell();
      const value = row[column.key];
      td.textContent = column.key === "label" ? value : column.key === "truth" ? String(value) : fmt(value);
      const whole = row["whole_" + column.key];
      if (column.group && !column.key.startsWith("whole_") && typeof value === "number"
          && typeof whole === "number" && value < whole - 0.05) td.className = "worse";
    }
  }
  panel.replaceChildren(summary, table);
}

async function measure() {
  const panel = $("debug-panel");
  panel.hidden = false;
  panel.textContent = "measuring…";
  try {
    const slice = state.selection ? { image_ids: state.selection }
      : { query: currentBody(state.query || {}) };
    state.report = await json(base() + "/slice", slice);
    renderMetrics();
  } catch (error) { panel.textContent = error.message; }
}

async function showBlindspots() {
  const panel = $("debug-panel");
  panel.hidden = false;
  panel.textContent = "finding blind spots…";
  // with a selection (the map's, a sample) as the current results: blind spots within it
  const selected = state.selection;
  try {
    const { blindspots } = selected
      ? await json(base() + "/blindspots", { image_ids: selected, clusters: 6, top: 12 })
      : await json(base() + "/blindspots?clusters=6&top=12");
    const intro = document.createElement("p");
    intro.textContent = (selected ? `Among the ${plural(selected.length, "selected image")}: w`
      : "W") + "here the detector misses objects most often: embedding clusters, " +
      "box attributes and metadata, ranked by the lower end of the lift's 95% interval " +
      "(lift: how many times the miss rate of the same classes " +
      `${selected ? "there" : "everywhere"}):`;
    panel.replaceChildren(intro);
    for (const spot of blindspots) {
      const div = document.createElement("div");
      div.className = "spot";
      div.dataset.kind = spot.kind;
      const text = document.createElement("div");
      const kind = badge(spot.kind, `spot-kind spot-${spot.kind}`, "");
      const named = spot.kind === "cluster" && spot.names.length
        ? `like “${spot.names.join("”, “")}”` : spot.name;
      text.append(kind, document.createTextNode(` lift ${spot.lift.toFixed(2)} ` +
        `(95%: ${spot.lift_low.toFixed(2)}–${spot.lift_high.toFixed(2)}): ${spot.errors} of ` +
        `${spot.objects} missed (${Math.round(100 * spot.error_rate)}%, expected ` +
        `${Math.round(100 * spot.expected_rate)}%), ${named}`));
      div.appendChild(text);
      const crops = document.createElement("div");
      crops.className = "crops";
      for (const record of spot.examples) {
        const figure = document.createElement("figure");
        figure.className = "crop";
        figure.title = "search for objects like this";
        const img = document.createElement("img");
        img.alt = record.label || "object";
        loadImage(img, thumbnailPath(record, 224));
        const caption = document.createElement("figcaption");
        caption.textContent = record.label || "object";
        figure.append(img, caption);
        figure.addEventListener("click", () => moreLikeThis(record));
        crops.appendChild(figure);
      }
      div.appendChild(crops);
      panel.appendChild(div);
    }
  } catch (error) { panel.textContent = error.message; }
}

$("measure-button").addEventListener("click", measure);
$("blindspots-button").addEventListener("click", showBlindspots);

loadCollections().catch((error) => showError(error));
