"""Every quota movement: a conditional UPDATE plus a ledger row in the same transaction.

Balances are never read-modify-written: `quota = quota - :p WHERE quota >= :p` and the row
count decide, so concurrent requests cannot overdraw. A task's charge is given back at most
once: the task row's `refunded_at` is claimed with a compare-and-set, and the ledger's unique
(task_id, kind) would refuse a second row even if that guard were bypassed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.billing import repository
from mjgate.billing.repository import ledger_balance, page_entries
from mjgate.errors import BadRequest, QuotaExhausted, TooManyInFlight
from mjgate.models import ApiKey, Task, User

__all__ = ["credit", "reserve", "record_charge", "give_back", "ledger_balance", "page_entries"]


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
    if not await repository.move_balance(session, user_id, amount):
        raise BadRequest("no such user, or the adjustment would make the balance negative")
    await repository.add_entry(session, user_id=user_id, kind=kind, amount=amount, memo=memo, actor_user_id=actor_user_id)


async def reserve(session: AsyncSession, user_id: int, key: ApiKey | None, price: int) -> None:
    """Take `price` from the user's balance and the key's limit, with an in-flight slot on each, or
    raise QuotaExhausted / TooManyInFlight.

    Called in the transaction that inserts the task (with holds_slot set); the ledger row is written
    by record_charge once the task has its id. A free task (price 0) is still counted as a request.
    """
    if not await repository.take_for_task(session, user_id, price):
        limit = await repository.at_in_flight_limit(session, User, user_id)
        if limit is not None:
            raise TooManyInFlight(f"too many unfinished tasks: this user may have {limit} queued or running at once")
        raise QuotaExhausted("insufficient quota: the user's balance does not cover this task")
    if key is not None and not await repository.take_from_key(session, key, price):
        limit = await repository.at_in_flight_limit(session, ApiKey, key.id)
        if limit is not None:
            raise TooManyInFlight(f"too many unfinished tasks: this key may have {limit} queued or running at once")
        raise QuotaExhausted("insufficient quota: this key's limit does not cover this task")


async def record_charge(session: AsyncSession, task: Task) -> None:
    if task.quota > 0:
        rule = getattr(task, "price_rule", None)
        memo = f"price rule {rule['name']}" if rule else ""  # which rule priced it, for later questions
        await repository.add_entry(session, user_id=task.user_id, token_id=task.token_id, task_id=task.id, kind="charge",
                             amount=-task.quota, memo=memo)


async def give_back(session: AsyncSession, task: Task, *, kind: str, memo: str = "", actor_user_id=None) -> bool:
    """Return a task's charge to the user and the key, once. True if this call did it.

    kind is "release" (the upstream refused the job) or "refund" (the task failed).
    """
    if kind not in ("release", "refund"):
        raise ValueError(kind)
    if not await repository.claim_give_back(session, task):
        return False
    amount = task.quota
    await repository.return_to_user(session, task.user_id, amount)
    if task.token_id is not None:
        await repository.return_to_key(session, task.token_id, amount)
    await repository.add_entry(session, user_id=task.user_id, token_id=task.token_id, task_id=task.id, kind=kind,
                         amount=amount, memo=memo, actor_user_id=actor_user_id)
    return True
