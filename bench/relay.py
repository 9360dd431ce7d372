"""Gateway vs direct upstream, side by side in one run.

Starts the simulator and a real `mjgate serve` process (SQLite, the default server) in front of
it, then runs each workload twice with the same client and concurrency: straight at the
simulator, and through the gateway. The ratio column is gateway / direct throughput, so it shows
what the gateway's auth, billing, bookkeeping and relaying cost on this machine.

    .venv/bin/python bench/relay.py [--requests 1000] [--concurrency 32] [--image-mb 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

from listing import machine, reset_server  # noqa: E402

from mjgate.db.migrate import upgrade_async  # noqa: E402

from mjgate.db import Database  # noqa: E402
from tests.fixtures.live import _env, cli, start_gateway  # noqa: E402
from tests.fixtures.simulator import start_simulator_process  # noqa: E402


class Result:
    def __init__(self, latencies: list[float], elapsed: float, units: float = 0):
        self.latencies = sorted(latencies)
        self.elapsed = elapsed
        self.units = units

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def pct(self, q: float) -> float:
        return self.latencies[min(len(self.latencies) - 1, int(q * len(self.latencies)))] * 1000


async def drive(n: int, concurrency: int, call) -> Result:
    latencies: list[float] = []
    next_index = 0

    async def worker():
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(latencies, time.perf_counter() - started)


async def expect_json(resp: aiohttp.ClientResponse, check=None):
    body = await resp.json(content_type=None)
    if resp.status != 200 or (check and not check(body)):
        raise RuntimeError(f"unexpected answer {resp.status}: {str(body)[:200]}")
    return body


async def run(args) -> str:
    sim = start_simulator_process(secret="bench", core_size=100_000, queue_size=100_000, step_seconds=0.05,
                                  notify=False)
    tmp = Path(tempfile.mkdtemp(prefix="mjgate-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp}/mjgate.db"
    env = _env(url, tmp)
    if args.database_url:  # a server database: wiped and migrated, like bench/listing.py does
        await reset_server(url)
        await upgrade_async(url)
    cli(env, "user", "create", "bench", "--quota", str(10**15))
    key = cli(env, "token", "create", "--user", "bench")["key"]
    cli(env, "channel", "create", "sim", "--base-url", sim.base_url, "--secret", sim.secret)
    gateway = start_gateway(url, tmp, server="granian", MJGATE_UPSTREAM_CALLBACKS="false", MJGATE_LOG_LEVEL="WARNING")
    rows = []
    try:
        direct = {"base": sim.base_url, "headers": {"mj-api-secret": sim.secret}}
        via = {"base": gateway.base_url, "headers": {"Authorization": f"Bearer {key}"}}
        connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            ids = {}

            async def submit(side, i):
                async with http.post(f"{side['base']}/mj/submit/imagine", json={"prompt": f"bench {i}"},
                                     headers=side["headers"]) as resp:
                    body = await expect_json(resp, lambda b: b.get("code") == 1)
                    ids.setdefault(side["base"], []).append(body["result"])

            for name, side in (("direct", direct), ("gateway", via)):
                rows.append(("submit imagine", name, await drive(args.requests, args.concurrency,
                                                                  lambda i, s=side: submit(s, i))))
            sim.finish_all()
            await asyncio.sleep(3)  # let the gateway's poller see every task finish

            async def fetch(side, i):
                task_ids = ids[side["base"]]
                async with http.get(f"{side['base']}/mj/task/{task_ids[i % len(task_ids)]}/fetch",
                                    headers=side["headers"]) as resp:
                    await expect_json(resp, lambda b: b.get("id"))

            async def batch(side, i):
                chunk = ids[side["base"]][(i * 100) % len(ids[side["base"]]):][:100]
                async with http.post(f"{side['base']}/mj/task/list-by-condition", json={"ids": chunk},
                                     headers=side["headers"]) as resp:
                    await expect_json(resp, lambda b: isinstance(b, list) and len(b) == len(chunk))

            for label, call, n in (("fetch task", fetch, args.requests * 2), ("list-by-condition x100", batch, args.requests // 5)):
                for name, side in (("direct", direct), ("gateway", via)):
                    rows.append((label, name, await drive(n, args.concurrency, lambda i, s=side, c=call: c(s, i))))

            image_path = f"/__sim/big-image?mb={args.image_mb}"
            from mjgate.images.signing import signed_image_path
            from tests.factories import insert_tasks, task_row
            db = Database(url)
            await insert_tasks(db, [task_row(1, mj_id="benchimage", channel_id=1, image_url=sim.base_url + image_path)])
            await db.dispose()
            for name, target in (("direct", sim.base_url + image_path),
                                 ("gateway", gateway.base_url + signed_image_path("live-test-secret", "benchimage", 600))):
                async def stream(i, target=target):
                    async with http.get(target) as resp:
                        async for _ in resp.content.iter_chunked(1 << 16):
                            pass
                result = await drive(3, 1, stream)
                result.units = args.image_mb * 3
                rows.append((f"image {args.image_mb} MB (MB/s)", name, result))
    finally:
        gateway.stop()
        sim.stop()

    lines = [
        f"mjgate relay benchmark — {machine()}",
        f"gateway: granian, 1 worker, {Database(url).dialect}; client: aiohttp, concurrency {args.concurrency}; "
        f"upstream: mjgate simulator",
        "",
        "| workload | path | requests | req/s | p50 ms | p95 ms | gateway / direct |",
        "|---|---|---|---|---|---|---|",
    ]
    by_label: dict[str, dict[str, Result]] = {}
    for label, name, result in rows:
        by_label.setdefault(label, {})[name] = result
    for label, sides in by_label.items():
        for name in ("direct", "gateway"):
            r = sides[name]
            rate = r.units / r.elapsed if r.units else r.rate
            ratio = ""
            if name == "gateway":
                d = sides["direct"]
                direct_rate = d.units / d.elapsed if d.units else d.rate
                ratio = f"{rate / direct_rate:.2f}"
            lines.append(f"| {label} | {name} | {len(r.latencies)} | {rate:,.0f} | {r.pct(0.5):.1f} | "
                         f"{r.pct(0.95):.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--image-mb", type=int, default=50)
    parser.add_argument("--database-url", default=None,
                        help="a server database for the gateway (wiped!), e.g. the listing bench's "
                             "postgresql://postgres@127.0.0.1:5432/mjgate_bench; default: a temporary SQLite file")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
