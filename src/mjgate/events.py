"""Task-change events for live views (SSE) and waiting callers, and reference-data notices.

In-process fan-out by default; with Redis configured, every instance publishes to one channel
and each fans out what it receives, so a browser connected to instance A sees a task that
instance B's poller finished. Events are notifications, not the record: a subscriber that
misses one still reads the current task from the store.

The same connection carries "reference data changed" notices (mjgate.invalidation): a key
disabled or a channel edited on one instance makes every other instance drop its cached keys,
channels and prices at once. An instance that was cut off from Redis may have missed notices,
so it drops its caches when it subscribes again; while cut off, the caches' TTLs bound staleness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator

import structlog

from mjgate import invalidation

log = structlog.get_logger(__name__)

REDIS_CHANNEL = "mjgate:task-events"
REFERENCE_CHANNEL = "mjgate:reference-changed"  # payload {"origin": <instance id>}
QUEUE_LIMIT = 1_000  # a subscriber this far behind loses the oldest events, never blocks publishers
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
POLL_S = 1.0  # the listener's read timeout; also how often a dead connection is noticed at worst


def redis_client(url: str):
    """A client that gives up quickly: a Redis that is down must not stall requests."""
    import redis.asyncio as aioredis

    return aioredis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S,
                             health_check_interval=10)


class EventBus:
    """status: "off" (no Redis configured), "ok" (subscribed through Redis) or "degraded" (Redis
    configured but unreachable: events fan out in this process only, and a loop reconnects)."""

    def __init__(self, redis_url: str | None = None):
        self._subscribers: set[tuple[int | None, asyncio.Queue]] = set()
        self._redis_url = redis_url
        self._redis = None
        self._listener: asyncio.Task | None = None
        self.status = "degraded" if redis_url else "off"
        self.origin = secrets.token_hex(8)  # this instance, so it ignores its own notices

    async def start(self) -> None:
        """Never fails on Redis: a Redis that is down at start is retried in the background."""
        if not self._redis_url:
            return
        self._redis = redis_client(self._redis_url)
        invalidation.on_local_change(self._reference_changed)
        try:
            await self._redis.ping()
        except Exception as exc:
            log.warning("event bus: redis unavailable at start; live events stay in this process until it "
                        "returns", error=str(exc) or type(exc).__name__)
        self._listener = asyncio.create_task(self._listen(), name="event-bus-redis")

    async def stop(self) -> None:
        invalidation.remove_listener(self._reference_changed)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    async def _listen(self) -> None:
        """Subscribe, relay, and on any Redis error fall back to in-process delivery and reconnect."""
        delay = RECONNECT_MIN_S
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REDIS_CHANNEL, REFERENCE_CHANNEL)
                if self.status != "ok":
                    log.info("event bus: redis connected; live events are shared across instances")
                    # Notices published while this instance was not subscribed are lost.
                    invalidation.mark_stale()
                self.status, delay = "ok", RECONNECT_MIN_S
                while True:
                    message = await pubsub.get_message(timeout=POLL_S)
                    if message is not None and message.get("type") == "message":
                        self._received(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.status == "ok":
                    log.warning("event bus: redis lost; live events stay in this process until it returns",
                                error=str(exc) or type(exc).__name__)
                self.status = "degraded"
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _received(self, message: dict) -> None:
        data = json.loads(message["data"])
        channel = message.get("channel")
        if channel in (REFERENCE_CHANNEL, REFERENCE_CHANNEL.encode()):
            if data.get("origin") != self.origin:
                invalidation.mark_stale()
            return
        self._fan_out(data)

    async def _reference_changed(self) -> None:
        """Tell the other instances that this one changed keys, users, channels or prices."""
        if self._redis is None or self.status != "ok":
            return  # Redis down: nothing to tell it with (and no request should wait on it)
        try:
            await publish_reference_change(self._redis, self.origin)
        except Exception as exc:
            # Not fatal: the change is committed; other instances see it within their caches' TTL.
            log.warning("event bus: could not publish a reference change; other instances see it within "
                        "their cache TTL", error=str(exc) or type(exc).__name__)

    async def publish(self, event: dict) -> None:
        """event carries at least user_id and mj_id."""
        # Only through Redis while our own listener is subscribed; otherwise this process's
        # subscribers would miss the event.
        if self._redis is not None and self.status == "ok":
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


async def publish_reference_change(redis, origin: str) -> None:
    """The one place the notice is written (the event bus, and CLI commands run beside servers)."""
    await redis.publish(REFERENCE_CHANNEL, json.dumps({"origin": origin}))
