// The "Admin" section of the task detail dialog (administrators only): refund, force fail and re-poll
// (POST /api/admin/tasks/{mj_id}/…), each confirmed in a small form inside the dialog, and the task's
// history from the audit log (GET /api/admin/audit?target=task:{mj_id}).
//
// The section is built once per dialog and kept in place while the rest of the detail re-renders, so an
// open confirmation form, a typed reason and the keyboard focus survive the periodic refresh.

import { api } from "./api.js";
import { TERMINAL, append, clear, errorMessage, fmtQuota, fmtTimeMs, h, uid } from "./dom.js";

const owner = (item) => (item.user_id ? `user #${item.user_id}` : "the task's owner");

const ACTIONS = {
  refund: {
    label: "Refund",
    title: "Refund this task?",
    confirm: "Confirm refund",
    busy: "Refunding…",
    reason: true,
    explain: (item) => `Gives the charge of ${fmtQuota(item.quota)} back to ${owner(item)}. A task is refunded at most once.`,
    reasonHelp: "Recorded in the history and in the ledger entry's memo.",
    done: (res, item) => `Refunded ${fmtQuota(res.refunded)} to ${owner(item)}.`,
  },
  fail: {
    label: "Force fail",
    title: "Fail this task now?",
    confirm: "Confirm force fail",
    busy: "Failing…",
    reason: true,
    danger: true,
    explain: () => "The task is marked Failed and no longer polled; its charge is refunded unless it already was.",
    reasonHelp: "Shown as the task's failure reason and recorded in the history.",
    done: (res) => (res.refunded ? "The task was failed and its charge refunded." : "The task was failed; there was nothing to refund."),
  },
  repoll: {
    label: "Re-poll",
    title: "Poll this task again now?",
    confirm: "Confirm re-poll",
    busy: "Re-polling…",
    reason: false,
    explain: () => "Asks the channel for the task's state right away, clearing a stale lease and missed polls.",
    done: () => "The task is due for polling now.",
  },
};

const HISTORY_NAMES = {
  refund: ["Refund", "kind-refund"],
  force_fail: ["Force fail", "status-failure"],
  repoll: ["Re-poll", "status-in_progress"],
};

function available(item) {
  const unfinished = !TERMINAL.has(item.status);
  return { refund: item.quota > 0 && !item.refunded, fail: unfinished, repoll: unfinished };
}

function unavailableNote(item) {
  const notes = [];
  if (item.refunded) notes.push("The charge has been refunded.");
  else if (!(item.quota > 0)) notes.push("This task was not charged: there is nothing to refund.");
  if (TERMINAL.has(item.status)) notes.push("Force fail and re-poll are for unfinished tasks only.");
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
      type: "button", class: "admin-button", text: action.label, "aria-expanded": "false", "aria-describedby": ids.note,
      dataset: { adminAction: key },
    });
    buttons[key].addEventListener("click", () => (open && open.key === key ? closeForm(true) : showForm(key)));
  }
  const note = h("p", { class: "help", id: ids.note });
  const formBox = h("div", { class: "admin-form-box" });
  const result = h("p", { class: "admin-result", role: "status", tabindex: "-1" });
  const history = h("div", { class: "audit" }, h("p", { class: "muted small", text: "Loading…" }));
  const el = h("section", { class: "admin-panel", "aria-labelledby": ids.heading },
    h("h3", { id: ids.heading, text: "Admin" }),
    h("div", { class: "task-buttons", role: "group", "aria-label": "Administrator actions on this task" }, Object.values(buttons)),
    note,
    formBox,
    result,
    h("h4", { id: ids.history, text: "History" }),
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
    const submit = h("button", { type: "submit", class: action.danger ? "danger" : "primary", text: action.confirm });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const form = h("form", { id: formId, class: "admin-confirm", "aria-labelledby": titleId, dataset: { adminForm: key } },
      h("h4", { id: titleId, text: action.title }),
      h("p", { class: "small", text: action.explain(item) }),
      reason ? h("div", { class: "field" },
        h("label", { for: reasonId, text: "Reason" }),
        reason,
        h("p", { class: "help", id: `${reasonId}-help`, text: action.reasonHelp })) : null,
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
    state.submit.textContent = action.busy;
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
      state.submit.textContent = action.confirm;
      if (state.reason) state.reason.readOnly = false;
      syncButtons();
      (state.reason || state.submit).focus();
    }
    // Whatever happened, show the task and its history as they are now (another admin may have acted).
    await Promise.all([Promise.resolve(onChanged()).catch(() => {}), loadHistory()]);
    return ok;
  }

  function historyEntry(entry) {
    const [name, cls] = HISTORY_NAMES[entry.action] || [entry.action, ""];
    const detail = entry.detail || {};
    const me = ctx.me && ctx.me.user.id === entry.actor_user_id;
    const facts = [];
    if (detail.reason) facts.push(`Reason: ${detail.reason}`);
    if (typeof detail.amount === "number") facts.push(`${fmtQuota(detail.amount)} given back`);
    if (typeof detail.refunded === "boolean") facts.push(detail.refunded ? "charge refunded" : "nothing to refund");
    return h("li", { dataset: { auditId: entry.id } },
      h("div", { class: "audit-head" },
        h("span", { class: `badge ${cls}`, text: name }),
        h("span", { class: "muted small", text: `${fmtTimeMs(entry.created_at)} · by #${entry.actor_user_id ?? "?"}${me ? " (you)" : ""}` })),
      facts.length ? h("div", { class: "small audit-detail", text: facts.join(" · ") }) : null);
  }

  async function loadHistory() {
    try {
      const data = await api("/api/admin/audit", { query: { target: `task:${mjId}`, page_size: 50 } });
      clear(history);
      if (!data.items.length) {
        history.append(h("p", { class: "muted small", text: "No administrator has acted on this task." }));
        return;
      }
      append(history, [
        h("ol", { class: "audit-list", "aria-labelledby": ids.history }, data.items.map(historyEntry)),
        data.total > data.items.length ? h("p", { class: "muted small", text: `and ${data.total - data.items.length} earlier` }) : null,
      ]);
    } catch (err) {
      clear(history).append(h("p", { class: "form-error", role: "alert", text: `The history could not be loaded: ${errorMessage(err)}` }));
    }
  }

  // The task as it is now: enable what applies; a form whose action no longer applies is closed.
  function update(next) {
    item = next;
    note.textContent = unavailableNote(item);
    if (open && !busy && !available(item)[open.key]) {
      const { key, error } = open;
      closeForm(false);
      setResult(error || `This task changed meanwhile: ${ACTIONS[key].label.toLowerCase()} no longer applies.`, "bad");
    }
    syncButtons();
  }

  loadHistory();
  return { el, update, loadHistory };
}
