"""The dashboards' figures against the ledger and the tasks, on SQLite, PostgreSQL and MariaDB.

Known data is seeded (tasks of two users on two channels, inside and outside the window, some
failed and refunded, some running), with every charge and refund in the ledger as the real
billing path writes them; then every figure of both views is recomputed here from the rows the
database holds: spend from the ledger entries of each task, counts and times from the tasks.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from mjgate.clock import now_ms
from mjgate.models import LedgerEntry, Task
from mjgate.stats.repository import DAY_MS, HOUR_MS, window
from tests.console.helpers import data, fail, login, new_client
from tests.factories import insert_tasks, make_channel, make_user, task_row

STATUSES = ["SUCCESS"] * 6 + ["FAILURE", "FAILURE", "CANCEL", "IN_PROGRESS", "SUBMITTED", "NOT_START"]
ACTIONS = ["IMAGINE", "IMAGINE", "UPSCALE", "VARIATION", "BLEND"]
PRICES = {"IMAGINE": 50_000, "UPSCALE": 25_000, "VARIATION": 50_000, "BLEND": 50_000}


async def seed(db, owners: list[int], channels: list[int], *, span_ms: int, count: int, seed_value: int):
    """`count` tasks over the last `span_ms` (and a few older ones), with their ledger entries."""
    rng = random.Random(seed_value)
    now = now_ms()
    rows = []
    for i in range(count):
        status = rng.choice(STATUSES)
        action = rng.choice(ACTIONS)
        submit = now - rng.randrange(0, span_ms + 3 * DAY_MS)  # some fall before the window
        unfinished = status in ("IN_PROGRESS", "SUBMITTED", "NOT_START")
        refunded = status == "FAILURE" and rng.random() < 0.8
        rows.append(task_row(
            rng.choice(owners), submit_time=submit, channel_id=None if status == "NOT_START" else rng.choice(channels),
            mj_id=f"d{seed_value}-{i:05d}", action=action, mode=rng.choice(["fast", "relax"]), status=status,
            progress="40%" if unfinished else "100%", quota=PRICES[action],
            finish_time=None if unfinished else submit + rng.randrange(5_000, 120_000),
            refunded_at=submit + 60_000 if refunded else None,
            next_poll_at=submit + 5_000 if unfinished else None,
            fail_reason="upstream says no" if status == "FAILURE" else "",
        ))
    await insert_tasks(db, rows)
    async with db.write() as session:
        ids = dict((await session.execute(select(Task.mj_id, Task.id).where(
            Task.mj_id.in_([r["mj_id"] for r in rows])))).all())
        for row in rows:
            task_id = ids[row["mj_id"]]
            session.add(LedgerEntry(user_id=row["user_id"], task_id=task_id, kind="charge", amount=-row["quota"],
                                    created_at=row["submit_time"], memo=""))
            if row["refunded_at"] is not None:
                session.add(LedgerEntry(user_id=row["user_id"], task_id=task_id, kind="refund", amount=row["quota"],
                                        created_at=row["refunded_at"], memo=""))


async def facts(db) -> list[dict]:
    """Each task as the database holds it, with its spend taken from the ledger."""
    async with db.read() as session:
        tasks = (await session.execute(select(Task.id, Task.user_id, Task.channel_id, Task.action, Task.status,
                                              Task.submit_time, Task.finish_time))).all()
        ledger = (await session.execute(select(LedgerEntry.task_id, LedgerEntry.amount)
                                        .where(LedgerEntry.task_id.is_not(None)))).all()
    spend: dict[int, int] = {}
    for task_id, amount in ledger:
        spend[task_id] = spend.get(task_id, 0) - amount  # a charge is negative in the ledger
    return [{"user_id": t.user_id, "channel_id": t.channel_id, "action": t.action, "status": t.status,
             "submit": t.submit_time, "finish": t.finish_time, "spend": spend.get(t.id, 0)} for t in tasks]


def expected(win, tasks: list[dict]) -> dict:
    inside = [t for t in tasks if win.start_ms <= t["submit"] < win.end_ms]
    buckets = [[t for t in inside if (t["submit"] - win.start_ms) // win.bucket_ms == i] for i in range(win.count)]

    def summary(group):
        success = sum(t["status"] == "SUCCESS" for t in group)
        finished = sum(t["status"] in ("SUCCESS", "FAILURE", "CANCEL") for t in group)
        times = [t["finish"] - t["submit"] for t in group if t["status"] == "SUCCESS"]
        return {"tasks": len(group), "success": success, "failure": sum(t["status"] == "FAILURE" for t in group),
                "spend": sum(t["spend"] for t in group),
                "success_rate": round(success / finished, 4) if finished else None,
                "latency_ms": sum(times) // len(times) if times else None}

    return {"inside": inside, "totals": summary(inside), "buckets": [summary(b) for b in buckets], "summary": summary}


def check_view(view: dict, win, exp: dict) -> None:
    assert view["buckets"] == win.starts()
    for key in ("tasks", "success", "failure", "spend", "success_rate", "latency_ms"):
        assert view["totals"][key] == exp["totals"][key], key
        assert view["series"][key] == [b[key] for b in exp["buckets"]], key


@pytest.mark.parametrize("range_name,tz", [("24h", 0), ("7d", -480), ("30d", 300)])
async def test_dashboards_equal_the_ledger_and_the_tasks(app, client, db, range_name, tz):
    admin = await login(client, db, "root", role="admin")
    async with new_client(app) as other:  # the same app, a second session
        alice = await login(other, db, "alice")
        bob = await make_user(db, "bob")
        channels = [await make_channel(db, "one"), await make_channel(db, "two")]
        span = {"24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}[range_name]
        await seed(db, [alice.user["id"], bob["id"], admin.user["id"]], channels, span_ms=span, count=400,
                   seed_value=len(range_name) + tz)
        tasks = await facts(db)
        assert len(tasks) == 400

        mine = data(await alice.get(f"/api/console/dashboard?range={range_name}&tz_offset={tz}"))
        win = window(range_name, mine["now"], tz)
        assert (mine["from"], mine["to"], mine["bucket_ms"]) == (win.start_ms, win.end_ms, win.bucket_ms)
        assert mine["bucket"] == ("hour" if range_name == "24h" else "day")
        own = [t for t in tasks if t["user_id"] == alice.user["id"]]
        check_view(mine, win, expected(win, own))
        # Running now: the user's unfinished tasks, whenever submitted.
        running = [t for t in own if t["status"] in ("IN_PROGRESS", "SUBMITTED", "NOT_START")]
        assert mine["running"]["total"] == len(running)
        assert mine["running"]["by_status"]["IN_PROGRESS"] == sum(t["status"] == "IN_PROGRESS" for t in running)
        assert len(mine["running"]["items"]) == min(20, len(running))
        assert all(i["status"] in ("IN_PROGRESS", "SUBMITTED", "NOT_START") for i in mine["running"]["items"])
        assert mine["balance"] == 0 and mine["scope"] == "user"
        exp_own = expected(win, own)
        by_action = {a["action"]: a for a in mine["by_action"]}
        for action in {t["action"] for t in exp_own["inside"]}:
            group = [t for t in exp_own["inside"] if t["action"] == action]
            assert by_action[action]["tasks"] == len(group)
            assert by_action[action]["spend"] == sum(t["spend"] for t in group)

    everyone = data(await admin.get(f"/api/admin/dashboard?range={range_name}&tz_offset={tz}"))
    win = window(range_name, everyone["now"], tz)
    exp = expected(win, tasks)
    check_view(everyone, win, exp)
    assert everyone["running"]["total"] == sum(t["status"] in ("IN_PROGRESS", "SUBMITTED", "NOT_START") for t in tasks)
    # Top users: by spend, with names; the number of users active in the window.
    per_user: dict[int, list] = {}
    for t in exp["inside"]:
        per_user.setdefault(t["user_id"], []).append(t)
    ranked = sorted(per_user.items(), key=lambda kv: (-sum(t["spend"] for t in kv[1]), -len(kv[1]), kv[0]))
    assert [(u["user_id"], u["tasks"], u["spend"]) for u in everyone["top_users"]] == [
        (uid, len(group), sum(t["spend"] for t in group)) for uid, group in ranked]
    assert {u["username"] for u in everyone["top_users"]} <= {"root", "alice", "bob"}
    assert everyone["active_users"] == len(per_user)
    # Spend by action adds up to the total spend.
    assert sum(a["spend"] for a in everyone["by_action"]) == exp["totals"]["spend"]
    # Each channel: its tasks, success rate and time to finish per bucket; the channel-less ones apart.
    by_id = {c["id"]: c for c in everyone["channels"]}
    for channel_id in [*channels, None]:
        group = [t for t in exp["inside"] if t["channel_id"] == channel_id]
        view = by_id.get(channel_id)
        if view is None:
            assert not group
            continue
        sub = expected(win, group)
        for key in ("tasks", "success", "success_rate", "latency_ms"):
            assert view["totals"][key] == sub["totals"][key], (channel_id, key)
            assert view["series"][key] == [b[key] for b in sub["buckets"]], (channel_id, key)
    assert by_id[channels[0]]["name"] == "one" and by_id[channels[0]]["status"] == "enabled"
    # Each channel's state now: the breaker's health state and its capacity use.
    assert by_id[channels[0]]["health"]["state"] == "enabled"
    assert by_id[channels[0]]["capacity"] == {"in_flight": 0, "max_running": None, "max_queued": None, "sent_today": 0,
                                              "daily_cap": None, "active_hours": None, "mode_fallback": False}
    if None in by_id:
        assert by_id[None]["health"] is None and by_id[None]["capacity"] is None
    # The gateway queue now: nothing seeded waits in it; three tasks queued at known times do.
    assert everyone["queue"] == {"depth": 0, "oldest_queued_at": None}
    now = now_ms()
    await insert_tasks(db, [task_row(admin.user["id"], submit_time=now - 5000 + i, status="NOT_START", queued_at=now - 4000 + i)
                            for i in range(3)])
    everyone = data(await admin.get(f"/api/admin/dashboard?range={range_name}&tz_offset={tz}"))
    assert everyone["queue"] == {"depth": 3, "oldest_queued_at": now - 4000}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_dashboard_access_and_bad_parameters(app, client, db):
    user = await login(client, db, "alice")
    fail(await user.get("/api/admin/dashboard"), 403)
    assert "range" in fail(await user.get("/api/console/dashboard?range=1y"), 400)
    fail(await user.get("/api/console/dashboard?tz_offset=99999"), 400)
    fail(await user.get("/api/console/dashboard?tz_offset=abc"), 400)
    async with new_client(app) as anonymous:
        fail(await anonymous.get("/api/console/dashboard"), 401)
    empty = data(await user.get("/api/console/dashboard?range=24h"))
    assert len(empty["buckets"]) == 24 and empty["totals"]["tasks"] == 0
    assert empty["totals"]["success_rate"] is None and empty["series"]["tasks"] == [0] * 24


def test_windows_align_to_local_hours_and_days():
    now = 1_764_000_000_000 + 37 * 60_000  # some minutes past an hour
    hourly = window("24h", now)
    assert hourly.count == 24 and hourly.start_ms % HOUR_MS == 0 and hourly.start_ms <= now < hourly.end_ms
    daily = window("7d", now, -480)  # UTC+8: days start at 16:00 UTC
    assert daily.count == 7 and (daily.start_ms + 8 * HOUR_MS) % DAY_MS == 0 and daily.end_ms > now
    assert window("30d", now, 330).start_ms % (30 * 60_000) == 0  # UTC-5:30 still lands on its midnight


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_admin_sees_one_users_figures(app, client, db):
    admin = await login(client, db, "root", role="admin")
    alice = await make_user(db, "alice")
    channel = await make_channel(db, "one")
    await seed(db, [alice["id"], admin.user["id"]], [channel], span_ms=7 * DAY_MS, count=120, seed_value=3)
    view = data(await admin.get(f"/api/admin/dashboard?range=7d&user_id={alice['id']}"))
    win = window("7d", view["now"], 0)
    check_view(view, win, expected(win, [t for t in await facts(db) if t["user_id"] == alice["id"]]))
    assert view["user"]["username"] == "alice" and view["scope"] == "user"
    fail(await admin.get("/api/admin/dashboard?user_id=999999"), 404)
    fail(await admin.get("/api/admin/dashboard?user_id=0"), 400)
