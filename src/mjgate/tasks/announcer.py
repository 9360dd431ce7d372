"""After a write transaction commits, every task it changed is announced once: live views and
waiting callers are told (the event bus), a finished image is copied (the image store), a
finished task is counted (metrics). Wired as the database's after-commit hook (db/unit_of_work.py)."""

from __future__ import annotations

from mjgate import metrics
from mjgate.events import EventBus
from mjgate.models import Task


def task_event(task: Task) -> dict:
    """What live views are told about a change (they read the full task from the store)."""
    return {"type": "task", "user_id": task.user_id, "mj_id": task.mj_id, "action": task.action,
            "status": task.status, "progress": task.progress, "updated_at": task.updated_at,
            "fail_reason": task.fail_reason}


class Announcer:
    def __init__(self, events: EventBus, image_copier=None):
        self.events = events
        self.image_copier = image_copier

    async def __call__(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task.terminal:
                metrics.TASKS_FINISHED.labels(status=task.status).inc()
            if self.image_copier is not None:
                self.image_copier.schedule(task)
            await self.events.publish(task_event(task))
