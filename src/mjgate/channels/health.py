"""Channel health: upstream answers counted per channel, and the on-demand test call."""

from __future__ import annotations

import asyncio
import time

import structlog

from mjgate.channels import repository
from mjgate.channels.admin import public_channel, require_channel
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.upstream.port import Upstream, UpstreamUnavailable

log = structlog.get_logger(__name__)


async def test_channel(db: Database, upstream: Upstream, channel_id: int) -> dict:
    """Call the channel now with its cheapest authenticated request, record the outcome in its
    health, and report it."""
    async with db.read() as session:
        channel = await require_channel(session, channel_id)
    started = time.monotonic()
    error = ""
    try:
        await upstream.probe(channel)
    except UpstreamUnavailable as exc:
        error = str(exc) or "unavailable"
    latency_ms = round((time.monotonic() - started) * 1000)
    now = now_ms()
    async with db.write() as session:
        await repository.add_health(session, channel_id, ok=0 if error else 1, failed=1 if error else 0,
                                    streak=1 if error else 0, streak_continues=bool(error),
                                    last_ok_at=None if error else now, last_error_at=now if error else None,
                                    last_error=f"test: {error}")
    async with db.read() as session:
        fresh = await require_channel(session, channel_id)
    return {"ok": not error, "latency_ms": latency_ms, "error": error, "channel": public_channel(fresh)}


class HealthRecorder:
    """Submit outcomes per channel, buffered in memory and written as one UPDATE per channel.

    Writing the counters with every submit made the channel's row the one row every submit
    updated, serialising submits behind its lock. Buffering keeps the counters exact (each
    flush adds what was counted) and the streak right (a success in the window resets it),
    at the cost of the health view lagging by up to FLUSH_INTERVAL_S; a crash loses at most
    that window's counts, never money or task state.
    """

    FLUSH_INTERVAL_S = 2.0

    def __init__(self, db: Database):
        self.db = db
        self._pending: dict[int, dict] = {}
        self.breaker = None  # scheduler.breaker.Breaker, told of every outcome as it happens

    def record(self, channel_id: int, *, ok: bool, error: str = "") -> None:
        if self.breaker is not None:
            self.breaker.observe(channel_id, ok)
        entry = self._pending.setdefault(channel_id, {"ok": 0, "failed": 0, "streak": 0, "any_ok": False,
                                                      "last_ok_at": None, "last_error_at": None, "last_error": ""})
        now = now_ms()
        if ok:
            entry.update(ok=entry["ok"] + 1, streak=0, any_ok=True, last_ok_at=now)
        else:
            entry.update(failed=entry["failed"] + 1, streak=entry["streak"] + 1, last_error_at=now,
                         last_error=error[:1000])

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        async with self.db.write() as session:
            for channel_id, e in sorted(pending.items()):
                await repository.add_health(session, channel_id, ok=e["ok"], failed=e["failed"], streak=e["streak"],
                                            streak_continues=not e["any_ok"], last_ok_at=e["last_ok_at"],
                                            last_error_at=e["last_error_at"], last_error=e["last_error"])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.FLUSH_INTERVAL_S)
            except asyncio.TimeoutError:
                pass
            try:
                await self.flush()
            except Exception:  # counters only; keep the loop alive
                log.exception("channel health flush failed")
