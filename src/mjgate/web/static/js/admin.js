// Admin pages: channels (with tests and health), users (top-ups), prices and ratios, the quota ledger.

import { api } from "./api.js";
import {
  QUOTA_PER_USD, append, clear, csv, emptyRow, errorMessage, fmtAgo, fmtQuota, fmtTimeMs, formDialog, h, pager,
  secretDialog, td, toast, uid, usd,
} from "./dom.js";

const MODES = ["fast", "relax", "turbo"];
const STATUS_CLASS = { enabled: "status-success", manual_disabled: "status-cancel", auto_disabled: "status-failure", disabled: "status-cancel" };

function errorRow(tbody, colspan, err) {
  clear(tbody).append(h("tr", { class: "empty" }, h("td", { colspan }, h("p", { class: "form-error", role: "alert", text: errorMessage(err) }))));
}

function statusPill(status) {
  return h("span", { class: `badge ${STATUS_CLASS[status] || ""}`, text: status.replace("_", " ") });
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
    { name: "name", label: "Name", required: true, value: channel?.name, maxlength: 128 },
    { name: "base_url", label: "Base URL", type: "url", required: true, value: channel?.base_url, placeholder: "http://127.0.0.1:8080", help: "The midjourney-proxy root; the gateway calls {base}/mj/…" },
    { name: "secret", label: "Secret (mj-api-secret)", type: "password", value: "", autocomplete: "new-password", maxlength: 512,
      placeholder: editing ? `unchanged (${channel.secret_hint || "none"})` : "", help: editing ? "Leave empty to keep the stored secret." : null },
    { name: "priority", label: "Priority", type: "number", step: 1, value: channel?.priority ?? 0, help: "Higher priorities are tried first." },
    { name: "weight", label: "Weight", type: "number", min: 0, step: 1, value: channel?.weight ?? 1, help: "Share of traffic among channels of the same priority." },
    { name: "groups", label: "Groups served", value: (channel?.groups || ["default"]).join(", "), required: true, help: "Comma-separated user groups." },
    { name: "modes", label: "Speed modes", type: "checkboxes", options: MODES.map((m) => [m, m]), value: channel?.modes || MODES },
    { name: "actions", label: "Actions", value: (channel?.actions || []).join(", "), help: "Comma-separated (IMAGINE, UPSCALE, …); empty allows every action." },
    { name: "image_hosts", label: "Image hosts", value: (channel?.image_hosts || []).join(", "), help: "Hosts its image URLs may point at; empty allows only the base URL's host." },
  ];
}

function channelBody(v, editing) {
  const body = {
    name: v.name, base_url: v.base_url, priority: parseInt(v.priority || "0", 10), weight: parseInt(v.weight || "0", 10),
    groups: csv(v.groups), modes: v.modes, actions: csv(v.actions).map((a) => a.toUpperCase()), image_hosts: csv(v.image_hosts),
  };
  if (!body.actions.length) body.actions = null;
  if (!body.image_hosts.length) body.image_hosts = null;
  if (!body.modes.length) throw new Error("Choose at least one speed mode.");
  if (v.secret || !editing) body.secret = v.secret;
  return body;
}

function healthCell(c) {
  const hl = c.health;
  const bad = hl.consecutive_failures > 0;
  return td("Health",
    h("div", { class: bad ? "health bad" : "health" },
      h("strong", { text: bad ? `${hl.consecutive_failures} failing in a row` : hl.last_ok_at ? "healthy" : "untested" })),
    h("div", { class: "muted small", text: `${hl.success_count} ok · ${hl.failure_count} failed` }),
    h("div", { class: "muted small", text: `last ok ${fmtAgo(hl.last_ok_at)}` }),
    hl.last_error ? h("div", { class: "fail small", title: hl.last_error, text: `${fmtAgo(hl.last_error_at)}: ${hl.last_error.slice(0, 120)}` }) : null);
}

export async function channelsView(root) {
  const columns = ["Channel", "Status", "Priority / weight", "Groups", "Modes", "Health", "Actions"];
  const { table, tbody } = dataTable(columns, "Channels");
  const create = h("button", { type: "button", class: "primary", text: "Add channel" });
  create.addEventListener("click", () => formDialog({
    title: "Add a channel", fields: channelFields(null), submitLabel: "Add channel",
    onSubmit: async (v) => {
      const c = await api("/api/admin/channels", { method: "POST", body: channelBody(v, false) });
      toast(`Channel ${c.name} added`, "ok");
      load();
    },
  }));
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: "Channels" }), create),
    h("p", { class: "muted", text: "Upstream midjourney-proxy services. “Test” makes a real call (list-by-condition) and records the result in the channel's health." }),
    h("div", { class: "table-wrap" }, table),
  ]);

  function row(c) {
    const edit = h("button", { type: "button", text: "Edit", "aria-label": `Edit channel ${c.name}` });
    const test = h("button", { type: "button", text: "Test", "aria-label": `Test channel ${c.name}` });
    const enabled = c.status === "enabled";
    const toggle = h("button", { type: "button", text: enabled ? "Disable" : "Enable", "aria-label": `${enabled ? "Disable" : "Enable"} channel ${c.name}` });
    edit.addEventListener("click", () => formDialog({
      title: `Edit channel ${c.name}`, fields: channelFields(c), submitLabel: "Save",
      onSubmit: async (v) => {
        const updated = await api(`/api/admin/channels/${c.id}`, { method: "PATCH", body: channelBody(v, true) });
        toast(`Channel ${updated.name} saved`, "ok");
        load();
      },
    }));
    test.addEventListener("click", async () => {
      test.disabled = true;
      test.textContent = "Testing…";
      try {
        const res = await api(`/api/admin/channels/${c.id}/test`, { method: "POST" });
        if (res.ok) toast(`Channel ${c.name} answered in ${res.latency_ms} ms`, "ok");
        else toast(`Channel ${c.name} failed: ${res.error}`, "error");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        test.disabled = false;
        test.textContent = "Test";
      }
    });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const updated = await api(`/api/admin/channels/${c.id}/${enabled ? "disable" : "enable"}`, { method: "POST" });
        toast(`Channel ${updated.name} is ${updated.status.replace("_", " ")}`, "ok");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        toggle.disabled = false;
      }
    });
    return h("tr", { dataset: { channelId: c.id } },
      td("Channel", h("strong", { text: c.name }), h("span", { class: "muted small", text: ` #${c.id}` }),
        h("div", { class: "muted small mono break", text: c.base_url })),
      td("Status", statusPill(c.status)),
      td("Priority / weight", `${c.priority} / ${c.weight}`),
      td("Groups", c.groups.join(", ")),
      td("Modes", c.modes.join(", "), c.actions ? h("div", { class: "muted small", text: `only ${c.actions.join(", ")}` }) : null),
      healthCell(c),
      td("Actions", h("div", { class: "row-actions" }, edit, test, toggle)));
  }

  async function load() {
    try {
      const data = await api("/api/admin/channels");
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, "No channels yet: add one to start serving tasks."));
      for (const c of data.items) tbody.append(row(c));
    } catch (err) {
      errorRow(tbody, columns.length, err);
    }
  }
  await load();
}

// ------------------------------------------------------------------ users

export async function usersView(root, ctx, params) {
  const state = { page: Math.max(1, parseInt(params.get("p") || "1", 10) || 1), size: 20, q: params.get("q") || "" };
  const columns = ["User", "Role", "Group", "Status", "Balance", "Used", "Requests", "Created", "Actions"];
  const { table, tbody } = dataTable(columns, "Users");
  const pagerBox = h("div", { class: "pager-box" });
  const searchId = uid("user-q");
  const search = h("form", { class: "filters", role: "search", "aria-label": "Find users" },
    h("div", { class: "field" }, h("label", { for: searchId, text: "Username contains" }), h("input", { id: searchId, name: "q", value: state.q, maxlength: 64 })),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary", text: "Search" })));
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    state.q = search.elements.namedItem("q").value.trim();
    state.page = 1;
    load();
  });
  const create = h("button", { type: "button", class: "primary", text: "Create user" });
  create.addEventListener("click", () => {
    const roles = [["user", "user"], ["admin", "admin"], ...(ctx.me.user.role === "root" ? [["root", "root"]] : [])];
    formDialog({
      title: "Create a user",
      fields: [
        { name: "username", label: "Username", required: true, maxlength: 64 },
        { name: "password", label: "Console password", type: "password", autocomplete: "new-password", help: "At least 4 characters; leave empty for an API-only user." },
        { name: "role", label: "Role", type: "select", options: roles, value: "user" },
        { name: "group", label: "Pricing group", value: "default", required: true },
        { name: "quota_usd", label: "Initial balance (USD)", type: "number", min: 0, step: "0.01", value: "0" },
      ],
      submitLabel: "Create user",
      onSubmit: async (v) => {
        const body = { username: v.username, role: v.role, group: v.group, quota: Math.round(parseFloat(v.quota_usd || "0") * QUOTA_PER_USD) };
        if (v.password) body.password = v.password;
        const user = await api("/api/admin/users", { method: "POST", body });
        setTimeout(() => secretDialog(`User ${user.username} created`, `The dashboard access token (with New-Api-User: ${user.id}) is shown once:`, user.access_token), 0);
        load();
      },
    });
  });
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: "Users" }), create),
    search,
    h("div", { class: "table-wrap" }, table),
    pagerBox,
  ]);

  function topUp(user) {
    formDialog({
      title: `Top up ${user.username}`,
      intro: `Balance now ${fmtQuota(user.quota)}. Every change is a ledger entry.`,
      fields: [
        { name: "amount_usd", label: "Amount (USD)", type: "number", step: "0.01", required: true, help: `${QUOTA_PER_USD.toLocaleString()} quota units per USD.` },
        { name: "kind", label: "Kind", type: "select", options: [["topup", "Top-up (adds)"], ["adjust", "Adjustment (negative takes away)"]], value: "topup" },
        { name: "memo", label: "Memo", maxlength: 500, placeholder: "e.g. invoice 2026-118" },
      ],
      submitLabel: "Record",
      onSubmit: async (v) => {
        const amount = parseFloat(v.amount_usd);
        if (!Number.isFinite(amount) || amount === 0) throw new Error("Enter a non-zero amount.");
        const res = await api(`/api/admin/users/${user.id}/topup`, { method: "POST", body: { amount_usd: amount, kind: v.kind, memo: v.memo } });
        toast(`${user.username}: ${usd(res.amount)} recorded; balance ${fmtQuota(res.quota)}`, "ok");
        load();
      },
    });
  }

  function row(user) {
    const enabled = user.status === "enabled";
    const top = h("button", { type: "button", text: "Top up", "aria-label": `Top up ${user.username}` });
    top.addEventListener("click", () => topUp(user));
    const toggle = h("button", { type: "button", text: enabled ? "Disable" : "Enable", "aria-label": `${enabled ? "Disable" : "Enable"} ${user.username}`, disabled: user.id === ctx.me.user.id });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        await api(`/api/admin/users/${user.id}/${enabled ? "disable" : "enable"}`, { method: "POST" });
        toast(`${user.username} ${enabled ? "disabled" : "enabled"}`, "ok");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        toggle.disabled = false;
      }
    });
    const keys = h("a", { href: `#/keys?user_id=${user.id}`, class: "button", text: "Keys", "aria-label": `Keys of ${user.username}` });
    return h("tr", { dataset: { userId: user.id } },
      td("User", h("strong", { text: user.username }), h("span", { class: "muted small", text: ` #${user.id}` })),
      td("Role", user.role),
      td("Group", user.group),
      td("Status", statusPill(user.status)),
      td("Balance", fmtQuota(user.quota)),
      td("Used", fmtQuota(user.used_quota)),
      td("Requests", String(user.request_count)),
      td("Created", fmtTimeMs(user.created_at)),
      td("Actions", h("div", { class: "row-actions" }, top, keys, toggle)));
  }

  async function load() {
    ctx.setParams({ p: state.page > 1 ? state.page : "", q: state.q });
    try {
      const data = await api("/api/admin/users", { query: { p: state.page, page_size: state.size, q: state.q } });
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, "No users match."));
      for (const user of data.items) tbody.append(row(user));
      clear(pagerBox).append(pager({
        page: data.page, pageSize: data.page_size, total: data.total, label: "users",
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
    h("div", { class: "page-head" }, h("h1", { text: "Prices and ratios" })),
    h("p", { class: "muted", text: `A task costs its action's price (USD) × the user's group ratio × the speed mode's ratio × ${QUOTA_PER_USD.toLocaleString()} quota units per USD.` }),
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
      toast("Prices saved", "ok");
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
      inputs[name] = numberInput(id, table[name], `Price of ${name} in USD`);
      return h("tr", {},
        td("Action", h("label", { for: id, class: "mono", text: name })),
        td("USD per task", inputs[name]),
        td("Default", `$${defaults[name]}`),
        td("Quota units", Math.round(table[name] * QUOTA_PER_USD).toLocaleString()));
    }));
    const button = h("button", { type: "submit", class: "primary", text: "Save action prices" });
    const form = h("form", { class: "card", "aria-label": "Action prices" },
      h("h2", { text: "Action prices (USD)" }),
      h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive" },
        h("thead", {}, h("tr", {}, ["Action", "USD per task", "Default", "Quota units"].map((c) => h("th", { scope: "col", text: c })))), tbody)),
      h("div", { class: "form-actions" }, button));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      save("mj_action_prices", Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, parseFloat(el.value)])), button);
    });
    return form;
  }

  function ratioCard(table, title, { addable }) {
    const values = data.tables[table];
    const defaults = data.defaults[table];
    const list = h("div", { class: "ratio-list" });
    const addRow = (name, value) => {
      const id = uid("ratio");
      const nameInput = addable && !(name in defaults)
        ? h("input", { type: "text", value: name, "aria-label": "Group name", class: "ratio-name", required: true, maxlength: 64 })
        : h("label", { for: id, class: "mono ratio-name", text: name });
      const input = numberInput(id, value, `Ratio of ${name || "new group"}`);
      const remove = addable && !(name in defaults)
        ? h("button", { type: "button", class: "icon-button", "aria-label": `Remove group ${name || "(new)"}`, text: "×" })
        : null;
      const line = h("div", { class: "ratio-row" }, nameInput, input, remove);
      remove?.addEventListener("click", () => line.remove());
      line._read = () => [nameInput.tagName === "INPUT" ? nameInput.value.trim() : name, parseFloat(input.value)];
      list.append(line);
      return line;
    };
    for (const [name, value] of Object.entries(values)) addRow(name, value);
    const button = h("button", { type: "submit", class: "primary", text: `Save ${title.toLowerCase()}` });
    const add = addable ? h("button", { type: "button", text: "Add group" }) : null;
    add?.addEventListener("click", () => addRow("", 1).querySelector("input")?.focus());
    const form = h("form", { class: "card", "aria-label": title },
      h("h2", { text: title }),
      addable ? h("p", { class: "muted small", text: `Built-in groups (${Object.keys(defaults).join(", ")}) always exist; others can be added and removed.` }) : null,
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
      h("div", { class: "stack" }, ratioCard("group_ratios", "Group ratios", { addable: true }), ratioCard("mode_ratios", "Mode ratios", { addable: false })),
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
  const columns = ["Time", "User", "Kind", "Amount", "Task", "Memo", "By"];
  const { table, tbody } = dataTable(columns, "Quota ledger, newest first");
  const pagerBox = h("div", { class: "pager-box" });
  const ids = { user: uid("l-user"), kind: uid("l-kind") };
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter the ledger" },
    h("div", { class: "field" }, h("label", { for: ids.user, text: "User ID" }), h("input", { id: ids.user, name: "user_id", type: "number", min: 1, value: state.user_id })),
    h("div", { class: "field" }, h("label", { for: ids.kind, text: "Kind" }),
      h("select", { id: ids.kind, name: "kind" }, h("option", { value: "", text: "All kinds" }), KINDS.map((k) => h("option", { value: k, selected: k === state.kind, text: k })))),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary", text: "Apply" })));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    state.user_id = filters.elements.namedItem("user_id").value.trim();
    state.kind = filters.elements.namedItem("kind").value;
    state.page = 1;
    load();
  });
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: "Quota ledger" })),
    h("p", { class: "muted", text: "Every quota movement: charges, refunds, releases, top-ups and adjustments. Balances always equal the sum of their entries." }),
    filters,
    h("div", { class: "table-wrap" }, table),
    pagerBox,
  ]);

  async function load() {
    ctx.setParams({ p: state.page > 1 ? state.page : "", user_id: state.user_id, kind: state.kind });
    try {
      const data = await api("/api/admin/ledger", { query: { p: state.page, page_size: state.size, user_id: state.user_id, kind: state.kind } });
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, "No ledger entries match."));
      for (const e of data.items) {
        tbody.append(h("tr", { dataset: { entryId: e.id } },
          td("Time", h("span", { class: "nowrap", text: fmtTimeMs(e.created_at) })),
          td("User", `${e.username || "?"} (#${e.user_id})`),
          td("Kind", h("span", { class: `badge kind-${e.kind}`, text: e.kind })),
          td("Amount", h("span", { class: e.amount < 0 ? "amount neg" : "amount pos", text: `${e.amount > 0 ? "+" : ""}${e.amount.toLocaleString()} (${usd(e.amount)})` })),
          td("Task", e.mj_id ? h("a", { href: `#/tasks?mj_id=${encodeURIComponent(e.mj_id)}`, class: "mono", text: e.mj_id }) : "—"),
          td("Memo", e.memo || "—"),
          td("By", e.actor_user_id ? `#${e.actor_user_id}` : "—")));
      }
      clear(pagerBox).append(pager({
        page: data.page, pageSize: data.page_size, total: data.total, label: "entries",
        onPage: (p) => { state.page = p; load(); }, onSize: (s) => { state.size = s; state.page = 1; load(); },
      }));
    } catch (err) {
      errorRow(tbody, columns.length, err);
    }
  }
  await load();
}
