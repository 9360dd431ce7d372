// API keys: everyone manages their own; admins see and create anyone's.

import { api } from "./api.js";
import {
  QUOTA_PER_USD, append, clear, csv, emptyRow, errorMessage, fmtQuota, fmtTimeMs, formDialog, h, secretDialog, td, toast, uid,
} from "./dom.js";
import { t } from "./i18n.js";
import { inFlightCell, limitButton } from "./limits.js";

export async function keysView(root, ctx, params) {
  const admin = ctx.me.user.is_admin;
  let userFilter = admin ? params.get("user_id") || "" : "";
  const tbody = h("tbody");
  const columns = [t("keys.name"), t("keys.key"), ...(admin ? [t("keys.owner")] : []), t("col.status"), t("keys.limit"), t("col.used"), t("col.in_flight"), t("keys.expires"), t("col.created"), t("col.actions")];
  const table = h("table", { class: "data responsive" },
    h("caption", { class: "sr-only", text: t("nav.keys") }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))), tbody);

  const filterId = uid("key-user");
  const filter = admin ? h("form", { class: "filters", role: "search", "aria-label": t("keys.filter") },
    h("div", { class: "field" }, h("label", { for: filterId, text: t("keys.owner_id") }),
      h("input", { id: filterId, name: "user_id", type: "number", min: 1, value: userFilter, placeholder: t("keys.all_users") })),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary", text: t("common.apply") }))) : null;
  filter?.addEventListener("submit", (e) => {
    e.preventDefault();
    userFilter = filter.elements.namedItem("user_id").value.trim();
    ctx.setParams({ user_id: userFilter });
    load();
  });

  const createBtn = h("button", { type: "button", class: "primary", text: t("keys.create") });
  createBtn.addEventListener("click", () => createKey());

  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: admin ? t("nav.keys") : t("keys.title_user") }), createBtn),
    h("p", { class: "muted", text: t("keys.intro") }),
    filter,
    h("div", { class: "table-wrap" }, table),
    webhookSecretSection(),
  ]);

  function row(key) {
    const toggle = h("button", { type: "button", text: key.status === "enabled" ? t("common.disable") : t("common.enable"), "aria-label": t(key.status === "enabled" ? "keys.disable_name" : "keys.enable_name", { name: key.name }) });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const action = key.status === "enabled" ? "disable" : "enable";
        const updated = await api(`/api/admin/keys/${key.id}/${action}`, { method: "POST" });
        toast(t("keys.now", { name: updated.name, status: t(`user_status.${updated.status}`) }), "ok");
        load();
      } catch (err) {
        toast(errorMessage(err), "error");
        toggle.disabled = false;
      }
    });
    return h("tr", { dataset: { keyId: key.id } },
      td(t("keys.name"), key.name),
      td(t("keys.key"), h("code", { text: key.key_hint })),
      admin ? td(t("keys.owner"), h("a", { href: `#/admin/users/${key.user_id}`, text: `${key.username} (#${key.user_id})` })) : null,
      td(t("col.status"), h("span", { class: `badge ${key.status === "enabled" ? "status-success" : "status-cancel"}`, text: t(`user_status.${key.status}`) })),
      td(t("keys.limit"), key.unlimited ? t("keys.unlimited") : fmtQuota(key.remain_quota)),
      td(t("col.used"), fmtQuota(key.used_quota)),
      td(t("col.in_flight"), inFlightCell(key)),
      td(t("keys.expires"), key.expires_at ? fmtTimeMs(key.expires_at) : t("keys.never")),
      td(t("col.created"), fmtTimeMs(key.created_at)),
      td(t("col.actions"), h("div", { class: "row-actions" },
        admin ? limitButton({ kind: "keys", item: key, name: key.name || key.key_hint, onSaved: load }) : null, toggle)));
  }

  async function load() {
    try {
      const data = await api("/api/admin/keys", { query: { user_id: userFilter } });
      clear(tbody);
      if (!data.items.length) tbody.append(emptyRow(columns.length, t("keys.none_yet")));
      for (const key of data.items) tbody.append(row(key));
    } catch (err) {
      clear(tbody).append(h("tr", { class: "empty" }, h("td", { colspan: columns.length }, h("p", { class: "form-error", role: "alert", text: errorMessage(err) }))));
    }
  }

  function createKey() {
    const fields = [
      { name: "name", label: t("keys.name"), placeholder: t("keys.f_name_placeholder"), maxlength: 128 },
      { name: "limit_usd", label: t("keys.f_limit"), type: "number", min: 0, step: "0.01", help: t("keys.f_limit_help") },
      { name: "expires", label: t("keys.expires"), type: "date", help: t("keys.f_expires_help") },
      { name: "actions", label: t("keys.f_actions"), placeholder: "IMAGINE, UPSCALE", help: t("keys.f_actions_help") },
      { name: "ips", label: t("keys.f_ips"), placeholder: "203.0.113.7, 10.0.0.0/8", help: t("keys.f_ips_help") },
    ];
    if (admin) fields.unshift({ name: "user_id", label: t("keys.owner_id"), type: "number", min: 1, value: userFilter || ctx.me.user.id, required: true });
    formDialog({
      title: t("keys.create_title"),
      fields,
      submitLabel: t("keys.create"),
      onSubmit: async (v) => {
        const body = { name: v.name };
        if (admin) body.user_id = parseInt(v.user_id, 10);
        if (v.limit_usd !== "") body.quota = Math.round(parseFloat(v.limit_usd) * QUOTA_PER_USD);
        if (v.expires) body.expires_at = new Date(`${v.expires}T23:59:59`).getTime();
        if (v.actions) body.allowed_actions = csv(v.actions).map((a) => a.toUpperCase());
        if (v.ips) body.allowed_ips = csv(v.ips);
        const created = await api("/api/admin/keys", { method: "POST", body });
        // Opened after the form closes, so focus lands in the new dialog.
        setTimeout(() => secretDialog(t("keys.new_title"), t("keys.new_explain"), created.key), 0);
        load();
      },
    });
  }

  await load();
}

// The logged-in user's own webhook secret (whsec_…): what their callbacks are signed with.
function webhookSecretSection() {
  const headingId = uid("webhook-secret");
  const show = h("button", { type: "button", text: t("keys.webhook_show") });
  const rotate = h("button", { type: "button", class: "danger", text: t("keys.webhook_rotate") });
  const reveal = async (method) => {
    const path = method === "POST" ? "/api/console/webhook-secret/rotate" : "/api/console/webhook-secret";
    try {
      const data = await api(path, { method });
      secretDialog(t("keys.webhook_title"), t(method === "POST" ? "keys.webhook_rotated" : "keys.webhook_explain"), data.secret);
    } catch (err) {
      toast(errorMessage(err), "error");
    }
  };
  show.addEventListener("click", () => reveal("GET"));
  rotate.addEventListener("click", () => { if (window.confirm(t("keys.webhook_rotate_confirm"))) reveal("POST"); });
  return h("section", { class: "webhook-secret", "aria-labelledby": headingId },
    h("h2", { id: headingId, text: t("keys.webhook_title") }),
    h("p", { class: "muted", text: t("keys.webhook_intro") }),
    h("div", { class: "filter-actions" }, show, rotate));
}
