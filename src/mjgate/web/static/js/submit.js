// The submit form: prompt, speed mode and an optional reference image (read as base64 in the browser).

import { api } from "./api.js";
import { append, clear, errorMessage, h, toast, uid } from "./dom.js";

const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const MODES = [
  ["fast", "Fast", "The default: GPU time, finishes in about a minute."],
  ["relax", "Relax", "Queued when the upstream is busy; cheaper."],
  ["turbo", "Turbo", "Fastest; costs more."],
];

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("the image could not be read"));
    reader.readAsDataURL(file);
  });
}

export async function submitView(root, ctx) {
  const ids = { prompt: uid("prompt"), file: uid("file"), help: uid("prompt-help"), fileHelp: uid("file-help") };
  let image = null; // data: URI
  const errorBox = h("p", { class: "form-error", role: "alert" });
  const preview = h("div", { class: "image-preview", hidden: true });
  const fileInput = h("input", { id: ids.file, name: "image", type: "file", accept: "image/png,image/jpeg,image/webp,image/gif", "aria-describedby": ids.fileHelp });
  const submit = h("button", { type: "submit", class: "primary", text: "Submit task" });
  const prompt = h("textarea", {
    id: ids.prompt, name: "prompt", rows: 5, required: true, maxlength: 8192, "aria-describedby": ids.help,
    placeholder: "a red fox in the snow, watercolor --ar 3:2",
  });

  const form = h("form", { class: "card submit-form", "aria-labelledby": "submit-title" },
    h("div", { class: "field" },
      h("label", { for: ids.prompt, text: "Prompt" }),
      prompt,
      h("p", { class: "help", id: ids.help, text: "What to draw. Midjourney parameters such as --ar 16:9 or --v 6 go at the end." })),
    h("fieldset", { class: "modes" },
      h("legend", { text: "Speed" }),
      MODES.map(([value, label, help], i) => h("label", { class: "mode-option" },
        h("input", { type: "radio", name: "mode", value, checked: i === 0 }),
        h("span", {}, h("strong", { text: label }), h("span", { class: "muted small", text: ` — ${help}` }))))),
    h("div", { class: "field" },
      h("label", { for: ids.file, text: "Reference image (optional)" }),
      fileInput,
      h("p", { class: "help", id: ids.fileHelp, text: "PNG, JPEG, WebP or GIF up to 10 MB; it is sent with the prompt as an image prompt." }),
      preview),
    errorBox,
    h("div", { class: "form-actions" }, submit));

  fileInput.addEventListener("change", async () => {
    errorBox.textContent = "";
    image = null;
    clear(preview).hidden = true;
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      errorBox.textContent = "The reference must be an image file.";
      fileInput.value = "";
      return;
    }
    if (file.size > MAX_IMAGE_BYTES) {
      errorBox.textContent = "The reference image is larger than 10 MB.";
      fileInput.value = "";
      return;
    }
    try {
      image = await readAsDataUrl(file);
    } catch (err) {
      errorBox.textContent = errorMessage(err);
      return;
    }
    const remove = h("button", { type: "button", text: "Remove image" });
    remove.addEventListener("click", () => {
      image = null;
      fileInput.value = "";
      clear(preview).hidden = true;
      fileInput.focus();
    });
    append(preview, [h("img", { src: image, alt: `Reference image ${file.name}` }), h("span", { class: "muted small", text: file.name }), remove]);
    preview.hidden = false;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    const text = prompt.value.trim();
    if (!text) {
      errorBox.textContent = "Write a prompt first.";
      prompt.focus();
      return;
    }
    const mode = form.querySelector('input[name="mode"]:checked')?.value || "fast";
    submit.disabled = true;
    submit.textContent = "Submitting…";
    try {
      const res = await api("/api/console/submit/imagine", { method: "POST", body: { prompt: text, mode, images: image ? [image] : [] } });
      toast(`Task ${res.mj_id} submitted`, "ok");
      ctx.refreshMe();
      ctx.navigate(`#/tasks?highlight=${encodeURIComponent(res.mj_id)}`);
    } catch (err) {
      errorBox.textContent = errorMessage(err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Submit task";
    }
  });

  append(clear(root), [
    h("div", { class: "page-head" }, h("h1", { id: "submit-title", text: "New task" })),
    form,
  ]);
  prompt.focus();
}
