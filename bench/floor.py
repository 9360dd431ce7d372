"""The gateway's hot paths against a raw-driver floor, side by side in one run (issue 9, "Measure").

One simulator process is the upstream. For each database backend, one migrated database holds
--rows tasks (bench/listing.py's loader; one user owns a tenth of them), 32 submitting users with
keys and quota, and one channel pointing at the simulator. Then, three rounds, interleaved:

  floor   bench/floor_app.py: a bare Starlette app on the same granian configuration, doing the
          same work with the raw driver (asyncpg / aiosqlite / asyncmy, a tiny pool of its own)
  mjgate  a real `mjgate serve --server granian` process (poller on, upstream callbacks off);
          with --src DIR, the one from DIR/src; with --src given twice, "before" and "after"
  direct  the same client straight at the simulator (submit c=1 and the image only)

Each server is started for its pass and stopped after it, so no server's background work
(mjgate's poller) runs during another's pass. Every workload is warmed up, then timed; the
server's CPU time (user+sys of its whole process tree, from /proc) over the timed window is
divided by the requests served. The table shows the median of the rounds.

    .venv/bin/python bench/floor.py [--quick] [--rows 1000000] [--backends sqlite,postgresql[,mysql]]
                                    [--src DIR [--src DIR]] [--json-out FILE] [--profile DIR]

Server databases come from MJGATE_BENCH_POSTGRES_URL / MJGATE_BENCH_MYSQL_URL (bench/README.md)
and are wiped. Timings only: no thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(BENCH)]

from listing import DEFAULT_URLS, analyze, machine, reset_server, seed, server_version  # noqa: E402
from sqlalchemy import func, select, text, update  # noqa: E402
from sqlalchemy.exc import InterfaceError, OperationalError  # noqa: E402

from mjgate.auth.credentials import hash_secret  # noqa: E402
from mjgate.db import Database  # noqa: E402
from mjgate.models import ApiKey, Channel, LedgerEntry, User  # noqa: E402
from tests.factories import insert_tasks, make_key, make_user, task_row  # noqa: E402
from tests.fixtures.live import _env, free_port, start_gateway  # noqa: E402
from tests.fixtures.simulator import start_simulator_process  # noqa: E402

SECRET_KEY = "bench-floor-secret"  # signs image URLs on both sides, so their answers compare byte for byte
ACCESS_TOKEN = "0123456789abcdef0123456789abcdef"  # the heavy user's new-api access token
QUOTA = 10**15
IMAGE_MJ_ID = "benchfloorimage"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SETTLE_S = 15.0  # after the submits: how long a server may take to go quiet (poller, image copies); --quick 5
IDLE_CPU_SHARE = 0.04  # quiet: under 4% of a core over half a second


@dataclass
class Workload:
    name: str
    kind: str  # submit | fetch | list | self | image
    concurrency: int
    requests: int
    metric: str  # "latency" (p50/p99 ms), "rate" (req/s) or "throughput" (GB/s)
    direct: bool = False  # also run straight at the simulator


def workloads(args) -> list[Workload]:
    s = 0.15 if args.quick else 1.0
    n = lambda x: max(20, int(x * s * args.scale))  # noqa: E731
    rows = f"{args.rows // 1_000_000}M" if args.rows % 1_000_000 == 0 else f"{args.rows // 1000}k"
    c = args.concurrency
    every = [
        Workload("submit c=1", "submit", 1, n(300), "latency", direct=True),
        Workload(f"submit c={c}, {args.users} users", "submit", c, n(1500), "rate"),
        Workload(f"fetch by id c={c}", "fetch", c, n(5000), "rate"),
        Workload(f"list-by-condition x100 c={c}", "list", c, n(400), "rate"),
        Workload(f"/api/mj/self page 1, {rows} rows", "self", c, n(600), "rate"),
        Workload(f"image {args.image_mb} MB, one stream", "image", 1, 5 if args.quick else 10, "throughput",
                 direct=True),
    ]
    return [w for w in every if not args.only or any(o in w.name for o in args.only)]


# ---------------------------------------------------------------------------------------------
# CPU of a process tree, from /proc


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, user+sys seconds) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_pids(root: int) -> list[int]:
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                parents[st[0]].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def uvloop_loaded(root: int) -> bool:
    """Whether any process of the tree has uvloop's extension mapped (granian's loop=auto picks it when installed)."""
    for pid in tree_pids(root):
        try:
            if "uvloop/loop." in Path(f"/proc/{pid}/maps").read_text():
                return True
        except OSError:
            continue
    return False


def tree_cpu(root: int) -> float:
    """User+system CPU seconds of root and every live descendant (granian runs its worker as a child)."""
    return sum(st[1] for pid in tree_pids(root) if (st := _stat(pid)))


# ---------------------------------------------------------------------------------------------
# The world: simulator, database, users


@dataclass
class World:
    backend: str
    url: str
    sim: object
    heavy_user: int
    heavy_key: str
    heavy_ids: list[str]  # mj_ids of the heavy user's tasks, shuffled
    heavy_total: int
    submit_keys: list[str]
    submit_users: list[int]
    channel_id: int
    version: str = ""
    tmp: Path = Path(".")


async def build_world(backend: str, url: str, sim, args, tmp: Path, migrate_src: Path) -> World:
    if backend == "sqlite":
        path = Path(url.split("///", 1)[1])
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    else:
        await reset_server(url)
    # Migrated by the mjgate under test (--src): its schema is the one both sides run on.
    (tmp / "migrate").mkdir(parents=True, exist_ok=True)
    env = _env(url, tmp / "migrate", PYTHONPATH=str(migrate_src))
    subprocess.run([sys.executable, "-m", "mjgate.cli", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    db = Database(url)
    try:
        started = time.perf_counter()
        ds = await seed(db, args.rows)
        async with db.write() as session:
            # The loader's channels point at example hosts: aim them all at the simulator (loopback
            # only, whatever a poller or an image request might do), keep one enabled.
            await session.execute(update(Channel).values(base_url=sim.base_url, secret=sim.secret,
                                                         status="manual_disabled"))
            await session.execute(update(Channel).where(Channel.id == ds.first_channel).values(status="enabled"))
            # The newest 200 loaded tasks are "running" with made-up upstream ids: finish them, so
            # mjgate's poller has nothing of the loader's to chase.
            await session.execute(text("UPDATE tasks SET status = 'SUCCESS', progress = '100%', "
                                       "finish_time = submit_time + 30000, next_poll_at = NULL "
                                       "WHERE next_poll_at IS NOT NULL"))
            await session.execute(update(User).where(User.id == ds.heavy_user)
                                  .values(access_token_hash=hash_secret(ACCESS_TOKEN)))
        heavy_key = (await make_key(db, ds.heavy_user))["key"]
        submit_users, submit_keys = [], []
        for k in range(args.users):
            user = await make_user(db, f"submit{k}", quota=QUOTA)  # a top-up, with its ledger row
            submit_users.append(user["id"])
            submit_keys.append((await make_key(db, user["id"], quota=QUOTA))["key"])  # a limited key
        await insert_tasks(db, [task_row(ds.heavy_user, mj_id=IMAGE_MJ_ID, channel_id=ds.first_channel,
                                         image_url=f"{sim.base_url}/__sim/big-image?mb={args.image_mb}")])
        async with db.read() as session:
            heavy_total = await session.scalar(text("SELECT count(*) FROM tasks WHERE user_id = :u"),
                                               {"u": ds.heavy_user})
        await analyze(db)
        version = await server_version(db)
        print(f"# {backend}: {args.rows:,} tasks loaded and analyzed in {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
    finally:
        await db.dispose()
    ids = [ds.mj_id(i) for i in range(10, args.rows + 1, 10)]
    random.Random(9).shuffle(ids)
    return World(backend, url, sim, ds.heavy_user, heavy_key, ids, int(heavy_total), submit_keys, submit_users,
                 ds.first_channel, version, tmp)


async def neutralise_polls(url: str) -> int:
    """Nothing due for a poller: tasks left in flight by an earlier pass are not the next pass's work."""
    db = Database(url)
    try:
        async with db.write() as session:
            return (await session.execute(text("UPDATE tasks SET next_poll_at = NULL, lease_owner = NULL, "
                                               "lease_until = NULL WHERE next_poll_at IS NOT NULL"))).rowcount
    finally:
        await db.dispose()


async def due_count(url: str) -> int:
    db = Database(url)
    try:
        async with db.read() as session:
            return int(await session.scalar(text("SELECT count(*) FROM tasks WHERE next_poll_at IS NOT NULL")))
    finally:
        await db.dispose()


async def quiesce(server: Server, url: str, polls: bool, settle_s: float = SETTLE_S) -> tuple[float, int]:
    """Wait until the server (and its worker, if apart) is idle and, when it polls, has nothing due
    to poll (at most SETTLE_S).

    Returns the CPU seconds they spent meanwhile and how many tasks were still due at the end.
    """
    def cpu() -> float:
        return tree_cpu(server.pid) + server.worker_cpu()

    start = last = cpu()
    deadline = time.monotonic() + settle_s
    due = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = cpu()
        busy, last = now - last, now
        due = await due_count(url) if polls else 0
        if busy < IDLE_CPU_SHARE * 0.5 and not due:
            break
    return cpu() - start, due


async def ledger_check(world: World) -> str:
    """Money is exact on both sides: every submitting user's balance equals its ledger, every key's spend too."""
    db = Database(world.url)
    bad = []
    try:
        async with db.read() as session:
            for user_id in world.submit_users:
                quota = await session.scalar(select(User.quota).where(User.id == user_id))
                ledger = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                              .where(LedgerEntry.user_id == user_id))
                key_used = await session.scalar(select(func.sum(ApiKey.used_quota)).where(ApiKey.user_id == user_id))
                spent = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.user_id == user_id, LedgerEntry.kind != "topup"))
                if quota != ledger or key_used != -spent:
                    bad.append(f"user {user_id}: quota {quota} ledger {ledger} key used {key_used} spent {-spent}")
            charges = await session.scalar(select(func.count()).where(LedgerEntry.kind == "charge",
                                                                      LedgerEntry.user_id.in_(world.submit_users)))
    finally:
        await db.dispose()
    if bad:
        raise SystemExit(f"{world.backend}: the ledger does not match the balances:\n" + "\n".join(bad))
    return f"{charges:,} charges; every balance and key spend equals the ledger"


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    label: str
    base_url: str
    proc: subprocess.Popen | None  # None: the simulator itself (direct)
    stop: object = None
    log_path: Path | None = None
    worker: subprocess.Popen | None = None  # --split-worker: `mjgate worker` beside a serve without poller

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def worker_cpu(self) -> float:
        """CPU seconds so far of the process that settles tasks apart from the server (0 without one)."""
        return tree_cpu(self.worker.pid) if self.worker is not None else 0.0


def start_floor(world: World, tmp: Path) -> Server:
    env = dict(os.environ, PYTHONPATH=str(BENCH), PYTHONUNBUFFERED="1", FLOOR_DATABASE_URL=world.url,
               FLOOR_SECRET_KEY=SECRET_KEY, FLOOR_UPSTREAM_URL=world.sim.base_url,
               FLOOR_UPSTREAM_SECRET=world.sim.secret, FLOOR_CHANNEL_ID=str(world.channel_id))
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = open(tmp / f"floor-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", f"import floor_app; floor_app.serve({port})"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
    except RuntimeError:
        _stop(proc)
        raise RuntimeError(f"the floor did not start:\n{(tmp / f'floor-{port}.log').read_text()[-3000:]}") from None

    def stop():
        _stop(proc)
    return Server("floor", base, proc, stop, tmp / f"floor-{port}.log")


def _wait_healthy(base: str, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{base} exited early")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_mjgate(world: World, label: str, src: Path, tmp: Path, *, split_worker: bool = False) -> Server:
    """`mjgate serve` (granian); with split_worker, its poller off and `mjgate worker` beside it,
    as a deployment that runs them apart does, so the server's CPU is the request path's alone."""
    extra = {"MJGATE_POLLER_ENABLED": "false"} if split_worker else {}
    gateway = start_gateway(world.url, tmp / label, server="granian", PYTHONPATH=str(src),
                            MJGATE_SECRET_KEY=SECRET_KEY, MJGATE_UPSTREAM_CALLBACKS="false", **extra)
    if not split_worker:
        return Server(label, gateway.base_url, gateway.proc, gateway.stop, gateway.log_path)
    log = open(tmp / label / "worker.log", "w")
    worker = subprocess.Popen([sys.executable, "-m", "mjgate.cli", "worker"], env=gateway.env, stdout=log,
                              stderr=subprocess.STDOUT)

    def stop() -> None:
        _stop(worker)
        gateway.stop()

    return Server(label, gateway.base_url, gateway.proc, stop, gateway.log_path, worker)


# ---------------------------------------------------------------------------------------------
# The load generator (this process; the servers are others)


@dataclass
class Measure:
    requests: int
    elapsed: float
    latencies: list[float]
    server_cpu: float | None  # seconds over the timed window
    driver_cpu: float
    units: float = 0.0  # bytes, for the image
    background_cpu: float | None = None  # submits: CPU seconds after the window until the server was quiet
    unsettled: int = 0  # submits: tasks still due to poll when the quiet wait ended

    def value(self, metric: str) -> float:
        if metric == "latency":
            return pct(self.latencies, 0.50)
        if metric == "throughput":
            return self.units / self.elapsed / 1e9
        return self.requests / self.elapsed

    def as_dict(self, metric: str) -> dict:
        out = {"requests": self.requests, "elapsed_s": round(self.elapsed, 4),
               "p50_ms": round(pct(self.latencies, 0.5), 3), "p99_ms": round(pct(self.latencies, 0.99), 3),
               "rate": round(self.requests / self.elapsed, 2),
               "cpu_per_req_ms": None if self.server_cpu is None else round(self.server_cpu / self.requests * 1000, 4),
               "driver_cpu_share": round(self.driver_cpu / self.elapsed, 3)}
        if metric == "throughput":
            out["gb_per_s"] = round(self.units / self.elapsed / 1e9, 4)
        if self.background_cpu is not None:
            out["background_cpu_per_req_ms"] = round(self.background_cpu / self.requests * 1000, 4)
            out["unsettled_after_wait"] = self.unsettled
        return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


class Failure(RuntimeError):
    pass


async def _json(resp: aiohttp.ClientResponse, check):
    body = await resp.read()
    if resp.status != 200:
        raise Failure(f"HTTP {resp.status}: {body[:300]!r}")
    data = json.loads(body)
    if not check(data):
        raise Failure(f"unexpected answer: {str(data)[:300]}")
    return data


class Driver:
    def __init__(self, http: aiohttp.ClientSession, world: World, args):
        self.http = http
        self.world = world
        self.args = args
        self.samples: dict[str, object] = {}  # the first answer of each read workload, for the shape check
        self.submitted = 0

    def call(self, w: Workload, server: Server, keep_sample: bool = True):
        """call(worker, i) -> bytes received (0 for JSON workloads)."""
        base, world, http = server.base_url, self.world, self.http
        direct = server.proc is None
        heavy = {"Authorization": f"Bearer {world.heavy_key}"}
        sample = self.samples.setdefault(server.label, {}) if keep_sample else {}
        if w.kind == "submit":
            keys = [{"mj-api-secret": world.sim.secret}] if direct else \
                [{"Authorization": f"Bearer {k}"} for k in world.submit_keys]

            async def submit(worker, i):
                async with http.post(f"{base}/mj/submit/imagine", json={"prompt": f"a floor benchmark fox {i}"},
                                     headers=keys[worker % len(keys)]) as resp:
                    await _json(resp, lambda b: b.get("code") == 1 and b.get("result"))
                return 0
            return submit
        if w.kind == "fetch":
            ids = world.heavy_ids

            async def fetch(worker, i):
                mj_id = ids[i % len(ids)]
                async with http.get(f"{base}/mj/task/{mj_id}/fetch", headers=heavy) as resp:
                    data = await _json(resp, lambda b: b.get("id") == mj_id)
                if i == 0:
                    sample["fetch"] = normalised(data, base)
                return 0
            return fetch
        if w.kind == "list":
            ids = world.heavy_ids

            async def listing(worker, i):
                start = (i * 100) % (len(ids) - 100)
                chunk = ids[start:start + 100]
                async with http.post(f"{base}/mj/task/list-by-condition", json={"ids": chunk}, headers=heavy) as resp:
                    data = await _json(resp, lambda b: isinstance(b, list) and [t["id"] for t in b] == chunk)
                if i == 0:
                    sample["list"] = normalised(data, base)
                return 0
            return listing
        if w.kind == "self":
            headers = {"Authorization": f"Bearer {ACCESS_TOKEN}", "New-Api-User": str(world.heavy_user)}

            async def own(worker, i):
                async with http.get(f"{base}/api/mj/self?p=1&page_size=20", headers=headers) as resp:
                    data = await _json(resp, lambda b: b["data"]["total"] == world.heavy_total
                                       and len(b["data"]["items"]) == 20)
                if i == 0:
                    sample["self"] = normalised(data, base)
                return 0
            return own
        if w.kind == "image":
            if direct:
                url = f"{base}/__sim/big-image?mb={self.args.image_mb}"
            else:
                from mjgate.auth.keyring import IMAGE_URL, Keyring
                from mjgate.images.signing import signed_image_path
                # Signed with the image-URL key, as both sides hand their URLs out.
                url = base + signed_image_path(Keyring(SECRET_KEY).key(IMAGE_URL), IMAGE_MJ_ID, 600)
            size = self.args.image_mb * 1024 * 1024

            async def image(worker, i):
                got = 0
                async with http.get(url) as resp:
                    if resp.status != 200:
                        raise Failure(f"image: HTTP {resp.status}")
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        got += len(chunk)
                if got != size:
                    raise Failure(f"image: {got} bytes, expected {size}")
                return got
            return image
        raise ValueError(w.kind)

    async def run(self, w: Workload, server: Server, keep_sample: bool = True) -> Measure:
        call = self.call(w, server, keep_sample)
        warmup = 1 if w.kind == "image" else max(10, w.requests // 20)
        await self._drive(call, warmup, w.concurrency, offset=10**6)
        cpu0 = tree_cpu(server.pid) if server.pid else None
        drv0 = time.process_time()
        t0 = time.perf_counter()
        latencies, units = await self._drive(call, w.requests, w.concurrency, cap_s=self.args.cap_s)
        elapsed = time.perf_counter() - t0
        driver_cpu = time.process_time() - drv0
        server_cpu = tree_cpu(server.pid) - cpu0 if server.pid else None
        if w.kind == "submit":
            self.submitted += len(latencies) + warmup
        return Measure(len(latencies), elapsed, latencies, server_cpu, driver_cpu, units)

    async def _drive(self, call, n: int, concurrency: int, *, offset: int = 0, cap_s: float = 1e9):
        latencies: list[float] = []
        units = 0
        next_index = 0
        deadline = time.perf_counter() + cap_s

        async def worker(w):
            nonlocal next_index, units
            while next_index < n and time.perf_counter() < deadline:
                i = next_index
                next_index += 1
                started = time.perf_counter()
                units += await call(w, i + offset if offset else i)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return latencies, units


# ---------------------------------------------------------------------------------------------
# Profiles (py-spy)


class Profiler:
    """py-spy attached to a server's process tree for the timed window of a workload."""

    def __init__(self, pid: int, out: Path):
        self.out = out
        self.proc = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--subprocesses", "--rate", "200",
                                      "--format", "raw", "--output", str(out), "--nonblocking"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"))
        time.sleep(1.0)  # attached before the load starts

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err[-500:]}")


FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
# Where a sample's time goes: the innermost frame of the stack that belongs to one of these (py-spy
# charges time in C, Cython or Rust to the nearest Python frame, so asyncpg's protocol counts as asyncpg
# and granian's Rust server as granian). Frames of the standard library are looked through; a stack
# with none of these is "other". The shares add up to 100%.
WHERE = [
    ("granian (its Rust HTTP server and ASGI bridge)", ("granian/",)),
    ("asyncpg", ("asyncpg/",)),
    ("aiosqlite / sqlite3", ("aiosqlite/", "sqlite3/")),
    ("asyncmy", ("asyncmy/",)),
    ("SQLAlchemy ORM (orm/: session, loading, unit of work)", ("sqlalchemy/orm/",)),
    ("SQLAlchemy SQL construction and compiling (sql/)", ("sqlalchemy/sql/",)),
    ("SQLAlchemy engine and pool (engine/, pool/)", ("sqlalchemy/engine/", "sqlalchemy/pool/")),
    ("SQLAlchemy async/greenlet bridge (ext/asyncio, util/concurrency)",
     ("sqlalchemy/ext/asyncio/", "sqlalchemy/util/_concurrency_py3k", "sqlalchemy/util/concurrency")),
    ("SQLAlchemy dialect adapters (dialects/)", ("sqlalchemy/dialects/",)),
    ("SQLAlchemy, other", ("sqlalchemy/",)),
    ("FastAPI (routing, dependencies, encoders)", ("fastapi/",)),
    ("Starlette", ("starlette/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("aiohttp (upstream calls, image copies)", ("aiohttp/",)),
    ("structlog / logging", ("structlog/", "logging/")),
    ("json", ("json/",)),
    ("ssl", ("ssl.py",)),
    ("mjgate's own code", ("mjgate/",)),
]
# Inclusive: a sample counts when any frame of its stack is in the layer (these overlap).
UNDER = [
    ("under SQLAlchemy (any frame)", ("sqlalchemy/",)),
    ("under the SQLAlchemy ORM session (orm/session.py)", ("sqlalchemy/orm/session.py",)),
    ("under the greenlet bridge (util/_concurrency_py3k greenlet_spawn / await_only)",
     ("sqlalchemy/util/_concurrency_py3k",)),
    ("under FastAPI dependency solving (fastapi/dependencies/)", ("fastapi/dependencies/",)),
    ("under asyncpg connect (connect_utils.py: new connections)", ("asyncpg/connect_utils.py",)),
    ("under the pool's pre-ping (its BEGIN; ROLLBACK on each checkout: _async_ping, do_ping)",
     ("_async_ping", "do_ping")),
    ("under asyncpg BEGIN / COMMIT / ROLLBACK (asyncpg/transaction.py; the pre-ping's too)",
     ("(asyncpg/transaction.py)",)),
    ("under aiohttp", ("aiohttp/",)),
    ("under mjgate's poller (poller/)", ("mjgate/poller/",)),
    ("under mjgate's image copier (images/store.py)", ("mjgate/images/store.py",)),
    ("under mjgate's pricing and channel choice (billing/pricing.py, channels/selection.py)",
     ("mjgate/billing/pricing.py", "mjgate/channels/selection.py")),
]


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        m = FRAME.match(frame.strip())
        if m:
            out.append((m["func"], m["file"]))
    return out


def _package(file: str) -> str:
    parts = file.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif "src" in parts:
        parts = parts[parts.index("src") + 1:]
    if parts and parts[0] == "mjgate" and len(parts) > 2:
        return "mjgate/" + parts[1]
    if parts and re.match(r"python3\.\d+$", parts[0]):
        return "stdlib/" + parts[1].removesuffix(".py") if len(parts) > 1 else "stdlib"
    if len(parts) == 1:
        return "stdlib/" + parts[0].removesuffix(".py")
    return parts[0].removesuffix(".py")


NO_PYTHON_FRAME = "no Python frame (granian's Rust threads, native code)"


def _where(frames: list[tuple[str, str]]) -> str:
    for _func, file in reversed(frames):
        for name, needles in WHERE:
            if any(needle in file for needle in needles):
                return name
    return "other (asyncio, the standard library)"


def summarise_profile(path: Path, top: int = 12) -> dict:
    samples = 0
    where: Counter = Counter()
    under: Counter = Counter()
    functions: Counter = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = _frames(stack)
        n = int(count)
        samples += n
        if not frames:
            # Active, but no Python frame on the thread: granian's Rust side (its runtime thread), native code.
            where[NO_PYTHON_FRAME] += n
            functions[NO_PYTHON_FRAME] += n
            continue
        where[_where(frames)] += n
        text_ = ";".join(f"{func} ({file})" for func, file in frames)
        for name, needles in UNDER:
            if any(needle in text_ for needle in needles):
                under[name] += n
        func, file = frames[-1]
        functions[f"{func} ({file.split('site-packages/')[-1]})"] += n

    def share(counter, k):
        return [(name, round(100 * count / samples, 1)) for name, count in counter.most_common(k)] if samples else []
    return {"samples": samples, "where": share(where, len(WHERE) + 2), "under": share(under, len(UNDER)),
            "functions_self": share(functions, top)}


def profile_markdown(name: str, summary: dict) -> str:
    lines = [f"#### {name} ({summary['samples']:,} samples)", "",
             "| where the time goes (innermost known layer; adds up to 100%) | share |", "|---|---:|"]
    lines += [f"| {n} | {s}% |" for n, s in summary["where"]]
    lines += ["", "| inclusive (any frame of the stack; overlapping) | share |", "|---|---:|"]
    lines += [f"| {n} | {s}% |" for n, s in summary["under"]]
    lines += ["", "| function, self time (the frame on top) | share |", "|---|---:|"]
    lines += [f"| `{n}` | {s}% |" for n, s in summary["functions_self"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# A pass: one side, every workload


def normalised(data, base: str):
    return json.loads(json.dumps(data).replace(base, "BASE"))


def profile_path(directory: Path, backend: str, label: str, w: Workload) -> Path:
    return directory / f"{backend}-{label}-{re.sub(r'[^a-z0-9]+', '-', w.name.lower()).strip('-')}.txt"


def profiled_workloads(wls: list[Workload]) -> list[Workload]:
    """What the profile pass records: submit, fetch and /api/mj/self under concurrency (the issue's hot paths)."""
    return [w for w in wls if w.kind in ("submit", "fetch", "self") and w.concurrency > 1]


async def run_pass(driver: Driver, world: World, server: Server, wls: list[Workload], results: dict, rnd: int,
                   *, profile: Path | None = None) -> None:
    for w in wls:
        if server.proc is None and not w.direct:
            continue
        profiler = None
        if profile is not None:
            # Attached for this workload only (its short warm-up included).
            profiler = Profiler(server.pid, profile_path(profile, world.backend, server.label, w))
        worker_cpu_before = server.worker_cpu()
        try:
            m = await driver.run(w, server, keep_sample=profile is None)
        except Failure as exc:
            log = server.log_path.read_text(errors="replace")[-4000:] if server.log_path else ""
            raise Failure(f"{server.label}, {w.name}: {exc}\n--- server log (tail) ---\n{log}") from None
        finally:
            if profiler is not None:
                profiler.stop()
        if profile is None:
            results.setdefault(w.name, {}).setdefault(server.label, []).append(m)
        cpu = "" if m.server_cpu is None else f", server CPU {m.server_cpu / m.requests * 1000:.2f} ms/req"
        print(f"#   round {rnd} {server.label:>6} {w.name}: {m.value(w.metric):,.2f} "
              f"{ {'latency': 'ms p50', 'rate': 'req/s', 'throughput': 'GB/s'}[w.metric] }{cpu}, "
              f"driver CPU {m.driver_cpu / m.elapsed:.0%}", file=sys.stderr, flush=True)
        if w.kind == "submit" and server.proc is not None:
            # What the submits set going in the background (mjgate: its poller, the image copier)
            # finishes before the next workload, so it is not counted as that workload's CPU.
            worker_in_window = server.worker_cpu() - worker_cpu_before  # split worker: its share of the window
            m.background_cpu, m.unsettled = await quiesce(server, world.url, polls=server.label != "floor",
                                                          settle_s=driver.args.settle_s)
            m.background_cpu += worker_in_window
            await neutralise_polls(world.url)


# ---------------------------------------------------------------------------------------------
# Report


def fmt(value: float, metric: str) -> str:
    if metric == "throughput":
        return f"{value:.2f} GB/s"
    if metric == "latency":
        return f"{value:.2f} ms"
    return f"{value:,.0f} req/s"


def median_of(ms: list[Measure], metric: str) -> float:
    return statistics.median(m.value(metric) for m in ms)


def median_cpu(ms: list[Measure]) -> float | None:
    values = [m.server_cpu / m.requests * 1000 for m in ms if m.server_cpu is not None]
    return statistics.median(values) if values else None


def backend_table(world: World, wls: list[Workload], results: dict, labels: list[str],
                  settle_s: float = SETTLE_S, split_worker: bool = False) -> tuple[str, dict]:
    gw = [label for label in labels if label != "floor"]
    head = (["workload", "floor", *gw, *(f"{g}/floor" for g in gw), "CPU/req floor", *(f"CPU/req {g}" for g in gw),
             *(f"CPU ratio {g}" if len(gw) > 1 else "CPU ratio" for g in gw), "direct",
             *(f"{g} vs direct" for g in gw)])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out: dict = {}
    for w in wls:
        sides = results.get(w.name, {})
        if "floor" not in sides:
            continue
        entry = {"metric": w.metric, "concurrency": w.concurrency,
                 "sides": {label: {"median": median_of(ms, w.metric), "cpu_per_req_ms": median_cpu(ms),
                                   "p99_ms": statistics.median(pct(m.latencies, 0.99) for m in ms),
                                   "rounds": [m.as_dict(w.metric) for m in ms]}
                           for label, ms in sides.items()}}
        out[w.name] = entry
        med = {label: e["median"] for label, e in entry["sides"].items()}
        cpu = {label: e["cpu_per_req_ms"] for label, e in entry["sides"].items()}
        p99 = {label: e["p99_ms"] for label, e in entry["sides"].items()}

        def cell(label):
            if label not in med:
                return "–"
            if w.metric == "latency":
                return f"p50 {med[label]:.2f} / p99 {p99[label]:.2f} ms"
            return fmt(med[label], w.metric)

        ratios = [f"×{med[g] / med['floor']:.2f}" if g in med else "–" for g in gw]
        cpus = [f"{cpu[x]:.2f} ms" if cpu.get(x) is not None else "–" for x in ["floor", *gw]]
        cpu_ratios = [f"×{cpu[g] / cpu['floor']:.1f}" if cpu.get(g) and cpu.get("floor") else "–" for g in gw]
        if "direct" in med:
            if w.metric == "latency":
                vs = [f"+{med[g] - med['direct']:.2f} ms p50" if g in med else "–" for g in gw]
            else:
                vs = [f"{med[g] / med['direct']:.2f}" if g in med else "–" for g in gw]
            direct = cell("direct")
        else:
            vs, direct = ["" for _ in gw], ""
        lines.append("| " + " | ".join([w.name, cell("floor"), *(cell(g) for g in gw), *ratios, *cpus, *cpu_ratios,
                                         direct, *vs]) + " |")
    notes = []
    for w in wls:
        if w.kind != "submit" or w.concurrency == 1:
            continue
        for label, ms in results.get(w.name, {}).items():
            tails = [m.background_cpu / m.requests * 1000 for m in ms if m.background_cpu is not None]
            if tails:
                unsettled = max(m.unsettled for m in ms)
                notes.append(f"{label} {statistics.median(tails):.2f} ms" + (
                    f" ({unsettled:,} tasks still due after {settle_s:.0f} s)" if unsettled else ""))
    if notes:
        where = ("the worker's during the window and the server's and worker's after it; not in CPU/req"
                 if split_worker else "its poller and image copies; not in CPU/req")
        lines += ["", f"Background CPU per task after `{[w.name for w in wls if w.kind == 'submit'][-1]}`, until the "
                      f"server was quiet (mjgate: {where}): " + "; ".join(notes) + "."]
    return "\n".join(lines), out


def shape_check(driver: Driver, labels: list[str]) -> str:
    """The floor answers what mjgate answers: compare the first answer of each read workload."""
    notes = []
    floor = driver.samples.get("floor", {})
    for label in labels:
        if label == "floor":
            continue
        other = driver.samples.get(label, {})
        for kind in ("fetch", "list", "self"):
            if kind not in floor or kind not in other:
                continue
            a, b = floor[kind], other[kind]
            if a != b:
                notes.append(f"{kind}: floor and {label} differ: {_first_difference(a, b)}")
    return "; ".join(notes) if notes else "fetch, list-by-condition and /api/mj/self answers identical (base URL aside)"


def _first_difference(a, b, path="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k, "<missing>") != b.get(k, "<missing>"):
                return _first_difference(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or '.'}: {str(a)[:120]} != {str(b)[:120]}"


# ---------------------------------------------------------------------------------------------
# Main


def sides_of(args) -> list[tuple[str, Path]]:
    if not args.src:
        return [("mjgate", ROOT / "src")]
    if len(args.src) == 1:
        return [("mjgate", Path(args.src[0]).resolve() / "src")]
    return [("before", Path(args.src[0]).resolve() / "src"), ("after", Path(args.src[1]).resolve() / "src")]


async def bench_backend(backend: str, url: str, sim, args, tmp: Path) -> dict:
    sides = sides_of(args)
    world = await build_world(backend, url, sim, args, tmp, sides[-1][1])
    wls = workloads(args)
    results: dict = {}
    labels = ["floor", *(label for label, _ in sides)]
    loops: dict[str, str] = {}
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2, limit_per_host=args.concurrency * 2)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        driver = Driver(http, world, args)
        direct = Server("direct", sim.base_url, None)
        for rnd in range(1, args.rounds + 1):
            for label in labels:
                await neutralise_polls(url)
                server = start_floor(world, tmp) if label == "floor" else \
                    start_mjgate(world, label, dict(sides)[label], tmp, split_worker=args.split_worker)
                loops.setdefault(label, "uvloop" if uvloop_loaded(server.pid) else "asyncio (uvloop not loaded)")
                try:
                    await run_pass(driver, world, server, wls, results, rnd)
                finally:
                    server.stop()
            await run_pass(driver, world, direct, wls, results, rnd)
        profiles = {}
        if args.profile and backend in args.profile_backends:
            args.profile.mkdir(parents=True, exist_ok=True)
            for label, src in sides:
                await neutralise_polls(url)
                server = start_mjgate(world, label, src, tmp, split_worker=args.split_worker)
                try:
                    await run_pass(driver, world, server, profiled_workloads(wls), {}, 0, profile=args.profile)
                finally:
                    server.stop()
                for w in profiled_workloads(wls):
                    profiles[f"{backend}, {label}, {w.name}"] = summarise_profile(
                        profile_path(args.profile, backend, label, w))
    table, data = backend_table(world, wls, results, labels, args.settle_s, args.split_worker)
    money = await ledger_check(world)
    return {"backend": backend, "version": world.version, "table": table, "workloads": data,
            "shapes": shape_check(driver, labels), "ledger": money, "profiles": profiles,
            "seconds": round(time.perf_counter() - started),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "loops": loops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k rows and about a third of the requests "
                                                             "(2-3 minutes instead of 10-15)")
    parser.add_argument("--rows", type=int, default=None, help="tasks to load (default 1,000,000; --quick 100,000)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma list of sqlite,postgresql,mysql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", action="append", default=[], metavar="DIR",
                        help="run the mjgate side from DIR/src (another checkout); twice: 'before' and 'after'")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after the rounds, one more mjgate pass with py-spy attached during submit and fetch; "
                             "raw profiles go to DIR, a summary to the output")
    parser.add_argument("--summarise", type=Path, metavar="DIR",
                        help="only print the summaries of the raw py-spy profiles already in DIR, run nothing")
    parser.add_argument("--profile-backends", default="postgresql", help="backends to profile (default postgresql)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=32, help="submitting users, each with its own key")
    parser.add_argument("--image-mb", type=int, default=50)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every request count")
    parser.add_argument("--cap-s", type=float, default=30.0, help="stop a timed workload after this many seconds")
    parser.add_argument("--split-worker", action="store_true",
                        help="run each mjgate side as `serve` without its poller plus `mjgate worker` beside it: "
                             "the server's CPU per request is then the request path's alone, and the worker's "
                             "(during and after the submits) is reported as background")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the workloads whose name contains TEXT (repeatable), e.g. --only image")
    parser.add_argument("--sqlite-file", help="the SQLite database file (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.summarise:
        for path in sorted(args.summarise.glob("*.txt")):
            print(profile_markdown(path.stem, summarise_profile(path)), end="\n\n")
        return 0
    if len(args.src) > 2:
        parser.error("--src at most twice (before, after)")
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.settle_s = 5.0 if args.quick else SETTLE_S
    if args.rows < 10_000:
        parser.error("--rows must be at least 10,000")
    args.profile_backends = {b.strip() for b in args.profile_backends.split(",")}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"sqlite", "postgresql", "mysql"}:
        parser.error(f"unknown backends {backends}")
    if args.profile and not any(Path(p, "py-spy").exists() for p in [Path(sys.executable).parent,
                                                                      *os.environ["PATH"].split(":")]):
        parser.error("--profile needs py-spy (.venv/bin/pip install py-spy)")

    started = time.perf_counter()
    reports = []
    sim = start_simulator_process(secret="bench", core_size=1_000_000, queue_size=1_000_000, notify=False)
    try:
        with tempfile.TemporaryDirectory(prefix="mjgate-floor-") as tmp_name:
            tmp = Path(tmp_name)
            for backend in backends:
                if backend == "sqlite":
                    path = Path(args.sqlite_file).resolve() if args.sqlite_file else tmp / "floor.db"
                    url = f"sqlite+aiosqlite:///{path}"
                else:
                    env, default = DEFAULT_URLS[backend]
                    url = os.environ.get(env, default)
                try:
                    reports.append(asyncio.run(bench_backend(backend, url, sim, args, tmp / backend)))
                except (OSError, ConnectionError, OperationalError, InterfaceError) as exc:
                    print(f"# {backend}: skipped, unreachable or failed: {str(exc).splitlines()[0]}", file=sys.stderr)
    finally:
        sim.stop()

    sides = sides_of(args)
    lines = [f"Floor benchmark — {machine()}", "",
             f"Rounds: {args.rounds} (the median is shown), interleaved floor, "
             f"{', '.join(label for label, _ in sides)}, direct; {args.rows:,} tasks loaded, the heavy user owns "
             f"{args.rows // 10:,}; {args.users} submitting users; client: aiohttp in the benchmark's own process, "
             f"concurrency as named; servers: granian, 1 worker, default loop (uvloop)."
             + (" mjgate sides: `serve` without its poller and `mjgate worker` beside it (--split-worker):"
                " CPU/req is the server's alone, the worker's is in the background figure."
                if args.split_worker else "")]
    for label, src in sides:
        lines.append(f"{label}: {src}")
    for r in reports:
        lines += ["", f"### {r['backend']}: {r['version']}", "", r["table"], "",
                  f"Answers: {r['shapes']}. Ledger: {r['ledger']}. Event loops: "
                  + ", ".join(f"{k} {v}" for k, v in r["loops"].items()) + f". Took {r['seconds']} s; 1-minute load "
                  f"average {r['load_average'][0]} before, {r['load_average'][1]} after."]
    lines += ["", "Ratios: a side's value over the floor's (req/s and GB/s: below 1 is slower; submit c=1 is p50 "
                  "latency: above 1 is slower). CPU/req: user+system time of the server's process tree over the "
                  "timed window, per request (the image: per 50 MB stream). direct: the client straight at the "
                  "simulator."]
    profiles = {name: p for r in reports for name, p in r["profiles"].items()}
    if profiles:
        lines += ["", "## Profiles (py-spy, 200 Hz, server process tree, timed window only)", ""]
        for name, summary in profiles.items():
            lines += [profile_markdown(name, summary), ""]
    lines += ["", f"Total benchmark time: {time.perf_counter() - started:.0f} s"]
    print("\n".join(lines))
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "machine": machine(), "command": sys.argv, "rows": args.rows, "rounds": args.rounds,
            "sides": {label: str(src) for label, src in sides},
            "backends": {r["backend"]: {k: v for k, v in r.items() if k != "table"} for r in reports},
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
