"""Polling-only mode: with upstream callbacks off, the poller alone must settle every task.

This is the NAT case (the upstream cannot reach the gateway). Hundreds of tasks in flight make
each list-by-condition answer far larger than one network read (about 1.7 KB per task, so over
100 KB per 100 ids); an answer read only in part once left two thirds of the tasks to time out.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.fixtures.live import _env, cli, start_gateway
from tests.fixtures.simulator import start_simulator_process

TASKS = 320
SETTLE_TIMEOUT_S = 240  # a bound on the test, not a speed claim: the tasks take about 8 s upstream


def test_polling_alone_settles_hundreds_of_tasks_in_flight(tmp_path):
    with start_simulator_process(secret="P", core_size=TASKS, queue_size=TASKS, notify=False,
                                 step_seconds=2.0, steps=4) as sim:
        data_dir = tmp_path / "gw"
        data_dir.mkdir()
        database_url = f"sqlite+aiosqlite:///{data_dir}/mjgate.db"
        env = _env(database_url, data_dir)
        cli(env, "user", "create", "poll", "--quota", "100000000")
        key = cli(env, "token", "create", "--user", "poll")["key"]
        cli(env, "channel", "create", "sim", "--base-url", sim.base_url, "--secret", sim.secret)
        gateway = start_gateway(database_url, data_dir, MJGATE_UPSTREAM_CALLBACKS="false",
                                MJGATE_POLLER_INTERVAL_S="0.2")
        try:
            ids, upstream_ids = asyncio.run(_submit_and_settle(gateway.base_url, key, sim))
        finally:
            gateway.stop()
        # Nothing reached the gateway except by polling, and the answers were large.
        calls = [r for r in sim.requests() if r["path"].endswith("/list-by-condition")]
        assert max(len(c["json"]["ids"]) for c in calls) >= 50
        big = httpx.post(sim.url("/mj/task/list-by-condition"), json={"ids": upstream_ids[:100]},
                         headers=sim.headers, timeout=30)
        assert len(big.content) > 100_000, len(big.content)
        assert "not JSON" not in gateway.log()


async def _submit_and_settle(base_url: str, key: str, sim) -> tuple[list[str], list[str]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
        semaphore = asyncio.Semaphore(32)

        async def submit(i: int) -> str:
            async with semaphore:
                answer = (await http.post("/mj/submit/imagine", json={"prompt": f"polled fox {i}"})).json()
            assert answer["code"] == 1, answer
            return answer["result"]

        ids = await asyncio.gather(*(submit(i) for i in range(TASKS)))
        # Ask for many at once through list-by-condition: it reads the store and never refreshes
        # from the upstream, so only the poller can have moved these tasks.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            tasks = []
            for start in range(0, TASKS, 100):
                resp = await http.post("/mj/task/list-by-condition", json={"ids": ids[start:start + 100]})
                tasks += resp.json()
            statuses = [t["status"] for t in tasks]
            if all(s in ("SUCCESS", "FAILURE") for s in statuses):
                break
            assert time.monotonic() < deadline, {s: statuses.count(s) for s in set(statuses)}
            await asyncio.sleep(1)
    assert len(tasks) == TASKS
    failed = [(t["id"], t["failReason"]) for t in tasks if t["status"] != "SUCCESS"]
    assert not failed, failed[:5]
    assert all(t["progress"] == "100%" and t["imageUrl"] and t["buttons"] for t in tasks)
    polled = {i for r in sim.requests() if r["path"].endswith("/list-by-condition") for i in r["json"]["ids"]}
    return ids, sorted(polled)
