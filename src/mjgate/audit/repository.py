"""Audit log SQL."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.clock import now_ms
from mjgate.models import AuditEntry


async def add(conn, *, actor_user_id: int, action: str, target: str, detail: dict) -> None:
    await conn.execute(insert(AuditEntry.__table__), dict(actor_user_id=actor_user_id, action=action, target=target,
                                                          detail=detail, created_at=now_ms()))


async def page(session: AsyncSession, *, offset: int, limit: int, target: str | None = None
               ) -> tuple[list[AuditEntry], int]:
    """Newest first, optionally for one target, and how many there are."""
    query = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if target:
        query, count = query.where(AuditEntry.target == target), count.where(AuditEntry.target == target)
    total = int(await session.scalar(count))
    rows = await session.scalars(query.order_by(AuditEntry.id.desc()).offset(offset).limit(limit))
    return list(rows), total
