"""Two gateway processes on one PostgreSQL database share the polling of 500 tasks; one is
killed with SIGKILL mid-run and the other finishes its tasks once the leases expire."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import httpx
import pytest
from sqlalchemy import func, select

from mjgate.models import LedgerEntry, Task
from tests.factories import make_channel, make_key, make_user
from tests.fixtures.live import start_gateway
from tests.fixtures.simulator import start_simulator_process

TASKS = 500
LEASE_S = 8  # longer than a poll cycle can take on a loaded 2-core machine, or a lease runs out mid-cycle


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_instances_share_polling_and_survive_kill_9(db, db_url, tmp_path):
    sim = start_simulator_process(secret="multi", core_size=TASKS + 50, queue_size=100, step_seconds=0.4,
                                  steps=5, failure_rate=0.1, notify=False, seed=7)
    # A quarter of the simulator's failures say "Banned prompt": with moderation escalation on, the
    # user would be blocked mid-submit. This test is about polling, so nobody is blocked.
    env = dict(MJGATE_POLLER_LEASE_S=str(LEASE_S), MJGATE_UPSTREAM_CALLBACKS="false",
               MJGATE_POLLER_INTERVAL_S="0.2", MJGATE_POLLER_BATCH_SIZE="100", MJGATE_MODERATION_HITS_PER_DAY="0")
    a = b = None
    try:
        user = await make_user(db, "many", quota=10**12)
        key = (await make_key(db, user["id"]))["key"]
        await make_channel(db, "sim", sim.base_url, sim.secret)
        a = start_gateway(db_url, tmp_path / "a", **env)
        b = start_gateway(db_url, tmp_path / "b", **env)
        headers = {"Authorization": f"Bearer {key}"}
        limits = asyncio.Semaphore(50)
        async with httpx.AsyncClient(timeout=60) as http:
            async def submit(i: int) -> str:
                async with limits:
                    resp = await http.post(f"{a.base_url}/mj/submit/imagine", json={"prompt": f"task {i}"},
                                           headers=headers)
                answer = resp.json()
                assert answer["code"] == 1, answer
                return answer["result"]

            ids = await asyncio.gather(*[submit(i) for i in range(TASKS)])
        assert len(set(ids)) == TASKS

        # A slow upstream keeps each poll cycle (and its leases) open for a while, so the kill
        # below lands while B holds leases it can never release.
        sim.configure(slow_seconds=0.5)
        deadline = time.monotonic() + 30
        leased_by_b: set[str] = set()
        while time.monotonic() < deadline and not leased_by_b:
            async with db.read() as session:
                # Poller owner ids are host:pid:random, so B's leases are recognisable by its pid.
                leased_by_b = set(await session.scalars(
                    select(Task.mj_id).where(Task.lease_owner.like(f"%:{b.proc.pid}:%"))))
            await asyncio.sleep(0.05)
        assert leased_by_b, "B never held a lease"
        b.stop(kill=True)
        sim.configure(slow_seconds=0)
        killed_at = time.monotonic()

        deadline = time.monotonic() + 120
        while True:
            async with db.read() as session:
                open_count = await session.scalar(select(func.count()).select_from(Task).where(
                    Task.status.not_in(["SUCCESS", "FAILURE", "CANCEL"])))
            if open_count == 0:
                break
            assert time.monotonic() < deadline, f"{open_count} tasks never finished"
            await asyncio.sleep(0.5)

        async with db.read() as session:
            tasks = list(await session.scalars(select(Task)))
            refunds = await session.scalar(select(func.count()).select_from(LedgerEntry)
                                           .where(LedgerEntry.kind == "refund"))
            from mjgate.billing.ledger import ledger_balance
            from mjgate.models import User
            balance = (await session.get(User, user["id"])).quota
            ledger = await ledger_balance(session, user["id"])
        failed = [t for t in tasks if t.status == "FAILURE"]
        assert len(tasks) == TASKS and all(t.terminal for t in tasks)
        assert refunds == len(failed)  # each failure refunded exactly once
        assert all(t.refunded_at is not None for t in failed)
        assert balance == ledger

        # No task was polled twice within one lease/poll interval (two instances at once).
        polls = defaultdict(list)
        for r in sim.requests():
            if r["path"].endswith("/list-by-condition"):
                for upstream_id in r["json"]["ids"]:
                    polls[upstream_id].append(r["ts"] / 1000)  # the simulator logs epoch ms
        gaps = [b_ - a_ for times in polls.values() for a_, b_ in zip(sorted(times), sorted(times)[1:])]
        assert gaps and min(gaps) >= 1.5, f"a task was polled twice within {min(gaps):.2f}s"
        # The tasks B held when it died were finished by A after the leases ran out.
        assert all(t.terminal for t in tasks if t.mj_id in leased_by_b)
        pollers = {r["headers"].get("x-mjgate-poller") for r in sim.requests()
                   if r["path"].endswith("/list-by-condition")}
        assert len(pollers) == 2
        assert time.monotonic() - killed_at < 120
    finally:
        for gateway in (a, b):
            if gateway is not None:
                gateway.stop()
        sim.stop()
