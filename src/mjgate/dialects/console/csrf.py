"""The console's request guards: CSRF for state-changing requests, and the logged-in user.

The console is served by the gateway itself (same origin), so its session cookie is HttpOnly and
SameSite=Lax. State-changing requests are additionally CSRF-checked by `csrf_guard`:

* a body must be JSON (`Content-Type: application/json`; a request without a body declares nothing): an HTML form cannot send that
  cross-site, and a script can only do so after a CORS preflight that this server never grants;
* an `Origin` / `Sec-Fetch-Site` that names another site is refused outright;
* a request authenticated by the cookie must carry `X-CSRF-Token`, an HMAC of the cookie
  that the console reads from /login or /me (a signed double submit: nothing to store).

Requests authenticated by an access token (`Authorization` + `New-Api-User`) skip the token
check: browsers never attach those headers by themselves, so they cannot be forged cross-site.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from mjgate.api.deps import dashboard_user
from mjgate.auth import sessions
from mjgate.auth import keyring
from mjgate.auth.credentials import sign, verify_any
from mjgate.errors import Forbidden, Unauthorized
from mjgate.models import User

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token_for(keys: keyring.Keyring, cookie: str) -> str:
    return sign(keys.key(keyring.CSRF), "csrf:" + cookie)


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


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def check_csrf(request: Request, *, require_token: bool = True) -> None:
    if request.method in SAFE_METHODS:
        return
    if not _same_site(request):
        raise Forbidden("cross-site request refused", code="csrf")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # A request without a body has nothing to declare (a route that needs one says so itself); the
    # token rule below still stops a cross-site form, which can never send X-CSRF-Token.
    if content_type != "application/json" and _has_body(request):
        raise Forbidden("state-changing requests must send a JSON body (Content-Type: application/json)",
                        code="csrf")
    if not require_token or request.headers.get("authorization", "").strip():
        return
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        raise Unauthorized("not logged in: send an access token or log in")
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented or not verify_any(request.app.state.keyring.accepted(keyring.CSRF), "csrf:" + cookie,
                                                   presented):
        raise Forbidden("missing or wrong X-CSRF-Token header", code="csrf")


async def csrf_guard(request: Request) -> None:
    """Router dependency: a no-op for reads, the CSRF rules above for everything else."""
    check_csrf(request)


async def same_site_json(request: Request) -> None:
    """For login/logout: no session to bind a token to yet, but still same-site JSON only."""
    check_csrf(request, require_token=False)


console_user = dashboard_user
ConsoleUser = Annotated[User, Depends(dashboard_user)]


def ok(data=None, *, status: int = 200, message: str = "") -> JSONResponse:
    return JSONResponse({"success": True, "message": message, "data": data}, status_code=status)
