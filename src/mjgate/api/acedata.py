"""AceData's face (SPEC §3.3, seed 003): POST /midjourney/imagine, /midjourney/describe, /midjourney/tasks.

An adapter only: parse the snake_case body, hand a SubmitSpec to the task service, render the task
in AceData's shapes. The store, prices, channels and callbacks are the same as for /mj/...: a task
made here is visible there and the other way round.

Decisions a client can rely on:

- Ids. `task_id` and `image_id` are both the gateway's public task id (mj_id): pass either as
  `image_id` to transform a result, or as `id` to `retrieve`. `trace_id` is a fresh id per request,
  in the body and the `X-Trace-Id` header of every answer; the trace id of the request that created
  a task is stored with it, so `retrieve` by `trace_id` works.
- Answer shape (sync answer, callback body, and `response` of a retrieved task): `task_id`,
  `trace_id`, `image_id`, `progress` (an integer 0-100), and once finished `success` plus
  `image_url`/`raw_image_url` (the gateway's signed image URL; the same full-size image, as the
  gateway makes no thumbnails), `image_width`/`image_height` (read once from the image header),
  `actions` (the transforms the result's buttons offer), or `descriptions` for describe; a failed
  task has `success: false` and `error: {code: "api_error", message: <reason>}`.
- While a task runs, a retrieved `response` has no `success` key at all (AceData's MCP server reads
  `response.success` true/false as done/failed), whereas an imagine/describe answer says
  `success: true` (the request was accepted) and has no `image_url` yet.
- Sync timeout: when `timeout` (seconds, default 300, at most 600) passes first, the answer is
  HTTP 200 with the task as it stands (`success: true`, `task_id`, `progress`, no `image_url`):
  the work goes on, nothing is refunded, and the client retrieves it later by `task_id`. It is
  not an error because the task did not fail and retrying would pay twice.
- Sync failure: a task that ends in FAILURE answers HTTP 500 `api_error` with the reason, plus
  `task_id` so the failure can be looked up. (The charge is refunded by the task service.)
- `async: true` (or a `callback_url` without `Accept: application/x-ndjson`) answers at once with
  `{success, task_id, trace_id}`. A `callback_url` receives this dialect's answer JSON from the
  persisted webhook outbox on every status/progress change (SPEC §5), signed like every callback;
  the last one carries the result.
- `Accept: application/x-ndjson` streams one answer per line: the state right after submission,
  one line per status/progress change, and the final answer (a failure is a `success: false`
  line, the HTTP status being already 200).
- `retrieve` answers the seed's item `{id, type, created_at, finished_at, duration, request,
  response, image_id}` with the fields of `response` also copied to the top level, because
  AceData's CLI (`midjourney wait`, `midjourney task`) looks for `success`, `image_url` and `error`
  there. The top-level `trace_id` is the retrieve request's own; the task's is in `response`.
- `retrieve_batch`: `ids` and/or `trace_ids` (no ids: the caller's recent tasks, newest first),
  `offset` (default 0), `limit` (default 20, at most 100); `count` is how many tasks match before
  paging. Ids of other users are skipped; `retrieve` of another user's id is 404 `not_found`,
  exactly like an id that does not exist (so ids cannot be probed).
- Errors: `{success: false, error: {code, message}, trace_id}` with 400 `bad_request` (invalid
  field, missing button, unknown image), 400 `token_mismatched` (the key is restricted to other
  actions), 400 `api_not_implemented` (unknown `action` or route), 401 `invalid_token`,
  403 `used_up` (quota), 404 `not_found` (retrieve), 429 `too_many_requests` (per-key limit,
  MJGATE_RATE_LIMIT_PER_MINUTE, with `Retry-After`; also an upstream queue that is full),
  500 `api_error`.
- Accepted but not acted on: `translation` (prompts are sent as written), `split_images` (no
  `sub_image_urls`), `style_reference`, `moodboard`. `version`, `quality` and `hd` become the
  prompt parameters `--v`, `--q` and `--hd` unless the prompt already has them. An explicit
  `mode` is kept upstream (/mj-{mode}/...), as with midjourney-proxy's mode prefixes.
- Transforms map an AceData action to a button of the parent result (see TRANSFORMS); one the
  parent does not offer is a 400 naming the actions it does offer. `variation_region` needs
  `mask` and runs the Vary (Region) button and its modal (mask + `prompt`) in one call.
  `upscale_2x` / `upscale_4x` press v5's 2x / 4x upscaler, or v6's Subtle / Creative one.
- `describe` takes `image_base64` (or `base64`), a data: URI in `image_url`, or an http(s)
  `image_url` that the gateway downloads only from public addresses (checked after DNS, at
  connect time and on each of at most 3 redirects), up to 10 MB, within 20 s.
- Also: `POST /midjourney/seed` (`image_id` -> `{success, image_id, seed}`); any other
  `/midjourney/...` route is 400 `api_not_implemented`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import ipaddress
import json
import re
import socket
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import aiohttp
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from PIL import Image
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mjgate.api.deps import public_base_url
from mjgate.api.envelopes import trace_id_of
from mjgate.api.payloads import MAX_IMAGE_BYTES, MAX_SHORT_TEXT, http_url, image_base64, json_object, prompt_field, \
    redacted, text_field
from mjgate.auth.relay import authenticate
from mjgate.bodies import read_head
from mjgate.errors import BadRequest, Forbidden, GatewayError, NotFound, RateLimited
from mjgate.images.proxy import check_source
from mjgate.models import Channel, Task
from mjgate.netguard import PublicOnlyResolver, is_public_address
from mjgate.ratelimit import Decision, build_rate_limiter, retry_after_header
from mjgate.tasks import repository
from mjgate.tasks.actions import parse_custom_id
from mjgate.tasks.service import Caller, SubmitOutcome, SubmitSpec, TaskService, check_key_allows
from mjgate.tasks.views import image_url_for

log = structlog.get_logger(__name__)

PREFIX = "/midjourney"
DIALECT = "acedata"
MODES = ("fast", "relax", "turbo")
SYNC_TIMEOUT_DEFAULT_S = 300.0
SYNC_TIMEOUT_MAX_S = 600.0
BATCH_LIMIT_DEFAULT = 20
BATCH_LIMIT_MAX = 100
MAX_BATCH_IDS = 1_000
NDJSON = "application/x-ndjson"

# Downloading a describe image_url (SSRF-safe: public addresses only, bounded in size and time).
MAX_DOWNLOAD_BYTES = MAX_IMAGE_BYTES
DOWNLOAD_TIMEOUT_S = 20.0
DOWNLOAD_CONNECT_TIMEOUT_S = 5.0
MAX_REDIRECTS = 3
IMAGE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}

# Reading a result's width and height from the first bytes of its image, once per task.
SIZE_PROBE_BYTES = 64 * 1024
SIZE_PROBE_TIMEOUT_S = 3.0
SIZE_PROBE_CONCURRENCY = 8
SIZE_CACHE_MAX = 20_000

# ----------------------------------------------------------------------------- actions

_J = "MJ::JOB::"
# AceData action name -> customId patterns of the parent's button it presses, best first.
TRANSFORMS: dict[str, tuple[re.Pattern[str], ...]] = {
    **{f"upscale{i}": (re.compile(rf"^{_J}upsample::{i}::"),) for i in range(1, 5)},
    "reroll": (re.compile(rf"^{_J}reroll::"),),
    **{f"variation{i}": (re.compile(rf"^{_J}variation::{i}::"),) for i in range(1, 5)},
    # v5 offers 2x/4x; v6+ offers Subtle/Creative (both 2x): the stronger one stands for 4x.
    "upscale_2x": (re.compile(rf"^{_J}upsample_(?:v\d+_)?2x(?:_subtle)?::"),),
    "upscale_4x": (re.compile(rf"^{_J}upsample_(?:v\d+_)?4x(?:_[a-z]+)?::"),
                   re.compile(rf"^{_J}upsample_(?:v\d+_)?2x_creative::")),
    "variation_subtle": (re.compile(rf"^{_J}low_variation::"),),
    "variation_strong": (re.compile(rf"^{_J}high_variation::"),),
    "variation_region": (re.compile(r"^MJ::Inpaint::"),),
    "zoom_out_2x": (re.compile(r"^MJ::Outpaint::50::"),),
    "zoom_out_1_5x": (re.compile(r"^MJ::Outpaint::75::"),),
    **{f"pan_{d}": (re.compile(rf"^{_J}pan_{d}::"),) for d in ("left", "right", "up", "down")},
}
ACTIONS = ("generate", *TRANSFORMS)
MODAL_ACTION = "variation_region"


def button_for(name: str, buttons: list) -> str | None:
    """The customId of the parent's button that performs AceData action `name`, if it has one."""
    for pattern in TRANSFORMS[name]:
        for button in buttons or []:
            custom_id = button.get("customId") if isinstance(button, dict) else None
            if isinstance(custom_id, str) and pattern.match(custom_id):
                return custom_id
    return None


def available_actions(buttons: list) -> list[str]:
    """AceData action names the buttons offer, in the buttons' order."""
    positions = {b.get("customId"): i for i, b in enumerate(buttons or []) if isinstance(b, dict)}
    found = [(positions[cid], order, name) for order, name in enumerate(TRANSFORMS)
             if (cid := button_for(name, buttons)) is not None]
    return [name for _, _, name in sorted(found)]


def _action_name_of_custom_id(custom_id: str) -> str | None:
    for name, patterns in TRANSFORMS.items():
        if any(p.match(custom_id) for p in patterns):
            return name
    return None


# ----------------------------------------------------------------------------- rendering


def task_type(task: Task) -> str:
    return "describe" if task.action == "DESCRIBE" else "imagine"


def progress_number(task: Task) -> int:
    if task.status == "SUCCESS":
        return 100
    digits = (task.progress or "").strip().rstrip("%").strip()
    try:
        return max(0, min(100, int(float(digits))))
    except ValueError:
        return 0


_NUMERAL = re.compile(r"^\s*(?:[0-9]\ufe0f?\u20e3|\d+\s*[.)、:]|[-*•])\s*")


def descriptions_of(task: Task) -> list[str]:
    """The four prompts of a DESCRIBE result: blank-line separated, keycap numerals stripped."""
    text = task.prompt or (task.properties or {}).get("finalPrompt") or ""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    if len(parts) == 1 and "\n" in parts[0]:
        parts = [p.strip() for p in parts[0].split("\n") if p.strip()]
    return [_NUMERAL.sub("", p, count=1).strip() for p in parts][:4]


def _dimension(properties: dict) -> tuple[int, int] | None:
    for w_key, h_key in (("width", "height"), ("imageWidth", "imageHeight"), ("image_width", "image_height")):
        try:
            width, height = int(properties.get(w_key) or 0), int(properties.get(h_key) or 0)
        except (TypeError, ValueError):
            continue
        if width > 0 and height > 0:
            return width, height
    return None


@dataclass(frozen=True)
class ImageLinks:
    base_url: str
    secret_key: str
    ttl_s: int


def result_json(task: Task, links: ImageLinks, size: tuple[int, int] | None = None) -> dict:
    """The task as AceData's imagine/describe answer; no `success` while it runs (see the docstring)."""
    kind = task_type(task)
    out: dict = {"task_id": task.mj_id}
    if task.trace_id:
        out["trace_id"] = task.trace_id
    if kind == "imagine":
        out["image_id"] = task.mj_id
    out["progress"] = progress_number(task)
    if task.status == "SUCCESS":
        out["success"] = True
        if kind == "describe":
            out["descriptions"] = descriptions_of(task)
        else:
            url = image_url_for(task, links.base_url, links.secret_key, links.ttl_s)
            if url:
                out["image_url"] = url
                out["raw_image_url"] = url
                size = size or _dimension(task.properties or {})
                if size:
                    out["image_width"], out["image_height"] = size
                    out["raw_image_width"], out["raw_image_height"] = size
            if task.video_urls:
                out["video_urls"] = list(task.video_urls)
            out["actions"] = available_actions(task.buttons or [])
    elif task.terminal:
        out["success"] = False
        reason = task.fail_reason or ("the task was cancelled" if task.status == "CANCEL" else "the task failed")
        out["error"] = {"code": "api_error", "message": reason}
    return out


def answer_json(task: Task, links: ImageLinks, size: tuple[int, int] | None = None) -> dict:
    """An imagine/describe answer (and callback body): `success: true` while the task runs."""
    out = result_json(task, links, size)
    out.setdefault("success", True)
    return out


def _request_view(task: Task) -> dict:
    """The request as AceData shows it: ours as sent; a /mj task's described in AceData terms."""
    if task.dialect == DIALECT:
        return dict(task.request or {})
    view: dict = {"mode": task.mode}
    if task.action == "DESCRIBE":
        return view
    request = task.request or {}
    name = None
    if isinstance(request.get("customId"), str):
        name = _action_name_of_custom_id(request["customId"])
    elif task.action in ("UPSCALE", "VARIATION") and str(request.get("index", "")).isdigit():
        name = f"{task.action.lower()}{request['index']}"
    view["action"] = name or ("generate" if task.action == "IMAGINE" else task.action.lower())
    if task.prompt:
        view["prompt"] = task.prompt
    return view


def _seconds(ms: int | None) -> float | None:
    return ms / 1000 if ms else None


def item_json(task: Task, links: ImageLinks, size: tuple[int, int] | None = None) -> dict:
    """A task as seed 003's retrieve item."""
    created = task.created_at or task.submit_time
    finished = task.finish_time if task.terminal else None
    item = {
        "id": task.mj_id,
        "type": task_type(task),
        "created_at": _seconds(created),
        "finished_at": _seconds(finished),
        "duration": max(0, finished - created) / 1000 if finished and created else None,
        "request": _request_view(task),
        "response": result_json(task, links, size),
    }
    if item["type"] == "imagine":
        item["image_id"] = task.mj_id
    return item


def links_for_request(request: Request) -> ImageLinks:
    state = request.app.state
    return ImageLinks(public_base_url(request), state.secret_key, state.settings.image_url_ttl_s)


def callback_payload(service: TaskService, task: Task) -> dict:
    """What a task's callback_url receives (registered with the task service's outbox)."""
    return answer_json(task, ImageLinks(service.base_url_for(task), service.secret_key, service.image_url_ttl_s))


# ----------------------------------------------------------------------------- image sizes

_size_cache: OrderedDict[str, tuple[int, int] | None] = OrderedDict()


def _sniff_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
    except Exception:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _read_head(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SIZE_PROBE_BYTES)


async def _probe_size(request: Request, task: Task) -> tuple[int, int] | None:
    if task.status != "SUCCESS" or task_type(task) != "imagine" or not (task.image_url or task.stored_image):
        return None
    known = _dimension(task.properties or {})
    if known:
        return known
    if task.mj_id in _size_cache:
        _size_cache.move_to_end(task.mj_id)
        return _size_cache[task.mj_id]
    size = None
    copier = getattr(request.app.state.tasks, "image_copier", None)
    stored = copier.store.path_of(task.stored_image) if copier is not None and task.stored_image else None
    try:
        if stored is not None:  # the gateway's own copy: no network
            size = _sniff_size(await asyncio.to_thread(_read_head, stored))
        else:
            async with request.app.state.db.read() as session:
                channel = await session.get(Channel, task.channel_id) if task.channel_id else None
            url = check_source(task.image_url, channel)  # the image proxy's allow-list: no SSRF
            timeout = aiohttp.ClientTimeout(total=SIZE_PROBE_TIMEOUT_S)
            async with request.app.state.http.get(url, headers={"Range": f"bytes=0-{SIZE_PROBE_BYTES - 1}"},
                                                  allow_redirects=False, timeout=timeout) as resp:
                if resp.status in (200, 206):
                    size = _sniff_size(await read_head(resp.content, SIZE_PROBE_BYTES))
    except (GatewayError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        log.info("image size probe failed", task=task.mj_id, error=type(exc).__name__)
        return None  # not cached: the next read tries again
    _size_cache[task.mj_id] = size
    while len(_size_cache) > SIZE_CACHE_MAX:
        _size_cache.popitem(last=False)
    return size


async def _sizes(request: Request, tasks: list[Task]) -> dict[str, tuple[int, int] | None]:
    semaphore = asyncio.Semaphore(SIZE_PROBE_CONCURRENCY)

    async def one(task: Task):
        async with semaphore:
            return task.mj_id, await _probe_size(request, task)

    return dict(await asyncio.gather(*(one(t) for t in tasks)))


# ----------------------------------------------------------------------------- request fields


def _bool(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise BadRequest(f"{name} must be true or false")


def _mode(body: dict) -> str | None:
    mode = text_field(body, "mode").strip().lower()
    if not mode:
        return None
    if mode not in MODES:
        raise BadRequest("mode must be fast, relax or turbo")
    return mode


def _timeout(body: dict) -> float:
    value = body.get("timeout")
    if value is None or value == "":
        return SYNC_TIMEOUT_DEFAULT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadRequest("timeout must be a number of seconds") from None
    if isinstance(value, bool) or not seconds > 0:
        raise BadRequest("timeout must be a positive number of seconds")
    return min(seconds, SYNC_TIMEOUT_MAX_S)


def _id_field(body: dict, *names: str) -> str:
    for name in names:
        value = body.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise BadRequest(f"{name} must be a string")
        text = str(value).strip()
        if not text or len(text) > 64:
            raise BadRequest(f"{name} is not a valid id")
        return text
    return ""


_VERSION = re.compile(r"^\d{1,2}(?:\.\d{1,2})?$")
_QUALITY = re.compile(r"^(?:\.25|\.5|0?\.\d{1,2}|[124])$")


def _has_param(prompt: str, *names: str) -> bool:
    return any(re.search(rf"(?:^|\s)--{n}(?:\s|$)", prompt) for n in names)


def _prompt_with_params(body: dict, prompt: str) -> str:
    """AceData's version/quality/hd fields as Midjourney prompt parameters."""
    version = text_field(body, "version").strip()
    if version:
        if not _VERSION.match(version):
            raise BadRequest("version must look like 6, 6.1 or 7")
        if not _has_param(prompt, "v", "version", "niji"):
            prompt += f" --v {version}"
    quality = text_field(body, "quality").strip()
    if quality:
        if not _QUALITY.match(quality):
            raise BadRequest("quality must be one of .25, .5, 1, 2 or 4")
        if not _has_param(prompt, "q", "quality"):
            prompt += f" --q {quality}"
    if _bool(body, "hd") and not _has_param(prompt, "hd"):
        prompt += " --hd"
    return prompt


@dataclass(frozen=True)
class Delivery:
    """How the client wants the answer."""

    asynchronous: bool
    callback_url: str
    timeout_s: float
    stream: bool


def _delivery(request: Request, body: dict) -> Delivery:
    return Delivery(asynchronous=_bool(body, "async"), callback_url=http_url(body, "callback_url"),
                    timeout_s=_timeout(body), stream=NDJSON in request.headers.get("accept", "").lower())


# ----------------------------------------------------------------------------- describe download


async def _check_public_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("image_url must be an http(s) URL or a data: URI")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError:
            raise BadRequest(f"image_url host {host} cannot be resolved") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise BadRequest(f"image_url host {host} is not a public address; the gateway does not fetch it")


async def download_image(url: str) -> str:
    """Fetch a public image (≤ MAX_DOWNLOAD_BYTES) and return it as a data: URI."""
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(), use_dns_cache=False, limit=2)
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S, connect=DOWNLOAD_CONNECT_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for _ in range(MAX_REDIRECTS + 1):
                await _check_public_url(url)
                async with session.get(url, allow_redirects=False, headers={"Accept": "image/*"}) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise BadRequest(f"image_url answered HTTP {resp.status}")
                    if (resp.content_length or 0) > MAX_DOWNLOAD_BYTES:
                        raise BadRequest(f"image_url is larger than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB")
                    data = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        data += chunk
                        if len(data) > MAX_DOWNLOAD_BYTES:
                            raise BadRequest(f"image_url is larger than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB")
                    break
            else:
                raise BadRequest(f"image_url redirects more than {MAX_REDIRECTS} times")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise BadRequest(f"image_url could not be downloaded: {type(exc).__name__}: {exc}"[:300]) from None
    try:
        with Image.open(io.BytesIO(data)) as picture:
            mime = IMAGE_MIME.get(picture.format or "")
    except Exception:
        mime = None
    if mime is None:
        raise BadRequest("image_url is not a PNG, JPEG, WebP or GIF image")
    return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode()}"


async def _describe_image(body: dict) -> str:
    for name in ("image_base64", "base64"):
        if body.get(name):
            return image_base64(body[name], name)
    url = text_field(body, "image_url", limit=MAX_IMAGE_BYTES * 2).strip()
    if not url:
        raise BadRequest("image_url (or image_base64) is required")
    if url.startswith("data:"):
        return image_base64(url, "image_url")
    return await download_image(url)


# ----------------------------------------------------------------------------- auth, limits, trace ids


def _limiter(app: FastAPI):
    limiter = getattr(app.state, "acedata_rate_limiter", None)
    if limiter is None:
        settings = app.state.settings
        limiter = app.state.acedata_rate_limiter = build_rate_limiter(settings.rate_limit_per_minute,
                                                                      settings.redis_url)
    return limiter


async def acedata_caller(request: Request) -> Caller:
    caller = await authenticate(request)
    bucket = f"key:{caller.key.id}" if caller.key is not None else f"user:{caller.user.id}"
    decision = await _limiter(request.app).hit(bucket)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(f"too many requests: this key may send {decision.limit} per minute; "
                          f"retry in {retry_after_header(decision)} s")
    return caller


CallerDep = Annotated[Caller, Depends(acedata_caller)]


class TraceIdMiddleware:
    """Gives every /midjourney request a trace id (request.state.trace_id, also used by the error
    envelope) and puts it, and the rate-limit state, into the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        trace = state.setdefault("trace_id", str(uuid.uuid4()))
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers["X-Trace-Id"] = trace
                decision: Decision | None = state.get("rate_limit")
                if decision is not None and decision.limit:
                    headers["X-RateLimit-Limit"] = str(decision.limit)
                    headers["X-RateLimit-Remaining"] = str(decision.remaining)
                    if not decision.allowed:
                        headers["Retry-After"] = retry_after_header(decision)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started:
                raise
            log.exception("unhandled error", path=scope["path"])
            body = {"success": False, "error": {"code": "api_error",
                                                "message": "internal error; the request was not completed"},
                    "trace_id": trace}
            await JSONResponse(body, status_code=500, headers={"X-Trace-Id": trace})(scope, receive, send)


# ----------------------------------------------------------------------------- submit and answer


def _error(request: Request, status: int, code: str, message: str, **extra) -> JSONResponse:
    body = {"success": False, "error": {"code": code, "message": message}, "trace_id": trace_id_of(request), **extra}
    return JSONResponse(body, status_code=status)


def _refusal(outcome: SubmitOutcome) -> GatewayError:
    message = outcome.description or "refused by the upstream"
    if outcome.code in (4, 24):
        return BadRequest(f"refused: {message}")
    if outcome.code == 23:
        return RateLimited(f"the upstream queue is full, try again later: {message}")
    return GatewayError(f"the upstream could not take the task (code {outcome.code}): {message}",
                        status=500, code="api_error")


async def _submit(request: Request, caller: Caller, spec: SubmitSpec) -> Task:
    try:
        check_key_allows(caller, spec.action)
    except Forbidden as exc:
        raise BadRequest(exc.message, code="token_mismatched") from None
    try:
        outcome = await request.app.state.tasks.submit(caller, spec)
    except NotFound as exc:
        # No channel for this action/mode, or the parent's channel is gone: the gateway's side.
        raise GatewayError(exc.message, status=500, code="api_error") from None
    if outcome.task is None:
        raise _refusal(outcome)
    return outcome.task


async def _own_task(request: Request, caller: Caller, ref: str, what: str = "task") -> Task:
    async with request.app.state.db.read() as session:
        task = await repository.get_by_mj_id(session, ref)
    if task is None or task.user_id != caller.user.id:
        raise NotFound(f"{what} {ref} not found")
    return task


async def _wait(request: Request, task: Task, timeout_s: float) -> Task | None:
    """wait_terminal, abandoned early (None) if the client goes away."""
    service: TaskService = request.app.state.tasks
    waiter = asyncio.create_task(service.wait_terminal(task, timeout_s))

    async def gone() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(gone())
    try:
        done, _ = await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return waiter.result() if waiter in done else None


async def _final_answer(request: Request, task: Task) -> Response:
    links = links_for_request(request)
    if task.terminal and task.status != "SUCCESS":
        result = result_json(task, links)
        return _error(request, 500, "api_error", result["error"]["message"], task_id=task.mj_id)
    size = await _probe_size(request, task)
    return JSONResponse(answer_json(task, links, size))


def _stream(request: Request, task: Task, delivery: Delivery) -> StreamingResponse:
    links = links_for_request(request)
    lines: asyncio.Queue = asyncio.Queue()

    last: list[dict] = [answer_json(task, links)]

    async def on_change(changed: Task) -> None:
        line = answer_json(changed, links)
        if not changed.terminal and line != last[0]:
            last[0] = line
            await lines.put(line)

    async def produce() -> None:
        try:
            final = await request.app.state.tasks.wait_terminal(task, delivery.timeout_s, on_change=on_change)
            size = await _probe_size(request, final)
            await lines.put(answer_json(final, links, size))
        except Exception:
            log.exception("acedata stream failed", task=task.mj_id)
        finally:
            await lines.put(None)

    async def body():
        producer = asyncio.create_task(produce())
        try:
            yield json.dumps(last[0], ensure_ascii=False) + "\n"
            while (line := await lines.get()) is not None:
                yield json.dumps(line, ensure_ascii=False) + "\n"
        finally:
            producer.cancel()

    return StreamingResponse(body(), media_type=NDJSON, headers={"Cache-Control": "no-cache",
                                                                 "X-Accel-Buffering": "no"})


async def _deliver(request: Request, task: Task, delivery: Delivery) -> Response:
    if delivery.stream and not delivery.asynchronous:
        return _stream(request, task, delivery)
    if delivery.asynchronous or delivery.callback_url:
        # Progress reaches a callback_url through the task service's webhook outbox.
        return JSONResponse({"success": True, "task_id": task.mj_id, "trace_id": trace_id_of(request)})
    final = await _wait(request, task, delivery.timeout_s)
    if final is None:
        return Response(status_code=499)  # nobody is listening any more
    return await _final_answer(request, final)


def _spec(request: Request, client_body: dict, delivery: Delivery, **fields) -> SubmitSpec:
    return SubmitSpec(notify_hook=delivery.callback_url, request=redacted(client_body), dialect=DIALECT,
                      trace_id=trace_id_of(request), public_base=public_base_url(request), **fields)


async def _imagine_task(request: Request, caller: Caller, body: dict, delivery: Delivery) -> Task:
    action = text_field(body, "action").strip().lower() or "generate"
    if action not in ACTIONS:
        raise BadRequest(f"action {action[:64]!r} is not implemented; use one of: {', '.join(ACTIONS)}",
                         code="api_not_implemented")
    mode = _mode(body)
    if action == "generate":
        prompt = _prompt_with_params(body, prompt_field(body))
        return await _submit(request, caller, _spec(
            request, body, delivery, action="IMAGINE", path="/submit/imagine",
            body={"prompt": prompt, "base64Array": [], "botType": "MID_JOURNEY"}, prompt=prompt,
            mode=mode or "fast", explicit_mode=mode is not None))

    ref = _id_field(body, "image_id", "task_id")
    if not ref:
        raise BadRequest(f"image_id is required for action {action}")
    mask = None
    if action == MODAL_ACTION:
        if not body.get("mask"):
            raise BadRequest("mask (a base64 image or data: URI; white marks the region to vary) is required "
                             "for variation_region")
        mask = image_base64(body["mask"], "mask")
    modal_prompt = prompt_field(body, required=False) if action == MODAL_ACTION else ""
    parent = await _own_task(request, caller, ref, "image")
    parent = await request.app.state.tasks.refresh(parent)
    if parent.status != "SUCCESS":
        raise BadRequest(f"image {parent.mj_id} is {parent.status}; it can be transformed once it has succeeded")
    custom_id = button_for(action, parent.buttons or [])
    if custom_id is None:
        offered = ", ".join(available_actions(parent.buttons or [])) or "none"
        raise BadRequest(f"action {action} is not available for image {parent.mj_id} (available: {offered})")
    task = await _submit(request, caller, _spec(
        request, body, delivery, action=parse_custom_id(custom_id).action, path="/submit/action",
        body={"taskId": "{task}", "customId": custom_id}, parent=parent, prompt=parent.prompt,
        bot_type=parent.bot_type, mode=mode or parent.mode, explicit_mode=mode is not None))
    if action == MODAL_ACTION and task.status == "MODAL":
        # Vary (Region) is two steps upstream (the button, then the modal with the mask); one call here.
        upstream = {"prompt": modal_prompt or parent.prompt, "maskBase64": mask}
        outcome = await request.app.state.tasks.submit_modal(caller, task, upstream)
        if outcome.code not in (1, 22):
            raise _refusal(outcome)
        task = outcome.task or task
    return task


# ----------------------------------------------------------------------------- tasks endpoint


def _str_list(body: dict, name: str) -> list[str]:
    values = body.get(name)
    if values is None or values == "":
        return []
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise BadRequest(f"{name} must be an array of ids")
    if len(values) > MAX_BATCH_IDS:
        raise BadRequest(f"at most {MAX_BATCH_IDS} {name} per call")
    return list(dict.fromkeys(str(v).strip()[:64] for v in values if str(v).strip()))


def _int(body: dict, name: str, default: int, maximum: int | None = None) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer") from None
    if isinstance(value, bool) or number < 0:
        raise BadRequest(f"{name} must be a non-negative integer")
    return min(number, maximum) if maximum is not None else number


async def _retrieve(request: Request, caller: Caller, body: dict) -> dict:
    ref = _id_field(body, "id", "task_id")
    trace = _id_field(body, "trace_id")
    if not ref and not trace:
        raise BadRequest("id or trace_id is required")
    if ref:
        task = await _own_task(request, caller, ref)
    else:
        async with request.app.state.db.read() as session:
            task = await repository.get_by_trace_id(session, trace, caller.user.id)
        if task is None:
            raise NotFound(f"no task with trace_id {trace}")
    task = await request.app.state.tasks.refresh(task)
    item = item_json(task, links_for_request(request), await _probe_size(request, task))
    response = item["response"]
    # AceData's CLI reads success / image_url / error at the top level (see the module docstring).
    return {**response, **item, "success": response.get("success", True), "trace_id": trace_id_of(request)}


async def _retrieve_batch(request: Request, caller: Caller, body: dict) -> dict:
    ids = _str_list(body, "ids")
    traces = _str_list(body, "trace_ids")
    offset = _int(body, "offset", 0)
    limit = _int(body, "limit", BATCH_LIMIT_DEFAULT, BATCH_LIMIT_MAX) or BATCH_LIMIT_DEFAULT
    async with request.app.state.db.read() as session:
        if ids or traces:
            found = await repository.get_many_by_mj_ids(session, ids, caller.user.id)
            found += await repository.get_many_by_trace_ids(session, traces, caller.user.id)
            by_id = {t.mj_id: t for t in found}
            by_trace: dict[str, Task] = {}
            for t in sorted(found, key=lambda t: (t.submit_time, t.id), reverse=True):
                if t.trace_id:
                    by_trace.setdefault(t.trace_id, t)
            ordered = [by_id[i] for i in ids if i in by_id] + [by_trace[t] for t in traces if t in by_trace]
            ordered = list({t.mj_id: t for t in ordered}.values())
            total, page = len(ordered), ordered[offset:offset + limit]
        else:
            page, total = await repository.list_tasks(session, repository.TaskFilter(user_id=caller.user.id),
                                                      offset, limit)
    links = links_for_request(request)
    sizes = await _sizes(request, page)
    return {"items": [item_json(t, links, sizes.get(t.mj_id)) for t in page], "count": total,
            "trace_id": trace_id_of(request)}


# ----------------------------------------------------------------------------- routes


def make_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["AceData-style API"])

    @router.post("/imagine", summary="Generate or transform an image (AceData Midjourney Imagine)")
    @router.post("/imagine/", include_in_schema=False)
    async def imagine(request: Request, caller: CallerDep):
        body = await json_object(request)
        delivery = _delivery(request, body)
        task = await _imagine_task(request, caller, body, delivery)
        return await _deliver(request, task, delivery)

    @router.post("/describe", summary="Four prompts for an image (AceData Midjourney Describe)")
    @router.post("/describe/", include_in_schema=False)
    async def describe(request: Request, caller: CallerDep):
        body = await json_object(request)
        delivery = _delivery(request, body)
        mode = _mode(body)
        image = await _describe_image(body)
        task = await _submit(request, caller, _spec(
            request, body, delivery, action="DESCRIBE", path="/submit/describe", body={"base64": image},
            mode=mode or "fast", explicit_mode=mode is not None))
        return await _deliver(request, task, delivery)

    @router.post("/tasks", summary="Retrieve tasks (AceData Midjourney Tasks)")
    @router.post("/tasks/", include_in_schema=False)
    async def tasks(request: Request, caller: CallerDep):
        body = await json_object(request)
        action = text_field(body, "action", limit=64).strip().lower()
        if not action:
            action = "retrieve_batch" if body.get("ids") or body.get("trace_ids") else "retrieve"
        if action == "retrieve":
            return await _retrieve(request, caller, body)
        if action == "retrieve_batch":
            return await _retrieve_batch(request, caller, body)
        raise BadRequest(f"action {action!r} is not implemented; use retrieve or retrieve_batch",
                         code="api_not_implemented")

    @router.post("/seed", summary="The seed of a result (AceData Midjourney Seed)")
    @router.post("/seed/", include_in_schema=False)
    async def seed(request: Request, caller: CallerDep):
        body = await json_object(request)
        ref = _id_field(body, "image_id", "task_id")
        if not ref:
            raise BadRequest("image_id is required")
        task = await _own_task(request, caller, ref, "image")
        answer = await request.app.state.tasks.image_seed(task)
        if answer.get("code") != 1 or answer.get("result") in (None, ""):
            raise BadRequest(f"no seed for image {task.mj_id}: {answer.get('description') or 'not available'}")
        return {"success": True, "image_id": task.mj_id, "seed": str(answer["result"]),
                "trace_id": trace_id_of(request)}

    @router.post("/{name:path}", include_in_schema=False)
    async def not_implemented(name: str, request: Request, caller: CallerDep):
        raise BadRequest(f"{PREFIX}/{name[:MAX_SHORT_TEXT]} is not implemented by this gateway",
                         code="api_not_implemented")

    return router


def install(app: FastAPI) -> None:
    """Routes, the trace-id middleware, and (at startup) the callback renderer and rate limiter."""
    app.include_router(make_router())
    app.add_middleware(TraceIdMiddleware)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application):
        async with inner(application) as state:
            service: TaskService = application.state.tasks
            service.payload_renderers[DIALECT] = lambda task: callback_payload(service, task)
            settings = application.state.settings
            limiter = application.state.acedata_rate_limiter = build_rate_limiter(
                settings.rate_limit_per_minute, settings.redis_url)
            try:
                yield state
            finally:
                await limiter.close()

    app.router.lifespan_context = lifespan
