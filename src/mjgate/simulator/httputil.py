"""Small HTTP helpers shared by the middleware and the route modules."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MODE_PREFIXES = {"/mj-fast": "fast", "/mj-relax": "relax", "/mj-turbo": "turbo"}
ROUTE_PREFIXES = ("", *MODE_PREFIXES)
# Result files behave like a CDN: no secret, because real clients fetch them with a plain GET.
MEDIA_PATHS = ("/mj/image/", "/mj/video/", "/mj/attachments/")

dumps = functools.partial(json.dumps, ensure_ascii=False)
_BODY = web.RequestKey("mjgate.simulator.body", object)


class _Invalid:
    def __init__(self, error: str) -> None:
        self.error = error


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart/form-data body (video-swap's `targetFile`)."""

    filename: str
    content_type: str
    data: bytes


def json_reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def split_mode(path: str) -> tuple[str | None, str]:
    """The speed mode a `/mj-fast|relax|turbo` prefix selects, and the path without it."""
    for prefix, mode in MODE_PREFIXES.items():
        if path.startswith(prefix + "/"):
            return mode, path[len(prefix) :]
    return None, path


async def _read_form(request: web.Request) -> dict | _Invalid:
    try:
        form = await request.post()
    except ValueError as exc:
        return _Invalid(f"multipart body could not be read: {exc}")
    body: dict[str, Any] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            body[key] = Upload(value.filename, value.content_type, value.file.read())
        else:
            body[key] = value
    return body


async def read_json(request: web.Request) -> Any:
    """Parse the body once per request; a body that is not JSON yields an `_Invalid`.

    A form, multipart or urlencoded (midjourney-proxy's video-swap takes one), becomes a dict of its
    fields, file parts as `Upload`s.
    """
    if _BODY not in request:
        parsed: Any = None
        if request.content_type.startswith("multipart/") or request.content_type == "application/x-www-form-urlencoded":
            parsed = await _read_form(request)
        elif request.body_exists:
            raw = await request.read()
            if raw.strip():
                try:
                    parsed = json.loads(raw)
                except (UnicodeDecodeError, ValueError) as exc:
                    parsed = _Invalid(f"request body is not valid JSON: {exc}")
        request[_BODY] = parsed
    return request[_BODY]


def logged_json(value: Any) -> Any:
    if isinstance(value, _Invalid):
        return None
    if isinstance(value, dict) and any(isinstance(v, Upload) for v in value.values()):
        return {
            k: {"filename": v.filename, "contentType": v.content_type, "bytes": len(v.data)} if isinstance(v, Upload) else v
            for k, v in value.items()
        }
    return value


def body_object(value: Any) -> dict | str:
    """The body as a dict, or the reason it cannot be one."""
    if isinstance(value, _Invalid):
        return value.error
    if value is None:
        return "request body is empty; a JSON object is required"
    if not isinstance(value, dict):
        return "request body must be a JSON object"
    return value
