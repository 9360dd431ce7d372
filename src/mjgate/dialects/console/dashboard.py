"""The console's dashboards and the task log's CSV export.

* `GET /api/console/dashboard?range=24h|7d|30d` — the logged-in user's own figures;
* `GET /api/admin/dashboard?range=24h|7d|30d` — everyone's, with top users, spend by action,
  each channel's success rate and time to finish per bucket, its health state and capacity use
  now, and the gateway queue's depth now (`queue`);
* `GET /api/console/export/tasks.csv?<the task log's filters>` — the filtered view as CSV.

One aggregation endpoint per view; every figure comes from mjgate.stats.repository (index range
scans, see docs/benchmarks-dashboard.md). Buckets are the viewer's local hours (24h) or days
(7d, 30d): `tz_offset` is JavaScript's `Date.getTimezoneOffset()`. Answers use new-api's envelope.

Other parts of the gateway may add sections to the admin view without touching this module: they
register
`app.state.dashboard_sections[name] = async fn(app, window) -> dict | None`, and the view carries
`name` only when such a provider exists and returns something.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from mjgate.accounts.users import public_user
from mjgate.api.deps import AdminUser as Admin
from mjgate.api.routing import dialect_route
from mjgate.dialects.console.csrf import ConsoleUser, ok
from mjgate.dialects.newapi.render import error_reply, task_item
from mjgate.dialects.newapi.routes import _filter as task_filter
from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.channels import admin as channel_service
from mjgate.clock import now_ms
from mjgate.errors import NotFound
from mjgate.stats import repository as stats

router = APIRouter(tags=["console dashboards"], route_class=dialect_route(error_reply))

Range = Annotated[Literal["24h", "7d", "30d"], Query(description="The period: 24 hourly or 7 / 30 daily buckets")]
TzOffset = Annotated[int, Query(ge=-stats.MAX_TZ_OFFSET_MIN, le=stats.MAX_TZ_OFFSET_MIN,
                                description="Minutes behind UTC, as Date.getTimezoneOffset() gives them")]
RUNNING_SHOWN = 20
TOP_USERS = 10
# What each channel holds now, as the admin API's channel answer says it (capacity use).
CAPACITY_FIELDS = ("in_flight", "max_running", "max_queued", "sent_today", "daily_cap", "active_hours", "mode_fallback")
EXPORT_CHUNK = 500
MAX_EXPORT_ROWS = 100_000
EXPORT_COLUMNS = ("mj_id", "submitted_utc", "finished_utc", "duration_s", "user_id", "username", "channel_id",
                  "action", "mode", "status", "progress", "quota", "usd", "refunded", "prompt", "fail_reason")


# ------------------------------------------------------------------ shaping


def _rate(success: int, finished: int) -> float | None:
    return round(success / finished, 4) if finished else None


def _latency(total: int, n: int) -> int | None:
    return total // n if n else None


def _totals(rows: list[dict]) -> dict:
    sums = {name: sum(r[name] for r in rows) for name in stats.MEASURES}
    finished = sums["success"] + sums["failure"] + sums["cancel"]
    return {"tasks": sums["tasks"], "success": sums["success"], "failure": sums["failure"], "cancel": sums["cancel"],
            "finished": finished, "success_rate": _rate(sums["success"], finished), "spend": sums["spend"],
            "latency_ms": _latency(sums["latency_sum"], sums["latency_n"])}


def _series(win: stats.Window, rows: list[dict]) -> dict:
    """Arrays aligned with the window's buckets (0 / null where nothing was submitted)."""
    per_bucket: dict[int, list[dict]] = {}
    for row in rows:
        per_bucket.setdefault(row["bucket"], []).append(row)
    out: dict[str, list] = {k: [] for k in ("tasks", "success", "failure", "cancel", "spend", "success_rate",
                                            "latency_ms")}
    for index in range(win.count):
        t = _totals(per_bucket.get(index, []))
        for key in out:
            out[key].append(t[key])
    return out


def _window_json(win: stats.Window, tz_offset: int) -> dict:
    return {"range": win.name, "from": win.start_ms, "to": win.end_ms, "now": win.now_ms,
            "bucket_ms": win.bucket_ms, "bucket": "hour" if win.bucket_ms == stats.HOUR_MS else "day",
            "tz_offset": tz_offset, "buckets": win.starts()}


def _actions(rows: list[dict]) -> list[dict]:
    out = []
    for row in sorted(rows, key=lambda r: (-r["spend"], -r["tasks"], r["action"])):
        finished = row["success"] + row["failure"] + row["cancel"]
        out.append({"action": row["action"], "tasks": row["tasks"], "spend": row["spend"], "success": row["success"],
                    "failure": row["failure"], "success_rate": _rate(row["success"], finished)})
    return out


async def _running(request: Request, session, *, user_id: int | None, admin: bool) -> dict:
    tasks, counts = await stats.running(session, user_id=user_id, limit=RUNNING_SHOWN)
    names = await stats.usernames_by_id(session, {t.user_id for t in tasks})
    return {"total": sum(counts.values()), "by_status": counts,
            "items": [task_item(t, request, admin=admin, username=names.get(t.user_id, "")) for t in tasks]}


# ------------------------------------------------------------------ the two views


async def _one_user(request: Request, user_id: int, win: stats.Window, tz_offset: int, *, admin: bool) -> dict:
    async with request.app.state.db.read() as session:
        user = await stats.get_user(session, user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        rows = await stats.breakdown(session, win, user_id=user_id)
        actions = stats.summed(rows, "action")
        running = await _running(request, session, user_id=user_id, admin=admin)
    return {**_window_json(win, tz_offset), "scope": "user", "quota_per_usd": QUOTA_PER_USD, "balance": user.quota,
            "user": public_user(user), "totals": _totals(rows), "series": _series(win, rows),
            "by_action": _actions(actions), "running": running}


@router.get("/api/console/dashboard", summary="The logged-in user's spend, task counts, success rate, running tasks")
async def user_dashboard(request: Request, user: ConsoleUser, range: Range = "7d", tz_offset: TzOffset = 0):
    win = stats.window(range, now_ms(), tz_offset)
    return ok(await _one_user(request, user.id, win, tz_offset, admin=False))


@router.get("/api/admin/dashboard", summary="Everyone's figures: per channel, top users, spend by action "
                                          "(or one user's, with user_id)")
async def admin_dashboard(request: Request, admin: Admin, range: Range = "7d", tz_offset: TzOffset = 0,
                          user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None):
    win = stats.window(range, now_ms(), tz_offset)
    if user_id is not None:
        return ok(await _one_user(request, user_id, win, tz_offset, admin=True))
    async with request.app.state.db.read() as session:
        rows = await stats.breakdown(session, win)
        actions = stats.summed(rows, "action")
        top, active_users = await stats.top_users(session, win, limit=TOP_USERS)
        running = await _running(request, session, user_id=None, admin=True)
        channels = await channel_service.list_channels(session)
        depth, oldest = await stats.queue_depth(session)
    per_channel: dict[int | None, list[dict]] = {}
    for row in stats.summed(rows, "bucket", "channel_id"):
        per_channel.setdefault(row["channel_id"], []).append(row)
    channel_views = []
    for channel in channels:
        mine = per_channel.pop(channel.id, [])
        public = channel_service.public_channel(channel)
        channel_views.append({"id": channel.id, "name": channel.name, "base_url": channel.base_url,
                              "status": channel.status, "health": public["health"],
                              "capacity": {name: public[name] for name in CAPACITY_FIELDS},
                              "totals": _totals(mine), "series": _series(win, mine)})
    # Tasks refused before any channel took them, and tasks of channels deleted since.
    for channel_id, mine in sorted(per_channel.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)):
        channel_views.append({"id": channel_id, "name": "", "base_url": "", "status": "none" if channel_id is None
                              else "deleted", "health": None, "capacity": None, "totals": _totals(mine),
                              "series": _series(win, mine)})
    data = {**_window_json(win, tz_offset), "scope": "all", "quota_per_usd": QUOTA_PER_USD,
            "totals": _totals(rows), "series": _series(win, rows), "by_action": _actions(actions),
            "top_users": top, "active_users": active_users, "channels": channel_views, "running": running,
            "queue": {"depth": depth, "oldest_queued_at": oldest}}
    for name, provider in (getattr(request.app.state, "dashboard_sections", None) or {}).items():
        section = await provider(request.app, win)
        if section is not None:
            data[name] = section
    return ok(data)


# ------------------------------------------------------------------ CSV export


def _iso(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value) -> str:
    """A text cell that a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_row(task, username: str) -> list:  # a row of stats.EXPORT_COLUMNS
    duration = ""
    if task.finish_time and task.submit_time:
        duration = max(0, (task.finish_time - task.submit_time) // 1000)
    return [task.mj_id, _iso(task.submit_time), _iso(task.finish_time), duration, task.user_id, _cell(username),
            task.channel_id or "", task.action, task.mode, task.status, task.progress, task.quota,
            f"{task.quota / QUOTA_PER_USD:.4f}", "yes" if task.refunded_at is not None else "no",
            _cell(task.prompt), _cell(task.fail_reason)]


@router.get("/api/console/export/tasks.csv", summary="The task log's filtered view as CSV (newest first)",
            response_class=StreamingResponse)
async def export_tasks(request: Request, user: ConsoleUser):
    # Same filters as GET /api/mj/self (users) and GET /api/mj/ (admins: every user's tasks).
    flt = task_filter(request, user_id=None if user.is_admin else user.id, allow_channel=user.is_admin)
    db = request.app.state.db

    async def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        yield "\ufeff" + buffer.getvalue()  # the BOM makes spreadsheet programs read UTF-8 (Chinese prompts)
        after: tuple[int, int] | None = None
        sent = 0
        while sent < MAX_EXPORT_ROWS:
            # A short read session per chunk: a slow download holds no connection between chunks.
            async with db.read() as session:
                tasks = await stats.export_page(session, flt, after, min(EXPORT_CHUNK, MAX_EXPORT_ROWS - sent))
                names = await stats.usernames_by_id(session, {t.user_id for t in tasks})
            if not tasks:
                return
            buffer.seek(0)
            buffer.truncate()
            for task in tasks:
                writer.writerow(_csv_row(task, names.get(task.user_id, "")))
            yield buffer.getvalue()
            sent += len(tasks)
            after = (tasks[-1].submit_time, tasks[-1].id)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="mjgate-tasks-{stamp}.csv"', "Cache-Control": "no-store"})

