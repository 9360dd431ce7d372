"""The lease-based poller, upstream callbacks and client webhooks, against a real simulator."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from sqlalchemy import func, select

from mjgate import clock
from mjgate.models import LedgerEntry, Task, WebhookDelivery
from mjgate.poller.poller import Poller, PollerConfig
from mjgate import metrics
from mjgate.accounts.webhook_secrets import secret_of
from mjgate.client import verify_webhook
from mjgate.webhooks.delivery import WebhookDeliverer
from mjgate.tasks.repository import get_by_mj_id
from tests.factories import insert_tasks, task_row
from tests.fixtures.relay import add_simulator_channel, make_relay
from tests.fixtures.simulator import start_simulator_process

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def poller_for(app, **config) -> Poller:
    return Poller(app.state.db, app.state.tasks, PollerConfig(**config), owner="test-poller")


async def run_until(poller: Poller, db, mj_ids: list[str], statuses=("SUCCESS", "FAILURE"), timeout_s=20) -> dict:
    """Run poller cycles (never the fetch path) until every task is in a wanted status."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        await poller.cycle()
        async with db.read() as session:
            rows = {t.mj_id: t for t in await session.scalars(select(Task).where(Task.mj_id.in_(mj_ids)))}
        if all(rows[m].status in statuses for m in mj_ids):
            return rows
        assert loop.time() < deadline, {m: (t.status, t.progress) for m, t in rows.items()}
        await asyncio.sleep(0.1)


async def submit_many(relay, n: int, prefix: str = "p") -> list[str]:
    answers = await asyncio.gather(*[relay.post("/mj/submit/imagine", {"prompt": f"{prefix} {i}"}) for i in range(n)])
    assert all(a["code"] == 1 for a in answers), answers
    return [a["result"] for a in answers]


@sqlite_only
async def test_poller_drives_tasks_to_success_with_batched_calls(client, db, app):
    with start_simulator_process(secret="P", core_size=50, queue_size=50, notify=False) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        ids = await submit_many(relay, 30)
        rows = await run_until(poller_for(app, idle_interval_s=0.05), db, ids)
        assert all(t.status == "SUCCESS" and t.progress == "100%" and t.buttons for t in rows.values())
        assert all(t.next_poll_at is None and t.lease_owner is None for t in rows.values())
        calls = [r for r in sim.requests() if r["path"].endswith("/list-by-condition")]
        assert calls and all(len(c["json"]["ids"]) <= 100 for c in calls)
        assert all(c["headers"].get("x-mjgate-poller") == "test-poller" for c in calls)
        assert not [r for r in sim.requests() if r["path"].endswith("/fetch")]  # no per-task fetches


@sqlite_only
async def test_chunks_of_at_most_100_ids(client, db, app):
    with start_simulator_process(secret="P", core_size=300, queue_size=10, notify=False, step_seconds=5) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        await submit_many(relay, 250)
        async with db.write() as session:  # make them all due now
            await session.execute(Task.__table__.update().values(next_poll_at=0))
        await poller_for(app).cycle()
        sizes = sorted(len(r["json"]["ids"]) for r in sim.requests() if r["path"].endswith("/list-by-condition"))
        assert sizes == [50, 100, 100]


@sqlite_only
async def test_forgotten_tasks_fail_and_are_refunded_once(client, db, app):
    with start_simulator_process(secret="F", forget_rate=1.0, notify=False) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        ids = await submit_many(relay, 3)
        poller = poller_for(app, missing_retry_ms=0, idle_interval_s=0.01)
        async with db.write() as session:
            await session.execute(Task.__table__.update().values(next_poll_at=0))
        rows = await run_until(poller, db, ids, statuses=("FAILURE",))
        assert all("no longer knows" in t.fail_reason for t in rows.values())
        for _ in range(3):  # more cycles change nothing: terminal tasks never move again
            await poller.cycle()
        money = await relay.balances()
        assert money["used"] == 0 and money["quota"] == money["ledger"]
        async with db.read() as session:
            refunds = await session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "refund"))
        assert refunds == 3


@sqlite_only
async def test_timeout_fails_and_refunds(client, db, app):
    with start_simulator_process(secret="T", step_seconds=30, notify=False) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        [mj_id] = await submit_many(relay, 1)
        poller = poller_for(app, task_timeout_ms=500)
        await asyncio.sleep(0.6)
        async with db.write() as session:
            await session.execute(Task.__table__.update().values(next_poll_at=0))
        rows = await run_until(poller, db, [mj_id], statuses=("FAILURE",))
        assert "timed out" in rows[mj_id].fail_reason
        money = await relay.balances()
        assert money["used"] == 0 and money["quota"] == money["ledger"]


@sqlite_only
async def test_interrupted_submission_is_settled(db, app):
    from tests.factories import make_user
    user = await make_user(db, "crashy", quota=1000)
    old = clock.now_ms() - 10 * 60_000
    await insert_tasks(db, [task_row(user["id"], mj_id="orphan", status="NOT_START", progress="0%", code=None,
                                     submit_time=old, next_poll_at=0, finish_time=None, start_time=None)])
    rows = await run_until(poller_for(app), db, ["orphan"], statuses=("FAILURE",))
    assert "interrupted" in rows["orphan"].fail_reason


@sqlite_only
@pytest.mark.parametrize("knob", ["error_rate", "malformed_rate"])
async def test_bad_upstream_answers_never_stop_the_poller(client, db, app, knob):
    with start_simulator_process(secret="E", notify=False) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        ids = await submit_many(relay, 5)
        sim.configure(**{knob: 1.0})
        poller = poller_for(app)
        async with db.write() as session:
            await session.execute(Task.__table__.update().values(next_poll_at=0))
        for _ in range(3):
            await poller.cycle()  # must not raise
        async with db.read() as session:
            rows = list(await session.scalars(select(Task).where(Task.mj_id.in_(ids))))
        assert all(not t.terminal and t.lease_owner is None and t.next_poll_at > clock.now_ms() for t in rows)
        sim.configure(**{knob: 0.0})
        async with db.write() as session:
            await session.execute(Task.__table__.update().values(next_poll_at=0))
        rows = await run_until(poller, db, ids)
        assert all(t.status == "SUCCESS" for t in rows.values())


@sqlite_only
async def test_claims_are_exclusive_between_pollers(client, db, app):
    with start_simulator_process(secret="X", core_size=100, queue_size=100, notify=False, step_seconds=5) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        await submit_many(relay, 40)
        async with db.write() as session:
            await session.execute(Task.__table__.update().values(next_poll_at=0))
        a = Poller(app.state.db, app.state.tasks, PollerConfig(batch_size=25), owner="A")
        b = Poller(app.state.db, app.state.tasks, PollerConfig(batch_size=25), owner="B")
        await asyncio.gather(a.cycle(), b.cycle())
        calls = [r for r in sim.requests() if r["path"].endswith("/list-by-condition")]
        seen: dict[str, str] = {}
        for call in calls:
            for upstream_id in call["json"]["ids"]:
                assert upstream_id not in seen, "one task polled by two instances in the same cycle"
                seen[upstream_id] = call["headers"]["x-mjgate-poller"]
        assert len(seen) == 40 and set(seen.values()) == {"A", "B"}


# ------------------------------------------------------------------ upstream callbacks


@sqlite_only
async def test_upstream_callback_applies_and_is_signed(client, db, app):
    from mjgate.api.callbacks import notify_path
    with start_simulator_process(secret="N", notify=False) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        [mj_id] = await submit_many(relay, 1)
        async with db.read() as session:
            task = await get_by_mj_id(session, mj_id)
        path = notify_path(app.state.secret_key, mj_id)
        snap = {"id": task.upstream_id, "status": "IN_PROGRESS", "progress": "42%"}
        assert (await client.post(path.split("?")[0] + "?sig=forged", json=snap)).status_code == 403
        assert (await client.post(path, json={**snap, "id": "other"})).status_code == 403
        resp = await client.post(path, json=snap)
        assert resp.status_code == 200
        async with db.read() as session:
            task = await get_by_mj_id(session, mj_id)
        assert (task.status, task.progress) == ("IN_PROGRESS", "42%")
        # The notify URL was handed upstream instead of the client's own hook.
        sent = [r for r in sim.requests() if r["path"].endswith("/submit/imagine")][0]["json"]
        assert sent["notifyHook"].startswith("http://gateway.test/mj/notify/" + mj_id)


# ------------------------------------------------------------------ client webhooks


class Receiver:
    def __init__(self):
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.runner = None
        self.port = None

    async def start(self, port: int = 0):
        async def handle(request: web.Request):
            raw = await request.read()
            self.bodies.append(json.loads(raw))
            self.headers.append({**{k.lower(): v for k, v in request.headers.items()}, "raw": raw})
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/hook", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self):
        await self.runner.cleanup()


@sqlite_only
async def test_webhooks_survive_a_receiver_outage_and_keep_order(client, db, app):
    from tests.fixtures.live import free_port
    port = free_port()
    with start_simulator_process(secret="W", notify=False) as sim:
        relay = await make_relay(client, db)
        await add_simulator_channel(db, sim)
        answer = await relay.post("/mj/submit/imagine", {"prompt": "hooked", "notifyHook": f"http://127.0.0.1:{port}/hook"})
        mj_id = answer["result"]
        await run_until(poller_for(app), db, [mj_id])
        deliverer = WebhookDeliverer(app.state.db, app.state.http, "test-deliverer", allow_private=True)
        await deliverer.cycle()  # the receiver is down: the first delivery fails and waits
        async with db.read() as session:
            rows = list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        assert rows and rows[0].attempts == 1 and rows[0].status == "pending" and "Error" in rows[0].last_error
        assert all(r.attempts == 0 for r in rows[1:])  # later ones wait behind the first
        receiver = Receiver()
        await receiver.start(port)
        try:
            for _ in range(len(rows) + 2):
                clock.advance(60 * 60_000)  # skip the backoff
                await deliverer.cycle()
        finally:
            clock.reset()
            await receiver.stop()
        statuses = [b["status"] for b in receiver.bodies]
        assert statuses[-1] == "SUCCESS" and statuses[0] == "SUBMITTED"
        assert len(receiver.bodies) == len(rows)
        progresses = [int(b["progress"].rstrip("%") or 0) for b in receiver.bodies]
        assert progresses == sorted(progresses)  # delivered in order
        assert all(b["id"] == mj_id for b in receiver.bodies)
        # Standard Webhooks headers, signed with the owner's own secret (not the gateway's key).
        async with db.write() as session:
            secret = await secret_of(session, relay.user["id"])
        assert secret.startswith("whsec_")
        for headers, body in zip(receiver.headers, receiver.bodies):
            now = int(headers["webhook-timestamp"])
            assert verify_webhook(headers, headers["raw"], secret, now=now) == body
            assert "x-mjgate-signature" not in headers
        ids = [h["webhook-id"] for h in receiver.headers]
        assert len(set(ids)) == len(ids) and all(i.startswith("msg_") for i in ids)
        async with db.read() as session:
            assert all(r.status == "delivered" for r in await session.scalars(select(WebhookDelivery)))


@sqlite_only
@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook",
                                    "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hook"])
async def test_webhooks_to_private_addresses_are_refused_by_default(client, db, app, target):
    from tests.fixtures.live import free_port
    port = free_port()
    receiver = Receiver()
    await receiver.start(port)
    try:
        user = await make_relay(client, db)
        await insert_tasks(db, [task_row(user.user["id"], mj_id="hooked")])
        async with db.write() as session:
            task = await get_by_mj_id(session, "hooked")
            session.add(WebhookDelivery(task_id=task.id, url=target.format(port=port), payload={"id": "hooked"},
                                        status="pending", attempts=0, next_attempt_at=0, last_error="", created_at=0))
        deliverer = WebhookDeliverer(app.state.db, app.state.http, "guarded")
        dropped = metrics.WEBHOOKS_DROPPED.labels(reason="private_target")
        before = dropped._value.get()
        try:
            await deliverer.cycle()
        finally:
            await deliverer.close()
        async with db.read() as session:
            row = (await session.scalars(select(WebhookDelivery))).one()
        # No retry can make it public: dropped at once, logged and counted.
        assert row.status == "dead" and row.attempts == 1 and "public address" in row.last_error
        assert dropped._value.get() == before + 1
        assert receiver.bodies == []
    finally:
        await receiver.stop()
