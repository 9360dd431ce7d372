"""The background refresh of unfinished tasks (SPEC §5).

Each cycle: lease the due tasks (a batch), settle those that need no upstream call (timed out,
never handed upstream), ask each channel for the rest with list-by-condition in chunks of at
most 100 ids under bounded concurrency, write what came back through the task service (one
write transaction per chunk, fenced by the lease), release the leases, announce the changes.
A bad answer from a channel postpones that channel's tasks and is counted; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import structlog

from mjgate import metrics
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.models import Channel, Task
from mjgate.poller import repository
from mjgate.tasks.service import TaskService
from mjgate.tasks import transitions
from mjgate.tasks.transitions import submit_grace_ms
from mjgate.upstream.port import UpstreamUnavailable

log = structlog.get_logger(__name__)

MAX_IDS_PER_CALL = 100
LOST_AFTER_MISSES = 3  # consecutive polls without the task before the gateway calls it lost
CHANNEL_ERROR_BACKOFF_MS = 10_000


@dataclass
class PollerConfig:
    batch_size: int = 500
    lease_ms: int = 60_000
    idle_interval_s: float = 1.0
    concurrency: int = 8
    task_timeout_ms: int = 3_600_000
    missing_retry_ms: int = 15_000  # re-ask soon: a task missing once may be an upstream hiccup


def instance_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Poller:
    def __init__(self, db: Database, service: TaskService, config: PollerConfig | None = None,
                 owner: str | None = None):
        self.db = db
        self.service = service
        self.config = config or PollerConfig()
        self.owner = owner or instance_id()
        self.wake = asyncio.Event()
        self.last_cycle_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        log.info("poller started", owner=self.owner)
        while not stop.is_set():
            try:
                handled = await self.cycle()
            except Exception:
                # A database blip or a bug in one cycle must not end polling for good.
                log.exception("poller cycle failed")
                metrics.POLLER_ERRORS.labels(channel="-", kind="cycle").inc()
                handled = 0
            self.last_cycle_at = time.monotonic()
            if handled >= self.config.batch_size:
                continue  # more is due: no sleep
            await _wait_any(stop, self.wake, self.config.idle_interval_s)
            self.wake.clear()
        log.info("poller stopped", owner=self.owner)

    async def cycle(self) -> int:
        now = now_ms()
        async with self.db.transaction() as session:
            claimed = await repository.claim_due_tasks(
                session, self.owner, now, self.config.lease_ms, self.config.batch_size, self.db.supports_skip_locked
            )
        if not claimed:
            return 0
        channels = (await self.service.reference.current()).channels
        metrics.POLLER_BATCH.observe(len(claimed))
        metrics.POLLER_LAG.observe(max(0, now - min(t.next_poll_at or now for t in claimed)) / 1000)
        to_ask: dict[int, list[Task]] = defaultdict(list)
        to_settle: list[tuple[Task, str]] = []
        for task in claimed:
            reason = self._settle_reason(task, now)
            if reason:
                to_settle.append((task, reason))
            elif task.upstream_id and task.channel_id in channels:
                to_ask[task.channel_id].append(task)
            elif not task.upstream_id:
                pass  # still inside the submit grace period; released below
            else:
                to_settle.append((task, "the task's channel no longer exists"))
        if to_settle:
            await self._settle(to_settle)
        semaphore = asyncio.Semaphore(self.config.concurrency)
        jobs = [
            self._poll_chunk(channels[channel_id], tasks[i:i + MAX_IDS_PER_CALL], semaphore)
            for channel_id, tasks in to_ask.items()
            for i in range(0, len(tasks), MAX_IDS_PER_CALL)
        ]
        await asyncio.gather(*jobs)
        async with self.db.transaction() as session:
            # Whatever this cycle did not write back (unchanged tasks too) becomes claimable again.
            await repository.release_tasks(session, self.owner, [t.id for t in claimed])
        return len(claimed)

    def _settle_reason(self, task: Task, now: int) -> str | None:
        # A task that waited in the gateway queue is timed from when it left it (the wait has its own limit).
        started = task.dispatched_at or task.submit_time
        if not task.upstream_id and now - started > submit_grace_ms(self.config.task_timeout_ms):
            if task.status == "SUBMITTED":  # sent, and its answer lost
                return "the upstream never confirmed the submission (its answer was lost)"
            return "the submission was interrupted before the upstream accepted it"
        if now - started > self.config.task_timeout_ms:
            return f"timed out: not finished within {self.config.task_timeout_ms // 1000} s"
        return None

    async def _settle(self, items: list[tuple[Task, str]]) -> None:
        async with self.db.transaction() as session:
            for task, reason in sorted(items, key=lambda item: (item[0].user_id, item[0].id)):
                await transitions.fail(session, task, reason, lease_owner=self.owner)

    async def _poll_chunk(self, channel: Channel, tasks: list[Task], semaphore: asyncio.Semaphore) -> None:
        async with semaphore:
            started = time.monotonic()
            try:
                found = await self.service.upstream.list(channel, [t.upstream_id for t in tasks], poller=self.owner)
            except UpstreamUnavailable as exc:
                metrics.POLLER_ERRORS.labels(channel=str(channel.id), kind="upstream").inc()
                log.warning("poll failed", channel=channel.id, tasks=len(tasks), error=str(exc))
                async with self.db.transaction() as session:
                    await repository.postpone(session, self.owner, [t.id for t in tasks],
                                              now_ms() + CHANNEL_ERROR_BACKOFF_MS)
                return
            finally:
                metrics.POLLER_CALL_SECONDS.labels(channel=str(channel.id)).observe(time.monotonic() - started)
        by_upstream = {snap["id"]: snap for snap in found}
        quiet = []
        now = now_ms()
        async with self.db.transaction() as session:
            # By owner: a finishing task writes its owner's row, and every writer takes rows in
            # that order, so two instances' batches cannot deadlock on users.
            for task in sorted(tasks, key=lambda t: (t.user_id, t.id)):
                snap = by_upstream.get(task.upstream_id)
                try:
                    if snap is not None:
                        values = transitions.snapshot_values(task, snap, now)
                        if transitions.differs(task, values):
                            await transitions.apply_values(session, task, values, lease_owner=self.owner)
                        else:
                            quiet.append(task)
                    elif task.upstream_missing + 1 >= LOST_AFTER_MISSES:
                        reason = f"the upstream no longer knows this task ({task.upstream_missing + 1} polls without it)"
                        await transitions.fail(session, task, reason, lease_owner=self.owner)
                    else:
                        await repository.mark_missing(session, task, self.owner, now_ms() + self.config.missing_retry_ms)
                except Exception:  # one malformed task must not lose the whole chunk
                    log.exception("could not apply upstream task", task=task.mj_id)
                    metrics.POLLER_ERRORS.labels(channel=str(channel.id), kind="apply").inc()
            await transitions.quiet_polls(session, quiet, lease_owner=self.owner)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout_s: float) -> None:
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
