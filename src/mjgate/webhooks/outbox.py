"""Staging a client's callback in the transaction that changed its task (the persisted outbox).

The payload is the task as the client's own dialect shows it (registered by the dialects), so a
midjourney-proxy client gets the fetch JSON and an AceData client its answer JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from mjgate.clock import now_ms
from mjgate.models import Task
from mjgate.webhooks import repository

DEFAULT_DIALECT = "mjproxy"


class Outbox:
    def __init__(self, payloads: dict[str, Callable[[Task], dict]]):
        self.payloads = payloads

    async def stage(self, session, task: Task) -> None:
        if not task.notify_hook:
            return
        render = self.payloads.get(task.dialect) or self.payloads[DEFAULT_DIALECT]
        await repository.add_delivery(session, task_id=task.id, url=task.notify_hook, payload=render(task),
                                      created_at=now_ms())
