"""Channel administration: create, edit, enable/disable, list. Selection lives in selection.py."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.channels import repository
from mjgate.clock import now_ms
from mjgate.errors import BadRequest, Conflict, NotFound
from mjgate.models import Channel
from mjgate.models.channel import CHANNEL_STATUSES, MODES
from mjgate.invalidation import stale_after_commit

EDITABLE = ("name", "base_url", "secret", "priority", "weight", "groups", "modes", "actions", "image_hosts")


def _validate(fields: dict) -> dict:
    if "base_url" in fields:
        url = str(fields["base_url"]).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest("base_url must be an absolute http(s) URL")
        fields["base_url"] = url
    if "modes" in fields:
        modes = [m.strip().lower() for m in fields["modes"] if m.strip()]
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise BadRequest(f"modes must be a non-empty subset of {', '.join(MODES)}")
        fields["modes"] = modes
    if "groups" in fields:
        groups = [g.strip() for g in fields["groups"] if g.strip()]
        if not groups:
            raise BadRequest("groups must name at least one group")
        fields["groups"] = groups
    if "actions" in fields and fields["actions"] is not None:
        fields["actions"] = [a.strip().upper() for a in fields["actions"] if a.strip()] or None
    for name in ("priority", "weight"):
        if name in fields:
            try:
                fields[name] = int(fields[name])
            except (TypeError, ValueError):
                raise BadRequest(f"{name} must be an integer") from None
    if fields.get("weight", 1) < 0:
        raise BadRequest("weight must be >= 0")
    return fields


async def _refuse_taken_name(session: AsyncSession, name: str, channel_id: int | None = None) -> None:
    """Channel names identify channels in the console, the CLI and the logs: one of each name.
    (Checked here, not by a unique index, so databases that already hold duplicates still migrate.)"""
    other = await repository.id_named(session, name)
    if other is not None and other != channel_id:
        raise Conflict(f"a channel named {name.strip()!r} already exists (id {other}); choose another name")


async def create_channel(session: AsyncSession, name: str, base_url: str, secret: str = "", **options) -> Channel:
    fields = _validate({"name": name, "base_url": base_url, "secret": secret, **options})
    await _refuse_taken_name(session, name)
    now = now_ms()
    channel = Channel(
        status="enabled",
        priority=0,
        weight=1,
        groups=["default"],
        modes=list(MODES),
        success_count=0,
        failure_count=0,
        consecutive_failures=0,
        last_error="",
        created_at=now,
        updated_at=now,
    )
    for key, value in fields.items():
        setattr(channel, key, value)
    stale_after_commit(session)
    return await repository.add(session, channel)


async def require_channel(session: AsyncSession, channel_id: int) -> Channel:
    channel = await repository.get(session, channel_id)
    if channel is None:
        raise NotFound(f"no channel with id {channel_id}")
    return channel


async def update_channel(session: AsyncSession, channel_id: int, changes: dict) -> Channel:
    channel = await require_channel(session, channel_id)
    unknown = set(changes) - set(EDITABLE) - {"status"}
    if unknown:
        raise BadRequest(f"unknown channel fields: {', '.join(sorted(unknown))}")
    if "status" in changes and changes["status"] not in CHANNEL_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(CHANNEL_STATUSES)}")
    if changes.get("name") is not None and changes["name"].strip().lower() != channel.name.lower():
        await _refuse_taken_name(session, changes["name"], channel.id)
    for key, value in _validate(dict(changes)).items():
        setattr(channel, key, value)
    if changes.get("status") == "enabled":
        channel.consecutive_failures = 0
    channel.updated_at = now_ms()
    stale_after_commit(session)
    return channel


async def list_channels(session: AsyncSession) -> list[Channel]:
    return await repository.all_channels(session)


def public_channel(channel: Channel) -> dict:
    secret = channel.secret or ""
    return {
        "id": channel.id,
        "name": channel.name,
        "base_url": channel.base_url,
        "secret_hint": (secret[:3] + "…" + secret[-2:]) if len(secret) > 6 else ("…" if secret else ""),
        "status": channel.status,
        "priority": channel.priority,
        "weight": channel.weight,
        "groups": channel.groups,
        "modes": channel.modes,
        "actions": channel.actions,
        "image_hosts": channel.image_hosts,
        "health": {
            "success_count": channel.success_count,
            "failure_count": channel.failure_count,
            "consecutive_failures": channel.consecutive_failures,
            "last_ok_at": channel.last_ok_at,
            "last_error_at": channel.last_error_at,
            "last_error": channel.last_error,
        },
        "created_at": channel.created_at,
    }
