"""The gateway queue's dispatcher: hands queued tasks to channels as capacity frees.

Woken by the events that free or need capacity (a task finishing, a task entering the queue) from
any instance (the event bus carries them over Redis), with a slow timer as the safety net for what
sends no event (a cooldown ending, an operator raising a capacity). Each pass takes queued tasks in
fair order (scheduler/repository.fair_queue) and claims each one with a conditional UPDATE, so
several instances can dispatch from one queue and no task is sent twice; the sends to the upstream
then run concurrently. A task that waited longer than the longest wait fails and is refunded.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from mjgate import metrics
from mjgate.channels.admin import health_state
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.events import EventBus
from mjgate.models.task import TERMINAL_STATUSES
from mjgate.scheduler import repository
from mjgate.tasks import transitions
from mjgate.tasks.service import TaskService

log = structlog.get_logger(__name__)

CHANNEL_STATES = ("enabled", "cooldown", "manual_disabled", "auto_disabled")
BATCH = 200
SEND_CONCURRENCY = 16
SAFETY_INTERVAL_S = 5.0


class Dispatcher:
    def __init__(self, db: Database, service: TaskService, events: EventBus, *, max_wait_ms: int,
                 safety_interval_s: float = SAFETY_INTERVAL_S):
        self.db = db
        self.service = service
        self.events = events
        self.max_wait_ms = max_wait_ms
        self.safety_interval_s = safety_interval_s
        self._sending: set[asyncio.Task] = set()
        self._semaphore = asyncio.Semaphore(SEND_CONCURRENCY)

    async def run(self, stop: asyncio.Event) -> None:
        async with self.events.subscribe(None) as queue:
            while not stop.is_set():
                try:
                    await self.cycle()
                except Exception:  # a database blip must not end dispatching for good
                    log.exception("dispatcher cycle failed")
                await self._wait(queue, stop)
        await self.settle()

    async def settle(self) -> None:
        """Wait for the sends already started (at shutdown, and in tests)."""
        if self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def _wait(self, queue: asyncio.Queue, stop: asyncio.Event) -> None:
        """Until capacity may have freed (a task finished) or work arrived (a task queued)."""
        deadline = time.monotonic() + self.safety_interval_s
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                getting = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getting, stopping}, timeout=remaining,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getting not in done:
                    getting.cancel()
                    return
                event = getting.result()
                if event.get("type") == "task" and (event.get("status") in TERMINAL_STATUSES
                                                     or event.get("status") == "NOT_START"):
                    while not queue.empty():  # one pass serves every event already waiting
                        queue.get_nowait()
                    return
        finally:
            stopping.cancel()

    async def cycle(self) -> int:
        """One pass over the queue; returns how many tasks were handed to a channel."""
        now = now_ms()
        await self._expire(now)
        await self._report_channels(now)
        async with self.db.reading() as conn:
            waiting = await repository.fair_queue(conn, BATCH)
        depth = len(waiting) if len(waiting) < BATCH else await self._depth()
        metrics.QUEUE_DEPTH.set(depth)
        taken = 0
        blocked: set[tuple] = set()  # kinds of task no channel had room for in this pass
        for task in waiting:
            request = task.upstream_request or {}
            kind = (request.get("channel_id"), request.get("group"), task.mode, task.action)
            if kind in blocked:
                continue
            queued_at = task.queued_at
            channel = await self.service.take_from_queue(task)
            if channel is None:
                if task.queued_at is not None:
                    blocked.add(kind)
                continue
            taken += 1
            metrics.QUEUE_WAIT.observe(max(0, now_ms() - queued_at) / 1000)
            await self._semaphore.acquire()
            sending = asyncio.create_task(self._send(task, channel, queued_at))
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)
        # New tasks queue behind the waiting ones for as long as some are left.
        self.service.queue_waiting = depth > taken
        return taken

    async def _report_channels(self, now: int) -> None:
        """Each channel's health state and slots in use, for /metrics (as the reference data has them)."""
        for channel in (await self.service.reference.current()).channels.values():
            state = health_state(channel, now)
            for name in CHANNEL_STATES:
                metrics.CHANNEL_STATE.labels(channel=str(channel.id), state=name).set(1 if name == state else 0)
            metrics.CHANNEL_IN_FLIGHT.labels(channel=str(channel.id)).set(channel.in_flight or 0)

    async def _depth(self) -> int:
        async with self.db.reading() as conn:
            return await repository.queue_depth(conn)

    async def _send(self, task, channel, queued_at: int) -> None:
        try:
            sent = await self.service.send_from_queue(task, channel, queued_at)
            metrics.DISPATCHED.labels(result="sent" if sent else "requeued").inc()
        except Exception:
            # The task keeps its slot and is settled like an interrupted submission after the grace.
            log.exception("dispatch failed", task=task.mj_id, channel=channel.id)
        finally:
            self._semaphore.release()

    async def _expire(self, now: int) -> None:
        overdue_before = now - self.max_wait_ms
        async with self.db.reading() as conn:
            overdue = await repository.queued_before(conn, overdue_before, BATCH)
        if not overdue:
            return
        reason = f"waited in the gateway queue longer than {self.max_wait_ms // 1000} s with no channel free"
        async with self.db.transaction() as session:
            for task in overdue:
                change = await transitions.fail(session, task, reason)
                if change.changed:
                    metrics.DISPATCHED.labels(result="expired").inc()
        log.warning("queued tasks expired", count=len(overdue))
