// DOM building, formatting, toasts and dialogs. Everything user-supplied goes in as text, never HTML.

import { fmtAgo, fmtDateTime, fmtDuration, fmtNumber, fmtQuota, fmtUsd, QUOTA_PER_USD, t } from "./i18n.js";
import { icon } from "./icons.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let idCounter = 0;
export function uid(prefix = "id") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// ------------------------------------------------------------------ formatting

export const TERMINAL = new Set(["SUCCESS", "FAILURE", "CANCEL"]);
export const UNFINISHED = ["NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS"];
export const STATUSES = ["NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "SUCCESS", "FAILURE", "CANCEL"];
export const ACTIONS = ["IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND", "SHORTEN", "ZOOM", "CUSTOM_ZOOM",
  "PAN", "INPAINT", "HIGH_VARIATION", "LOW_VARIATION", "SWAP_FACE", "UPLOAD", "VIDEO", "EDITS"];

export function statusLabel(status) {
  return STATUSES.includes(status) ? t(`status.${status}`) : status || "?";
}

export function actionLabel(action) {
  return ACTIONS.includes(action) ? t(`action.${action}`) : action || "?";
}

export function modeLabel(mode) {
  return ["fast", "relax", "turbo"].includes(mode) ? t(`mode.${mode}`) : mode || "";
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status || "").toLowerCase()}`, text: statusLabel(status) });
}

export function percent(progress) {
  const n = parseInt(String(progress || "").replace("%", ""), 10);
  return Number.isFinite(n) ? Math.max(0, Math.min(100, n)) : 0;
}

// Listing times are epoch seconds (the new-api shape); the admin API's are milliseconds.
export function fmtTime(seconds) {
  return seconds ? fmtDateTime(seconds * 1000) : "—";
}

export function fmtTimeMs(ms) {
  return fmtDateTime(ms);
}

export { fmtAgo, fmtDuration, fmtQuota, QUOTA_PER_USD };

export function usd(units) {
  return fmtUsd(units);
}

// "12s" for a finished task; "running 1m 5s" (recomputed every second by tickDurations) for the others.
export function taskDuration(item) {
  const start = item.submit_time;
  if (item.finish_time && start) return fmtDuration(item.finish_time - start);
  if (!TERMINAL.has(item.status) && start) {
    return t("task.running_for", { d: fmtDuration(Math.max(0, Math.floor(Date.now() / 1000) - start)) });
  }
  return "—";
}

// A span whose text is taskDuration(item), kept current by tickDurations() while the task runs.
export function durationText(item) {
  const el = h("span", { class: "duration", text: taskDuration(item) });
  if (!TERMINAL.has(item.status) && item.submit_time) {
    el.dataset.tickSince = String(item.submit_time);
  }
  return el;
}

export function tickDurations(root = document) {
  const now = Math.floor(Date.now() / 1000);
  for (const el of root.querySelectorAll("[data-tick-since]")) {
    el.textContent = t("task.running_for", { d: fmtDuration(Math.max(0, now - parseInt(el.dataset.tickSince, 10))) });
  }
}

// A URL that breaks only after its separators (/ . ? & =), never inside a word.
export function urlText(url, className = "url") {
  const el = h("span", { class: className, title: url });
  for (const part of String(url || "").split(/(?<=[/.?&=:])/)) {
    el.append(document.createTextNode(part), document.createElement("wbr"));
  }
  return el;
}

// ------------------------------------------------------------------ toasts

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const close = h("button", { type: "button", class: "toast-close", "aria-label": t("toast.dismiss") }, icon("close", { size: 16 }));
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : null }, h("span", { text: message }), close);
  const remove = () => item.remove();
  close.addEventListener("click", remove);
  box.append(item);
  setTimeout(remove, kind === "error" ? 12000 : 6000);
}

export function errorMessage(err) {
  if (!err) return t("error.generic");
  return err.message || String(err);
}

// ------------------------------------------------------------------ dialogs
// Native <dialog> opened with showModal(): the rest of the page is inert (focus stays inside),
// Escape closes it, and focus goes back to whatever opened it.

export function openDialog({ title, body = [], footer = [], wide = false, onClose = null, label = null, returnFocus = true }) {
  const opener = document.activeElement;
  const titleId = uid("dlg-title");
  const closeBtn = h("button", { type: "button", class: "icon-button dialog-close", "aria-label": t("dialog.close") }, icon("close"));
  const content = h("div", { class: "dialog-body" }, body);
  const foot = h("div", { class: "dialog-footer" }, footer);
  const dialog = h("dialog", { class: `dialog${wide ? " dialog-wide" : ""}`, "aria-labelledby": titleId },
    h("div", { class: "dialog-head" }, h("h2", { id: titleId, text: title }), closeBtn),
    content, foot);
  if (label) dialog.setAttribute("aria-label", label);
  closeBtn.addEventListener("click", () => dialog.close());
  // A click on the backdrop (outside the box) closes too.
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (onClose) onClose();
    if (returnFocus && opener && document.contains(opener) && typeof opener.focus === "function") opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, content, footer: foot, close: () => dialog.close(), setTitle: (t) => { dialog.querySelector("h2").textContent = t; } };
}

// A form in a dialog. fields: [{name, label, type, value, required, options:[[value,label]], help, placeholder, min, max, step}]
// onSubmit(values) may throw: the message is shown in the dialog and it stays open.
export function formDialog({ title, fields, submitLabel = null, onSubmit, intro = null }) {
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const form = h("form", { class: "form-grid", novalidate: false });
  if (intro) form.append(h("p", { class: "muted", text: intro }));
  for (const field of fields) form.append(fieldControl(field));
  form.append(errorBox);
  const submit = h("button", { type: "submit", class: "primary", text: submitLabel || t("common.save") });
  const cancel = h("button", { type: "button", text: t("common.cancel") });
  form.append(h("div", { class: "form-actions" }, cancel, submit));
  const dlg = openDialog({ title, body: [form] });
  cancel.addEventListener("click", () => dlg.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    errorBox.textContent = "";
    submit.disabled = true;
    try {
      const keep = await onSubmit(formValues(form, fields), dlg);
      if (keep !== true) dlg.close();
    } catch (err) {
      errorBox.textContent = errorMessage(err);
    } finally {
      submit.disabled = false;
    }
  });
  const first = form.querySelector("input:not([type=hidden]), select, textarea");
  if (first) first.focus();
  return dlg;
}

export function fieldControl(field) {
  const id = uid(`f-${field.name}`);
  const helpId = field.help ? `${id}-help` : null;
  let control;
  if (field.type === "select") {
    control = h("select", { id, name: field.name, required: field.required, "aria-describedby": helpId },
      field.options.map(([value, label]) => h("option", { value, selected: String(field.value ?? "") === String(value) }, label)));
  } else if (field.type === "textarea") {
    control = h("textarea", { id, name: field.name, required: field.required, rows: field.rows || 3, placeholder: field.placeholder, "aria-describedby": helpId, maxlength: field.maxlength });
    control.value = field.value ?? "";
  } else if (field.type === "checkbox") {
    // One yes/no choice: the box inside its label, the help below.
    return h("div", { class: "field" },
      h("label", { class: "check" }, h("input", { id, type: "checkbox", name: field.name, checked: Boolean(field.value), "aria-describedby": helpId }), field.label),
      field.help ? h("p", { class: "help", id: helpId, text: field.help }) : null);
  } else if (field.type === "checkboxes") {
    const box = h("fieldset", { class: "checks" }, h("legend", { text: field.label }),
      field.options.map(([value, label]) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: field.name, value, checked: (field.value || []).includes(value) }), label)));
    if (field.help) box.append(h("p", { class: "help", text: field.help }));
    return box;
  } else {
    control = h("input", {
      id, name: field.name, type: field.type || "text", required: field.required, placeholder: field.placeholder,
      min: field.min, max: field.max, step: field.step, pattern: field.pattern, autocomplete: field.autocomplete || "off",
      "aria-describedby": helpId, maxlength: field.maxlength,
    });
    control.value = field.value ?? "";
  }
  return h("div", { class: "field" },
    h("label", { for: id, text: field.label }),
    control,
    field.help ? h("p", { class: "help", id: helpId, text: field.help }) : null);
}

export function formValues(form, fields) {
  const values = {};
  for (const field of fields) {
    if (field.type === "checkboxes") {
      values[field.name] = [...form.querySelectorAll(`input[name="${field.name}"]:checked`)].map((i) => i.value);
    } else if (field.type === "checkbox") {
      values[field.name] = Boolean(form.elements.namedItem(field.name)?.checked);
    } else {
      const el = form.elements.namedItem(field.name);
      values[field.name] = el ? el.value.trim() : "";
    }
  }
  return values;
}

export function csv(text) {
  return String(text || "").split(",").map((s) => s.trim()).filter(Boolean);
}

// A "shown once" secret with a copy button.
export function secretDialog(title, explanation, secret, extra = []) {
  const input = h("input", { type: "text", readonly: true, value: secret, class: "secret", "aria-label": title });
  const copy = h("button", { type: "button", text: t("secret.copy") });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = t("secret.copied");
    } catch {
      input.select();
      copy.textContent = t("secret.press_ctrl_c");
    }
  });
  const dlg = openDialog({ title, body: [h("p", { text: explanation }), h("div", { class: "secret-row" }, input, copy), extra] });
  input.focus();
  input.select();
  return dlg;
}

// Pager: "Previous", "Page x of y", "Next", page-size select.
export function pager({ page, pageSize, total, onPage, onSize }) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const prev = h("button", { type: "button", text: t("pager.previous"), disabled: page <= 1, onclick: () => onPage(page - 1) });
  const next = h("button", { type: "button", text: t("pager.next"), disabled: page >= pages, onclick: () => onPage(page + 1) });
  const sizeId = uid("page-size");
  const size = h("select", { id: sizeId, onchange: (e) => onSize(parseInt(e.target.value, 10)) },
    [10, 20, 50, 100].map((n) => h("option", { value: n, selected: n === pageSize }, fmtNumber(n))));
  return h("nav", { class: "pager", "aria-label": t("pager.label") },
    prev,
    h("span", { class: "pager-info", "aria-live": "polite", text: t("pager.info", { page: fmtNumber(page), pages: fmtNumber(pages), total: fmtNumber(total) }) }),
    next,
    h("span", { class: "pager-size" }, h("label", { for: sizeId, text: t("pager.per_page") }), size));
}

export function emptyRow(colspan, text) {
  return h("tr", { class: "empty" }, h("td", { colspan, text }));
}

// One wrapper inside each cell, so narrow screens can lay out "label | content" as two columns.
export function td(label, ...children) {
  return h("td", { "data-label": label }, h("div", { class: "cell" }, children));
}
