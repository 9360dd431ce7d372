"""The chaos run: many users with limited quota submit through every face against a faulty upstream
while the gateway is killed with SIGKILL and restarted; then the money and the tasks are checked.

    bash bench/chaos.sh [--submits 2000] [--kills 2] [--db postgresql|mysql|sqlite] [--db-url URL]

1. A fresh database (PostgreSQL by default: MJGATE_BENCH_POSTGRES_URL, else the bench_chaos database
   on 127.0.0.1, created when missing; wiped and migrated), --users users each with a key, a console
   password and quota for about two thirds of its share of the submits.
2. The simulator with failures, 5xx answers, malformed answers, forgotten tasks and, in every other
   tenth of the run, slow answers; upstream callbacks on.
3. `mjgate serve` in its own process group; --submits submits spread over the faces: midjourney-proxy
   /mj/submit/imagine and /mj/submit/action on finished results, AceData /midjourney/imagine async
   and its transforms, the console's /api/console/submit/imagine with a logged-in session. After
   each of --kills equal shares of the submits, the whole process group is killed with SIGKILL and
   started again on the same port.
4. Once every task is finished (or the task timeout has passed for all), for every user and task:
   balance equals the ledger, used quota equals charges minus give-backs, no task charged twice or
   given back twice, nothing given back that was never charged, amounts match the task's price,
   every charged failure refunded and no success refunded, nothing unfinished past the timeout
   (for a task whose submit a kill cut short: past the gateway's 120 s submit grace).
   A table of counts and violations is printed; the exit code is 1 if there is any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from mjgate.db import Database  # noqa: E402
from mjgate.db.migrate import upgrade  # noqa: E402
from mjgate.tasks.transitions import SUBMIT_GRACE_MS  # noqa: E402

PRICE_IMAGINE = 50_000  # 0.1 USD at 500,000 units per USD (billing/pricing.py)
FACES = (("mjproxy_imagine", 30), ("mjproxy_action", 15), ("acedata_imagine", 25), ("acedata_transform", 10),
         ("console_imagine", 20))
FAULTS = dict(failure_rate=0.1, error_rate=0.05, malformed_rate=0.03, forget_rate=0.05)
SLOW_SECONDS = 2.0
DEFAULT_URLS = {"postgresql": "postgresql://postgres@127.0.0.1:5432/bench_chaos",
                "mysql": "mysql://root@127.0.0.1:3306/bench_chaos"}
URL_ENV = {"postgresql": "MJGATE_BENCH_POSTGRES_URL", "mysql": "MJGATE_BENCH_MYSQL_URL"}


# ----------------------------------------------------------------------------- database

async def _create_database(url: str) -> None:
    """CREATE DATABASE for a server URL when it does not exist yet."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from mjgate.db import normalize_url

    parsed = make_url(normalize_url(url))
    name = parsed.database
    admin_db = "postgres" if parsed.get_backend_name() == "postgresql" else None
    engine = create_async_engine(parsed.set(database=admin_db), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            if parsed.get_backend_name() == "postgresql":
                exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
                if not exists:
                    await conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                await conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}`"))
    finally:
        await engine.dispose()


async def fresh_database(kind: str, url: str | None, workdir: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir}/chaos.db"
    else:
        from tests.fixtures.databases import wipe_server_schema

        url = url or os.environ.get(URL_ENV[kind]) or DEFAULT_URLS[kind]
        await _create_database(url)
        await wipe_server_schema(url)
    await asyncio.to_thread(upgrade, url)
    return url


@dataclass
class Account:
    name: str
    user_id: int
    key: str
    password: str
    tasks: list[str] = field(default_factory=list)  # public ids of its tasks, any face


async def seed(url: str, users: int, quota: int, sim_base: str, sim_secret: str) -> list[Account]:
    from mjgate.accounts.keys import create_key
    from mjgate.accounts.users import create_user
    from mjgate.billing.ledger import credit
    from mjgate.channels.admin import create_channel

    db = Database(url)
    accounts = []
    try:
        async with db.write() as session:
            await create_channel(session, "chaos-simulator", sim_base, sim_secret)
            for i in range(users):
                password = f"chaos-pw-{i}"
                created = await create_user(session, f"chaos{i:03d}", password=password)
                await credit(session, created.user.id, quota, memo="chaos quota")
                key = await create_key(session, created.user, name="chaos")
                accounts.append(Account(created.user.username, created.user.id, key.secret, password))
    finally:
        await db.dispose()
    return accounts


# ----------------------------------------------------------------------------- processes

class Gateway:
    """`mjgate serve` in its own process group, so SIGKILL takes the master and its workers at once."""

    def __init__(self, url: str, workdir: Path, port: int, timeout_s: int):
        from tests.fixtures.live import _env

        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = _env(url, workdir / "data", MJGATE_TASK_TIMEOUT_S=str(timeout_s), MJGATE_POLLER_INTERVAL_S="0.5",
                        MJGATE_POLLER_LEASE_S="5", MJGATE_UPSTREAM_CALLBACKS="true", MJGATE_LOG_LEVEL="WARNING",
                        MJGATE_WEBHOOK_ALLOW_PRIVATE="true",
                        # Some simulated failures say "Banned prompt": escalation would block the user mid-run.
                        MJGATE_MODERATION_HITS_PER_DAY="0")
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "mjgate.cli", "serve", "--port", str(self.port)],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited ({self.proc.returncode}):\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the gateway did not come up")

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_group()


# ----------------------------------------------------------------------------- load

@dataclass
class Tally:
    answers: Counter = field(default_factory=Counter)  # (face, outcome) -> count

    def add(self, face: str, outcome: str) -> None:
        self.answers[(face, outcome)] += 1


def _reason(answer: dict) -> str:
    """A refusal's reason in its dialect: midjourney-proxy's code, AceData's error code, the console's."""
    if "code" in answer and "description" in answer:
        return f"code {answer['code']}: {str(answer['description'])[:40]}"
    if isinstance(answer.get("error"), dict):
        return f"{answer['error'].get('code')}: {str(answer['error'].get('message', ''))[:40]}"
    return str(answer.get("message", ""))[:50]


class Load:
    def __init__(self, gateway: Gateway, accounts: list[Account], rng: random.Random):
        self.gateway = gateway
        self.accounts = accounts
        self.rng = rng
        self.tally = Tally()
        self.sessions: dict[str, tuple[dict, str]] = {}  # username -> (cookies, csrf token)
        self.up = asyncio.Event()
        self.up.set()

    def _face(self) -> str:
        names, weights = zip(*FACES)
        return self.rng.choices(names, weights)[0]

    async def _console_login(self, http: httpx.AsyncClient, account: Account) -> tuple[dict, str] | None:
        if account.name not in self.sessions:
            resp = await http.post("/api/console/login", json={"username": account.name, "password": account.password})
            if resp.status_code != 200:
                return None
            self.sessions[account.name] = (dict(resp.cookies), resp.json()["data"]["csrf_token"])
        return self.sessions[account.name]

    async def _finished_parent(self, http: httpx.AsyncClient, account: Account) -> dict | None:
        """A SUCCESS task of this account with buttons, looked up through midjourney-proxy's fetch."""
        for mj_id in self.rng.sample(account.tasks, min(5, len(account.tasks))):
            resp = await http.get(f"/mj/task/{mj_id}/fetch", headers={"Authorization": f"Bearer {account.key}"})
            task = resp.json() if resp.status_code == 200 else None
            if task and task.get("status") == "SUCCESS" and task.get("buttons"):
                return task
        return None

    async def submit(self, http: httpx.AsyncClient, account: Account, i: int) -> None:
        face = self._face()
        bearer = {"Authorization": f"Bearer {account.key}"}
        await self.up.wait()
        try:
            if face in ("mjproxy_action", "acedata_transform"):
                parent = await self._finished_parent(http, account)
                if parent is None:  # nothing to press yet: an imagine instead
                    face = "mjproxy_imagine" if face == "mjproxy_action" else "acedata_imagine"
            if face == "mjproxy_imagine":
                resp = await http.post("/mj/submit/imagine", json={"prompt": f"chaos {i}"}, headers=bearer)
                answer = resp.json() if resp.status_code < 500 else {}
                created = answer.get("code") in (1, 22) and answer.get("result")
                task_id = answer.get("result")
            elif face == "mjproxy_action":
                button = self.rng.choice([b for b in parent["buttons"] if b.get("customId")])
                resp = await http.post("/mj/submit/action", json={"taskId": parent["id"], "customId": button["customId"]},
                                       headers=bearer)
                answer = resp.json() if resp.status_code < 500 else {}
                created = answer.get("code") in (1, 21, 22) and answer.get("result")
                task_id = answer.get("result")
            elif face == "acedata_imagine":
                resp = await http.post("/midjourney/imagine", json={"prompt": f"chaos {i}", "async": True}, headers=bearer)
                answer = resp.json() if resp.status_code < 500 else {}
                created = answer.get("success") and answer.get("task_id")
                task_id = answer.get("task_id")
            elif face == "acedata_transform":
                action = self.rng.choice(["upscale1", "upscale2", "variation1", "variation3"])
                resp = await http.post("/midjourney/imagine", json={"action": action, "image_id": parent["id"],
                                                                    "async": True}, headers=bearer)
                answer = resp.json() if resp.status_code < 500 else {}
                created = answer.get("success") and answer.get("task_id")
                task_id = answer.get("task_id")
            else:
                session = await self._console_login(http, account)
                if session is None:
                    self.tally.add(face, "login refused")
                    return
                cookies, csrf = session
                resp = await http.post("/api/console/submit/imagine", json={"prompt": f"chaos {i}"}, cookies=cookies,
                                       headers={"X-CSRF-Token": csrf})
                answer = resp.json() if resp.status_code < 500 else {}
                created = answer.get("success") and (answer.get("data") or {}).get("mj_id")
                task_id = (answer.get("data") or {}).get("mj_id")
        except (httpx.TransportError, ValueError) as exc:  # the gateway was being killed, or a cut answer
            self.tally.add(face, f"no answer ({type(exc).__name__})")
            return
        if resp.status_code >= 500:
            self.tally.add(face, f"HTTP {resp.status_code} {resp.text[:70]}")
        elif created:
            account.tasks.append(task_id)
            self.tally.add(face, "task created")
        else:
            self.tally.add(face, f"refused: HTTP {resp.status_code} {_reason(answer)}")

    async def run(self, submits: int, kills: int, concurrency: int, on_share) -> None:
        shares = [round(submits * (k + 1) / (kills + 1)) for k in range(kills)]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(submits):
            queue.put_nowait(i)
        done = 0
        lock = asyncio.Lock()

        async def worker(http: httpx.AsyncClient):
            nonlocal done
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self.submit(http, self.rng.choice(self.accounts), i)
                async with lock:
                    done += 1
                    if shares and done >= shares[0]:
                        shares.pop(0)
                        await on_share(done)

        limits = httpx.Limits(max_connections=concurrency * 2)
        async with httpx.AsyncClient(base_url=self.gateway.base_url, timeout=60, limits=limits) as http:
            await asyncio.gather(*[worker(http) for _ in range(concurrency)])


# ----------------------------------------------------------------------------- checks

CHECKS = {
    "balance differs from the ledger": """
        SELECT u.id FROM users u
        WHERE u.quota <> (SELECT COALESCE(SUM(l.amount), 0) FROM quota_ledger l WHERE l.user_id = u.id)""",
    "used quota differs from charges minus give-backs": """
        SELECT u.id FROM users u
        WHERE u.used_quota <> (SELECT COALESCE(SUM(CASE WHEN l.kind = 'charge' THEN -l.amount
                                                      WHEN l.kind IN ('refund', 'release') THEN -l.amount
                                                      ELSE 0 END), 0)
                               FROM quota_ledger l WHERE l.user_id = u.id)""",
    "task charged twice": """
        SELECT task_id FROM quota_ledger WHERE kind = 'charge' AND task_id IS NOT NULL
        GROUP BY task_id HAVING COUNT(*) > 1""",
    "task given back twice": """
        SELECT task_id FROM quota_ledger WHERE kind IN ('refund', 'release') AND task_id IS NOT NULL
        GROUP BY task_id HAVING COUNT(*) > 1""",
    "given back, never charged": """
        SELECT g.task_id FROM quota_ledger g
        WHERE g.kind IN ('refund', 'release')
          AND NOT EXISTS (SELECT 1 FROM quota_ledger c WHERE c.task_id = g.task_id AND c.kind = 'charge')""",
    "charge differs from the task's price": """
        SELECT t.id FROM tasks t JOIN quota_ledger c ON c.task_id = t.id AND c.kind = 'charge'
        WHERE c.amount <> -t.quota""",
    "give-back differs from the charge": """
        SELECT g.task_id FROM quota_ledger g JOIN quota_ledger c ON c.task_id = g.task_id AND c.kind = 'charge'
        WHERE g.kind IN ('refund', 'release') AND g.amount <> -c.amount""",
    "priced task without a charge": """
        SELECT t.id FROM tasks t WHERE t.quota > 0
          AND NOT EXISTS (SELECT 1 FROM quota_ledger c WHERE c.task_id = t.id AND c.kind = 'charge')""",
    "refunded_at without a give-back, or the reverse": """
        SELECT t.id FROM tasks t
        WHERE (t.refunded_at IS NOT NULL) <> EXISTS (SELECT 1 FROM quota_ledger g WHERE g.task_id = t.id
                                                        AND g.kind IN ('refund', 'release'))""",
    "charged failure not refunded": """
        SELECT t.id FROM tasks t WHERE t.status = 'FAILURE' AND t.quota > 0 AND t.refunded_at IS NULL""",
    "succeeded task refunded": """
        SELECT t.id FROM tasks t WHERE t.status = 'SUCCESS' AND t.refunded_at IS NOT NULL""",
    "unfinished past the timeout": """
        SELECT t.id FROM tasks t
        WHERE t.status NOT IN ('SUCCESS', 'FAILURE', 'CANCEL') AND t.submit_time < :stuck_before""",
}


async def open_tasks(url: str) -> int:
    db = Database(url)
    try:
        async with db.read() as session:
            return int(await session.scalar(text(
                "SELECT COUNT(*) FROM tasks WHERE status NOT IN ('SUCCESS', 'FAILURE', 'CANCEL')")))
    finally:
        await db.dispose()


async def check(url: str, stuck_before_ms: int) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    db = Database(url)
    try:
        async with db.read() as session:
            violations = {}
            for name, sql in CHECKS.items():
                rows = (await session.execute(text(sql), {"stuck_before": stuck_before_ms} if ":" in sql else {})).all()
                violations[name] = len(rows)
            counts = {
                "tasks by status": dict((await session.execute(text(
                    "SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status"))).all()),
                "ledger rows by kind": dict((await session.execute(text(
                    "SELECT kind, COUNT(*) FROM quota_ledger GROUP BY kind ORDER BY kind"))).all()),
            }
        return violations, counts
    finally:
        await db.dispose()


# ----------------------------------------------------------------------------- the run

def print_report(args, url: str, load: Load, sim_stats: dict, counts: dict, violations: dict, seconds: float,
                 kills_done: int, starts: int) -> None:
    from sqlalchemy.engine import make_url

    print(f"\nchaos run: {args.submits} submits, {args.users} users, {kills_done} kill -9 of the gateway's process "
          f"group ({starts} starts), {make_url(url).get_backend_name()}, task timeout {args.timeout_s} s, "
          f"{seconds:.0f} s\n")
    print("| face | outcome | count |\n|---|---|---:|")
    for (face, outcome), n in sorted(load.tally.answers.items()):
        print(f"| {face} | {outcome} | {n} |")
    print("\n| what | count |\n|---|---:|")
    for group, values in counts.items():
        for name, n in values.items():
            print(f"| {group}: {name} | {n} |")
    for name in ("submits", "injected_errors", "injected_malformed", "forgotten", "notify_sent", "notify_failed",
                 "notify_retried"):
        print(f"| upstream: {name} | {sim_stats.get(name, 0)} |")
    for name in sorted(k for k in sim_stats if k.startswith("notify_failed:")):
        print(f"| upstream: {name} | {sim_stats[name]} |")
    print("\n| check | violations |\n|---|---:|")
    for name, n in violations.items():
        print(f"| {name} | {n} |")
    print(f"\nviolations: {sum(violations.values())}")


async def run(args) -> int:
    from tests.fixtures.live import free_port
    from tests.fixtures.simulator import start_simulator_process

    workdir = Path(tempfile.mkdtemp(prefix="mjgate-chaos-"))  # removed unless something is wrong
    if True:
        (workdir / "data").mkdir()
        try:
            url = await fresh_database(args.db, args.db_url, workdir)
        except OSError as exc:
            print(f"chaos: the {args.db} database cannot be reached ({exc}); skipped", file=sys.stderr)
            return 0
        rng = random.Random(args.seed)
        sim = start_simulator_process(secret="chaos", step_seconds=0.2, steps=3, start_delay_seconds=0.1,
                                      core_size=10_000, queue_size=10_000, seed=args.seed, **FAULTS)
        per_user = args.submits / args.users
        accounts = await seed(url, args.users, int(per_user * 2 / 3) * PRICE_IMAGINE, sim.base_url, sim.secret)
        gateway = Gateway(url, workdir, free_port(), args.timeout_s)
        started = time.monotonic()
        kills_done = 0
        try:
            gateway.start()
            load = Load(gateway, accounts, rng)
            tenth = max(1, args.submits // 10)

            async def on_share(done: int) -> None:
                nonlocal kills_done
                load.up.clear()  # hold new submits while the gateway is down; those in flight see it die
                gateway.kill_group()
                kills_done += 1
                print(f"chaos: kill -9 of the gateway's process group after {done} submits", file=sys.stderr)
                await asyncio.sleep(1)
                await asyncio.to_thread(gateway.start)
                load.up.set()

            async def slow_phases() -> None:
                # Slow answers in every other tenth of the run.
                slow = False
                while True:
                    await asyncio.sleep(0.5)
                    answered = sum(load.tally.answers.values())
                    want = (answered // tenth) % 2 == 1
                    if want != slow:
                        slow = want
                        await asyncio.to_thread(sim.configure, slow_seconds=SLOW_SECONDS if slow else 0)

            phases = asyncio.create_task(slow_phases())
            try:
                await load.run(args.submits, args.kills, args.concurrency, on_share)
            finally:
                phases.cancel()
            sim.configure(slow_seconds=0)
            # A task whose submit a kill cut short is settled after the gateway's SUBMIT_GRACE_MS, which a
            # short task timeout does not shorten.
            settle_s = max(args.timeout_s, SUBMIT_GRACE_MS // 1000)
            deadline = time.monotonic() + settle_s + 60
            while await open_tasks(url) and time.monotonic() < deadline:
                await asyncio.sleep(1)
            # Unfinished at the check although submitted longer ago than the timeout (plus a poll and a lease).
            stuck_before = int((time.time() - settle_s - 30) * 1000)
            violations, counts = await check(url, stuck_before)
            if await open_tasks(url):
                # Open tasks younger than the timeout are not violations, but the run should say so.
                counts["tasks by status"]["(still open at the end)"] = await open_tasks(url)
            sim_stats = sim.stats()
        finally:
            gateway.stop()
            sim.stop()
        print_report(args, url, load, sim_stats, counts, violations, time.monotonic() - started, kills_done,
                     gateway.starts)
        if sum(violations.values()):
            print(f"gateway log: {gateway.log_path} (kept: {workdir})", file=sys.stderr)
            return 1
        shutil.rmtree(workdir, ignore_errors=True)
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--db", choices=("postgresql", "mysql", "sqlite"), default="postgresql")
    parser.add_argument("--db-url", help="server database to use (wiped); default from MJGATE_BENCH_*_URL")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout-s", type=int, default=60, help="MJGATE_TASK_TIMEOUT_S of the run")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    if args.db_url and args.db == "postgresql" and args.db_url.startswith("mysql"):
        args.db = "mysql"
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
