// Charts over the dashboard's buckets, drawn by uPlot (vendor/uplot, MIT): a 50 KB-class library
// with no dependencies and an ES module build, so the console loads it as it is, with no build step.
// Each chart is a figure with a title; the numbers are also in a table under "Show the data",
// which is what assistive technology reads (the canvas itself is hidden from it).

import { h, uid } from "./dom.js";
import { t } from "./i18n.js";

let uPlotModule = null;
async function uPlot() {
  if (!uPlotModule) uPlotModule = (await import("../vendor/uplot/uPlot.esm.js")).default;
  return uPlotModule;
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export const PALETTE = ["--chart-1", "--chart-2", "--chart-3", "--chart-4", "--chart-5", "--chart-6"];

export function color(index) {
  return cssVar(PALETTE[index % PALETTE.length], "#4338ca");
}

// labels: one per bucket; series: [{ label, values, kind: "bar" | "line", color, format }].
// Returns { el, destroy }; the plot is drawn once the element is in the page (it needs a width).
export function chart({ title, labels, series, format = (v) => String(v), height = 220, yMax = null, integer = false }) {
  const titleId = uid("chart");
  const plotBox = h("div", { class: "chart-plot", "aria-hidden": "true" });
  const table = h("table", { class: "data compact chart-table" },
    h("caption", { class: "sr-only", text: title }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("chart.period") }), series.map((s) => h("th", { scope: "col", text: s.label })))),
    h("tbody", {}, labels.map((label, i) => h("tr", {}, h("th", { scope: "row", text: label }),
      series.map((s) => h("td", { text: s.values[i] === null || s.values[i] === undefined ? "—" : (s.format || format)(s.values[i]) }))))));
  const el = h("figure", { class: "chart card", "aria-labelledby": titleId },
    h("figcaption", { id: titleId, class: "chart-title", text: title }),
    plotBox,
    h("details", { class: "chart-data" }, h("summary", { text: t("chart.show_data") }), h("div", { class: "table-wrap" }, table)));

  let plot = null;
  let observer = null;
  let destroyed = false;

  async function draw() {
    const U = await uPlot();
    if (destroyed) return;
    const width = Math.max(240, plotBox.clientWidth || 480);
    const xs = labels.map((_, i) => i);
    const text = cssVar("--muted", "#5c6372");
    const grid = cssVar("--border", "#dfe2e8");
    const axisFont = "12px system-ui, sans-serif";
    const bars = U.paths.bars({ size: [0.7, 48], gap: 2 });
    const opts = {
      width,
      height,
      legend: { show: series.length > 1 },
      cursor: { points: { size: 6 } },
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: (u, min, max) => [0, yMax ?? Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: text, grid: { show: false }, ticks: { stroke: grid }, font: axisFont,
          values: (u, splits) => splits.map((i) => (Number.isInteger(i) && labels[i] !== undefined ? labels[i] : "")),
          space: 48, incrs: [1, 2, 3, 4, 6, 12] },
        { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, font: axisFont, size: 76,
          values: (u, splits) => splits.map((v) => format(v)),
          ...(integer ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] } : {}) },
      ],
      series: [
        { label: t("chart.period"), value: (u, i) => (i === null ? "—" : labels[i] ?? "") },
        ...series.map((s, i) => {
          const c = s.color || color(i);
          return {
            label: s.label, stroke: c, width: s.kind === "bar" ? 0 : 2, fill: s.kind === "bar" ? c : undefined,
            paths: s.kind === "bar" ? bars : undefined, points: { show: s.kind !== "bar", size: 5, fill: c },
            spanGaps: false, value: (u, v) => (v === null || v === undefined ? "—" : (s.format || format)(v)),
          };
        }),
      ],
    };
    plot = new U(opts, [xs, ...series.map((s) => s.values)], plotBox);
    // Resized on the next frame, not inside the observer's callback (that would loop the observer).
    observer = new ResizeObserver(() => requestAnimationFrame(() => {
      const w = Math.max(240, plotBox.clientWidth);
      if (plot && !destroyed && Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height });
    }));
    observer.observe(plotBox);
  }

  // Drawn when attached: a microtask after the caller appends the element.
  queueMicrotask(() => { if (el.isConnected) draw(); else requestAnimationFrame(() => draw()); });
  return {
    el,
    destroy() {
      destroyed = true;
      if (observer) observer.disconnect();
      if (plot) plot.destroy();
    },
  };
}
