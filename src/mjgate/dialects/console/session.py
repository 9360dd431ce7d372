"""The console's session: log in (password or access token), log out, who am I."""

from __future__ import annotations

import time
from collections import deque

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from mjgate.accounts import repository as accounts
from mjgate.accounts.users import get_by_access_token, get_by_username, public_user
from mjgate.api.routing import dialect_route
from mjgate.auth import sessions
from mjgate.auth.credentials import verify_password
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.dialects.console.csrf import ConsoleUser, check_csrf, csrf_token_for, ok, same_site_json
from mjgate.dialects.newapi.render import error_reply
from mjgate.invalidation import stale_after_commit
from mjgate.errors import BadRequest, Forbidden, RateLimited, Unauthorized
from mjgate.models import User
from mjgate.models.channel import MODES

router = APIRouter(prefix="/api/console", tags=["console"], route_class=dialect_route(error_reply))

LOGIN_WINDOW_S = 300.0
LOGIN_MAX_FAILURES = 10  # per (client address, username) within the window


def _secure_cookie(request: Request) -> bool:
    if request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https":
        return True
    public_url = request.app.state.settings.public_url or ""
    return public_url.startswith("https://")


def me_payload(user: User, csrf_token: str | None) -> dict:
    return {
        "user": {**public_user(user), "is_admin": user.is_admin},
        "csrf_token": csrf_token,
        "quota_per_usd": QUOTA_PER_USD,
        "modes": list(MODES),
    }


# ------------------------------------------------------------------ login throttling


class _LoginThrottle:
    """In-process count of recent failures per (address, username); enough to slow guessing."""

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        entries = self._failures.setdefault(key, deque())
        cutoff = time.monotonic() - LOGIN_WINDOW_S
        while entries and entries[0] < cutoff:
            entries.popleft()
        return entries

    def check(self, key: tuple[str, str]) -> None:
        if len(self._recent(key)) >= LOGIN_MAX_FAILURES:
            raise RateLimited("too many failed logins; wait a few minutes and try again")

    def failed(self, key: tuple[str, str]) -> None:
        self._recent(key).append(time.monotonic())
        if len(self._failures) > 10_000:  # bounded memory under a spray of usernames
            self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


def _throttle_of(request: Request) -> _LoginThrottle:
    """One per application (not per module), so separate apps in one process never share counts."""
    throttle = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = _LoginThrottle()
    return throttle


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class LoginBody(_Body):
    username: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=1024)
    access_token: str | None = Field(None, max_length=256)
    user_id: int | None = Field(None, ge=1, le=2**62)


# ------------------------------------------------------------------ session endpoints


@router.post("/login", summary="Log in with username + password, or access token + user id",
             dependencies=[Depends(same_site_json)])
async def login(request: Request, body: LoginBody):
    client_ip = request.client.host if request.client else "?"
    by_token = bool(body.access_token)
    if by_token:
        if body.user_id is None:
            raise BadRequest("user_id is required with an access token")
        throttle_key = (client_ip, f"#{body.user_id}")
    else:
        if not body.username or not body.password:
            raise BadRequest("username and password are required")
        throttle_key = (client_ip, body.username.lower())
    throttle = _throttle_of(request)
    throttle.check(throttle_key)
    async with request.app.state.db.read() as session:
        if by_token:
            user = await get_by_access_token(session, body.access_token)
            valid = user is not None and user.id == body.user_id
        else:
            user = await get_by_username(session, body.username)
            valid = verify_password(body.password, user.password_hash if user else None)
    if not valid or user is None:
        throttle.failed(throttle_key)
        raise Unauthorized("wrong access token or user id" if by_token else "wrong username or password")
    if not user.enabled:
        raise Forbidden("this user is disabled")
    throttle.succeeded(throttle_key)
    settings = request.app.state.settings
    cookie = sessions.issue(request.app.state.secret_key, user.id, user.session_version, settings.session_ttl_s)
    response = ok(me_payload(user, csrf_token_for(request.app.state.secret_key, cookie)))
    response.set_cookie(
        sessions.COOKIE_NAME, cookie, max_age=settings.session_ttl_s, path="/", httponly=True, samesite="lax",
        secure=_secure_cookie(request),
    )
    return response


@router.post("/logout", summary="End the console session (every session of this user)",
             dependencies=[Depends(same_site_json)])
async def logout(request: Request):
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    parsed = sessions.parse(request.app.state.secret_key, cookie)
    if parsed is not None:
        # Only a request that proves it comes from the console may end the session.
        check_csrf(request)
        async with request.app.state.db.write() as session:
            if await accounts.end_sessions(session, parsed[0], parsed[1]):
                stale_after_commit(session)
    response = ok(None)
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax",
                           secure=_secure_cookie(request))
    return response


@router.get("/me", summary="The logged-in user, the CSRF token and console settings")
async def me(request: Request, user: ConsoleUser):
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    token = None
    if cookie and not request.headers.get("authorization", "").strip():
        token = csrf_token_for(request.app.state.secret_key, cookie)
    async with request.app.state.db.read() as session:  # the balance as it is now, not as cached
        fresh = await accounts.user(session, user.id) or user
    return ok(me_payload(fresh, token))
