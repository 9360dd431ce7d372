"""Cached keys, channels and prices across instances: with Redis, a change made on one instance
reaches the others' caches at once; without it, each instance sees it only when its cache expires.

Two real `mjgate serve` processes share one database (and Redis). Their key cache lives far
longer than the test (MJGATE_RELAY_AUTH_CACHE_S=300), so only a notice can make B drop an entry.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from mjgate import invalidation
from mjgate.events import EventBus, publish_reference_change, redis_client
from tests.factories import make_channel, make_key, make_user
from tests.fixtures.databases import IN_CI
from tests.fixtures.live import _env, cli, start_gateway
from tests.fixtures.simulator import start_simulator_process

REDIS_URL = os.environ.get("MJGATE_TEST_REDIS_URL")
WAIT_S = 20
LONG_CACHE = {"MJGATE_RELAY_AUTH_CACHE_S": "300"}


def need_redis() -> str:
    if not REDIS_URL:
        if IN_CI:
            pytest.fail("MJGATE_TEST_REDIS_URL must be set in CI")
        pytest.skip("MJGATE_TEST_REDIS_URL not set")
    return REDIS_URL


async def wait_subscribed(http: httpx.AsyncClient, base_url: str) -> None:
    """A gateway subscribes to Redis in the background after it starts."""
    deadline = time.monotonic() + WAIT_S
    while (await http.get(f"{base_url}/readyz")).json()["redis"] != "ok":
        assert time.monotonic() < deadline, f"{base_url} never subscribed to Redis"
        await asyncio.sleep(0.1)


async def submit(http: httpx.AsyncClient, base_url: str, key: str, prompt: str) -> httpx.Response:
    return await http.post(f"{base_url}/mj/submit/imagine", json={"prompt": prompt},
                           headers={"Authorization": f"Bearer {key}"})


def submits_seen(sim) -> int:
    return sum(1 for r in sim.requests() if r.get("path", "").endswith("/submit/imagine"))


@pytest.fixture
def two_sims():
    one, two = start_simulator_process(secret="one"), start_simulator_process(secret="two")
    try:
        yield one, two
    finally:
        one.stop()
        two.stop()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_change_on_one_instance_reaches_the_others_caches_at_once(db, db_url, tmp_path, two_sims):
    redis_url = need_redis()
    sim_one, sim_two = two_sims
    admin = await make_user(db, "boss", role="admin")
    user = await make_user(db, "client", quota=10**9)
    key = await make_key(db, user["id"])
    channel_id = await make_channel(db, "sim", sim_one.base_url, sim_one.secret)
    env = dict(MJGATE_REDIS_URL=redis_url, **LONG_CACHE)
    a = start_gateway(db_url, tmp_path / "a", **env)
    b = start_gateway(db_url, tmp_path / "b", **env)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await wait_subscribed(http, a.base_url)
            await wait_subscribed(http, b.base_url)

            # B has the key and the channel in its caches.
            first = await submit(http, b.base_url, key["key"], "warm the caches")
            assert first.json()["code"] == 1, first.text
            assert (submits_seen(sim_one), submits_seen(sim_two)) == (1, 0)

            # A channel edit on A: B's very next submit goes to the edited channel's new upstream.
            edited = await http.patch(f"{a.base_url}/api/admin/channels/{channel_id}", headers=admin["headers"],
                                      json={"base_url": sim_two.base_url, "secret": sim_two.secret})
            assert edited.status_code == 200, edited.text
            moved = await submit(http, b.base_url, key["key"], "after the edit")
            assert moved.json()["code"] == 1, moved.text
            assert (submits_seen(sim_one), submits_seen(sim_two)) == (1, 1)

            # A key disabled on A is refused on B at once, although B cached it for 300 s.
            disabled = await http.post(f"{a.base_url}/api/admin/keys/{key['id']}/disable", headers=admin["headers"],
                                       json={})
            assert disabled.status_code == 200, disabled.text
            refused = await submit(http, b.base_url, key["key"], "with a disabled key")
            assert refused.status_code == 401, refused.text
            assert submits_seen(sim_two) == 1

            # A change made by a CLI command beside the servers reaches them too.
            cli(_env(db_url, tmp_path / "cli", MJGATE_REDIS_URL=redis_url), "token", "enable", str(key["id"]))
            again = await submit(http, b.base_url, key["key"], "enabled again from the CLI")
            assert again.json()["code"] == 1, again.text
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_without_redis_another_instance_keeps_its_cache_until_it_expires(db, db_url, tmp_path, two_sims):
    """Nothing is shared without Redis: B keeps a cached key for its TTL (here 300 s)."""
    sim_one, _ = two_sims
    admin = await make_user(db, "boss", role="admin")
    user = await make_user(db, "client", quota=10**9)
    key = await make_key(db, user["id"])
    await make_channel(db, "sim", sim_one.base_url, sim_one.secret)
    a = start_gateway(db_url, tmp_path / "a", **LONG_CACHE)
    b = start_gateway(db_url, tmp_path / "b", **LONG_CACHE)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await submit(http, b.base_url, key["key"], "cache it")).json()["code"] == 1
            disabled = await http.post(f"{a.base_url}/api/admin/keys/{key['id']}/disable", headers=admin["headers"],
                                       json={})
            assert disabled.status_code == 200, disabled.text
            assert (await submit(http, a.base_url, key["key"], "on A")).status_code == 401
            assert (await submit(http, b.base_url, key["key"], "on B, from its cache")).json()["code"] == 1
    finally:
        a.stop()
        b.stop()


async def test_the_bus_marks_caches_stale_on_other_instances_notices_only():
    redis_url = need_redis()
    bus = EventBus(redis_url)
    redis = redis_client(redis_url)
    try:
        await bus.start()
        deadline = time.monotonic() + WAIT_S
        while bus.status != "ok":
            assert time.monotonic() < deadline, "the bus never subscribed"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the subscription reaches Redis
        before = invalidation.generation()
        await publish_reference_change(redis, bus.origin)  # its own notice: already applied locally
        await publish_reference_change(redis, "another-instance")
        deadline = time.monotonic() + WAIT_S
        while invalidation.generation() == before:
            assert time.monotonic() < deadline, "the notice never arrived"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert invalidation.generation() == before + 1
    finally:
        await bus.stop()
        await redis.aclose()


async def test_a_bus_that_was_cut_off_drops_the_caches_when_it_subscribes_again(redis_server):
    """Notices sent while an instance was not subscribed are lost, so it assumes it missed one."""
    bus = EventBus(redis_server.url)
    try:
        await bus.start()  # Redis is down: degraded, nothing cached is dropped
        assert bus.status == "degraded"
        before = invalidation.generation()
        redis_server.start()
        deadline = time.monotonic() + WAIT_S
        while bus.status != "ok":
            assert time.monotonic() < deadline, "the bus never reconnected"
            await asyncio.sleep(0.05)
        assert invalidation.generation() > before
    finally:
        await bus.stop()
