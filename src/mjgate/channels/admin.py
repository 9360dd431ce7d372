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
from mjgate.scheduler import repository as slots
from mjgate.scheduler.capacity import cooling, day_start, parse_active_hours


def health_state(channel: Channel, now: int) -> str:
    """enabled, cooldown (the breaker is open), manual_disabled or auto_disabled (by the breaker)."""
    if channel.status == "enabled" and cooling(channel, now):
        return "cooldown"
    return channel.status

EDITABLE = ("name", "base_url", "secret", "priority", "weight", "groups", "modes", "actions", "image_hosts",
            "max_running", "max_queued", "daily_cap", "active_hours", "mode_fallback")
LIMITS = ("max_running", "max_queued", "daily_cap")  # None = no limit
MAX_LIMIT = 1_000_000


def _validate(fields: dict) -> dict:
    if "base_url" in fields:
        url = str(fields["base_url"]).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest("base_url must be an absolute http(s) URL")
        fields["base_url"] = url
    if "secret" in fields and any(ord(ch) < 32 or ord(ch) == 127 for ch in str(fields["secret"] or "")):
        raise BadRequest("secret must not contain control characters (it is sent as the mj-api-secret header)")
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
    for name in LIMITS:
        if name in fields and fields[name] is not None:
            value = fields[name]
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
                raise BadRequest(f"{name} must be a whole number from 0 to {MAX_LIMIT}, or null for no limit")
            fields[name] = int(value)
            if fields[name] > MAX_LIMIT or (name == "max_running" and fields[name] < 1):
                raise BadRequest(f"{name} must be between {1 if name == 'max_running' else 0} and {MAX_LIMIT}")
    if "active_hours" in fields:
        try:
            parse_active_hours(fields["active_hours"])
        except (ValueError, AttributeError):
            raise BadRequest("active_hours must be HH:MM-HH:MM in UTC (e.g. 08:00-20:00), or null for always") from None
        fields["active_hours"] = (fields["active_hours"] or "").strip() or None
    if "mode_fallback" in fields and not isinstance(fields["mode_fallback"], bool):
        raise BadRequest("mode_fallback must be true or false")
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
        in_flight=0,
        day_start=0,
        day_count=0,
        cooldowns_in_row=0,
        mode_fallback=False,
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
    had_capacity = channel.max_running is not None
    if changes.get("name") is not None and changes["name"].strip().lower() != channel.name.lower():
        await _refuse_taken_name(session, changes["name"], channel.id)
    for key, value in _validate(dict(changes)).items():
        setattr(channel, key, value)
    if changes.get("status") == "enabled":
        # An operator's enable closes the breaker too.
        channel.consecutive_failures = 0
        channel.cooldowns_in_row = 0
        channel.cooldown_until = None
    channel.updated_at = now_ms()
    if channel.max_running is not None and not had_capacity:
        await slots.recount_channel(session, channel)  # the tasks already there take its slots
    stale_after_commit(session)
    return channel


async def list_channels(session: AsyncSession) -> list[Channel]:
    channels = await repository.all_channels(session)
    in_use = await slots.slots_in_use(session)
    for channel in channels:  # the count now, not the one noted at the last claim
        channel.in_flight = in_use.get(channel.id, 0)
    return channels


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
        "max_running": channel.max_running,
        "max_queued": channel.max_queued,
        "daily_cap": channel.daily_cap,
        "active_hours": channel.active_hours,
        "mode_fallback": bool(channel.mode_fallback),
        "in_flight": channel.in_flight or 0,
        "sent_today": (channel.day_count or 0) if channel.day_start == day_start(now_ms()) else 0,
        "health": {
            "state": health_state(channel, now_ms()),
            "cooldown_until": channel.cooldown_until,
            "cooldowns_in_row": channel.cooldowns_in_row or 0,
            "success_count": channel.success_count,
            "failure_count": channel.failure_count,
            "consecutive_failures": channel.consecutive_failures,
            "last_ok_at": channel.last_ok_at,
            "last_error_at": channel.last_error_at,
            "last_error": channel.last_error,
        },
        "created_at": channel.created_at,
    }
