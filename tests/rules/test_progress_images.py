"""Progress images: the upstream's intermediate picture while a task runs, shown by every face through
the gateway's signed image relay and never stored."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from PIL import Image

from mjgate.tasks import repository
from tests.console.helpers import data, login
from tests.fixtures.relay import add_simulator_channel, make_relay

# Long enough that a refresh (which waits REFRESH_STALE_MS between upstream reads) sees a middle step.
SLOW = {"step_seconds": 1.2, "steps": 5}


async def _running_with_image(relay, mj_id: str) -> dict:
    for _ in range(200):
        task = await relay.fetch(mj_id)
        if task["status"] == "IN_PROGRESS" and task["imageUrl"]:
            return task
        assert task["status"] not in ("SUCCESS", "FAILURE"), task
        await asyncio.sleep(0.05)
    raise AssertionError("no progress image seen")


async def _png(client, url: str) -> Image.Image:
    resp = await client.get(url)
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png", resp.text
    return Image.open(io.BytesIO(resp.content))


async def test_fetch_and_list_show_the_progress_image_then_the_result(client, db, simulator_session):
    simulator_session.configure(**SLOW)
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    mj_id = (await relay.post("/mj/submit/imagine", {"prompt": "a lighthouse at dusk"}))["result"]
    running = await _running_with_image(relay, mj_id)
    url = running["imageUrl"]
    # The gateway's own signed URL naming the step, never the upstream's address.
    assert url.startswith(f"http://gateway.test/mj/image/{mj_id}?") and "&progress=" in url
    assert simulator_session.base_url not in url
    assert (await _png(client, url)).width > 0
    listed = await relay.post("/mj/task/list-by-condition", {"ids": [mj_id]})
    assert listed[0]["imageUrl"].startswith(f"http://gateway.test/mj/image/{mj_id}?")
    async with db.reading() as conn:
        row = await repository.get_by_mj_id(conn, mj_id)
    assert row.stored_image == ""  # relayed, not stored
    assert any("progress-" in r["path"] for r in simulator_session.requests())
    done = await relay.wait(mj_id)
    assert "progress=" not in done["imageUrl"] and done["imageUrl"] != url


async def test_acedata_ndjson_lines_carry_the_progress_image(client, db, simulator_session, monkeypatch):
    monkeypatch.setattr("mjgate.tasks.service.WAIT_REFRESH_S", 0.1)
    simulator_session.configure(**SLOW)
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    lines = []
    async with client.stream("POST", "/midjourney/imagine", json={"prompt": "a fox"},
                             headers={**relay.headers, "Accept": "application/x-ndjson"}, timeout=60) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.strip():
                lines.append(json.loads(line))
    with_picture = [line for line in lines[:-1] if line.get("progress_image_url")]
    assert with_picture, lines
    assert all("image_url" not in line for line in lines[:-1])  # image_url stays the result
    assert (await _png(client, with_picture[-1]["progress_image_url"])).width > 0
    assert lines[-1]["image_url"] and "progress_image_url" not in lines[-1]


async def test_the_console_shows_the_progress_image(client, db, simulator_session):
    simulator_session.configure(**SLOW)
    console = await login(client, db, "dora", quota=100_000_000)
    await add_simulator_channel(db, simulator_session)
    mj_id = data(await console.post("/api/console/submit/imagine", {"prompt": "a tree"}))["mj_id"]
    for _ in range(200):
        item = data(await console.get(f"/api/console/tasks/{mj_id}"))
        if item["status"] == "IN_PROGRESS" and item["image_url"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no progress image in the console")
    assert "&progress=" in item["image_url"] and (await _png(client, item["image_url"])).width > 0


