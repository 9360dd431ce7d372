"""Request-body checks shared by the relay dialects: JSON objects, prompts, base64 images, URLs."""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import urlsplit

from fastapi import Request

from mjgate.errors import BadRequest

MAX_BODY_BYTES = 40 * 1024 * 1024  # a blend of five large images fits; anything bigger is refused unread
MAX_PROMPT_CHARS = 8_192  # Midjourney's own limit is lower; the upstream has the last word
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_SHORT_TEXT = 2_048
# A video sent as a file part (video-swap's targetFile). Kept as base64 with the task while it waits
# in the queue, so it must fit one row: 10 MB is 13.4 MB of base64, under MariaDB's 16 MB packet.
MAX_FILE_BYTES = 10 * 1024 * 1024
FORM_BODIES = ("multipart/form-data", "application/x-www-form-urlencoded")
PARSED_BODY = "parsed_json_body"  # request state: the body api/inputs.InputGuard already parsed and checked
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.S)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(f"request body larger than {MAX_BODY_BYTES // (1024 * 1024)} MB", status=413)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest(f"request body larger than {MAX_BODY_BYTES // (1024 * 1024)} MB", status=413)
    return bytes(raw)


async def form_or_json(request: Request) -> dict:
    """A JSON object, or a form (multipart or urlencoded) as a dict of its text fields; a file part
    becomes {"filename", "contentType", "base64"}. For the routes midjourney-proxy's fork takes as a
    form (video-swap), which its clients send as multipart/form-data."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in FORM_BODIES:
        return await json_object(request)
    raw = await _bounded_body(request)

    async def replay() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=64)
    except Exception as exc:  # python-multipart's errors for a malformed body
        raise BadRequest(f"the form could not be read: {str(exc)[:200] or type(exc).__name__}") from None
    body: dict = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            body[name] = value
            continue
        data = await value.read()
        await value.close()
        if not data:
            raise BadRequest(f"{name[:64]} is an empty file")
        if len(data) > MAX_FILE_BYTES:
            raise BadRequest(f"{name[:64]} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", status=413)
        body[name] = {"filename": (value.filename or name)[:255], "contentType": value.content_type or
                      "application/octet-stream", "base64": base64.b64encode(data).decode("ascii")}
    await form.close()
    return body


async def json_object(request: Request) -> dict:
    body = request.scope.get("state", {}).get(PARSED_BODY)
    if body is not None:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body
    raw = await _bounded_body(request)
    if not raw.strip():
        raise BadRequest("the request body must be a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def text_field(body: dict, name: str, *, required: bool = False, limit: int = MAX_SHORT_TEXT) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise BadRequest(f"{name} must be a string")
    text = str(value)
    if len(text) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters")
    return text


def prompt_field(body: dict, name: str = "prompt", *, required: bool = True) -> str:
    prompt = text_field(body, name, required=required, limit=MAX_PROMPT_CHARS).strip()
    if required and not prompt:
        raise BadRequest(f"{name} is required")
    return prompt


def image_base64(value: object, name: str) -> str:
    """Validate one base64 image (raw or a data: URI) and return it unchanged for the upstream."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} must be a base64 image string")
    match = _DATA_URI.match(value.strip())
    if match and not match["mime"].startswith("image/"):
        raise BadRequest(f"{name} must be an image, not {match['mime']}")
    data = match["data"] if match else value.strip()
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise BadRequest(f"{name} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} is not valid base64") from None
    if not decoded:
        raise BadRequest(f"{name} is empty")
    return value.strip() if match else f"data:image/png;base64,{data}"


def image_list(body: dict, name: str, *, minimum: int, maximum: int) -> list[str]:
    values = body.get(name)
    if values is None:
        values = []
    if not isinstance(values, list):
        raise BadRequest(f"{name} must be an array of base64 images")
    if not minimum <= len(values) <= maximum:
        raise BadRequest(f"{name} must hold {minimum} to {maximum} images" if minimum else
                         f"{name} may hold at most {maximum} images")
    return [image_base64(v, f"{name}[{i}]") for i, v in enumerate(values)]


def http_url(body: dict, name: str) -> str:
    url = text_field(body, name)
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{name} must be an absolute http(s) URL")
    return url


def redacted(body: dict) -> dict:
    """The request as recorded with the task: images replaced by their size, so rows stay small."""
    def shrink(value):
        if isinstance(value, str) and len(value) > 512:
            return f"<{len(value)} characters>"
        if isinstance(value, list):
            return [shrink(v) for v in value]
        if isinstance(value, dict):
            return {k: shrink(v) for k, v in value.items()}
        return value

    return {k: shrink(v) for k, v in body.items() if k not in ("notifyHook", "callback_url")}
