"""The `Idempotency-Key` header of every submit route, read the same way by every face."""

from __future__ import annotations

from fastapi import Request

from mjgate.errors import BadRequest
from mjgate.tasks.idempotency import HEADER, MAX_KEY_CHARS, IdempotencyKey, request_hash


def idempotency_of(request: Request, body: object) -> IdempotencyKey | None:
    """The request's key and identity, or None without the header; a malformed key is a 400."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return IdempotencyKey(key, request_hash(request.url.path, body))
