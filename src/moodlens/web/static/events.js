// Events pages: create an event, upload photos to one, and keep its report live while a camera ingests.
"use strict";
(() => {
  const POLL_MS = 3000;

  async function errorText(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) return body.detail.map((d) => d.reason || d.msg || JSON.stringify(d)).join("; ");
    } catch (_) { /* not JSON */ }
    return `HTTP ${response.status}`;
  }

  const createForm = document.getElementById("create-event");
  if (createForm) {
    createForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const data = Object.fromEntries(new FormData(createForm));
      const status = document.getElementById("create-status");
      const response = await fetch("/api/v1/events", {method: "POST", headers: {"Content-Type": "application/json"},
                                                      body: JSON.stringify(data)});
      if (response.ok) location.href = `/events/${encodeURIComponent(data.name.trim())}`;
      else { status.textContent = await errorText(response); status.classList.add("error"); }
    });
  }

  const report = document.getElementById("report");
  if (!report) return;
  const name = report.dataset.event;
  const base = `/events/${encodeURIComponent(name)}`;
  const liveStatus = document.getElementById("live-status");
  let etag = null;

  // Fetch the report body; the server answers 304 while the event has no new observations.
  async function refresh() {
    try {
      const response = await fetch(`${base}/fragment`, {headers: etag ? {"If-None-Match": etag} : {}});
      if (response.status === 200) {
        report.innerHTML = await response.text();
        etag = response.headers.get("ETag");
        liveStatus.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes while new data arrives`;
      } else if (response.status !== 304) {
        liveStatus.textContent = await errorText(response);
      }
    } catch (err) {
      liveStatus.textContent = `Connection lost (${err.message}); retrying…`;
    }
  }
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);

  const upload = document.getElementById("event-upload");  // only on the operator's page
  if (upload) upload.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(upload);
    const status = document.getElementById("upload-status");
    status.classList.remove("error");
    status.textContent = "Analysing…";
    const body = new FormData();
    for (const file of form.getAll("files")) body.append("files", file);
    const url = `/api/v1/events/${encodeURIComponent(name)}/photos?batch=${encodeURIComponent(form.get("batch"))}`;
    const response = await fetch(url, {method: "POST", body});
    if (!response.ok) { status.textContent = await errorText(response); status.classList.add("error"); return; }
    const result = await response.json();
    const rejected = result.errors.map((e) => `${e.filename}: ${e.reason}`).join("; ");
    status.textContent = `${result.photos} photo(s), ${result.faces} face(s) added` + (rejected ? `; rejected: ${rejected}` : "");
    upload.reset();
    refresh();
  });
})();
