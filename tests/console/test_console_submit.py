"""Submitting from the console: the logged-in user is the caller (no API key), through the same
task service as the relay, against a real simulator."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from mjgate.billing.ledger import ledger_balance
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.models import LedgerEntry, Task, User
from tests.console.helpers import Console, data, fail, login, new_client
from tests.fixtures.relay import add_simulator_channel

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
IMAGINE_PRICE = int(0.1 * QUOTA_PER_USD)
UPSCALE_PRICE = int(0.05 * QUOTA_PER_USD)
PLENTY = 100_000_000
PNG_B64 = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


async def wait_done(console: Console, mj_id: str, timeout_s: float = 15) -> dict:
    """Poll the console's task endpoint (it refreshes stale tasks from the channel)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        item = data(await console.get(f"/api/console/tasks/{mj_id}"))
        if item["status"] in ("SUCCESS", "FAILURE"):
            return item
        assert asyncio.get_running_loop().time() < deadline, f"task {mj_id} stuck at {item['status']}"
        await asyncio.sleep(0.1)


async def balances(db, user_id: int) -> tuple[int, int]:
    async with db.read() as session:
        return (await session.get(User, user_id)).quota, await ledger_balance(session, user_id)


@sqlite_only
async def test_imagine_then_upscale_from_the_console(client, db, simulator_session):
    console = await login(client, db, "alice", quota=PLENTY)
    await add_simulator_channel(db, simulator_session)
    submitted = data(await console.post("/api/console/submit/imagine",
                                        {"prompt": "a red fox in the snow", "mode": "fast", "images": [PNG_B64]}))
    mj_id = submitted["mj_id"]
    assert submitted["code"] == 1 and submitted["task"]["mj_id"] == mj_id
    # The reference image went upstream as midjourney-proxy's base64Array.
    imagine = [r for r in simulator_session.requests() if r["path"].endswith("/submit/imagine")]
    assert imagine and len(imagine[-1]["json"]["base64Array"]) == 1
    item = await wait_done(console, mj_id)
    assert item["status"] == "SUCCESS" and item["progress"] == "100%" and item["owned"] is True
    assert item["image_url"].startswith("http://gateway.test/mj/image/") and item["quota"] == IMAGINE_PRICE
    async with db.read() as session:
        task = (await session.scalars(select(Task).where(Task.mj_id == mj_id))).one()
    assert task.token_id is None and task.user_id == console.user["id"] and task.dialect == "console"

    u1 = next(b for b in item["buttons"] if b.get("label") == "U1")
    upscale = data(await console.post("/api/console/submit/action", {"task_id": mj_id, "custom_id": u1["customId"]}))
    child = await wait_done(console, upscale["mj_id"])
    assert child["status"] == "SUCCESS" and child["action"] == "UPSCALE" and child["quota"] == UPSCALE_PRICE
    async with db.read() as session:
        row = (await session.scalars(select(Task).where(Task.mj_id == upscale["mj_id"]))).one()
        charges = list(await session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "charge")))
    assert row.parent_id == task.id and row.channel_id == task.channel_id
    assert sorted(-c.amount for c in charges) == [UPSCALE_PRICE, IMAGINE_PRICE]
    assert all(c.token_id is None for c in charges)
    quota, ledger = await balances(db, console.user["id"])
    assert quota == ledger == PLENTY - IMAGINE_PRICE - UPSCALE_PRICE

    # The batch refresh endpoint returns both, the listing shows them.
    batch = data(await console.get(f"/api/console/tasks?ids={mj_id},{upscale['mj_id']},nope"))
    assert {i["mj_id"] for i in batch["items"]} == {mj_id, upscale["mj_id"]}
    listing = data(await console.get("/api/mj/self"))
    assert [i["mj_id"] for i in listing["items"]] == [upscale["mj_id"], mj_id]


@sqlite_only
async def test_custom_zoom_goes_through_the_modal_step(client, db, simulator_session):
    console = await login(client, db, "alice", quota=PLENTY)
    await add_simulator_channel(db, simulator_session)
    mj_id = data(await console.post("/api/console/submit/imagine", {"prompt": "a lighthouse"}))["mj_id"]
    grid = await wait_done(console, mj_id)
    u1 = next(b for b in grid["buttons"] if b.get("label") == "U1")
    upscaled = await wait_done(console, data(await console.post(
        "/api/console/submit/action", {"task_id": mj_id, "custom_id": u1["customId"]}))["mj_id"])
    zoom = next(b for b in upscaled["buttons"] if b["customId"].startswith("MJ::CustomZoom::"))
    waiting = data(await console.post("/api/console/submit/action", {"task_id": upscaled["mj_id"], "custom_id": zoom["customId"]}))
    assert waiting["code"] == 21 and waiting["task"]["status"] == "MODAL"
    continued = data(await console.post("/api/console/submit/modal", {"task_id": waiting["mj_id"], "prompt": "a lighthouse --zoom 2"}))
    assert continued["mj_id"] == waiting["mj_id"]
    assert (await wait_done(console, waiting["mj_id"]))["status"] == "SUCCESS"


@sqlite_only
async def test_follow_up_rules(app, db, simulator_session):
    await add_simulator_channel(db, simulator_session)
    async with new_client(app) as a, new_client(app) as b, new_client(app) as c:
        alice = await login(a, db, "alice", quota=PLENTY)
        bob = await login(b, db, "bob", quota=PLENTY)
        boss = await login(c, db, "boss", role="admin", quota=PLENTY)
        mj_id = data(await alice.post("/api/console/submit/imagine", {"prompt": "a boat"}))["mj_id"]
        item = await wait_done(alice, mj_id)
        u1 = next(b for b in item["buttons"] if b.get("label") == "U1")["customId"]
        # Someone else's task: invisible to a user, visible but not pressable for an admin.
        fail(await bob.get(f"/api/console/tasks/{mj_id}"), 404)
        fail(await bob.post("/api/console/submit/action", {"task_id": mj_id, "custom_id": u1}), 404)
        assert data(await bob.get(f"/api/console/tasks?ids={mj_id}"))["items"] == []
        assert data(await boss.get(f"/api/console/tasks/{mj_id}"))["owned"] is False
        fail(await boss.post("/api/console/submit/action", {"task_id": mj_id, "custom_id": u1}), 403)
        # A button the task does not have, or no button at all.
        fail(await alice.post("/api/console/submit/action", {"task_id": mj_id, "custom_id": u1.replace("::1::", "::9::")}), 400)
        fail(await alice.post("/api/console/submit/action", {"task_id": mj_id, "custom_id": "rm -rf /"}), 400)
        fail(await alice.post("/api/console/submit/action", {"task_id": "404404", "custom_id": u1}), 404)
        # The modal step only for a task waiting for it.
        fail(await alice.post("/api/console/submit/modal", {"task_id": mj_id, "prompt": "x"}), 400)
        quota, ledger = await balances(db, alice.user["id"])
        assert quota == ledger == PLENTY - IMAGINE_PRICE


@sqlite_only
async def test_refusals_and_quota(client, db, simulator_session):
    console = await login(client, db, "alice", quota=IMAGINE_PRICE - 1)
    fail(await console.post("/api/console/submit/imagine", {"prompt": "a cat"}), 404)  # no channel yet
    await add_simulator_channel(db, simulator_session)
    message = fail(await console.post("/api/console/submit/imagine", {"prompt": "a cat"}), 403)
    assert "quota" in message
    quota, ledger = await balances(db, console.user["id"])
    assert quota == ledger == IMAGINE_PRICE - 1
    async with db.read() as session:
        assert list(await session.scalars(select(Task))) == []


@pytest.mark.parametrize("body", [
    {},
    {"prompt": ""},
    {"prompt": "   "},
    {"prompt": 42},
    {"prompt": "x" * 9000},
    {"prompt": "a cat", "mode": "warp"},
    {"prompt": "a cat", "bot_type": "DALL_E"},
    {"prompt": "a cat", "images": "not a list"},
    {"prompt": "a cat", "images": ["%%% not base64 %%%"]},
    {"prompt": "a cat", "images": ["data:text/html;base64,PGgxPg=="]},
    {"prompt": "a cat", "images": [PNG_B64] * 6},
    [1, 2, 3],
])
async def test_bad_submit_bodies_are_400(client, db, body):
    console = await login(client, db, "alice", quota=PLENTY)
    fail(await client.post("/api/console/submit/imagine", json=body, headers={"X-CSRF-Token": console.csrf}), 400)


@pytest.mark.parametrize("path, body", [
    ("/api/console/submit/action", {}),
    ("/api/console/submit/action", {"task_id": "", "custom_id": "x"}),
    ("/api/console/submit/action", {"task_id": "1", "custom_id": ""}),
    ("/api/console/submit/action", {"task_id": ["1"], "custom_id": "x"}),
    ("/api/console/submit/modal", {"task_id": "1", "mask": "@@@"}),
])
async def test_bad_action_bodies_are_400_or_404(client, db, path, body):
    console = await login(client, db, "alice", quota=PLENTY)
    resp = await console.post(path, body)
    assert resp.status_code in (400, 404), resp.text
    assert resp.json()["success"] is False


async def test_task_batch_endpoint_limits(client, db):
    console = await login(client, db, "alice")
    fail(await console.get("/api/console/tasks"), 400)
    fail(await console.get("/api/console/tasks?ids=" + ",".join(str(i) for i in range(51))), 400)
    assert data(await console.get("/api/console/tasks?ids=1,2"))["items"] == []
    fail(await client.get("/api/console/tasks/" + "9" * 80), 404)
