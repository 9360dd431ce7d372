"""The midjourney-proxy upstream kind: its routes, its codes, its task JSON (aiohttp, one session per process)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp

from mjgate.bodies import BodyTooLarge, read_body
from mjgate.errors import Kind
from mjgate.models import Channel
from mjgate.models.task import STATUSES
from mjgate.upstream.port import CancelUnsupported, NoSeed, Snapshot, SubmitAnswer, UpstreamUnavailable

SUBMIT_TIMEOUT_S = 30
FETCH_TIMEOUT_S = 15
CONNECT_TIMEOUT_S = 5  # below every total timeout, so a timeout while connecting is told apart
MAX_UPSTREAM_BODY = 8 * 1024 * 1024

ROUTES = {
    "imagine": "/submit/imagine", "change": "/submit/change", "simple_change": "/submit/simple-change",
    "action": "/submit/action", "describe": "/submit/describe", "blend": "/submit/blend",
    "shorten": "/submit/shorten", "video": "/submit/video", "edits": "/submit/edits",
    "upload": "/submit/upload-discord-images", "swap_face": "/insight-face/swap", "modal": "/submit/modal",
    "retexture": "/submit/retexture", "swap_video_face": "/insight-face/video-swap",
}
# 1 accepted, 21 accepted but waiting for a modal, 22 accepted into the upstream's queue.
ACCEPTED_CODES = {1, 21, 22}
# Refusals before acceptance, in the core's terms; queue full, system error and "no account" may
# not be shared by another channel (3 on a follow-up means "parent unknown": there is no other channel).
REFUSALS = {4: Kind.INVALID, 24: Kind.BANNED, 23: Kind.QUEUE_FULL, 9: Kind.UNAVAILABLE, 3: Kind.NO_CHANNEL}
RETRYABLE_CODES = {23, 9, 3}
# Routes the most-used fork binds from a form ([FromForm]), not JSON: sent as multipart/form-data.
FORM_OPERATIONS = frozenset({"swap_video_face"})
# The task id in follow-up bodies; the simple-change content starts with it.
PARENT_FIELD = {"change": "taskId", "action": "taskId", "video": "taskId"}


def _headers(secret: str) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if secret:
        headers["mj-api-secret"] = secret
    return headers


def _form(body: dict) -> aiohttp.FormData:
    """A submit body as a multipart form: a file (a dict with base64, as the gateway keeps it) as a
    file part, objects as JSON text, None left out."""
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in body.items():
        if value is None:
            continue
        if isinstance(value, dict) and "base64" in value:
            form.add_field(name, base64.b64decode(value["base64"]), filename=value.get("filename") or name,
                           content_type=value.get("contentType") or "application/octet-stream")
        elif isinstance(value, (dict, list)):
            form.add_field(name, json.dumps(value), content_type="application/json")
        else:
            form.add_field(name, str(value).lower() if isinstance(value, bool) else str(value))
    return form


def _route(base_url: str, path: str, mode: str | None) -> str:
    """Keep an explicit speed mode in the path (/mj-relax/mj/...), which upstreams that support modes honour."""
    prefix = f"/mj-{mode}" if mode else ""
    return f"{base_url.rstrip('/')}{prefix}/mj{path}"


def answer_of(data: Any, *, follow_up: bool) -> SubmitAnswer:
    if not isinstance(data, dict) or "code" not in data:
        raise UpstreamUnavailable("submit answer has no code")
    try:
        code = int(data["code"])
    except (TypeError, ValueError):
        raise UpstreamUnavailable(f"submit answer has a non-numeric code {data['code']!r}") from None
    properties = data.get("properties") if isinstance(data.get("properties"), dict) else {}
    description = str(data.get("description") or "")
    result = data.get("result")
    if code in ACCEPTED_CODES:
        upstream_id = str(result) if isinstance(result, (str, int)) and str(result) else None
        position = properties.get("numberOfQueues") if code == 22 else None
        return SubmitAnswer(code, description, upstream_id, accepted=True, needs_modal=code == 21,
                            queue_position=position if isinstance(position, int) else None, result=result,
                            properties=properties)
    return SubmitAnswer(code, description, refusal=REFUSALS.get(code, Kind.UNAVAILABLE),
                        retryable=code in RETRYABLE_CODES and not follow_up, properties=properties)


def _text(value, limit: int = 65_535) -> str:
    return str(value)[:limit] if value is not None else ""


def _ms(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def snapshot_of(payload: Any) -> Snapshot | None:
    """A midjourney-proxy task JSON in task-column terms (fields it lacks are left out)."""
    if not isinstance(payload, dict) or not payload.get("id"):
        return None
    snap: Snapshot = {"id": str(payload["id"])}
    if payload.get("status") in STATUSES:
        snap["status"] = payload["status"]
    if "progress" in payload:
        snap["progress"] = _text(payload.get("progress"), 8).strip()
    for column, key in (("image_url", "imageUrl"), ("video_url", "videoUrl"), ("prompt_en", "promptEn"),
                        ("description", "description"), ("fail_reason", "failReason"), ("prompt", "prompt")):
        if key in payload and payload[key] is not None:
            snap[column] = _text(payload[key])
    if isinstance(payload.get("videoUrls"), list):
        snap["video_urls"] = [v.get("url") if isinstance(v, dict) else str(v) for v in payload["videoUrls"]]
    if isinstance(payload.get("buttons"), list):
        snap["buttons"] = [b for b in payload["buttons"] if isinstance(b, dict) and b.get("customId")]
    if isinstance(payload.get("properties"), dict):
        snap["properties"] = payload["properties"]
    for column, key in (("start_time", "startTime"), ("finish_time", "finishTime")):
        if (value := _ms(payload.get(key))) is not None:
            snap[column] = value
    return snap


class MidjourneyProxyUpstream:
    def __init__(self, session: aiohttp.ClientSession, *, submit_timeout_s: float = SUBMIT_TIMEOUT_S):
        self.session = session
        self.submit_timeout_s = submit_timeout_s

    async def _request(self, method: str, url: str, secret: str, *, body: Any = None, timeout_s: float,
                       extra_headers: dict | None = None, empty: Any = None, as_form: bool = False) -> Any:
        headers = {**_headers(secret), **(extra_headers or {})}
        payload: dict = {"json": body}
        if as_form:  # aiohttp writes the multipart Content-Type with its boundary
            headers.pop("Content-Type")
            payload = {"data": _form(body)}
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        try:
            async with self.session.request(method, url, headers=headers, timeout=timeout, **payload) as resp:
                raw = await read_body(resp.content, MAX_UPSTREAM_BODY)
                status = resp.status
        except BodyTooLarge as exc:
            raise UpstreamUnavailable(str(exc)) from None
        except ValueError as exc:  # e.g. a secret aiohttp refuses to put in a header: nothing was sent
            raise UpstreamUnavailable(f"the request could not be sent: {exc}") from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Never connected: nothing was sent.
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}".strip(": ")) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}".strip(": ") or "timed out",
                                      maybe_taken=True) from exc
        if status >= 500 or status in (401, 403, 429):
            raise UpstreamUnavailable(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        if status == 404:
            return None  # no such task, or no such route: whatever the body says
        if not raw.strip() and status < 400:
            return empty
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            raise UpstreamUnavailable(f"HTTP {status}: answer is not JSON") from None
        if status >= 400 and not isinstance(data, dict):
            raise UpstreamUnavailable(f"HTTP {status}")
        return data

    async def submit(self, channel: Channel, operation: str, params: dict, *, mode: str | None,
                     parent_upstream_id: str | None, notify_url: str | None) -> SubmitAnswer:
        body = dict(params)
        if parent_upstream_id is not None:
            if operation == "simple_change":
                body["content"] = f"{parent_upstream_id} {body.pop('op')}"
            elif operation in PARENT_FIELD:
                body[PARENT_FIELD[operation]] = parent_upstream_id
        if notify_url:
            body["notifyHook"] = notify_url
        data = await self._request("POST", _route(channel.base_url, ROUTES[operation], mode), channel.secret,
                                   body=body, timeout_s=self.submit_timeout_s, as_form=operation in FORM_OPERATIONS)
        return answer_of(data, follow_up=parent_upstream_id is not None)

    async def modal(self, channel: Channel, upstream_id: str, params: dict, *, notify_url: str | None) -> SubmitAnswer:
        body = {**params, "taskId": upstream_id}
        if notify_url:
            body["notifyHook"] = notify_url
        data = await self._request("POST", _route(channel.base_url, ROUTES["modal"], None), channel.secret,
                                   body=body, timeout_s=self.submit_timeout_s)
        return answer_of(data, follow_up=True)

    async def fetch(self, channel: Channel, upstream_id: str) -> Snapshot | None:
        data = await self._request("GET", _route(channel.base_url, f"/task/{upstream_id}/fetch", None),
                                   channel.secret, timeout_s=FETCH_TIMEOUT_S)
        return snapshot_of(data)

    async def list(self, channel: Channel, upstream_ids: list[str], *, poller: str | None = None) -> list[Snapshot]:
        # The poller names itself, so an upstream's logs (and the tests) can tell instances apart.
        extra = {"X-Mjgate-Poller": poller} if poller else None
        data = await self._request("POST", _route(channel.base_url, "/task/list-by-condition", None), channel.secret,
                                   body={"ids": upstream_ids}, timeout_s=FETCH_TIMEOUT_S, extra_headers=extra)
        if data is None:
            return []
        if not isinstance(data, list):
            raise UpstreamUnavailable("list-by-condition answer is not an array")
        return [snap for item in data if (snap := snapshot_of(item)) is not None]

    async def seed(self, channel: Channel, upstream_id: str) -> str:
        data = await self._request("GET", _route(channel.base_url, f"/task/{upstream_id}/image-seed", None),
                                   channel.secret, timeout_s=FETCH_TIMEOUT_S)
        if not isinstance(data, dict):
            raise NoSeed("the upstream has no seed for this task")
        if data.get("code", 1) != 1 or data.get("result") in (None, ""):
            raise NoSeed(str(data.get("description") or "not available"))
        return str(data["result"])

    async def cancel(self, channel: Channel, upstream_id: str) -> tuple[bool, str]:
        # trueai-org's fork answers an empty 200 once it has cancelled; others answer {code, description}.
        data = await self._request("POST", _route(channel.base_url, f"/task/{upstream_id}/cancel", None),
                                   channel.secret, timeout_s=FETCH_TIMEOUT_S,
                                   empty={"code": 1, "description": "Cancelled"})
        if data is None:
            raise CancelUnsupported(f"channel {channel.id} has no cancel route")
        if not isinstance(data, dict):
            raise UpstreamUnavailable("cancel answer is not an object")
        return data.get("code") == 1, str(data.get("description") or "")

    async def probe(self, channel: Channel) -> None:
        # list-by-condition of no ids: the cheapest authenticated call every midjourney-proxy has.
        await self._request("POST", _route(channel.base_url, "/task/list-by-condition", None), channel.secret,
                            body={"ids": []}, timeout_s=FETCH_TIMEOUT_S)

    def snapshot(self, payload: Any) -> Snapshot | None:
        return snapshot_of(payload)

