"""Task-change events for live views (SSE) and waiting callers.

In-process fan-out by default; with Redis configured, every instance publishes to one channel
and each fans out what it receives, so a browser connected to instance A sees a task that
instance B's poller finished. Events are notifications, not the record: a subscriber that
misses one still reads the current task from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import structlog

log = structlog.get_logger(__name__)

REDIS_CHANNEL = "mjgate:task-events"
QUEUE_LIMIT = 1_000  # a subscriber this far behind loses the oldest events, never blocks publishers


class EventBus:
    def __init__(self, redis_url: str | None = None):
        self._subscribers: set[tuple[int | None, asyncio.Queue]] = set()
        self._redis_url = redis_url
        self._redis = None
        self._listener: asyncio.Task | None = None

    async def start(self) -> None:
        if not self._redis_url:
            return
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(self._redis_url)
        await self._redis.ping()
        self._listener = asyncio.create_task(self._listen(), name="event-bus-redis")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(REDIS_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._fan_out(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep listening through Redis restarts
                log.warning("event bus redis listener error", error=str(exc))
                await asyncio.sleep(1)

    async def publish(self, event: dict) -> None:
        """event carries at least user_id and mj_id."""
        if self._redis is not None:
            try:
                await self._redis.publish(REDIS_CHANNEL, json.dumps(event))
                return
            except Exception as exc:
                log.warning("event bus redis publish failed; delivering locally", error=str(exc))
        self._fan_out(event)

    def _fan_out(self, event: dict) -> None:
        for user_id, queue in list(self._subscribers):
            if user_id is not None and event.get("user_id") != user_id:
                continue
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: int | None) -> AsyncIterator[asyncio.Queue]:
        """user_id None sees every user's events (admins)."""
        entry = (user_id, asyncio.Queue(QUEUE_LIMIT))
        self._subscribers.add(entry)
        try:
            yield entry[1]
        finally:
            self._subscribers.discard(entry)
