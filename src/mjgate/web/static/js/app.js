// The console's entry point: session, login screen, header and navigation, and a hash router.
//
// Routes are #/<path>?<query>: every page, task (#/tasks/<id>), user (#/admin/users/<id>) and
// channel (#/admin/channels/<id>) has its own address, and filters live in the query so a view
// can be shared or reloaded. A view renders into <main> and may return a cleanup function, or
// { cleanup, update(route) } where update() returns true when it can show the new route in place
// (the task log opening and closing its dialog as Back and Forward move between them).

import { ApiError, api, setCsrfToken, setUnauthorizedHandler } from "./api.js";
import { append, clear, errorMessage, fmtQuota, h, toast, uid } from "./dom.js";
import { LANGUAGES, lang, onLangChange, setLang, t } from "./i18n.js";
import { icon } from "./icons.js";
import { onLiveState, startLive, stopLive } from "./live.js";
import { startAlerts, stopAlerts } from "./alerts.js";
import { channelsView, ledgerView, pricesView, usersView } from "./admin.js";
import { channelView, userView } from "./people.js";
import { moderationView, priceRulesView } from "./rules.js";
import { dashboardView } from "./dashboard.js";
import { keysView } from "./keys.js";
import { submitView } from "./submit.js";
import { tasksView } from "./tasks.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");

// pattern -> view; ":id" matches one segment. `nav` names the header link that is current.
const ROUTES = [
  { pattern: "dashboard", title: "nav.dashboard", view: dashboardView, nav: "dashboard" },
  { pattern: "tasks", title: "nav.tasks", view: tasksView, nav: "tasks" },
  { pattern: "tasks/:id", title: "nav.tasks", view: tasksView, nav: "tasks" },
  { pattern: "submit", title: "nav.submit", view: submitView, nav: "submit" },
  { pattern: "submit/:id", title: "nav.submit", view: submitView, nav: "submit" },
  { pattern: "keys", title: "nav.keys", view: keysView, nav: "keys" },
  { pattern: "admin/channels", title: "nav.channels", view: channelsView, admin: true, nav: "admin/channels" },
  { pattern: "admin/channels/:id", title: "nav.channels", view: channelView, admin: true, nav: "admin/channels" },
  { pattern: "admin/users", title: "nav.users", view: usersView, admin: true, nav: "admin/users" },
  { pattern: "admin/users/:id", title: "nav.users", view: userView, admin: true, nav: "admin/users" },
  { pattern: "admin/prices", title: "nav.prices", view: pricesView, admin: true, nav: "admin/prices" },
  { pattern: "admin/ledger", title: "nav.ledger", view: ledgerView, admin: true, nav: "admin/ledger" },
  { pattern: "admin/price-rules", title: "nav.price_rules", view: priceRulesView, admin: true, nav: "admin/price-rules" },
  { pattern: "admin/moderation", title: "nav.moderation", view: moderationView, admin: true, nav: "admin/moderation" },
];
const DEFAULT_ROUTE = "dashboard";

let me = null;
let current = null; // { target, cleanup, update }
let renderSeq = 0;

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [path, query = ""] = raw.split("?");
  return { path: path.replace(/\/+$/, "") || DEFAULT_ROUTE, params: new URLSearchParams(query) };
}

function match(path) {
  const parts = path.split("/").map(decodeURIComponent);
  for (const target of ROUTES) {
    const pattern = target.pattern.split("/");
    if (pattern.length !== parts.length) continue;
    let id = null;
    if (pattern.every((seg, i) => (seg === ":id" ? ((id = parts[i]), Boolean(parts[i])) : seg === parts[i]))) {
      return { target, id };
    }
  }
  return null;
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Keep a view's state in the address bar without re-rendering (reload and Back keep filters).
function setParams(values, { path = null, push = false } = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== "" && value !== null && value !== undefined) params.set(key, value);
  const qs = params.toString();
  const hash = `#/${path ?? parseHash().path}${qs ? `?${qs}` : ""}`;
  if (hash === location.hash) return;
  if (push) history.pushState(null, "", hash);
  else history.replaceState(null, "", hash);
}

async function refreshMe() {
  try {
    const data = await api("/api/console/me", { quiet401: true });
    me = data;
    setCsrfToken(data.csrf_token);
    renderTopbar();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) sessionEnded();
  }
}

const ctx = {
  get me() { return me; },
  navigate,
  setParams,
  refreshMe,
  onLiveState,
  parseHash,
};

// ------------------------------------------------------------------ header

function languagePicker(extraClass = "") {
  const id = uid("lang");
  const select = h("select", { id, class: "lang-select" },
    LANGUAGES.map(([code, name]) => h("option", { value: code, selected: code === lang(), lang: code === "zh" ? "zh-CN" : "en" }, name)));
  select.addEventListener("change", () => setLang(select.value));
  return h("span", { class: `lang-picker ${extraClass}` }, h("label", { for: id, class: "sr-only", text: t("header.language") }), select);
}

function renderTopbar() {
  if (!me) {
    topbar.hidden = true;
    clear(topbar);
    return;
  }
  const matched = match(parseHash().path);
  const currentNav = matched ? matched.target.nav : "";
  const user = me.user;
  const link = (routeName, key, iconName = null) => h("a", { href: `#/${routeName}`, "aria-current": currentNav === routeName ? "page" : null },
    iconName ? icon(iconName, { size: 16 }) : null, t(key));
  const logout = h("button", { type: "button", class: "ghost", text: t("header.logout") });
  logout.addEventListener("click", doLogout);
  clear(topbar);
  append(topbar, [
    h("a", { class: "brand", href: "#/dashboard", "aria-label": t("header.brand_label") }, h("span", { class: "brand-mark", "aria-hidden": "true" }, icon("sparkle", { size: 20 })), "mjgate"),
    h("nav", { class: "nav", "aria-label": t("header.nav_label") },
      h("ul", {},
        h("li", {}, link("dashboard", "nav.dashboard", "chart")),
        h("li", {}, link("tasks", "nav.tasks", "list")),
        h("li", {}, link("submit", "nav.submit")),
        h("li", {}, link("keys", "nav.keys")),
        user.is_admin ? [
          h("li", { class: "nav-sep", "aria-hidden": "true" }),
          h("li", {}, link("admin/channels", "nav.channels")),
          h("li", {}, link("admin/users", "nav.users")),
          h("li", {}, link("admin/prices", "nav.prices")),
          h("li", {}, link("admin/ledger", "nav.ledger")),
          h("li", {}, link("admin/price-rules", "nav.price_rules")),
          h("li", {}, link("admin/moderation", "nav.moderation")),
        ] : null)),
    h("div", { class: "account" },
      languagePicker(),
      h("span", { class: "who" }, h("strong", { text: user.display_name || user.username }),
        h("span", { class: "muted small", text: user.is_admin ? ` · ${t(`role.${user.role}`)}` : "" })),
      h("span", { class: "balance", title: t("header.balance"), text: fmtQuota(user.quota) }),
      logout),
  ]);
  topbar.hidden = false;
}

// ------------------------------------------------------------------ login

function loginView() {
  const ids = { user: uid("login-user"), pass: uid("login-pass"), token: uid("login-token"), uid: uid("login-uid") };
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const passwordFields = h("div", { class: "login-fields" },
    h("div", { class: "field" }, h("label", { for: ids.user, text: t("login.username") }),
      h("input", { id: ids.user, name: "username", autocomplete: "username", required: true, maxlength: 64 })),
    h("div", { class: "field" }, h("label", { for: ids.pass, text: t("login.password") }),
      h("input", { id: ids.pass, name: "password", type: "password", autocomplete: "current-password", required: true })));
  const tokenFields = h("div", { class: "login-fields", hidden: true },
    h("div", { class: "field" }, h("label", { for: ids.token, text: t("login.access_token") }),
      h("input", { id: ids.token, name: "access_token", type: "password", autocomplete: "off", disabled: true, required: true })),
    h("div", { class: "field" }, h("label", { for: ids.uid, text: t("login.user_id") }),
      h("input", { id: ids.uid, name: "user_id", type: "number", min: 1, disabled: true, required: true })));
  const method = h("fieldset", { class: "segmented" },
    h("legend", { class: "sr-only", text: t("login.method") }),
    h("label", {}, h("input", { type: "radio", name: "method", value: "password", checked: true }), t("login.with_password")),
    h("label", {}, h("input", { type: "radio", name: "method", value: "token" }), t("login.with_token")));
  method.addEventListener("change", () => {
    const byToken = method.querySelector("input:checked").value === "token";
    passwordFields.hidden = byToken;
    tokenFields.hidden = !byToken;
    for (const el of passwordFields.querySelectorAll("input")) el.disabled = byToken;
    for (const el of tokenFields.querySelectorAll("input")) el.disabled = !byToken;
    errorBox.textContent = "";
  });
  const submit = h("button", { type: "submit", class: "primary wide", text: t("login.submit") });
  const form = h("form", { class: "login-card card", "aria-labelledby": "login-title" },
    h("div", { class: "login-top" }, h("div", { class: "login-brand", "aria-hidden": "true" }, icon("sparkle", { size: 32 })), languagePicker("login-lang")),
    h("h1", { id: "login-title", text: t("login.title") }),
    h("p", { class: "muted", text: t("login.tagline") }),
    method, passwordFields, tokenFields, errorBox, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    const byToken = method.querySelector("input:checked").value === "token";
    const body = byToken
      ? { access_token: form.elements.namedItem("access_token").value.trim(), user_id: parseInt(form.elements.namedItem("user_id").value, 10) || null }
      : { username: form.elements.namedItem("username").value.trim(), password: form.elements.namedItem("password").value };
    submit.disabled = true;
    submit.textContent = t("login.submitting");
    try {
      const data = await api("/api/console/login", { method: "POST", body, quiet401: true });
      signedIn(data);
    } catch (err) {
      errorBox.textContent = errorMessage(err);
    } finally {
      submit.disabled = false;
      submit.textContent = t("login.submit");
    }
  });
  teardown();
  document.title = `${t("login.title")} · mjgate`;
  append(clear(main), h("div", { class: "login-wrap" }, form));
  form.querySelector("input[name=username]").focus();
}

function signedIn(data) {
  me = data;
  setCsrfToken(data.csrf_token);
  startLive(data.user.is_admin);
  if (data.user.is_admin) startAlerts();
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", `#/${DEFAULT_ROUTE}`);
  route();
}

function sessionEnded(message) {
  const wasIn = Boolean(me);
  me = null;
  setCsrfToken(null);
  stopLive();
  stopAlerts();
  renderTopbar();
  loginView();
  if (wasIn) toast(message || t("session.ended"), "error");
}

async function doLogout() {
  try {
    await api("/api/console/logout", { method: "POST", quiet401: true });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      toast(t("session.logout_failed", { error: errorMessage(err) }), "error");
      return;
    }
  }
  me = null;
  setCsrfToken(null);
  stopLive();
  stopAlerts();
  renderTopbar();
  history.replaceState(null, "", `#/${DEFAULT_ROUTE}`);
  loginView();
  toast(t("session.signed_out"), "info");
}

// ------------------------------------------------------------------ router

function teardown() {
  // The page closes its own dialogs first, as the router's doing (so a task dialog does not take
  // its closing for the user's and step the address back, as a forced re-render would otherwise).
  if (current && current.cleanup) {
    try { current.cleanup(); } catch (err) { console.error(err); }
  }
  current = null;
  // A dialog belongs to the page that opened it: a new page closes any left (Back from #/tasks/<id>).
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

async function route({ force = false } = {}) {
  if (!me) return;
  const seq = ++renderSeq;
  const { path, params } = parseHash();
  let matched = match(path);
  if (!matched || (matched.target.admin && !me.user.is_admin)) {
    if (matched) toast(t("route.admin_only"), "error");
    history.replaceState(null, "", `#/${DEFAULT_ROUTE}`);
    matched = match(DEFAULT_ROUTE);
  }
  const { target, id } = matched;
  document.title = `${t(target.title)} · mjgate`;
  renderTopbar();
  if (!force && current && current.target.view === target.view && current.update) {
    try {
      if (current.update({ id, params, path })) {
        current.target = target;
        return;
      }
    } catch (err) {
      console.error(err);
    }
  }
  teardown();
  const view = h("div", { class: "view" });
  clear(main).append(view);
  try {
    const result = await target.view(view, ctx, params, id);
    const handle = typeof result === "function" ? { cleanup: result } : (result || {});
    if (seq !== renderSeq) {
      if (handle.cleanup) handle.cleanup();
      return;
    }
    current = { target, cleanup: handle.cleanup || null, update: handle.update || null };
  } catch (err) {
    console.error(err);
    if (seq !== renderSeq) return;
    clear(view).append(h("div", { class: "card" },
      h("h1", { text: t("route.error_title") }),
      h("p", { class: "form-error", role: "alert", text: errorMessage(err) }),
      h("button", { type: "button", text: t("common.retry"), onclick: () => route({ force: true }) })));
  }
  const heading = view.querySelector("h1");
  if (heading && !document.querySelector("dialog[open]") && !view.contains(document.activeElement)) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

async function boot() {
  setUnauthorizedHandler(() => sessionEnded());
  window.addEventListener("hashchange", () => {
    // In-page anchors (the skip link's #main) are not routes.
    if (!location.hash || location.hash.startsWith("#/")) route();
  });
  window.addEventListener("unhandledrejection", (event) => {
    toast(errorMessage(event.reason), "error");
  });
  window.addEventListener("error", (event) => {
    // Chromium reports this benign layout notice as an error; it is not the console's fault.
    if (event.message && event.message.includes("ResizeObserver loop")) return;
    if (event.message) toast(t("error.console", { message: event.message }), "error");
  });
  // A new language re-renders whatever is on screen (the address keeps the page and its filters).
  onLangChange(() => {
    document.querySelector(".skip-link").textContent = t("skip.content");
    if (me) route({ force: true });
    else loginView();
  });
  document.querySelector(".skip-link").textContent = t("skip.content");
  try {
    const data = await api("/api/console/me", { quiet401: true });
    signedIn(data);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      loginView();
    } else {
      clear(main).append(h("div", { class: "card" },
        h("h1", { text: t("boot.error_title") }),
        h("p", { class: "form-error", role: "alert", text: errorMessage(err) }),
        h("button", { type: "button", text: t("common.retry"), onclick: () => location.reload() })));
    }
  }
}

boot();
