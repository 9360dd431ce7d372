"""Idempotency-Key on submits: a retry returns the first task and is charged once, on every database."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.models import LedgerEntry, Task
from tests.console.helpers import data, fail, login
from tests.fixtures.relay import add_simulator_channel, make_relay

IMAGINE_PRICE = int(0.1 * QUOTA_PER_USD)


async def _counts(db, user_id: int) -> tuple[int, int]:
    async with db.read() as session:
        tasks = await session.scalar(select(func.count()).select_from(Task).where(Task.user_id == user_id))
        charges = await session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.user_id == user_id, LedgerEntry.kind == "charge"))
    return int(tasks), int(charges)


async def test_twenty_concurrent_duplicates_make_one_task_and_one_charge(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    headers = {**relay.headers, "Idempotency-Key": "retry-after-timeout-1"}
    body = {"prompt": "a red fox in the snow", "state": "s"}

    async def one():
        return await client.post("/mj/submit/imagine", json=body, headers=headers)

    answers = await asyncio.gather(*(one() for _ in range(20)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    codes = {a.json()["code"] for a in answers}
    ids = {a.json()["result"] for a in answers}
    assert codes == {1} and len(ids) == 1, [a.json() for a in answers]
    assert await _counts(db, relay.user["id"]) == (1, 1)
    money = await relay.balances()
    assert money["used"] == IMAGINE_PRICE and money["quota"] == money["ledger"]

    # The same body in another key order is the same request; a later retry still gets the same task.
    again = await client.post("/mj/submit/imagine", json={"state": "s", "prompt": "a red fox in the snow"},
                              headers=headers)
    assert again.json()["result"] in ids and again.json()["code"] == 1
    # Another body under the same key: a 409 in midjourney-proxy's envelope, nothing charged.
    other = await client.post("/mj/submit/imagine", json={"prompt": "a blue fox"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == 4
    assert "Idempotency-Key" in other.json()["description"] and other.json()["result"] is None
    assert await _counts(db, relay.user["id"]) == (1, 1)
    # Without the header, or with another key, a new task is made.
    fresh = await client.post("/mj/submit/imagine", json=body, headers={**relay.headers, "Idempotency-Key": "k2"})
    assert fresh.json()["code"] == 1 and fresh.json()["result"] not in ids
    assert await _counts(db, relay.user["id"]) == (2, 2)


async def test_keys_are_per_user_and_bad_keys_are_refused(client, db, simulator_session):
    alice = await make_relay(client, db, name="alice")
    bob = await make_relay(client, db, name="bob")
    await add_simulator_channel(db, simulator_session)
    body = {"prompt": "a lighthouse"}
    first = (await client.post("/mj/submit/imagine", json=body,
                               headers={**alice.headers, "Idempotency-Key": "same"})).json()
    second = (await client.post("/mj/submit/imagine", json=body,
                                headers={**bob.headers, "Idempotency-Key": "same"})).json()
    assert first["code"] == second["code"] == 1 and first["result"] != second["result"]
    bad = await client.post("/mj/submit/imagine", json=body, headers={**alice.headers, "Idempotency-Key": "x" * 300})
    assert bad.status_code == 200 and bad.json()["code"] == 4 and "Idempotency-Key" in bad.json()["description"]


async def test_acedata_and_console_faces_replay_the_same_task(client, db, simulator_session):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    headers = {**relay.headers, "Idempotency-Key": "ace-1"}
    body = {"prompt": "a small boat", "async": True}
    first = await client.post("/midjourney/imagine", json=body, headers=headers)
    again = await client.post("/midjourney/imagine", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["task_id"] == again.json()["task_id"]
    assert set(first.json()) == set(again.json())
    other = await client.post("/midjourney/imagine", json={**body, "prompt": "a big boat"}, headers=headers)
    assert other.status_code == 409, other.text
    assert other.json()["success"] is False and other.json()["error"]["code"] == "conflict"
    assert await _counts(db, relay.user["id"]) == (1, 1)


async def test_console_submit_replays_and_refuses_another_body(client, db, simulator_session):
    console = await login(client, db, "carol", quota=100_000_000)
    await add_simulator_channel(db, simulator_session)
    key = {"Idempotency-Key": "console-1"}
    first = data(await console.post("/api/console/submit/imagine", {"prompt": "a tree"}, headers=key))
    again = data(await console.post("/api/console/submit/imagine", {"prompt": "a tree"}, headers=key))
    assert first["mj_id"] == again["mj_id"] and again["code"] == 1
    assert "Idempotency-Key" in fail(await console.post("/api/console/submit/imagine", {"prompt": "a bush"},
                                                        headers=key), 409)
    assert await _counts(db, console.user["id"]) == (1, 1)
