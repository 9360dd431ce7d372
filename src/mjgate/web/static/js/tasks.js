// The task log: filters in the address (status, action, mode, prompt, user, channel, time), paging,
// thumbnails, live progress with a ticking duration, CSV export of the filtered view, and the task
// dialog at #/tasks/<id> (Back closes it, Forward opens it again, a reload reopens it).

import { api, withQuery } from "./api.js";
import { buttonInfo } from "./buttons.js";
import {
  ACTIONS, STATUSES, TERMINAL, UNFINISHED, actionLabel, append, clear, durationText, emptyRow, errorMessage, fmtQuota,
  fmtTime, formDialog, h, modeLabel, openDialog, pager, percent, statusBadge, td, tickDurations, toast, uid, urlText,
} from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { onTask } from "./live.js";
import { maskEditor } from "./mask.js";
import { taskAdminPanel } from "./task-admin.js";

const REFRESH_MS = 2500; // safety net for running rows when no live event arrives
const PROMPT_PREVIEW = 90;
const FILTER_KEYS = ["mj_id", "start", "end", "status", "action", "mode", "prompt", "username", "user_id", "channel_id"];
const KEYCAP = /^\s*(?:\d\uFE0F?\u20E3|\d[.)])\s*/u;

function toEpochSeconds(localValue, end) {
  if (!localValue) return "";
  const ms = new Date(localValue).getTime();
  if (!Number.isFinite(ms)) return "";
  // datetime-local has minute precision: an end bound covers its whole minute.
  return Math.floor(ms / 1000) + (end ? 59 : 0);
}

// The four prompts of a DESCRIBE result (Midjourney numbers them with keycap emoji).
export function describePrompts(item) {
  if (item.action !== "DESCRIBE" || item.status !== "SUCCESS") return [];
  return String(item.prompt || "").split(/\n\s*\n/).map((p) => p.replace(KEYCAP, "").trim()).filter(Boolean);
}

// A thumbnail for a task without an image: an icon for what it is, never a lone letter.
export function placeholderThumb(item) {
  let name = "image";
  let state = "idle";
  if (item.status === "FAILURE" || item.status === "CANCEL") { name = "alert"; state = "failed"; }
  else if (!TERMINAL.has(item.status)) { name = "clock"; state = "running"; }
  else if (item.action === "DESCRIBE" || item.action === "SHORTEN") name = "text";
  else if (item.action === "VIDEO") name = "video";
  return h("div", { class: `thumb thumb-empty thumb-${state}`, "aria-hidden": "true" }, icon(name, { size: 28 }));
}

// ------------------------------------------------------------------ the detail dialog

function detailMedia(item) {
  if (item.video_url && item.status === "SUCCESS") {
    return h("figure", { class: "detail-image" },
      h("video", { src: item.video_url, controls: true, preload: "metadata", poster: item.image_url || null, class: "full-image",
        "aria-label": t("task.video_of", { id: item.mj_id }) }));
  }
  if (item.image_url) {
    return h("figure", { class: "detail-image" },
      h("a", { href: item.image_url, target: "_blank", rel: "noopener", "aria-label": t("task.open_full_image") },
        h("img", { src: item.image_url, alt: t("task.image_alt", { id: item.mj_id, what: item.prompt || actionLabel(item.action) }), class: "full-image" })));
  }
  const text = TERMINAL.has(item.status) ? t("task.no_image") : t("task.image_later");
  return h("figure", { class: "detail-image placeholder" }, placeholderThumb(item), h("p", { class: "muted", text }));
}

function progressBlock(item) {
  const pct = item.status === "SUCCESS" ? 100 : percent(item.progress);
  const failed = item.status === "FAILURE" || item.status === "CANCEL";
  return h("div", { class: "progress-line" },
    failed ? null : h("progress", { class: item.status === "SUCCESS" ? "progress done" : "progress", max: 100, value: pct, "aria-label": t("task.progress_of", { id: item.mj_id }) }),
    failed ? null : h("span", { class: "pct", text: `${pct}%` }));
}

function meta(rows) {
  return h("dl", { class: "meta" }, rows.filter(Boolean).map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

function costText(item) {
  return item.refunded ? h("span", {}, h("s", { text: fmtQuota(item.quota) }), " ", h("span", { class: "muted small", text: t("task.refunded") })) : fmtQuota(item.quota);
}

function userLink(item, admin) {
  const name = item.username || `#${item.user_id}`;
  return admin ? h("a", { href: `#/admin/users/${item.user_id}`, text: name }) : name;
}

function channelLink(item, channelName) {
  if (!item.channel_id) return "—";
  return h("a", { href: `#/admin/channels/${item.channel_id}`, text: channelName(item.channel_id) });
}

// opts.onSubmitted(mjId): a follow-up task was created; opts.onChanged(mjId): an admin acted on it;
// opts.onClose(): the dialog closed (by the user or by navigation).
export function openTaskDialog(mjId, ctx, { channelName = (id) => `#${id}`, onSubmitted = () => {}, onChanged = () => {}, onClose = null } = {}) {
  const dlg = openDialog({ title: t("task.dialog_title", { id: mjId }), wide: true, body: [h("p", { class: "muted", text: t("common.loading") })], onClose });
  let current = null;
  let closed = false;
  let shell = null;
  const adminPanel = ctx.me.user.is_admin ? taskAdminPanel(mjId, ctx, {
    onChanged: async () => {
      await load();
      onChanged(mjId);
      if (current && current.owned) ctx.refreshMe();
    },
  }) : null;

  const actionButton = (text, iconName, name, onclick, title = null) => {
    const el = h("button", { type: "button", class: "action-button", "aria-label": name !== text ? name : null, title: title || (name !== text ? name : null) },
      iconName ? icon(iconName, { size: 16 }) : null, h("span", { text }));
    el.addEventListener("click", () => onclick(el));
    return el;
  };

  const render = (item) => {
    current = item;
    const admin = ctx.me.user.is_admin;
    const buttons = item.buttons || [];
    let actions;
    if (!TERMINAL.has(item.status) && (item.owned || admin)) {
      // Unfinished: the one thing to do is to cancel it (refunded; queued tasks at once).
      actions = h("div", { class: "task-buttons", role: "group", "aria-label": t("task.actions_label") },
        actionButton(t("task.cancel"), null, t("task.cancel"), (el) => cancelTask(item, el)),
        h("p", { class: "muted", text: t("task.actions_later") }));
    } else if (item.status !== "SUCCESS") {
      actions = h("p", { class: "muted", text: t("task.actions_later") });
    } else if (!item.owned) {
      actions = h("p", { class: "muted", text: t("task.actions_owner_only") });
    } else {
      const own = [];
      if (item.action === "VIDEO") own.push(actionButton(t("task.extend_video"), "film", t("task.extend_video"), (el) => extend(item, el)));
      if (item.image_url && item.action !== "VIDEO") {
        own.push(actionButton(t("task.use_in_edits"), "brush", t("task.use_in_edits"), () => ctx.navigate(`#/submit/edits?from=${encodeURIComponent(item.mj_id)}`)));
      }
      const upstream = buttons.map((b) => {
        const info = buttonInfo(b);
        return actionButton(info.text, info.icon, info.name, (el) => press(item, b, info, el), info.title);
      });
      actions = upstream.length || own.length
        ? h("div", { class: "task-buttons", role: "group", "aria-label": t("task.actions_label") }, upstream, own)
        : h("p", { class: "muted", text: t("task.no_actions") });
    }
    const prompts = describePrompts(item);
    const failed = item.status === "FAILURE" || item.status === "CANCEL";
    const info = h("div", { class: "detail-main" },
      h("div", { class: "detail-status" }, statusBadge(item.status), progressBlock(item)),
      item.fail_reason ? h("p", { class: "fail", role: "note" }, h("strong", { text: t("task.failure_reason") }), " ", item.fail_reason) : null,
      meta([
        [t("col.action"), `${actionLabel(item.action)} · ${modeLabel(item.mode || "fast")}`],
        admin ? [t("col.user"), userLink(item, true)] : null,
        admin ? [t("col.channel"), channelLink(item, channelName)] : null,
        [t("task.submitted"), fmtTime(item.submit_time)],
        [t("task.started"), fmtTime(item.start_time)],
        [t("task.finished"), fmtTime(item.finish_time)],
        [t("col.duration"), durationText(item)],
        [t("col.cost"), costText(item)],
        // The submit answer ("In queue, 2 ahead") says something only while the task waits.
        !failed && !TERMINAL.has(item.status) && item.description ? [t("task.upstream_says"), item.description] : null,
      ]),
      prompts.length ? [
        h("h3", { text: t("task.describe_results") }),
        h("ol", { class: "describe-list" }, prompts.map((p) => h("li", {},
          h("p", { text: p }),
          // Leaving the page closes the dialog; Back returns to it.
          h("a", { class: "button", href: `#/submit/imagine?prompt=${encodeURIComponent(p)}` }, icon("sparkle", { size: 16 }), t("task.imagine_this"))))),
      ] : [
        h("h3", { text: t("task.prompt") }),
        h("pre", { class: "prompt-full", text: item.prompt || t("task.no_prompt") }),
      ],
      h("h3", { text: t("task.actions") }),
      actions);
    const mediaKey = `${item.image_url || ""} ${item.video_url || ""} ${TERMINAL.has(item.status)}`;
    if (!shell) {
      shell = { media: detailMedia(item), mediaKey, info };
      clear(dlg.content);
      append(dlg.content, h("div", { class: "detail" },
        shell.media,
        h("div", { class: "detail-info" }, info, adminPanel ? adminPanel.el : null)));
    } else {
      if (shell.mediaKey !== mediaKey) {
        const media = detailMedia(item);
        shell.media.replaceWith(media);
        Object.assign(shell, { media, mediaKey });
      }
      shell.info.replaceWith(info);
      shell.info = info;
    }
    if (adminPanel) adminPanel.update(item);
  };

  const cancelTask = async (item, el) => {
    el.disabled = true;
    try {
      await api(`/api/console/tasks/${encodeURIComponent(item.mj_id)}/cancel`, { method: "POST" });
      toast(t("task.cancelled", { id: item.mj_id }), "ok");
      await load();
      onChanged(item.mj_id);
      ctx.refreshMe();
    } catch (err) {
      el.disabled = false;
      toast(errorMessage(err), "error");
    }
  };

  const load = async () => {
    try {
      const item = await api(`/api/console/tasks/${encodeURIComponent(mjId)}`);
      if (!closed) render(item);
    } catch (err) {
      if (closed) return;
      if (shell && adminPanel && adminPanel.el.contains(document.activeElement)) {
        toast(t("task.reload_failed", { id: mjId, error: errorMessage(err) }), "error");
        return;
      }
      shell = null;
      clear(dlg.content);
      dlg.content.append(h("p", { class: "form-error", role: "alert", text: errorMessage(err) }));
    }
  };

  const press = async (item, button, info, el) => {
    el.disabled = true;
    try {
      const res = await api("/api/console/submit/action", { method: "POST", body: { task_id: item.mj_id, custom_id: button.customId } });
      dlg.close();
      if (res.code === 21) {
        modalStep(res.mj_id, info, item, ctx, onSubmitted);
        return;
      }
      toast(t("task.submitted_as", { what: info.name, id: res.mj_id }), "ok");
      onSubmitted(res.mj_id);
    } catch (err) {
      toast(`${info.name}: ${errorMessage(err)}`, "error");
    } finally {
      el.disabled = false;
    }
  };

  const extend = async (item, el) => {
    el.disabled = true;
    try {
      const res = await api("/api/console/submit/video", { method: "POST", body: { task_id: item.mj_id, extend: true, prompt: "" } });
      dlg.close();
      toast(t("task.submitted_as", { what: t("task.extend_video"), id: res.mj_id }), "ok");
      onSubmitted(res.mj_id);
    } catch (err) {
      toast(errorMessage(err), "error");
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
  const timer = setInterval(() => {
    tickDurations(dlg.content);
    if (current && !TERMINAL.has(current.status) && !document.hidden && Date.now() % REFRESH_MS < 1000) load();
  }, 1000);
  dlg.dialog.addEventListener("close", () => {
    closed = true;
    off();
    clearInterval(timer);
  });
  load();
  return dlg;
}

// Custom Zoom and Vary (Region) wait for a second step (code 21): a prompt, and for Vary (Region)
// a mask painted over the image. Until it is sent the task waits; an unsent one times out and is refunded.
function modalStep(mjId, info, parent, ctx, onSubmitted) {
  if (info.modal === "region") {
    regionStep(mjId, info, parent, onSubmitted);
    return;
  }
  formDialog({
    title: info.name,
    intro: t("modal.zoom_intro"),
    fields: [{ name: "prompt", label: t("task.prompt"), type: "textarea", rows: 4, required: true, value: `${parent.prompt} --zoom 2`, maxlength: 8192 }],
    submitLabel: t("modal.continue"),
    onSubmit: async (values) => {
      const res = await api("/api/console/submit/modal", { method: "POST", body: { task_id: mjId, prompt: values.prompt } });
      toast(t("modal.continues", { what: info.name, id: res.mj_id }), "ok");
      onSubmitted(res.mj_id);
    },
  });
  onSubmitted(mjId);
}

async function regionStep(mjId, info, parent, onSubmitted) {
  const promptId = uid("region-prompt");
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const prompt = h("textarea", { id: promptId, rows: 3, maxlength: 8192 });
  prompt.value = parent.prompt || "";
  const submit = h("button", { type: "submit", class: "primary", text: t("modal.continue") });
  const cancel = h("button", { type: "button", text: t("common.cancel") });
  const form = h("form", { class: "form-grid" },
    h("p", { class: "muted", text: t("modal.region_intro") }),
    h("div", { class: "mask-slot" }, h("p", { class: "muted", text: t("common.loading") })),
    h("div", { class: "field" }, h("label", { for: promptId, text: t("modal.region_prompt") }), prompt),
    errorBox,
    h("div", { class: "form-actions" }, cancel, submit));
  const dlg = openDialog({ title: info.name, wide: true, body: [form] });
  cancel.addEventListener("click", () => dlg.close());
  onSubmitted(mjId);
  let editor = null;
  try {
    editor = await maskEditor(parent.image_url, { label: t("mask.canvas_label_task", { id: parent.mj_id }) });
    form.querySelector(".mask-slot").replaceChildren(editor.el);
    editor.focus();
  } catch (err) {
    errorBox.textContent = errorMessage(err);
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    const mask = editor && editor.toDataURL();
    if (!mask) {
      errorBox.textContent = t("mask.required");
      if (editor) editor.focus();
      return;
    }
    submit.disabled = true;
    try {
      const res = await api("/api/console/submit/modal", { method: "POST", body: { task_id: mjId, prompt: prompt.value.trim(), mask } });
      toast(t("modal.continues", { what: info.name, id: res.mj_id }), "ok");
      dlg.close();
      onSubmitted(res.mj_id);
    } catch (err) {
      errorBox.textContent = errorMessage(err);
    } finally {
      submit.disabled = false;
    }
  });
}

export function showPromptDialog(item) {
  openDialog({ title: t("task.prompt_of", { id: item.mj_id }), body: [h("pre", { class: "prompt-full", text: item.prompt || t("task.no_prompt") })] });
}

// ------------------------------------------------------------------ the log

function filterState(params, admin) {
  const state = {};
  for (const key of FILTER_KEYS) state[key] = params.get(key) || "";
  if (!admin) state.username = state.user_id = state.channel_id = "";
  return state;
}

function sameFilters(a, b) {
  return FILTER_KEYS.every((k) => (a[k] || "") === (b[k] || ""));
}

export async function tasksView(root, ctx, params, openId = null) {
  const admin = ctx.me.user.is_admin;
  const state = {
    page: Math.max(1, parseInt(params.get("p") || "1", 10) || 1),
    size: [10, 20, 50, 100].includes(parseInt(params.get("page_size"), 10)) ? parseInt(params.get("page_size"), 10) : 20,
    ...filterState(params, admin),
  };
  let highlight = params.get("highlight") || "";
  const rows = new Map(); // mj_id -> { item, tr }
  let channels = new Map();
  let reloadTimer = null;
  let loading = null;
  let dialog = null; // { id, dlg }
  let closingByRoute = false;
  let pendingBack = null;

  if (admin) {
    try {
      const data = await api("/api/admin/channels");
      channels = new Map(data.items.map((c) => [c.id, c]));
    } catch (err) {
      toast(t("tasks.channels_failed", { error: errorMessage(err) }), "error");
    }
  }
  const channelName = (id) => {
    if (!id) return "—";
    const c = channels.get(id);
    return c ? `${c.name} (#${id})` : `#${id}`;
  };

  // ---- filters
  const field = (name, label, control) => {
    const id = uid(`f-${name}`);
    control.id = id;
    control.name = name;
    return h("div", { class: "field" }, h("label", { for: id, text: label }), control);
  };
  const select = (value, options) => h("select", {}, options.map(([v, label]) => h("option", { value: v, selected: v === value, text: label })));
  const statusOptions = [["", t("filter.any_status")], [UNFINISHED.join(","), t("filter.unfinished")], ...STATUSES.map((s) => [s, t(`status.${s}`)])];
  const filters = h("form", { class: "filters", role: "search", "aria-label": t("filter.label") },
    field("prompt", t("filter.prompt"), h("input", { value: state.prompt, maxlength: 200, autocomplete: "off", placeholder: t("filter.prompt_placeholder") })),
    field("status", t("col.status"), select(state.status, statusOptions)),
    field("action", t("col.action"), select(state.action, [["", t("filter.any_action")], ...ACTIONS.map((a) => [a, t(`action.${a}`)])])),
    field("mode", t("filter.mode"), select(state.mode, [["", t("filter.any_mode")], ...["fast", "relax", "turbo"].map((m) => [m, t(`mode.${m}`)])])),
    admin ? field("username", t("col.user"), h("input", { value: state.username, maxlength: 64, autocomplete: "off", placeholder: t("filter.username_placeholder") })) : null,
    admin ? field("channel_id", t("col.channel"), select(state.channel_id, [["", t("filter.any_channel")], ...[...channels.values()].map((c) => [String(c.id), `${c.name} (#${c.id})`])])) : null,
    field("mj_id", t("filter.task_id"), h("input", { value: state.mj_id, inputmode: "numeric", autocomplete: "off", placeholder: t("filter.task_id_placeholder"), maxlength: 64 })),
    field("start", t("filter.from"), h("input", { type: "datetime-local", value: state.start })),
    field("end", t("filter.until"), h("input", { type: "datetime-local", value: state.end })),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary", text: t("filter.apply") }),
      h("button", { type: "button", text: t("filter.reset"), onclick: () => { for (const el of filters.elements) if (el.name) el.value = ""; state.user_id = ""; apply(); } })));
  filters.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  const userChip = h("p", { class: "muted small filter-note" });

  function apply() {
    const form = filters.elements;
    for (const key of FILTER_KEYS) {
      const el = form.namedItem(key);
      if (el) state[key] = el.value.trim();
    }
    state.page = 1;
    highlight = "";
    load();
  }

  const filtered = () => FILTER_KEYS.some((k) => state[k]);

  function listQuery() {
    return {
      mj_id: state.mj_id, status: state.status, action: state.action, mode: state.mode, prompt: state.prompt,
      start_timestamp: toEpochSeconds(state.start, false), end_timestamp: toEpochSeconds(state.end, true),
      ...(admin ? { channel_id: state.channel_id, username: state.username, user_id: state.user_id } : {}),
    };
  }

  // ---- table
  const cols = [["image", t("col.image")], ["task", t("col.task")], ["status", t("col.status")], ["prompt", t("col.prompt")],
    ...(admin ? [["user", t("col.user")], ["channel", t("col.channel")]] : []),
    ["submitted", t("col.submitted")], ["duration", t("col.duration")], ["cost", t("col.cost")]];
  const tbody = h("tbody");
  const table = h("table", { class: "data tasks responsive" },
    h("caption", { class: "sr-only", text: t("tasks.caption") }),
    h("thead", {}, h("tr", {}, cols.map(([, c]) => h("th", { scope: "col", text: c })))),
    tbody);
  const pagerBox = h("div", { class: "pager-box" });
  const liveBadge = h("span", { class: "live-badge", "aria-live": "polite" });
  const offLive = ctx.onLiveState((s) => {
    liveBadge.textContent = s === "live" ? t("live.on") : s === "connecting" ? t("live.connecting") : t("live.off");
    liveBadge.dataset.state = s;
  });
  const exportLink = h("a", { class: "button", href: "#", download: "" }, icon("download", { size: 16 }), t("tasks.export_csv"));

  append(clear(root), [
    h("div", { class: "page-head" },
      h("h1", { text: admin ? t("tasks.title_admin") : t("tasks.title_user") }), liveBadge,
      exportLink,
      h("a", { class: "button primary", href: "#/submit", text: t("nav.submit") })),
    filters,
    userChip,
    h("div", { class: "table-wrap" }, table),
    pagerBox,
  ]);

  const cell = (col, label, ...children) => {
    const el = td(label, ...children);
    el.dataset.col = col;
    return el;
  };
  const label = Object.fromEntries(cols);

  function statusCell(item) {
    return cell("status", label.status,
      statusBadge(item.status),
      progressBlock(item),
      item.fail_reason ? h("p", { class: "fail", text: item.fail_reason }) : null);
  }

  function renderRow(item) {
    const open = () => openTask(item.mj_id);
    const prompt = item.prompt || "";
    const tr = h("tr", { dataset: { mjId: item.mj_id, status: item.status } },
      cell("image", label.image, item.image_url
        ? h("button", { type: "button", class: "thumb", "aria-label": t("tasks.open_image_of", { id: item.mj_id }), onclick: open },
          h("img", { src: item.image_url, alt: "", loading: "lazy", width: 72, height: 72, class: "thumb-img" }))
        : placeholderThumb(item)),
      cell("task", label.task,
        h("button", { type: "button", class: "link mono", text: item.mj_id, title: t("tasks.open_task"), onclick: open }),
        h("div", { class: "muted small", text: `${actionLabel(item.action)} · ${modeLabel(item.mode || "fast")}` })),
      statusCell(item),
      cell("prompt", label.prompt,
        h("div", { class: "prompt-clip", text: prompt.length > PROMPT_PREVIEW ? `${prompt.slice(0, PROMPT_PREVIEW)}…` : prompt || "—" }),
        prompt.length > PROMPT_PREVIEW ? h("button", { type: "button", class: "link small", text: t("tasks.full_prompt"), onclick: () => showPromptDialog(item) }) : null),
      admin ? cell("user", label.user, userLink(item, true)) : null,
      admin ? cell("channel", label.channel, channelLink(item, channelName)) : null,
      cell("submitted", label.submitted, h("span", { class: "nowrap", text: fmtTime(item.submit_time) })),
      cell("duration", label.duration, durationText(item)),
      cell("cost", label.cost, costText(item)));
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

  // The row's status and progress change in place; the full row is refetched when it ends.
  function updateInPlace(event) {
    const entry = rows.get(event.mj_id);
    if (!entry) return false;
    const item = { ...entry.item, status: event.status, progress: event.progress ?? entry.item.progress, fail_reason: event.fail_reason || entry.item.fail_reason };
    entry.item = item;
    entry.tr.dataset.status = item.status;
    const old = entry.tr.querySelector('td[data-col="status"]');
    if (old) old.replaceWith(statusCell(item));
    return true;
  }

  async function refreshRows(mjIds, { full = false } = {}) {
    if (!mjIds.length) return;
    try {
      const data = await api("/api/console/tasks", { query: { ids: mjIds.join(",") } });
      for (const item of data.items) {
        const entry = rows.get(item.mj_id);
        if (!entry) continue;
        const before = entry.item;
        item.username = item.username ?? before.username;
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

  async function onSubmitted(mjId) {
    if (pendingBack) await pendingBack;
    highlight = mjId;
    for (const key of FILTER_KEYS) state[key] = "";
    state.page = 1;
    for (const el of filters.elements) if (el.name) el.value = "";
    load();
    ctx.refreshMe();
  }

  function urlParams() {
    const values = { p: state.page > 1 ? state.page : "", page_size: state.size !== 20 ? state.size : "", highlight };
    for (const key of FILTER_KEYS) values[key] = state[key];
    return values;
  }

  // ---- the dialog and the address: #/tasks/<id> while it is open
  function openTask(mjId, { push = true } = {}) {
    if (dialog && dialog.id === mjId) return;
    if (push) {
      const qs = new URLSearchParams(Object.entries(urlParams()).filter(([, v]) => v !== "" && v !== null)).toString();
      history.pushState({ fromLog: true }, "", `#/tasks/${encodeURIComponent(mjId)}${qs ? `?${qs}` : ""}`);
    }
    const dlg = openTaskDialog(mjId, ctx, {
      channelName, onSubmitted, onChanged: (id) => refreshRows([id], { full: true }),
      onClose: () => dialogClosed(mjId),
    });
    dialog = { id: mjId, dlg };
  }

  function dialogClosed(mjId) {
    if (dialog && dialog.id === mjId) dialog = null;
    if (closingByRoute) return;
    // Closed by the user: leave #/tasks/<id>. Back to the log's own entry when we came from it,
    // else (a shared link, a reload of one) the address becomes the log's.
    if (!ctx.parseHash().path.startsWith("tasks/")) return;
    if (history.state && history.state.fromLog) {
      pendingBack = new Promise((resolve) => {
        const done = () => { window.removeEventListener("hashchange", done); pendingBack = null; resolve(); };
        window.addEventListener("hashchange", done);
        setTimeout(done, 1000);
      });
      history.back();
    } else {
      ctx.setParams(urlParams(), { path: "tasks" });
    }
  }

  function closeDialogForRoute() {
    if (!dialog) return;
    closingByRoute = true;
    try { dialog.dlg.close(); } finally { closingByRoute = false; }
    dialog = null;
  }

  async function load({ quiet = false } = {}) {
    if (!dialog) ctx.setParams(urlParams(), { path: "tasks" });
    exportLink.href = withQuery("/api/console/export/tasks.csv", listQuery());
    userChip.textContent = state.user_id ? t("tasks.only_user", { id: state.user_id }) : "";
    const query = { p: state.page, page_size: state.size, ...listQuery() };
    if (!quiet) table.setAttribute("aria-busy", "true");
    const mine = (loading = api(admin ? "/api/mj/" : "/api/mj/self", { query }));
    let data;
    try {
      data = await mine;
    } catch (err) {
      if (mine !== loading) return;
      table.removeAttribute("aria-busy");
      clear(tbody).append(h("tr", { class: "empty" }, h("td", { colspan: cols.length },
        h("p", { class: "form-error", role: "alert", text: t("tasks.load_failed", { error: errorMessage(err) }) }))));
      return;
    }
    if (mine !== loading) return;
    table.removeAttribute("aria-busy");
    rows.clear();
    clear(tbody);
    if (!data.items.length) tbody.append(emptyRow(cols.length, filtered() ? t("tasks.none_match") : t("tasks.none_yet")));
    for (const item of data.items) tbody.append(renderRow(item));
    clear(pagerBox).append(pager({
      page: data.page, pageSize: data.page_size, total: data.total,
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
  let ticks = 0;
  const timer = setInterval(() => {
    tickDurations(tbody);
    ticks += 1;
    if (document.hidden || ticks % Math.round(REFRESH_MS / 1000) !== 0) return;
    const running = [...rows.values()].filter((r) => !TERMINAL.has(r.item.status)).map((r) => r.item.mj_id);
    refreshRows(running.slice(0, 50));
  }, 1000);

  await load();
  if (openId) openTask(openId, { push: false });

  return {
    cleanup() {
      closeDialogForRoute();
      offTask();
      offLive();
      clearInterval(timer);
      clearTimeout(reloadTimer);
    },
    // Back / Forward between the log and a task: open or close the dialog in place.
    update({ id, params: next }) {
      if (!sameFilters(filterState(next, admin), state)) return false;
      if (id) {
        if (!dialog || dialog.id !== id) {
          closeDialogForRoute();
          openTask(id, { push: false });
        }
      } else {
        closeDialogForRoute();
      }
      return true;
    },
  };
}
