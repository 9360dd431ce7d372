"""The gateway queue under a backlog: how fast it drains against the ideal, and how soon a freed
slot is used again.

Starts N simulators (each a capacity-bound account: --core-size 3, no upstream queue) and a real
`mjgate serve` on SQLite in front of them, one channel each with max_running 3 and max_queued 0.
Submits a backlog of tasks at once (callbacks on, as deployed), then waits for all of them.

- throughput: tasks / second from the first submit to the last finish, against the ideal
  (total capacity / task duration, the duration measured on the simulators themselves);
- dispatch latency: for each channel, the time from a task finishing upstream (its finishTime)
  to the next task of the queue reaching that simulator (its request log), p50 and p99.

    .venv/bin/python bench/dispatch.py [--tasks 1000] [--channels 4] [--task-seconds 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

from listing import machine  # noqa: E402

from tests.fixtures.live import _env, cli, start_gateway  # noqa: E402
from tests.fixtures.simulator import start_simulator_process  # noqa: E402

CORE = 3


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run(tasks: int, channels: int, task_seconds: float) -> None:
    steps = 4
    sims = [start_simulator_process(secret=f"d{i}", core_size=CORE, queue_size=0, steps=steps,
                                    step_seconds=task_seconds / steps, start_delay_seconds=0.0)
            for i in range(channels)]
    data = Path(tempfile.mkdtemp(prefix="mjgate-dispatch-"))
    database_url = f"sqlite+aiosqlite:///{data}/mjgate.db"
    env = _env(database_url, data)
    gateway = None
    try:
        cli(env, "user", "create", "bench", "--quota", str(10**12))
        key = cli(env, "token", "create", "--user", "bench")["key"]
        for i, sim in enumerate(sims):
            cli(env, "channel", "create", f"sim{i}", "--base-url", sim.base_url, "--secret", sim.secret,
                "--max-running", str(CORE), "--max-queued", "0")
        gateway = start_gateway(database_url, data)
        headers = {"Authorization": f"Bearer {key}"}
        limits = asyncio.Semaphore(64)
        async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=120) as http:
            async def submit(i: int) -> str:
                async with limits:
                    answer = (await http.post("/mj/submit/imagine", json={"prompt": f"backlog {i}"})).json()
                assert answer["code"] in (1, 22), answer
                return answer["result"]

            started = time.time()
            ids = await asyncio.gather(*[submit(i) for i in range(tasks)])
            submitted = time.time()
            pending = set(ids)
            while pending:
                batch = list(pending)[:100]
                found = (await http.post("/mj/task/list-by-condition", json={"ids": batch})).json()
                pending -= {t["id"] for t in found if t["status"] in ("SUCCESS", "FAILURE", "CANCEL")}
                if pending:
                    await asyncio.sleep(0.5)
        # Upstream truth: when each task reached its simulator and when it finished there.
        latencies, durations, last_finish = [], [], 0.0
        steady, finished_after = [], 0  # the same, once every submit had been answered (a backlog in place)
        for sim in sims:
            arrivals = sorted(r["ts"] for r in sim.requests() if r["path"].endswith("/submit/imagine"))
            finished = []
            # Every task this simulator ran (at most 1,000 per channel here).
            for t in httpx.get(sim.url("/mj/task/list"), headers=sim.headers, params={"limit": 1000}).json():
                if t.get("finishTime") and t.get("startTime"):
                    finished.append(t["finishTime"])
                    durations.append((t["finishTime"] - t["startTime"]) / 1000)
            finished.sort()
            last_finish = max([last_finish, *[f / 1000 for f in finished]])
            arrivals = [a / 1000 for a in arrivals]
            finished = [f / 1000 for f in finished]
            # The (k+CORE)-th arrival needed the k-th finish to free its slot.
            for k, free_at in enumerate(finished):
                if k + CORE < len(arrivals):
                    latencies.append(max(0.0, arrivals[k + CORE] - free_at) * 1000)
                    if free_at >= submitted:
                        steady.append(latencies[-1])
            finished_after += sum(1 for f in finished if f >= submitted)
        elapsed = last_finish - started
        duration = statistics.mean(durations)
        ideal = channels * CORE / duration
        rate = tasks / elapsed
        steady_rate = finished_after / (last_finish - submitted) if last_finish > submitted else float("nan")
        print(f"Machine: {machine()}")
        print(f"Backlog of {tasks} tasks through {channels} channels of capacity {CORE} "
              f"(tasks take {duration:.2f} s upstream; submits took {submitted - started:.1f} s)\n")
        print("| measure | value |")
        print("|---|---|")
        print(f"| drain rate | {rate:.2f} tasks/s |")
        print(f"| ideal (capacity / duration) | {ideal:.2f} tasks/s |")
        print(f"| drain / ideal | {rate / ideal:.1%} |")
        print(f"| drain once the backlog is in (after the last submit answer) | {steady_rate:.2f} tasks/s "
              f"({steady_rate / ideal:.1%} of ideal) |")
        print(f"| dispatch latency p50 / p99 (slot freed upstream -> next task there) | "
              f"{pct(latencies, 0.5):.0f} / {pct(latencies, 0.99):.0f} ms ({len(latencies)} samples) |")
        print(f"| the same once the backlog is in | {pct(steady, 0.5):.0f} / {pct(steady, 0.99):.0f} ms "
              f"({len(steady)} samples) |")
    finally:
        if gateway is not None:
            gateway.stop()
        for sim in sims:
            sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.channels, args.task_seconds))


if __name__ == "__main__":
    main()
