"""The circuit breaker of each channel, and the probe that brings a disabled channel back.

Closed: failures are counted per channel in memory (each instance counts its own). `failures` in a
row open it: the channel gets a cooldown (no new tasks until it ends), growing with each cooldown
in a row (base × 2^n, capped). After a cooldown it is half-open: the next failure opens it again at
once, a success closes it. `disable_after` cooldowns in a row auto-disable the channel; the probe
calls auto-disabled channels (the `channel test` request) and re-enables the ones that answer.
The state lives on the channel row, so every instance and the reference data see it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.invalidation import stale_after_commit
from mjgate.reference import ReferenceData
from mjgate.scheduler import repository
from mjgate.scheduler.alerts import Alerts
from mjgate.scheduler.capacity import cooling
from mjgate.upstream.port import Upstream, UpstreamUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 3  # in a row, to open a closed breaker
    cooldown_ms: int = 30_000  # the first cooldown; doubled for each one in a row
    max_cooldown_ms: int = 600_000
    disable_after: int = 3  # cooldowns in a row before the channel is auto-disabled

    def cooldown_for(self, cooldowns_in_row: int) -> int:
        return min(self.max_cooldown_ms, self.cooldown_ms * 2 ** min(cooldowns_in_row, 20))


class Breaker:
    def __init__(self, db: Database, reference: ReferenceData, alerts: Alerts, policy: BreakerPolicy | None = None):
        self.db = db
        self.reference = reference
        self.alerts = alerts
        self.policy = policy or BreakerPolicy()
        self._streaks: dict[int, int] = {}
        self._pending: set[asyncio.Task] = set()

    def observe(self, channel_id: int, ok: bool) -> None:
        """One upstream answer (or failure to answer) of a channel; called on every submit outcome."""
        if ok:
            self._streaks.pop(channel_id, None)
            self._spawn(self._closed(channel_id))
            return
        self._streaks[channel_id] = self._streaks.get(channel_id, 0) + 1
        self._spawn(self._failed(channel_id, self._streaks[channel_id]))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _failed(self, channel_id: int, streak: int) -> None:
        channel = (await self.reference.current()).channels.get(channel_id)
        if channel is None or not channel.enabled or cooling(channel, now_ms()):
            return
        half_open = (channel.cooldowns_in_row or 0) > 0
        if streak < self.policy.failures and not half_open:
            return
        self._streaks.pop(channel_id, None)
        in_row = channel.cooldowns_in_row or 0
        disable = in_row + 1 >= self.policy.disable_after
        now = now_ms()
        until = now + self.policy.cooldown_for(in_row)
        async with self.db.transaction() as session:
            opened = await repository.start_cooldown(session, channel_id, until, disable=disable, now=now)
            if opened:
                stale_after_commit(session)
        if not opened:
            return
        if disable:
            await self.alerts.emit("auto_disabled", channel_id, channel.name,
                                   f"channel {channel.name} disabled after {in_row + 1} cooldowns in a row; "
                                   f"the probe re-enables it when it answers")
        else:
            await self.alerts.emit("cooldown", channel_id, channel.name,
                                   f"channel {channel.name} cools down for {(until - now) // 1000} s after "
                                   f"repeated failures")

    async def _closed(self, channel_id: int) -> None:
        channel = (await self.reference.current()).channels.get(channel_id)
        if channel is None or not ((channel.cooldowns_in_row or 0) > 0 or channel.cooldown_until):
            return
        async with self.db.transaction() as session:
            await repository.close_breaker(session, channel_id, now_ms())
            stale_after_commit(session)
        if channel.cooldowns_in_row:
            await self.alerts.emit("recovered", channel_id, channel.name, f"channel {channel.name} answers again")

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


class Prober:
    """Calls every auto-disabled channel now and then; one that answers is enabled again."""

    def __init__(self, db: Database, upstream: Upstream, alerts: Alerts, interval_s: float):
        self.db = db
        self.upstream = upstream
        self.alerts = alerts
        self.interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self.probe_all()
            except Exception:
                log.exception("channel probe failed")

    async def probe_all(self) -> list[int]:
        """Probe each auto-disabled channel; returns the ids re-enabled."""
        async with self.db.read() as session:
            disabled = await repository.auto_disabled(session)
        back = []
        for channel in disabled:
            try:
                await self.upstream.probe(channel)
            except UpstreamUnavailable as exc:
                log.info("disabled channel still failing", channel=channel.id, error=str(exc))
                continue
            async with self.db.transaction() as session:
                if await repository.reenable(session, channel.id, now_ms()):
                    stale_after_commit(session)
                    back.append(channel.id)
            if channel.id in back:
                await self.alerts.emit("re_enabled", channel.id, channel.name,
                                       f"channel {channel.name} answered its probe and is enabled again")
        return back
