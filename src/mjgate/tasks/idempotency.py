"""Idempotent submits: an `Idempotency-Key` makes a retried submit return the task of the first one.

The same key from the same user with the same request (route + canonical JSON body) within
KEY_TTL_MS answers the task the first request made, in the same shape, and charges nothing; the
same key with another request is refused with a conflict. The key's row is inserted in the
transaction that reserves the price and inserts the task, under a unique (user_id, key): of
concurrent duplicates exactly one commits; the others roll back whole (no charge, no task) and
answer the winner's task. A submit the upstream refused (released at once) frees its key, so a
retry with the same key really tries again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mjgate.clock import now_ms
from mjgate.errors import Conflict, Kind
from mjgate.models import Task
from mjgate.tasks import idempotency_repository as keys, repository
from mjgate.tasks.outcomes import Accepted, NeedsModal, Outcome, Uploaded

HEADER = "Idempotency-Key"
KEY_TTL_MS = 24 * 3600 * 1000
MAX_KEY_CHARS = 255


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    request_hash: str


def request_hash(route: str, body: object) -> str:
    """The request's identity: its route and its body as canonical JSON (key order and spacing do not count)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()


class AlreadySubmitted(Exception):
    """A duplicate of a committed submit: answer `outcome` (the first request's task)."""

    def __init__(self, outcome: Outcome):
        super().__init__("duplicate submit")
        self.outcome = outcome


def replay_of(task: Task) -> Outcome:
    """The first request's answer, from its task as it is now."""
    if task.status == "MODAL":
        return NeedsModal(task, task.description or "Waiting for window confirm")
    if task.action == "UPLOAD" and task.status == "SUCCESS":
        return Uploaded(task, list((task.properties or {}).get("urls") or []), task.description)
    queue = (task.properties or {}).get("numberOfQueues")
    queued = getattr(task, "queued_at", None) is not None  # still waiting in the gateway's queue
    return Accepted(task, task.description or "Submit success", queue if isinstance(queue, int) else None,
                    queued=queued)


async def _earlier(conn, user_id: int, idem: IdempotencyKey) -> Outcome | None:
    found = await keys.find(conn, user_id, idem.key)
    if found is None or found.created_at < now_ms() - KEY_TTL_MS:
        return None
    if found.request_hash != idem.request_hash:
        raise Conflict(f"{HEADER} {idem.key!r} was already used with a different request; use a new key "
                       f"for a new request", kind=Kind.KEY_REUSED)
    task = await repository.get(conn, found.task_id)
    return replay_of(task) if task is not None else None


async def replay(db, user_id: int, idem: IdempotencyKey | None) -> Outcome | None:
    """Before any work: the first request's answer if this is a retry of it (raises Conflict on another body)."""
    if idem is None:
        return None
    async with db.reading() as conn:
        return await _earlier(conn, user_id, idem)


async def claim(conn, user_id: int, idem: IdempotencyKey | None, task: Task) -> None:
    """Bind the key to the task, in the reserving transaction (IntegrityError if a duplicate won)."""
    if idem is None:
        return
    now = now_ms()
    await keys.forget_expired(conn, user_id, idem.key, now - KEY_TTL_MS)
    await keys.claim(conn, user_id, idem.key, idem.request_hash, task.id, now)


async def raise_if_claimed(db, user_id: int, idem: IdempotencyKey | None) -> None:
    """After a failed reserve: if a concurrent duplicate holds the key, answer its task."""
    if idem is None:
        return
    outcome = await replay(db, user_id, idem)
    if outcome is not None:
        raise AlreadySubmitted(outcome)


async def release(conn, task: Task) -> None:
    """A submit refused before any upstream took it frees its key."""
    await keys.release_task(conn, task.id)
