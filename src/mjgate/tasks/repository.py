"""Task SQL: every query on the tasks table lives here.

Statements are SQLAlchemy Core, built once where they can be, and run on whatever the caller holds:
a plain connection on the hot paths (Database.reading / transaction) or an ORM session elsewhere.
Rows come back as TaskRecord objects (tasks/record.py), never as ORM instances.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, insert as sql_insert, select, update

from mjgate.models import Task, User
from mjgate.models.task import TERMINAL_STATUSES
from mjgate.tasks.record import COLUMN_NAMES, COLUMNS, TaskRecord, from_row

TASKS = Task.__table__
# Columns a new task starts with unless the caller says otherwise.
_NEW_TASK = dict(status="NOT_START", progress="0%", description="", image_url="", video_url="", video_urls=[],
                 buttons=[], fail_reason="", upstream_missing=0, poll_attempts=0, stored_image="", code=None,
                 upstream_id=None, start_time=None, finish_time=None, refunded_at=None, lease_owner=None,
                 lease_until=None, queued_at=None, dispatched_at=None, holds_slot=False, channel_slot=False,
                 upstream_request=None, price_rule=None)


@dataclass(frozen=True)
class TaskFilter:
    """Listing filters; None means "no filter". Times are epoch ms on submit_time."""

    user_id: int | None = None
    channel_id: int | None = None
    mj_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    statuses: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    mode: str | None = None
    prompt: str | None = None  # case-insensitive substring of the prompt
    username: str | None = None  # the owner's exact username

    def where(self) -> list:
        clauses = []
        if self.user_id is not None:
            clauses.append(Task.user_id == self.user_id)
        if self.channel_id is not None:
            clauses.append(Task.channel_id == self.channel_id)
        if self.mj_id is not None:
            clauses.append(Task.mj_id == self.mj_id)
        if self.start_ms is not None:
            clauses.append(Task.submit_time >= self.start_ms)
        if self.end_ms is not None:
            clauses.append(Task.submit_time <= self.end_ms)
        if self.statuses:
            clauses.append(Task.status.in_(self.statuses))
        if self.actions:
            clauses.append(Task.action.in_(self.actions))
        if self.mode is not None:
            clauses.append(Task.mode == self.mode)
        if self.prompt:
            # No index can serve a substring: the other filters (owner, time) bound the rows scanned.
            clauses.append(Task.prompt.icontains(self.prompt, autoescape=True))
        if self.username is not None:
            clauses.append(Task.user_id == select(User.id).where(User.username == self.username).scalar_subquery())
        return clauses


def list_query(flt: TaskFilter, offset: int, limit: int):
    """One page, newest first.

    The page's ids come from the index alone ((submit_time, id) descending matches the
    composite indexes, which all carry id), then only those rows are read. Skipping 50,000
    rows therefore walks index entries, not table rows (PostgreSQL 112 -> 3.7 ms, MariaDB
    2.8 s -> 8 ms at a 50,000 offset; docs/query-plans.md), and PostgreSQL can no longer
    prefer a filtered walk of the time index for a long-quiet channel.
    """
    return _page_query(flt.where(), offset, limit)


def _page_query(where: list, offset, limit):
    order = (TASKS.c.submit_time.desc(), TASKS.c.id.desc())
    page = select(TASKS.c.id).where(*where).order_by(*order).offset(offset).limit(limit).subquery("page")
    return select(*COLUMNS).join(page, TASKS.c.id == page.c.id).order_by(*order)


_USER_TASK_COUNT = select(User.task_count).where(User.id == bindparam("user_id"))
# A user's history page unfiltered (/api/mj/self, the console's task log), the common case: built
# once, with the user's task count in each row, so that a page is one statement, not two.
_PAGE_OF_USER = _page_query([TASKS.c.user_id == bindparam("user_id")], bindparam("offset"), bindparam("limit")) \
    .add_columns(_USER_TASK_COUNT.scalar_subquery().label("total_"))


def count_query(flt: TaskFilter):
    return select(func.count()).select_from(Task).where(*flt.where())


def _whole_history(flt: TaskFilter) -> bool:
    return flt.user_id is not None and flt == TaskFilter(user_id=flt.user_id)


async def count(conn, flt: TaskFilter) -> int:
    """How many tasks match: a user's whole history from the count kept on the user, else counted."""
    if _whole_history(flt):
        return int(await conn.scalar(_USER_TASK_COUNT, {"user_id": flt.user_id}) or 0)
    return int(await conn.scalar(count_query(flt)))


async def recount_user_tasks(conn) -> None:
    """Set every users.task_count from the tasks table (after rows were inserted or removed in bulk)."""
    await conn.execute(update(User).values(
        task_count=select(func.count()).select_from(Task).where(Task.user_id == User.id).scalar_subquery()))


async def list_tasks(conn, flt: TaskFilter, offset: int, limit: int) -> tuple[list[TaskRecord], int]:
    if _whole_history(flt):
        rows = list(await conn.execute(_PAGE_OF_USER, {"user_id": flt.user_id, "offset": offset, "limit": limit}))
        if rows:
            return [from_row(row[:-1]) for row in rows], int(rows[0][-1] or 0)
        return [], await count(conn, flt)  # past the last page: the total alone
    total = await count(conn, flt)
    if offset >= total:
        return [], total
    return await _records(conn, list_query(flt, offset, limit)), total


async def _records(conn, query, params: dict | None = None) -> list[TaskRecord]:
    return [from_row(row) for row in await conn.execute(query, params or {})]


async def _one(conn, query, params: dict) -> TaskRecord | None:
    row = (await conn.execute(query, params)).first()
    return from_row(row) if row is not None else None


_BY_ID = select(*COLUMNS).where(Task.id == bindparam("id"))
_BY_MJ_ID = select(*COLUMNS).where(Task.mj_id == bindparam("mj_id"))
_MANY_OF_USER = select(*COLUMNS).where(Task.mj_id.in_(bindparam("ids", expanding=True)),
                                       Task.user_id == bindparam("user_id"))
_MANY = select(*COLUMNS).where(Task.mj_id.in_(bindparam("ids", expanding=True)))


async def get(conn, task_id: int) -> TaskRecord | None:
    return await _one(conn, _BY_ID, {"id": task_id})


async def get_by_mj_id(conn, mj_id: str) -> TaskRecord | None:
    return await _one(conn, _BY_MJ_ID, {"mj_id": mj_id})


async def get_many_by_mj_ids(conn, mj_ids: list[str], user_id: int | None = None) -> list[TaskRecord]:
    if not mj_ids:
        return []
    if user_id is None:
        return await _records(conn, _MANY, {"ids": mj_ids})
    return await _records(conn, _MANY_OF_USER, {"ids": mj_ids, "user_id": user_id})


async def get_by_trace_id(conn, trace_id: str, user_id: int) -> TaskRecord | None:
    """The caller's newest task created by the request with this trace id (AceData's retrieve by trace_id)."""
    query = (select(*COLUMNS).where(Task.trace_id == trace_id, Task.user_id == user_id)
             .order_by(Task.submit_time.desc(), Task.id.desc()).limit(1))
    return await _one(conn, query, {})


async def get_many_by_trace_ids(conn, trace_ids: list[str], user_id: int) -> list[TaskRecord]:
    if not trace_ids:
        return []
    return await _records(conn, select(*COLUMNS).where(Task.trace_id.in_(trace_ids), Task.user_id == user_id))


_INSERT = sql_insert(TASKS)


async def insert(conn, **fields) -> TaskRecord:
    now = fields["submit_time"]
    values = {**_NEW_TASK, "created_at": now, "updated_at": now, "parent_id": None, "next_poll_at": None,
              **fields}
    result = await conn.execute(_INSERT, values)
    return _record({**values, "id": result.inserted_primary_key[0]})


def _record(values: dict) -> TaskRecord:
    return TaskRecord(*(values.get(name) for name in COLUMN_NAMES))


def _write(task, values: dict) -> None:
    for key, value in values.items():
        setattr(task, key, value)


# Updates of one task by id, built once. The SET clause comes from the keys of the parameters
# (SQLAlchemy compiles and caches one statement per set of keys), so no statement is built per call;
# building one costs more CPU than the database spends running it. WHERE parameters end in "_"
# because column names are reserved for SET. The status guard is three plain comparisons, not
# NOT IN: an IN list is an "expanding" parameter that SQLAlchemy renders again on every execution
# (2.7% of a submit's samples).
_UNFINISHED = and_(*(TASKS.c.status != status for status in sorted(TERMINAL_STATUSES)))
_SET_IF_NOT_SUBMITTED = update(TASKS).where(TASKS.c.id == bindparam("id_"), TASKS.c.upstream_id.is_(None), _UNFINISHED)
_SET_IF_NO_CODE = update(TASKS).where(TASKS.c.id == bindparam("id_"), TASKS.c.code.is_(None))
_SET_IF_UNCHANGED = update(TASKS).where(TASKS.c.id == bindparam("id_"), TASKS.c.updated_at == bindparam("updated_at_"),
                                        _UNFINISHED)
_SET_IF_UNCHANGED_AND_LEASED = _SET_IF_UNCHANGED.where(TASKS.c.lease_owner == bindparam("lease_owner_"))
_QUIET_POLLS = (update(TASKS)
                .where(TASKS.c.id.in_(bindparam("ids_", expanding=True)), TASKS.c.lease_owner == bindparam("lease_owner_"),
                       _UNFINISHED)
                .values(poll_attempts=TASKS.c.poll_attempts + 1, upstream_missing=0, lease_owner=None, lease_until=None))


async def record_submitted(conn, task, values: dict) -> bool:
    """The upstream's answer to the submit of a task that has none yet. False when the upstream's
    own callback got there first (the task was adopted, and may be further along): then only the
    submit code is kept, once."""
    result = await conn.execute(_SET_IF_NOT_SUBMITTED, {**values, "id_": task.id})
    if result.rowcount != 1:
        if "code" in values:
            await conn.execute(_SET_IF_NO_CODE, {"code": values["code"], "id_": task.id})
        return False
    _write(task, values)
    return True


async def record_refused(conn, task, values: dict) -> None:
    """A submit refused before any upstream took it (the first answer wins: `code` is written once)."""
    await conn.execute(_SET_IF_NO_CODE, {**values, "id_": task.id})
    _write(task, values)


async def compare_and_set(conn, task, values: dict, *, lease_owner: str | None = None) -> bool:
    """Write `values` if the row is still as it was read (same updated_at, not terminal, the lease held)."""
    params = {**values, "id_": task.id, "updated_at_": task.updated_at}
    if lease_owner is None:
        return (await conn.execute(_SET_IF_UNCHANGED, params)).rowcount == 1
    return (await conn.execute(_SET_IF_UNCHANGED_AND_LEASED, {**params, "lease_owner_": lease_owner})).rowcount == 1


async def record_quiet_polls(conn, ids: list[int], *, lease_owner: str, updated_at: int, next_poll_at: int) -> None:
    """Polls that found nothing new: count them, schedule the next, release the lease."""
    await conn.execute(_QUIET_POLLS, {"ids_": ids, "lease_owner_": lease_owner, "updated_at": updated_at,
                                      "next_poll_at": next_poll_at})


async def adopt(conn, task, upstream_id: str, channel_id: int) -> bool:
    """Give a task with no upstream id yet (its submit answer lost, or not yet recorded) the job its
    channel reports."""
    result = await conn.execute(update(Task).where(Task.id == task.id, Task.upstream_id.is_(None),
                                                   (Task.channel_id.is_(None)) | (Task.channel_id == channel_id))
                                .values(upstream_id=upstream_id, channel_id=channel_id))
    if result.rowcount != 1:
        return False
    task.upstream_id, task.channel_id = upstream_id, channel_id
    return True


async def set_stored_image(conn, task_id: int, key: str) -> None:
    """Bookkeeping only: where the gateway keeps its copy; the task's state does not change."""
    await conn.execute(update(Task).where(Task.id == task_id).values(stored_image=key))


async def make_due(conn, task_id: int, now: int) -> None:
    """Poll an unfinished task now, clearing a stale lease and the count of missed polls."""
    await conn.execute(update(Task).where(Task.id == task_id)
                       .values(next_poll_at=now, lease_owner=None, lease_until=None, upstream_missing=0))
