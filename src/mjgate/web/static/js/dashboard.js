// The landing page: spend, task counts and success rate per hour or day, what is running now;
// for administrators the same across everyone, top users, spend by action and each channel's
// success rate and time to finish. One request per view (GET /api/console/dashboard or
// /api/admin/dashboard); the range and the scope are in the address (#/dashboard?range=30d).

import { api } from "./api.js";
import { chart, color } from "./charts.js";
import { actionLabel, append, clear, durationText, h, modeLabel, statusBadge, td, tickDurations, urlText } from "./dom.js";
import { fmtDay, fmtDuration, fmtHour, fmtNumber, fmtPercent, fmtQuota, fmtUsd, t } from "./i18n.js";
import { capacityLines, healthBadge } from "./channel-state.js";

export const RANGES = ["24h", "7d", "30d"];

function bucketLabels(data) {
  return data.buckets.map((ms) => (data.bucket === "hour" ? fmtHour(ms) : fmtDay(ms)));
}

function seconds(ms) {
  return ms === null || ms === undefined ? "—" : fmtDuration(Math.round(ms / 1000));
}

// Axis ticks of times: tenths of a second below a minute (2.5s), then as durations.
function axisSeconds(ms) {
  if (ms < 60000) return t("dur.s", { s: fmtNumber(ms / 1000, { maximumFractionDigits: 1 }) });
  return seconds(ms);
}

export function rangePicker(range, hrefFor) {
  return h("nav", { class: "segmented-links", "aria-label": t("dash.range") },
    RANGES.map((r) => h("a", { href: hrefFor(r), "aria-current": r === range ? "true" : null, text: t(`range.${r}`) })));
}

export function kpis(data, { balance = false } = {}) {
  const tile = (label, value, note = null, key = null) => h("div", { class: "kpi card", dataset: key ? { kpi: key } : {} },
    h("div", { class: "kpi-label", text: label }), h("div", { class: "kpi-value", text: value }),
    note ? h("div", { class: "kpi-note muted small", text: note }) : null);
  const tt = data.totals;
  return h("div", { class: "kpis" },
    tile(t("dash.spend"), fmtUsd(tt.spend), t("dash.units", { units: fmtNumber(tt.spend) }), "spend"),
    tile(t("dash.tasks"), fmtNumber(tt.tasks), t("dash.tasks_note", { success: fmtNumber(tt.success), failure: fmtNumber(tt.failure) }), "tasks"),
    tile(t("dash.success_rate"), fmtPercent(tt.success_rate), tt.finished ? t("dash.of_finished", { n: fmtNumber(tt.finished) }) : t("dash.none_finished"), "success_rate"),
    tile(t("dash.time_to_finish"), seconds(tt.latency_ms), t("dash.average"), "latency"),
    tile(t("dash.running"), fmtNumber(data.running.total), null, "running"),
    data.queue ? tile(t("dash.queue_depth"), fmtNumber(data.queue.depth), queueNote(data), "queue") : null,
    balance ? tile(t("header.balance"), fmtUsd(data.balance), fmtQuota(data.balance), "balance") : null);
}

// How long the oldest task in the gateway queue has waited, as of the answer.
function queueNote(data) {
  if (!data.queue.depth || !data.queue.oldest_queued_at) return t("dash.queue_empty");
  return t("dash.queue_oldest", { d: fmtDuration(Math.max(0, Math.round((data.now - data.queue.oldest_queued_at) / 1000))) });
}

// The standard charts of one scope (a user, everyone, a channel).
export function standardCharts(data, charts) {
  const labels = bucketLabels(data);
  const per = data.bucket === "hour" ? t("dash.per_hour") : t("dash.per_day");
  const s = data.series;
  const add = (c) => { charts.push(c); return c.el; };
  return h("div", { class: "chart-grid" },
    add(chart({ title: t("dash.chart_spend", { per }), labels, format: fmtUsd,
      series: [{ label: t("dash.spend"), values: s.spend, kind: "bar", format: fmtUsd }] })),
    add(chart({ title: t("dash.chart_tasks", { per }), labels, format: (v) => fmtNumber(v), integer: true,
      series: [{ label: t("dash.succeeded"), values: s.success, kind: "bar" },
        { label: t("dash.failed"), values: s.failure, kind: "line", color: getComputedStyle(document.documentElement).getPropertyValue("--bad").trim() },
        { label: t("dash.all_tasks"), values: s.tasks, kind: "line", color: color(4) }] })),
    add(chart({ title: t("dash.chart_success", { per }), labels, yMax: 1, format: (v) => fmtPercent(v, 0),
      series: [{ label: t("dash.success_rate"), values: s.success_rate, kind: "line", format: (v) => fmtPercent(v) }] })),
    add(chart({ title: t("dash.chart_latency", { per }), labels, format: axisSeconds,
      series: [{ label: t("dash.time_to_finish"), values: s.latency_ms, kind: "line", format: seconds }] })));
}

export function runningTable(data, admin) {
  const items = data.running.items;
  if (!items.length) return h("p", { class: "muted", text: t("dash.nothing_running") });
  const label = { task: t("col.task"), status: t("col.status"), user: t("col.user"), prompt: t("col.prompt"), duration: t("col.duration") };
  return h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive running" },
    h("caption", { class: "sr-only", text: t("dash.running_now") }),
    h("thead", {}, h("tr", {}, [label.task, label.status, ...(admin ? [label.user] : []), label.prompt, label.duration]
      .map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, items.map((item) => h("tr", { dataset: { mjId: item.mj_id } },
      td(label.task, h("a", { class: "mono", href: `#/tasks/${encodeURIComponent(item.mj_id)}`, text: item.mj_id }),
        h("div", { class: "muted small", text: `${actionLabel(item.action)} · ${modeLabel(item.mode)}` })),
      td(label.status, statusBadge(item.status), h("span", { class: "pct", text: item.progress || "" })),
      admin ? td(label.user, h("a", { href: `#/admin/users/${item.user_id}`, text: item.username || `#${item.user_id}` })) : null,
      td(label.prompt, h("div", { class: "prompt-clip", text: (item.prompt || "—").slice(0, 80) })),
      td(label.duration, durationText(item)))))),
  data.running.total > items.length ? h("p", { class: "muted small", text: t("dash.more_running", { n: fmtNumber(data.running.total - items.length) }) }) : null);
}

function shareBar(value, max) {
  const pct = max > 0 ? Math.round((value / max) * 100) : 0;
  return h("span", { class: "share-bar", "aria-hidden": "true" }, h("span", { class: "share-fill", style: null, dataset: { pct } }));
}

function applyShareBars(root) {
  // Widths set through the CSSOM: the page's CSP allows no inline style attributes.
  for (const el of root.querySelectorAll(".share-fill")) el.style.width = `${el.dataset.pct}%`;
}

export function actionTable(data) {
  if (!data.by_action.length) return h("p", { class: "muted", text: t("dash.no_tasks") });
  const max = Math.max(...data.by_action.map((a) => a.spend), 1);
  const l = { action: t("col.action"), tasks: t("dash.tasks"), spend: t("dash.spend"), rate: t("dash.success_rate") };
  return h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive" },
    h("caption", { class: "sr-only", text: t("dash.by_action") }),
    h("thead", {}, h("tr", {}, Object.values(l).map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, data.by_action.map((a) => h("tr", { dataset: { action: a.action } },
      td(l.action, actionLabel(a.action)),
      td(l.tasks, fmtNumber(a.tasks)),
      td(l.spend, h("span", { class: "amount", text: fmtUsd(a.spend) }), shareBar(a.spend, max)),
      td(l.rate, fmtPercent(a.success_rate)))))));
}

function topUsersTable(data) {
  if (!data.top_users.length) return h("p", { class: "muted", text: t("dash.no_tasks") });
  const max = Math.max(...data.top_users.map((u) => u.spend), 1);
  const l = { user: t("col.user"), tasks: t("dash.tasks"), spend: t("dash.spend"), failed: t("dash.failed") };
  return h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive" },
    h("caption", { class: "sr-only", text: t("dash.top_users") }),
    h("thead", {}, h("tr", {}, Object.values(l).map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, data.top_users.map((u) => h("tr", { dataset: { userId: u.user_id } },
      td(l.user, h("a", { href: `#/admin/users/${u.user_id}`, text: u.username || `#${u.user_id}` })),
      td(l.tasks, fmtNumber(u.tasks)),
      td(l.spend, h("span", { class: "amount", text: fmtUsd(u.spend) }), shareBar(u.spend, max)),
      td(l.failed, fmtNumber(u.failure)))))),
  h("p", { class: "muted small", text: t("dash.active_users", { n: fmtNumber(data.active_users) }) }));
}

function channelsTable(data) {
  const l = { channel: t("col.channel"), health: t("col.health"), capacity: t("col.capacity"), tasks: t("dash.tasks"), rate: t("dash.success_rate"), latency: t("dash.time_to_finish") };
  return h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive" },
    h("caption", { class: "sr-only", text: t("dash.channels") }),
    h("thead", {}, h("tr", {}, Object.values(l).map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, data.channels.map((c) => h("tr", { dataset: { channelId: c.id ?? "none" } },
      td(l.channel, c.id && c.name ? h("a", { href: `#/admin/channels/${c.id}`, text: c.name }) : h("span", { class: "muted", text: c.id ? t("dash.deleted_channel", { id: c.id }) : t("dash.no_channel") }),
        c.base_url ? h("div", { class: "muted small" }, urlText(c.base_url)) : null),
      td(l.health, c.health ? healthBadge(c.health) : "—"),
      td(l.capacity, c.capacity ? capacityLines(c.capacity) : "—"),
      td(l.tasks, fmtNumber(c.totals.tasks)),
      td(l.rate, fmtPercent(c.totals.success_rate)),
      td(l.latency, seconds(c.totals.latency_ms)))))));
}

function channelCharts(data, charts) {
  const named = data.channels.filter((c) => c.id && c.totals.tasks);
  if (!named.length) return null;
  const labels = bucketLabels(data);
  const per = data.bucket === "hour" ? t("dash.per_hour") : t("dash.per_day");
  const add = (c) => { charts.push(c); return c.el; };
  return h("div", { class: "chart-grid" },
    add(chart({ title: t("dash.chart_channel_success", { per }), labels, yMax: 1, format: (v) => fmtPercent(v, 0),
      series: named.map((c) => ({ label: c.name, values: c.series.success_rate, kind: "line", format: (v) => fmtPercent(v) })) })),
    add(chart({ title: t("dash.chart_channel_latency", { per }), labels, format: axisSeconds,
      series: named.map((c) => ({ label: c.name, values: c.series.latency_ms, kind: "line", format: seconds })) })));
}

export function section(id, title, ...children) {
  return h("section", { class: "stack", "aria-labelledby": id }, h("h2", { id, text: title }), children);
}

export async function dashboardView(root, ctx, params) {
  const admin = ctx.me.user.is_admin;
  const range = RANGES.includes(params.get("range")) ? params.get("range") : "7d";
  const everyone = admin && params.get("scope") !== "me";
  const tz = new Date().getTimezoneOffset();
  const data = await api(everyone ? "/api/admin/dashboard" : "/api/console/dashboard", { query: { range, tz_offset: tz } });
  const charts = [];
  const href = (r, scope = params.get("scope")) => `#/dashboard?range=${r}${scope ? `&scope=${scope}` : ""}`;
  const scopePicker = admin ? h("nav", { class: "segmented-links", "aria-label": t("dash.scope") },
    h("a", { href: `#/dashboard?range=${range}`, "aria-current": everyone ? "true" : null, text: t("dash.scope_all") }),
    h("a", { href: `#/dashboard?range=${range}&scope=me`, "aria-current": everyone ? null : "true", text: t("dash.scope_me") })) : null;

  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: everyone ? t("dash.title_all") : t("dash.title") }), scopePicker, rangePicker(range, (r) => href(r)),
      h("button", { type: "button", text: t("dash.refresh"), onclick: () => ctx.navigate(location.hash) })),
    kpis(data, { balance: !everyone }),
    standardCharts(data, charts),
    section("dash-running", t("dash.running_now"), runningTable(data, everyone)),
    everyone ? h("div", { class: "two-cols" },
      section("dash-top", t("dash.top_users"), topUsersTable(data)),
      section("dash-actions", t("dash.by_action"), actionTable(data))) : section("dash-actions", t("dash.by_action"), actionTable(data)),
    everyone ? section("dash-channels", t("dash.channels"), channelsTable(data), channelCharts(data, charts)) : null,
  ]);
  applyShareBars(root);
  // Running tasks tick; the figures change only when asked (Refresh), so nothing moves under the reader.
  const timer = setInterval(() => tickDurations(root), 1000);
  return () => {
    clearInterval(timer);
    for (const c of charts) c.destroy();
  };
}

export { applyShareBars, axisSeconds, bucketLabels, seconds };
