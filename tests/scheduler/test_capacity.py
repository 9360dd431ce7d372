"""Channels as capacity-bound accounts, run as a real server: `mjgate serve` in front of two
simulators that run 3 tasks and queue 2 each; 200 submits from 4 users at once."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import func, select

from mjgate.billing.ledger import ledger_balance
from mjgate.models import LedgerEntry, Task, User
from tests.scheduler.helpers import wait_until_all_finished
from tests.factories import make_channel, make_key, make_user
from tests.fixtures.live import start_gateway
from tests.fixtures.simulator import start_simulator_process

USERS = 4
PER_USER = 50
CORE, QUEUE = 3, 2


async def test_two_full_channels_queue_fairly_and_never_overflow(db, db_url, tmp_path):
    sims = [start_simulator_process(secret=f"cap{i}", core_size=CORE, queue_size=QUEUE, step_seconds=0.05, steps=3,
                                    start_delay_seconds=0.02, seed=i) for i in range(2)]
    gateway = None
    try:
        for i, sim in enumerate(sims):
            await make_channel(db, f"sim{i}", sim.base_url, sim.secret, max_running=CORE, max_queued=QUEUE)
        keys = {}
        for u in range(USERS):
            user = await make_user(db, f"u{u}", quota=10**9)
            keys[f"u{u}"] = ((await make_key(db, user["id"]))["key"], user["id"])
        gateway = start_gateway(db_url, tmp_path / "gw", MJGATE_POLLER_INTERVAL_S="0.5")
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=60) as http:
            async def submit(name: str, n: int) -> dict:
                resp = await http.post("/mj/submit/imagine", json={"prompt": f"{name} task {n}"},
                                       headers={"Authorization": f"Bearer {keys[name][0]}"})
                return resp.json()

            # Interleaved by user, as four busy clients would arrive.
            answers = await asyncio.gather(*[submit(f"u{u}", n) for n in range(PER_USER) for u in range(USERS)])
            codes = Counter(a["code"] for a in answers)
            assert set(codes) <= {1, 22}, codes  # every submit accepted: 0 client-visible refusals
            assert codes[22] > 0  # most of them waited in the gateway queue
            ids = [a["result"] for a in answers]
            queued_ids = {a["result"] for a in answers if a["code"] == 22}

            await wait_until_all_finished(db, 240)

        async with db.read() as session:
            statuses = Counter((await session.scalars(select(Task.status).where(Task.mj_id.in_(ids)))).all())
            assert statuses == {"SUCCESS": USERS * PER_USER}, statuses
            for name, (_, user_id) in keys.items():
                user = await session.get(User, user_id)
                assert user.quota == await ledger_balance(session, user_id)
                assert user.in_flight == 0
            charges = await session.scalar(select(func.count()).select_from(LedgerEntry)
                                           .where(LedgerEntry.kind == "charge"))
            assert charges == USERS * PER_USER

        submitted = []
        for sim in sims:
            stats = sim.stats()
            assert stats["max_running_seen"] <= CORE, stats
            assert stats["refused_queue_full"] == 0, stats
            submitted += [r for r in sim.requests() if r["path"].endswith("/submit/imagine")]
        prompts = [r["json"]["prompt"] for r in submitted]
        assert len(prompts) == len(set(prompts)) == USERS * PER_USER  # each task sent upstream exactly once
        # Fair order: of the first 40 tasks dispatched from the gateway queue (those answered 22;
        # the others took a free slot as they arrived), each user has about a quarter.
        async with db.read() as session:
            queued_prompts = set((await session.scalars(select(Task.prompt).where(Task.mj_id.in_(queued_ids)))).all())
        dispatched = [r["json"]["prompt"] for r in sorted(submitted, key=lambda r: r["ts"])
                      if r["json"]["prompt"] in queued_prompts]
        first = Counter(p.split()[0] for p in dispatched[:40])
        assert all(abs(first[f"u{u}"] - 10) <= 2 for u in range(USERS)), (first, dispatched[:40])
    finally:
        if gateway is not None:
            gateway.stop()
        for sim in sims:
            sim.stop()
