"""Task SQL: every query on the tasks table lives here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Task
from mjgate.models.task import TERMINAL_STATUSES

# Columns a new task starts with unless the caller says otherwise.
_NEW_TASK = dict(status="NOT_START", progress="0%", description="", image_url="", video_url="", video_urls=[],
                 buttons=[], fail_reason="", upstream_missing=0, poll_attempts=0, stored_image="")


@dataclass(frozen=True)
class TaskFilter:
    """Listing filters; None means "no filter". Times are epoch ms on submit_time."""

    user_id: int | None = None
    channel_id: int | None = None
    mj_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None

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
        return clauses


def list_query(flt: TaskFilter, offset: int, limit: int):
    """One page, newest first.

    The page's ids come from the index alone ((submit_time, id) descending matches the
    composite indexes, which all carry id), then only those rows are read. Skipping 50,000
    rows therefore walks index entries, not table rows (PostgreSQL 112 -> 3.7 ms, MariaDB
    2.8 s -> 8 ms at a 50,000 offset; docs/query-plans.md), and PostgreSQL can no longer
    prefer a filtered walk of the time index for a long-quiet channel.
    """
    order = (Task.submit_time.desc(), Task.id.desc())
    page = select(Task.id).where(*flt.where()).order_by(*order).offset(offset).limit(limit).subquery("page")
    return select(Task).join(page, Task.id == page.c.id).order_by(*order)


def count_query(flt: TaskFilter):
    return select(func.count()).select_from(Task).where(*flt.where())


async def list_tasks(session: AsyncSession, flt: TaskFilter, offset: int, limit: int) -> tuple[list[Task], int]:
    total = int(await session.scalar(count_query(flt)))
    if offset >= total:
        return [], total
    rows = await session.scalars(list_query(flt, offset, limit))
    return list(rows), total


async def get_by_mj_id(session: AsyncSession, mj_id: str) -> Task | None:
    return await session.scalar(select(Task).where(Task.mj_id == mj_id))


async def get_many_by_mj_ids(session: AsyncSession, mj_ids: list[str], user_id: int | None = None) -> list[Task]:
    if not mj_ids:
        return []
    query = select(Task).where(Task.mj_id.in_(mj_ids))
    if user_id is not None:
        query = query.where(Task.user_id == user_id)
    return list(await session.scalars(query))


async def get_by_trace_id(session: AsyncSession, trace_id: str, user_id: int) -> Task | None:
    """The caller's newest task created by the request with this trace id (AceData's retrieve by trace_id)."""
    query = (select(Task).where(Task.trace_id == trace_id, Task.user_id == user_id)
             .order_by(Task.submit_time.desc(), Task.id.desc()).limit(1))
    return await session.scalar(query)


async def get_many_by_trace_ids(session: AsyncSession, trace_ids: list[str], user_id: int) -> list[Task]:
    if not trace_ids:
        return []
    query = select(Task).where(Task.trace_id.in_(trace_ids), Task.user_id == user_id)
    return list(await session.scalars(query))


async def get(session: AsyncSession, task_id: int) -> Task | None:
    return await session.get(Task, task_id)


async def insert(session: AsyncSession, **fields) -> Task:
    now = fields["submit_time"]
    task = Task(**{**_NEW_TASK, "created_at": now, "updated_at": now, **fields})
    session.add(task)
    await session.flush()
    return task


def _write(task: Task, values: dict) -> None:
    for key, value in values.items():
        setattr(task, key, value)


async def record_submitted(session: AsyncSession, task: Task, values: dict) -> None:
    """The upstream's answer to the submit of a task that has none yet."""
    await session.execute(update(Task).where(Task.id == task.id).values(**values))
    _write(task, values)


async def record_refused(session: AsyncSession, task: Task, values: dict) -> None:
    """A submit refused before any upstream took it (the first answer wins: `code` is written once)."""
    await session.execute(update(Task).where(Task.id == task.id, Task.code.is_(None)).values(**values))
    _write(task, values)


async def compare_and_set(session: AsyncSession, task: Task, values: dict, *, lease_owner: str | None = None) -> bool:
    """Write `values` if the row is still as it was read (same updated_at, not terminal, the lease held)."""
    query = (update(Task)
             .where(Task.id == task.id, Task.updated_at == task.updated_at, Task.status.not_in(TERMINAL_STATUSES))
             .values(**values))
    if lease_owner is not None:
        query = query.where(Task.lease_owner == lease_owner)
    return (await session.execute(query)).rowcount == 1


async def adopt(session: AsyncSession, task: Task, upstream_id: str) -> bool:
    """Give a task whose submit answer was lost the upstream id its channel reports."""
    result = await session.execute(update(Task).where(Task.id == task.id, Task.upstream_id.is_(None),
                                                      Task.channel_id == task.channel_id)
                                   .values(upstream_id=upstream_id))
    if result.rowcount != 1:
        return False
    task.upstream_id = upstream_id
    return True


async def set_stored_image(session: AsyncSession, task_id: int, key: str) -> None:
    """Bookkeeping only: where the gateway keeps its copy; the task's state does not change."""
    await session.execute(update(Task).where(Task.id == task_id).values(stored_image=key))


async def make_due(session: AsyncSession, task_id: int, now: int) -> None:
    """Poll an unfinished task now, clearing a stale lease and the count of missed polls."""
    await session.execute(update(Task).where(Task.id == task_id)
                          .values(next_poll_at=now, lease_owner=None, lease_until=None, upstream_missing=0))
