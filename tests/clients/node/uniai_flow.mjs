// Drives the `uniai` npm package (its MidJourney provider, unchanged) against a midjourney-proxy
// server: imagine -> poll until done -> change(UPSCALE, 1) -> poll until done -> the image uniai
// downloaded. Prints one JSON summary on stdout; exits 1 (with the error in the JSON) on failure.
//
//   node uniai_flow.mjs <base_url> <key> [prompt]
//
// uniai writes downloaded images to ./cache/<taskId>.png (and its localStorage to ./cache), so run it
// from a scratch directory. uniai never reads `status`: a task is done when progress is "100%"
// (parsed to 100) and failed when failReason is non-empty.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import uniai from 'uniai';

const UniAI = uniai.default ?? uniai; // no "exports" field: Node loads the CJS build
const require = createRequire(import.meta.url);
const [baseURL, key, prompt = 'a red fox in snow'] = process.argv.slice(2);
const POLL_MS = Number(process.env.POLL_MS ?? 200);
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS ?? 60000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const summary = { client: 'uniai', version: require('uniai/package.json').version, ok: false };

async function waitDone(ai, id) {
  const polls = [];
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const [t] = await ai.task('midjourney', id); // GET /mj/task/{id}/fetch
    polls.push(t.progress);
    if (t.fail) throw new Error(`task ${id} failed: ${t.fail}`);
    if (t.progress === 100) return { ...t, polls };
    if (Date.now() > deadline) throw new Error(`task ${id} not done after ${TIMEOUT_MS} ms: ${JSON.stringify(t)}`);
    await sleep(POLL_MS);
  }
}

function describeImage(file) {
  const bytes = readFileSync(file);
  return {
    path: path.resolve(file),
    bytes: bytes.length,
    png: bytes.subarray(0, 8).toString('hex') === '89504e470d0a1a0a',
  };
}

try {
  const ai = new UniAI({ MidJourney: { proxy: baseURL, token: key } });
  const submitted = await ai.imagine(prompt, { provider: 'midjourney' }); // POST /mj/submit/imagine
  summary.imagine = { taskId: submitted.taskId };
  summary.imagine.task = await waitDone(ai, submitted.taskId);
  const up = await ai.change('midjourney', submitted.taskId, 'UPSCALE', 1); // POST /mj/submit/change
  summary.upscale = { taskId: up.taskId };
  summary.upscale.task = await waitDone(ai, up.taskId);
  const imgs = summary.upscale.task.imgs;
  if (!imgs || imgs.length !== 1) throw new Error(`expected one upscaled image, got ${JSON.stringify(imgs)}`);
  summary.image = describeImage(imgs[0]);
  summary.ok = true;
} catch (err) {
  summary.error = String(err?.stack ?? err);
  if (err?.response) summary.errorResponse = { status: err.response.status, data: err.response.data };
}
console.log(JSON.stringify(summary));
process.exitCode = summary.ok ? 0 : 1;
