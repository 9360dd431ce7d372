// The mask editor for Vary (Region) and Edits: paint over the image where it may change.
//
// The strokes live on a canvas laid over the image at the image's own resolution. The mask sent
// upstream is a PNG of the same size: white where painted, black elsewhere. Mouse, pen and touch
// paint with pointer events; the keyboard moves a brush cursor with the arrow keys (Shift+arrows
// paint while moving, Space paints a dab), [ and ] change the brush size, Ctrl+Z undoes.

import { h, uid } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";

const UNDO_LIMIT = 30;
const KEY_STEP_PX = 12; // in screen pixels
const STROKE = "#ff2d6f";

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(t("mask.image_failed")));
    img.src = src;
  });
}

export async function maskEditor(imageUrl, { label } = {}) {
  const img = await loadImage(imageUrl);
  const width = img.naturalWidth || 512;
  const height = img.naturalHeight || 512;
  const canvas = h("canvas", { class: "mask-canvas", width, height, tabindex: 0 });
  const ctx = canvas.getContext("2d");
  const cursor = h("div", { class: "mask-cursor", hidden: true, "aria-hidden": "true" });
  const helpId = uid("mask-help");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label || t("mask.canvas_label"));
  canvas.setAttribute("aria-describedby", helpId);
  const picture = h("img", { src: imageUrl, alt: "", class: "mask-image", draggable: "false" });
  const stage = h("div", { class: "mask-stage" }, picture, canvas, cursor);

  const sizeId = uid("brush");
  const size = h("input", { id: sizeId, type: "range", min: 4, max: 160, step: 2, value: 40 });
  const sizeOut = h("output", { for: sizeId, class: "mask-size", text: "40" });
  const undoBtn = h("button", { type: "button", disabled: true }, icon("undo", { size: 16 }), t("mask.undo"));
  const clearBtn = h("button", { type: "button", disabled: true }, t("mask.clear"));
  const eraseId = uid("erase");
  const erase = h("input", { id: eraseId, type: "checkbox" });
  const status = h("p", { class: "muted small", "aria-live": "polite", text: t("mask.empty") });
  const toolbar = h("div", { class: "mask-tools", role: "group", "aria-label": t("mask.tools") },
    h("span", { class: "mask-size-field" }, h("label", { for: sizeId, text: t("mask.brush_size") }), size, sizeOut),
    h("label", { class: "check" }, erase, icon("eraser", { size: 16 }), t("mask.eraser")),
    undoBtn, clearBtn);
  const el = h("div", { class: "mask-editor" }, toolbar, stage,
    h("p", { class: "help", id: helpId, text: t("mask.help") }), status);

  const undo = [];
  let painted = false;
  let drawing = null; // last point while a stroke is under way
  let keyPoint = { x: width / 2, y: height / 2 };

  const scale = () => width / (canvas.getBoundingClientRect().width || width);
  const brush = () => parseInt(size.value, 10) * scale();

  function refreshState() {
    const data = ctx.getImageData(0, 0, width, height).data;
    painted = false;
    for (let i = 3; i < data.length; i += 4 * 7) { // sample every 7th pixel: enough to tell empty from painted
      if (data[i]) { painted = true; break; }
    }
    undoBtn.disabled = undo.length === 0;
    clearBtn.disabled = !painted;
    status.textContent = painted ? t("mask.painted") : t("mask.empty");
  }

  function snapshot() {
    undo.push(ctx.getImageData(0, 0, width, height));
    if (undo.length > UNDO_LIMIT) undo.shift();
  }

  function stroke(from, to) {
    ctx.globalCompositeOperation = erase.checked ? "destination-out" : "source-over";
    ctx.strokeStyle = STROKE;
    ctx.fillStyle = STROKE;
    ctx.lineWidth = brush();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    if (from.x === to.x && from.y === to.y) {
      ctx.arc(to.x, to.y, brush() / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: (event.clientX - rect.left) * (width / rect.width), y: (event.clientY - rect.top) * (height / rect.height) };
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    snapshot();
    drawing = point(event);
    stroke(drawing, drawing);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const next = point(event);
    stroke(drawing, next);
    drawing = next;
  });
  const end = () => {
    if (!drawing) return;
    drawing = null;
    refreshState();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  function showCursor() {
    const rect = canvas.getBoundingClientRect();
    const s = rect.width / width;
    const d = parseInt(size.value, 10);
    Object.assign(cursor.style, { left: `${keyPoint.x * s - d / 2}px`, top: `${keyPoint.y * s - d / 2}px`, width: `${d}px`, height: `${d}px` });
    cursor.hidden = false;
  }

  canvas.addEventListener("focus", showCursor);
  canvas.addEventListener("blur", () => { cursor.hidden = true; });
  canvas.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[event.key]) {
      event.preventDefault();
      const step = KEY_STEP_PX * scale();
      const from = { ...keyPoint };
      keyPoint = {
        x: Math.max(0, Math.min(width, keyPoint.x + moves[event.key][0] * step)),
        y: Math.max(0, Math.min(height, keyPoint.y + moves[event.key][1] * step)),
      };
      if (event.shiftKey) {
        if (!event.repeat) snapshot();
        stroke(from, keyPoint);
        refreshState();
      }
      showCursor();
    } else if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      snapshot();
      stroke(keyPoint, keyPoint);
      refreshState();
    } else if (event.key === "[" || event.key === "]") {
      event.preventDefault();
      size.value = String(parseInt(size.value, 10) + (event.key === "]" ? 8 : -8));
      size.dispatchEvent(new Event("input"));
      showCursor();
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undoBtn.click();
    }
  });
  size.addEventListener("input", () => { sizeOut.textContent = size.value; });
  undoBtn.addEventListener("click", () => {
    const last = undo.pop();
    if (last) ctx.putImageData(last, 0, 0);
    refreshState();
  });
  clearBtn.addEventListener("click", () => {
    snapshot();
    ctx.clearRect(0, 0, width, height);
    refreshState();
  });

  return {
    el,
    focus: () => canvas.focus(),
    hasMask: () => painted,
    // The mask as a PNG data: URI (white = may change), or null when nothing is painted.
    toDataURL() {
      if (!painted) return null;
      const out = document.createElement("canvas");
      out.width = width;
      out.height = height;
      const o = out.getContext("2d");
      o.drawImage(canvas, 0, 0);
      o.globalCompositeOperation = "source-in";
      o.fillStyle = "#ffffff";
      o.fillRect(0, 0, width, height);
      o.globalCompositeOperation = "destination-over";
      o.fillStyle = "#000000";
      o.fillRect(0, 0, width, height);
      return out.toDataURL("image/png");
    },
  };
}
