"""Each dialect renders its own errors: a route class that catches what its endpoints raise.

`dialect_route(render)` gives an APIRoute subclass; a router built with it renders every
GatewayError (and request-validation error) of its endpoints and their dependencies with
`render(request, error)`, and an unexpected exception as the dialect's internal error. Requests
that match no route at all fall back to api/envelopes.py, which picks the envelope by path.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from mjgate.db.faults import RETRY_AFTER_S, is_connection_lost
from mjgate.errors import BadRequest, GatewayError, Unavailable

log = structlog.get_logger(__name__)

ErrorRenderer = Callable[[Request, GatewayError], Response]
INTERNAL_MESSAGE = "internal error; the request was not completed"


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") == "missing":
            parts.append("the request needs a JSON object body")
            continue
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _internal() -> GatewayError:
    return GatewayError(INTERNAL_MESSAGE, status=500, code="api_error", kind="internal")


def dialect_route(render: ErrorRenderer) -> type[APIRoute]:
    class DialectRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    try:
                        return await handler(request)
                    except DBAPIError as exc:
                        # A read may simply run again on a fresh connection; a write is not repeated.
                        if not is_connection_lost(exc) or request.method not in ("GET", "HEAD"):
                            raise
                        log.warning("database connection lost; retrying the read once", path=request.url.path)
                        return await handler(request)
                except GatewayError as exc:
                    return render(request, exc)
                except RequestValidationError as exc:
                    return render(request, BadRequest(validation_message(exc)))
                except HTTPException as exc:  # FastAPI's own refusals, e.g. a body that is not UTF-8
                    message = exc.detail if isinstance(exc.detail, str) else "invalid request"
                    return render(request, GatewayError(message, status=exc.status_code,
                                                        kind="invalid" if exc.status_code < 500 else "internal"))
                except DBAPIError as exc:
                    if not is_connection_lost(exc):
                        log.exception("database error", path=request.url.path)
                        return render(request, _internal())
                    log.warning("database connection lost", path=request.url.path, error=str(exc)[:200])
                    return render(request, Unavailable("the database connection was lost; retry shortly",
                                                       retry_after=str(RETRY_AFTER_S)))
                except Exception:
                    log.exception("unhandled error", path=request.url.path)
                    return render(request, _internal())

            return handle

    return DialectRoute


def documented_body(model) -> dict:
    """`openapi_extra` that shows `model` as the JSON body in /docs.

    The dialects read bodies leniently themselves (unknown fields ignored, numbers accepted where
    a client sends them for strings), with messages in their own words, so the model documents the
    body without FastAPI validating it first.
    """
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
