// The console's entry point: session, login screen, header and navigation, and a hash router.
// Routes look like #/tasks?mj_id=...; each view renders into <main> and may return a cleanup function.

import { ApiError, api, setCsrfToken, setUnauthorizedHandler } from "./api.js";
import { append, clear, errorMessage, fmtQuota, h, toast, uid } from "./dom.js";
import { onLiveState, startLive, stopLive } from "./live.js";
import { channelsView, ledgerView, pricesView, usersView } from "./admin.js";
import { keysView } from "./keys.js";
import { submitView } from "./submit.js";
import { tasksView } from "./tasks.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");

const ROUTES = {
  tasks: { title: "Tasks", view: tasksView },
  submit: { title: "New task", view: submitView },
  keys: { title: "API keys", view: keysView },
  "admin/channels": { title: "Channels", view: channelsView, admin: true },
  "admin/users": { title: "Users", view: usersView, admin: true },
  "admin/prices": { title: "Prices", view: pricesView, admin: true },
  "admin/ledger": { title: "Ledger", view: ledgerView, admin: true },
};
const DEFAULT_ROUTE = "tasks";

let me = null;
let cleanup = null;
let renderSeq = 0;

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [path, query = ""] = raw.split("?");
  return { path: path || DEFAULT_ROUTE, params: new URLSearchParams(query) };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Keep the view's state in the address bar without re-rendering (reload and back keep filters).
function setParams(values) {
  const { path } = parseHash();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== "" && value !== null && value !== undefined) params.set(key, value);
  const qs = params.toString();
  history.replaceState(null, "", `#/${path}${qs ? `?${qs}` : ""}`);
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
};

// ------------------------------------------------------------------ header

function renderTopbar() {
  if (!me) {
    topbar.hidden = true;
    clear(topbar);
    return;
  }
  const { path } = parseHash();
  const user = me.user;
  const link = (route, text) => h("a", { href: `#/${route}`, "aria-current": path === route ? "page" : null, text });
  const logout = h("button", { type: "button", class: "ghost", text: "Log out" });
  logout.addEventListener("click", doLogout);
  clear(topbar);
  append(topbar, [
    h("a", { class: "brand", href: "#/tasks", "aria-label": "mjgate console, task log" }, h("span", { class: "brand-mark", "aria-hidden": "true", text: "◧" }), "mjgate"),
    h("nav", { class: "nav", "aria-label": "Main" },
      h("ul", {},
        h("li", {}, link("tasks", "Tasks")),
        h("li", {}, link("submit", "New task")),
        h("li", {}, link("keys", "API keys")),
        user.is_admin ? [
          h("li", { class: "nav-sep", "aria-hidden": "true" }),
          h("li", {}, link("admin/channels", "Channels")),
          h("li", {}, link("admin/users", "Users")),
          h("li", {}, link("admin/prices", "Prices")),
          h("li", {}, link("admin/ledger", "Ledger")),
        ] : null)),
    h("div", { class: "account" },
      h("span", { class: "who" }, h("strong", { text: user.display_name || user.username }),
        h("span", { class: "muted small", text: user.is_admin ? ` · ${user.role}` : "" })),
      h("span", { class: "balance", title: "Balance", text: fmtQuota(user.quota) }),
      logout),
  ]);
  topbar.hidden = false;
}

// ------------------------------------------------------------------ login

function loginView() {
  const ids = { user: uid("login-user"), pass: uid("login-pass"), token: uid("login-token"), uid: uid("login-uid") };
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const passwordFields = h("div", { class: "login-fields" },
    h("div", { class: "field" }, h("label", { for: ids.user, text: "Username" }),
      h("input", { id: ids.user, name: "username", autocomplete: "username", required: true, maxlength: 64 })),
    h("div", { class: "field" }, h("label", { for: ids.pass, text: "Password" }),
      h("input", { id: ids.pass, name: "password", type: "password", autocomplete: "current-password", required: true })));
  const tokenFields = h("div", { class: "login-fields", hidden: true },
    h("div", { class: "field" }, h("label", { for: ids.token, text: "Access token" }),
      h("input", { id: ids.token, name: "access_token", type: "password", autocomplete: "off", disabled: true, required: true })),
    h("div", { class: "field" }, h("label", { for: ids.uid, text: "User ID" }),
      h("input", { id: ids.uid, name: "user_id", type: "number", min: 1, disabled: true, required: true })));
  const method = h("fieldset", { class: "segmented" },
    h("legend", { class: "sr-only", text: "Sign in with" }),
    h("label", {}, h("input", { type: "radio", name: "method", value: "password", checked: true }), "With password"),
    h("label", {}, h("input", { type: "radio", name: "method", value: "token" }), "With access token"));
  method.addEventListener("change", () => {
    const byToken = method.querySelector("input:checked").value === "token";
    passwordFields.hidden = byToken;
    tokenFields.hidden = !byToken;
    for (const el of passwordFields.querySelectorAll("input")) el.disabled = byToken;
    for (const el of tokenFields.querySelectorAll("input")) el.disabled = !byToken;
    errorBox.textContent = "";
  });
  const submit = h("button", { type: "submit", class: "primary wide", text: "Sign in" });
  const form = h("form", { class: "login-card card", "aria-labelledby": "login-title" },
    h("div", { class: "login-brand", "aria-hidden": "true", text: "◧" }),
    h("h1", { id: "login-title", text: "Sign in to mjgate" }),
    h("p", { class: "muted", text: "The Midjourney task gateway console." }),
    method, passwordFields, tokenFields, errorBox, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    const byToken = method.querySelector("input:checked").value === "token";
    const body = byToken
      ? { access_token: form.elements.namedItem("access_token").value.trim(), user_id: parseInt(form.elements.namedItem("user_id").value, 10) || null }
      : { username: form.elements.namedItem("username").value.trim(), password: form.elements.namedItem("password").value };
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      const data = await api("/api/console/login", { method: "POST", body, quiet401: true });
      signedIn(data);
    } catch (err) {
      errorBox.textContent = errorMessage(err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });
  if (cleanup) cleanup();
  cleanup = null;
  document.title = "Sign in · mjgate";
  append(clear(main), h("div", { class: "login-wrap" }, form));
  form.querySelector("input[name=username]").focus();
}

function signedIn(data) {
  me = data;
  setCsrfToken(data.csrf_token);
  startLive(data.user.is_admin);
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", `#/${DEFAULT_ROUTE}`);
  route();
}

function sessionEnded(message) {
  const wasIn = Boolean(me);
  me = null;
  setCsrfToken(null);
  stopLive();
  renderTopbar();
  loginView();
  if (wasIn) toast(message || "Your session has ended. Sign in again.", "error");
}

async function doLogout() {
  try {
    await api("/api/console/logout", { method: "POST", quiet401: true });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      toast(`Logout failed: ${errorMessage(err)}`, "error");
      return;
    }
  }
  me = null;
  setCsrfToken(null);
  stopLive();
  renderTopbar();
  history.replaceState(null, "", "#/tasks");
  loginView();
  toast("You are signed out.", "info");
}

// ------------------------------------------------------------------ router

async function route() {
  if (!me) return;
  const seq = ++renderSeq;
  const { path, params } = parseHash();
  let target = ROUTES[path];
  if (!target || (target.admin && !me.user.is_admin)) {
    if (target) toast("That page is for administrators.", "error");
    history.replaceState(null, "", `#/${DEFAULT_ROUTE}`);
    target = ROUTES[DEFAULT_ROUTE];
  }
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
    cleanup = null;
  }
  renderTopbar();
  document.title = `${target.title} · mjgate`;
  const view = h("div", { class: "view" });
  clear(main).append(view);
  try {
    const result = await target.view(view, ctx, params);
    if (seq !== renderSeq) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? result : null;
  } catch (err) {
    console.error(err);
    if (seq !== renderSeq) return;
    clear(view).append(h("div", { class: "card" },
      h("h1", { text: "This page could not be shown" }),
      h("p", { class: "form-error", role: "alert", text: errorMessage(err) }),
      h("button", { type: "button", text: "Try again", onclick: () => route() })));
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
    if (event.message) toast(`Console error: ${event.message}`, "error");
  });
  try {
    const data = await api("/api/console/me", { quiet401: true });
    signedIn(data);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      loginView();
    } else {
      clear(main).append(h("div", { class: "card" },
        h("h1", { text: "The console cannot start" }),
        h("p", { class: "form-error", role: "alert", text: errorMessage(err) }),
        h("button", { type: "button", text: "Retry", onclick: () => location.reload() })));
    }
  }
}

boot();
