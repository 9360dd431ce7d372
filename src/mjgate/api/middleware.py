"""Pure ASGI middlewares shared by the faces."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mjgate.ratelimit import Decision, retry_after_header


class RateLimitHeaders:
    """X-RateLimit-Limit / -Remaining (and Retry-After when refused) on every answer whose request
    was counted by the per-key limiter (api/deps.limited_relay_caller)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = state.get("rate_limit")
                if decision is not None and decision.limit:
                    headers = MutableHeaders(scope=message)
                    headers["X-RateLimit-Limit"] = str(decision.limit)
                    headers["X-RateLimit-Remaining"] = str(decision.remaining)
                    if not decision.allowed:
                        headers["Retry-After"] = retry_after_header(decision)
            await send(message)

        await self.app(scope, receive, send_with_headers)
