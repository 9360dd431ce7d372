"""The midjourney-proxy dialect without I/O: routes, auth headers, request bodies, answers to errors.

Shared by the sync and the async client so both speak exactly the same protocol; only the
transport (httpx.Client or httpx.AsyncClient) differs.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from mjgate import __version__
from mjgate.client.errors import (
    AuthError, MjgateError, NotFoundError, QuotaError, RateLimitError, RefusedError,
)
from mjgate.client.models import SubmitAnswer, Task

MODES = ("fast", "relax", "turbo")
AUTH_SCHEMES = ("bearer", "mj-api-secret")
USER_AGENT = f"mjgate-client/{__version__}"
EVENTS_PATH = "/mj/task/events"
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # what the gateway accepts per image; refuse bigger before uploading
# midjourney-proxy's refusal codes, in words for the one-line error.
_CODE_MEANING = {3: "not found", 4: "invalid request", 9: "upstream error", 23: "queue full", 24: "banned prompt"}
# How gateways phrase "no quota": mjgate "insufficient quota", new-api "quota_not_enough", AceData "used_up".
_QUOTA_WORDS = re.compile(r"quota|used_up|insufficient balance|余额", re.IGNORECASE)


def base_url_of(url: str) -> str:
    """The server root. Accepts a trailing slash or '/mj' (how midjourney-proxy URLs are often given)."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MjgateError(f"gateway URL must be an absolute http(s) URL, got {url!r}")
    if url.endswith("/mj"):
        url = url[: -len("/mj")]
    return url


def auth_headers(key: str, auth: str = "bearer") -> dict[str, str]:
    """`Authorization: Bearer sk-...` (mjgate, new-api), or only `mj-api-secret` (midjourney-proxy)."""
    if auth not in AUTH_SCHEMES:
        raise MjgateError(f"auth must be one of {', '.join(AUTH_SCHEMES)}, got {auth!r}")
    if not key:
        return {}
    if auth == "mj-api-secret":
        return {"mj-api-secret": key}
    return {"Authorization": f"Bearer {key}"}


def submit_path(route: str, mode: str | None = None) -> str:
    """/mj/submit/<route>, under /mj-<mode> when a speed mode is asked for (the gateways' convention)."""
    if mode is None or mode == "":
        return f"/mj/submit/{route}"
    mode = mode.lower()
    if mode not in MODES:
        raise MjgateError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return f"/mj-{mode}/mj/submit/{route}"


def same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def absolute(url: str, base_url: str) -> str:
    return urljoin(base_url + "/", url)


# ---------------------------------------------------------------- answers


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (ValueError, UnicodeDecodeError):
        return None


def message_of(body: Any, fallback: str) -> str:
    """The human message in any of the dialects' envelopes."""
    if isinstance(body, dict):
        for key in ("description", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str) and error.strip():
            return error.strip()
    return fallback


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raise_for_status(resp: httpx.Response) -> Any:
    """The parsed JSON of a 2xx answer; any other status becomes the fitting typed error."""
    body = _json_or_none(resp)
    status = resp.status_code
    if 200 <= status < 300:
        return body
    text = resp.text if body is None else ""
    message = _one_line(message_of(body, text.strip() or resp.reason_phrase or "request failed"))
    where = f"(HTTP {status})"
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, dict):  # some envelopes nest the code
        code = None
    if status == 401:
        raise AuthError(f"{message} {where}", status=status, code=code, body=body)
    if status == 403:
        if _QUOTA_WORDS.search(message) or code == "used_up":
            raise QuotaError(f"{message} {where}", status=status, code=code, body=body)
        raise AuthError(f"{message} {where}", status=status, code=code, body=body)
    if status == 404:
        raise NotFoundError(f"{message} {where}", status=status, code=code, body=body)
    if status == 429:
        raise RateLimitError(f"{message} {where}", status=status, code=code, body=body)
    raise MjgateError(f"{message} {where}", status=status, code=code, body=body)


def submit_answer(resp: httpx.Response) -> SubmitAnswer:
    """A submit route's answer; refusals (any code but 1, 21, 22) raise."""
    body = raise_for_status(resp)
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        raise MjgateError(f"unexpected answer from {resp.request.url.path}: {_one_line(resp.text, 200)}",
                          status=resp.status_code, body=body)
    answer = SubmitAnswer.model_validate(body)
    if answer.accepted:
        return answer
    description = _one_line(answer.description or _CODE_MEANING.get(answer.code, "refused"))
    message = f"{description} (code {answer.code})"
    if _QUOTA_WORDS.search(description):
        raise QuotaError(message, code=answer.code, body=body)
    if answer.code == 3 and "not found" in description.lower():
        raise NotFoundError(message, code=answer.code, body=body)
    raise RefusedError(message, code=answer.code, body=body)


def task_of(resp: httpx.Response) -> Task:
    body = raise_for_status(resp)
    if not isinstance(body, dict) or not body.get("id"):
        # midjourney-proxy answers an unknown id with HTTP 200 and an empty body.
        raise NotFoundError(f"task not found ({resp.request.url.path})", status=resp.status_code, body=body)
    return Task.model_validate(body)


def tasks_of(resp: httpx.Response) -> list[Task]:
    body = raise_for_status(resp)
    if isinstance(body, dict):  # some servers wrap lists: {"list": [...]} / {"data": [...]} / {"items": [...]}
        body = next((body[k] for k in ("list", "data", "items", "content") if isinstance(body.get(k), list)), [])
    if not isinstance(body, list):
        raise MjgateError(f"unexpected answer from {resp.request.url.path}: {_one_line(resp.text, 200)}")
    return [Task.model_validate(item) for item in body if isinstance(item, dict) and item.get("id")]


def event_update(task: Task, data: str) -> Task | None:
    """The task as one SSE `task` event changes it, or None when the event is about another task."""
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict) or str(event.get("mj_id", "")) != task.id:
        return None
    changes: dict[str, Any] = {}
    for field in ("status", "progress", "fail_reason"):
        if isinstance(event.get(field), str):
            changes[field] = event[field]
    return task.model_copy(update=changes)


# ---------------------------------------------------------------- images

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"), (b"BM", "image/bmp"),
]


def sniff_image(data: bytes) -> str | None:
    """The image's MIME type from its first bytes, None when it is not an image we know."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if data.startswith(magic)), None)


def data_uri(data: bytes, source: str) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise MjgateError(f"{source} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    mime = sniff_image(data)
    if mime is None:
        raise MjgateError(f"{source} is not a PNG, JPEG, GIF, WebP or BMP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def imagine_body(prompt: str, image_uris: list[str], image_urls: list[str], *, bot_type: str | None,
                 notify_hook: str | None, state: str | None) -> dict:
    """Image URLs go first in the prompt (Midjourney's own image-prompt syntax, no upload needed);
    local files go as base64Array."""
    text = " ".join([*image_urls, prompt.strip()]).strip()
    body: dict[str, Any] = {"prompt": text}
    if image_uris:
        body["base64Array"] = image_uris
    return common_fields(body, bot_type=bot_type, notify_hook=notify_hook, state=state)


def common_fields(body: dict, *, bot_type: str | None = None, notify_hook: str | None = None,
            state: str | None = None) -> dict:
    if bot_type:
        body["botType"] = bot_type
    if notify_hook:
        body["notifyHook"] = notify_hook
    if state is not None:
        body["state"] = state
    return body

