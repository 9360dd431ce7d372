"""Console session cookies: stateless, signed, and revoked by bumping the user's session_version."""

from __future__ import annotations

from mjgate.auth.credentials import sign, verify_any
from mjgate.clock import now_ms

COOKIE_NAME = "mjgate_session"


def issue(secret_key: str, user_id: int, session_version: int, ttl_s: int) -> str:
    expires_ms = now_ms() + ttl_s * 1000
    body = f"{user_id}.{session_version}.{expires_ms}"
    return f"{body}.{sign(secret_key, 'session:' + body)}"


def parse(keys, cookie: str | None) -> tuple[int, int] | None:
    """(user_id, session_version) of a valid, unexpired cookie signed with any of `keys`, else None."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
        return None
    body = ".".join(parts[:3])
    if not verify_any(keys, "session:" + body, parts[3]):
        return None
    user_id, version, expires_ms = (int(p) for p in parts[:3])
    if expires_ms < now_ms():
        return None
    return user_id, version
