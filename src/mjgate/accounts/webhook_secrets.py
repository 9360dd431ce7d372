"""Each user's webhook signing secret (Standard Webhooks, `whsec_…`): their callbacks are signed with
it, so a tenant verifies callbacks with a key that signs nothing else.

Users created before these secrets existed get one the first time it is needed (shown in the
console, printed by `mjgate user webhook-secret`, or a callback to sign). Rotating replaces it at
once: callbacks signed from then on use the new secret.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.accounts import repository
from mjgate.auth.credentials import new_webhook_secret
from mjgate.errors import NotFound


async def secrets_of(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    """user id -> webhook secret, creating the missing ones (in this write session)."""
    found = await repository.webhook_secrets(session, user_ids)
    missing = [uid for uid, secret in found.items() if not secret]
    for uid in missing:
        await repository.set_webhook_secret(session, uid, new_webhook_secret(), only_if_missing=True)
    if missing:
        found.update(await repository.webhook_secrets(session, set(missing)))
    return {uid: secret for uid, secret in found.items() if secret}


async def secret_of(session: AsyncSession, user_id: int, *, rotate: bool = False) -> str:
    if rotate:
        secret = new_webhook_secret()
        if not await repository.set_webhook_secret(session, user_id, secret, only_if_missing=False):
            raise NotFound(f"no user with id {user_id}")
        return secret
    secret = (await secrets_of(session, {user_id})).get(user_id)
    if secret is None:
        raise NotFound(f"no user with id {user_id}")
    return secret
