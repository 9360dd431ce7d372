"""A submit whose answer is lost (the upstream takes longer than the gateway waits) leaves no
orphaned work: the job the upstream still created is adopted when its callback names our task,
and the user pays once, for a task that finishes."""

from __future__ import annotations

import time

import httpx

from tests.fixtures.live import _env, cli, start_gateway
from tests.fixtures.simulator import start_simulator_process


def test_an_upstream_slower_than_the_submit_timeout_is_adopted_by_its_callback(tmp_path):
    with start_simulator_process(secret="S", slow_seconds=1.5, notify=True) as sim:
        data_dir = tmp_path / "gw"
        data_dir.mkdir()
        database_url = f"sqlite+aiosqlite:///{data_dir}/mjgate.db"
        env = _env(database_url, data_dir)
        cli(env, "user", "create", "slow", "--quota", "100000000")
        key = cli(env, "token", "create", "--user", "slow")["key"]
        cli(env, "channel", "create", "sim", "--base-url", sim.base_url, "--secret", sim.secret)
        cli(env, "channel", "create", "other", "--base-url", "http://127.0.0.1:9", "--secret", "x", "--priority", "-1")
        gateway = start_gateway(database_url, data_dir, MJGATE_UPSTREAM_SUBMIT_TIMEOUT_S="0.5",
                                MJGATE_POLLER_INTERVAL_S="0.2")
        headers = {"Authorization": f"Bearer {key}"}
        try:
            answer = httpx.post(f"{gateway.base_url}/mj/submit/imagine", json={"prompt": "a patient heron"},
                                headers=headers, timeout=30).json()
            assert answer["code"] == 1, answer
            mj_id = answer["result"]
            deadline = time.monotonic() + 60
            while True:
                task = httpx.get(f"{gateway.base_url}/mj/task/{mj_id}/fetch", headers=headers, timeout=30).json()
                if task["status"] in ("SUCCESS", "FAILURE"):
                    break
                assert time.monotonic() < deadline, task
                time.sleep(0.3)
            assert task["status"] == "SUCCESS" and task["imageUrl"], task
            me = cli(env, "user", "list")
        finally:
            gateway.stop()
        submits = [r for r in sim.requests() if r["path"].endswith("/submit/imagine")]
        assert len(submits) == 1  # not re-sent elsewhere: the other channel would have run it twice
        assert "adopted" in gateway.log()
        alice = next(u for u in me if u["username"] == "slow")
        assert alice["used_quota"] == 50_000 and alice["quota"] == 100_000_000 - 50_000
