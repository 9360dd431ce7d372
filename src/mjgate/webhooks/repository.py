"""Webhook outbox SQL: stage deliveries, lease the due ones in order, record each attempt."""

from __future__ import annotations

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Task, WebhookDelivery
from mjgate.poller.repository import free


_INSERT = insert(WebhookDelivery.__table__)


async def add_delivery(conn, *, task_id: int, url: str, payload: dict, created_at: int) -> None:
    await conn.execute(_INSERT, dict(task_id=task_id, url=url, payload=payload, status="pending", attempts=0,
                                     next_attempt_at=created_at, last_error="", created_at=created_at,
                                     lease_owner=None, lease_until=None, delivered_at=None))


async def claim_due_webhooks(session: AsyncSession, owner: str, now: int, lease_ms: int, limit: int,
                             skip_locked: bool) -> list[WebhookDelivery]:
    """Due deliveries whose task has no earlier delivery still pending: callbacks stay in order."""
    earlier = WebhookDelivery.__table__.alias("earlier")
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, free(WebhookDelivery, now),
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
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), free(WebhookDelivery, now))
        .values(lease_owner=owner, lease_until=until).execution_options(synchronize_session=False)
    )
    rows = await session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_owner == owner,
                                      WebhookDelivery.lease_until == until).order_by(WebhookDelivery.id)
    )
    return list(rows)


async def task_owners(session: AsyncSession, task_ids: set[int]) -> dict[int, int]:
    """task id -> the id of the user whose callbacks they are."""
    if not task_ids:
        return {}
    rows = await session.execute(select(Task.id, Task.user_id).where(Task.id.in_(task_ids)))
    return {row.id: row.user_id for row in rows}


async def finish(session: AsyncSession, delivery_id: int, owner: str, values: dict) -> None:
    """Record an attempt (and release the lease) if `owner` still holds it."""
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values)
    )


async def release(session: AsyncSession, ids: list[int], owner: str) -> None:
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_owner == owner)
        .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False)
    )
