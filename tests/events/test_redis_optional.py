"""Redis is optional at start too: a gateway whose Redis is down starts, degrades to in-process
events and rate limits, says so on /readyz, and shares again once Redis returns."""

from __future__ import annotations

import asyncio
import time

import httpx

from mjgate.events import EventBus
from mjgate.ratelimit import RedisRateLimiter
from tests.fixtures.live import free_port, start_gateway

WAIT_S = 30


async def _until(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


async def _crosses(a: EventBus, b: EventBus, mj_id: str) -> bool:
    """Whether an event published on a reaches a subscriber of b."""
    async with b.subscribe(None) as queue:
        await a.publish({"user_id": 1, "mj_id": mj_id})
        try:
            event = await asyncio.wait_for(queue.get(), 3)
        except asyncio.TimeoutError:
            return False
        return event["mj_id"] == mj_id


async def test_bus_starts_with_redis_on_a_closed_port_and_delivers_locally():
    bus = EventBus(f"redis://127.0.0.1:{free_port()}/0")
    await bus.start()  # does not raise
    try:
        assert bus.status == "degraded"
        async with bus.subscribe(7) as queue:
            await bus.publish({"user_id": 7, "mj_id": "local-1"})
            assert (await asyncio.wait_for(queue.get(), 3))["mj_id"] == "local-1"
    finally:
        await bus.stop()
    assert EventBus(None).status == "off"


async def test_bus_recovers_when_redis_comes_and_goes(redis_server):
    a, b = EventBus(redis_server.url), EventBus(redis_server.url)
    await a.start()
    await b.start()
    try:
        assert a.status == b.status == "degraded"  # nothing listens on the port yet
        assert not await _crosses(a, b, "before")  # in-process only: b never sees a's event

        redis_server.start()
        await _until(lambda: a.status == b.status == "ok", "both buses reconnected")
        assert await _crosses(a, b, "shared-1")

        redis_server.stop()
        await _until(lambda: a.status == b.status == "degraded", "both buses noticed Redis left")
        async with a.subscribe(None) as queue:  # local subscribers still get their events
            await a.publish({"user_id": 1, "mj_id": "while-down"})
            assert (await asyncio.wait_for(queue.get(), 3))["mj_id"] == "while-down"

        redis_server.start()  # same port, a fresh server
        await _until(lambda: a.status == b.status == "ok", "both buses reconnected again")
        assert await _crosses(b, a, "shared-2")
    finally:
        await a.stop()
        await b.stop()


async def test_rate_limiter_falls_back_and_returns_to_redis(redis_server):
    limiter = RedisRateLimiter(redis_server.url, 3)
    other = RedisRateLimiter(redis_server.url, 3)
    try:
        assert (await limiter.hit("k")).allowed and limiter.status == "degraded"  # Redis not started
        redis_server.start()
        await asyncio.sleep(1.1)  # past the limiter's back-off, so the next hit tries Redis
        assert [(await limiter.hit("shared")).allowed for _ in range(2)] == [True, True]
        assert limiter.status == "ok"
        # The bucket is in Redis: another instance sees the two hits.
        assert [(await other.hit("shared")).allowed for _ in range(2)] == [True, False]
    finally:
        await limiter.close()
        await other.close()


async def test_gateway_starts_without_its_redis_and_reports_it(redis_server, tmp_path):
    db_path = tmp_path / "g" / "mjgate.db"
    gateway = start_gateway(f"sqlite+aiosqlite:///{db_path}", tmp_path / "g", MJGATE_REDIS_URL=redis_server.url)
    try:
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["redis"] == "degraded"
            assert "redis unavailable at start" in gateway.log()

            redis_server.start()
            deadline = time.monotonic() + WAIT_S
            while (await http.get("/readyz")).json()["redis"] != "ok":
                assert time.monotonic() < deadline, "the gateway never reconnected to Redis"
                await asyncio.sleep(0.2)

            redis_server.stop()
            deadline = time.monotonic() + WAIT_S
            while (await http.get("/readyz")).json()["redis"] != "degraded":
                assert time.monotonic() < deadline, "the gateway never noticed Redis left"
                await asyncio.sleep(0.2)
            assert (await http.get("/readyz")).status_code == 200  # Redis is optional: still ready
    finally:
        gateway.stop()


async def test_gateway_without_redis_reports_off(tmp_path):
    gateway = start_gateway(f"sqlite+aiosqlite:///{tmp_path}/mjgate.db", tmp_path)
    try:
        assert httpx.get(gateway.base_url + "/readyz").json()["redis"] == "off"
    finally:
        gateway.stop()
