"""Server-Sent Events: a live stream of the caller's task changes (the console's progress bars).

GET /api/mj/events with dashboard auth (an admin adds ?all=1 for every user's tasks), or
GET /mj/task/events with an API key. Each change is `event: task` with a JSON body; a comment
line every HEARTBEAT_S keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from mjgate.api.deps import CurrentUser, RelayCaller
from mjgate.api.routing import dialect_route
from mjgate.dialects import mjproxy, newapi

router = APIRouter(tags=["live events"], route_class=dialect_route(newapi.render_error))
relay_router = APIRouter(tags=["live events"], route_class=dialect_route(mjproxy.render_error))

HEARTBEAT_S = 15.0


def _stream(request: Request, user_id: int | None) -> StreamingResponse:
    bus = request.app.state.events

    async def body():
        async with bus.subscribe(user_id) as queue:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: task\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"

    return StreamingResponse(
        body(), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/mj/events", summary="Live task changes of the logged-in user (SSE)")
async def dashboard_events(request: Request, user: CurrentUser):
    everyone = user.is_admin and request.query_params.get("all") in ("1", "true")
    return _stream(request, None if everyone else user.id)


@relay_router.get("/mj/task/events", summary="Live task changes of the key's owner (SSE)")
async def relay_events(request: Request, caller: RelayCaller):
    return _stream(request, caller.user.id)
