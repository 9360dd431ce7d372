// Live task changes over Server-Sent Events (GET /api/mj/events). One EventSource per page;
// views subscribe with a callback. EventSource reconnects by itself; the state is shown in the header.
// Administrators' stream (?all=1) also carries `event: alert` (a channel cooling down, disabled by
// the breaker, or back), which onAlert listeners get.

const listeners = new Set();
const alertListeners = new Set();
const stateListeners = new Set();
let source = null;
let url = null;
let state = "off";

function setState(next) {
  state = next;
  for (const fn of stateListeners) fn(state);
}

export function startLive(everyone) {
  const wanted = everyone ? "/api/mj/events?all=1" : "/api/mj/events";
  if (source && url === wanted && source.readyState !== EventSource.CLOSED) return;
  stopLive();
  url = wanted;
  source = new EventSource(url, { withCredentials: true });
  setState("connecting");
  source.addEventListener("open", () => setState("live"));
  source.addEventListener("error", () => {
    setState(source && source.readyState === EventSource.CLOSED ? "off" : "connecting");
  });
  source.addEventListener("task", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!data || !data.mj_id) return;
    for (const fn of [...listeners]) {
      try {
        fn(data);
      } catch (err) {
        console.error("live listener failed", err);
      }
    }
  });
  source.addEventListener("alert", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!data || data.type !== "alert") return;
    for (const fn of [...alertListeners]) {
      try {
        fn(data);
      } catch (err) {
        console.error("alert listener failed", err);
      }
    }
  });
}

export function stopLive() {
  if (source) source.close();
  source = null;
  url = null;
  setState("off");
}

export function onTask(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function onAlert(fn) {
  alertListeners.add(fn);
  return () => alertListeners.delete(fn);
}

export function onLiveState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

export function liveState() {
  return state;
}
