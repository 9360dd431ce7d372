"""Server-Sent Events: a live stream of the caller's task changes (the console's progress bars).

GET /api/mj/events with dashboard auth (an admin adds ?all=1 for every user's tasks), or
GET /mj/task/events with an API key. Each change is `event: task` with a JSON body; a comment
line every HEARTBEAT_S keeps proxies from closing an idle stream. When the server begins to shut
down (server_exit) every stream ends at once, so an open stream never holds a shutdown; the
client's EventSource reconnects after `retry` (to another instance, or to this one restarted).

Hand-written rather than on sse-starlette: measured, sse-starlette only learns of a shutdown from
uvicorn (by patching its signal handler at import) and kept a stream, and granian, open past a
30 s SIGTERM wait; the keep-alive it adds is the four lines below.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from mjgate import server_exit
from mjgate.api.deps import CurrentUser, RelayCaller
from mjgate.api.routing import dialect_route
from mjgate.dialects import mjproxy, newapi

router = APIRouter(tags=["live events"], route_class=dialect_route(newapi.render_error))
relay_router = APIRouter(tags=["live events"], route_class=dialect_route(mjproxy.render_error))

HEARTBEAT_S = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _next_event(queue: asyncio.Queue, closing: asyncio.Event, timeout_s: float) -> dict | None:
    """The next event; None after timeout_s with none; raises EOFError once the server is exiting."""
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({getter, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (getter, stopper):
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
    if getter.done() and not getter.cancelled():
        return getter.result()
    if closing.is_set():
        raise EOFError
    return None


def _stream(request: Request, user_id: int | None) -> StreamingResponse:
    bus = request.app.state.events
    closing = server_exit.event_for(request.app)

    async def body():
        async with bus.subscribe(user_id) as queue:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    event = await _next_event(queue, closing, HEARTBEAT_S)
                except EOFError:
                    yield ": server shutting down\n\n"
                    return
                if event is None:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: {event.get('type') or 'task'}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


@router.get("/api/mj/events", summary="Live task changes of the logged-in user (SSE)")
async def dashboard_events(request: Request, user: CurrentUser):
    everyone = user.is_admin and request.query_params.get("all") in ("1", "true")
    return _stream(request, None if everyone else user.id)


@relay_router.get("/mj/task/events", summary="Live task changes of the key's owner (SSE)")
async def relay_events(request: Request, caller: RelayCaller):
    return _stream(request, caller.user.id)
