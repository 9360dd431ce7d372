// The console's HTTP client: same-origin fetch with the session cookie, JSON bodies, and the
// X-CSRF-Token header on every state-changing request. Errors become ApiError with the server's message.

let csrfToken = null;
let onUnauthorized = null;

export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || null;
}

export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

export function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes("?") ? "&" : "?"}${qs}` : path;
}

export async function api(path, { method = "GET", body, query, signal, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", signal, cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") {
    headers["Content-Type"] = "application/json";
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, `The gateway cannot be reached (${err && err.message ? err.message : "network error"}).`);
  }
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok || (payload && payload.success === false)) {
    const message = (payload && (payload.message || (payload.error && payload.error.message) || payload.description))
      || `The gateway answered HTTP ${response.status}.`;
    const error = new ApiError(response.status, message, payload ? payload.data : null);
    if (response.status === 401 && onUnauthorized && !quiet401) onUnauthorized(error);
    throw error;
  }
  return payload && typeof payload === "object" && "data" in payload ? payload.data : payload;
}
