"""A job the upstream reports before (or instead of) its submit answer is adopted, never refused,
and the late answer does not move the task back."""

from __future__ import annotations

import aiohttp
import pytest

from mjgate.errors import Forbidden
from mjgate.tasks import repository
from mjgate.tasks.service import TaskService
from mjgate.upstream import build_upstream
from tests.factories import make_channel, make_user
from tests.tasks.test_transitions import _charged_task


async def test_a_callback_before_the_submit_answer_adopts_the_job(db):
    user = await make_user(db, quota=1_000)
    channel_id = await make_channel(db)
    other_channel = await make_channel(db, "other")
    task = await _charged_task(db, user["id"])  # sent upstream, its answer not recorded yet
    async with aiohttp.ClientSession() as http:
        service = TaskService(db, build_upstream(http))
        with pytest.raises(Forbidden):  # a notify URL without a channel (older URLs) cannot adopt anything
            await service.pushed(task.mj_id, None, {"id": "up-1", "status": "IN_PROGRESS", "progress": "30%"})
        await service.pushed(task.mj_id, channel_id, {"id": "up-1", "status": "IN_PROGRESS", "progress": "30%"})
        async with db.reading() as conn:
            adopted = await repository.get(conn, task.id)
        assert (adopted.upstream_id, adopted.channel_id, adopted.status) == ("up-1", channel_id, "IN_PROGRESS")
        # The late submit answer keeps its code but does not move the task back to SUBMITTED.
        async with db.transaction() as conn:
            recorded = await repository.record_submitted(conn, task, {"upstream_id": "up-1", "code": 1,
                                                                       "status": "SUBMITTED", "channel_id": channel_id})
        assert recorded is False
        async with db.reading() as conn:
            after = await repository.get(conn, task.id)
        assert (after.status, after.progress, after.code) == ("IN_PROGRESS", "30%", 1)
        # Once adopted, another job id or another channel is refused.
        with pytest.raises(Forbidden):
            await service.pushed(task.mj_id, other_channel, {"id": "up-2", "status": "SUCCESS"})
