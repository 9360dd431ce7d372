"""API keys (`sk-...`): created with the secret shown once, stored as a hash."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.accounts import repository
from mjgate.auth.credentials import hash_secret, key_hint, new_api_key
from mjgate.clock import now_ms
from mjgate.errors import NotFound
from mjgate.invalidation import stale_after_commit
from mjgate.models import ApiKey, User


@dataclass
class CreatedKey:
    key: ApiKey
    secret: str  # shown once


async def create_key(
    session: AsyncSession,
    user: User,
    *,
    name: str = "",
    quota: int | None = None,
    expires_at: int | None = None,
    allowed_actions: list[str] | None = None,
    allowed_ips: list[str] | None = None,
) -> CreatedKey:
    """quota=None makes an unlimited key; otherwise the key may spend at most `quota` units."""
    secret = new_api_key()
    key = ApiKey(
        user_id=user.id,
        name=name or "default",
        key_hash=hash_secret(secret),
        key_hint=key_hint(secret),
        status="enabled",
        expires_at=expires_at,
        unlimited=quota is None,
        remain_quota=quota or 0,
        used_quota=0,
        allowed_actions=[a.upper() for a in allowed_actions] if allowed_actions else None,
        allowed_ips=allowed_ips or None,
        in_flight=0,
        created_at=now_ms(),
    )
    await repository.add(session, key)
    return CreatedKey(key, secret)


async def get_by_secret(session: AsyncSession, secret: str) -> ApiKey | None:
    return await repository.key_by_hash(session, hash_secret(secret))


async def list_keys(session: AsyncSession, user_id: int | None = None) -> list[ApiKey]:
    return await repository.keys(session, user_id)


async def set_status(session: AsyncSession, key_id: int, status: str, *, user_id: int | None = None) -> ApiKey:
    key = await repository.key(session, key_id)
    if key is None or (user_id is not None and key.user_id != user_id):
        raise NotFound(f"no key with id {key_id}")
    key.status = status
    stale_after_commit(session)  # a cached key must not outlive its disabling
    return key


async def set_max_in_flight(session: AsyncSession, key_id: int, limit: int | None) -> ApiKey:
    """The most unfinished tasks submitted with this key at once; None = only the user's limit."""
    key = await repository.key(session, key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id}")
    key.max_in_flight = limit
    stale_after_commit(session)  # the cached key carries its limit
    return key


def public_key(key: ApiKey) -> dict:
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "key_hint": key.key_hint,
        "status": key.status,
        "expires_at": key.expires_at,
        "unlimited": key.unlimited,
        "remain_quota": key.remain_quota,
        "used_quota": key.used_quota,
        "allowed_actions": key.allowed_actions,
        "allowed_ips": key.allowed_ips,
        "in_flight": key.in_flight or 0,
        "max_in_flight": key.max_in_flight,
        "created_at": key.created_at,
    }
