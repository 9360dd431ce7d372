"""The web console's own API: login/logout, who am I, and submitting work as the logged-in user.

The console is served by the gateway itself (same origin), so its session cookie is HttpOnly and
SameSite=Lax. State-changing requests are additionally CSRF-checked by `csrf_guard`:

* the body must be JSON (`Content-Type: application/json`): an HTML form cannot send that
  cross-site, and a script can only do so after a CORS preflight that this server never grants;
* an `Origin` / `Sec-Fetch-Site` that names another site is refused outright;
* a request authenticated by the cookie must carry `X-CSRF-Token`, an HMAC of the cookie
  that the console reads from /login or /me (a signed double submit: nothing to store).

Requests authenticated by an access token (`Authorization` + `New-Api-User`) skip the token
check: browsers never attach those headers by themselves, so they cannot be forged cross-site.

Submissions go through the same TaskService as the relay dialects, as Caller(user, key=None):
the console spends the user's balance directly, without an API key.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from urllib.parse import urlsplit

from mjgate.accounts.users import get_by_access_token, get_by_username, public_user
from mjgate.stats.repository import usernames_by_id
from mjgate.api.deps import dashboard_user, public_base_url
from mjgate.api.newapi import _item as task_item
from mjgate.api.payloads import image_base64, redacted
from mjgate.auth import sessions
from mjgate.auth.credentials import sign, verify_password, verify_signature
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from mjgate.models import Task, User
from mjgate.models.channel import MODES
from mjgate.tasks import repository
from mjgate.tasks.actions import parse_custom_id
from mjgate.tasks.service import Caller, SubmitOutcome, SubmitSpec

router = APIRouter(prefix="/api/console", tags=["console"])

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REFRESH_IDS = 50
LOGIN_WINDOW_S = 300.0
LOGIN_MAX_FAILURES = 10  # per (client address, username) within the window
MAX_PROMPT_CHARS = 8_192
# HTTP status for a refusal before a task exists, by midjourney-proxy code.
_REFUSAL_STATUS = {3: 503, 9: 502, 23: 503, 24: 400, 4: 400}


# ------------------------------------------------------------------ CSRF


def csrf_token_for(secret_key: str, cookie: str) -> str:
    return sign(secret_key, "csrf:" + cookie)


def _same_site(request: Request) -> bool:
    """False when the browser tells us the request comes from another site."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # non-browser clients; the JSON and token rules below still apply
    netloc = urlsplit(origin).netloc.lower()
    allowed = {request.headers.get("host", "").lower()}
    configured = request.app.state.settings.public_url
    if configured:
        allowed.add(urlsplit(configured).netloc.lower())
    return bool(netloc) and netloc in allowed


def check_csrf(request: Request, *, require_token: bool = True) -> None:
    if request.method in SAFE_METHODS:
        return
    if not _same_site(request):
        raise Forbidden("cross-site request refused", code="csrf")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise Forbidden("state-changing requests must send a JSON body (Content-Type: application/json)",
                        code="csrf")
    if not require_token or request.headers.get("authorization", "").strip():
        return
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        raise Unauthorized("not logged in: send an access token or log in")
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented or not verify_signature(request.app.state.secret_key, "csrf:" + cookie, presented):
        raise Forbidden("missing or wrong X-CSRF-Token header", code="csrf")


async def csrf_guard(request: Request) -> None:
    """Router dependency: a no-op for reads, the CSRF rules above for everything else."""
    check_csrf(request)


async def same_site_json(request: Request) -> None:
    """For login/logout: no session to bind a token to yet, but still same-site JSON only."""
    check_csrf(request, require_token=False)


async def console_user(request: Request) -> User:
    """dashboard auth on a short-lived read session (a submit opens write sessions later)."""
    async with request.app.state.db.read() as session:
        return await dashboard_user(request, session)


ConsoleUser = Annotated[User, Depends(console_user)]


def ok(data=None, *, status: int = 200, message: str = "") -> JSONResponse:
    return JSONResponse({"success": True, "message": message, "data": data}, status_code=status)


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


# ------------------------------------------------------------------ bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class LoginBody(_Body):
    username: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=1024)
    access_token: str | None = Field(None, max_length=256)
    user_id: int | None = Field(None, ge=1, le=2**62)


class ImagineBody(_Body):
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS)
    mode: Literal["fast", "relax", "turbo"] = "fast"
    bot_type: Literal["MID_JOURNEY", "NIJI_JOURNEY"] = "MID_JOURNEY"
    images: list[str] = Field(default_factory=list, max_length=5,
                              description="Reference images: base64 or data: URIs.")


class ActionBody(_Body):
    task_id: str = Field(..., min_length=1, max_length=64)
    custom_id: str = Field(..., min_length=1, max_length=2048)


class ModalBody(_Body):
    task_id: str = Field(..., min_length=1, max_length=64)
    prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    mask: str | None = Field(None, description="base64 mask for Vary (Region)")


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
            user = await session.get(User, parsed[0])
            if user is not None and user.session_version == parsed[1]:
                user.session_version += 1
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
    return ok(me_payload(user, token))


# ------------------------------------------------------------------ tasks


async def _visible_task(request: Request, user: User, mj_id: str) -> Task:
    async with request.app.state.db.read() as session:
        task = await repository.get_by_mj_id(session, mj_id.strip()[:64])
    if task is None or (task.user_id != user.id and not user.is_admin):
        raise NotFound(f"task {mj_id[:64]} not found")
    return task


@router.get("/tasks", summary="Current state of some tasks, refreshed from their channel when stale")
async def tasks_by_id(request: Request, user: ConsoleUser,
                      ids: Annotated[str, Query(max_length=MAX_REFRESH_IDS * 40)] = ""):
    wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
    if not wanted:
        raise BadRequest("ids is required: a comma-separated list of task ids")
    if len(wanted) > MAX_REFRESH_IDS:
        raise BadRequest(f"at most {MAX_REFRESH_IDS} ids per call")
    async with request.app.state.db.read() as session:
        found = await repository.get_many_by_mj_ids(session, [i[:64] for i in wanted],
                                                    None if user.is_admin else user.id)
    service = request.app.state.tasks
    items = []
    for task in found:
        task = await service.refresh(task)
        items.append(task_item(task, request, admin=user.is_admin))
    return ok({"items": items})


@router.get("/tasks/{mj_id}", summary="One task, refreshed from its channel when stale")
async def task_detail(mj_id: str, request: Request, user: ConsoleUser):
    task = await request.app.state.tasks.refresh(await _visible_task(request, user, mj_id))
    async with request.app.state.db.read() as session:
        names = await usernames_by_id(session, {task.user_id})
    item = task_item(task, request, admin=user.is_admin, username=names.get(task.user_id, ""))
    item["owned"] = task.user_id == user.id
    return ok(item)


def _outcome(request: Request, user: User, outcome: SubmitOutcome) -> JSONResponse:
    if outcome.task is None:
        return JSONResponse(
            {"success": False, "message": outcome.description or f"refused (code {outcome.code})",
             "data": {"code": outcome.code}},
            status_code=_REFUSAL_STATUS.get(outcome.code, 400),
        )
    data = {"code": outcome.code, "description": outcome.description, "mj_id": outcome.task.mj_id,
            "task": task_item(outcome.task, request, admin=user.is_admin)}
    # 21: the task waits for a modal (a prompt or a mask) before the upstream starts it.
    return ok(data, message=outcome.description)


def _spec(request: Request, *, sent: dict, mode: str, **fields) -> SubmitSpec:
    return SubmitSpec(mode=mode, explicit_mode=mode != "fast", request=redacted(sent), dialect="console",
                      public_base=public_base_url(request), **fields)


@router.post("/submit/imagine", summary="Submit an Imagine as the logged-in user",
             dependencies=[Depends(csrf_guard)])
async def submit_imagine(request: Request, body: ImagineBody, user: ConsoleUser):
    images = [image_base64(value, f"images[{i}]") for i, value in enumerate(body.images)]
    upstream = {"prompt": body.prompt, "base64Array": images, "botType": body.bot_type}
    spec = _spec(request, sent=body.model_dump(), mode=body.mode, action="IMAGINE", path="/submit/imagine",
                 body=upstream, prompt=body.prompt, bot_type=body.bot_type)
    outcome = await request.app.state.tasks.submit(Caller(user, None), spec)
    return _outcome(request, user, outcome)


@router.post("/submit/action", summary="Press one of a task's buttons (U1, V2, zoom, pan, ...)",
             dependencies=[Depends(csrf_guard)])
async def submit_action(request: Request, body: ActionBody, user: ConsoleUser):
    action = parse_custom_id(body.custom_id)
    parent = await _visible_task(request, user, body.task_id)
    if parent.user_id != user.id:
        # The follow-up would be charged to the presser but act on someone else's image.
        raise Forbidden("only the task's owner can press its buttons")
    parent = await request.app.state.tasks.refresh(parent)
    if parent.status != "SUCCESS":
        raise BadRequest(f"task {parent.mj_id} is {parent.status}: its buttons work once it has succeeded")
    if parent.buttons and body.custom_id not in {b.get("customId") for b in parent.buttons}:
        raise BadRequest(f"customId is not one of task {parent.mj_id}'s buttons")
    spec = _spec(request, sent=body.model_dump(), mode=parent.mode, action=action.action, path="/submit/action",
                 body={"taskId": "{task}", "customId": body.custom_id}, parent=parent, prompt=parent.prompt,
                 bot_type=parent.bot_type)
    outcome = await request.app.state.tasks.submit(Caller(user, None), spec)
    return _outcome(request, user, outcome)


@router.post("/submit/modal", summary="Continue a task waiting for a modal (Custom Zoom, Vary Region)",
             dependencies=[Depends(csrf_guard)])
async def submit_modal(request: Request, body: ModalBody, user: ConsoleUser):
    task = await _visible_task(request, user, body.task_id)
    if task.user_id != user.id:
        raise Forbidden("only the task's owner can continue it")
    upstream: dict = {"prompt": body.prompt}
    if body.mask:
        upstream["maskBase64"] = image_base64(body.mask, "mask")
    outcome = await request.app.state.tasks.submit_modal(Caller(user, None), task, upstream)
    if outcome.code not in (1, 21, 22):
        return JSONResponse({"success": False, "message": outcome.description, "data": {"code": outcome.code}},
                            status_code=_REFUSAL_STATUS.get(outcome.code, 400))
    return _outcome(request, user, outcome)
