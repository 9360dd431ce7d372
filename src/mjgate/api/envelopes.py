"""Errors of requests that no route matched (404, 405) and of routes outside a dialect.

A route inside a dialect renders its own errors (api/routing.py); here the envelope is chosen
by the path, through the dialect registry. Anything else gets `{"success": false, "error"}`.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mjgate import dialects
from mjgate.api.routing import INTERNAL_MESSAGE, validation_message
from mjgate.errors import BadRequest, GatewayError

log = structlog.get_logger(__name__)

_CODE_OF_STATUS = {401: "invalid_token", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def render_error(request: Request, error: GatewayError) -> JSONResponse:
    dialect = dialects.owner_of(request.url.path)
    if dialect is not None:
        return dialect.render_error(request, error)
    return JSONResponse({"success": False, "error": {"code": error.code, "message": error.message}},
                        status_code=error.status)


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError):
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return render_error(request, BadRequest(validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        error = GatewayError(message, status=exc.status_code, code=_CODE_OF_STATUS.get(exc.status_code, "bad_request"),
                             kind="not_found" if exc.status_code == 404 else "invalid")
        response = render_error(request, error)
        if exc.headers:
            response.headers.update(exc.headers)  # e.g. Allow on a 405
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error", path=request.url.path)
        return render_error(request, GatewayError(INTERNAL_MESSAGE, status=500, code="api_error", kind="internal"))
