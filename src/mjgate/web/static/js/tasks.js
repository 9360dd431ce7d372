// The task log: filters (SPEC §3.1), paging, thumbnails, live progress, and the task detail dialog
// with the result buttons (U1–U4, V1–V4, reroll, zoom, pan, vary…).

import { api } from "./api.js";
import {
  TERMINAL, append, clear, emptyRow, errorMessage, fmtQuota, fmtTime, formDialog, h, openDialog, pager, percent,
  statusBadge, taskDuration, td, toast, uid,
} from "./dom.js";
import { onTask } from "./live.js";
import { taskAdminPanel } from "./task-admin.js";

const REFRESH_MS = 2500; // safety net for running rows when no live event arrives
const PROMPT_PREVIEW = 90;

function toEpochSeconds(localValue, end) {
  if (!localValue) return "";
  const ms = new Date(localValue).getTime();
  if (!Number.isFinite(ms)) return "";
  // datetime-local has minute precision: an end bound covers its whole minute.
  return Math.floor(ms / 1000) + (end ? 59 : 0);
}

function describeButton(button) {
  const id = button.customId || "";
  let m;
  let name = button.label || "";
  if (!name) {
    if (/::reroll::/.test(id)) name = "Reroll";
    else if ((m = id.match(/::pan_(left|right|up|down)::/))) name = `Pan ${m[1]}`;
    else if ((m = id.match(/^MJ::Outpaint::(\d+)::/))) name = m[1] === "50" ? "Zoom out 2x" : "Zoom out 1.5x";
    else if (/^MJ::CustomZoom::/.test(id)) name = "Custom zoom";
    else if (/^MJ::Inpaint::/.test(id)) name = "Vary (Region)";
    else name = id.split("::").slice(1, 3).join(" ") || "Action";
  }
  // Emoji alone may not render (no emoji font) and says little: the name always goes with it.
  return { text: [button.emoji, name].filter(Boolean).join(" "), name };
}

// ------------------------------------------------------------------ the detail dialog

function detailImage(item) {
  if (item.image_url) {
    return h("figure", { class: "detail-image" },
      h("a", { href: item.image_url, target: "_blank", rel: "noopener", "aria-label": "Open the full-size image in a new tab" },
        h("img", { src: item.image_url, alt: `Result of task ${item.mj_id}: ${item.prompt || item.action}`, class: "full-image" })));
  }
  const text = TERMINAL.has(item.status) ? "This task has no image." : "The image appears here when the task finishes.";
  return h("figure", { class: "detail-image placeholder" }, h("p", { class: "muted", text }));
}

function progressBlock(item) {
  const pct = item.status === "SUCCESS" ? 100 : percent(item.progress);
  const failed = item.status === "FAILURE" || item.status === "CANCEL";
  return h("div", { class: "progress-line" },
    failed ? null : h("progress", { class: item.status === "SUCCESS" ? "progress done" : "progress", max: 100, value: pct, "aria-label": `Progress of task ${item.mj_id}` }),
    failed ? null : h("span", { class: "pct", text: `${pct}%` }));
}

function meta(rows) {
  return h("dl", { class: "meta" }, rows.filter(Boolean).map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

// onChanged(mjId): an administrator acted on the task (refund, fail, re-poll); refresh what shows it.
export function openTaskDialog(mjId, ctx, { channelName = () => "—", onSubmitted = () => {}, onChanged = () => {} } = {}) {
  const dlg = openDialog({ title: `Task ${mjId}`, wide: true, body: [h("p", { class: "muted", text: "Loading…" })] });
  let current = null;
  let closed = false;
  let timer = null;
  // The parts of the detail: the image and the info are rebuilt on each load; the admin section stays
  // in place (an open confirmation form and the focus inside it survive the refresh).
  let shell = null;
  const adminPanel = ctx.me.user.is_admin ? taskAdminPanel(mjId, ctx, {
    onChanged: async () => {
      await load();
      onChanged(mjId);
      if (current && current.owned) ctx.refreshMe(); // the balance in the header
    },
  }) : null;

  const render = (item) => {
    current = item;
    const admin = ctx.me.user.is_admin;
    const buttons = item.buttons || [];
    let actions;
    if (item.status !== "SUCCESS") {
      actions = h("p", { class: "muted", text: "Actions become available when the task has succeeded." });
    } else if (!item.owned) {
      actions = h("p", { class: "muted", text: "Only the task's owner can run follow-up actions." });
    } else if (!buttons.length) {
      actions = h("p", { class: "muted", text: "This result has no follow-up actions." });
    } else {
      actions = h("div", { class: "task-buttons", role: "group", "aria-label": "Actions on this result" },
        buttons.map((b) => {
          const { text, name } = describeButton(b);
          const el = h("button", { type: "button", class: "action-button", text, "aria-label": name, title: name });
          el.addEventListener("click", () => press(item, b, name, el));
          return el;
        }));
    }
    const info = h("div", { class: "detail-main" },
      h("div", { class: "detail-status" }, statusBadge(item.status), progressBlock(item)),
      item.fail_reason ? h("p", { class: "fail", role: "note" }, h("strong", { text: "Failure reason: " }), item.fail_reason) : null,
      meta([
        ["Action", `${item.action} · ${item.mode || "fast"}`],
        admin ? ["User", `#${item.user_id}`] : null,
        admin ? ["Channel", channelName(item.channel_id)] : null,
        ["Submitted", fmtTime(item.submit_time)],
        ["Started", fmtTime(item.start_time)],
        ["Finished", fmtTime(item.finish_time)],
        ["Duration", taskDuration(item)],
        ["Cost", item.refunded ? h("span", {}, h("s", { text: fmtQuota(item.quota) }), " refunded") : fmtQuota(item.quota)],
        item.description ? ["Description", item.description] : null,
      ]),
      h("h3", { text: "Prompt" }),
      h("pre", { class: "prompt-full", text: item.prompt || "(none)" }),
      h("h3", { text: "Actions" }),
      actions);
    const imageKey = `${item.image_url || ""} ${TERMINAL.has(item.status)}`;
    if (!shell) {
      shell = { image: detailImage(item), imageKey, info };
      clear(dlg.content);
      append(dlg.content, h("div", { class: "detail" },
        shell.image,
        h("div", { class: "detail-info" }, info, adminPanel ? adminPanel.el : null)));
    } else {
      if (shell.imageKey !== imageKey) {
        const image = detailImage(item);
        shell.image.replaceWith(image);
        Object.assign(shell, { image, imageKey });
      }
      shell.info.replaceWith(info);
      shell.info = info;
    }
    if (adminPanel) adminPanel.update(item);
  };

  const load = async () => {
    try {
      const item = await api(`/api/console/tasks/${encodeURIComponent(mjId)}`);
      if (!closed) render(item);
    } catch (err) {
      if (closed) return;
      if (shell && adminPanel && adminPanel.el.contains(document.activeElement)) {
        toast(`Task ${mjId} could not be reloaded: ${errorMessage(err)}`, "error");
        return;
      }
      shell = null;
      clear(dlg.content);
      dlg.content.append(h("p", { class: "form-error", role: "alert", text: errorMessage(err) }));
    }
  };

  const press = async (item, button, name, el) => {
    el.disabled = true;
    try {
      const res = await api("/api/console/submit/action", { method: "POST", body: { task_id: item.mj_id, custom_id: button.customId } });
      if (res.code === 21) {
        dlg.close();
        modalStep(res.mj_id, name, item, button, onSubmitted);
        return;
      }
      toast(`${name}: submitted as task ${res.mj_id}`, "ok");
      dlg.close();
      onSubmitted(res.mj_id);
    } catch (err) {
      toast(`${name}: ${errorMessage(err)}`, "error");
    } finally {
      el.disabled = false;
    }
  };

  const off = onTask((event) => {
    if (event.mj_id !== mjId || !current) return;
    if (TERMINAL.has(event.status)) {
      load();
      return;
    }
    const progress = dlg.content.querySelector(".detail-status");
    if (progress) {
      clear(progress);
      append(progress, [statusBadge(event.status), progressBlock({ ...current, ...event })]);
    }
  });
  timer = setInterval(() => {
    if (current && !TERMINAL.has(current.status) && !document.hidden) load();
  }, REFRESH_MS);
  dlg.dialog.addEventListener("close", () => {
    closed = true;
    off();
    clearInterval(timer);
  });
  load();
  return dlg;
}

// Custom Zoom and Vary (Region) wait for a second step (code 21): a prompt, and for Vary (Region) a mask.
function modalStep(mjId, name, parent, button, onSubmitted) {
  const zoom = /CustomZoom/.test(button.customId);
  formDialog({
    title: name,
    intro: zoom
      ? "Custom zoom needs a prompt with a --zoom value (1 to 2). Until you send it the task waits; an unsent one times out and is refunded."
      : "Vary (Region) continues with a prompt for the selected region. Until you send it the task waits; an unsent one times out and is refunded.",
    fields: [{ name: "prompt", label: "Prompt", type: "textarea", rows: 4, required: zoom, value: zoom ? `${parent.prompt} --zoom 2` : parent.prompt, maxlength: 8192 }],
    submitLabel: "Continue",
    onSubmit: async (values) => {
      const res = await api("/api/console/submit/modal", { method: "POST", body: { task_id: mjId, prompt: values.prompt } });
      toast(`${name}: task ${res.mj_id} continues`, "ok");
      onSubmitted(res.mj_id);
    },
  });
  onSubmitted(mjId);
}

export function showPromptDialog(item) {
  openDialog({ title: `Prompt of task ${item.mj_id}`, body: [h("pre", { class: "prompt-full", text: item.prompt || "(none)" })] });
}

// ------------------------------------------------------------------ the log

export async function tasksView(root, ctx, params) {
  const admin = ctx.me.user.is_admin;
  const state = {
    page: Math.max(1, parseInt(params.get("p") || "1", 10) || 1),
    size: [10, 20, 50, 100].includes(parseInt(params.get("page_size"), 10)) ? parseInt(params.get("page_size"), 10) : 20,
    mj_id: params.get("mj_id") || "",
    start: params.get("start") || "",
    end: params.get("end") || "",
    channel_id: admin ? params.get("channel_id") || "" : "",
  };
  let highlight = params.get("highlight") || "";
  const rows = new Map(); // mj_id -> { item, tr }
  let channels = new Map();
  let reloadTimer = null;
  let loading = null;

  if (admin) {
    try {
      const data = await api("/api/admin/channels");
      channels = new Map(data.items.map((c) => [c.id, c]));
    } catch (err) {
      toast(`Channels could not be loaded: ${errorMessage(err)}`, "error");
    }
  }
  const channelName = (id) => {
    if (!id) return "—";
    const c = channels.get(id);
    return c ? `${c.name} (#${id})` : `#${id}`;
  };

  // ---- filters
  const ids = { mj: uid("f-mj"), start: uid("f-start"), end: uid("f-end"), ch: uid("f-ch") };
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter tasks" },
    h("div", { class: "field" }, h("label", { for: ids.mj, text: "Task ID" }),
      h("input", { id: ids.mj, name: "mj_id", value: state.mj_id, inputmode: "numeric", autocomplete: "off", placeholder: "e.g. 1732350000000123", maxlength: 64 })),
    h("div", { class: "field" }, h("label", { for: ids.start, text: "Submitted from" }),
      h("input", { id: ids.start, name: "start", type: "datetime-local", value: state.start })),
    h("div", { class: "field" }, h("label", { for: ids.end, text: "Submitted until" }),
      h("input", { id: ids.end, name: "end", type: "datetime-local", value: state.end })),
    admin ? h("div", { class: "field" }, h("label", { for: ids.ch, text: "Channel" }),
      h("select", { id: ids.ch, name: "channel_id" },
        h("option", { value: "", text: "All channels" }),
        [...channels.values()].map((c) => h("option", { value: c.id, selected: String(c.id) === state.channel_id, text: `${c.name} (#${c.id})` })))) : null,
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary", text: "Apply filters" }),
      h("button", { type: "button", text: "Reset", onclick: () => { filters.reset(); for (const el of filters.elements) if (el.name) el.value = ""; apply(); } })));
  filters.addEventListener("submit", (event) => { event.preventDefault(); apply(); });

  function apply() {
    const form = filters.elements;
    state.mj_id = form.namedItem("mj_id").value.trim();
    state.start = form.namedItem("start").value;
    state.end = form.namedItem("end").value;
    state.channel_id = admin ? form.namedItem("channel_id").value : "";
    state.page = 1;
    highlight = "";
    load();
  }

  const filtered = () => Boolean(state.mj_id || state.start || state.end || state.channel_id);

  // ---- table
  const columns = ["Image", "Task", "Status", "Prompt", ...(admin ? ["User", "Channel"] : []), "Submitted", "Duration", "Cost"];
  const tbody = h("tbody");
  const table = h("table", { class: "data tasks responsive" },
    h("caption", { class: "sr-only", text: "Tasks, newest first" }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    tbody);
  const pagerBox = h("div", { class: "pager-box" });
  const liveBadge = h("span", { class: "live-badge", "aria-live": "polite" });
  const offLive = ctx.onLiveState((s) => {
    liveBadge.textContent = s === "live" ? "● Live" : s === "connecting" ? "○ Connecting…" : "○ Offline";
    liveBadge.dataset.state = s;
  });

  append(clear(root), [
    h("div", { class: "page-head" },
      h("h1", { text: admin ? "Tasks (all users)" : "My tasks" }), liveBadge,
      h("a", { class: "button primary", href: "#/submit", text: "New task" })),
    filters,
    h("div", { class: "table-wrap" }, table),
    pagerBox,
  ]);

  function statusCell(item) {
    return td("Status",
      statusBadge(item.status),
      progressBlock(item),
      item.fail_reason ? h("p", { class: "fail", text: item.fail_reason }) : null);
  }

  function renderRow(item) {
    const open = () => openTaskDialog(item.mj_id, ctx, { channelName, onSubmitted, onChanged: (id) => refreshRows([id], { full: true }) });
    const prompt = item.prompt || "";
    const tr = h("tr", { dataset: { mjId: item.mj_id, status: item.status } },
      td("Image", item.image_url
        ? h("button", { type: "button", class: "thumb", "aria-label": `Open the image of task ${item.mj_id}`, onclick: open },
          h("img", { src: item.image_url, alt: "", loading: "lazy", width: 72, height: 72, class: "thumb-img" }))
        : h("div", { class: "thumb thumb-empty", "aria-hidden": "true", text: item.action ? item.action[0] : "?" })),
      td("Task",
        h("button", { type: "button", class: "link mono", text: item.mj_id, title: "Open this task", onclick: open }),
        h("div", { class: "muted small", text: `${item.action} · ${item.mode || "fast"}` })),
      statusCell(item),
      td("Prompt",
        h("div", { class: "prompt-clip", text: prompt.length > PROMPT_PREVIEW ? `${prompt.slice(0, PROMPT_PREVIEW)}…` : prompt || "—" }),
        prompt.length > PROMPT_PREVIEW ? h("button", { type: "button", class: "link small", text: "Full prompt", onclick: () => showPromptDialog(item) }) : null),
      admin ? td("User", `#${item.user_id}`) : null,
      admin ? td("Channel", channelName(item.channel_id)) : null,
      td("Submitted", h("span", { class: "nowrap", text: fmtTime(item.submit_time) })),
      td("Duration", taskDuration(item)),
      td("Cost", item.refunded ? h("span", {}, h("s", { text: fmtQuota(item.quota) }), h("span", { class: "muted small", text: " refunded" })) : fmtQuota(item.quota)));
    if (item.mj_id === highlight) tr.classList.add("highlight");
    rows.set(item.mj_id, { item, tr });
    return tr;
  }

  function replaceRow(item) {
    const entry = rows.get(item.mj_id);
    if (!entry) return;
    const hadFocus = entry.tr.contains(document.activeElement);
    const tr = renderRow(item);
    entry.tr.replaceWith(tr);
    if (hadFocus) tr.querySelector("button")?.focus();
  }

  // The row's status and progress bar change in place; the full row is refetched when it ends.
  function updateInPlace(event) {
    const entry = rows.get(event.mj_id);
    if (!entry) return false;
    const item = { ...entry.item, status: event.status, progress: event.progress ?? entry.item.progress, fail_reason: event.fail_reason || entry.item.fail_reason };
    entry.item = item;
    entry.tr.dataset.status = item.status;
    const cell = entry.tr.querySelector('td[data-label="Status"]');
    if (cell) cell.replaceWith(statusCell(item));
    return true;
  }

  // full: re-render the rows whatever changed (after an admin action: cost, refund).
  async function refreshRows(mjIds, { full = false } = {}) {
    if (!mjIds.length) return;
    try {
      const data = await api("/api/console/tasks", { query: { ids: mjIds.join(",") } });
      for (const item of data.items) {
        const entry = rows.get(item.mj_id);
        if (!entry) continue;
        const before = entry.item;
        if (full || TERMINAL.has(item.status) || before.image_url !== item.image_url) replaceRow(item);
        else if (before.status !== item.status || before.progress !== item.progress) updateInPlace(item);
      }
    } catch (err) {
      if (err.status !== 401) console.warn("refresh failed", err);
    }
  }

  function scheduleReload() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load({ quiet: true }), 300);
  }

  function onSubmitted(mjId) {
    highlight = mjId;
    state.mj_id = state.start = state.end = state.channel_id = "";
    state.page = 1;
    for (const el of filters.elements) if (el.name) el.value = "";
    load();
    ctx.refreshMe();
  }

  async function load({ quiet = false } = {}) {
    ctx.setParams({
      p: state.page > 1 ? state.page : "", page_size: state.size !== 20 ? state.size : "", mj_id: state.mj_id,
      start: state.start, end: state.end, channel_id: state.channel_id, highlight,
    });
    const query = {
      p: state.page, page_size: state.size, mj_id: state.mj_id,
      start_timestamp: toEpochSeconds(state.start, false), end_timestamp: toEpochSeconds(state.end, true),
      channel_id: admin ? state.channel_id : "",
    };
    if (!quiet) table.setAttribute("aria-busy", "true");
    const mine = (loading = api(admin ? "/api/mj/" : "/api/mj/self", { query }));
    let data;
    try {
      data = await mine;
    } catch (err) {
      if (mine !== loading) return;
      table.removeAttribute("aria-busy");
      clear(tbody).append(h("tr", { class: "empty" }, h("td", { colspan: columns.length },
        h("p", { class: "form-error", role: "alert", text: `The task log could not be loaded: ${errorMessage(err)}` }))));
      return;
    }
    if (mine !== loading) return; // a newer load started meanwhile
    table.removeAttribute("aria-busy");
    rows.clear();
    clear(tbody);
    if (!data.items.length) {
      tbody.append(emptyRow(columns.length, filtered() ? "No task matches these filters." : "No tasks yet. Submit one with “New task”."));
    }
    for (const item of data.items) tbody.append(renderRow(item));
    clear(pagerBox).append(pager({
      page: data.page, pageSize: data.page_size, total: data.total, label: "tasks",
      onPage: (p) => { state.page = p; load(); },
      onSize: (s) => { state.size = s; state.page = 1; load(); },
    }));
  }

  const offTask = onTask((event) => {
    if (rows.has(event.mj_id)) {
      updateInPlace(event);
      if (TERMINAL.has(event.status)) refreshRows([event.mj_id]);
    } else if (state.page === 1 && !filtered()) {
      scheduleReload(); // a new task (from this console, another tab or an API client)
    }
  });
  const timer = setInterval(() => {
    if (document.hidden) return;
    const running = [...rows.values()].filter((r) => !TERMINAL.has(r.item.status)).map((r) => r.item.mj_id);
    refreshRows(running.slice(0, 50));
  }, REFRESH_MS);

  await load();
  return () => {
    offTask();
    offLive();
    clearInterval(timer);
    clearTimeout(reloadTimer);
  };
}
