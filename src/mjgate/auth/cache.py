"""Recently authenticated callers (API keys, access tokens, console sessions) for a few seconds.

Every request authenticates, and reading the key and its owner was two queries of a handful;
caching them takes those queries off the hot path. A change made through mjgate (a key or user
disabled, a token reset, a logout) marks every entry stale at once (mjgate.invalidation), in
this process and, with Redis, in the others; a change made behind mjgate's back (SQL by hand, a
CLI run on another machine without Redis) is seen within `ttl_s`. Money is never decided here:
balances and key limits are checked by the reservation's own conditional UPDATEs.

Concurrent misses of one token share one load: when an entry expires under load, the next 32
requests with that key wait for a single read instead of sending 32 (they all miss at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from mjgate.invalidation import generation


class AuthCache:
    MAX_ENTRIES = 10_000

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], tuple[float, int, object]] = {}
        self._loading: dict[tuple[str, str], asyncio.Future] = {}

    def get(self, kind: str, token: str):
        entry = self._entries.get((kind, token))
        if entry is None or entry[0] < time.monotonic() or entry[1] != generation():
            return None
        return entry[2]

    async def get_or_load(self, kind: str, token: str, load: Callable[[], Awaitable[object]]):
        """The cached value, or `await load()` shared with every concurrent miss of the same token.
        A None result (an unknown token) is never cached; an exception reaches every waiter."""
        value = self.get(kind, token)
        if value is not None:
            return value
        slot = (kind, token)
        pending = self._loading.get(slot)
        if pending is None:
            pending = self._loading[slot] = asyncio.ensure_future(self._load(slot, load, generation()))
        return await asyncio.shield(pending)  # a waiter that gives up does not cancel the others' load

    async def _load(self, slot: tuple[str, str], load, started: int):
        try:
            value = await load()
            if value is not None:
                self.put(*slot, value, loaded_at=started)
            return value
        finally:
            self._loading.pop(slot, None)

    def put(self, kind: str, token: str, value, *, loaded_at: int | None = None) -> None:
        """`loaded_at`: the generation when the value was read (a change during the read makes it stale)."""
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()  # crude but bounded; the next requests refill it
        self._entries[(kind, token)] = (time.monotonic() + self.ttl_s,
                                        generation() if loaded_at is None else loaded_at, value)
