// New tasks of every kind, one tab each (#/submit/<kind>): imagine with reference images and a
// speed mode, blend 2–5 images, describe an upload or a URL, video from a first (and last) frame
// or a prompt, and edits with a mask painted on the image. Images are read as data: URIs here.

import { api } from "./api.js";
import { append, clear, errorMessage, h, toast, uid } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { maskEditor } from "./mask.js";

const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const ACCEPT = "image/png,image/jpeg,image/webp,image/gif";
const KINDS = [
  ["imagine", "sparkle"], ["blend", "blend"], ["describe", "text"], ["video", "video"], ["edits", "brush"],
];

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(t("submit.read_failed")));
    reader.readAsDataURL(file);
  });
}

async function blobToDataUrl(url) {
  const resp = await fetch(url, { credentials: "same-origin" });
  if (!resp.ok) throw new Error(t("submit.task_image_failed", { status: resp.status }));
  return readAsDataUrl(await resp.blob());
}

// A file input for up to `max` images with previews and a remove button for each.
function imagePicker({ label, help, max = 1, onChange = () => {} }) {
  const id = uid("file");
  const helpId = `${id}-help`;
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const list = h("ul", { class: "image-preview", "aria-label": t("submit.chosen_images") });
  const input = h("input", { id, type: "file", accept: ACCEPT, multiple: max > 1, "aria-describedby": helpId });
  const images = []; // { name, data }
  const render = () => {
    clear(list);
    images.forEach((image, index) => {
      const remove = h("button", { type: "button", "aria-label": t("submit.remove_image", { name: image.name }) }, icon("close", { size: 16 }));
      remove.addEventListener("click", () => {
        images.splice(index, 1);
        render();
        input.focus();
      });
      list.append(h("li", {}, h("img", { src: image.data, alt: t("submit.preview_alt", { name: image.name }) }),
        h("span", { class: "muted small", text: image.name }), remove));
    });
    list.hidden = images.length === 0;
    input.disabled = images.length >= max;
    onChange(images);
  };
  input.addEventListener("change", async () => {
    errorBox.textContent = "";
    for (const file of [...(input.files || [])]) {
      if (images.length >= max) { errorBox.textContent = t("submit.too_many", { max }); break; }
      if (!file.type.startsWith("image/")) { errorBox.textContent = t("submit.not_image"); continue; }
      if (file.size > MAX_IMAGE_BYTES) { errorBox.textContent = t("submit.too_big"); continue; }
      try {
        images.push({ name: file.name, data: await readAsDataUrl(file) });
      } catch (err) {
        errorBox.textContent = errorMessage(err);
      }
    }
    input.value = "";
    render();
  });
  render();
  const el = h("div", { class: "field" }, h("label", { for: id, text: label }), input,
    h("p", { class: "help", id: helpId, text: help }), errorBox, list);
  return { el, images: () => images.map((i) => i.data), set(name, data) { images.splice(0, images.length, { name, data }); render(); }, input };
}

function promptField(value = "", { required = true, label = null, help = null, rows = 4 } = {}) {
  const id = uid("prompt");
  const helpId = `${id}-help`;
  const el = h("textarea", { id, name: "prompt", rows, required, maxlength: 8192, "aria-describedby": helpId, placeholder: t("submit.prompt_placeholder") });
  el.value = value;
  return { control: el, el: h("div", { class: "field" }, h("label", { for: id, text: label || t("task.prompt") }), el,
    h("p", { class: "help", id: helpId, text: help || t("submit.prompt_help") })) };
}

function modeField() {
  const fieldset = h("fieldset", { class: "modes" }, h("legend", { text: t("submit.speed") }),
    ["fast", "relax", "turbo"].map((value, i) => h("label", { class: "mode-option" },
      h("input", { type: "radio", name: "mode", value, checked: i === 0 }),
      h("span", {}, h("strong", { text: t(`mode.${value}`) }), h("span", { class: "muted small", text: ` — ${t(`mode.${value}_help`)}` })))));
  return { el: fieldset, value: () => fieldset.querySelector("input:checked")?.value || "fast" };
}

function radios(name, legend, options, value) {
  const fieldset = h("fieldset", { class: "checks" }, h("legend", { text: legend }),
    options.map(([v, label]) => h("label", { class: "check" }, h("input", { type: "radio", name, value: v, checked: v === value }), label)));
  return { el: fieldset, value: () => fieldset.querySelector("input:checked")?.value || value };
}

// ------------------------------------------------------------------ the forms, one per kind

function imagineForm(params) {
  const prompt = promptField(params.get("prompt") || "");
  const mode = modeField();
  const refs = imagePicker({ label: t("submit.reference_images"), help: t("submit.reference_help"), max: 5 });
  return {
    fields: [prompt.el, mode.el, refs.el],
    focus: prompt.control,
    body() {
      const text = prompt.control.value.trim();
      if (!text) throw new Error(t("submit.need_prompt"));
      return ["/api/console/submit/imagine", { prompt: text, mode: mode.value(), images: refs.images() }];
    },
  };
}

function blendForm() {
  const images = imagePicker({ label: t("submit.blend_images"), help: t("submit.blend_help"), max: 5 });
  const dims = radios("dimensions", t("submit.dimensions"), [["SQUARE", t("dims.SQUARE")], ["PORTRAIT", t("dims.PORTRAIT")], ["LANDSCAPE", t("dims.LANDSCAPE")]], "SQUARE");
  const mode = modeField();
  return {
    fields: [images.el, dims.el, mode.el],
    focus: images.input,
    body() {
      const list = images.images();
      if (list.length < 2) throw new Error(t("submit.blend_need_two"));
      return ["/api/console/submit/blend", { images: list, dimensions: dims.value(), mode: mode.value() }];
    },
  };
}

function describeForm() {
  const source = radios("source", t("submit.describe_source"), [["upload", t("submit.describe_upload")], ["url", t("submit.describe_url")]], "upload");
  const upload = imagePicker({ label: t("submit.describe_image"), help: t("submit.describe_image_help"), max: 1 });
  const urlId = uid("describe-url");
  const url = h("input", { id: urlId, type: "url", name: "image_url", placeholder: "https://…", maxlength: 4096, "aria-describedby": `${urlId}-help` });
  const urlField = h("div", { class: "field", hidden: true }, h("label", { for: urlId, text: t("submit.describe_url_label") }), url,
    h("p", { class: "help", id: `${urlId}-help`, text: t("submit.describe_url_help") }));
  source.el.addEventListener("change", () => {
    const byUrl = source.value() === "url";
    upload.el.hidden = byUrl;
    urlField.hidden = !byUrl;
  });
  const mode = modeField();
  return {
    fields: [source.el, upload.el, urlField, mode.el],
    focus: upload.input,
    body() {
      if (source.value() === "url") {
        if (!url.value.trim()) throw new Error(t("submit.describe_need_url"));
        return ["/api/console/submit/describe", { image_url: url.value.trim(), mode: mode.value() }];
      }
      const [image] = upload.images();
      if (!image) throw new Error(t("submit.describe_need_image"));
      return ["/api/console/submit/describe", { image, mode: mode.value() }];
    },
  };
}

function videoForm() {
  const prompt = promptField("", { required: false, help: t("submit.video_prompt_help") });
  const first = imagePicker({ label: t("submit.first_frame"), help: t("submit.first_frame_help"), max: 1 });
  const last = imagePicker({ label: t("submit.last_frame"), help: t("submit.last_frame_help"), max: 1 });
  const motion = radios("motion", t("submit.motion"), [["low", t("motion.low")], ["high", t("motion.high")]], "low");
  const mode = modeField();
  return {
    fields: [prompt.el, first.el, last.el, motion.el, mode.el, h("p", { class: "help", text: t("submit.video_extend_hint") })],
    focus: prompt.control,
    body() {
      const [image] = first.images();
      const [endImage] = last.images();
      const text = prompt.control.value.trim();
      if (!text && !image) throw new Error(t("submit.video_need_something"));
      if (endImage && !image) throw new Error(t("submit.video_last_needs_first"));
      const body = { prompt: text, motion: motion.value(), mode: mode.value() };
      if (image) body.image = image;
      if (endImage) body.end_image = endImage;
      return ["/api/console/submit/video", body];
    },
  };
}

function editsForm(params, slot) {
  const prompt = promptField("", { help: t("submit.edits_prompt_help") });
  const mode = modeField();
  const maskSlot = h("div", { class: "mask-slot" });
  let editor = null;
  let base = null;
  const showEditor = async (data) => {
    base = data;
    clear(maskSlot).append(h("p", { class: "muted", text: t("common.loading") }));
    editor = await maskEditor(data, { label: t("mask.canvas_label") });
    clear(maskSlot).append(h("h2", { class: "sub", text: t("submit.paint_mask") }), editor.el);
  };
  const picker = imagePicker({
    label: t("submit.edits_image"), help: t("submit.edits_image_help"), max: 1,
    onChange: (images) => {
      if (images.length) showEditor(images[0].data).catch((err) => toast(errorMessage(err), "error"));
      else { editor = null; base = null; clear(maskSlot); }
    },
  });
  const from = params.get("from");
  if (from) {
    api(`/api/console/tasks/${encodeURIComponent(from)}`)
      .then((item) => (item.image_url ? blobToDataUrl(item.image_url) : Promise.reject(new Error(t("task.no_image")))))
      .then((data) => picker.set(t("submit.image_of_task", { id: from }), data))
      .catch((err) => slot.setError(errorMessage(err)));
  }
  return {
    fields: [picker.el, maskSlot, prompt.el, mode.el],
    focus: picker.input,
    body() {
      if (!base) throw new Error(t("submit.edits_need_image"));
      const text = prompt.control.value.trim();
      if (!text) throw new Error(t("submit.need_prompt"));
      const body = { prompt: text, image: base, mode: mode.value() };
      const mask = editor && editor.toDataURL();
      if (mask) body.mask = mask;
      return ["/api/console/submit/edits", body];
    },
  };
}

const FORMS = { imagine: imagineForm, blend: blendForm, describe: describeForm, video: videoForm, edits: editsForm };

export async function submitView(root, ctx, params, kind) {
  kind = FORMS[kind] ? kind : "imagine";
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const slot = { setError: (text) => { errorBox.textContent = text; } };
  const spec = FORMS[kind](params, slot);
  const submit = h("button", { type: "submit", class: "primary", text: t("submit.submit") });
  const tabs = h("nav", { class: "tabs", "aria-label": t("submit.kinds") },
    h("ul", {}, KINDS.map(([name, iconName]) => h("li", {},
      h("a", { href: `#/submit/${name}`, "aria-current": name === kind ? "page" : null }, icon(iconName, { size: 16 }), t(`kind.${name}`))))));
  const form = h("form", { class: "card submit-form", "aria-labelledby": "submit-title" },
    h("p", { class: "muted", text: t(`kind.${kind}_intro`) }),
    spec.fields, errorBox, h("div", { class: "form-actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    let path;
    let body;
    try {
      [path, body] = spec.body();
    } catch (err) {
      errorBox.textContent = errorMessage(err);
      return;
    }
    submit.disabled = true;
    submit.textContent = t("submit.submitting");
    try {
      const res = await api(path, { method: "POST", body });
      toast(t("submit.done", { id: res.mj_id }), "ok");
      ctx.refreshMe();
      ctx.navigate(`#/tasks?highlight=${encodeURIComponent(res.mj_id)}`);
    } catch (err) {
      errorBox.textContent = errorMessage(err);
    } finally {
      submit.disabled = false;
      submit.textContent = t("submit.submit");
    }
  });

  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { id: "submit-title", text: t("submit.title", { kind: t(`kind.${kind}`) }) })),
    tabs,
    form,
  ]);
  spec.focus?.focus();
}
