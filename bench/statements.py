"""Statement-building benchmark: why the hot paths run statements built once (issue 9).

The reservation's conditional UPDATE of a user row (billing/repository.py `take_for_task`), run
N times, each in its own write transaction on mjgate's Database (the engine, pool and pragmas the
gateway uses), three ways:

- **built per call**: `update(User).where(...).values(...)` constructed for every execution, as the
  code did before (SQLAlchemy traverses its literal values for a cache key each time);
- **built once**: the same statement with bind parameters, constructed once (what the code does);
- **raw driver SQL**: the same SQL string through `exec_driver_sql`, the floor of this path.

Prints CPU (user + system of this process, which is also the client: the database work of SQLite
is in it, PostgreSQL's is not) and wall time per transaction, with the machine. No thresholds.

    .venv/bin/python bench/statements.py [--n 3000] [--backends sqlite,postgresql]

PostgreSQL comes from MJGATE_BENCH_POSTGRES_URL (skipped when unreachable); the benchmark makes its
own user row and leaves the rest of the database alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for bench.listing

from bench.listing import machine  # noqa: E402
from mjgate.billing.repository import take_for_task  # noqa: E402
from mjgate.db import Database  # noqa: E402
from mjgate.db.migrate import upgrade_async  # noqa: E402
from mjgate.models import User  # noqa: E402

PRICE = 5
RAW_SQL = {  # the statement take_for_task compiles to, in each driver's parameter style
    "sqlite": ("UPDATE users SET quota=quota-?, used_quota=used_quota+?, request_count=request_count+1, "
               "task_count=task_count+1, in_flight=in_flight+1 WHERE id=? AND quota>=? "
               "AND (max_in_flight IS NULL OR in_flight<max_in_flight)"),
    "postgresql": ("UPDATE users SET quota=quota-$1, used_quota=used_quota+$1, request_count=request_count+1, "
                   "task_count=task_count+1, in_flight=in_flight+1 WHERE id=$2 AND quota>=$1 "
                   "AND (max_in_flight IS NULL OR in_flight<max_in_flight)"),
}


def built_per_call(user_id: int, price: int):
    return (update(User).where(User.id == user_id, User.quota >= price,
                               or_(User.max_in_flight.is_(None), User.in_flight < User.max_in_flight))
            .values(quota=User.quota - price, used_quota=User.used_quota + price,
                    request_count=User.request_count + 1, task_count=User.task_count + 1,
                    in_flight=User.in_flight + 1))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_backend(backend: str, url: str, n: int) -> list[tuple[str, float, float]]:
    await upgrade_async(url)
    db = Database(url)
    try:
        async with db.transaction() as conn:
            await conn.execute(insert(User).values(username=f"bench-{secrets.token_hex(4)}", password_hash="",
                                                   role="user", quota=10**15, created_at=0, updated_at=0))
            user_id = await conn.scalar(select(User.id).order_by(User.id.desc()).limit(1))
        raw_args = (PRICE, PRICE, user_id, PRICE) if backend == "sqlite" else (PRICE, user_id)
        ways = {
            "built per call": lambda conn: conn.execute(built_per_call(user_id, PRICE)),
            "built once": lambda conn: take_for_task(conn, user_id, PRICE),
            "raw driver SQL": lambda conn: conn.exec_driver_sql(RAW_SQL[backend], raw_args),
        }
        results = []
        for name, way in ways.items():
            for _ in range(max(50, n // 20)):  # warm: pool filled, statement caches primed
                async with db.transaction() as conn:
                    await way(conn)
            started_cpu, started = cpu_s(), time.perf_counter()
            for _ in range(n):
                async with db.transaction() as conn:
                    await way(conn)
            results.append((name, (cpu_s() - started_cpu) / n * 1e6, (time.perf_counter() - started) / n * 1e6))
        return results
    finally:
        await db.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="transactions per way")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"Statement building — {machine()}\n")
    print(f"{args.n:,} write transactions of one conditional UPDATE each, per way; this process is the client.\n")
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='mjgate-stmt-')}/bench.db"
        else:
            url = os.environ.get("MJGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/mjgate_bench")
        try:
            rows = await run_backend(backend, url, args.n)
        except (OSError, ConnectionError, OperationalError, InterfaceError) as exc:
            print(f"### {backend}: skipped ({str(exc).splitlines()[0][:120]})\n")
            continue
        floor_cpu = rows[-1][1]
        print(f"### {backend}\n\n| way | CPU per transaction | wall per transaction | CPU / raw |\n|---|---|---|---|")
        for name, cpu_us, wall_us in rows:
            print(f"| {name} | {cpu_us:,.0f} µs | {wall_us:,.0f} µs | ×{cpu_us / floor_cpu:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
