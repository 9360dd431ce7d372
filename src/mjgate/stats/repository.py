"""Every SQL statement of the dashboards: task counts, spend, success and time to finish per bucket.

All figures come from the tasks table, bucketed by submit time, so one range scan of a covering
index answers each query (migration 0005_dashboard adds them):

* `ix_tasks_stats` (submit_time, channel_id, user_id, action, mode, status, quota, refunded_at,
  finish_time) serves the admin view, which reads every task of the range;
* `ix_tasks_user_stats` (user_id, submit_time, ...) serves one user's view;
* `ix_tasks_status_submit` (status, submit_time, id) serves "running now" (a few unfinished rows);
* `ix_tasks_queued` (queued_at) serves the gateway queue's depth (migration 0006).

Spend is what the tasks submitted in a bucket cost after refunds: a task's quota unless it was
refunded (or released). That is exactly the sum of the task's own ledger entries, charge plus
refund, which tests compare against the ledger. Buckets are integer divisions of
(submit_time - window start) by the bucket width, which SQLAlchemy renders portably
(`/` on SQLite and PostgreSQL integers, FLOOR(x / y) on MariaDB).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Task, User
from mjgate.tasks.repository import TaskFilter

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RANGES = {"24h": (HOUR_MS, 24), "7d": (DAY_MS, 7), "30d": (DAY_MS, 30)}
UNFINISHED = ("NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS")
MAX_TZ_OFFSET_MIN = 14 * 60


@dataclass(frozen=True)
class Window:
    """`count` buckets of `bucket_ms` each from `start_ms`; the last one holds `now_ms`."""

    name: str
    start_ms: int
    bucket_ms: int
    count: int
    now_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.bucket_ms * self.count

    def starts(self) -> list[int]:
        return [self.start_ms + i * self.bucket_ms for i in range(self.count)]


def window(name: str, now_ms: int, tz_offset_min: int = 0) -> Window:
    """Buckets aligned to the viewer's local hours or days.

    tz_offset_min is JavaScript's Date.getTimezoneOffset(): minutes *behind* UTC (UTC+8 is -480).
    """
    bucket_ms, count = RANGES[name]
    shift = -tz_offset_min * 60_000  # local = UTC + shift
    current = (now_ms + shift) // bucket_ms * bucket_ms - shift
    return Window(name, current - (count - 1) * bucket_ms, bucket_ms, count, now_ms)


def _bucket(win: Window):
    return ((Task.submit_time - literal(win.start_ms, BigInteger)) // win.bucket_ms).label("bucket")


def _in_window(win: Window) -> list:
    return [Task.submit_time >= win.start_ms, Task.submit_time < win.end_ms]


def _counting(status: str):
    return func.sum(case((Task.status == status, 1), else_=0))


def _measures() -> list:
    succeeded = and_(Task.status == "SUCCESS", Task.finish_time.is_not(None))
    return [
        func.count().label("tasks"),
        _counting("SUCCESS").label("success"),
        _counting("FAILURE").label("failure"),
        _counting("CANCEL").label("cancel"),
        func.sum(case((Task.refunded_at.is_(None), Task.quota), else_=0)).label("spend"),
        # Time to finish (submit -> finish) of the tasks that succeeded, summed; averaged by the caller.
        func.sum(case((succeeded, Task.finish_time - Task.submit_time), else_=0)).label("latency_sum"),
        func.sum(case((succeeded, 1), else_=0)).label("latency_n"),
    ]


MEASURES = ("tasks", "success", "failure", "cancel", "spend", "latency_sum", "latency_n")


def _numbers(row) -> dict:
    # PostgreSQL's SUM of BIGINT is NUMERIC (a Decimal here); every figure is a whole number.
    return {name: int(getattr(row, name) or 0) for name in MEASURES}


async def breakdown(session: AsyncSession, win: Window, *, user_id: int | None = None) -> list[dict]:
    """The measures per (bucket, channel, action) for everyone, or per (bucket, action) for one user:
    one scan of the range answers the series, the per-channel series and the spend by action (the
    caller sums the groups it needs). A user's view leaves the channel out, so that its index
    (ix_tasks_user_stats, which has no channel_id) still covers the query."""
    bucket = _bucket(win)
    keys = [bucket, Task.action] if user_id is not None else [bucket, Task.channel_id, Task.action]
    query = select(*keys, *_measures()).where(*_in_window(win))
    if user_id is not None:
        query = query.where(Task.user_id == user_id)
    rows = (await session.execute(query.group_by(*keys))).all()
    return [{"bucket": int(r.bucket), "channel_id": r.channel_id if user_id is None else None, "action": r.action,
             **_numbers(r)} for r in rows]


def summed(rows: list[dict], *keys: str) -> list[dict]:
    """The breakdown's rows added up per distinct value of `keys` (e.g. ("action",))."""
    out: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        acc = out.get(key)
        if acc is None:
            out[key] = {**{k: row[k] for k in keys}, **{m: row[m] for m in MEASURES}}
        else:
            for m in MEASURES:
                acc[m] += row[m]
    return list(out.values())


async def top_users(session: AsyncSession, win: Window, *, limit: int = 10) -> tuple[list[dict], int]:
    """The users who spent most in the window (then by task count), and how many users were active."""
    spend = func.sum(case((Task.refunded_at.is_(None), Task.quota), else_=0))
    per_user = (select(Task.user_id, func.count().label("tasks"), spend.label("spend"),
                       _counting("SUCCESS").label("success"), _counting("FAILURE").label("failure"))
                .where(*_in_window(win)).group_by(Task.user_id).subquery("per_user"))
    # count(*) OVER () is computed before LIMIT: the number of active users from the same scan.
    query = (select(per_user, User.username, func.count().over().label("active"))
             .join(User, User.id == per_user.c.user_id, isouter=True)
             .order_by(per_user.c.spend.desc(), per_user.c.tasks.desc(), per_user.c.user_id).limit(limit))
    rows = (await session.execute(query)).all()
    active = int(rows[0].active) if rows else 0
    users = [{"user_id": r.user_id, "username": r.username or "", "tasks": int(r.tasks), "spend": int(r.spend or 0),
              "success": int(r.success or 0), "failure": int(r.failure or 0)} for r in rows]
    return users, active


async def running(session: AsyncSession, *, user_id: int | None = None, limit: int = 20) -> tuple[list[Task], dict]:
    """The newest unfinished tasks and how many there are in each unfinished status."""
    where = [Task.status.in_(UNFINISHED)]
    if user_id is not None:
        where.append(Task.user_id == user_id)
    counts = {status: 0 for status in UNFINISHED}
    for status, n in (await session.execute(select(Task.status, func.count()).where(*where).group_by(Task.status))).all():
        counts[status] = int(n)
    tasks = list(await session.scalars(
        select(Task).where(*where).order_by(Task.submit_time.desc(), Task.id.desc()).limit(limit)))
    return tasks, counts


async def queue_depth(session: AsyncSession) -> tuple[int, int | None]:
    """How many tasks wait in the gateway queue now, and since when the oldest has waited (epoch ms).

    A queued task is one with queued_at set (the scheduler clears it on dispatch, cancel or
    failure); ix_tasks_queued covers both figures without reading any other row.
    """
    row = (await session.execute(select(func.count(), func.min(Task.queued_at)).where(Task.queued_at.is_not(None)))).one()
    count, oldest = row
    return int(count or 0), (int(oldest) if oldest is not None else None)


EXPORT_COLUMNS = (Task.id, Task.mj_id, Task.submit_time, Task.finish_time, Task.user_id, Task.channel_id, Task.action,
                  Task.mode, Task.status, Task.progress, Task.quota, Task.refunded_at, Task.prompt, Task.fail_reason)


async def export_page(session: AsyncSession, flt: TaskFilter, after: tuple[int, int] | None, limit: int) -> list:
    """The next `limit` tasks of a filtered listing, newest first, after (submit_time, id) `after`.

    Keyset paging: each chunk starts where the last one ended, at the cost of one index seek,
    however deep into the export it is (an OFFSET would walk every row before it again).
    """
    # Only the exported columns: the wide JSON ones (buttons, properties, request) stay unread.
    query = select(*EXPORT_COLUMNS).where(*flt.where())
    if after is not None:
        submit_time, task_id = after
        # "<= submit_time" bounds the index range (an OR of the two conditions alone would not,
        # and every chunk would walk again from the newest row); the OR then drops the rows sent.
        query = query.where(Task.submit_time <= submit_time,
                            or_(Task.submit_time < submit_time, Task.id < task_id))
    query = query.order_by(Task.submit_time.desc(), Task.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


async def usernames_by_id(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    """id -> username for the given ids (one query; for listings that show who owns what)."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(sorted(user_ids))))
    return {user_id: name for user_id, name in rows.all()}


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)
