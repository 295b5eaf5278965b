// chart.js - a horizontal bar chart in plain SVG (docs/WEB.md section 6:
// why not Chart.js). Labels are SVG <text> nodes filled with textContent,
// so a hostile device type is shown as the characters it is.
import {h} from "./dom.js";

const ROW = 22, LABEL_W = 210, BAR_W = 300, NUM_W = 70;

// bars: [{label, value}], largest first. title: the chart's accessible name.
export function barChart(bars, title) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const height = bars.length * ROW + 4;
  const svg = h("svg:svg", {viewBox: `0 0 ${LABEL_W + BAR_W + NUM_W} ${height}`, role: "img",
                            "aria-label": title, class: "chart", preserveAspectRatio: "xMinYMin meet"});
  svg.append(h("svg:title", {}, title));
  bars.forEach((b, i) => {
    const y = i * ROW + 2, w = Math.max(1, Math.round((b.value / max) * BAR_W));
    const label = b.label.length > 30 ? b.label.slice(0, 29) + "…" : b.label;
    svg.append(
      h("svg:text", {x: LABEL_W - 6, y: y + 15, "text-anchor": "end", class: "chart-label"}, label),
      h("svg:rect", {x: LABEL_W, y: y + 3, width: w, height: ROW - 6, class: "chart-bar", rx: 2}),
      h("svg:text", {x: LABEL_W + w + 6, y: y + 15, class: "chart-num"}, b.value.toLocaleString("en")));
  });
  return svg;
}

// A progress bar made of spans: the parts' values out of total, in order.
export function stacked(parts, total) {
  const bar = h("div", {class: "stack", role: "img",
                        "aria-label": parts.map((p) => p.label + " " + p.value).join(", ") + " of " + total});
  for (const p of parts) {
    if (!p.value) continue;
    const s = h("span", {class: "stack-" + p.cls, title: p.label + ": " + p.value});
    s.style.width = (100 * p.value / Math.max(1, total)).toFixed(2) + "%";
    bar.append(s);
  }
  return bar;
}
