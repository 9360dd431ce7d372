"""A trace id for every /midjourney request, in request.state (the error envelope uses it) and in
the X-Trace-Id header of every answer."""

from __future__ import annotations

import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/midjourney"


class TraceIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        trace = scope.setdefault("state", {}).setdefault("trace_id", str(uuid.uuid4()))

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Trace-Id"] = trace
            await send(message)

        await self.app(scope, receive, send_with_trace)
