"""Channel SQL: every query on the channels table lives here."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import Channel


async def get(session: AsyncSession, channel_id: int) -> Channel | None:
    return await session.get(Channel, channel_id)


async def add(session: AsyncSession, channel: Channel) -> Channel:
    session.add(channel)
    await session.flush()
    return channel


async def id_named(session: AsyncSession, name: str) -> int | None:
    """The id of the channel called `name` (case-insensitively), if any."""
    return await session.scalar(select(Channel.id).where(func.lower(Channel.name) == name.strip().lower()).limit(1))


async def all_channels(session: AsyncSession) -> list[Channel]:
    """Every channel, highest priority first (listings and the in-memory reference data)."""
    return list(await session.scalars(select(Channel).order_by(Channel.priority.desc(), Channel.id)))


async def by_ids(session: AsyncSession, ids: set) -> list[Channel]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return []
    return list(await session.scalars(select(Channel).where(Channel.id.in_(ids))))


async def add_health(session: AsyncSession, channel_id: int, *, ok: int, failed: int, streak: int,
                     streak_continues: bool, last_ok_at: int | None, last_error_at: int | None,
                     last_error: str) -> None:
    """Add counted upstream answers to a channel's health: counters move in SQL, never read first.

    `streak` consecutive failures end the batch; `streak_continues` when the batch had no success,
    so they extend the stored streak instead of replacing it.
    """
    values: dict = {"success_count": Channel.success_count + ok, "failure_count": Channel.failure_count + failed,
                    "consecutive_failures": Channel.consecutive_failures + streak if streak_continues else streak}
    if last_ok_at:
        values["last_ok_at"] = last_ok_at
    if last_error_at:
        values.update(last_error_at=last_error_at, last_error=last_error[:1000])
    await session.execute(update(Channel).where(Channel.id == channel_id).values(**values))
