"""Lease SQL for the poller and the webhook deliverer: claim due rows, release them."""

from __future__ import annotations

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Task, WebhookDelivery


def _free(model, now: int):
    return or_(model.lease_until.is_(None), model.lease_until < now)


async def claim_due_tasks(session: AsyncSession, owner: str, now: int, lease_ms: int, limit: int,
                          skip_locked: bool) -> list[Task]:
    """Lease up to `limit` due, unfinished tasks to `owner`.

    The conditional UPDATE is what makes a claim exclusive on every database (a row already
    leased by a live owner does not match); SKIP LOCKED only spares PostgreSQL and MariaDB
    instances from queueing behind each other's row locks.
    """
    due = (
        select(Task.id)
        .where(Task.next_poll_at.is_not(None), Task.next_poll_at <= now, _free(Task, now))
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
        .where(Task.id.in_(ids), _free(Task, now))
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    claimed = await session.scalars(
        select(Task).where(Task.id.in_(ids), Task.lease_owner == owner, Task.lease_until == until)
    )
    return list(claimed)


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


async def claim_due_webhooks(session: AsyncSession, owner: str, now: int, lease_ms: int, limit: int,
                             skip_locked: bool) -> list[WebhookDelivery]:
    """Due deliveries whose task has no earlier delivery still pending: callbacks stay in order."""
    earlier = WebhookDelivery.__table__.alias("earlier")
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, _free(WebhookDelivery, now),
            ~select(earlier.c.id).where(
                and_(earlier.c.task_id == WebhookDelivery.task_id, earlier.c.status == "pending",
                     earlier.c.id < WebhookDelivery.id)
            ).exists(),
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    ids = list(await session.scalars(due))
    if not ids:
        return []
    until = now + lease_ms
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), _free(WebhookDelivery, now))
        .values(lease_owner=owner, lease_until=until).execution_options(synchronize_session=False)
    )
    rows = await session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_owner == owner,
                                      WebhookDelivery.lease_until == until).order_by(WebhookDelivery.id)
    )
    return list(rows)


async def add_delivery(session: AsyncSession, *, task_id: int, url: str, payload: dict, created_at: int) -> None:
    session.add(WebhookDelivery(task_id=task_id, url=url, payload=payload, status="pending", attempts=0,
                                next_attempt_at=created_at, last_error="", created_at=created_at))
