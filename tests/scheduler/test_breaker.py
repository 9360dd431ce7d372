"""A failing channel is cooled down, then auto-disabled; traffic moves to the healthy one; the probe
re-enables it once it answers again. A real server in front of two simulators."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.factories import make_channel, make_key, make_user
from tests.fixtures.live import cli, start_gateway
from tests.fixtures.simulator import start_simulator_process

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def _channel(env: dict, name: str) -> dict:
    channels = await asyncio.to_thread(cli, env, "channel", "list")
    return next(c for c in channels if c["name"] == name)


@sqlite_only
async def test_failing_channel_cools_down_is_disabled_and_probed_back(db, db_url, tmp_path):
    broken = start_simulator_process(secret="b", error_rate=1.0)
    healthy = start_simulator_process(secret="h")
    gateway = None
    try:
        await make_channel(db, "broken", broken.base_url, broken.secret, priority=10)  # tried first
        await make_channel(db, "healthy", healthy.base_url, healthy.secret)
        user = await make_user(db, "u", quota=10**9)
        key = (await make_key(db, user["id"]))["key"]
        gateway = start_gateway(db_url, tmp_path / "gw", MJGATE_BREAKER_FAILURES="2", MJGATE_BREAKER_COOLDOWN_S="0.3",
                                MJGATE_BREAKER_DISABLE_AFTER="3", MJGATE_PROBE_INTERVAL_S="0.5",
                                MJGATE_DISPATCHER_INTERVAL_S="0.5")
        states = []
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            deadline = time.monotonic() + 60
            while True:
                answer = (await http.post("/mj/submit/imagine", json={"prompt": "x"})).json()
                assert answer["code"] == 1, answer  # the healthy channel takes what the broken one drops
                state = (await _channel(gateway.env, "broken"))["health"]["state"]
                states.append(state)
                if state == "auto_disabled":
                    break
                assert time.monotonic() < deadline, states
                await asyncio.sleep(0.1)
            broken_calls = len([r for r in broken.requests() if "/submit/" in r["path"]])
            for _ in range(5):
                assert (await http.post("/mj/submit/imagine", json={"prompt": "y"})).json()["code"] == 1
            assert len([r for r in broken.requests() if "/submit/" in r["path"]]) == broken_calls  # no more traffic

            broken.configure(error_rate=0.0)
            deadline = time.monotonic() + 30
            while (await _channel(gateway.env, "broken"))["health"]["state"] != "enabled":
                assert time.monotonic() < deadline, "the probe never re-enabled the channel"
                await asyncio.sleep(0.2)
        assert "channel alert" in gateway.log() and "re_enabled" in gateway.log()
        metrics = httpx.get(gateway.base_url + "/metrics").text
        assert 'mjgate_channel_breaker_total{channel="1",event="auto_disabled"} 1.0' in metrics
        # Cooled down twice (with a growing backoff) before the third cooldown disabled it.
        assert 'mjgate_channel_breaker_total{channel="1",event="cooldown"} 2.0' in metrics
        assert 'mjgate_channel_breaker_total{channel="1",event="re_enabled"} 1.0' in metrics
        assert 'mjgate_channel_state{channel="2",state="enabled"} 1.0' in metrics
    finally:
        if gateway is not None:
            gateway.stop()
        broken.stop()
        healthy.stop()
