"""Typed errors. Services raise these; each dialect renders them in its own envelope."""

from __future__ import annotations


class GatewayError(Exception):
    """Base error: an HTTP status, a machine code and a human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_token"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class QuotaExhausted(GatewayError):
    status = 403
    code = "used_up"


class RateLimited(GatewayError):
    status = 429
    code = "too_many_requests"


class UpstreamError(GatewayError):
    status = 502
    code = "api_error"
