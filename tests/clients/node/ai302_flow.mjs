// Drives `@302ai/ai-sdk` (its Midjourney image model, unchanged) against a midjourney-proxy server.
// One doGenerate call with upscaleIndexes [1] makes the SDK: POST /mj/submit/imagine -> poll
// GET /mj/task/{id}/fetch every 2 s until status SUCCESS -> POST /mj/submit/action with the customId
// of the button labelled "U1" -> poll until SUCCESS -> download imageUrl. Prints one JSON summary.
//
//   node ai302_flow.mjs <base_url> <key> [prompt]
//
// The SDK hides task ids, so the provider's own `fetch` option (its documented hook for custom
// fetch implementations) is given a recorder that passes every call through to the real fetch
// untouched and notes method, path, body, status and JSON answer. The image download uses the
// global fetch and is not recorded; the SDK returns its bytes as base64.
import { createRequire } from 'node:module';
import { createAI302 } from '@302ai/ai-sdk';

const require = createRequire(import.meta.url);
const [baseURL, key, prompt = 'a red fox in snow'] = process.argv.slice(2);
const summary = { client: '@302ai/ai-sdk', version: require('@302ai/ai-sdk/package.json').version, ok: false };
const calls = [];

async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const url = new URL(typeof input === 'string' ? input : input.url);
  const call = { method: init.method ?? 'GET', path: url.pathname, status: response.status };
  if (typeof init.body === 'string') call.body = JSON.parse(init.body);
  const headers = new Headers(init.headers);
  call.headers = { authorization: headers.has('authorization'), 'mj-api-secret': headers.has('mj-api-secret') };
  try {
    call.json = await response.clone().json();
  } catch {
    call.json = null;
  }
  calls.push(call);
  return response;
}

try {
  const ai302 = createAI302({ baseURL, apiKey: key, fetch: recordingFetch });
  const model = ai302.image('midjourney/7.0');
  const result = await model.doGenerate({
    prompt, n: 1, size: undefined, aspectRatio: '1:1', seed: undefined,
    providerOptions: { ai302: { upscaleIndexes: [1] } }, headers: {}, abortSignal: AbortSignal.timeout(120000),
  });
  summary.warnings = result.warnings;
  summary.images = result.images.map((b64) => {
    const bytes = Buffer.from(b64, 'base64');
    return { bytes: bytes.length, png: bytes.subarray(0, 8).toString('hex') === '89504e470d0a1a0a' };
  });
  summary.ok = true;
} catch (err) {
  summary.error = String(err?.stack ?? err);
  if (err?.responseBody !== undefined) summary.errorResponse = { status: err.statusCode, body: err.responseBody };
}
// Submits and the last answer for each task are what the test needs; keep every call for the report.
summary.calls = calls;
console.log(JSON.stringify(summary));
process.exitCode = summary.ok ? 0 : 1;
