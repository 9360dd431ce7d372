"""The one place a task changes state (poller, upstream callback, fetch on demand, submit outcomes, admin acts).

Every write is a compare-and-set on the row as it was read (its `updated_at`, and the poller's
lease when one is given), and never touches a terminal task, so concurrent writers cannot move a
task backwards or refund it twice. A FAILURE refunds the task's charge in the same transaction.
Each change is recorded in the transaction's unit of work, which stages the client's webhook for
a visible change and announces the task after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.billing.ledger import give_back
from mjgate.clock import now_ms
from mjgate.db.unit_of_work import unit_of
from mjgate.models import Task
from mjgate.models.task import TERMINAL_STATUSES
from mjgate.moderation.policy import count_upstream_refusal
from mjgate.scheduler import fallback
from mjgate.scheduler import repository as slots
from mjgate.tasks import repository

POLL_FAST_MS = 2_000  # soon after submission and while progress moves
POLL_MAX_MS = 60_000  # a quiet task is still looked at every minute
POLL_BACKOFF_STEPS = 6  # 2 s doubling six times reaches the minute
SUBMIT_GRACE_MS = 120_000  # a task never handed upstream (a crash mid-submit) is settled after this


def submit_grace_ms(task_timeout_ms: int) -> int:
    """The grace before an unconfirmed submission is settled: never longer than the task timeout."""
    return min(SUBMIT_GRACE_MS, task_timeout_ms)
# What a client sees of a task: a change to any of these is worth a webhook; properties alone are not.
VISIBLE_FIELDS = ("status", "progress", "image_url", "video_url", "video_urls", "buttons", "fail_reason")
# Properties the gateway owns: an upstream's own values (its ids) never replace them.
GATEWAY_PROPERTIES = ("parentId",)


def next_poll_delay_ms(changed: bool, attempts_without_change: int) -> int:
    if changed:
        return POLL_FAST_MS
    return min(POLL_MAX_MS, POLL_FAST_MS * 2 ** min(attempts_without_change, POLL_BACKOFF_STEPS))


@dataclass
class Change:
    task: Task
    changed: bool
    refunded: bool = False


def snapshot_values(task: Task, snap: dict, now: int) -> dict:
    """The task columns an upstream snapshot implies (fields it does not mention keep their value)."""
    values = {k: snap[k] for k in ("status", "progress", "image_url", "video_url", "video_urls", "prompt_en",
                                   "description", "fail_reason", "buttons") if k in snap}
    if "properties" in snap:
        values["properties"] = {**(task.properties or {}),
                                **{k: v for k, v in snap["properties"].items() if k not in GATEWAY_PROPERTIES}}
    if task.action == "DESCRIBE" and snap.get("prompt") and values.get("status") == "SUCCESS":
        values["prompt"] = snap["prompt"]  # the four descriptions are the result
    new_status = values.get("status", task.status)
    if new_status in ("IN_PROGRESS", "SUCCESS", "FAILURE") and not task.start_time:
        values["start_time"] = snap.get("start_time") or now
    if new_status in TERMINAL_STATUSES:
        values["finish_time"] = snap.get("finish_time") or now
        if new_status == "SUCCESS":
            values["progress"] = "100%"
        if new_status == "FAILURE" and not values.get("fail_reason", task.fail_reason):
            values["fail_reason"] = "the upstream reported a failure without a reason"
    return values


def differs(task: Task, values: dict) -> bool:
    return any(getattr(task, k) != v for k, v in values.items())


def visible_change(task: Task, values: dict) -> bool:
    return any(k in values and getattr(task, k) != values[k] for k in VISIBLE_FIELDS)


async def apply_values(
    session: AsyncSession, task: Task, values: dict, *, lease_owner: str | None = None, refund_memo: str = ""
) -> Change:
    """Write `values` onto `task` if nobody else changed it since it was read; refund a FAILURE or a
    CANCEL once; a finished task gives back the slots it held (its user's, key's and channel's)."""
    if task.terminal:
        return Change(task, False)
    if values.get("status") == "FAILURE" and await fallback.reroute(session, task, values.get("fail_reason") or ""):
        await unit_of(session).changed(task)  # back in the queue as relax: the client sees NOT_START
        return Change(task, True)
    now = now_ms()
    changed = differs(task, values)
    visible = visible_change(task, values)
    terminal = values.get("status") in TERMINAL_STATUSES
    attempts = 0 if changed else task.poll_attempts + 1
    values = {
        **values,
        "updated_at": now,
        "poll_attempts": attempts,
        "upstream_missing": 0,
        "next_poll_at": None if terminal else now + next_poll_delay_ms(changed, attempts),
    }
    if terminal:
        values.update(lease_owner=None, lease_until=None)
    if not await repository.compare_and_set(session, task, values, lease_owner=lease_owner):
        return Change(task, False)
    for key, value in values.items():
        setattr(task, key, value)
    refunded = False
    if values.get("status") in ("FAILURE", "CANCEL"):
        memo = refund_memo or task.fail_reason[:500] or "cancelled"
        refunded = await give_back(session, task, kind="refund", memo=memo)
        if values.get("status") == "FAILURE" and not refund_memo:
            # The upstream's failure, not the gateway's: its moderation may have refused the prompt.
            await count_upstream_refusal(session, task, task.fail_reason)
    if terminal:
        await slots.release_slots(session, task)
    if changed:
        await unit_of(session).changed(task, visible=visible)
    return Change(task, changed, refunded)


async def quiet_polls(conn, tasks: list[Task], *, lease_owner: str) -> None:
    """Polled tasks whose upstream said nothing new: back them off and release them, a statement per
    backoff step instead of one per task (the values other writers own are not touched)."""
    now = now_ms()
    by_attempts: dict[int, list[int]] = {}
    for task in tasks:
        if not task.terminal:
            by_attempts.setdefault(min(task.poll_attempts + 1, POLL_BACKOFF_STEPS), []).append(task.id)
    for attempts, ids in by_attempts.items():
        await repository.record_quiet_polls(conn, ids, lease_owner=lease_owner, updated_at=now,
                                            next_poll_at=now + next_poll_delay_ms(False, attempts))


async def apply_snapshot(session: AsyncSession, task: Task, snap: dict, *, lease_owner: str | None = None) -> Change:
    return await apply_values(session, task, snapshot_values(task, snap, now_ms()), lease_owner=lease_owner)


async def fail(session: AsyncSession, task: Task, reason: str, *, lease_owner: str | None = None) -> Change:
    """The gateway itself ends a task (timeout, lost upstream, interrupted submission) and refunds it."""
    values = {"status": "FAILURE", "progress": "", "fail_reason": reason, "finish_time": now_ms(),
              "queued_at": None}
    return await apply_values(session, task, values, lease_owner=lease_owner, refund_memo=reason)


async def cancel(session: AsyncSession, task: Task, reason: str) -> Change:
    """The task was cancelled (by its owner, here or upstream): CANCEL, refunded once."""
    values = {"status": "CANCEL", "progress": "", "fail_reason": reason, "finish_time": now_ms(), "queued_at": None}
    return await apply_values(session, task, values, refund_memo=reason)
