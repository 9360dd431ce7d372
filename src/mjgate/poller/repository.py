"""The poller's task SQL: lease due tasks, release or postpone them, count missed polls."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Task
from mjgate.tasks.record import COLUMNS, TaskRecord, from_row


def free(model, now: int):
    """Rows no live owner holds a lease on."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


async def claim_due_tasks(session: AsyncSession, owner: str, now: int, lease_ms: int, limit: int,
                          skip_locked: bool) -> list[TaskRecord]:
    """Lease up to `limit` due, unfinished tasks to `owner`.

    The conditional UPDATE is what makes a claim exclusive on every database (a row already
    leased by a live owner does not match); SKIP LOCKED only spares PostgreSQL and MariaDB
    instances from queueing behind each other's row locks.
    """
    due = (
        select(Task.id)
        .where(Task.next_poll_at.is_not(None), Task.next_poll_at <= now, free(Task, now))
        .order_by(Task.next_poll_at)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    ids = list(await session.scalars(due))
    if not ids:
        return []
    until = now + lease_ms
    await session.execute(
        update(Task)
        .where(Task.id.in_(ids), free(Task, now))
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    rows = await session.execute(
        select(*COLUMNS).where(Task.id.in_(ids), Task.lease_owner == owner, Task.lease_until == until)
    )
    return [from_row(row) for row in rows]


async def release_tasks(session: AsyncSession, owner: str, ids: list[int]) -> None:
    if ids:
        await session.execute(
            update(Task).where(Task.id.in_(ids), Task.lease_owner == owner)
            .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False)
        )


async def postpone(session: AsyncSession, owner: str, ids: list[int], next_poll_at: int) -> None:
    """Back off tasks whose channel failed this cycle (and release them)."""
    if ids:
        await session.execute(
            update(Task).where(Task.id.in_(ids), Task.lease_owner == owner)
            .values(next_poll_at=next_poll_at, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


async def mark_missing(session: AsyncSession, task: Task, owner: str, next_poll_at: int) -> int:
    """Count one more poll the upstream did not return the task; returns the new count."""
    count = task.upstream_missing + 1
    await session.execute(
        update(Task).where(Task.id == task.id, Task.lease_owner == owner)
        .values(upstream_missing=count, next_poll_at=next_poll_at, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return count
