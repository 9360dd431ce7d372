"""Two `mjgate serve` instances on PostgreSQL share one gateway queue; one is killed with SIGKILL
mid-run. No task is dispatched twice, none is charged or refunded twice, and the survivor
dispatches everything that was queued."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from mjgate.billing.ledger import ledger_balance
from mjgate.models import LedgerEntry, Task, User
from tests.scheduler.helpers import wait_until_all_finished
from tests.factories import make_channel, make_key, make_user
from tests.fixtures.live import start_gateway
from tests.fixtures.simulator import start_simulator_process

TASKS = 80


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_instances_share_the_queue_and_survive_kill_9(db, db_url, tmp_path):
    sim = start_simulator_process(secret="q", core_size=3, queue_size=2, step_seconds=0.1, steps=3)
    env = dict(MJGATE_POLLER_INTERVAL_S="0.3", MJGATE_POLLER_LEASE_S="5", MJGATE_DISPATCHER_INTERVAL_S="0.5",
               # What B was handing upstream when it died is settled after this (submit grace <= timeout).
               MJGATE_TASK_TIMEOUT_S="30")
    a = b = None
    try:
        await make_channel(db, "sim", sim.base_url, sim.secret, max_running=3, max_queued=2)
        user = await make_user(db, "many", quota=10**12)
        key = (await make_key(db, user["id"]))["key"]
        a = start_gateway(db_url, tmp_path / "a", **env)
        b = start_gateway(db_url, tmp_path / "b", **env)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=60, headers=headers) as http:
            async def submit(i: int) -> dict:
                base = (a if i % 2 else b).base_url
                return (await http.post(f"{base}/mj/submit/imagine", json={"prompt": f"task {i}"})).json()

            answers = await asyncio.gather(*[submit(i) for i in range(TASKS)])
        assert Counter(x["code"] for x in answers).keys() <= {1, 22}, answers
        await asyncio.sleep(1.0)  # some dispatched, most still queued
        b.stop(kill=True)

        await wait_until_all_finished(db, 90, "unfinished after the kill")

        prompts = [r["json"]["prompt"] for r in sim.requests() if r["path"].endswith("/submit/imagine")]
        assert len(prompts) == len(set(prompts)), Counter(prompts).most_common(3)  # never dispatched twice
        assert sim.stats()["refused_queue_full"] == 0 and sim.stats()["max_running_seen"] <= 3
        async with db.read() as session:
            tasks = (await session.scalars(select(Task))).all()
            statuses = Counter(t.status for t in tasks)
            # At most the few B was sending when it died can fail (their answers died with it).
            reasons = Counter(t.fail_reason[:80] for t in tasks if t.status == "FAILURE")
            assert statuses["SUCCESS"] >= TASKS - 6, (statuses, reasons)
            for task in tasks:
                kinds = Counter((await session.scalars(select(LedgerEntry.kind)
                                                        .where(LedgerEntry.task_id == task.id))).all())
                assert kinds["charge"] == 1 and kinds["refund"] + kinds["release"] == (task.status == "FAILURE"), \
                    (task.mj_id, task.status, kinds)
            owner = await session.get(User, user["id"])
            assert owner.quota == await ledger_balance(session, user["id"]) and owner.in_flight == 0
    finally:
        for gw in (a, b):
            if gw is not None:
                gw.stop()
        sim.stop()
