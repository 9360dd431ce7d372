"""The SQL of task retention (retention.py): find old finished tasks, remove them in one batch.

What goes and what stays (docs/reliability.md):
- the task rows go, with their webhook_outbox rows (delivery history of tasks that no longer exist);
- quota_ledger rows stay, every one, with their amounts: a row of a removed task gets task_id NULL
  and the task's public id appended to its memo, so balances still equal the ledger and the
  movement can still be traced. (NULL task_ids are outside the (task_id, kind) uniqueness, which
  guarded against a second refund of a task that now cannot be refunded at all.)
- audit_log rows stay (they name tasks by public id, with no foreign key): an admin's actions
  outlive the data they touched;
- a newer task whose parent is removed keeps its own row, with parent_id NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.models import IdempotencyKey, LedgerEntry, Task, User, WebhookDelivery
from mjgate.models.task import TERMINAL_STATUSES

MEMO_LIMIT = 512  # quota_ledger.memo's length


@dataclass(frozen=True)
class ExpiredTask:
    id: int
    mj_id: str
    stored_image: str


async def expired_tasks(session: AsyncSession, cutoff_ms: int, limit: int) -> list[ExpiredTask]:
    """Up to `limit` finished tasks that finished (or, without a finish time, last changed) before cutoff."""
    finished = func.coalesce(Task.finish_time, Task.updated_at)
    rows = await session.execute(
        select(Task.id, Task.mj_id, Task.stored_image)
        .where(Task.status.in_(sorted(TERMINAL_STATUSES)), finished < cutoff_ms)
        .order_by(Task.id)
        .limit(limit)
    )
    return [ExpiredTask(*row) for row in rows.all()]


async def remove_tasks(session: AsyncSession, tasks: list[ExpiredTask]) -> int:
    """Remove these task rows and what hangs on them (see the module docstring); the rows removed."""
    if not tasks:
        return 0
    ids = [t.id for t in tasks]
    note = {t.id: f"(task {t.mj_id}, removed by retention)" for t in tasks}
    await session.execute(update(Task).where(Task.parent_id.in_(ids)).values(parent_id=None))
    memo = case(
        (LedgerEntry.memo == "", case(note, value=LedgerEntry.task_id)),
        else_=LedgerEntry.memo + " " + case(note, value=LedgerEntry.task_id),
    )
    # Two statements: MariaDB applies SET clauses left to right, so a memo computed from task_id
    # in the statement that clears task_id would see NULL.
    await session.execute(update(LedgerEntry).where(LedgerEntry.task_id.in_(ids))
                          .values(memo=func.substr(memo, 1, MEMO_LIMIT)))
    await session.execute(update(LedgerEntry).where(LedgerEntry.task_id.in_(ids)).values(task_id=None))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.task_id.in_(ids)))
    # A removed task's Idempotency-Key goes with it (its 24 hours are long over by then).
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.task_id.in_(ids)))
    gone = Task.id.in_(ids), Task.status.in_(sorted(TERMINAL_STATUSES))
    per_user = (await session.execute(select(Task.user_id, func.count()).where(*gone).group_by(Task.user_id))).all()
    removed = await session.execute(delete(Task).where(*gone))
    for user_id, count in per_user:  # users.task_count stays each user's exact count
        await session.execute(update(User).where(User.id == user_id).values(task_count=User.task_count - count))
    return removed.rowcount or 0
