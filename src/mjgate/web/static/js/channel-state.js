// A channel's state now, as the scheduler keeps it: the breaker's health state and the capacity in
// use. Shared by the channels page, a channel's own page and the dashboard.

import { h } from "./dom.js";
import { fmtNumber, intlLocale, t } from "./i18n.js";

// The breaker's word on a channel: a badge whose text says the state (colour is never the only
// cue), with the end of a cooldown, the cooldowns in a row and the failure streak beside it.
const HEALTH_CLASS = { enabled: "status-success", cooldown: "status-not_start", manual_disabled: "status-cancel", auto_disabled: "status-failure" };

export function healthBadge(health) {
  const state = health?.state || "enabled";
  const text = state === "cooldown" && health.cooldown_until
    ? t("health.cooldown_until", { time: fmtClock(health.cooldown_until) })
    : t(`health.${state}`);
  return h("span", { class: `badge health-badge ${HEALTH_CLASS[state] || ""}`, dataset: { health: state }, text });
}

function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString(intlLocale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// "in flight / capacity" and "sent today / daily cap", or that the channel has no such limit.
export function capacityLines(c) {
  const cap = c.max_running === null || c.max_running === undefined ? null : c.max_running + (c.max_queued || 0);
  const full = cap !== null && c.in_flight >= cap;
  return [
    h("div", { class: full ? "capacity full" : "capacity", dataset: { capacity: "in_flight" } },
      // Tasks in flight are counted only against a capacity (as sent today is against a cap).
      cap === null ? t("channels.in_flight_unbounded")
        : t("channels.in_flight_of", { n: fmtNumber(c.in_flight), cap: fmtNumber(cap), running: fmtNumber(c.max_running), queued: fmtNumber(c.max_queued || 0) })),
    h("div", { class: "muted small", dataset: { capacity: "today" } },
      // Tasks sent are counted only against a cap: without one there is no figure to show.
      c.daily_cap === null || c.daily_cap === undefined ? t("channels.today_uncapped")
        : t("channels.today_of", { n: fmtNumber(c.sent_today), cap: fmtNumber(c.daily_cap) })),
    c.active_hours ? h("div", { class: "muted small", text: t("channels.hours", { hours: c.active_hours }) }) : null,
    c.mode_fallback ? h("div", { class: "muted small", text: t("channels.fallback_on") }) : null,
  ];
}
