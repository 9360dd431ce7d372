"""The unit of work of a write transaction: what it changed, announced only after it commits.

`Database.write()` gives every write session one UnitOfWork. The core calls `changed(task)` for
each task it changes; a client-visible change stages the task's webhook in the same transaction
(the outbox), and after the commit every changed task is announced once (live events, the image
copier). Nothing is announced for a transaction that rolled back, and no code announces by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

UOW_KEY = "mjgate.unit_of_work"


@dataclass
class CommitHooks:
    # stage(session, task): add the task's outbox row, inside the transaction.
    stage: Callable[[Any, Any], Awaitable[None]] | None = None
    # announce(tasks): after the commit, with every task the transaction changed.
    announce: Callable[[list], Awaitable[None]] | None = None


class UnitOfWork:
    def __init__(self, session, hooks: CommitHooks):
        self.session = session
        self.hooks = hooks
        self.tasks: dict[int, Any] = {}
        self._after_commit: dict[object, Callable[[], Awaitable[None] | None]] = {}

    async def changed(self, task, *, visible: bool = True) -> None:
        """Record a change of `task`; `visible` when a client would see it (status, progress, image,
        buttons), which is what its webhook reports."""
        self.tasks[task.id] = task
        if visible and self.hooks.stage is not None:
            await self.hooks.stage(self.session, task)

    def after_commit(self, callback: Callable[[], Awaitable[None] | None], *, once: object = None) -> None:
        """Run `callback()` (awaited if it is a coroutine function) once the transaction has committed,
        never if it rolls back. Callbacks given the same `once` key run only once per transaction."""
        self._after_commit[once if once is not None else object()] = callback

    async def committed(self) -> None:
        for callback in self._after_commit.values():
            result = callback()
            if inspect.isawaitable(result):
                await result
        if self.tasks and self.hooks.announce is not None:
            await self.hooks.announce(list(self.tasks.values()))


def unit_of(session) -> UnitOfWork:
    """The unit of work of a session opened by Database.write()."""
    uow = session.info.get(UOW_KEY)
    if uow is None:
        raise RuntimeError("task changes must be written in a Database.write() transaction")
    return uow
