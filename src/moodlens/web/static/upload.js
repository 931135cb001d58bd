// Upload page: sends photos to POST /api/v1/analyze in small chunks (so progress is visible and every
// request stays within the server's limits), then shows annotated photos, face tables and a summary.
"use strict";
(() => {
  const { config, el, pct, bytes, barChart } = window.Moodlens;
  const limits = config.limits;
  const CHUNK_FILES = Math.min(4, limits.max_files);
  const CHUNK_BYTES = Math.floor(limits.max_upload_bytes * 0.9); // headroom for multipart headers
  const FILE_MAX = limits.max_upload_bytes - 16384; // a file this big still fits alone in one request
  const $ = (id) => document.getElementById(id);

  let images = []; // ImageResult objects of the API, plus the position in the whole batch
  let errors = []; // {index, filename, status, reason}
  let busy = false;

  $("limits-hint").textContent = `JPEG, PNG, WebP, GIF, BMP or TIFF · up to ${bytes(limits.max_upload_bytes)} per photo · `
    + `as many photos as you like (sent ${CHUNK_FILES} at a time)`;

  // Group files so each request holds at most CHUNK_FILES files and CHUNK_BYTES bytes.
  function chunk(files) {
    const chunks = [];
    let current = [], size = 0;
    for (const item of files) {
      if (current.length && (current.length >= CHUNK_FILES || size + item.file.size > CHUNK_BYTES)) {
        chunks.push(current); current = []; size = 0;
      }
      current.push(item); size += item.file.size;
    }
    if (current.length) chunks.push(current);
    return chunks;
  }

  // One request; XMLHttpRequest because fetch cannot report upload progress.
  function post(items, onUpload) {
    return new Promise((resolve) => {
      const form = new FormData();
      for (const item of items) form.append("files", item.file, item.file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/analyze?annotate=true");
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded / e.total);
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.response,
        retryAfter: Number(xhr.getResponseHeader("Retry-After") || 1) });
      xhr.onerror = () => resolve({ status: 0, body: null, retryAfter: 2 });
      xhr.send(form);
    });
  }

  const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

  async function analyzeChunk(items, onUpload) {
    for (let attempt = 0; ; attempt++) {
      const res = await post(items, onUpload);
      if ((res.status === 503 || res.status === 0) && attempt < 5) { await sleep(res.retryAfter); continue; }
      return res;
    }
  }

  function setProgress(done, total, note) {
    $("progress-block").hidden = false;
    $("progress").max = total;
    $("progress").value = done;
    $("progress-text").textContent = note;
  }

  async function run(fileList) {
    if (busy) return;
    busy = true;
    const start = images.length + errors.length;
    const items = [...fileList].map((file, i) => ({ file, index: start + i }));
    const sendable = [];
    for (const item of items) {
      if (item.file.size > FILE_MAX) {
        addError({ index: item.index, filename: item.file.name, status: 413,
          reason: `file is ${bytes(item.file.size)}, over this server's upload limit of ${bytes(limits.max_upload_bytes)}` });
      } else sendable.push(item);
    }
    let done = items.length - sendable.length;
    for (const part of chunk(sendable)) {
      const note = (f) => `Analysing photo ${done + 1}–${done + part.length} of ${items.length}`
        + (f < 1 ? ` (uploading ${pct(f)})` : "…");
      setProgress(done, items.length, note(0));
      const res = await analyzeChunk(part, (f) => setProgress(done + 0.5 * f * part.length, items.length, note(f)));
      if (res.body && Array.isArray(res.body.images)) {
        for (const image of res.body.images) addImage({ ...image, index: part[image.index].index });
        for (const error of res.body.errors || []) addError({ ...error, index: part[error.index].index });
      } else {
        const reason = res.status ? (res.body && res.body.detail) || `HTTP ${res.status}` : "server not reachable";
        for (const item of part) addError({ index: item.index, filename: item.file.name, status: res.status, reason });
      }
      done += part.length;
      renderSummary();
    }
    setProgress(items.length, items.length, `Done: ${items.length} photo${items.length === 1 ? "" : "s"} processed.`);
    busy = false;
  }

  // Colour set through the CSSOM: the Content-Security-Policy allows no inline style attributes.
  function swatch(emotion) {
    const node = el("span", { class: "swatch" });
    node.style.background = config.colors[emotion];
    return node;
  }

  function faceTable(image) {
    if (!image.faces.length) return el("p", { class: "muted" }, "No face found.");
    const head = el("tr", {}, ...["#", "Emotion", "Confidence", "Box (x, y, w, h)"].map((t) => el("th", {}, t)));
    const rows = image.faces.map((f, i) => el("tr", { "data-emotion": f.emotion },
      el("td", {}, String(i + 1)),
      el("td", {}, swatch(f.emotion), f.emotion),
      el("td", {}, pct(f.confidence)),
      el("td", {}, f.box.join(", "))));
    return el("div", { class: "table-wrap" }, el("table", { class: "faces" }, el("thead", {}, head),
      el("tbody", {}, ...rows)));
  }

  function addImage(image) {
    images.push(image);
    const card = el("article", { class: "result", "data-filename": image.filename },
      el("img", { src: image.annotated_image, alt: `${image.filename} with ${image.faces.length} face(s) marked`,
        width: image.width, height: image.height }),
      el("div", { class: "result-body" },
        el("h3", {}, `${image.filename} · ${image.faces.length} face${image.faces.length === 1 ? "" : "s"}`),
        faceTable(image)));
    $("results").append(card);
  }

  function addError(error) {
    errors.push(error);
    $("errors").hidden = false;
    $("error-list").append(el("li", {}, el("code", {}, error.filename), ` — ${error.reason}`));
  }

  function renderSummary() {
    const counts = {};
    let faces = 0;
    for (const image of images) for (const f of image.faces) { counts[f.emotion] = (counts[f.emotion] || 0) + 1; faces++; }
    $("summary").hidden = !(images.length || errors.length);
    $("stat-photos").textContent = images.length;
    $("stat-faces").textContent = faces;
    $("stat-per-photo").textContent = images.length ? (faces / images.length).toFixed(1) : "0";
    $("stat-rejected").textContent = errors.length;
    barChart($("chart"), counts);
  }

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // One CSV cell. Text that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading
  // apostrophe, as moodlens.textsafe.csv_cell does for the CSV files the server writes; numbers stay numbers.
  function csvCell(v) {
    let text = String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function toCSV() {
    const header = ["filename", "image_index", "width", "height", "face", "x", "y", "w", "h", "detector_score",
      "emotion", "confidence", ...config.emotions];
    const rows = [header];
    for (const image of [...images].sort((a, b) => a.index - b.index)) {
      image.faces.forEach((f, i) => rows.push([image.filename, image.index, image.width, image.height, i, ...f.box,
        f.detector_score, f.emotion, f.confidence, ...config.emotions.map((e) => f.scores[e])]));
    }
    return rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
  }

  function toJSON() {
    const strip = ({ annotated_image, ...rest }) => rest;
    return JSON.stringify({ images: images.map(strip).sort((a, b) => a.index - b.index),
      errors: [...errors].sort((a, b) => a.index - b.index) }, null, 1);
  }

  $("download-csv").onclick = () => download("moodlens-results.csv", "text/csv", toCSV());
  $("download-json").onclick = () => download("moodlens-results.json", "application/json", toJSON());
  $("clear").onclick = () => {
    if (busy) return;
    images = []; errors = [];
    $("results").replaceChildren(); $("error-list").replaceChildren();
    $("errors").hidden = true; $("progress-block").hidden = true;
    renderSummary();
  };

  const input = $("file-input");
  input.addEventListener("change", () => { run(input.files); input.value = ""; });
  const zone = $("dropzone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("dragover"); });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("dragover"));
  // A photo dropped beside the zone must not make the browser navigate away from the results.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => e.preventDefault());
  zone.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files.length) run(e.dataTransfer.files); });
})();
