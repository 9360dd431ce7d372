"""Billing SQL: balances, key limits, the ledger, and the price tables kept in options.

Every balance change is one conditional UPDATE whose row count says whether it happened; the
rules that decide which ones run, and in what order, are in billing/ledger.py.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, bindparam, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.clock import now_ms
from mjgate.models import ApiKey, LedgerEntry, Option, Task, User


_ENTRY_FIELDS = ("user_id", "token_id", "task_id", "kind", "amount", "memo", "actor_user_id")
_INSERT_ENTRY = insert(LedgerEntry.__table__)


async def add_entry(conn, **fields) -> None:
    """One ledger row (on a connection or a session: a Core INSERT either way)."""
    row = {name: fields.get(name) for name in _ENTRY_FIELDS}
    row["memo"] = row["memo"] or ""
    await conn.execute(_INSERT_ENTRY, {**row, "created_at": now_ms()})


async def move_balance(session: AsyncSession, user_id: int, amount: int) -> bool:
    """Add `amount` (either sign) to a balance; a debit only if the balance covers it."""
    query = update(User).where(User.id == user_id).values(quota=User.quota + amount, updated_at=now_ms())
    if amount < 0:
        query = query.where(User.quota >= -amount)
    return (await session.execute(query)).rowcount == 1


def _room(table):
    """The row has room for one more unfinished task (no limit, or under it)."""
    return or_(table.c.max_in_flight.is_(None), table.c.in_flight < table.c.max_in_flight)


# The statements of every submit and refund, built once with bind parameters: building a statement
# per call cost more CPU than the database spends running it (bench/floor.py, docs/benchmarks.md).
_USERS, _KEYS, _TASKS = User.__table__, ApiKey.__table__, Task.__table__
_PRICE = bindparam("price", type_=BigInteger)
_AMOUNT = bindparam("amount", type_=BigInteger)
_TAKE_FOR_TASK = (
    update(_USERS).where(_USERS.c.id == bindparam("user_id"), _USERS.c.quota >= _PRICE, _room(_USERS))
    .values(quota=_USERS.c.quota - _PRICE, used_quota=_USERS.c.used_quota + _PRICE,
            request_count=_USERS.c.request_count + 1, task_count=_USERS.c.task_count + 1,
            in_flight=_USERS.c.in_flight + 1)
)
_TAKE_FROM_UNLIMITED_KEY = (update(_KEYS).where(_KEYS.c.id == bindparam("key_id"), _room(_KEYS))
                            .values(used_quota=_KEYS.c.used_quota + _PRICE, in_flight=_KEYS.c.in_flight + 1))
_TAKE_FROM_KEY = (_TAKE_FROM_UNLIMITED_KEY.where(_KEYS.c.remain_quota >= _PRICE)
                  .values(remain_quota=_KEYS.c.remain_quota - _PRICE))
_CLAIM_GIVE_BACK = (update(_TASKS).where(_TASKS.c.id == bindparam("task_id"), _TASKS.c.refunded_at.is_(None),
                                         _TASKS.c.quota > 0)
                    .values(refunded_at=bindparam("now")))
_RETURN_TO_USER = (update(_USERS).where(_USERS.c.id == bindparam("user_id"))
                   .values(quota=_USERS.c.quota + _AMOUNT, used_quota=_USERS.c.used_quota - _AMOUNT))
_RETURN_TO_KEY = update(_KEYS).where(_KEYS.c.id == bindparam("key_id")).values(
    used_quota=_KEYS.c.used_quota - _AMOUNT,
    # An unlimited key's remain_quota means nothing; leave it alone.
    remain_quota=case((_KEYS.c.unlimited.is_(False), _KEYS.c.remain_quota + _AMOUNT), else_=_KEYS.c.remain_quota),
)


async def take_for_task(session: AsyncSession, user_id: int, price: int) -> bool:
    """Take a task's price from the balance if it covers it and the user is under their in-flight
    limit; count the request, the task (inserted in the same transaction: users.task_count stays its
    exact count) and the slot it holds until it finishes. One UPDATE for all of it: the user's row
    is the one every submit of theirs writes anyway."""
    return (await session.execute(_TAKE_FOR_TASK, {"user_id": user_id, "price": price})).rowcount == 1


async def take_from_key(session: AsyncSession, key: ApiKey, price: int) -> bool:
    """Count a price and a slot against a key, within its limits unless it is unlimited."""
    query = _TAKE_FROM_UNLIMITED_KEY if key.unlimited else _TAKE_FROM_KEY
    return (await session.execute(query, {"key_id": key.id, "price": price})).rowcount == 1


async def at_in_flight_limit(session: AsyncSession, model, row_id: int) -> int | None:
    """The in-flight limit a user or key (model User or ApiKey) has reached, or None if it has room."""
    row = (await session.execute(select(model.in_flight, model.max_in_flight).where(model.id == row_id))).first()
    if row is None or row.max_in_flight is None or row.in_flight < row.max_in_flight:
        return None
    return int(row.max_in_flight)


async def claim_give_back(session: AsyncSession, task: Task) -> bool:
    """Mark a charged task as given back, once: the compare-and-set that guards every refund."""
    return (await session.execute(_CLAIM_GIVE_BACK, {"task_id": task.id, "now": now_ms()})).rowcount == 1


async def return_to_user(session: AsyncSession, user_id: int, amount: int) -> None:
    await session.execute(_RETURN_TO_USER, {"user_id": user_id, "amount": amount})


async def return_to_key(session: AsyncSession, key_id: int, amount: int) -> None:
    await session.execute(_RETURN_TO_KEY, {"key_id": key_id, "amount": amount})


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


async def options(session: AsyncSession, keys: list[str]) -> dict:
    rows = await session.scalars(select(Option).where(Option.key.in_(keys)))
    return {row.key: row.value for row in rows}


async def ensure_option(conn, key: str) -> None:
    """Create the option's row (empty) if it has none, so that it can be locked."""
    if await conn.scalar(select(Option.key).where(Option.key == key)) is None:
        await conn.execute(insert(Option).values(key=key, value=None, updated_at=now_ms()))


async def locked_option(session: AsyncSession, key: str):
    """The option's value, its row locked until the transaction ends (ensure_option made it)."""
    return await session.scalar(select(Option.value).where(Option.key == key).with_for_update())


async def save_option(session: AsyncSession, key: str, value) -> None:
    row = await session.get(Option, key)
    if row is None:
        session.add(Option(key=key, value=value, updated_at=now_ms()))
    else:
        row.value = value
        row.updated_at = now_ms()
