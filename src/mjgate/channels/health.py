"""Channel health: counters moved in SQL after each upstream answer, and the on-demand test call."""

from __future__ import annotations

import time

from sqlalchemy import update

from mjgate.channels.admin import public_channel, require_channel
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.models import Channel
from mjgate.upstream.client import UpstreamClient, UpstreamUnavailable


def health_update(channel_id: int, *, ok: bool, error: str = ""):
    """The UPDATE recording one answer (counters are incremented in SQL, never read first)."""
    now = now_ms()
    values = (
        dict(success_count=Channel.success_count + 1, consecutive_failures=0, last_ok_at=now)
        if ok
        else dict(failure_count=Channel.failure_count + 1, consecutive_failures=Channel.consecutive_failures + 1,
                  last_error_at=now, last_error=error[:1000])
    )
    return update(Channel).where(Channel.id == channel_id).values(**values)


async def test_channel(db: Database, upstream: UpstreamClient, channel_id: int) -> dict:
    """Call the channel now with the cheapest authenticated request every midjourney-proxy has
    (list-by-condition of no ids), record the outcome in its health, and report it."""
    async with db.read() as session:
        channel = await require_channel(session, channel_id)
    started = time.monotonic()
    error = ""
    try:
        await upstream.list_by_condition(channel.base_url, channel.secret, [])
    except UpstreamUnavailable as exc:
        error = str(exc) or "unavailable"
    latency_ms = round((time.monotonic() - started) * 1000)
    async with db.write() as session:
        await session.execute(health_update(channel_id, ok=not error, error=f"test: {error}"))
    async with db.read() as session:
        fresh = await require_channel(session, channel_id)
    return {"ok": not error, "latency_ms": latency_ms, "error": error, "channel": public_channel(fresh)}
