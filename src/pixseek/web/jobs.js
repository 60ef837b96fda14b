// pixseek web UI: the collection jobs. Duplicates (groups with their keeper; mark members
// and export the marked as CSV), match (an outside image: the copies found and the part that
// matched), classify (images: a label with its confidence) and models (the collections'
// active models, the current collection's indexes with a switch, and the background jobs).
// Uses app.js's functions ($, api, json, base, loadImage, thumbnailPath, queryImage, plural,
// status, state, runSearch).
"use strict";

const jobsView = { duplicates: null, marked: new Map(), across: "", threshold: "", views: true,
  shown: 0, matched: null };

// Each panel opened bumps `jobsView.shown`: a late answer for a panel no longer shown is dropped.
function jobPanel(title, name) {
  jobsView.shown += 1;
  const holder = $("debug-panel");
  holder.hidden = false;
  holder.innerHTML = "";
  holder.dataset.panel = name;
  const heading = document.createElement("p");
  heading.className = "job-heading";
  heading.textContent = title;
  holder.appendChild(heading);
  return holder;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(100 * value)}%`;
}

function copies(n) { return `${n} ${n === 1 ? "copy" : "copies"}`; }

function fileName(path) { return String(path || "").split(/[\\/]/).pop(); }

// A file input styled as a button; `onFiles` gets the chosen files.
function filePicker(text, id, multiple, onFiles) {
  const label = element("label", "upload-button job-upload", text);
  const input = document.createElement("input");
  input.type = "file";
  input.accept = "image/*";
  input.id = id;
  input.multiple = multiple;
  input.setAttribute("aria-label", text);
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) onFiles(files);
  });
  label.appendChild(input);
  return label;
}

// The embedding threshold (cosine) of duplicates and match; empty: the calibrated one.
function thresholdInput(id, onChange) {
  const threshold = document.createElement("input");
  threshold.id = id;
  threshold.className = "job-threshold";
  threshold.type = "number";
  threshold.min = "-1";
  threshold.max = "1";
  threshold.step = "0.01";
  threshold.placeholder = "calibrated";
  threshold.title = "embedding threshold (cosine); empty: the index's calibrated one";
  threshold.setAttribute("aria-label", "embedding threshold");
  threshold.value = jobsView.threshold;
  threshold.addEventListener("change", () => {
    jobsView.threshold = threshold.value;
    onChange();
  });
  return threshold;
}

// ---- duplicates ----------------------------------------------------------------------------

async function showDuplicates() {
  const holder = jobPanel("finding duplicates…", "duplicates");
  const controls = element("div", "job-controls");
  const across = document.createElement("select");
  across.id = "dup-across";
  across.setAttribute("aria-label", "which copies count");
  for (const [value, text] of [["", "any copies"], ["split", "copies across splits"],
    ["label", "copies across labels"], ["source", "copies across sources"]]) {
    const option = element("option", "", text);
    option.value = value;
    across.appendChild(option);
  }
  across.value = jobsView.across;
  across.addEventListener("change", () => { jobsView.across = across.value; showDuplicates(); });
  const threshold = thresholdInput("dup-threshold", showDuplicates);
  const viewsLabel = element("label", "dup-views", " turned & corner views");
  viewsLabel.title = "also compare each image turned ±10° and cut to its corners " +
    "(finds rotated copies and crops; the first run embeds them)";
  const views = document.createElement("input");
  views.type = "checkbox";
  views.id = "dup-views";
  views.checked = jobsView.views;
  views.addEventListener("change", () => { jobsView.views = views.checked; showDuplicates(); });
  viewsLabel.prepend(views);
  const markAll = button("Mark all but the keepers", "mark-all", () => {
    for (const box of holder.querySelectorAll(".dup-member:not(.keeper) input[type=checkbox]")) {
      if (!box.checked) box.click();
    }
  });
  const exported = button("Export marked", "export-marked", exportMarked);
  exported.id = "dup-export";
  const count = element("span", "marked-count");
  count.id = "dup-marked";
  controls.append(across, threshold, viewsLabel, markAll, exported, count);
  holder.appendChild(controls);
  updateMarked();
  try {
    const params = new URLSearchParams();
    if (jobsView.across) params.set("across", jobsView.across);
    if (jobsView.threshold !== "") params.set("threshold", jobsView.threshold);
    if (!jobsView.views) params.set("views", "false");
    const shown = jobsView.shown;
    const report = await json(`${base()}/duplicates?${params}`);
    if (shown !== jobsView.shown) return;
    jobsView.duplicates = report;
    const extra = report.groups.reduce((n, g) => n + g.members.length - 1, 0);
    holder.firstChild.textContent = `${plural(report.groups.length, "group")} of copies ` +
      `(${copies(extra)} beside the keepers); embedding threshold ` +
      `${report.threshold.toFixed(3)}, ${report.calibrated ? "calibrated" : "not calibrated"}` +
      `${report.phash_distance >= 0 ? `, hash distance ≤ ${report.phash_distance}` : ""}` +
      `${report.across ? `, only across ${report.across}` : ""}. ` +
      "Tick the copies to remove, then export the list.";
    const list = element("div", "dup-groups");
    report.groups.forEach((group, n) => list.appendChild(duplicateGroup(group, n)));
    holder.appendChild(list);
    if (jobsView.views && report.views === 0 && report.views_missing > 0) {
      holder.appendChild(viewsNote("turned copies and crops are found only as the " +
        "embedding sees them"));
    }
  } catch (error) { holder.firstChild.textContent = error.message; }
}

function duplicateGroup(group, n) {
  const box = element("div", "dup-group");
  box.dataset.keeper = group.keeper;
  box.appendChild(element("div", "dup-title", `group ${n + 1} · ${group.members.length} images`));
  const members = element("div", "dup-members");
  for (const member of group.members) members.appendChild(duplicateMember(member, group));
  box.appendChild(members);
  return box;
}

function duplicateMember(member, group) {
  const record = member.record;
  const item = element("figure", "crop dup-member" + (member.keeper ? " keeper" : ""));
  item.dataset.id = record.id;
  const img = document.createElement("img");
  img.alt = fileName(record.path);
  loadImage(img, thumbnailPath(record, 256));
  const caption = element("figcaption", "", fileName(record.path));
  caption.title = record.path;
  const facts = element("div", "dup-facts");
  if (member.keeper) facts.appendChild(element("span", "keeper-badge", "keeper"));
  facts.appendChild(element("span", `tier tier-${member.tier}`, member.tier));
  facts.appendChild(element("span", "dup-score", `score ${member.score.toFixed(3)}`));
  facts.appendChild(element("span", "dup-probability", `p ${percent(member.probability)}`));
  if (member.view) facts.appendChild(element("span", "dup-view", `via ${member.view}`));
  const mark = element("label", "dup-mark");
  const check = document.createElement("input");
  check.type = "checkbox";
  check.checked = jobsView.marked.has(record.id);
  check.setAttribute("aria-label", `mark ${fileName(record.path)} for removal`);
  check.addEventListener("change", () => {
    if (check.checked) {
      jobsView.marked.set(record.id, { record, keeper: group.keeper, tier: member.tier,
        score: member.score, probability: member.probability });
    } else {
      jobsView.marked.delete(record.id);
    }
    item.classList.toggle("marked", check.checked);
    updateMarked();
  });
  item.classList.toggle("marked", check.checked);
  mark.append(check, document.createTextNode(" remove"));
  item.append(img, caption, facts, mark);
  return item;
}

function updateMarked() {
  const count = $("dup-marked");
  if (count) count.textContent = `${jobsView.marked.size} marked`;
  const exported = $("dup-export");
  if (exported) exported.disabled = jobsView.marked.size === 0;
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function exportMarked() {
  const rows = [["id", "path", "keeper", "tier", "score", "probability"]];
  for (const [id, row] of jobsView.marked) {
    rows.push([id, row.record.path, row.keeper, row.tier, row.score, row.probability]);
  }
  const text = rows.map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = `${state.collection}-marked-duplicates.csv`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  status(`exported ${plural(jobsView.marked.size, "marked image")}`);
}

// ---- match ---------------------------------------------------------------------------------

function showMatch() {
  jobsView.matched = null;
  const holder = jobPanel("Which images of this collection do outside images copy? " +
    "Choose one or more: exact copies, re-encoded or edited ones, and crops are found.", "match");
  const controls = element("div", "job-controls");
  controls.append(filePicker("Choose images", "match-input", true, runMatch),
    thresholdInput("match-threshold", () => { if (jobsView.matched) runMatch(jobsView.matched); }));
  holder.append(controls, Object.assign(element("div", "match-results"), { id: "match-results" }));
}

// Each chosen file in turn, its answer under its own heading as it comes.
async function runMatch(files) {
  const results = $("match-results");
  const run = (results.run = (results.run || 0) + 1);   // a later choice replaces this one
  results.innerHTML = "";
  jobsView.matched = files;
  let missing = false;
  for (const file of files) {
    if (results.run !== run) return;
    const section = element("section", "match-file");
    results.appendChild(section);
    missing = (await matchOne(file, section)) || missing;
  }
  if (missing && results.run === run) {
    results.appendChild(viewsNote("crops of a corner are not found"));
  }
}

// One file's matches into ``section``; true when the collection keeps no views.
async function matchOne(file, section) {
  const summary = element("p", "match-summary", `matching ${file.name}…`);
  section.appendChild(summary);
  try {
    const data = await queryImage(file);
    const query = element("figure", "crop match-query");
    const img = document.createElement("img");
    img.src = data;
    img.alt = file.name;
    query.append(img, element("figcaption", "", `query: ${file.name}`));
    const body = { image: data.split(",")[1] };
    if (jobsView.threshold !== "") body.threshold = Number(jobsView.threshold);
    const report = await json(`${base()}/match`, body);
    summary.textContent = report.matches.length
      ? `${copies(report.matches.length)} of ${file.name} found (threshold ` +
        `${report.threshold.toFixed(3)}, ${report.calibrated ? "calibrated" : "not calibrated"}):`
      : `no copy of ${file.name} in this collection (threshold ${report.threshold.toFixed(3)})`;
    const list = element("div", "match-list");
    list.appendChild(query);
    for (const match of report.matches) list.appendChild(matchCard(match));
    section.appendChild(list);
    return report.views === "missing";
  } catch (error) {
    summary.textContent = error.message;
    return false;
  }
}

// The server makes no views inside a request (seven embeddings an image): duplicates and
// match compare the collection's turned and corner views once a views job has kept them.
function viewsNote(missed) {
  const note = element("p", "views-note",
    `This collection keeps no turned and corner views, so ${missed}. `);
  const make = element("button", "", "make them");
  make.type = "button";
  make.id = "make-views";
  make.addEventListener("click", async () => {
    make.disabled = true;
    try {
      await json(`${base()}/jobs`, { kind: "views" });
      note.textContent = "Making them in the background (Models shows the job); " +
        "later requests use them.";
    } catch (error) { note.textContent = error.message; }
  });
  note.appendChild(make);
  return note;
}

function matchCard(match) {
  const record = match.record;
  const item = element("figure", "crop match");
  item.dataset.id = record.id;
  item.dataset.tier = match.tier;
  const frame = element("div", "match-frame");
  const img = document.createElement("img");
  img.alt = fileName(record.path);
  loadImage(img, thumbnailPath(record, 256));
  frame.appendChild(img);
  if (match.box && record.width && record.height) {
    // the matched part, in the collection image's pixels, drawn over its thumbnail
    const [x, y, w, h] = match.box;
    const part = element("div", "match-box");
    part.style.left = `${(100 * x) / record.width}%`;
    part.style.top = `${(100 * y) / record.height}%`;
    part.style.width = `${(100 * w) / record.width}%`;
    part.style.height = `${(100 * h) / record.height}%`;
    part.title = `the part that matched: ${match.box.map((v) => Math.round(v)).join(", ")}`;
    frame.appendChild(part);
  }
  const caption = element("figcaption", "", fileName(record.path));
  caption.title = record.path;
  const facts = element("div", "dup-facts");
  facts.appendChild(element("span", `tier tier-${match.tier}`, match.tier));
  facts.appendChild(element("span", "dup-score", `score ${match.score.toFixed(3)}`));
  facts.appendChild(element("span", "dup-probability", `p ${percent(match.probability)}`));
  const how = [match.box ? `a part (${match.via})` : "", match.view !== "as is" ? match.view : ""]
    .filter(Boolean).join(", ");
  if (how) facts.appendChild(element("span", "match-via", how));
  item.append(frame, caption, facts);
  return item;
}

// ---- classify ------------------------------------------------------------------------------

function showClassify() {
  const holder = jobPanel("Label outside images by their nearest labelled images in this " +
    "collection.", "classify");
  const controls = element("div", "job-controls");
  controls.appendChild(filePicker("Choose images", "classify-input", true, runClassify));
  holder.append(controls, Object.assign(element("div", "classify-list"), { id: "classify-list" }));
}

async function runClassify(files) {
  const list = $("classify-list");
  const run = (list.run = (list.run || 0) + 1);   // a later choice replaces this one
  list.innerHTML = "";
  for (const file of files) {
    if (list.run !== run) return;
    const row = element("figure", "crop classified");
    const img = document.createElement("img");
    img.alt = file.name;
    const caption = element("figcaption", "", file.name);
    const verdict = element("div", "classify-label", "classifying…");
    const alternatives = element("ul", "classify-alternatives");
    row.append(img, caption, verdict, alternatives);
    list.appendChild(row);
    try {
      const data = await queryImage(file);
      img.src = data;
      const prediction = await json(`${base()}/classify`, { image: data.split(",")[1], k: 10 });
      row.dataset.label = prediction.label || "";
      verdict.textContent = prediction.label
        ? `${prediction.label} · ${percent(prediction.confidence)}`
        : "no labelled neighbours";
      const bar = element("span", "confidence-bar");
      bar.style.width = `${Math.round(100 * prediction.confidence)}%`;
      verdict.appendChild(bar);
      for (const [label, share] of prediction.alternatives.slice(1, 5)) {
        if (share > 0) alternatives.appendChild(element("li", "", `or ${label} ${percent(share)}`));
      }
    } catch (error) {
      verdict.textContent = error.message;
      verdict.classList.add("error");
    }
  }
}

// ---- models --------------------------------------------------------------------------------

async function showModels() {
  const holder = jobPanel("loading the indexes…", "models");
  try {
    const shown = jobsView.shown;
    const [collections, jobs, indexes] = await Promise.all([json("/collections"), json("/jobs"),
      json(`${base()}/indexes`)]);
    if (shown !== jobsView.shown) return;
    holder.firstChild.textContent = "The model each collection searches with (its active " +
      "index), and the training, reindexing and comparing jobs.";
    const table = element("table", "models-table");
    table.id = "models-table";
    const head = element("tr");
    for (const text of ["collection", "model", "dim", "runtime", "precision", "images",
      "objects"]) head.appendChild(element("th", "", text));
    table.appendChild(head);
    for (const c of collections) {
      const row = element("tr", c.name === state.collection ? "current" : "");
      for (const value of [c.name, c.model, c.dim, c.runtime, c.precision, c.images, c.objects]) {
        row.appendChild(element("td", "", String(value)));
      }
      table.appendChild(row);
    }
    holder.appendChild(table);
    holder.appendChild(indexTable(indexes));
    holder.appendChild(reindexForm());
    const jobList = element("div", "job-list");
    jobList.id = "job-list";
    holder.appendChild(jobList);
    if (renderJobs(jobs)) setTimeout(pollJobs, 1000);
  } catch (error) { holder.firstChild.textContent = error.message; }
}

// The current collection's indexes (one per model), the active one marked; "Switch searches
// to it" makes another the active one (for every user of the server: it needs an admin key).
function indexTable(listing) {
  const box = element("div", "index-list");
  box.appendChild(element("p", "", `Indexes of ${state.collection}: searches, the map and ` +
    "the jobs use the active one."));
  const table = element("table", "indexes-table");
  table.id = "indexes-table";
  const head = element("tr");
  for (const text of ["index", "model", "family", "dim", "records", "state", ""]) {
    head.appendChild(element("th", "", text));
  }
  table.appendChild(head);
  for (const index of listing.indexes) {
    const row = element("tr", index.active ? "active" : "");
    row.dataset.index = index.name;
    for (const value of [index.name, fileName(index.model) || index.model, index.family,
      index.dim, index.records, index.state]) row.appendChild(element("td", "", String(value)));
    const cell = element("td");
    if (index.active) cell.appendChild(element("span", "active-badge", "active"));
    else if (index.state === "ready") {
      cell.appendChild(button("Switch searches to it", "activate-index",
        () => activateIndex(index.name)));
    }
    row.appendChild(cell);
    table.appendChild(row);
  }
  box.appendChild(table);
  return box;
}

async function activateIndex(name) {
  try {
    await api(`${base()}/indexes/active`, { method: "PUT",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ index: name }) });
    await showModels();
    status(`searches in ${state.collection} use the index ${name} now`);
    if (state.query) runSearch(state.query);
  } catch (error) { status(error.message, true); }
}

// Building an index with another model runs in the background; "switch to it" activates it
// when it is done.
function reindexForm() {
  const form = element("form", "job-controls reindex-form");
  const model = document.createElement("input");
  model.id = "reindex-model";
  model.placeholder = "model (hub id or a folder under the models root)";
  model.setAttribute("aria-label", "model to reindex with");
  const activate = element("label", "", "");
  const check = document.createElement("input");
  check.type = "checkbox";
  check.id = "reindex-activate";
  check.checked = true;
  activate.append(check, document.createTextNode(" switch to it when built"));
  const start = element("button", "", "Reindex");
  start.type = "submit";
  form.append(model, activate, start);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!model.value.trim()) return;
    try {
      await json(`${base()}/jobs`, { kind: "reindex", model: model.value.trim(),
        activate: check.checked });
      pollJobs();
    } catch (error) { status(error.message, true); }
  });
  return form;
}

function renderJobs(jobs) {
  const list = $("job-list");
  if (!list) return false;
  list.innerHTML = "";
  const mine = jobs.filter((job) => job.collection === state.collection);
  list.appendChild(element("p", "", mine.length
    ? `background jobs on ${state.collection}:` : `no background jobs on ${state.collection}`));
  for (const job of mine) {
    const row = element("div", `job job-${job.state}`);
    row.dataset.id = job.id;
    const what = job.params && job.params.model ? ` ${fileName(job.params.model)}` : "";
    row.appendChild(element("span", "job-kind", `${job.kind}${what}`));
    const bar = element("span", "job-progress");
    const fill = element("span", "job-fill");
    fill.style.width = `${Math.round(100 * (job.progress || 0))}%`;
    bar.appendChild(fill);
    row.appendChild(bar);
    row.appendChild(element("span", "job-state",
      `${job.state} ${percent(job.progress)}${job.message ? " · " + job.message : ""}` +
      `${job.error ? " · " + job.error : ""}`));
    list.appendChild(row);
  }
  return mine.some((job) => job.state === "queued" || job.state === "running");
}

async function pollJobs() {
  try {
    if (renderJobs(await json("/jobs"))) setTimeout(pollJobs, 1000);
    else await refreshIndexes();      // a finished reindex adds an index, and may switch to it
  } catch (error) { status(error.message, true); }
}

async function refreshIndexes() {
  const shown = document.querySelector(".index-list");
  if (!shown) return;
  const listing = await json(`${base()}/indexes`);
  if (shown.isConnected) shown.replaceWith(indexTable(listing));
}

$("duplicates-button").addEventListener("click", showDuplicates);
$("match-button").addEventListener("click", showMatch);
$("classify-button").addEventListener("click", showClassify);
$("models-button").addEventListener("click", showModels);
$("collection").addEventListener("change", () => { jobsView.marked.clear(); });
