// Every string the console shows, in English and Simplified Chinese, and the locale's formatting
// (dates, numbers, money, durations through Intl). The language comes from the browser
// (navigator.languages) unless the user picked one; the choice is kept in localStorage.
// t("key", {name: value}) fills {name} placeholders; a missing key is a console error (tests fail on it).

import { STRINGS } from "./strings.js";

export { STRINGS };
export const LANGUAGES = [["en", "English"], ["zh", "简体中文"]]; // endonyms: each in its own language
const STORAGE_KEY = "mjgate.lang";
const INTL_LOCALE = { en: "en", zh: "zh-CN" };
const listeners = new Set();

function detect() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored && STRINGS[stored]) return stored;
  } catch { /* storage may be off */ }
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (STRINGS[base]) return base;
  }
  return "en";
}

let current = detect();
document.documentElement.lang = INTL_LOCALE[current];

export function lang() {
  return current;
}

export function intlLocale() {
  return INTL_LOCALE[current];
}

export function setLang(next) {
  if (!STRINGS[next] || next === current) return;
  current = next;
  try { localStorage.setItem(STORAGE_KEY, next); } catch { /* not kept: fine */ }
  document.documentElement.lang = INTL_LOCALE[next];
  for (const fn of [...listeners]) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function t(key, vars = null) {
  let text = STRINGS[current][key];
  if (text === undefined) {
    console.error(`i18n: no ${current} text for "${key}"`);
    text = STRINGS.en[key] ?? key;
  }
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return text;
}

// ------------------------------------------------------------------ formatting in the chosen locale

const cache = new Map();
function formatter(kind, options) {
  const key = `${current}|${kind}|${JSON.stringify(options)}`;
  if (!cache.has(key)) {
    const Ctor = { number: Intl.NumberFormat, date: Intl.DateTimeFormat, relative: Intl.RelativeTimeFormat }[kind];
    cache.set(key, new Ctor(INTL_LOCALE[current], options));
  }
  return cache.get(key);
}

export function fmtNumber(value, options = {}) {
  return formatter("number", options).format(value || 0);
}

export function fmtPercent(rate, digits = 1) {
  if (rate === null || rate === undefined) return "—";
  return formatter("number", { style: "percent", maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(rate);
}

export const QUOTA_PER_USD = 500000;

export function fmtUsd(units) {
  const value = (units || 0) / QUOTA_PER_USD;
  const small = value !== 0 && Math.abs(value) < 0.01;
  return formatter("number", { style: "currency", currency: "USD", minimumFractionDigits: small ? 4 : 2,
    maximumFractionDigits: small ? 4 : 2 }).format(value);
}

export function fmtQuota(units) {
  return t("fmt.quota", { units: fmtNumber(units || 0), usd: fmtUsd(units) });
}

export function fmtDateTime(ms) {
  if (!ms) return "—";
  return formatter("date", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ms));
}

export function fmtDay(ms) {
  return formatter("date", { month: "short", day: "numeric" }).format(new Date(ms));
}

export function fmtHour(ms) {
  return formatter("date", { hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
}

export function fmtAgo(ms) {
  if (!ms) return t("time.never");
  const seconds = Math.round((ms - Date.now()) / 1000);
  const rel = formatter("relative", { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rel.format(seconds, "second");
  if (abs < 3600) return rel.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rel.format(Math.round(seconds / 3600), "hour");
  return rel.format(Math.round(seconds / 86400), "day");
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0 || !Number.isFinite(seconds)) return "—";
  seconds = Math.floor(seconds);
  if (seconds < 60) return t("dur.s", { s: seconds });
  const m = Math.floor(seconds / 60);
  if (m < 60) return t("dur.ms", { m, s: seconds % 60 });
  return t("dur.hm", { h: Math.floor(m / 60), m: m % 60 });
}
