"""Reference data in memory: channels, price tables, the banned-word list and the moderation blocks in
force, which every submit needs and which rarely change.

Read once and reused until something changes them. A change made through mjgate's own code
(the admin API, the CLI, the console) marks the data stale after its transaction commits
(mjgate.invalidation): at once in this process, and in every other instance through Redis when
MJGATE_REDIS_URL is set (the event bus carries the notice). Without Redis, other processes (a
`mjgate channel edit` beside a running server) are seen within REFERENCE_TTL_S.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from mjgate.billing.pricing import load_tables
from mjgate.clock import now_ms
from mjgate.channels import repository as channels
from mjgate.invalidation import generation
from mjgate.models import Channel
from mjgate.moderation import repository as moderation
from mjgate.moderation.words import EMPTY, BannedWords

REFERENCE_TTL_S = 5.0


@dataclass(frozen=True)
class Snapshot:
    channels: dict[int, Channel]  # enabled or not: follow-ups need their parent's channel whatever its state
    prices: dict[str, dict]
    generation: int
    loaded_at: float
    banned: BannedWords = EMPTY
    # user id -> (until, hits): blocks in force when loaded (moderation/policy.py). One ending
    # later is checked against the clock, so a block runs out even before the next reload.
    blocks: dict[int, tuple[int, int]] = field(default_factory=dict)


class ReferenceData:
    def __init__(self, db, ttl_s: float = REFERENCE_TTL_S):
        self.db = db
        self.ttl_s = ttl_s
        self._snapshot: Snapshot | None = None
        self._loading: asyncio.Lock = asyncio.Lock()

    def _fresh(self, snap: Snapshot | None) -> bool:
        return snap is not None and snap.generation == generation() and time.monotonic() - snap.loaded_at < self.ttl_s

    async def current(self) -> Snapshot:
        snap = self._snapshot
        if self._fresh(snap):
            return snap
        async with self._loading:  # one reload at a time; the others use its result
            if self._fresh(self._snapshot):
                return self._snapshot
            started = generation()
            async with self.db.read() as session:
                rows = await channels.all_channels(session)
                prices = await load_tables(session)
                banned = BannedWords([(group, word) for _, group, word in await moderation.all_words(session)])
                blocks = await moderation.blocks_in_force(session, now_ms())
            self._snapshot = Snapshot({c.id: c for c in rows}, prices, started, time.monotonic(), banned, blocks)
            return self._snapshot
