"""Signed, expiring image URLs: HMAC over the task id and the expiry, so a URL cannot be
forged or extended, yet a plain GET (as real clients do) needs no credentials."""

from __future__ import annotations

from urllib.parse import urlencode

from mjgate.auth.credentials import sign, verify_any
from mjgate.clock import now_ms


def _message(mj_id: str, expires_s: int) -> str:
    return f"image:{mj_id}:{expires_s}"


def signed_image_path(secret_key: str, mj_id: str, ttl_s: int) -> str:
    # Round the expiry to the hour so a task's URL is stable across polls within that hour
    # (clients and browsers can cache it).
    expires_s = ((now_ms() // 1000 + ttl_s) // 3600 + 1) * 3600
    query = urlencode({"expires": expires_s, "sig": sign(secret_key, _message(mj_id, expires_s))})
    return f"/mj/image/{mj_id}?{query}"


def check_image_signature(keys, mj_id: str, expires: str | None, sig: str | None) -> bool:
    # An expiry is epoch seconds: more than 12 digits is no real one (and thousands overflow int()).
    if not expires or not sig or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < now_ms() // 1000:
        return False
    return verify_any(keys, _message(mj_id, int(expires)), sig)
