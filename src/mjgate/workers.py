"""The background loops (poller, webhook deliverer, queue dispatcher, channel probe, retention when enabled), owned by the server's lifespan or by `mjgate worker`.

Each loop runs under a supervisor that restarts it if it ever dies, and all stop together on a
shared event with a bounded wait.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from mjgate.config import Settings
from mjgate.poller.poller import Poller, PollerConfig, instance_id
from mjgate.retention import Retention
from mjgate.scheduler.alerts import Alerts
from mjgate.scheduler.breaker import Prober
from mjgate.scheduler.dispatcher import Dispatcher
from mjgate.webhooks.delivery import WebhookDeliverer

log = structlog.get_logger(__name__)

STOP_WAIT_S = 10
RESTART_DELAY_S = 1


class BackgroundWorkers:
    def __init__(self, db, service, http, settings: Settings, secret_key: str, owner: str | None = None, *,
                 image_store=None, events=None, alerts=None):
        self.owner = owner or instance_id()
        self.poller = Poller(db, service, PollerConfig(task_timeout_ms=settings.task_timeout_s * 1000,
                                                      batch_size=settings.poller_batch_size,
                                                      idle_interval_s=settings.poller_interval_s,
                                                      lease_ms=int(settings.poller_lease_s * 1000)),
                             owner=self.owner)
        self.webhooks = WebhookDeliverer(db, http, secret_key, self.owner,
                                         allow_private=settings.webhook_allow_private)
        events = events or service.events
        self.dispatcher = Dispatcher(db, service, events,
                                     max_wait_ms=min(settings.queue_max_wait_s, settings.task_timeout_s) * 1000,
                                     safety_interval_s=settings.dispatcher_interval_s)
        self.prober = Prober(db, service.upstream, alerts or Alerts(events), settings.probe_interval_s)
        self.retention = None
        if settings.task_retention_days > 0:
            self.retention = Retention(db, settings.task_retention_days, image_store)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loops = [("poller", self.poller.run), ("webhooks", self.webhooks.run), ("dispatcher", self.dispatcher.run),
                 ("probe", self.prober.run)]
        if self.retention is not None:
            loops.append(("retention", self.retention.run))
        for name, loop in loops:
            self._tasks.append(asyncio.create_task(self._supervise(name, loop), name=f"mjgate-{name}"))

    async def _supervise(self, name: str, loop) -> None:
        while not self._stop.is_set():
            try:
                await loop(self._stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop died; restarting", loop=name)
                await asyncio.sleep(RESTART_DELAY_S)

    async def stop(self) -> None:
        self._stop.set()
        done, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.webhooks.close()

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def healthy(self) -> bool:
        return all(not t.done() for t in self._tasks)
