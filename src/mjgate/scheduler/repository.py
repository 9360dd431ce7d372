"""Scheduler SQL: channel slots and daily counts, the in-flight slots a task holds, the gateway queue,
and the circuit breaker's state on the channel row.

Every counter moves by a conditional UPDATE whose row count decides, and every slot a task holds is
given back by a compare-and-set on the task's own flag, so a slot is never given back twice and
never outlives its task, whoever finishes it.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, case, func, or_, select, update

from mjgate.models import ApiKey, Channel, Task, User
from mjgate.models.task import TERMINAL_STATUSES
from mjgate.scheduler.capacity import day_start
from mjgate.tasks.record import COLUMNS, TaskRecord, from_row


# ---------------------------------------------------------------- channel slots
#
# A channel's occupancy is the number of its tasks holding a slot (tasks.channel_slot), counted
# under a lock on the channel row taken only by claims. Giving a slot back touches the task row
# alone, so a finishing task never waits for (or deadlocks with) a claim on its channel; locks are
# always taken task -> user -> key, and the channel row only by claims, before any task row.

async def claim_channel(conn, channel: Channel, now: int) -> bool | None:
    """Room for one more task on a channel with a capacity or a daily cap? None when it has none;
    else whether the task holds a counted slot (the channel has a capacity). Nothing is written
    when there is no room."""
    row = (await conn.execute(select(Channel.status, Channel.max_running, Channel.max_queued)
                              .where(Channel.id == channel.id).with_for_update())).first()
    if row is None or row.status != "enabled":
        return None
    values: dict = {}
    if row.max_running is not None:
        used = await conn.scalar(select(func.count()).select_from(Task)
                                 .where(Task.channel_slot.is_(True), Task.channel_id == channel.id))
        if used >= row.max_running + (row.max_queued or 0):
            return None
        values["in_flight"] = used + 1  # for the listings; the count above is what decides
    query = update(Channel).where(Channel.id == channel.id)
    if channel.daily_cap is not None:
        today = day_start(now)
        query = query.where(or_(Channel.daily_cap.is_(None), Channel.day_start != today,
                                Channel.day_count < Channel.daily_cap))
        values.update(day_count=case((Channel.day_start == today, Channel.day_count + 1), else_=1), day_start=today)
    if values and (await conn.execute(query.values(**values))).rowcount != 1:
        return None
    return row.max_running is not None


async def assign_channel(conn, task, channel_id: int, channel_slot: bool, now: int) -> None:
    await conn.execute(update(Task).where(Task.id == task.id)
                       .values(channel_id=channel_id, channel_slot=channel_slot, updated_at=now))
    task.channel_id, task.channel_slot, task.updated_at = channel_id, channel_slot, now


# The statements every finishing task runs, built once (bench/statements.py: building one per call
# costs more CPU than running it).
_TASKS, _USERS, _KEYS = Task.__table__, User.__table__, ApiKey.__table__
_FREE_CHANNEL_SLOT = (update(_TASKS).where(_TASKS.c.id == bindparam("task_id"), _TASKS.c.channel_slot.is_(True))
                      .values(channel_slot=False))
_FREE_TASK_SLOT = (update(_TASKS).where(_TASKS.c.id == bindparam("task_id"), _TASKS.c.holds_slot.is_(True))
                   .values(holds_slot=False))
_USER_SLOT_BACK = update(_USERS).where(_USERS.c.id == bindparam("row_id")).values(in_flight=_USERS.c.in_flight - 1)
_KEY_SLOT_BACK = update(_KEYS).where(_KEYS.c.id == bindparam("row_id")).values(in_flight=_KEYS.c.in_flight - 1)


async def release_channel(conn, task) -> None:
    """Give back the channel slot of a task (finished, or not taken by that channel)."""
    if task.channel_slot:
        await conn.execute(_FREE_CHANNEL_SLOT, {"task_id": task.id})
        task.channel_slot = False


async def slots_in_use(conn) -> dict[int, int]:
    """Counted slots per channel, now (for the listings)."""
    rows = await conn.execute(select(Task.channel_id, func.count()).where(Task.channel_slot.is_(True))
                              .group_by(Task.channel_id))
    return {channel_id: int(n) for channel_id, n in rows if channel_id is not None}


async def release_slots(conn, task) -> None:
    """A task has finished: give back every slot it holds (its user's and key's, its channel's), once."""
    if task.holds_slot:
        freed = await conn.execute(_FREE_TASK_SLOT, {"task_id": task.id})
        if freed.rowcount == 1:
            await conn.execute(_USER_SLOT_BACK, {"row_id": task.user_id})
            if task.token_id is not None:
                await conn.execute(_KEY_SLOT_BACK, {"row_id": task.token_id})
        task.holds_slot = False
    await release_channel(conn, task)


async def recount_channel(session, channel: Channel) -> None:
    """After an operator gave a channel a capacity (in this ORM session): the tasks already there
    hold its slots."""
    await session.flush()
    active = and_(Task.channel_id == channel.id, Task.status.not_in(TERMINAL_STATUSES))
    await session.execute(update(Task).where(active).values(channel_slot=True))
    channel.in_flight = (await slots_in_use(session)).get(channel.id, 0)


# ---------------------------------------------------------------- the gateway queue

QUEUED = Task.queued_at.is_not(None)


async def enqueue(conn, task, request: dict, queued_at: int, now: int) -> bool:
    """Put a task that no channel could take now in the gateway queue (it keeps its charge)."""
    result = await conn.execute(
        update(Task).where(Task.id == task.id, Task.upstream_id.is_(None), Task.status.not_in(TERMINAL_STATUSES))
        .values(queued_at=queued_at, upstream_request=request, channel_id=None, channel_slot=False,
                next_poll_at=None, lease_owner=None, lease_until=None, updated_at=now))
    if result.rowcount != 1:
        return False
    task.queued_at, task.upstream_request, task.channel_id, task.channel_slot = queued_at, request, None, False
    task.next_poll_at, task.updated_at = None, now
    return True


async def fair_queue(conn, limit: int) -> list[TaskRecord]:
    """Queued tasks in the order to dispatch them: round-robin across users, FIFO within a user.

    Each user's n-th queued task goes after every user's (n-1)-th, so one heavy user's backlog
    never holds back the others; among equals the user served longest ago goes first (each pass
    starts a new round, so the round-robin carries on across passes).
    """
    rank = func.row_number().over(partition_by=Task.user_id, order_by=(Task.queued_at, Task.id)).label("rank")
    ranked = select(Task.id.label("id"), Task.user_id.label("user_id"), Task.queued_at.label("queued_at"),
                    rank).where(QUEUED).subquery("ranked")
    order = (select(ranked.c.id).join(User, User.id == ranked.c.user_id)
             .order_by(ranked.c.rank, func.coalesce(User.last_dispatch_at, 0), ranked.c.queued_at, ranked.c.id)
             .limit(limit))
    ids = list(await conn.scalars(order))
    if not ids:
        return []
    rows = {row.id: from_row(row) for row in await conn.execute(select(*COLUMNS).where(Task.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


async def take_from_queue(conn, task, channel_id: int, channel_slot: bool, now: int, next_poll_at: int) -> bool:
    """Take a queued task out of the queue for one channel; False if another instance took it first."""
    result = await conn.execute(
        update(Task).where(Task.id == task.id, QUEUED, Task.status.not_in(TERMINAL_STATUSES))
        .values(queued_at=None, dispatched_at=now, channel_id=channel_id, channel_slot=channel_slot,
                next_poll_at=next_poll_at, updated_at=now))
    if result.rowcount != 1:
        return False
    await conn.execute(update(User).where(User.id == task.user_id).values(last_dispatch_at=now))
    task.channel_id, task.channel_slot, task.next_poll_at, task.updated_at = channel_id, channel_slot, next_poll_at, now
    task.queued_at, task.dispatched_at = None, now
    return True


async def queue_positions(conn, tasks: list) -> dict[int, int]:
    """How many queued tasks are ahead of each queued one (oldest first)."""
    positions = {}
    for task in tasks:
        if task.queued_at is None:
            continue
        ahead = or_(Task.queued_at < task.queued_at, and_(Task.queued_at == task.queued_at, Task.id < task.id))
        positions[task.id] = int(await conn.scalar(select(func.count()).select_from(Task).where(QUEUED, ahead)))
    return positions


async def queue_depth(conn) -> int:
    return int(await conn.scalar(select(func.count()).select_from(Task).where(QUEUED)))


async def queued_before(conn, before: int, limit: int) -> list[TaskRecord]:
    """Tasks that have waited in the queue since before `before` (they are past the longest wait)."""
    query = select(*COLUMNS).where(QUEUED, Task.queued_at < before).order_by(Task.queued_at).limit(limit)
    return [from_row(row) for row in await conn.execute(query)]


async def oldest_queued_at(conn) -> int | None:
    return await conn.scalar(select(func.min(Task.queued_at)).where(QUEUED))


# ---------------------------------------------------------------- the circuit breaker

async def start_cooldown(conn, channel_id: int, until: int, *, disable: bool, now: int) -> bool:
    """Open the breaker of an enabled channel (and auto-disable it after too many cooldowns in a row)."""
    values: dict = {"cooldown_until": until, "cooldowns_in_row": Channel.cooldowns_in_row + 1, "updated_at": now}
    if disable:
        values["status"] = "auto_disabled"
    result = await conn.execute(update(Channel).where(Channel.id == channel_id, Channel.status == "enabled")
                                .values(**values))
    return result.rowcount == 1


async def close_breaker(conn, channel_id: int, now: int) -> None:
    """The channel answered: no cooldown, no streak of cooldowns."""
    await conn.execute(update(Channel).where(Channel.id == channel_id,
                                             or_(Channel.cooldowns_in_row > 0, Channel.cooldown_until.is_not(None)))
                       .values(cooldowns_in_row=0, cooldown_until=None, updated_at=now))


async def reenable(conn, channel_id: int, now: int) -> bool:
    """A channel the breaker disabled answers its probe again."""
    result = await conn.execute(update(Channel).where(Channel.id == channel_id, Channel.status == "auto_disabled")
                                .values(status="enabled", cooldowns_in_row=0, cooldown_until=None,
                                        consecutive_failures=0, updated_at=now))
    return result.rowcount == 1


async def auto_disabled(conn) -> list[Channel]:
    return list(await conn.scalars(select(Channel).where(Channel.status == "auto_disabled")))


async def channel_row(conn, channel_id: int):
    """The columns the mode fallback decides by, read in the transaction (None if gone)."""
    return (await conn.execute(select(Channel.id, Channel.name, Channel.mode_fallback, Channel.modes)
                               .where(Channel.id == channel_id))).first()


async def set_fast_exhausted(conn, channel_id: int, until: int | None) -> None:
    await conn.execute(update(Channel).where(Channel.id == channel_id).values(fast_exhausted_until=until))
