"""Each dialect's error envelope, chosen by the request path, rendered by one handler.

Services raise mjgate.errors types and never know which dialect is calling.
"""

from __future__ import annotations

import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mjgate.errors import GatewayError

log = structlog.get_logger(__name__)

# midjourney-proxy result codes: clients branch on `code`, not on the HTTP status.
MJ_CODE_VALIDATION = 4
MJ_CODE_NOT_FOUND = 3
MJ_CODE_SYSTEM = 9


def dialect_of(path: str) -> str:
    if path.startswith("/api/"):
        return "newapi"
    if path.startswith("/midjourney"):
        return "acedata"
    if path.startswith(("/mj/", "/mj-fast/", "/mj-relax/", "/mj-turbo/")):
        return "mjproxy"
    return "plain"


def trace_id_of(request: Request) -> str:
    trace = getattr(request.state, "trace_id", None)
    if trace is None:
        trace = request.state.trace_id = str(uuid.uuid4())
    return trace


def render_error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    dialect = dialect_of(request.url.path)
    if dialect == "newapi":
        body = {"success": False, "message": message}
    elif dialect == "acedata":
        body = {"success": False, "error": {"code": code, "message": message}, "trace_id": trace_id_of(request)}
    elif dialect == "mjproxy":
        mj_code = {404: MJ_CODE_NOT_FOUND, 500: MJ_CODE_SYSTEM, 502: MJ_CODE_SYSTEM}.get(status, MJ_CODE_VALIDATION)
        body = {"code": mj_code, "description": message, "result": None, "properties": {}}
    else:
        body = {"success": False, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError):
        return render_error(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return render_error(request, 400, "bad_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {401: "invalid_token", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "bad_request"
        )
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return render_error(request, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error", path=request.url.path)
        return render_error(request, 500, "api_error", "internal error; the request was not completed")
