// API keys: everyone manages their own; admins see and create anyone's.

import { api } from "./api.js";
import {
  QUOTA_PER_USD, append, clear, csv, emptyRow, errorMessage, fmtQuota, fmtTimeMs, formDialog, h, secretDialog, td, toast, uid,
} from "./dom.js";

export async function keysView(root, ctx, params) {
  const admin = ctx.me.user.is_admin;
  let userFilter = admin ? params.get("user_id") || "" : "";
  const tbody = h("tbody");
  const columns = ["Name", "Key", ...(admin ? ["Owner"] : []), "Status", "Limit", "Used", "Expires", "Created", "Actions"];
  const table = h("table", { class: "data responsive" },
    h("caption", { class: "sr-only", text: "API keys" }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))), tbody);

  const filterId = uid("key-user");
  const filter = admin ? h("form", { class: "filters", role: "search", "aria-label": "Filter keys" },
    h("div", { class: "field" }, h("label", { for: filterId, text: "Owner's user ID" }),
      h("input", { id: filterId, name: "user_id", type: "number", min: 1, value: userFilter, placeholder: "all users" })),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary", text: "Apply" }))) : null;
  filter?.addEventListener("submit", (e) => {
    e.preventDefault();
    userFilter = filter.elements.namedItem("user_id").value.trim();
    ctx.setParams({ user_id: userFilter });
    load();
  });

  const createBtn = h("button", { type: "button", class: "primary", text: "Create key" });
  createBtn.addEventListener("click", () => createKey());

  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: admin ? "API keys" : "My API keys" }), createBtn),
    h("p", { class: "muted", text: "Keys (sk-…) authenticate the relay APIs: /mj/… (midjourney-proxy) and /midjourney/… (AceData). A key is shown once, when it is created." }),
    filter,
    h("div", { class: "table-wrap" }, table),
  ]);

  function row(key) {
    const toggle = h("button", { type: "button", text: key.status === "enabled" ? "Disable" : "Enable", "aria-label": `${key.status === "enabled" ? "Disable" : "Enable"} key ${key.name}` });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const action = key.status === "enabled" ? "disable" : "enable";
        const updated = await api(`/api/admin/keys/${key.id}/${action}`, { method: "POST" });
        toast(`Key ${updated.name} ${updated.status}`, "ok");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        toggle.disabled = false;
      }
    });
    return h("tr", { dataset: { keyId: key.id } },
      td("Name", key.name),
      td("Key", h("code", { text: key.key_hint })),
      admin ? td("Owner", `${key.username} (#${key.user_id})`) : null,
      td("Status", h("span", { class: `badge ${key.status === "enabled" ? "status-success" : "status-cancel"}`, text: key.status })),
      td("Limit", key.unlimited ? "unlimited" : fmtQuota(key.remain_quota)),
      td("Used", fmtQuota(key.used_quota)),
      td("Expires", key.expires_at ? fmtTimeMs(key.expires_at) : "never"),
      td("Created", fmtTimeMs(key.created_at)),
      td("Actions", toggle));
  }

  async function load() {
    try {
      const data = await api("/api/admin/keys", { query: { user_id: userFilter } });
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, "No keys yet."));
      for (const key of data.items) tbody.append(row(key));
    } catch (err) {
      clear(tbody).append(h("tr", { class: "empty" }, h("td", { colspan: columns.length }, h("p", { class: "form-error", role: "alert", text: errorMessage(err) }))));
    }
  }

  function createKey() {
    const fields = [
      { name: "name", label: "Name", placeholder: "e.g. my-bot", maxlength: 128 },
      { name: "limit_usd", label: "Spending limit (USD)", type: "number", min: 0, step: "0.01", help: "Leave empty for no limit of its own (the balance still applies)." },
      { name: "expires", label: "Expires", type: "date", help: "Leave empty for a key that never expires." },
      { name: "actions", label: "Allowed actions", placeholder: "IMAGINE, UPSCALE", help: "Comma-separated; empty allows every action." },
      { name: "ips", label: "Allowed client IPs", placeholder: "203.0.113.7, 10.0.0.0/8", help: "Comma-separated addresses or networks; empty allows any." },
    ];
    if (admin) fields.unshift({ name: "user_id", label: "Owner's user ID", type: "number", min: 1, value: userFilter || ctx.me.user.id, required: true });
    formDialog({
      title: "Create an API key",
      fields,
      submitLabel: "Create key",
      onSubmit: async (v) => {
        const body = { name: v.name };
        if (admin) body.user_id = parseInt(v.user_id, 10);
        if (v.limit_usd !== "") body.quota = Math.round(parseFloat(v.limit_usd) * QUOTA_PER_USD);
        if (v.expires) body.expires_at = new Date(`${v.expires}T23:59:59`).getTime();
        if (v.actions) body.allowed_actions = csv(v.actions).map((a) => a.toUpperCase());
        if (v.ips) body.allowed_ips = csv(v.ips);
        const created = await api("/api/admin/keys", { method: "POST", body });
        // Opened after the form closes, so focus lands in the new dialog.
        setTimeout(() => secretDialog("Your new API key", "Copy it now: it is not shown again. Use it as 'Authorization: Bearer <key>'.", created.key), 0);
        load();
      },
    });
  }

  await load();
}
