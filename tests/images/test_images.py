"""Image forwarding (SPEC §3.4): the stored copy, conditional and range requests, the host
allow-list (no SSRF), constant-memory streaming and releasing the upstream on disconnect."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from mjgate.images.signing import signed_image_path
from mjgate.db import Database
from tests.factories import insert_tasks, make_channel, make_user, task_row
from tests.fixtures.relay import add_simulator_channel, make_relay

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@sqlite_only
async def test_final_image_is_copied_and_served_from_the_store(client, db, app, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    task = await relay.wait((await relay.post("/mj/submit/imagine", {"prompt": "keep me"}))["result"])
    await app.state.image_copier.drain()
    first = await client.get(task["imageUrl"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    simulator_session.restart()  # the upstream forgets the task and its image
    again = await client.get(task["imageUrl"])
    assert again.status_code == 200 and again.content == first.content
    etag = again.headers["etag"]
    assert (await client.get(task["imageUrl"], headers={"If-None-Match": etag})).status_code == 304
    part = await client.get(task["imageUrl"], headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == first.content[:8] == b"\x89PNG\r\n\x1a\n"


@sqlite_only
@pytest.mark.parametrize("image_url", [
    "http://127.0.0.1:5432/",              # the database port on the upstream's own host
    "http://evil.example/x.png",            # a foreign host
    "file:///etc/passwd",
    "http://[::1]:6379/",
])
async def test_image_hosts_outside_the_allow_list_are_refused(client, db, app, simulator_session, image_url):
    user = await make_user(db, "owner")
    channel_id = await add_simulator_channel(db, simulator_session)
    await insert_tasks(db, [task_row(user["id"], mj_id="ssrf", channel_id=channel_id, image_url=image_url)])
    resp = await client.get(signed_image_path(app.state.secret_key, "ssrf", 60))
    assert resp.status_code == 403, resp.text
    assert simulator_session.requests() == []


@sqlite_only
async def test_explicit_allow_list(client, db, app, simulator_session):
    user = await make_user(db, "owner")
    host = simulator_session.base_url.split("//")[1]
    ch = await make_channel(db, "cdn", "http://upstream.example", "s", image_hosts=[host])
    await insert_tasks(db, [task_row(user["id"], mj_id="ok", channel_id=ch,
                                     image_url=simulator_session.base_url + "/__sim/big-image?mb=0.01")])
    resp = await client.get(signed_image_path(app.state.secret_key, "ok", 60))
    assert resp.status_code == 200 and len(resp.content) == int(0.01 * 1024 * 1024)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _big_image_task(live_world, mb: int, delay_ms: int = 0) -> str:
    """A finished task in the live gateway's database whose image is the simulator's big image."""
    sim = live_world["simulator"]
    db = Database(live_world["env"]["MJGATE_DATABASE_URL"])
    try:
        async with db.read() as session:
            from sqlalchemy import select
            from mjgate.models import Channel, User
            user_id = (await session.scalars(select(User.id))).first()
            channel_id = (await session.scalars(select(Channel.id))).first()
        mj_id = f"big{mb}x{delay_ms}"
        await insert_tasks(db, [task_row(user_id, mj_id=mj_id, channel_id=channel_id,
                                         image_url=f"{sim.base_url}/__sim/big-image?mb={mb}&delay_ms={delay_ms}")])
    finally:
        await db.dispose()
    return live_world["base_url"] + signed_image_path("live-test-secret", mj_id, 600)


async def test_fifty_megabytes_stream_in_constant_memory(live_world):
    url = await _big_image_task(live_world, 50)
    pid = live_world["gateway"].proc.pid
    httpx.get(live_world["base_url"] + "/healthz")
    baseline = _rss_kb(pid)
    peak = baseline
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = 0
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            async with http.stream("GET", url) as resp:
                assert resp.status_code == 200
                assert int(resp.headers["content-length"]) == 50 * 1024 * 1024
                async for chunk in resp.aiter_bytes():
                    received += len(chunk)
                    await asyncio.sleep(0)  # a consumer that reads as it goes
    finally:
        done.set()
        sampler.join()
    assert received == 50 * 1024 * 1024
    growth_mb = (peak - baseline) / 1024
    assert growth_mb < 30, f"RSS grew {growth_mb:.1f} MB while relaying 50 MB"


async def test_client_disconnect_releases_the_upstream(live_world):
    sim = live_world["simulator"]
    url = await _big_image_task(live_world, 50, delay_ms=20)
    async with httpx.AsyncClient(timeout=30) as http:
        async with http.stream("GET", url) as resp:
            assert resp.status_code == 200
            got = 0
            async for chunk in resp.aiter_bytes():
                got += len(chunk)
                if got > 1024 * 1024:
                    break  # leave mid-image
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stats = sim.stats()
        if stats.get("big_image_aborted") == 1 and stats.get("big_image_open") == 0:
            break
        await asyncio.sleep(0.1)
    assert stats.get("big_image_aborted") == 1 and stats.get("big_image_open") == 0, stats
    assert stats.get("big_image_completed", 0) == 0
