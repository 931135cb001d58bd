// Live camera page: camera frames -> WebSocket /api/v1/live -> boxes drawn over the video in this page.
// One frame is in flight at a time, so a slower server lowers the frame rate instead of queueing frames.
"use strict";
(() => {
  const { config, barChart } = window.Moodlens;
  const $ = (id) => document.getElementById(id);
  const video = $("video"), overlay = $("overlay"), status = $("live-status");
  const grab = document.createElement("canvas");
  const SEND_WIDTH = 480; // frames are downscaled before sending: faster upload and detection
  const WINDOW = 300; // running distribution over the last WINDOW face observations
  $("window-size").textContent = WINDOW;

  let stream = null, socket = null, running = false, inFlight = false;
  let answers = []; // arrival times of the last second's answers, for FPS
  let recent = []; // emotions of the last WINDOW faces
  barChart($("live-chart"), {});

  function say(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function cameraProblem(err) {
    switch (err && err.name) {
      case "NotAllowedError":
      case "SecurityError":
        return "Camera permission was denied. Allow camera access for this site in the browser's settings, then press Start camera again.";
      case "NotFoundError":
      case "OverconstrainedError":
        return "No camera was found on this device. Connect a camera, or use the Photos page instead.";
      case "NotReadableError":
        return "The camera is in use by another application or could not be started.";
      default:
        return `The camera could not be started (${(err && (err.name || err.message)) || err}).`;
    }
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser offers no camera access on this page. Browsers allow cameras only on https:// pages "
        + "or on http://localhost; open the server through one of those, or use the Photos page.", true);
      return;
    }
    $("start").disabled = true;
    say("Asking for camera permission…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      say(cameraProblem(err), true);
      $("start").disabled = false;
      return;
    }
    video.srcObject = stream;
    await video.play();
    connect();
  }

  function connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/live`;
    socket = new WebSocket(url);
    socket.onopen = () => { running = true; inFlight = false; $("stop").disabled = false; say("Live: analysing frames."); loop(); };
    socket.onmessage = (ev) => onAnswer(JSON.parse(ev.data));
    socket.onerror = () => say("Cannot reach the analysis server (WebSocket error).", true);
    socket.onclose = () => {
      if (running) say("Connection to the server was lost. Press Start camera to try again.", true);
      stopCamera();
    };
  }

  async function loop() {
    if (!running) return;
    if (!inFlight && video.readyState >= 2 && socket.readyState === WebSocket.OPEN) {
      const scale = Math.min(1, SEND_WIDTH / video.videoWidth);
      grab.width = Math.round(video.videoWidth * scale);
      grab.height = Math.round(video.videoHeight * scale);
      grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
      inFlight = true;
      const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.75));
      if (blob && socket.readyState === WebSocket.OPEN) socket.send(blob); else inFlight = false;
    }
    requestAnimationFrame(loop);
  }

  function onAnswer(msg) {
    inFlight = false;
    if (msg.error) {
      say(msg.busy ? "Server busy, retrying…" : `Frame rejected: ${msg.error}`, !msg.busy);
      return;
    }
    const now = performance.now();
    answers.push(now);
    answers = answers.filter((t) => now - t < 1000);
    $("fps").textContent = answers.length.toFixed(0);
    $("latency").textContent = `${msg.ms.toFixed(0)} ms`;
    $("faces-now").textContent = msg.faces.length;
    for (const f of msg.faces) recent.push(f.emotion);
    if (recent.length > WINDOW) recent = recent.slice(-WINDOW);
    const counts = {};
    for (const e of recent) counts[e] = (counts[e] || 0) + 1;
    barChart($("live-chart"), counts);
    draw(msg);
  }

  function draw(msg) {
    overlay.width = overlay.clientWidth;
    overlay.height = overlay.clientHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const sx = overlay.width / msg.width, sy = overlay.height / msg.height;
    ctx.lineWidth = 3;
    ctx.font = "600 15px system-ui, sans-serif";
    for (const f of msg.faces) {
      const [x, y, w, h] = f.box;
      const color = config.colors[f.emotion] || "#fff";
      ctx.strokeStyle = color;
      ctx.strokeRect(x * sx, y * sy, w * sx, h * sy);
      // Smoothed per track by the server's stream pipeline; the track number stays with a face across frames.
      const label = `${f.track_id != null ? `#${f.track_id} ` : ""}${f.emotion} ${(100 * f.confidence).toFixed(0)}%`;
      const tw = ctx.measureText(label).width + 8;
      const ty = Math.max(0, y * sy - 20);
      ctx.fillStyle = color;
      ctx.fillRect(x * sx - 1.5, ty, tw, 20);
      ctx.fillStyle = "#000";
      ctx.fillText(label, x * sx + 3, ty + 15);
    }
  }

  function stopCamera() {
    running = false;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    $("start").disabled = false;
    $("stop").disabled = true;
  }

  $("start").onclick = start;
  $("stop").onclick = () => {
    running = false;
    if (socket) socket.close();
    stopCamera();
    say("Camera off.");
  };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("This browser offers no camera access on this page (cameras need https:// or http://localhost). "
      + "Use the Photos page to analyse pictures instead.", true);
    $("start").disabled = true;
  }
})();
