"""The gateway queue, in-flight limits and cancel, in-process against a real simulator over HTTP.

The dispatcher is driven by hand here (one `cycle()` per step) so each step can be looked at;
tests/scheduler/test_capacity.py runs it as a real server does.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mjgate.models import LedgerEntry, Task, User
from mjgate.scheduler.dispatcher import Dispatcher
from tests.factories import make_key, make_user
from tests.fixtures.relay import add_simulator_channel, make_relay
from tests.fixtures.simulator import start_simulator_process


@pytest.fixture
def slow_sim():
    """An upstream whose tasks run until the test finishes them (/__sim/finish)."""
    sim = start_simulator_process(step_seconds=30, steps=4, core_size=1, queue_size=0)
    try:
        yield sim
    finally:
        sim.stop()


def dispatcher(app, max_wait_ms: int = 600_000) -> Dispatcher:
    state = app.state
    return Dispatcher(state.db, state.tasks, state.tasks.events, max_wait_ms=max_wait_ms)


async def ledger_of(db, mj_id: str) -> list[tuple[str, int]]:
    async with db.read() as session:
        task = (await session.scalars(select(Task).where(Task.mj_id == mj_id))).one()
        rows = await session.scalars(select(LedgerEntry).where(LedgerEntry.task_id == task.id).order_by(LedgerEntry.id))
        return [(r.kind, r.amount) for r in rows]


async def in_flight(db, user_id: int) -> int:
    async with db.read() as session:
        return (await session.get(User, user_id)).in_flight


async def test_full_channel_queues_then_dispatches_when_a_task_finishes(app, client, db, slow_sim):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, slow_sim, max_running=1, max_queued=0)
    first = await relay.post("/mj/submit/imagine", {"prompt": "first"})
    assert first["code"] == 1
    second = await relay.post("/mj/submit/imagine", {"prompt": "second"})
    third = await relay.post("/mj/submit/imagine", {"prompt": "third"})
    # Queued in the gateway: midjourney-proxy's 22, with how many are ahead.
    assert (second["code"], second["properties"]["numberOfQueues"]) == (22, 0), second
    assert (third["code"], third["properties"]["numberOfQueues"]) == (22, 1), third
    assert "In queue" in third["description"]
    queued = await relay.fetch(third["result"])
    assert queued["status"] == "NOT_START" and queued["properties"]["numberOfQueues"] == 1
    # The upstream holds only what the channel can: one task, never refused for a full queue.
    assert slow_sim.stats()["refused_queue_full"] == 0
    assert len([r for r in slow_sim.requests() if r["path"].endswith("/submit/imagine")]) == 1
    assert await dispatcher(app).cycle() == 0  # no room yet

    slow_sim.finish_all()
    done = await relay.wait(first["result"])  # fetch refreshes it: the slot is given back
    assert done["status"] == "SUCCESS"
    hands = dispatcher(app)
    assert await hands.cycle() == 1
    await hands.settle()
    sent = [r for r in slow_sim.requests() if r["path"].endswith("/submit/imagine")]
    assert [r["json"]["prompt"] for r in sent] == ["first", "second"]  # FIFO within the user
    assert (await relay.fetch(second["result"]))["status"] in ("SUBMITTED", "IN_PROGRESS")
    assert (await relay.fetch(third["result"]))["properties"]["numberOfQueues"] == 0
    money = await relay.balances()
    assert money["quota"] == money["ledger"]


async def test_cancel_a_queued_task_refunds_it_once(app, client, db, slow_sim):
    relay = await make_relay(client, db)
    other = await make_relay(client, db, name="bob")
    await add_simulator_channel(db, slow_sim, max_running=1, max_queued=0)
    await relay.post("/mj/submit/imagine", {"prompt": "running"})
    queued = (await relay.post("/mj/submit/imagine", {"prompt": "waiting"}))["result"]
    before = await relay.balances()
    # Another user's task cannot be cancelled (nor seen).
    refused = await other.post(f"/mj/task/{queued}/cancel", {})
    assert refused["code"] == 3
    cancelled = await relay.post(f"/mj/task/{queued}/cancel", {})
    assert (cancelled["code"], cancelled["result"]) == (1, queued)
    task = await relay.fetch(queued)
    assert task["status"] == "CANCEL"
    again = await relay.post(f"/mj/task/{queued}/cancel", {})
    assert again["code"] == 4 and "already CANCEL" in again["description"]
    kinds = [kind for kind, _ in await ledger_of(db, queued)]
    assert kinds == ["charge", "refund"]
    after = await relay.balances()
    assert after["quota"] == after["ledger"] and after["quota"] > before["quota"]
    assert await in_flight(db, relay.user["id"]) == 1  # only the running one
    assert await dispatcher(app).cycle() == 0  # nothing left to dispatch


async def test_cancel_a_running_task_through_its_channel(app, client, db, slow_sim):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, slow_sim)
    mj_id = (await relay.post("/mj/submit/imagine", {"prompt": "stop me"}))["result"]
    cancelled = await relay.post(f"/mj/task/{mj_id}/cancel", {})
    assert cancelled["code"] == 1, cancelled
    assert (await relay.fetch(mj_id))["status"] == "CANCEL"
    assert [k for k, _ in await ledger_of(db, mj_id)] == ["charge", "refund"]
    assert await in_flight(db, relay.user["id"]) == 0
    # An upstream without a cancel route: a clear refusal, the task goes on.
    slow_sim.configure(cancel_supported=False)
    other = (await relay.post("/mj/submit/imagine", {"prompt": "keep me"}))["result"]
    refused = await relay.post(f"/mj/task/{other}/cancel", {})
    assert refused["code"] == 4 and "cannot cancel" in refused["description"]
    assert (await relay.fetch(other))["status"] != "CANCEL"


async def test_acedata_cancel_and_queue_position(app, client, db, slow_sim):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, slow_sim, max_running=1, max_queued=0)
    headers = relay.headers
    await relay.post("/mj/submit/imagine", {"prompt": "running"})
    resp = await client.post("/midjourney/imagine", json={"prompt": "queued", "callback_url": "http://127.0.0.1:9/cb"},
                             headers=headers)
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["task_id"]
    retrieved = (await client.post("/midjourney/tasks", json={"action": "retrieve", "id": task_id},
                                   headers=headers)).json()
    assert retrieved["queue_position"] == 0
    cancelled = await client.post("/midjourney/tasks", json={"action": "cancel", "id": task_id}, headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["success"] is True, cancelled.text
    assert [k for k, _ in await ledger_of(db, task_id)] == ["charge", "refund"]


async def test_in_flight_limits_per_user_and_per_key(app, client, db, slow_sim):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, slow_sim, max_running=1, max_queued=0)
    admin = await client.post("/api/admin/users/{}/limits".format(relay.user["id"]), json={"max_in_flight": 2},
                              headers=relay.user["headers"])
    assert admin.status_code == 403  # only admins set limits
    root = await make_user(db, "root", role="root")
    set_user = await client.post(f"/api/admin/users/{relay.user['id']}/limits", json={"max_in_flight": 2},
                                 headers=root["headers"])
    assert set_user.status_code == 200 and set_user.json()["data"]["max_in_flight"] == 2, set_user.text
    ids = [(await relay.post("/mj/submit/imagine", {"prompt": f"t{i}"}))["result"] for i in range(2)]
    refused = await relay.post("/mj/submit/imagine", {"prompt": "one too many"})
    assert refused["code"] == 4 and "2 queued or running" in refused["description"], refused
    ace = await client.post("/midjourney/imagine", json={"prompt": "x"}, headers=relay.headers)
    assert ace.status_code == 429 and ace.json()["error"]["code"] == "too_many_requests"
    # Earlier tasks are unaffected; refused submits cost nothing.
    assert [(await relay.fetch(i))["status"] for i in ids] == ["SUBMITTED", "NOT_START"]  # the 2nd waits for room
    money = await relay.balances()
    assert money["quota"] == money["ledger"] and await in_flight(db, relay.user["id"]) == 2
    # A finished task frees a place.
    await relay.post(f"/mj/task/{ids[0]}/cancel", {})
    assert (await relay.post("/mj/submit/imagine", {"prompt": "now it fits"}))["code"] == 1

    # A key's own limit, whatever the user's.
    lifted = await client.post(f"/api/admin/users/{relay.user['id']}/limits", json={"max_in_flight": None},
                               headers=root["headers"])
    assert lifted.json()["data"]["max_in_flight"] is None
    limited = await make_key(db, relay.user["id"])
    set_key = await client.post(f"/api/admin/keys/{limited['id']}/limits", json={"max_in_flight": 0},
                                headers=root["headers"])
    assert set_key.status_code == 200, set_key.text
    resp = await client.post("/mj/submit/imagine", json={"prompt": "k"},
                             headers={"Authorization": f"Bearer {limited['key']}"})
    assert resp.json()["code"] == 4 and "this key may have 0" in resp.json()["description"]


async def test_a_task_queued_too_long_fails_and_is_refunded_once(app, client, db, slow_sim):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, slow_sim, max_running=1, max_queued=0)
    await relay.post("/mj/submit/imagine", {"prompt": "running"})
    queued = (await relay.post("/mj/submit/imagine", {"prompt": "waits"}))["result"]
    impatient = dispatcher(app, max_wait_ms=0)
    await impatient.cycle()
    await impatient.cycle()  # a second pass finds nothing more to do
    task = await relay.fetch(queued)
    assert task["status"] == "FAILURE" and "waited in the gateway queue" in task["failReason"]
    assert [k for k, _ in await ledger_of(db, queued)] == ["charge", "refund"]
    money = await relay.balances()
    assert money["quota"] == money["ledger"]
