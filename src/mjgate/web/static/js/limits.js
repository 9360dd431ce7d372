// In-flight limits of users and keys: how many unfinished tasks (queued or running) they may have
// at once. Shown as "in flight / limit"; admins set them with POST /api/admin/{users|keys}/{id}/limits.

import { api } from "./api.js";
import { formDialog, h, toast } from "./dom.js";
import { fmtNumber, t } from "./i18n.js";

export function inFlightText(item) {
  const n = fmtNumber(item.in_flight || 0);
  if (item.max_in_flight === null || item.max_in_flight === undefined) return t("limits.no_limit", { n });
  return t("limits.of", { n, max: fmtNumber(item.max_in_flight) });
}

export function inFlightCell(item) {
  const full = item.max_in_flight !== null && item.max_in_flight !== undefined && (item.in_flight || 0) >= item.max_in_flight;
  return h("span", { class: full ? "capacity full nowrap" : "capacity nowrap", dataset: { inFlight: item.in_flight || 0 }, text: inFlightText(item) });
}

// kind: "users" or "keys". onSaved(updated) after the limit is stored.
export function limitDialog({ kind, item, name, onSaved }) {
  formDialog({
    title: t(kind === "users" ? "limits.set_user" : "limits.set_key", { name }),
    intro: t("limits.intro", { n: fmtNumber(item.in_flight || 0) }),
    fields: [{
      name: "max_in_flight", label: t("limits.f_max"), type: "number", min: 0, max: 1000000, step: 1,
      value: item.max_in_flight ?? "", help: t(kind === "users" ? "limits.f_max_help_user" : "limits.f_max_help_key"),
    }],
    submitLabel: t("common.save"),
    onSubmit: async (v) => {
      const limit = v.max_in_flight === "" ? null : parseInt(v.max_in_flight, 10);
      const updated = await api(`/api/admin/${kind}/${item.id}/limits`, { method: "POST", body: { max_in_flight: limit } });
      toast(t("limits.saved", { name, limit: limit === null ? t("limits.none") : fmtNumber(limit) }), "ok");
      if (onSaved) onSaved(updated);
    },
  });
}

export function limitButton({ kind, item, name, onSaved }) {
  const label = t(kind === "users" ? "limits.set_user" : "limits.set_key", { name });
  return h("button", { type: "button", text: t("limits.set"), "aria-label": label, onclick: () => limitDialog({ kind, item, name, onSaved }) });
}
