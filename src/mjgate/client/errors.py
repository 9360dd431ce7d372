"""The client's typed errors: one base class, one subclass per thing a caller handles differently."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mjgate.client.models import Task


class MjgateError(Exception):
    """Anything the gateway refused or the client could not do; `message` is one readable line."""

    def __init__(self, message: str, *, status: int | None = None, code: int | str | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # the HTTP status, when the error came from an HTTP answer
        self.code = code  # midjourney-proxy's submit code (4, 24, ...) or the gateway's error code
        self.body = body  # the parsed answer, for callers that want more than the message


class AuthError(MjgateError):
    """The key is missing, wrong, disabled or not allowed here (HTTP 401/403)."""


class QuotaError(MjgateError):
    """The key or its owner has not enough quota left for this task."""


class RefusedError(MjgateError):
    """The gateway did not accept the submission: banned prompt (24), queue full (23), bad input (4)..."""


class NotFoundError(MjgateError):
    """No such task for this key (or, for a route, no such route on this server)."""


class RateLimitError(MjgateError):
    """Too many requests (HTTP 429): slow down and try again."""


class UnsupportedError(MjgateError):
    """The server does not offer this operation (for example cancel on a gateway without it)."""


class GatewayUnreachable(MjgateError):
    """No HTTP answer at all: wrong URL, gateway down, network trouble."""


class ActionNotAvailable(MjgateError):
    """The task has no button for the requested action (or is not finished yet)."""


class TaskFailedError(MjgateError):
    """The awaited task ended in FAILURE or CANCEL; `task` holds it with its fail reason."""

    def __init__(self, task: Task) -> None:
        reason = task.fail_reason or "no reason given"
        super().__init__(f"task {task.id} ended {task.status}: {reason}")
        self.task = task


class TaskTimeoutError(MjgateError, builtins.TimeoutError):
    """Waiting gave up before the task finished; the task itself goes on at the gateway."""

    def __init__(self, task_id: str, timeout_s: float, last: Task | None = None) -> None:
        super().__init__(f"task {task_id} not finished after {timeout_s:g} s (it goes on at the gateway)")
        self.task_id = task_id
        self.task = last


class WebhookVerificationError(MjgateError):
    """A callback's signature is missing, stale or does not match the secret."""
