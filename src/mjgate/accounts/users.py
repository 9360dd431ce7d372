"""Users: creation, lookup, status. Quota movements live in mjgate.billing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.accounts import repository
from mjgate.auth.credentials import hash_password, hash_secret, new_access_token
from mjgate.clock import now_ms
from mjgate.errors import BadRequest, NotFound
from mjgate.models import User
from mjgate.invalidation import stale_after_commit
from mjgate.models.user import ROLES


@dataclass
class CreatedUser:
    user: User
    access_token: str  # shown once


async def create_user(
    session: AsyncSession,
    username: str,
    *,
    role: str = "user",
    group: str = "default",
    password: str | None = None,
    display_name: str = "",
) -> CreatedUser:
    username = username.strip()
    if not username or len(username) > 64:
        raise BadRequest("username must be 1-64 characters")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    token = new_access_token()
    now = now_ms()
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        status="enabled",
        group=group,
        quota=0,
        used_quota=0,
        request_count=0,
        task_count=0,
        in_flight=0,
        access_token_hash=hash_secret(token),
        password_hash=hash_password(password) if password else None,
        session_version=0,
        created_at=now,
        updated_at=now,
    )
    try:
        await repository.add(session, user)
    except IntegrityError:
        raise BadRequest(f"user {username!r} already exists") from None
    return CreatedUser(user, token)


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return await repository.user_by_name(session, username)


async def require_by_username(session: AsyncSession, username: str) -> User:
    user = await get_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


async def get_by_access_token(session: AsyncSession, token: str) -> User | None:
    return await repository.user_by_token_hash(session, hash_secret(token))


async def list_users(session: AsyncSession, *, offset: int = 0, limit: int = 100) -> list[User]:
    return (await repository.users(session, offset=offset, limit=limit))[0]


async def set_status(session: AsyncSession, username: str, status: str) -> User:
    user = await require_by_username(session, username)
    user.status = status
    user.updated_at = now_ms()
    if status != "enabled":
        user.session_version += 1  # a disabled user's console sessions end now
    stale_after_commit(session)  # cached keys carry their owner
    return user


async def set_max_in_flight(session: AsyncSession, user: User, limit: int | None) -> User:
    """The most unfinished tasks (queued or running) the user may have; None = no limit. Tasks
    already under way are not touched: a lower limit only refuses new ones."""
    user.max_in_flight = limit
    user.updated_at = now_ms()
    stale_after_commit(session)
    return user


async def reset_access_token(session: AsyncSession, user: User) -> str:
    token = new_access_token()
    await repository.set_token_hash(session, user.id, hash_secret(token))
    stale_after_commit(session)  # the old token must stop working now
    return token


def public_user(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "status": user.status,
        "group": user.group,
        "quota": user.quota,
        "used_quota": user.used_quota,
        "request_count": user.request_count,
        "in_flight": user.in_flight or 0,
        "max_in_flight": user.max_in_flight,
        "created_at": user.created_at,
    }


async def page_users(
    session: AsyncSession, *, offset: int = 0, limit: int = 20, search: str | None = None
) -> tuple[list[User], int]:
    """One page of users (oldest first) and the total, optionally filtered by a username substring."""
    return await repository.users(session, offset=offset, limit=limit, search=search)
