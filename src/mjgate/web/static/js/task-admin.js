// The "Admin" section of the task detail dialog (administrators only): refund, force fail and re-poll
// (POST /api/admin/tasks/{mj_id}/…), each confirmed in a small form inside the dialog, and the task's
// history from the audit log (GET /api/admin/audit?target=task:{mj_id}).
//
// The section is built once per dialog and kept in place while the rest of the detail re-renders, so an
// open confirmation form, a typed reason and the keyboard focus survive the periodic refresh.

import { api } from "./api.js";
import { TERMINAL, append, clear, errorMessage, fmtQuota, fmtTimeMs, h, uid } from "./dom.js";
import { fmtNumber, t } from "./i18n.js";

const owner = (item) => (item.user_id ? t("adm.user_n", { id: item.user_id }) : t("adm.the_owner"));

const ACTIONS = {
  refund: {
    label: () => t("adm.refund"),
    title: () => t("adm.refund_title"),
    confirm: () => t("adm.refund_confirm"),
    busy: () => t("adm.refund_busy"),
    reason: true,
    explain: (item) => t("adm.refund_explain", { amount: fmtQuota(item.quota), owner: owner(item) }),
    reasonHelp: () => t("adm.refund_reason_help"),
    done: (res, item) => t("adm.refund_done", { amount: fmtQuota(res.refunded), owner: owner(item) }),
  },
  fail: {
    label: () => t("adm.fail"),
    title: () => t("adm.fail_title"),
    confirm: () => t("adm.fail_confirm"),
    busy: () => t("adm.fail_busy"),
    reason: true,
    danger: true,
    explain: () => t("adm.fail_explain"),
    reasonHelp: () => t("adm.fail_reason_help"),
    done: (res) => (res.refunded ? t("adm.fail_done_refunded") : t("adm.fail_done")),
  },
  repoll: {
    label: () => t("adm.repoll"),
    title: () => t("adm.repoll_title"),
    confirm: () => t("adm.repoll_confirm"),
    busy: () => t("adm.repoll_busy"),
    reason: false,
    explain: () => t("adm.repoll_explain"),
    done: () => t("adm.repoll_done"),
  },
};

const HISTORY_NAMES = {
  refund: ["adm.refund", "kind-refund"],
  force_fail: ["adm.fail", "status-failure"],
  repoll: ["adm.repoll", "status-in_progress"],
};

function available(item) {
  const unfinished = !TERMINAL.has(item.status);
  return { refund: item.quota > 0 && !item.refunded, fail: unfinished, repoll: unfinished };
}

function unavailableNote(item) {
  const notes = [];
  if (item.refunded) notes.push(t("adm.note_refunded"));
  else if (!(item.quota > 0)) notes.push(t("adm.note_not_charged"));
  if (TERMINAL.has(item.status)) notes.push(t("adm.note_unfinished_only"));
  return notes.join(" ");
}

// onChanged(): reload the task (the dialog calls update() with it) and refresh whatever shows it.
export function taskAdminPanel(mjId, ctx, { onChanged = async () => {} } = {}) {
  const ids = { heading: uid("adm-h"), note: uid("adm-note"), history: uid("adm-hist") };
  let item = null;
  let open = null; // { key, form, submit, reason, errorBox, error }
  let busy = false;

  const buttons = {};
  for (const [key, action] of Object.entries(ACTIONS)) {
    buttons[key] = h("button", {
      type: "button", class: "admin-button", text: action.label(), "aria-expanded": "false", "aria-describedby": ids.note,
      dataset: { adminAction: key },
    });
    buttons[key].addEventListener("click", () => (open && open.key === key ? closeForm(true) : showForm(key)));
  }
  const note = h("p", { class: "help", id: ids.note });
  const formBox = h("div", { class: "admin-form-box" });
  const result = h("p", { class: "admin-result", role: "status", tabindex: "-1" });
  const history = h("div", { class: "audit" }, h("p", { class: "muted small", text: t("common.loading") }));
  const el = h("section", { class: "admin-panel", "aria-labelledby": ids.heading },
    h("h3", { id: ids.heading, text: t("adm.heading") }),
    h("div", { class: "task-buttons", role: "group", "aria-label": t("adm.actions_label") }, Object.values(buttons)),
    note,
    formBox,
    result,
    h("h4", { id: ids.history, text: t("adm.history") }),
    history);

  function setResult(text, kind) {
    result.textContent = text;
    result.className = `admin-result${kind ? ` ${kind}` : ""}`;
  }

  function syncButtons() {
    if (!item) return;
    const can = available(item);
    for (const [key, button] of Object.entries(buttons)) {
      button.disabled = busy || !can[key];
      const expanded = Boolean(open && open.key === key);
      button.setAttribute("aria-expanded", String(expanded));
      if (expanded) button.setAttribute("aria-controls", open.form.id);
      else button.removeAttribute("aria-controls");
    }
  }

  function closeForm(returnFocus) {
    if (!open) return;
    const { key, form } = open;
    const hadFocus = form.contains(document.activeElement);
    form.remove();
    open = null;
    syncButtons();
    if (returnFocus || hadFocus) {
      if (!buttons[key].disabled) buttons[key].focus();
      else result.focus();
    }
  }

  function showForm(key) {
    if (busy || !item) return;
    closeForm(false);
    setResult("", null);
    const action = ACTIONS[key];
    const formId = uid("adm-form");
    const titleId = `${formId}-title`;
    const reasonId = `${formId}-reason`;
    const errorBox = h("p", { class: "form-error", role: "alert" });
    const reason = action.reason
      ? h("textarea", { id: reasonId, name: "reason", rows: 2, maxlength: 500, required: true, "aria-describedby": `${reasonId}-help` })
      : null;
    const submit = h("button", { type: "submit", class: action.danger ? "danger" : "primary", text: action.confirm() });
    const cancel = h("button", { type: "button", text: t("common.cancel") });
    const form = h("form", { id: formId, class: "admin-confirm", "aria-labelledby": titleId, dataset: { adminForm: key } },
      h("h4", { id: titleId, text: action.title() }),
      h("p", { class: "small", text: action.explain(item) }),
      reason ? h("div", { class: "field" },
        h("label", { for: reasonId, text: t("adm.reason") }),
        reason,
        h("p", { class: "help", id: `${reasonId}-help`, text: action.reasonHelp() })) : null,
      errorBox,
      h("div", { class: "form-actions" }, cancel, submit));
    cancel.addEventListener("click", () => { if (!busy) closeForm(true); });
    // Escape closes this small form, not the whole dialog.
    form.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || busy) return;
      event.preventDefault();
      event.stopPropagation();
      closeForm(true);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!busy && form.reportValidity()) run();
    });
    open = { key, form, submit, reason, errorBox, error: "" };
    formBox.append(form);
    syncButtons();
    (reason || submit).focus();
  }

  async function run() {
    const state = open;
    const action = ACTIONS[state.key];
    busy = true;
    state.error = "";
    state.errorBox.textContent = "";
    state.submit.disabled = true;
    state.submit.textContent = action.busy();
    if (state.reason) state.reason.readOnly = true;
    syncButtons();
    let ok = false;
    try {
      const body = state.reason ? { reason: state.reason.value.trim() } : {};
      const res = await api(`/api/admin/tasks/${encodeURIComponent(mjId)}/${state.key}`, { method: "POST", body });
      ok = true;
      busy = false;
      closeForm(false);
      setResult(action.done(res, item), "ok");
      result.focus();
    } catch (err) {
      busy = false;
      state.error = errorMessage(err);
      state.errorBox.textContent = state.error;
      state.submit.disabled = false;
      state.submit.textContent = action.confirm();
      if (state.reason) state.reason.readOnly = false;
      syncButtons();
      (state.reason || state.submit).focus();
    }
    // Whatever happened, show the task and its history as they are now (another admin may have acted).
    await Promise.all([Promise.resolve(onChanged()).catch(() => {}), loadHistory()]);
    return ok;
  }

  function historyEntry(entry) {
    const [nameKey, cls] = HISTORY_NAMES[entry.action] || [null, ""];
    const name = nameKey ? t(nameKey) : entry.action;
    const detail = entry.detail || {};
    const me = ctx.me && ctx.me.user.id === entry.actor_user_id;
    const facts = [];
    if (detail.reason) facts.push(t("adm.fact_reason", { reason: detail.reason }));
    if (typeof detail.amount === "number") facts.push(t("adm.fact_given_back", { amount: fmtQuota(detail.amount) }));
    if (typeof detail.refunded === "boolean") facts.push(detail.refunded ? t("adm.fact_refunded") : t("adm.fact_nothing"));
    return h("li", { dataset: { auditId: entry.id } },
      h("div", { class: "audit-head" },
        h("span", { class: `badge ${cls}`, text: name }),
        h("span", { class: "muted small", text: t(me ? "adm.by_you" : "adm.by", { time: fmtTimeMs(entry.created_at), id: entry.actor_user_id ?? "?" }) })),
      facts.length ? h("div", { class: "small audit-detail", text: facts.join(" · ") }) : null);
  }

  async function loadHistory() {
    try {
      const data = await api("/api/admin/audit", { query: { target: `task:${mjId}`, page_size: 50 } });
      clear(history);
      if (!data.items.length) {
        history.append(h("p", { class: "muted small", text: t("adm.no_history") }));
        return;
      }
      append(history, [
        h("ol", { class: "audit-list", "aria-labelledby": ids.history }, data.items.map(historyEntry)),
        data.total > data.items.length ? h("p", { class: "muted small", text: t("adm.earlier", { n: fmtNumber(data.total - data.items.length) }) }) : null,
      ]);
    } catch (err) {
      clear(history).append(h("p", { class: "form-error", role: "alert", text: t("adm.history_failed", { error: errorMessage(err) }) }));
    }
  }

  // The task as it is now: enable what applies; a form whose action no longer applies is closed.
  function update(next) {
    item = next;
    note.textContent = unavailableNote(item);
    if (open && !busy && !available(item)[open.key]) {
      const { key, error } = open;
      closeForm(false);
      setResult(error || t("adm.changed_meanwhile", { action: ACTIONS[key].label() }), "bad");
    }
    syncButtons();
  }

  loadHistory();
  return { el, update, loadHistory };
}
