"""FastAPI dependencies, declared once: the calling user (dashboard or relay) and the public base URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mjgate.accounts import repository as accounts
from mjgate.accounts.users import get_by_access_token
from mjgate.auth import keyring, sessions
from mjgate.auth.relay import authenticate
from mjgate.errors import Forbidden, RateLimited, Unauthorized
from mjgate.models import User
from mjgate.ratelimit import retry_after_header
from mjgate.tasks.submission import Caller


def _strip_bearer(value: str) -> str:
    value = value.strip()
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value


async def dashboard_user(request: Request) -> User:
    """new-api's user auth: an access token plus a matching New-Api-User header, or the console cookie.

    The user behind a token or a cookie is reused for a few seconds (auth/cache.py); a read session
    is opened only when it is not known.
    """
    header_user = request.headers.get("new-api-user")
    claimed_id: int | None = None
    if header_user is not None and header_user.strip():
        raw = _strip_bearer(header_user)
        if not raw.isdigit():
            raise Unauthorized("New-Api-User must be a numeric user id")
        claimed_id = int(raw)

    token = _strip_bearer(request.headers.get("authorization", ""))
    if token:
        user = await _cached_user(request, "token", token, lambda s: get_by_access_token(s, token))
        if user is None:
            raise Unauthorized("invalid access token")
        if claimed_id is None:
            raise Unauthorized("the New-Api-User header is required with an access token")
    else:
        parsed = sessions.parse(request.app.state.keyring.accepted(keyring.SESSION),
                                request.cookies.get(sessions.COOKIE_NAME))
        if parsed is None:
            raise Unauthorized("not logged in: send an access token or log in")
        user = await _cached_user(request, "session", f"{parsed[0]}.{parsed[1]}",
                                  lambda s: accounts.user(s, parsed[0]))
        if user is None or user.session_version != parsed[1]:
            raise Unauthorized("the session has ended; log in again")
    if claimed_id is not None and claimed_id != user.id:
        raise Unauthorized("New-Api-User does not match the access token's user")
    if not user.enabled:
        raise Forbidden("this user is disabled")
    return user


async def _cached_user(request: Request, kind: str, token: str, load) -> User | None:
    async def read() -> User | None:
        async with request.app.state.db.read() as session:
            return await load(session)

    return await request.app.state.key_cache.get_or_load(kind, token, read)


async def dashboard_admin(user: Annotated[User, Depends(dashboard_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("administrator access required")
    return user


CurrentUser = Annotated[User, Depends(dashboard_user)]
AdminUser = Annotated[User, Depends(dashboard_admin)]


def public_base_url(request: Request) -> str:
    """Absolute base for URLs handed to clients: MJGATE_PUBLIC_URL, else the request's own."""
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


async def relay_caller(request: Request) -> Caller:
    """The caller of a relay request (an API key). No session is held into the endpoint: a submit
    opens write sessions later, and holding a pooled connection across them would starve the pool."""
    return await authenticate(request)


async def limited_relay_caller(request: Request) -> Caller:
    """relay_caller, counted against the key's request rate (MJGATE_RATE_LIMIT_PER_MINUTE)."""
    caller = await authenticate(request)
    bucket = f"key:{caller.key.id}" if caller.key is not None else f"user:{caller.user.id}"
    decision = await request.app.state.rate_limiter.hit(bucket)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(f"too many requests: this key may send {decision.limit} per minute; "
                          f"retry in {retry_after_header(decision)} s", retry_after=retry_after_header(decision))
    return caller


RelayCaller = Annotated[Caller, Depends(relay_caller)]
LimitedRelayCaller = Annotated[Caller, Depends(limited_relay_caller)]
