"""Shared by the scheduler tests that run real servers."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from mjgate.models import Task
from mjgate.models.task import TERMINAL_STATUSES


async def wait_until_all_finished(db, timeout_s: float, what: str = "still unfinished") -> None:
    """Until no task in the database is unfinished; fails naming how many are left."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with db.read() as session:
            unfinished = await session.scalar(select(func.count()).select_from(Task).where(
                Task.status.not_in(TERMINAL_STATUSES)))
        if not unfinished:
            return
        assert time.monotonic() < deadline, f"{unfinished} tasks {what}"
        await asyncio.sleep(0.5)
