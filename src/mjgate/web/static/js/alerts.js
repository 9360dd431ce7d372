// The banner of channel alerts: each `alert` event of the administrators' live stream becomes a
// line above the page (whatever page is open) until dismissed. The box is a live region, so a
// screen reader announces a new alert as it arrives; the newest is on top, at most MAX_SHOWN.

import { clear, h } from "./dom.js";
import { fmtDateTime, onLangChange, t } from "./i18n.js";
import { icon } from "./icons.js";
import { onAlert } from "./live.js";

const MAX_SHOWN = 5;
const TONE = { cooldown: "alert-warn", auto_disabled: "alert-bad", recovered: "alert-good", re_enabled: "alert-good" };
const KNOWN = new Set(Object.keys(TONE));

let box = null;
let stop = null;

function text(alert) {
  const name = alert.channel || `#${alert.channel_id}`;
  return KNOWN.has(alert.event) ? t(`alert.${alert.event}`, { name }) : t("alert.generic", { name, event: alert.message || alert.event });
}

function banner(alert) {
  const dismiss = h("button", { type: "button", class: "icon-button", "aria-label": t("alert.dismiss") }, icon("close", { size: 16 }));
  const item = h("div", { class: `alert-banner ${TONE[alert.event] || "alert-warn"}`, dataset: { alert: alert.event, channelId: alert.channel_id ?? "" } },
    h("p", { class: "alert-text" }, h("span", { text: text(alert) }),
      alert.at ? h("span", { class: "alert-time", text: fmtDateTime(alert.at) }) : null),
    h("a", { href: alert.channel_id ? `#/admin/channels/${alert.channel_id}` : "#/admin/channels", text: t("alert.view") }),
    dismiss);
  dismiss.addEventListener("click", () => {
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    // Focus stays in the banner while there is one, else goes to the page.
    (next?.querySelector("button") || document.getElementById("main"))?.focus();
  });
  return item;
}

function label() {
  if (box) box.setAttribute("aria-label", t("alert.region"));
}

// For administrators once signed in; stopAlerts() when the session ends.
export function startAlerts() {
  box = document.getElementById("alerts");
  if (!box || stop) return;
  label();
  const unsubscribe = onAlert((alert) => {
    box.prepend(banner(alert));
    while (box.children.length > MAX_SHOWN) box.lastElementChild.remove();
  });
  const unlang = onLangChange(label);
  stop = () => { unsubscribe(); if (typeof unlang === "function") unlang(); };
}

export function stopAlerts() {
  if (stop) stop();
  stop = null;
  // Named (a landmark) only while it serves an administrator, in the language chosen then.
  if (box) clear(box).removeAttribute("aria-label");
}
