"""The one place a task changes state from upstream news (poller, upstream callback, fetch on demand).

Every write is a compare-and-set on the row as it was read (its `updated_at`, and the poller's
lease when one is given), and never touches a terminal task, so concurrent writers cannot move a
task backwards or refund it twice. A FAILURE refunds the task's charge in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.billing.ledger import give_back
from mjgate.clock import now_ms
from mjgate.models import Task
from mjgate.models.task import STATUSES, TERMINAL_STATUSES

POLL_FAST_MS = 2_000  # soon after submission and while progress moves
POLL_MAX_MS = 60_000  # a quiet task is still looked at every minute
SUBMIT_GRACE_MS = 120_000  # a task never handed upstream (a crash mid-submit) is settled after this


def next_poll_delay_ms(changed: bool, attempts_without_change: int) -> int:
    if changed:
        return POLL_FAST_MS
    return min(POLL_MAX_MS, POLL_FAST_MS * 2 ** min(attempts_without_change, 6))


def _text(value, limit: int = 65_535) -> str:
    return str(value)[:limit] if value is not None else ""


def _progress(value) -> str:
    text = _text(value, 8).strip()
    return text


@dataclass
class Change:
    task: Task
    changed: bool
    refunded: bool = False


def snapshot_values(task: Task, snap: dict, now: int) -> dict:
    """The task columns an upstream task JSON implies (unknown or missing fields keep the old value)."""
    values: dict = {}
    status = snap.get("status")
    if status in STATUSES:
        values["status"] = status
    if "progress" in snap:
        values["progress"] = _progress(snap.get("progress"))
    for column, key in (("image_url", "imageUrl"), ("video_url", "videoUrl"), ("prompt_en", "promptEn"),
                        ("description", "description"), ("fail_reason", "failReason")):
        if key in snap and snap[key] is not None:
            values[column] = _text(snap[key])
    if isinstance(snap.get("videoUrls"), list):
        values["video_urls"] = [v.get("url") if isinstance(v, dict) else str(v) for v in snap["videoUrls"]]
    if isinstance(snap.get("buttons"), list):
        values["buttons"] = [b for b in snap["buttons"] if isinstance(b, dict) and b.get("customId")]
    if isinstance(snap.get("properties"), dict):
        values["properties"] = {**(task.properties or {}), **snap["properties"]}
    if task.action == "DESCRIBE" and snap.get("prompt") and values.get("status") == "SUCCESS":
        values["prompt"] = _text(snap["prompt"])  # the four descriptions are the result
    new_status = values.get("status", task.status)
    if new_status in ("IN_PROGRESS", "SUCCESS", "FAILURE") and not task.start_time:
        values["start_time"] = _ms(snap.get("startTime")) or now
    if new_status in TERMINAL_STATUSES:
        values["finish_time"] = _ms(snap.get("finishTime")) or now
        if new_status == "SUCCESS":
            values["progress"] = "100%"
        if new_status == "FAILURE" and not values.get("fail_reason", task.fail_reason):
            values["fail_reason"] = "the upstream reported a failure without a reason"
    return values


def _ms(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


async def apply_values(
    session: AsyncSession, task: Task, values: dict, *, lease_owner: str | None = None, refund_memo: str = ""
) -> Change:
    """Write `values` onto `task` if nobody else changed it since it was read; refund a FAILURE once."""
    if task.terminal:
        return Change(task, False)
    now = now_ms()
    changed = any(getattr(task, k) != v for k, v in values.items())
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
    query = (
        update(Task)
        .where(Task.id == task.id, Task.updated_at == task.updated_at, Task.status.not_in(TERMINAL_STATUSES))
        .values(**values)
    )
    if lease_owner is not None:
        query = query.where(Task.lease_owner == lease_owner)
    if (await session.execute(query)).rowcount != 1:
        return Change(task, False)
    for key, value in values.items():
        setattr(task, key, value)
    refunded = False
    if values.get("status") == "FAILURE":
        refunded = await give_back(session, task, kind="refund", memo=refund_memo or task.fail_reason[:500])
    return Change(task, changed, refunded)


async def apply_snapshot(session: AsyncSession, task: Task, snap: dict, *, lease_owner: str | None = None) -> Change:
    return await apply_values(session, task, snapshot_values(task, snap, now_ms()), lease_owner=lease_owner)


async def fail(session: AsyncSession, task: Task, reason: str, *, lease_owner: str | None = None) -> Change:
    """The gateway itself ends a task (timeout, lost upstream, interrupted submission) and refunds it."""
    values = {"status": "FAILURE", "progress": "", "fail_reason": reason, "finish_time": now_ms()}
    return await apply_values(session, task, values, lease_owner=lease_owner, refund_memo=reason)
