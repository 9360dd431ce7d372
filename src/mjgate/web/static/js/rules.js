// Admin pages for the submit rules: the banned-word list with users' blocks, and per-parameter price rules.

import { api } from "./api.js";
import { append, clear, emptyRow, errorMessage, fmtTimeMs, h, td, toast, uid } from "./dom.js";
import { t } from "./i18n.js";

const ACTIONS = ["*", "IMAGINE", "UPSCALE", "VARIATION", "REROLL", "DESCRIBE", "BLEND", "SHORTEN", "ZOOM", "CUSTOM_ZOOM",
  "PAN", "INPAINT", "HIGH_VARIATION", "LOW_VARIATION", "MODAL", "SWAP_FACE", "UPLOAD", "VIDEO", "EDITS"];

function table(columns, caption, tbody) {
  return h("div", { class: "table-wrap" }, h("table", { class: "data compact responsive" },
    h("caption", { class: "sr-only", text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))), tbody));
}

function field(label, input) {
  const id = uid("f");
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text: label }), input);
}

async function act(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    toast(errorMessage(err), "error");
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ moderation

export async function moderationView(root) {
  const words = h("tbody");
  const blocks = h("tbody");
  const group = h("input", { type: "text", maxlength: 64, placeholder: "default" });
  const text = h("textarea", { rows: 3, required: true, placeholder: t("moderation.words_placeholder") });
  const add = h("button", { type: "submit", class: "primary", text: t("moderation.add") });
  const form = h("form", { class: "card", "aria-label": t("moderation.add_title") },
    h("h2", { text: t("moderation.add_title") }),
    h("p", { class: "muted small", text: t("moderation.matching") }),
    field(t("col.group"), group), field(t("moderation.words"), text),
    h("div", { class: "form-actions" }, add));
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: t("moderation.title") })),
    h("p", { class: "muted", text: t("moderation.intro") }),
    form,
    h("section", { class: "card" }, h("h2", { text: t("moderation.list") }),
      table([t("col.group"), t("moderation.word"), t("col.actions")], t("moderation.list"), words)),
    h("section", { class: "card" }, h("h2", { text: t("moderation.blocks") }),
      table([t("moderation.user"), t("moderation.hits"), t("moderation.minutes"), t("moderation.until"), t("col.actions")],
        t("moderation.blocks"), blocks)),
  ]);

  async function load() {
    try {
      const [list, blocked] = await Promise.all([api("/api/admin/banned-words"), api("/api/admin/moderation/blocks")]);
      clear(words).append(...(list.items.length ? list.items.map((w) => {
        const remove = h("button", { type: "button", text: t("moderation.remove"), "aria-label": t("moderation.remove_word", { word: w.word }) });
        remove.addEventListener("click", () => act(remove, async () => {
          await api("/api/admin/banned-words/remove", { method: "POST", body: { words: [w.word], group: w.group } });
          await load();
        }));
        return h("tr", {}, td(t("col.group"), w.group), td(t("moderation.word"), h("span", { class: "mono", text: w.word })),
          td(t("col.actions"), remove));
      }) : [emptyRow(3, t("moderation.no_words"))]));
      clear(blocks).append(...(blocked.items.length ? blocked.items.map((b) => {
        const lift = h("button", { type: "button", text: t("moderation.lift"), "aria-label": t("moderation.lift_user", { name: b.username }) });
        lift.addEventListener("click", () => act(lift, async () => {
          await api(`/api/admin/users/${b.user_id}/unblock`, { method: "POST", body: {} });
          toast(t("moderation.lifted", { name: b.username }), "ok");
          await load();
        }));
        return h("tr", {}, td(t("moderation.user"), b.username), td(t("moderation.hits"), String(b.hits)),
          td(t("moderation.minutes"), String(b.minutes)), td(t("moderation.until"), fmtTimeMs(b.until)),
          td(t("col.actions"), lift));
      }) : [emptyRow(5, t("moderation.no_blocks"))]));
    } catch (err) {
      toast(errorMessage(err), "error");
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const list = text.value.split(/[\n,]/).map((w) => w.trim()).filter(Boolean);
    act(add, async () => {
      await api("/api/admin/banned-words", { method: "POST", body: { words: list, group: group.value.trim() || null } });
      text.value = "";
      toast(t("moderation.added", { n: list.length }), "ok");
      await load();
    });
  });
  await load();
}

// ------------------------------------------------------------------ price rules

function describeRule(rule) {
  const parts = [rule.action, rule.mode || "*", ...Object.entries(rule.match || {}).map(([k, v]) => `${k}=${v}`)];
  return parts.join(" · ");
}

function parseMatch(value) {
  const match = {};
  for (const pair of value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [key, ...rest] = pair.split("=");
    match[key.trim()] = rest.join("=").trim();
  }
  return match;
}

export async function priceRulesView(root) {
  const rows = h("tbody");
  const name = h("input", { type: "text", required: true, maxlength: 64, pattern: "[A-Za-z0-9][A-Za-z0-9_.:\\-]*" });
  const action = h("select", {}, ACTIONS.map((a) => h("option", { value: a, text: a })));
  const mode = h("select", {}, ["", "fast", "relax", "turbo"].map((m) => h("option", { value: m, text: m || t("rules.any_mode") })));
  const match = h("input", { type: "text", maxlength: 400, placeholder: "version=7, upscale=creative_2x" });
  const kind = h("select", {}, [h("option", { value: "price_usd", text: t("rules.price_usd") }), h("option", { value: "ratio", text: t("rules.ratio") })]);
  const amount = h("input", { type: "number", min: 0, step: "any", required: true, class: "num" });
  const priority = h("input", { type: "number", step: 1, value: "0", class: "num" });
  const save = h("button", { type: "submit", class: "primary", text: t("rules.save") });
  const params = h("p", { class: "muted small" });
  const form = h("form", { class: "card", "aria-label": t("rules.edit_title") },
    h("h2", { text: t("rules.edit_title") }), params,
    field(t("rules.name"), name), field(t("col.action"), action), field(t("rules.mode"), mode),
    field(t("rules.match"), match), field(t("rules.kind"), kind), field(t("rules.amount"), amount),
    field(t("rules.priority"), priority), h("div", { class: "form-actions" }, save));
  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { text: t("rules.title") })),
    h("p", { class: "muted", text: t("rules.intro") }),
    h("section", { class: "card" }, table([t("rules.name"), t("rules.applies"), t("rules.price"), t("rules.priority"), t("col.actions")],
      t("rules.title"), rows)),
    form,
  ]);

  function render(data) {
    params.textContent = t("rules.parameters", { names: data.parameters.join(", ") });
    const names = Object.keys(data.rules).sort();
    clear(rows).append(...(names.length ? names.map((n) => {
      const rule = data.rules[n];
      const remove = h("button", { type: "button", text: t("rules.remove"), "aria-label": t("rules.remove_rule", { name: n }) });
      remove.addEventListener("click", () => act(remove, async () => {
        render(await api(`/api/admin/price-rules/${encodeURIComponent(n)}/remove`, { method: "POST", body: {} }));
      }));
      const price = "price_usd" in rule ? `$${rule.price_usd}` : `× ${rule.ratio}`;
      return h("tr", {}, td(t("rules.name"), h("span", { class: "mono", text: n })), td(t("rules.applies"), describeRule(rule)),
        td(t("rules.price"), price), td(t("rules.priority"), String(rule.priority || 0)), td(t("col.actions"), remove));
    }) : [emptyRow(5, t("rules.none"))]));
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const body = { action: action.value, match: parseMatch(match.value), priority: parseInt(priority.value || "0", 10),
      [kind.value]: parseFloat(amount.value) };
    if (mode.value) body.mode = mode.value;
    act(save, async () => {
      render(await api(`/api/admin/price-rules/${encodeURIComponent(name.value.trim())}`, { method: "PUT", body }));
      toast(t("rules.saved"), "ok");
    });
  });
  try {
    render(await api("/api/admin/price-rules"));
  } catch (err) {
    toast(errorMessage(err), "error");
  }
}
