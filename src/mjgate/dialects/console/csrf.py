"""The console's request guards: CSRF for state-changing requests, and the logged-in user.

The console is served by the gateway itself (same origin), so its session cookie is HttpOnly and
SameSite=Lax. State-changing requests are additionally CSRF-checked by `csrf_guard`:

* the body must be JSON (`Content-Type: application/json`): an HTML form cannot send that
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
from mjgate.auth.credentials import sign, verify_signature
from mjgate.errors import Forbidden, Unauthorized
from mjgate.models import User

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


console_user = dashboard_user
ConsoleUser = Annotated[User, Depends(dashboard_user)]


def ok(data=None, *, status: int = 200, message: str = "") -> JSONResponse:
    return JSONResponse({"success": True, "message": message, "data": data}, status_code=status)
