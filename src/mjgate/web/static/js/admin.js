// Admin pages: channels (with tests and health), users (top-ups), prices and ratios, the quota ledger.

import { api } from "./api.js";
import {
  QUOTA_PER_USD, append, clear, csv, emptyRow, errorMessage, fmtAgo, fmtQuota, fmtTimeMs, formDialog, h, pager,
  secretDialog, td, toast, uid, urlText, usd,
} from "./dom.js";
import { fmtNumber, t } from "./i18n.js";
import { capacityLines, healthBadge } from "./channel-state.js";
import { icon } from "./icons.js";
import { inFlightCell, limitButton } from "./limits.js";
import { onAlert } from "./live.js";

const MODES = ["fast", "relax", "turbo"];
const STATUS_CLASS = { enabled: "status-success", manual_disabled: "status-cancel", auto_disabled: "status-failure", disabled: "status-cancel" };

function errorRow(tbody, colspan, err) {
  clear(tbody).append(h("tr", { class: "empty" }, h("td", { colspan }, h("p", { class: "form-error", role: "alert", text: errorMessage(err) }))));
}

function userPill(status) {
  return h("span", { class: `badge ${STATUS_CLASS[status] || ""}`, text: t(`user_status.${status}`) });
}

function statusPill(status) {
  return h("span", { class: `badge ${STATUS_CLASS[status] || ""}`, text: t(`channel_status.${status}`) });
}

function dataTable(columns, caption) {
  const tbody = h("tbody");
  const table = h("table", { class: "data responsive" },
    h("caption", { class: "sr-only", text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))), tbody);
  return { table, tbody };
}

// ------------------------------------------------------------------ channels

function channelFields(channel) {
  const editing = Boolean(channel);
  return [
    { name: "name", label: t("channels.f_name"), required: true, value: channel?.name, maxlength: 128 },
    { name: "base_url", label: t("channels.f_base_url"), type: "url", required: true, value: channel?.base_url, placeholder: "http://127.0.0.1:8080", help: t("channels.f_base_url_help") },
    { name: "secret", label: t("channels.f_secret"), type: "password", value: "", autocomplete: "new-password", maxlength: 512,
      placeholder: editing ? t("channels.f_secret_unchanged", { hint: channel.secret_hint || t("channels.none") }) : "", help: editing ? t("channels.f_secret_help") : null },
    { name: "priority", label: t("channels.f_priority"), type: "number", step: 1, value: channel?.priority ?? 0, help: t("channels.f_priority_help") },
    { name: "weight", label: t("channels.f_weight"), type: "number", min: 0, step: 1, value: channel?.weight ?? 1, help: t("channels.f_weight_help") },
    { name: "groups", label: t("channels.f_groups"), value: (channel?.groups || ["default"]).join(", "), required: true, help: t("channels.f_groups_help") },
    { name: "modes", label: t("channels.f_modes"), type: "checkboxes", options: MODES.map((m) => [m, m]), value: channel?.modes || MODES },
    { name: "actions", label: t("channels.f_actions"), value: (channel?.actions || []).join(", "), help: t("channels.f_actions_help") },
    { name: "image_hosts", label: t("channels.f_image_hosts"), value: (channel?.image_hosts || []).join(", "), help: t("channels.f_image_hosts_help") },
    // Capacity and schedule (the gateway never sends a channel more than these; empty = no limit).
    { name: "max_running", label: t("channels.f_max_running"), type: "number", min: 1, max: 1000000, step: 1, value: channel?.max_running ?? "", help: t("channels.f_max_running_help") },
    { name: "max_queued", label: t("channels.f_max_queued"), type: "number", min: 0, max: 1000000, step: 1, value: channel?.max_queued ?? "", help: t("channels.f_max_queued_help") },
    { name: "daily_cap", label: t("channels.f_daily_cap"), type: "number", min: 0, max: 1000000, step: 1, value: channel?.daily_cap ?? "", help: t("channels.f_daily_cap_help") },
    { name: "active_hours", label: t("channels.f_active_hours"), value: channel?.active_hours || "", placeholder: "08:00-20:00", maxlength: 11,
      pattern: "([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]", help: t("channels.f_active_hours_help") },
    { name: "mode_fallback", label: t("channels.f_mode_fallback"), type: "checkbox", value: Boolean(channel?.mode_fallback), help: t("channels.f_mode_fallback_help") },
  ];
}

// "" -> null (no limit); otherwise a whole number (the form's min/max already checked the range).
function limitValue(text) {
  return text === "" ? null : parseInt(text, 10);
}

function channelBody(v, editing) {
  const body = {
    name: v.name, base_url: v.base_url, priority: parseInt(v.priority || "0", 10), weight: parseInt(v.weight || "0", 10),
    groups: csv(v.groups), modes: v.modes, actions: csv(v.actions).map((a) => a.toUpperCase()), image_hosts: csv(v.image_hosts),
  };
  if (!body.actions.length) body.actions = null;
  if (!body.image_hosts.length) body.image_hosts = null;
  if (!body.modes.length) throw new Error(t("channels.need_mode"));
  if (v.secret || !editing) body.secret = v.secret;
  body.max_running = limitValue(v.max_running);
  body.max_queued = limitValue(v.max_queued);
  body.daily_cap = limitValue(v.daily_cap);
  body.active_hours = v.active_hours || null;
  body.mode_fallback = v.mode_fallback;
  return body;
}

function healthCell(c) {
  const hl = c.health;
  const bad = hl.consecutive_failures > 0;
  return td(t("col.health"),
    h("div", {}, healthBadge(hl)),
    h("div", { class: bad ? "health bad" : "health" },
      h("strong", { text: bad ? t("channels.failing", { n: hl.consecutive_failures }) : hl.last_ok_at ? t("channels.healthy") : t("channels.untested") })),
    hl.cooldowns_in_row ? h("div", { class: "muted small", text: t("channels.cooldowns_in_row", { n: fmtNumber(hl.cooldowns_in_row) }) }) : null,
    h("div", { class: "muted small", text: t("channels.counts", { ok: fmtNumber(hl.success_count), failed: fmtNumber(hl.failure_count) }) }),
    h("div", { class: "muted small", text: t("channels.last_ok", { ago: fmtAgo(hl.last_ok_at) }) }),
    hl.last_error ? h("div", { class: "fail small", title: hl.last_error, text: `${fmtAgo(hl.last_error_at)}: ${hl.last_error.slice(0, 120)}` }) : null);
}

export async function channelsView(root) {
  const columns = [t("col.channel"), t("col.status"), t("col.priority_weight"), t("col.groups"), t("col.modes"), t("col.capacity"), t("col.health"), t("col.actions")];
  const { table, tbody } = dataTable(columns, t("nav.channels"));
  const create = h("button", { type: "button", class: "primary", text: t("channels.add") });
  create.addEventListener("click", () => formDialog({
    title: t("channels.add_title"), fields: channelFields(null), submitLabel: t("channels.add"),
    onSubmit: async (v) => {
      const c = await api("/api/admin/channels", { method: "POST", body: channelBody(v, false) });
      toast(t("channels.added", { name: c.name }), "ok");
      load();
    },
  }));
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: t("nav.channels") }), create),
    h("p", { class: "muted", text: t("channels.intro") }),
    h("div", { class: "table-wrap" }, table),
  ]);

  function row(c) {
    const edit = h("button", { type: "button", text: t("common.edit"), "aria-label": t("channels.edit_name", { name: c.name }) });
    const test = h("button", { type: "button", text: t("channels.test"), "aria-label": t("channels.test_name", { name: c.name }) });
    const enabled = c.status === "enabled";
    const toggle = h("button", { type: "button", text: enabled ? t("common.disable") : t("common.enable"), "aria-label": t(enabled ? "channels.disable_name" : "channels.enable_name", { name: c.name }) });
    edit.addEventListener("click", () => formDialog({
      title: t("channels.edit_name", { name: c.name }), fields: channelFields(c), submitLabel: t("common.save"),
      onSubmit: async (v) => {
        const updated = await api(`/api/admin/channels/${c.id}`, { method: "PATCH", body: channelBody(v, true) });
        toast(t("channels.saved", { name: updated.name }), "ok");
        load();
      },
    }));
    test.addEventListener("click", async () => {
      test.disabled = true;
      test.textContent = t("channels.testing");
      try {
        const res = await api(`/api/admin/channels/${c.id}/test`, { method: "POST" });
        if (res.ok) toast(t("channels.answered", { name: c.name, ms: fmtNumber(res.latency_ms) }), "ok");
        else toast(t("channels.test_failed", { name: c.name, error: res.error }), "error");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        test.disabled = false;
        test.textContent = t("channels.test");
      }
    });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const updated = await api(`/api/admin/channels/${c.id}/${enabled ? "disable" : "enable"}`, { method: "POST" });
        toast(t("channels.now", { name: updated.name, status: t(`channel_status.${updated.status}`) }), "ok");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        toggle.disabled = false;
      }
    });
    return h("tr", { dataset: { channelId: c.id } },
      td(t("col.channel"), h("a", { href: `#/admin/channels/${c.id}` }, h("strong", { text: c.name })), h("span", { class: "muted small", text: ` #${c.id}` }),
        h("div", { class: "muted small mono" }, urlText(c.base_url))),
      td(t("col.status"), statusPill(c.status)),
      td(t("col.priority_weight"), `${c.priority} / ${c.weight}`),
      td(t("col.groups"), c.groups.join(", ")),
      td(t("col.modes"), c.modes.join(", "), c.actions ? h("div", { class: "muted small", text: t("channels.only", { actions: c.actions.join(", ") }) }) : null),
      td(t("col.capacity"), capacityLines(c)),
      healthCell(c),
      td(t("col.actions"), h("div", { class: "row-actions" }, edit, test, toggle)));
  }

  async function load() {
    try {
      const data = await api("/api/admin/channels");
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, t("channels.none_yet")));
      for (const c of data.items) tbody.append(row(c));
    } catch (err) {
      errorRow(tbody, columns.length, err);
    }
  }
  await load();
  // A channel alert (cooldown, auto-disabled, back) changes what the table says: read it again.
  return onAlert(() => load());
}

// ------------------------------------------------------------------ users

export async function usersView(root, ctx, params) {
  const state = { page: Math.max(1, parseInt(params.get("p") || "1", 10) || 1), size: 20, q: params.get("q") || "" };
  const columns = [t("col.user"), t("col.role"), t("col.group"), t("col.status"), t("col.balance"), t("col.used"), t("col.requests"), t("col.in_flight"), t("col.created"), t("col.actions")];
  const { table, tbody } = dataTable(columns, t("nav.users"));
  const pagerBox = h("div", { class: "pager-box" });
  const searchId = uid("user-q");
  const search = h("form", { class: "filters", role: "search", "aria-label": t("users.find") },
    h("div", { class: "field" }, h("label", { for: searchId, text: t("users.contains") }), h("input", { id: searchId, name: "q", value: state.q, maxlength: 64 })),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary", text: t("common.search") })));
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    state.q = search.elements.namedItem("q").value.trim();
    state.page = 1;
    load();
  });
  const create = h("button", { type: "button", class: "primary", text: t("users.create") });
  create.addEventListener("click", () => {
    const roles = [["user", t("role.user")], ["admin", t("role.admin")], ...(ctx.me.user.role === "root" ? [["root", t("role.root")]] : [])];
    formDialog({
      title: t("users.create_title"),
      fields: [
        { name: "username", label: t("login.username"), required: true, maxlength: 64 },
        { name: "password", label: t("users.f_password"), type: "password", autocomplete: "new-password", help: t("users.f_password_help") },
        { name: "role", label: t("col.role"), type: "select", options: roles, value: "user" },
        { name: "group", label: t("users.f_group"), value: "default", required: true },
        { name: "quota_usd", label: t("users.f_quota"), type: "number", min: 0, step: "0.01", value: "0" },
      ],
      submitLabel: t("users.create"),
      onSubmit: async (v) => {
        const body = { username: v.username, role: v.role, group: v.group, quota: Math.round(parseFloat(v.quota_usd || "0") * QUOTA_PER_USD) };
        if (v.password) body.password = v.password;
        const user = await api("/api/admin/users", { method: "POST", body });
        setTimeout(() => secretDialog(t("users.created", { name: user.username }), t("users.token_once", { id: user.id }), user.access_token), 0);
        load();
      },
    });
  });
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: t("nav.users") }), create),
    search,
    h("div", { class: "table-wrap" }, table),
    pagerBox,
  ]);

  function topUp(user) {
    formDialog({
      title: t("users.topup_name", { name: user.username }),
      intro: t("users.topup_intro", { balance: fmtQuota(user.quota) }),
      fields: [
        { name: "amount_usd", label: t("users.f_amount"), type: "number", step: "0.01", required: true, help: t("users.f_amount_help", { n: fmtNumber(QUOTA_PER_USD) }) },
        { name: "kind", label: t("ledger.kind"), type: "select", options: [["topup", t("users.kind_topup")], ["adjust", t("users.kind_adjust")]], value: "topup" },
        { name: "memo", label: t("ledger.memo"), maxlength: 500, placeholder: t("users.f_memo_placeholder") },
      ],
      submitLabel: t("users.record"),
      onSubmit: async (v) => {
        const amount = parseFloat(v.amount_usd);
        if (!Number.isFinite(amount) || amount === 0) throw new Error(t("users.need_amount"));
        const res = await api(`/api/admin/users/${user.id}/topup`, { method: "POST", body: { amount_usd: amount, kind: v.kind, memo: v.memo } });
        toast(t("users.recorded", { name: user.username, amount: usd(res.amount), balance: fmtQuota(res.quota) }), "ok");
        load();
      },
    });
  }

  function row(user) {
    const enabled = user.status === "enabled";
    const top = h("button", { type: "button", text: t("users.topup"), "aria-label": t("users.topup_name", { name: user.username }) });
    top.addEventListener("click", () => topUp(user));
    const toggle = h("button", { type: "button", text: enabled ? t("common.disable") : t("common.enable"), "aria-label": t(enabled ? "users.disable_name" : "users.enable_name", { name: user.username }), disabled: user.id === ctx.me.user.id });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        await api(`/api/admin/users/${user.id}/${enabled ? "disable" : "enable"}`, { method: "POST" });
        toast(t(enabled ? "users.disabled" : "users.enabled", { name: user.username }), "ok");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        toggle.disabled = false;
      }
    });
    const keys = h("a", { href: `#/keys?user_id=${user.id}`, class: "button", text: t("users.keys"), "aria-label": t("users.keys_of", { name: user.username }) });
    return h("tr", { dataset: { userId: user.id } },
      td(t("col.user"), h("a", { href: `#/admin/users/${user.id}` }, h("strong", { text: user.username })), h("span", { class: "muted small", text: ` #${user.id}` })),
      td(t("col.role"), t(`role.${user.role}`)),
      td(t("col.group"), user.group),
      td(t("col.status"), userPill(user.status)),
      td(t("col.balance"), fmtQuota(user.quota)),
      td(t("col.used"), fmtQuota(user.used_quota)),
      td(t("col.requests"), fmtNumber(user.request_count)),
      td(t("col.in_flight"), inFlightCell(user)),
      td(t("col.created"), fmtTimeMs(user.created_at)),
      td(t("col.actions"), h("div", { class: "row-actions" }, top, limitButton({ kind: "users", item: user, name: user.username, onSaved: load }), keys, toggle)));
  }

  async function load() {
    ctx.setParams({ p: state.page > 1 ? state.page : "", q: state.q });
    try {
      const data = await api("/api/admin/users", { query: { p: state.page, page_size: state.size, q: state.q } });
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, t("users.none_match")));
      for (const user of data.items) tbody.append(row(user));
      clear(pagerBox).append(pager({
        page: data.page, pageSize: data.page_size, total: data.total,
        onPage: (p) => { state.page = p; load(); }, onSize: (s) => { state.size = s; state.page = 1; load(); },
      }));
    } catch (err) {
      errorRow(tbody, columns.length, err);
    }
  }
  await load();
}

// ------------------------------------------------------------------ prices

export async function pricesView(root) {
  const box = h("div", { class: "prices" });
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: t("prices.title") })),
    h("p", { class: "muted", text: t("prices.intro", { n: fmtNumber(QUOTA_PER_USD) }) }),
    box,
  ]);

  let data;
  try {
    data = await api("/api/admin/prices");
  } catch (err) {
    box.append(h("p", { class: "form-error", role: "alert", text: errorMessage(err) }));
    return;
  }

  const save = async (table, values, button) => {
    button.disabled = true;
    try {
      data = await api("/api/admin/prices", { method: "PUT", body: { [table]: values } });
      toast(t("prices.saved"), "ok");
      render();
    } catch (err) {
      toast(errorMessage(err), "error");
    } finally {
      button.disabled = false;
    }
  };

  function numberInput(id, value, label) {
    return h("input", { id, type: "number", min: 0, step: "any", value: String(value), required: true, "aria-label": label, class: "num" });
  }

  function actionCard() {
    const table = data.tables.mj_action_prices;
    const defaults = data.defaults.mj_action_prices;
    const inputs = {};
    const tbody = h("tbody", {}, Object.keys(table).sort().map((name) => {
      const id = uid("price");
      inputs[name] = numberInput(id, table[name], t("prices.price_of", { name }));
      return h("tr", {},
        td(t("col.action"), h("label", { for: id, class: "mono", text: name })),
        td(t("prices.usd_per_task"), inputs[name]),
        td(t("prices.default"), usd(defaults[name] * QUOTA_PER_USD)),
        td(t("prices.units"), fmtNumber(Math.round(table[name] * QUOTA_PER_USD))));
    }));
    const button = h("button", { type: "submit", class: "primary", text: t("prices.save_actions") });
    const form = h("form", { class: "card", "aria-label": t("prices.actions") },
      h("h2", { text: t("prices.actions_usd") }),
      h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive" },
        h("thead", {}, h("tr", {}, [t("col.action"), t("prices.usd_per_task"), t("prices.default"), t("prices.units")].map((c) => h("th", { scope: "col", text: c })))), tbody)),
      h("div", { class: "form-actions" }, button));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      save("mj_action_prices", Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, parseFloat(el.value)])), button);
    });
    return form;
  }

  function ratioCard(table, title, saveLabel, { addable }) {
    const values = data.tables[table];
    const defaults = data.defaults[table];
    const list = h("div", { class: "ratio-list" });
    const addRow = (name, value) => {
      const id = uid("ratio");
      const nameInput = addable && !(name in defaults)
        ? h("input", { type: "text", value: name, "aria-label": t("prices.group_name"), class: "ratio-name", required: true, maxlength: 64 })
        : h("label", { for: id, class: "mono ratio-name", text: name });
      const input = numberInput(id, value, t("prices.ratio_of", { name: name || t("prices.new_group") }));
      const remove = addable && !(name in defaults)
        ? h("button", { type: "button", class: "icon-button", "aria-label": t("prices.remove_group", { name: name || t("prices.new_group") }) }, icon("close"))
        : null;
      const line = h("div", { class: "ratio-row" }, nameInput, input, remove);
      remove?.addEventListener("click", () => line.remove());
      line._read = () => [nameInput.tagName === "INPUT" ? nameInput.value.trim() : name, parseFloat(input.value)];
      list.append(line);
      return line;
    };
    for (const [name, value] of Object.entries(values)) addRow(name, value);
    const button = h("button", { type: "submit", class: "primary", text: saveLabel });
    const add = addable ? h("button", { type: "button", text: t("prices.add_group") }) : null;
    add?.addEventListener("click", () => addRow("", 1).querySelector("input")?.focus());
    const form = h("form", { class: "card", "aria-label": title },
      h("h2", { text: title }),
      addable ? h("p", { class: "muted small", text: t("prices.builtin_groups", { groups: Object.keys(defaults).join(", ") }) }) : null,
      list,
      h("div", { class: "form-actions" }, add, button));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const entries = [...list.children].map((line) => line._read()).filter(([k]) => k);
      save(table, Object.fromEntries(entries), button);
    });
    return form;
  }

  function render() {
    clear(box);
    append(box, [
      actionCard(),
      h("div", { class: "stack" }, ratioCard("group_ratios", t("prices.group_ratios"), t("prices.save_group_ratios"), { addable: true }), ratioCard("mode_ratios", t("prices.mode_ratios"), t("prices.save_mode_ratios"), { addable: false })),
    ]);
  }
  render();
}

// ------------------------------------------------------------------ ledger

const KINDS = ["charge", "release", "refund", "topup", "adjust"];

export async function ledgerView(root, ctx, params) {
  const state = {
    page: Math.max(1, parseInt(params.get("p") || "1", 10) || 1), size: 20,
    user_id: params.get("user_id") || "", kind: KINDS.includes(params.get("kind")) ? params.get("kind") : "",
  };
  const columns = [t("ledger.time"), t("col.user"), t("ledger.kind"), t("ledger.amount"), t("col.task"), t("ledger.memo"), t("ledger.by")];
  const { table, tbody } = dataTable(columns, t("ledger.caption"));
  const pagerBox = h("div", { class: "pager-box" });
  const ids = { user: uid("l-user"), kind: uid("l-kind") };
  const filters = h("form", { class: "filters", role: "search", "aria-label": t("ledger.filter") },
    h("div", { class: "field" }, h("label", { for: ids.user, text: t("login.user_id") }), h("input", { id: ids.user, name: "user_id", type: "number", min: 1, value: state.user_id })),
    h("div", { class: "field" }, h("label", { for: ids.kind, text: t("ledger.kind") }),
      h("select", { id: ids.kind, name: "kind" }, h("option", { value: "", text: t("ledger.all_kinds") }), KINDS.map((k) => h("option", { value: k, selected: k === state.kind, text: t(`kind_name.${k}`) })))),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary", text: t("common.apply") })));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    state.user_id = filters.elements.namedItem("user_id").value.trim();
    state.kind = filters.elements.namedItem("kind").value;
    state.page = 1;
    load();
  });
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: t("ledger.title") })),
    h("p", { class: "muted", text: t("ledger.intro") }),
    filters,
    h("div", { class: "table-wrap" }, table),
    pagerBox,
  ]);

  async function load() {
    ctx.setParams({ p: state.page > 1 ? state.page : "", user_id: state.user_id, kind: state.kind });
    try {
      const data = await api("/api/admin/ledger", { query: { p: state.page, page_size: state.size, user_id: state.user_id, kind: state.kind } });
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, t("ledger.none_match")));
      for (const e of data.items) {
        tbody.append(h("tr", { dataset: { entryId: e.id } },
          td(t("ledger.time"), h("span", { class: "nowrap", text: fmtTimeMs(e.created_at) })),
          td(t("col.user"), h("a", { href: `#/admin/users/${e.user_id}`, text: `${e.username || "?"} (#${e.user_id})` })),
          td(t("ledger.kind"), h("span", { class: `badge kind-${e.kind}`, text: t(`kind_name.${e.kind}`) })),
          td(t("ledger.amount"), h("span", { class: e.amount < 0 ? "amount neg" : "amount pos", text: `${e.amount > 0 ? "+" : ""}${fmtNumber(e.amount)} (${usd(e.amount)})` })),
          td(t("col.task"), e.mj_id ? h("a", { href: `#/tasks/${encodeURIComponent(e.mj_id)}`, class: "mono", text: e.mj_id }) : "—"),
          td(t("ledger.memo"), e.memo || "—"),
          td(t("ledger.by"), e.actor_user_id ? `#${e.actor_user_id}` : "—")));
      }
      clear(pagerBox).append(pager({
        page: data.page, pageSize: data.page_size, total: data.total,
        onPage: (p) => { state.page = p; load(); }, onSize: (s) => { state.size = s; state.page = 1; load(); },
      }));
    } catch (err) {
      errorRow(tbody, columns.length, err);
    }
  }
  await load();
}
