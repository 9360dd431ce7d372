"""The one gate every request's inputs pass before any route: what no face accepts is refused here.

No face accepts, anywhere in a request:

* a NUL character or an unpaired UTF-16 surrogate in a string — PostgreSQL refuses NUL in text,
  and no database driver can encode a lone surrogate, so either would end as a 500 deep inside;
* a path or query value longer than MAX_QUERY_VALUE characters;
* JSON nested deeper than MAX_JSON_DEPTH levels (no body of any face is deeper than a few), or a
  JSON number outside the signed 64-bit range (every number ends in a BIGINT column or a bound far
  below it), NaN or Infinity, or a number with more digits than Python will convert.

The refusal is the dialect's own BadRequest (api/envelopes.render_error picks the envelope by the
path). Field-level rules (lengths, ranges of a given field) stay with each face's parser; this gate
only keeps out what would otherwise reach a database or a parser as poison. A JSON body it parsed is
left in the request state, so api/payloads.json_object does not parse it twice.
"""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mjgate.api.payloads import MAX_BODY_BYTES, PARSED_BODY
from mjgate.errors import BadRequest

MAX_JSON_DEPTH = 32
MAX_QUERY_VALUE = 8_192
INT64 = 2**63
_NOT_JSON_BODIES = ("multipart/form-data", "application/x-www-form-urlencoded", "application/octet-stream")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


def json_problem(value: object) -> str | None:
    """The first poison in a parsed JSON value (walked without recursion), or None."""
    stack: list[tuple[object, int, str]] = [(value, 1, "body")]
    while stack:
        item, depth, where = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON is nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{where} {problem}"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -INT64 <= item < INT64:
                return f"{where} is out of range (a 64-bit integer at most)"
        elif isinstance(item, float):
            if not math.isfinite(item) or abs(item) >= INT64:
                return f"{where} is out of range"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    return f"a field name in {where} {problem}"
                stack.append((child, depth + 1, key[:64]))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json_body(raw: bytes) -> tuple[bool, object]:
    """(parsed, value): (False, None) for a body that is not JSON at all (the route says so in its
    own words); a BadRequest for JSON that is poison."""
    try:
        return True, json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError:
        return False, None
    except UnicodeDecodeError:
        return False, None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise BadRequest(f"the request body is refused: {str(exc)[:120]}") from None


def url_problem(scope: Scope) -> str | None:
    path = scope.get("path", "")
    problem = text_problem(path)
    if problem:
        return f"the path {problem}"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        for text, what in ((name, "a query parameter name"), (value, f"query parameter {name[:64]}")):
            problem = text_problem(text)
            if problem:
                return f"{what} {problem}"
        if len(value) > MAX_QUERY_VALUE:
            return f"query parameter {name[:64]} is longer than {MAX_QUERY_VALUE} characters"
    return None


class InputGuard:
    """Pure ASGI middleware: refuses poisoned paths, queries and JSON bodies before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = url_problem(scope)
        if problem:
            await self._refuse(scope, receive, send, BadRequest(problem))
            return
        if scope["method"] not in ("POST", "PUT", "PATCH", "DELETE") or self._not_json(scope):
            await self.app(scope, receive, send)
            return
        raw, messages, too_big = await self._read(receive)
        if too_big:
            await self._refuse(scope, receive, send, BadRequest(
                f"request body larger than {MAX_BODY_BYTES // (1024 * 1024)} MB", status=413))
            return
        if raw.strip():
            try:
                parsed, value = parse_json_body(raw)
                problem = json_problem(value) if parsed else None
            except BadRequest as exc:
                await self._refuse(scope, receive, send, exc)
                return
            if problem:
                await self._refuse(scope, receive, send, BadRequest(problem))
                return
            if parsed:
                scope.setdefault("state", {})[PARSED_BODY] = value

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    @staticmethod
    def _not_json(scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                media = value.decode("latin-1").split(";", 1)[0].strip().lower()
                return media in _NOT_JSON_BODIES
        return False

    @staticmethod
    async def _read(receive: Receive) -> tuple[bytes, list[Message], bool]:
        """The whole body (and the messages that carried it, to hand on), or too_big past the bound."""
        chunks, messages, size = [], [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return b"", [], True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        return raw, [{"type": "http.request", "body": raw, "more_body": False}, *messages], False

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: BadRequest) -> None:
        from mjgate.api.envelopes import render_error  # envelopes imports the dialects, which import api

        response = render_error(Request(scope, receive), error)
        await response(scope, receive, send)
