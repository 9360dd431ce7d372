"""Account SQL: every query on users and API keys lives here."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.clock import now_ms
from mjgate.models import ApiKey, User


async def add(session: AsyncSession, row: User | ApiKey) -> None:
    """Insert a new user or key now (raises IntegrityError on a taken name)."""
    session.add(row)
    await session.flush()


async def user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def reloaded(session: AsyncSession, row: User | ApiKey) -> User | ApiKey:
    """The row as the database has it now (after an UPDATE that bypassed the object)."""
    await session.refresh(row)
    return row


async def user_by_name(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def user_by_token_hash(session: AsyncSession, token_hash: str) -> User | None:
    return await session.scalar(select(User).where(User.access_token_hash == token_hash))


async def users(session: AsyncSession, *, offset: int, limit: int, search: str | None = None) -> tuple[list[User], int]:
    """One page of users (oldest first) and how many match, optionally by a username substring."""
    query = select(User)
    if search:
        query = query.where(User.username.contains(search, autoescape=True))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(User.id).offset(offset).limit(limit))
    return list(rows), int(total or 0)


async def set_token_hash(session: AsyncSession, user_id: int, token_hash: str) -> None:
    await session.execute(update(User).where(User.id == user_id)
                          .values(access_token_hash=token_hash, updated_at=now_ms()))


async def webhook_secrets(session: AsyncSession, user_ids: set[int]) -> dict[int, str | None]:
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.webhook_secret).where(User.id.in_(user_ids)))
    return {row.id: row.webhook_secret for row in rows}


async def set_webhook_secret(session: AsyncSession, user_id: int, secret: str, *, only_if_missing: bool) -> bool:
    """Store a user's webhook secret; with only_if_missing, only where none is set yet (two instances
    creating one at once agree on whichever was written first)."""
    query = update(User).where(User.id == user_id)
    if only_if_missing:
        query = query.where(User.webhook_secret.is_(None))
    result = await session.execute(query.values(webhook_secret=secret, updated_at=now_ms())
                                   .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def end_sessions(session: AsyncSession, user_id: int, session_version: int) -> bool:
    """Bump the session version (every older cookie stops working) if it is still `session_version`."""
    result = await session.execute(update(User).where(User.id == user_id, User.session_version == session_version)
                                   .values(session_version=User.session_version + 1))
    return result.rowcount == 1


async def key(session: AsyncSession, key_id: int) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    return await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


async def keys(session: AsyncSession, user_id: int | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return list(await session.scalars(query))


async def usernames(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {row.id: row.username for row in rows}
