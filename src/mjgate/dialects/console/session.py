"""The console's session: log in (password or access token), log out, who am I."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from mjgate.accounts import repository as accounts
from mjgate.accounts.webhook_secrets import secret_of
from mjgate.accounts.users import get_by_access_token, get_by_username, public_user
from mjgate.api.routing import dialect_route
from mjgate.auth import keyring, sessions
from mjgate.auth.client_address import client_address
from mjgate.auth.login_throttle import LoginThrottle
from mjgate.auth.credentials import verify_password
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.dialects.console.csrf import ConsoleUser, check_csrf, csrf_guard, csrf_token_for, ok, same_site_json
from mjgate.dialects.newapi.render import error_reply
from mjgate.invalidation import stale_after_commit
from mjgate.errors import BadRequest, Forbidden, Unauthorized
from mjgate.models import User
from mjgate.models.channel import MODES

router = APIRouter(prefix="/api/console", tags=["console"], route_class=dialect_route(error_reply))


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


def _throttle_of(request: Request) -> LoginThrottle:
    """One per application (not per module), so separate apps in one process never share counts."""
    throttle = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle()
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
    by_token = bool(body.access_token)
    if by_token:
        if body.user_id is None:
            raise BadRequest("user_id is required with an access token")
        who = f"#{body.user_id}"
    else:
        if not body.username or not body.password:
            raise BadRequest("username and password are required")
        who = body.username.lower()
    throttle = _throttle_of(request)
    attempt = throttle.begin(who, client_address(request))  # reserved before any await
    async with request.app.state.db.read() as session:
        if by_token:
            user = await get_by_access_token(session, body.access_token)
            valid = user is not None and user.id == body.user_id
        else:
            user = await get_by_username(session, body.username)
    if not by_token:
        # scrypt takes tens of milliseconds of CPU: in a thread, so the event loop keeps serving.
        async with throttle.hashing:
            valid = await asyncio.to_thread(verify_password, body.password, user.password_hash if user else None)
    if not valid or user is None:
        raise Unauthorized("wrong access token or user id" if by_token else "wrong username or password")
    throttle.succeeded(attempt)
    if not user.enabled:
        raise Forbidden("this user is disabled")
    settings = request.app.state.settings
    keys = request.app.state.keyring
    cookie = sessions.issue(keys.key(keyring.SESSION), user.id, user.session_version, settings.session_ttl_s)
    response = ok(me_payload(user, csrf_token_for(keys, cookie)))
    response.set_cookie(
        sessions.COOKIE_NAME, cookie, max_age=settings.session_ttl_s, path="/", httponly=True, samesite="lax",
        secure=_secure_cookie(request),
    )
    return response


@router.post("/logout", summary="End the console session (every session of this user)",
             dependencies=[Depends(same_site_json)])
async def logout(request: Request):
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    parsed = sessions.parse(request.app.state.keyring.accepted(keyring.SESSION), cookie)
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
        token = csrf_token_for(request.app.state.keyring, cookie)
    async with request.app.state.db.read() as session:  # the balance as it is now, not as cached
        fresh = await accounts.user(session, user.id) or user
    return ok(me_payload(fresh, token))


# ------------------------------------------------------------------ the user's webhook secret


@router.get("/webhook-secret", summary="The secret (whsec_...) your callbacks are signed with (Standard Webhooks)")
async def webhook_secret(request: Request, user: ConsoleUser):
    async with request.app.state.db.write() as session:  # a user older than these secrets gets one now
        return ok({"secret": await secret_of(session, user.id)})


@router.post("/webhook-secret/rotate", summary="Replace your webhook secret; callbacks are signed with the new one "
             "from now on", dependencies=[Depends(csrf_guard)])
async def rotate_webhook_secret(request: Request, user: ConsoleUser):
    async with request.app.state.db.write() as session:
        return ok({"secret": await secret_of(session, user.id, rotate=True)})
