"""Idempotency-key SQL (the rules are in tasks/idempotency.py)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from mjgate.models import IdempotencyKey

KEYS = IdempotencyKey.__table__


async def find(conn, user_id: int, key: str):
    """(request_hash, task_id, created_at) of the user's key, or None."""
    query = select(KEYS.c.request_hash, KEYS.c.task_id, KEYS.c.created_at).where(
        KEYS.c.user_id == user_id, KEYS.c.key == key)
    return (await conn.execute(query)).first()


async def forget_expired(conn, user_id: int, key: str, before_ms: int) -> None:
    """An expired key may be used again: its old row goes first, in the claiming transaction."""
    await conn.execute(delete(KEYS).where(KEYS.c.user_id == user_id, KEYS.c.key == key,
                                          KEYS.c.created_at < before_ms))


async def claim(conn, user_id: int, key: str, request_hash: str, task_id: int, now: int) -> None:
    """Raises IntegrityError when another request holds the key (the unique (user_id, key))."""
    await conn.execute(insert(KEYS).values(user_id=user_id, key=key, request_hash=request_hash, task_id=task_id,
                                           created_at=now))


async def release_task(conn, task_id: int) -> None:
    await conn.execute(delete(KEYS).where(KEYS.c.task_id == task_id))

