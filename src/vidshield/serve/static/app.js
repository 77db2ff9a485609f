// The vidshield page: upload (XHR, with progress), poll the job, draw the result.
// Everything a client sent (file names) is inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { clean: "#2e8540", sparse: "#d9822b", dense: "#c23030" };
const blobUrls = [];
let pollTimer = null;
let current = null;
let shownReport = null;

function apiKey() { return localStorage.getItem("vidshield-key") || ""; }
function authHeaders() { const k = apiKey(); return k ? { "X-API-Key": k } : {}; }

async function api(url, options = {}) {
  const res = await fetch(url, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${res.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return res.status === 204 ? null : res.json();
}

// Images and downloads: plain URLs, or blobs fetched with the key when one is set.
async function setImage(img, url) {
  if (!apiKey()) { img.src = url; return; }
  const res = await fetch(url, { headers: authHeaders() });
  if (res.ok) { const u = URL.createObjectURL(await res.blob()); blobUrls.push(u); img.src = u; }
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) { const e = $("error"); e.textContent = message; e.hidden = !message; }

function setProgress(fraction, text) {
  $("progress").hidden = false;
  $("progress-fill").style.width = `${Math.round(100 * Math.max(0, Math.min(1, fraction)))}%`;
  $("progress-text").textContent = text;
}

// ---- options and upload ---------------------------------------------------------------------

async function loadOptions() {
  try {
    const o = await api("/v1/options");
    for (const m of o.models) $("opt-model").append(el("option", { value: m }, m));
    for (const c of o.configs) $("opt-config").append(el("option", { value: c }, c));
    $("config-label").hidden = o.configs.length === 0;
    for (const p of o.polluted) $("opt-polluted").append(el("option", { value: p }, p));
    $("drop-text").dataset.limit = o.max_upload_bytes;
  } catch (e) {
    showError(`Cannot read the service's options (${e.message}). ${e.message.startsWith("401") ? "Set the API key above." : ""}`);
  }
}

function chosenFile(file) {
  if (!file) return;
  $("drop-text").textContent = `${file.name} (${(file.size / 1e6).toFixed(2)} MB)`;
  $("scan-button").disabled = false;
}

function upload(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  showError("");
  const form = new FormData();
  form.append("model", $("opt-model").value);
  if ($("opt-config").value) form.append("config", $("opt-config").value);
  form.append("polluted", $("opt-polluted").value);
  form.append("qp", $("opt-qp").value);
  if ($("opt-vote").value) form.append("vote", $("opt-vote").value);
  form.append("squeeze_check", $("opt-squeeze").checked ? "true" : "false");
  form.append("defend", $("opt-defend").checked ? "true" : "false");
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/scans");
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setProgress(e.loaded / e.total, `uploading ${(e.loaded / 1e6).toFixed(1)} / ${(e.total / 1e6).toFixed(1)} MB`);
  };
  xhr.onload = () => {
    $("scan-button").disabled = false;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* empty */ }
    if (xhr.status === 202) { location.hash = `job=${body.id}`; return; }
    const retry = xhr.getResponseHeader("Retry-After");
    $("progress").hidden = true;
    showError(`${xhr.status}: ${body.detail || xhr.statusText}${retry ? ` (retry in ${retry} s)` : ""}`);
  };
  xhr.onerror = () => { $("scan-button").disabled = false; $("progress").hidden = true; showError("upload failed: connection lost"); };
  $("scan-button").disabled = true;
  setProgress(0, "uploading");
  xhr.send(form);
}

// ---- a job ------------------------------------------------------------------------------------

async function showJob(id) {
  clearTimeout(pollTimer);
  current = id;
  let job;
  try { job = await api(`/v1/scans/${encodeURIComponent(id)}`); } catch (e) { showError(e.message); return; }
  if (current !== id) return;
  if (job.state === "queued" || job.state === "running") {
    const p = job.progress;
    const what = job.state === "queued" ? "queued, waiting for a worker" : `scanning: ${p.frames_done} / ${p.frames_total} frames`;
    setProgress(p.frames_total ? p.frames_done / p.frames_total : 0, `${job.name}: ${what}`);
    pollTimer = setTimeout(() => showJob(id), 500);
    return;
  }
  $("progress").hidden = true;
  loadRecent();
  if (job.state === "failed") { $("result").hidden = true; showError(`${job.name}: failed: ${job.error}`); return; }
  showError("");
  renderResult(job);
}

function renderResult(job) {
  for (const u of blobUrls.splice(0)) URL.revokeObjectURL(u);
  $("result").hidden = false; // first: the timeline is drawn at the width it gets
  const r = job.report;
  const alpha = Math.max(...r.windows.map((w) => w.alpha));
  const v = $("verdict");
  const outside = r.verdict === "out_of_domain"; // as `scan`: a warning replaces the verdict, nothing is defended
  v.className = `verdict ${outside ? "out-of-domain" : r.verdict}`;
  v.replaceChildren(
    document.createTextNode(outside ? "out of domain" : r.verdict),
    el("small", {}, outside ? `no verdict (the detector alone would say ${r.detector_verdict})` : `alpha ${alpha.toFixed(3)}`),
  );
  v.dataset.verdict = outside ? "out-of-domain" : r.verdict;
  $("result-name").textContent = job.name;
  const facts = [
    ["about", r.about],
    ["in domain", r.in_domain == null ? "not checked (no profile in the detector config)" : outside ? r.domain_warning : "yes"],
    ["label", `${r.class_before} → ${r.class}${r.class_before === r.class ? "" : " (changed by the defense)"}${r.vote ? " · per-frame vote" : ""}`],
    ["exception frames", r.exception_frames.length ? r.exception_frames.join(", ") : "none"],
    ["defenses", [...new Set(r.windows.map((w) => w.defense))].join(", ")],
    ["thresholds", `gamma1 ${r.gamma1}, gamma2 ${r.gamma2}` + (r.target_fpr != null ? `, window FPR ${r.target_fpr}` : "")],
    ["frames", `${r.frames_decoded}${r.frames_declared != null && r.frames_declared !== r.frames_decoded ? ` of ${r.frames_declared} declared` : ""}${r.truncated ? " (truncated file: the frames that decode were scanned)" : ""} in ${r.windows.length} window(s) · ${job.video.width}×${job.video.height} ${job.video.codec}`],
    ["model", r.model + (r.classifier !== r.model ? `, classifier ${r.classifier}` : "")],
  ];
  if (r.windows_allowed != null) facts.push(["windows fired", `${r.windows_fired} of ${r.windows.length} (a clean video of this length may fire ${r.windows_allowed})`]);
  for (const w of r.warnings || []) facts.push(["warning", w]);
  $("facts").replaceChildren(...facts.flatMap(([k, val]) => [el("dt", {}, k), el("dd", {}, val)]));
  shownReport = r;
  drawTimeline(r);
  drawThumbs(job);
  const links = $("links");
  links.replaceChildren();
  if (job.links.defended) links.append(downloadLink(job.links.defended, "defended video (.mkv)", "defended-link"));
  if (job.links.labels) links.append(downloadLink(job.links.labels, "label plot (PNG)", "labels-link"));
  links.append(downloadLink(job.links.self, "job JSON", "json-link"));
  const del = el("a", { href: "#", id: "delete-link" }, "delete this job");
  del.onclick = async (e) => {
    e.preventDefault();
    try { await api(job.links.self, { method: "DELETE" }); } catch (err) { showError(err.message); return; }
    $("result").hidden = true; location.hash = ""; loadRecent();
  };
  links.append(del);
}

function downloadLink(url, text, id) {
  const a = el("a", { href: url, id }, text);
  a.addEventListener("click", async (e) => {
    if (!apiKey()) return; // plain link
    e.preventDefault();
    const res = await fetch(url, { headers: authHeaders() });
    if (!res.ok) { showError(`${res.status} for ${url}`); return; }
    const u = URL.createObjectURL(await res.blob());
    const tmp = el("a", { href: u, download: url.split("/").pop() });
    tmp.click();
    setTimeout(() => URL.revokeObjectURL(u), 10000);
  });
  return a;
}

// Per-frame labels (later windows win, as ScanResult.frame_labels), exception frames, windows.
function drawTimeline(r) {
  const n = r.num_frames;
  const labels = new Array(n).fill(0);
  for (const w of r.windows) w.frame_labels.forEach((l, i) => { labels[w.start + i] = l; });
  const names = { ...(r.label_space || []) };
  const shown = [...new Set(labels)].sort((a, b) => a - b);
  const W = Math.max(320, $("timeline").clientWidth || 1000), left = W < 600 ? 84 : 110, right = 12, rowH = 22, top = 14;
  const plotH = Math.max(2, shown.length) * rowH;
  const winTop = top + plotH + 16, winH = 12;
  const H = winTop + 2 * (winH + 4) + 22;
  const x = (t) => left + (n === 1 ? 0 : (t / (n - 1)) * (W - left - right));
  const y = (l) => top + (shown.indexOf(l) + 0.5) * (plotH / shown.length);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "per-frame labels", id: "timeline-svg" });
  shown.forEach((l) => {
    svg.append(svgEl("line", { x1: left, x2: W - right, y1: y(l), y2: y(l), stroke: "#e3e7ee" }));
    svg.append(svgEl("text", { x: left - 8, y: y(l) + 4, "text-anchor": "end", "font-size": 12, fill: "#5b6474" }, names[l] || `class ${l}`));
  });
  let d = "";
  labels.forEach((l, t) => {
    d += t === 0 ? `M${x(0)},${y(l)}` : `H${(x(t - 1) + x(t)) / 2}V${y(l)}`;
  });
  d += `H${x(n - 1)}`;
  svg.append(svgEl("path", { d, fill: "none", stroke: "#2d5fd3", "stroke-width": 1.6 }));
  const frames = svgEl("g", { class: "frames" });
  labels.forEach((l, t) => frames.append(svgEl("circle", { cx: x(t), cy: y(l), r: n > 400 ? 1 : 2.2, fill: "#2d5fd3", "data-frame": t })));
  svg.append(frames);
  const exc = svgEl("g", { class: "exceptions" });
  for (const t of r.exception_frames) {
    const ring = svgEl("circle", { cx: x(t), cy: y(labels[t]), r: 7, fill: "none", stroke: "#c23030", "stroke-width": 2, "data-frame": t });
    ring.append(svgEl("title", {}, `exception frame ${t}`));
    exc.append(ring);
    exc.append(svgEl("line", { x1: x(t), x2: x(t), y1: top - 8, y2: top - 2, stroke: "#c23030", "stroke-width": 2 }));
  }
  svg.append(exc);
  const wins = svgEl("g", { class: "windows" });
  const decided = r.detector_verdict ?? r.verdict; // out of domain: the windows the detector alone fired
  r.windows.forEach((w, i) => {
    const fired = w.verdict !== "clean" && w.verdict === decided;
    const x0 = x(w.start), x1 = x(w.start + w.frame_labels.length - 1);
    const rect = svgEl("rect", {
      x: x0, y: winTop + (i % 2) * (winH + 4), width: Math.max(2, x1 - x0), height: winH, rx: 3,
      fill: COLOURS[w.verdict] || "#888", "fill-opacity": fired ? 1 : 0.45,
      stroke: fired ? "#1d2330" : "none", "stroke-width": 2, class: fired ? "window fired" : "window",
    });
    rect.append(svgEl("title", {}, `frames ${w.start}-${w.start + w.frame_labels.length - 1}: ${w.verdict}, ${r.score_name ?? "alpha"} ${(w.score ?? w.alpha).toFixed(3)} (gamma1 ${r.gamma1}), alpha ${w.alpha.toFixed(3)}, defense ${w.defense}`));
    wins.append(rect);
  });
  svg.append(wins);
  svg.append(svgEl("text", { x: left - 8, y: winTop + winH, "text-anchor": "end", "font-size": 12, fill: "#5b6474" }, "windows"));
  const ticks = Math.min(10, n - 1);
  for (let k = 0; k <= ticks; k++) {
    const t = Math.round((k / Math.max(1, ticks)) * (n - 1));
    const anchor = k === ticks && ticks > 0 ? "end" : "middle";
    svg.append(svgEl("text", { x: x(t), y: H - 8, "text-anchor": anchor, "font-size": 11, fill: "#5b6474" }, String(t)));
  }
  const fired = r.windows.filter((w) => w.verdict !== "clean" && w.verdict === decided);
  const caption = fired.length
    ? `fired: ${fired.map((w) => `frames ${w.start}-${w.start + w.frame_labels.length - 1} (alpha ${w.alpha.toFixed(3)})`).join("; ")}`
    : r.windows_fired
      ? `${r.windows_fired} window(s) fired, within the false-alarm budget (${r.windows_allowed} allowed): verdict clean`
      : "no window fired";
  $("timeline").replaceChildren(svg);
  $("fired-caption").textContent = caption;
}

function drawThumbs(job) {
  const box = $("thumbs");
  box.replaceChildren();
  const thumbs = job.links.thumbnails || [];
  $("thumbs-title").hidden = false;
  if (!thumbs.length) { box.append(el("p", { class: "hint" }, "No exception frames.")); return; }
  for (const th of thumbs) {
    const card = el("div", { class: "thumb" });
    const pair = el("div", { class: "pair" });
    for (const which of ["before", "after"]) {
      if (!th[which]) continue;
      const fig = el("figure");
      const img = el("img", { alt: `frame ${th.frame} ${which} defense`, width: 96, height: 96 });
      setImage(img, th[which]);
      fig.append(img, el("figcaption", {}, which));
      pair.append(fig);
    }
    card.append(pair, el("div", {}, `frame ${th.frame}`));
    box.append(card);
  }
}

// ---- recent jobs ------------------------------------------------------------------------------

async function loadRecent() {
  let jobs;
  try { jobs = (await api("/v1/scans?limit=20")).jobs; } catch (e) { return; }
  const body = $("recent").querySelector("tbody");
  body.replaceChildren();
  for (const j of jobs) {
    const tr = el("tr", { "data-id": j.id });
    tr.append(el("td", { title: j.name }, j.name));
    tr.append(el("td", {}, j.state === "running" ? `running ${j.frames_done}/${j.frames_total}` : j.state));
    const v = el("td");
    if (j.verdict) v.append(el("span", { class: `tag ${j.verdict}` }, j.verdict === "out_of_domain" ? "out of domain" : j.verdict));
    else if (j.state === "failed") v.append(el("span", { class: "tag failed", title: j.error || "" }, "failed"));
    tr.append(v);
    tr.append(el("td", {}, new Date(j.created * 1000).toLocaleString()));
    tr.onclick = () => { location.hash = `job=${j.id}`; };
    body.append(tr);
  }
  if (!jobs.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: 4, class: "hint" }, "No jobs yet."));
    body.append(tr);
  }
}

function route() {
  const m = location.hash.match(/job=([0-9a-f]{32})/);
  if (m) showJob(m[1]);
}

// ---- wiring -----------------------------------------------------------------------------------

$("api-key").value = apiKey();
$("api-key").addEventListener("change", (e) => {
  localStorage.setItem("vidshield-key", e.target.value.trim());
  $("opt-model").replaceChildren(); $("opt-polluted").replaceChildren();
  showError(""); loadOptions(); loadRecent();
});
$("file").addEventListener("change", (e) => chosenFile(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) { $("file").files = e.dataTransfer.files; chosenFile(e.dataTransfer.files[0]); }
});
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
$("upload-form").addEventListener("submit", upload);
window.addEventListener("hashchange", route);
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (shownReport && !$("result").hidden) drawTimeline(shownReport); }, 150);
});
loadOptions();
loadRecent();
route();
