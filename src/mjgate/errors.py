"""Typed errors. The core raises these; each dialect renders them in its own envelope.

Every error carries a `kind` — what went wrong in the core's own words — beside the HTTP status and
machine code that most faces use as they are. A dialect with codes of its own (midjourney-proxy's
numbers, AceData's names) maps the kind; nothing in the core knows those codes.
"""

from __future__ import annotations


class Kind:
    """Why a request was refused, in the core's terms."""

    INVALID = "invalid"  # a field is wrong or missing
    BANNED = "banned"  # the prompt is refused by moderation
    NOT_FOUND = "not_found"  # no such task (or not the caller's)
    NO_CHANNEL = "no_channel"  # no channel can run this (action, mode, group), or the upstream has no account
    UNAVAILABLE = "unavailable"  # the upstream could not be reached or answered nonsense
    QUEUE_FULL = "queue_full"  # every channel that could run it is full
    QUOTA = "quota"  # the balance or the key's limit does not cover the price
    ACTION_NOT_ALLOWED = "action_not_allowed"  # the key is restricted to other actions
    FORBIDDEN = "forbidden"  # the caller may not do this
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_IN_FLIGHT = "too_many_in_flight"  # the user's or key's limit of unfinished tasks
    CONFLICT = "conflict"
    KEY_REUSED = "key_reused"  # an Idempotency-Key sent again with a different request
    RETRY_LATER = "retry_later"  # the gateway itself cannot answer right now (its database)


class GatewayError(Exception):
    """Base error: an HTTP status, a machine code, a kind and a human message."""

    status = 400
    code = "bad_request"
    kind = Kind.INVALID
    retry_after: str | None = None  # seconds, for a Retry-After header

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, kind: str | None = None,
                 retry_after: str | None = None):
        super().__init__(message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"
    kind = Kind.INVALID


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_token"
    kind = Kind.UNAUTHORIZED


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    kind = Kind.FORBIDDEN


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    kind = Kind.NOT_FOUND


class Conflict(GatewayError):
    status = 409
    code = "conflict"
    kind = Kind.CONFLICT


class QuotaExhausted(GatewayError):
    status = 403
    code = "used_up"
    kind = Kind.QUOTA


class RateLimited(GatewayError):
    status = 429
    code = "too_many_requests"
    kind = Kind.RATE_LIMITED


class TooManyInFlight(GatewayError):
    """The user or key already has as many unfinished tasks as an admin allows."""

    status = 429
    code = "too_many_requests"
    kind = Kind.TOO_MANY_IN_FLIGHT


class UpstreamError(GatewayError):
    status = 502
    code = "api_error"
    kind = Kind.UNAVAILABLE


class Unavailable(GatewayError):
    """The service cannot answer right now (a database connection dropped twice); retry later."""

    status = 503
    code = "unavailable"
    kind = Kind.RETRY_LATER
