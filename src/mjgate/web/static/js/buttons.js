// What a result button does, in words and an icon: from its customId (the midjourney-proxy
// grammar), not from its emoji, which needs an emoji font to render at all.

import { t } from "./i18n.js";

const PAN_ICON = { left: "left", right: "right", up: "up", down: "down" };

// -> { text (visible), name (accessible, unique within a task), icon|null, modal: "zoom"|"region"|null }
export function buttonInfo(button) {
  const id = button.customId || "";
  let m;
  if ((m = id.match(/^MJ::JOB::upsample::(\d)::/))) return { text: `U${m[1]}`, name: `U${m[1]}`, title: t("btn.upscale_n", { n: m[1] }), icon: null };
  if ((m = id.match(/^MJ::JOB::variation::(\d)::/))) return { text: `V${m[1]}`, name: `V${m[1]}`, title: t("btn.variation_n", { n: m[1] }), icon: null };
  if (/^MJ::JOB::reroll::/.test(id)) return { text: t("btn.reroll"), name: t("btn.reroll"), icon: "refresh" };
  if (/::low_variation::/.test(id)) return { text: t("btn.vary_subtle"), name: t("btn.vary_subtle"), icon: "wand" };
  if (/::high_variation::/.test(id)) return { text: t("btn.vary_strong"), name: t("btn.vary_strong"), icon: "wand" };
  if ((m = id.match(/^MJ::JOB::upsample_(?:v\d+_)?(2x|4x)(?:_(subtle|creative))?::/))) {
    const key = m[2] ? `btn.upscale_${m[2]}` : `btn.upscale_${m[1]}`;
    return { text: t(key), name: t(key), icon: "upscale" };
  }
  if (/^MJ::Inpaint::/.test(id)) return { text: t("btn.vary_region"), name: t("btn.vary_region"), icon: "brush", modal: "region" };
  if ((m = id.match(/^MJ::Outpaint::(\d+)::/))) {
    const key = m[1] === "50" ? "btn.zoom_2x" : "btn.zoom_15x";
    return { text: t(key), name: t(key), icon: "zoom" };
  }
  if (/^MJ::CustomZoom::/.test(id)) return { text: t("btn.custom_zoom"), name: t("btn.custom_zoom"), icon: "zoom", modal: "zoom" };
  if ((m = id.match(/::pan_(left|right|up|down)::/))) {
    const key = `btn.pan_${m[1]}`;
    return { text: t(key), name: t(key), icon: PAN_ICON[m[1]] };
  }
  if ((m = id.match(/::animate_(high|low)::/))) {
    const key = `btn.animate_${m[1]}`;
    return { text: t(key), name: t(key), icon: "film" };
  }
  const fallback = button.label || id.split("::").slice(1, 3).join(" ") || t("btn.action");
  return { text: fallback, name: fallback, icon: null };
}
