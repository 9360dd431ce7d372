"""The per-key rate limiter: the in-process bucket, and the Redis one shared by several instances."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from mjgate.ratelimit import KEY_PREFIX, LocalRateLimiter, RedisRateLimiter, build_rate_limiter, retry_after_header
from tests.fixtures.databases import IN_CI


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_local_bucket_allows_a_burst_then_one_per_interval():
    clock = FakeClock()
    limiter = LocalRateLimiter(6, 60.0, clock=clock)  # one every 10 s, bursts of 6
    decisions = [await limiter.hit("k") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    assert [d.remaining for d in decisions[:6]] == [5, 4, 3, 2, 1, 0]
    assert decisions[6].retry_after_s == pytest.approx(10.0) and retry_after_header(decisions[6]) == "10"
    clock.now += 9.9
    assert not (await limiter.hit("k")).allowed
    clock.now += 0.1
    assert (await limiter.hit("k")).allowed
    assert not (await limiter.hit("k")).allowed
    # Keys are independent; a full minute of silence refills the bucket.
    assert (await limiter.hit("other")).remaining == 5
    clock.now += 60
    assert [(await limiter.hit("k")).allowed for _ in range(7)] == [True] * 6 + [False]


async def test_local_bucket_never_exceeds_the_rate_over_a_window():
    clock = FakeClock()
    limiter = LocalRateLimiter(30, 60.0, clock=clock)
    allowed = 0
    for _ in range(600):  # 10 requests a second for a minute
        allowed += (await limiter.hit("k")).allowed
        clock.now += 0.1
    assert 59 <= allowed <= 61  # the burst of 30, then one per 2 s: 30 more in the minute


async def test_zero_means_no_limit():
    limiter = build_rate_limiter(0, "redis://127.0.0.1:1/0")
    assert isinstance(limiter, LocalRateLimiter)
    assert all([(await limiter.hit("k")).allowed for _ in range(1000)])


@pytest.fixture
def redis_url(tmp_path):
    """MJGATE_TEST_REDIS_URL when set (as in CI), else a private redis-server if one is installed."""
    if os.environ.get("MJGATE_TEST_REDIS_URL"):
        yield os.environ["MJGATE_TEST_REDIS_URL"]
        return
    server = shutil.which("redis-server")
    if server is None:
        if IN_CI:
            pytest.fail("MJGATE_TEST_REDIS_URL must be set in CI")
        pytest.skip("no MJGATE_TEST_REDIS_URL and no redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_redis_bucket_is_shared_between_instances(redis_url):
    a, b = RedisRateLimiter(redis_url, 4), RedisRateLimiter(redis_url, 4)
    try:
        key = f"test:{uuid.uuid4()}"  # a shared Redis may hold other buckets
        decisions = [await (a if i % 2 else b).hit(key) for i in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, True, False]
        assert [d.remaining for d in decisions[:4]] == [3, 2, 1, 0]
        assert 14 <= decisions[4].retry_after_s <= 15  # one every 15 s
        assert (await a.hit(key + ":other")).allowed  # per key
    finally:
        await a.close()
        await b.close()


async def test_redis_bucket_falls_back_to_local_when_redis_is_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", 2)
    try:
        assert [(await limiter.hit("k")).allowed for _ in range(3)] == [True, True, False]
    finally:
        await limiter.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_two_gateway_instances_share_a_key_limit_through_redis(db, db_url, tmp_path, redis_url):
    import contextlib

    import httpx

    from tests.acedata.conftest import app_with
    from tests.fixtures.relay import make_relay

    apps = [app_with(db_url, tmp_path / name, rate_limit_per_minute=2, redis_url=redis_url) for name in "ab"]
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for application in apps:
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
            clients.append(await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://gateway.test")))
        relay = await make_relay(clients[0], db, name=f"shared-{uuid.uuid4().hex[:8]}")
        # A shared Redis may remember this key id's bucket from an earlier run: start clean.
        import redis.asyncio as aioredis
        async with aioredis.from_url(redis_url) as r:
            await r.delete(f"{KEY_PREFIX}key:{relay.key['id']}")
        statuses = []
        for client in (clients[0], clients[1], clients[0], clients[1]):
            resp = await client.post("/midjourney/tasks", json={"action": "retrieve_batch"}, headers=relay.headers)
            statuses.append(resp.status_code)
        assert statuses == [200, 200, 429, 429]
