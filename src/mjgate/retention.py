"""MJGATE_TASK_RETENTION_DAYS: remove finished tasks older than that, and their stored images.

A background loop (started by workers.py when the setting is above 0). Each cycle removes up to
MAX_BATCHES_PER_CYCLE batches of BATCH_SIZE tasks, each batch in its own short transaction, then
sleeps; a cycle that found a full backlog comes back sooner. A batch's stored images are deleted
first: a task whose image could not be deleted stays for a later cycle, so no image is left in
the store without its task. Several instances may run it at once: every step is idempotent.
What is kept (the ledger, audit rows) is in retention_repository.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from mjgate.clock import now_ms
from mjgate.images.own import part_keys
from mjgate.retention_repository import ExpiredTask, expired_tasks, remove_tasks

log = structlog.get_logger(__name__)

BATCH_SIZE = 500
MAX_BATCHES_PER_CYCLE = 10
INTERVAL_S = 300.0
BACKLOG_INTERVAL_S = 5.0
DAY_MS = 86_400_000


@dataclass
class CycleResult:
    removed: int = 0
    images_removed: int = 0
    images_failed: int = 0
    backlog: bool = False  # the cycle stopped at its bound with more to remove


class Retention:
    def __init__(self, db, days: int, image_store=None, *, batch_size: int = BATCH_SIZE,
                 max_batches: int = MAX_BATCHES_PER_CYCLE, interval_s: float = INTERVAL_S):
        if days <= 0:
            raise ValueError("retention needs a number of days above 0")
        self.db = db
        self.days = days
        self.image_store = image_store
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.interval_s = interval_s

    async def _delete_images(self, batch: list[ExpiredTask], result: CycleResult) -> list[ExpiredTask]:
        """The tasks whose images are gone (or that had none); the others wait for a later cycle."""
        if self.image_store is None:
            return batch
        ready = []
        for task in batch:
            if task.stored_image:
                try:
                    await self.image_store.delete(task.stored_image)
                    for key in part_keys(self.image_store, task.mj_id):  # split_images parts, if it had any
                        await self.image_store.delete(key)
                    result.images_removed += 1
                except Exception as exc:
                    result.images_failed += 1
                    log.warning("retention: stored image not deleted; the task stays for now", task=task.mj_id,
                                key=task.stored_image, error=f"{type(exc).__name__}: {exc}")
                    continue
            ready.append(task)
        return ready

    async def run_once(self, now: int | None = None) -> CycleResult:
        cutoff = (now if now is not None else now_ms()) - self.days * DAY_MS
        result = CycleResult()
        skipped: set[int] = set()  # tasks kept back this cycle (an image that would not go)
        for _ in range(self.max_batches):
            async with self.db.read() as session:
                batch = [t for t in await expired_tasks(session, cutoff, self.batch_size + len(skipped))
                         if t.id not in skipped][: self.batch_size]
            if not batch:
                return result
            ready = await self._delete_images(batch, result)
            skipped.update(t.id for t in batch if t not in ready)
            if ready:
                async with self.db.write() as session:
                    result.removed += await remove_tasks(session, ready)
            if len(batch) < self.batch_size:
                return result
        result.backlog = True
        return result

    async def run(self, stop: asyncio.Event) -> None:
        log.info("retention started", days=self.days)
        while not stop.is_set():
            result = await self.run_once()
            if result.removed or result.images_failed:
                log.info("retention cycle", removed=result.removed, images_removed=result.images_removed,
                         images_failed=result.images_failed, backlog=result.backlog)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), BACKLOG_INTERVAL_S if result.backlog else self.interval_s)
        log.info("retention stopped")
