"""Live task events: the SSE stream of the caller's task changes, and Redis fan-out across instances."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest

from mjgate.events import EventBus
from tests.fixtures.databases import IN_CI

REDIS_URL = os.environ.get("MJGATE_TEST_REDIS_URL")


async def read_events(resp, until_status: str, mj_id: str, timeout_s: float = 20) -> list[dict]:
    events, data = [], None
    deadline = time.monotonic() + timeout_s
    async for line in resp.aiter_lines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            events.append(data)
            if data["mj_id"] == mj_id and data["status"] == until_status:
                return events
            data = None
        assert time.monotonic() < deadline, events
    return events


async def test_sse_streams_own_progress_only(live_world):
    base, key = live_world["base_url"], live_world["key"]
    env = live_world["env"]
    from tests.fixtures.live import cli
    cli(env, "user", "create", "other", "--quota", "100000000")
    other_key = cli(env, "token", "create", "--user", "other")["key"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30) as http:
        async with http.stream("GET", f"{base}/mj/task/events", headers=headers) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            theirs = (await http.post(f"{base}/mj/submit/imagine", json={"prompt": "not yours"},
                                      headers={"Authorization": f"Bearer {other_key}"})).json()["result"]
            mine = (await http.post(f"{base}/mj/submit/imagine", json={"prompt": "watch me"}, headers=headers)).json()["result"]
            events = await read_events(stream, "SUCCESS", mine)
    assert all(e["mj_id"] != theirs for e in events)
    progress = [e["progress"] for e in events if e["mj_id"] == mine]
    assert progress[-1] == "100%" and len(progress) >= 3  # SUBMITTED, some steps, SUCCESS
    # The dashboard stream needs dashboard credentials.
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{base}/api/mj/events")).status_code == 401


async def test_redis_fans_events_out_across_instances():
    if not REDIS_URL:
        if IN_CI:
            pytest.fail("MJGATE_TEST_REDIS_URL must be set in CI")
        pytest.skip("MJGATE_TEST_REDIS_URL not set")
    a, b = EventBus(REDIS_URL), EventBus(REDIS_URL)
    try:
        await a.start()
        await b.start()
        async with b.subscribe(7) as queue, b.subscribe(8) as other:
            await asyncio.sleep(0.2)  # let the subscriptions reach Redis
            await a.publish({"user_id": 7, "mj_id": "x1", "status": "IN_PROGRESS"})
            event = await asyncio.wait_for(queue.get(), 5)
            assert event["mj_id"] == "x1"
            assert other.empty()
    finally:
        await a.stop()
        await b.stop()


async def test_local_bus_without_redis():
    bus = EventBus(None)
    await bus.start()
    async with bus.subscribe(None) as everyone, bus.subscribe(1) as one:
        await bus.publish({"user_id": 2, "mj_id": "y"})
        assert (await asyncio.wait_for(everyone.get(), 1))["mj_id"] == "y"
        assert one.empty()
    await bus.stop()
