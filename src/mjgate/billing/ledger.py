"""Every quota movement, each one a conditional UPDATE plus a ledger row in the same transaction.

Balances are never read-modify-written: `quota = quota - :p WHERE quota >= :p` and the row
count decide, so concurrent requests cannot overdraw. A task's charge is given back at most
once: the task row's `refunded_at` is claimed with a compare-and-set, and the ledger's unique
(task_id, kind) would refuse a second row even if that guard were bypassed.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.clock import now_ms
from mjgate.errors import BadRequest, QuotaExhausted
from mjgate.models import ApiKey, LedgerEntry, Task, User


def _entry(session: AsyncSession, **fields) -> None:
    session.add(LedgerEntry(created_at=now_ms(), memo=fields.pop("memo", ""), **fields))


async def credit(
    session: AsyncSession, user_id: int, amount: int, *, kind: str = "topup", memo: str = "", actor_user_id=None
) -> None:
    """Admin top-up (amount > 0) or adjustment (either sign; a debit may not overdraw)."""
    if kind not in ("topup", "adjust"):
        raise BadRequest("kind must be topup or adjust")
    if amount == 0:
        raise BadRequest("amount must not be 0")
    if kind == "topup" and amount < 0:
        raise BadRequest("a top-up must be positive; use an adjustment to take quota away")
    query = update(User).where(User.id == user_id).values(quota=User.quota + amount, updated_at=now_ms())
    if amount < 0:
        query = query.where(User.quota >= -amount)
    if (await session.execute(query)).rowcount != 1:
        raise BadRequest("no such user, or the adjustment would make the balance negative")
    _entry(session, user_id=user_id, kind=kind, amount=amount, memo=memo, actor_user_id=actor_user_id)


async def reserve(session: AsyncSession, user_id: int, key: ApiKey | None, price: int) -> None:
    """Take `price` from the user's balance and the key's limit, or raise QuotaExhausted.

    Called in the transaction that inserts the task; the ledger row is written by
    record_charge once the task has its id.
    """
    # Every submitted task counts as one request of the user (free ones too), in the same UPDATE.
    if price <= 0:
        await session.execute(update(User).where(User.id == user_id).values(request_count=User.request_count + 1))
        return
    taken = await session.execute(
        update(User)
        .where(User.id == user_id, User.quota >= price)
        .values(quota=User.quota - price, used_quota=User.used_quota + price, request_count=User.request_count + 1)
    )
    if taken.rowcount != 1:
        raise QuotaExhausted("insufficient quota: the user's balance does not cover this task")
    if key is not None:
        query = update(ApiKey).where(ApiKey.id == key.id).values(used_quota=ApiKey.used_quota + price)
        if not key.unlimited:
            query = query.where(ApiKey.remain_quota >= price).values(remain_quota=ApiKey.remain_quota - price)
        if (await session.execute(query)).rowcount != 1:
            raise QuotaExhausted("insufficient quota: this key's limit does not cover this task")


def record_charge(session: AsyncSession, task: Task) -> None:
    if task.quota > 0:
        _entry(session, user_id=task.user_id, token_id=task.token_id, task_id=task.id, kind="charge", amount=-task.quota)


async def give_back(session: AsyncSession, task: Task, *, kind: str, memo: str = "", actor_user_id=None) -> bool:
    """Return a task's charge to the user and the key, once. True if this call did it.

    kind is "release" (the upstream refused the job) or "refund" (the task failed).
    """
    if kind not in ("release", "refund"):
        raise ValueError(kind)
    claimed = await session.execute(
        update(Task)
        .where(Task.id == task.id, Task.refunded_at.is_(None), Task.quota > 0)
        .values(refunded_at=now_ms())
    )
    if claimed.rowcount != 1:
        return False
    amount = task.quota
    await session.execute(
        update(User)
        .where(User.id == task.user_id)
        .values(quota=User.quota + amount, used_quota=User.used_quota - amount)
    )
    if task.token_id is not None:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == task.token_id)
            .values(
                used_quota=ApiKey.used_quota - amount,
                # An unlimited key's remain_quota means nothing; leave it alone.
                remain_quota=case(
                    (ApiKey.unlimited.is_(False), ApiKey.remain_quota + amount), else_=ApiKey.remain_quota
                ),
            )
        )
    _entry(
        session,
        user_id=task.user_id,
        token_id=task.token_id,
        task_id=task.id,
        kind=kind,
        amount=amount,
        memo=memo,
        actor_user_id=actor_user_id,
    )
    return True


async def ledger_balance(session: AsyncSession, user_id: int) -> int:
    total = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.user_id == user_id)
    return int(await session.scalar(total))


async def page_entries(
    session: AsyncSession, *, offset: int = 0, limit: int = 20, user_id: int | None = None, kind: str | None = None
) -> tuple[list[tuple[LedgerEntry, str | None, str | None]], int]:
    """Newest ledger rows first, each with its user's name and its task's public id, and the total."""
    conditions = []
    if user_id is not None:
        conditions.append(LedgerEntry.user_id == user_id)
    if kind is not None:
        conditions.append(LedgerEntry.kind == kind)
    total = await session.scalar(select(func.count()).select_from(LedgerEntry).where(*conditions))
    rows = await session.execute(
        select(LedgerEntry, User.username, Task.mj_id)
        .join(User, User.id == LedgerEntry.user_id)
        .outerjoin(Task, Task.id == LedgerEntry.task_id)
        .where(*conditions)
        .order_by(LedgerEntry.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [tuple(row) for row in rows.all()], int(total or 0)
