"""Console login throttling: failures counted per username, per client address and overall.

Atomic in the sense that matters on one event loop: an attempt reserves its place in every bucket
before any password is hashed, with no await between the check and the reservation — so 48
concurrent wrong passwords for one user are not all evaluated, only the first MAX_PER_USERNAME.
A successful login gives its own reservation back and clears the username's failures; the
address's failures stay (one valid account must not reset a guesser's count).

In-process: each gateway process (worker) counts for itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from mjgate.errors import RateLimited

WINDOW_S = 300.0
MAX_PER_USERNAME = 10  # failures for one username, from anywhere
MAX_PER_ADDRESS = 30  # failures from one client address, whatever the usernames
MAX_OVERALL = 300  # failures of everyone together: a ceiling on a distributed spray
MAX_BUCKETS = 10_000  # bounded memory under a spray of usernames or addresses
MAX_CONCURRENT_HASHES = 2  # scrypt runs in threads; more at once only queues on the CPU


@dataclass
class Attempt:
    buckets: tuple[str, ...]
    at: float


class LoginThrottle:
    def __init__(self) -> None:
        self._entries: dict[str, deque[float]] = {}
        # Password hashes run off the event loop (asyncio.to_thread), at most this many at once.
        self.hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)

    def _recent(self, bucket: str, now: float) -> deque[float]:
        entries = self._entries.setdefault(bucket, deque())
        cutoff = now - WINDOW_S
        while entries and entries[0] < cutoff:
            entries.popleft()
        return entries

    def begin(self, username: str, address: str) -> Attempt:
        """Reserve an attempt, or raise RateLimited when any bucket is full. Synchronous on purpose."""
        now = time.monotonic()
        limits = ((f"user:{username}", MAX_PER_USERNAME, "this user"),
                  (f"addr:{address}", MAX_PER_ADDRESS, "your address"),
                  ("all", MAX_OVERALL, "the gateway"))
        for bucket, limit, who in limits:
            entries = self._recent(bucket, now)
            if len(entries) >= limit:
                retry = max(1, int(entries[0] + WINDOW_S - now) + 1)
                raise RateLimited(f"too many failed logins for {who}; try again in {retry} s", retry_after=str(retry))
        for bucket, _, _ in limits:
            self._entries[bucket].append(now)
        if len(self._entries) > MAX_BUCKETS:
            self._entries = {k: v for k, v in self._entries.items() if self._recent(k, now)}
        return Attempt(tuple(b for b, _, _ in limits), now)

    def succeeded(self, attempt: Attempt) -> None:
        for bucket in attempt.buckets:
            entries = self._entries.get(bucket)
            if entries is not None and attempt.at in entries:
                entries.remove(attempt.at)
        self._entries.pop(attempt.buckets[0], None)

    # A failure keeps its reservation: nothing to do.
