// Shared by every moodlens page: the server-provided config, DOM and number helpers, and the bar chart.
"use strict";
window.Moodlens = (() => {
  const config = JSON.parse(document.getElementById("moodlens-config").textContent);
  const SVG = "http://www.w3.org/2000/svg";

  // el("td", {class: "x"}, "text", child) -> element; attributes set with setAttribute, children appended.
  function el(tag, attrs = {}, ...children) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  const bytes = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`);

  // Horizontal bars, one per emotion in the model's class order: counts = {emotion: number}.
  function barChart(svg, counts, labels = config.emotions) {
    // Draw in CSS pixels of the chart's own width, so labels stay readable from phones to desktops.
    const width = Math.max(260, Math.round(svg.getBoundingClientRect().width) || 420);
    const rowH = 26, labelW = 70, valueW = 80;
    const total = labels.reduce((s, k) => s + (counts[k] || 0), 0);
    const max = Math.max(1, ...labels.map((k) => counts[k] || 0));
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${width} ${labels.length * rowH + 4}`);
    labels.forEach((label, i) => {
      const n = counts[label] || 0;
      const y = i * rowH + 4;
      const w = ((width - labelW - valueW) * n) / max;
      const bar = el("svg:rect", { x: labelW, y, width: Math.max(w, n ? 2 : 0), height: rowH - 8, rx: 3,
        fill: config.colors[label] || "#888", "data-emotion": label, "data-count": n });
      bar.append(el("svg:title", {}, `${label}: ${n}`));
      svg.append(el("svg:text", { x: labelW - 6, y: y + rowH / 2 + 1, "text-anchor": "end", "dominant-baseline": "middle" }, label), bar,
        el("svg:text", { x: labelW + w + 6, y: y + rowH / 2 + 1, "dominant-baseline": "middle" }, total ? `${n} (${pct(n / total)})` : "0"));
    });
    svg.setAttribute("aria-label", labels.map((k) => `${k} ${counts[k] || 0}`).join(", "));
  }

  return { config, el, pct, bytes, barChart };
})();
