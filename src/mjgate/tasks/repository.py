"""Task SQL: every query on the tasks table lives here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Task, User


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
