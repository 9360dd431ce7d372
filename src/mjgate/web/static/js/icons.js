// Inline SVG icons (24×24, stroked with currentColor). Emoji would need an emoji font, which many
// servers and some desktops lack (they render as empty boxes); these draw the same everywhere.

const SVG_NS = "http://www.w3.org/2000/svg";

// Each icon: a list of [element, attributes].
const ICONS = {
  refresh: [["path", { d: "M20 11a8 8 0 0 0-14.6-4.5L4 8" }], ["path", { d: "M4 3v5h5" }],
    ["path", { d: "M4 13a8 8 0 0 0 14.6 4.5L20 16" }], ["path", { d: "M20 21v-5h-5" }]],
  left: [["path", { d: "M19 12H5" }], ["path", { d: "M11 6l-6 6 6 6" }]],
  right: [["path", { d: "M5 12h14" }], ["path", { d: "M13 6l6 6-6 6" }]],
  up: [["path", { d: "M12 19V5" }], ["path", { d: "M6 11l6-6 6 6" }]],
  down: [["path", { d: "M12 5v14" }], ["path", { d: "M6 13l6 6 6-6" }]],
  zoom: [["circle", { cx: 11, cy: 11, r: 7 }], ["path", { d: "M20 20l-4-4" }], ["path", { d: "M8 11h6" }]],
  brush: [["path", { d: "M14 4l6 6-8 8-6-6z" }], ["path", { d: "M6 12l-2 6 2 2 6-2" }]],
  wand: [["path", { d: "M4 20L16 8" }], ["path", { d: "M15 4v2M19 8h2M18 5l1.5-1.5M20 12h-1M12 4h1" }]],
  film: [["rect", { x: 3, y: 5, width: 18, height: 14, rx: 2 }], ["path", { d: "M7 5v14M17 5v14M3 9h4M3 15h4M17 9h4M17 15h4" }]],
  upscale: [["path", { d: "M15 3h6v6" }], ["path", { d: "M21 3l-7 7" }], ["path", { d: "M9 21H3v-6" }], ["path", { d: "M3 21l7-7" }]],
  image: [["rect", { x: 3, y: 4, width: 18, height: 16, rx: 2 }], ["circle", { cx: 9, cy: 10, r: 2 }], ["path", { d: "M21 17l-5-5-9 8" }]],
  text: [["path", { d: "M5 6h14M5 10h14M5 14h10M5 18h7" }]],
  alert: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M12 7v6M12 16.5v.5" }]],
  clock: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M12 7v5l3 2" }]],
  download: [["path", { d: "M12 4v11" }], ["path", { d: "M7 10l5 5 5-5" }], ["path", { d: "M5 20h14" }]],
  close: [["path", { d: "M6 6l12 12M18 6L6 18" }]],
  undo: [["path", { d: "M9 14L4 9l5-5" }], ["path", { d: "M4 9h10a6 6 0 0 1 0 12h-3" }]],
  eraser: [["path", { d: "M16 4l4 4-10 10H6l-2-2z" }], ["path", { d: "M14 18h6" }]],
  blend: [["circle", { cx: 9, cy: 12, r: 6 }], ["circle", { cx: 15, cy: 12, r: 6 }]],
  video: [["rect", { x: 3, y: 6, width: 13, height: 12, rx: 2 }], ["path", { d: "M16 10l5-3v10l-5-3z" }]],
  sparkle: [["path", { d: "M12 3l2 6 6 2-6 2-2 6-2-6-6-2 6-2z" }]],
  chart: [["path", { d: "M4 20V10M10 20V4M16 20v-7M22 20H2" }]],
  list: [["path", { d: "M8 6h13M8 12h13M8 18h13" }], ["circle", { cx: 4, cy: 6, r: 1 }], ["circle", { cx: 4, cy: 12, r: 1 }], ["circle", { cx: 4, cy: 18, r: 1 }]],
};

export function icon(name, { size = 18, label = null, className = "icon" } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "2");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("class", className);
  svg.setAttribute("focusable", "false");
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  for (const [tag, attrs] of ICONS[name] || ICONS.image) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}
