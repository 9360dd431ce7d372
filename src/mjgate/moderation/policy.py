"""The moderation rules: refuse banned prompts before any charge, count every hit, block repeat offenders.

* A prompt with a banned word is refused before the price is reserved (the submit costs nothing) and
  the hit is recorded, with the word, for its user.
* An upstream's own moderation refusal (midjourney-proxy code 24 at submit, or a FAILURE whose reason
  says the prompt was banned) is refunded at once by the usual paths and counted the same way.
* Escalation: `hits_per_day` hits within a day (counted since the user's last block began) block the
  user from submitting for `block_minutes`, doubled for every block of the last BLOCK_MEMORY_DAYS
  (30, 60, 120 ... minutes, capped at MAX_DOUBLINGS doublings). Admins see blocks and lift them.

The policy is process-wide, set from the settings when the app or worker starts (configure()).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from mjgate.clock import now_ms
from mjgate.errors import Forbidden, GatewayError, Kind
from mjgate.invalidation import stale_after_commit
from mjgate.moderation import repository
from mjgate.moderation.words import BannedWords, Hit

DAY_MS = 24 * 3600 * 1000
BLOCK_MEMORY_DAYS = 30
MAX_DOUBLINGS = 10
# What an upstream's failure reason says when its own moderation refused the prompt.
UPSTREAM_BANNED = re.compile(r"banned|moderat|content polic|sensitive|敏感|违禁|违规", re.I)


@dataclass(frozen=True)
class Policy:
    hits_per_day: int = 5  # 0: hits are counted, nobody is blocked
    block_minutes: int = 60


_policy = Policy()


def configure(hits_per_day: int, block_minutes: int) -> None:
    global _policy
    _policy = Policy(max(0, hits_per_day), max(1, block_minutes))


def current() -> Policy:
    return _policy


class BannedPrompt(GatewayError):
    """The prompt contains a banned word (midjourney-proxy code 24, AceData 400 bad_request)."""

    status = 400
    code = "bad_request"
    kind = Kind.BANNED

    def __init__(self, hit: Hit):
        super().__init__(f"banned prompt: it contains the banned word {hit.word!r}")
        self.properties = {"bannedWord": hit.word, "bannedGroup": hit.group}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ensure_not_blocked(blocks: dict[int, tuple[int, int]], user_id: int) -> None:
    """`blocks`: the blocks in force (reference data: reloaded whenever one is added or lifted)."""
    until, hits = blocks.get(user_id, (0, 0))
    if until > now_ms():
        raise Forbidden(f"this account may not submit until {_iso(until)}: {hits} prompts with banned "
                        f"words within a day; an administrator can lift the block")


async def record_hit(conn, user_id: int, word: str, source: str, task_id: int | None = None) -> bool:
    """Count one hit; block the user when it is the hits_per_day-th. True if this hit blocked them."""
    now = now_ms()
    await repository.add_hit(conn, user_id, word, source, task_id, now)
    policy = current()
    if policy.hits_per_day <= 0 or await repository.active_block(conn, user_id, now) is not None:
        return False
    since = max(now - DAY_MS, await repository.last_block_start(conn, user_id) + 1)
    hits = await repository.count_hits(conn, user_id, since)
    if hits < policy.hits_per_day:
        return False
    earlier = await repository.count_blocks(conn, user_id, now - BLOCK_MEMORY_DAYS * DAY_MS)
    await repository.add_block(conn, user_id, hits, policy.block_minutes * 2 ** min(earlier, MAX_DOUBLINGS), now)
    stale_after_commit(conn)  # every instance's reference data reloads its blocks
    return True


async def screen(db, reference, user_id: int, *texts: str | None) -> None:
    """Before any charge: refuse a blocked user, and a prompt with a banned word (counting the hit).
    `reference`: the reference-data snapshot, which holds the word list and the blocks in force."""
    ensure_not_blocked(reference.blocks, user_id)
    words: BannedWords = reference.banned
    hit = words.find(*texts)
    if hit is None:
        return

    async def count(conn) -> None:
        await record_hit(conn, user_id, hit.word, "gateway")

    await db.run_transaction(count)
    raise BannedPrompt(hit)


async def count_upstream_refusal(conn, task, reason: str, *, banned: bool | None = None) -> None:
    """An upstream refused or failed the task: count it as a hit if its moderation did it
    (`banned` says so, or else the reason does). Called in the transaction that gives the charge back."""
    if banned is None:
        banned = bool(reason) and UPSTREAM_BANNED.search(reason) is not None
    if banned:
        await record_hit(conn, task.user_id, reason or "refused by the upstream's moderation", "upstream", task.id)
