"""Recently authenticated callers (API keys, access tokens, console sessions) for a few seconds.

Every request authenticates, and reading the key and its owner was two queries of a handful;
caching them takes those queries off the hot path. A change made through mjgate (a key or user
disabled, a token reset, a logout) marks every entry stale at once (mjgate.invalidation), in
this process and, with Redis, in the others; a change made behind mjgate's back (SQL by hand, a
CLI run on another machine without Redis) is seen within `ttl_s`. Money is never decided here:
balances and key limits are checked by the reservation's own conditional UPDATEs.
"""

from __future__ import annotations

import time

from mjgate.invalidation import generation


class AuthCache:
    MAX_ENTRIES = 10_000

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], tuple[float, int, object]] = {}

    def get(self, kind: str, token: str):
        entry = self._entries.get((kind, token))
        if entry is None or entry[0] < time.monotonic() or entry[1] != generation():
            return None
        return entry[2]

    def put(self, kind: str, token: str, value) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()  # crude but bounded; the next requests refill it
        self._entries[(kind, token)] = (time.monotonic() + self.ttl_s, generation(), value)
