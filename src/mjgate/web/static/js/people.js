// Pages of one user (#/admin/users/<id>) and one channel (#/admin/channels/<id>): who or what it is,
// its figures over the chosen range, and links to its tasks, keys and ledger entries.

import { api } from "./api.js";
import { RANGES, actionTable, applyShareBars, axisSeconds, bucketLabels, kpis, rangePicker, runningTable, section, seconds, standardCharts } from "./dashboard.js";
import { chart } from "./charts.js";
import { append, clear, fmtAgo, fmtQuota, fmtTimeMs, h, tickDurations, urlText } from "./dom.js";
import { fmtNumber, fmtPercent, t } from "./i18n.js";
import { capacityLines, healthBadge } from "./channel-state.js";
import { inFlightText, limitButton } from "./limits.js";

function facts(rows) {
  return h("dl", { class: "meta card" }, rows.filter(Boolean).map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

function pickRange(params) {
  return RANGES.includes(params.get("range")) ? params.get("range") : "7d";
}

export async function userView(root, ctx, params, id) {
  const range = pickRange(params);
  const data = await api("/api/admin/dashboard", { query: { range, user_id: id, tz_offset: new Date().getTimezoneOffset() } });
  const user = data.user;
  const charts = [];
  append(clear(root), [
    h("div", { class: "page-head" },
      h("h1", { text: t("people.user_title", { name: user.username }) }),
      rangePicker(range, (r) => `#/admin/users/${user.id}?range=${r}`)),
    h("nav", { class: "link-row", "aria-label": t("people.related") },
      h("a", { class: "button", href: `#/tasks?user_id=${user.id}`, text: t("people.user_tasks") }),
      h("a", { class: "button", href: `#/keys?user_id=${user.id}`, text: t("people.user_keys") }),
      h("a", { class: "button", href: `#/admin/ledger?user_id=${user.id}`, text: t("people.user_ledger") }),
      h("a", { class: "button", href: "#/admin/users", text: t("people.all_users") })),
    facts([
      [t("people.user_id"), `#${user.id}`],
      [t("people.display_name"), user.display_name || "—"],
      [t("col.role"), t(`role.${user.role}`)],
      [t("col.group"), user.group],
      [t("col.status"), t(`user_status.${user.status}`)],
      [t("col.balance"), fmtQuota(user.quota)],
      [t("col.used"), fmtQuota(user.used_quota)],
      [t("col.requests"), fmtNumber(user.request_count)],
      [t("col.in_flight"), h("span", {}, h("span", { dataset: { inFlight: user.in_flight || 0 }, text: inFlightText(user) }), " ",
        limitButton({ kind: "users", item: user, name: user.username, onSaved: () => ctx.navigate(location.hash) }))],
      [t("col.created"), fmtTimeMs(user.created_at)],
    ]),
    kpis(data, { balance: false }),
    standardCharts(data, charts),
    section("user-running", t("dash.running_now"), runningTable(data, false)),
    section("user-actions", t("dash.by_action"), actionTable(data)),
  ]);
  applyShareBars(root);
  const timer = setInterval(() => tickDurations(root), 1000);
  return () => {
    clearInterval(timer);
    for (const c of charts) c.destroy();
  };
}

export async function channelView(root, ctx, params, id) {
  const range = pickRange(params);
  const data = await api("/api/admin/dashboard", { query: { range, tz_offset: new Date().getTimezoneOffset() } });
  const channel = data.channels.find((c) => String(c.id) === String(id));
  if (!channel) throw new Error(t("people.no_channel", { id }));
  const charts = [];
  const labels = bucketLabels(data);
  const per = data.bucket === "hour" ? t("dash.per_hour") : t("dash.per_day");
  const add = (c) => { charts.push(c); return c.el; };
  const health = channel.health || {};
  append(clear(root), [
    h("div", { class: "page-head" },
      h("h1", { text: t("people.channel_title", { name: channel.name }) }),
      rangePicker(range, (r) => `#/admin/channels/${channel.id}?range=${r}`)),
    h("nav", { class: "link-row", "aria-label": t("people.related") },
      h("a", { class: "button", href: `#/tasks?channel_id=${channel.id}`, text: t("people.channel_tasks") }),
      h("a", { class: "button", href: "#/admin/channels", text: t("people.all_channels") })),
    facts([
      [t("people.channel_id"), `#${channel.id}`],
      [t("people.base_url"), urlText(channel.base_url)],
      [t("col.status"), t(`channel_status.${channel.status}`)],
      channel.capacity ? [t("col.capacity"), h("div", {}, capacityLines(channel.capacity))] : null,
      [t("people.health"), h("span", {}, healthBadge(health), " ", health.consecutive_failures ? t("channels.failing", { n: health.consecutive_failures })
        : health.last_ok_at ? t("channels.healthy") : t("channels.untested"))],
      [t("people.last_ok"), fmtAgo(health.last_ok_at)],
      health.last_error ? [t("people.last_error"), `${fmtAgo(health.last_error_at)}: ${health.last_error}`] : null,
    ]),
    kpis({ totals: channel.totals, running: { total: data.running.items.filter((i) => i.channel_id === channel.id).length } }),
    h("div", { class: "chart-grid" },
      add(chart({ title: t("dash.chart_tasks", { per }), labels, format: (v) => fmtNumber(v), integer: true,
        series: [{ label: t("dash.succeeded"), values: channel.series.success, kind: "bar" },
          { label: t("dash.all_tasks"), values: channel.series.tasks, kind: "line" }] })),
      add(chart({ title: t("dash.chart_success", { per }), labels, yMax: 1, format: (v) => fmtPercent(v, 0),
        series: [{ label: t("dash.success_rate"), values: channel.series.success_rate, kind: "line", format: (v) => fmtPercent(v) }] })),
      add(chart({ title: t("dash.chart_latency", { per }), labels, format: axisSeconds,
        series: [{ label: t("dash.time_to_finish"), values: channel.series.latency_ms, kind: "line", format: seconds }] }))),
  ]);
  return () => { for (const c of charts) c.destroy(); };
}
