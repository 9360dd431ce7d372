"""An admin's hand on one task: refund, force-fail, re-poll. Each act is written to the audit log
in the same transaction as its effect, with whether it changed anything."""

from __future__ import annotations

from mjgate.audit import repository as audit
from mjgate.billing.ledger import give_back
from mjgate.clock import now_ms
from mjgate.db import Database
from mjgate.errors import BadRequest, NotFound
from mjgate.models import Task
from mjgate.tasks import repository, transitions


async def _audit(session, actor_id: int, action: str, task: Task, **detail) -> None:
    await audit.add(session, actor_user_id=actor_id, action=action, target=f"task:{task.mj_id}", detail=detail)


async def _task(session, mj_id: str) -> Task:
    task = await repository.get_by_mj_id(session, mj_id)
    if task is None:
        raise NotFound(f"task {mj_id[:64]} not found")
    return task


async def refund(db: Database, actor_id: int, mj_id: str, reason: str) -> dict:
    """Give a task's charge back (e.g. a SUCCESS whose result was unusable); at most once per task."""
    async with db.transaction() as session:
        task = await _task(session, mj_id)
        if task.quota <= 0:
            raise BadRequest(f"task {mj_id} was never charged")
        done = await give_back(session, task, kind="refund", memo=f"admin: {reason}"[:500], actor_user_id=actor_id)
        if not done:
            raise BadRequest(f"task {mj_id} has already been refunded")
        await _audit(session, actor_id, "refund", task, amount=task.quota, reason=reason)
    return {"mj_id": mj_id, "refunded": task.quota}


async def force_fail(db: Database, actor_id: int, mj_id: str, reason: str) -> dict:
    async with db.transaction() as session:
        task = await _task(session, mj_id)
        if task.terminal:
            raise BadRequest(f"task {mj_id} is already {task.status}")
        change = await transitions.fail(session, task, f"failed by an administrator: {reason}"[:2000])
        if not change.changed:
            raise BadRequest(f"task {mj_id} changed meanwhile; try again")
        await _audit(session, actor_id, "force_fail", task, reason=reason, refunded=change.refunded)
    return {"mj_id": mj_id, "status": "FAILURE", "refunded": change.refunded}


async def repoll(db: Database, actor_id: int, mj_id: str) -> dict:
    """Make an unfinished task due now (clearing a stale lease), and forget missed polls."""
    async with db.transaction() as session:
        task = await _task(session, mj_id)
        if task.terminal:
            raise BadRequest(f"task {mj_id} is {task.status}; finished tasks are not polled")
        await repository.make_due(session, task.id, now_ms())
        await _audit(session, actor_id, "repoll", task)
    return {"mj_id": mj_id, "due": True}
