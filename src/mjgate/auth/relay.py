"""Relay authentication: an `sk-...` key from `Authorization: Bearer` or `mj-api-secret`."""

from __future__ import annotations

import ipaddress

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.accounts import repository as accounts
from mjgate.accounts.keys import get_by_secret
from mjgate.auth.cache import AuthCache
from mjgate.auth.client_address import client_address
from mjgate.auth.credentials import API_KEY_PREFIX
from mjgate.clock import now_ms
from mjgate.errors import Forbidden, Unauthorized
from mjgate.tasks.submission import Caller

# midjourney-proxy clients put this placeholder in Authorization and the real key in mj-api-secret.
PLACEHOLDER = "midjourney-proxy"


def presented_key(request: Request) -> str:
    authorization = request.headers.get("authorization", "").strip()
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else authorization
    if not token or token == PLACEHOLDER:
        token = request.headers.get("mj-api-secret", "").strip()
    return token


def _ip_allowed(client_ip: str | None, allowed: list[str]) -> bool:
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


async def authenticate(request: Request) -> Caller:
    """The caller of a relay request; a short read of the key and its owner only on a cache miss."""
    token = presented_key(request)
    if not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer sk-...' or an mj-api-secret header")

    async def load() -> Caller:
        async with request.app.state.db.read() as session:
            return await _load_caller(token, session)

    cache: AuthCache | None = getattr(request.app.state, "key_cache", None)
    caller = await (cache.get_or_load("key", token, load) if cache is not None else load())
    _check_caller(request, caller)
    return caller


async def _load_caller(token: str, session: AsyncSession) -> Caller:
    key = await get_by_secret(session, token)
    if key is None and not token.startswith(API_KEY_PREFIX):
        key = await get_by_secret(session, API_KEY_PREFIX + token)
    if key is None:
        raise Unauthorized("invalid API key")
    user = await accounts.user(session, key.user_id)
    if user is None:
        raise Unauthorized("invalid API key")
    return Caller(user=user, key=key)


def _check_caller(request: Request, caller: Caller) -> None:
    key, user = caller.key, caller.user
    if key.status != "enabled":
        raise Unauthorized("this API key is disabled")
    if key.expires_at is not None and key.expires_at <= now_ms():
        raise Unauthorized("this API key has expired")
    if key.allowed_ips and not _ip_allowed(client_address(request), key.allowed_ips):
        raise Forbidden("this API key may not be used from this address")
    if not user.enabled:
        raise Forbidden("the owner of this API key is disabled")
