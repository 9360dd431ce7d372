"""Per-key request rate limits: a token bucket in GCRA form, in-process or shared through Redis.

GCRA keeps one number per key, the "theoretical arrival time" (TAT): each allowed request pushes
it `interval` further, and a request is refused while the TAT is more than `burst` intervals ahead
of now. With `limit` requests per `period`, interval = period / limit and burst = limit: a client
may send `limit` requests at once, then one every `interval`; sustained, that is `limit` per
`period` (a window that starts with a full bucket can see up to twice that).

With Redis (MJGATE_REDIS_URL) the check is one Lua script on the Redis clock, so every instance
shares the limit. If Redis fails (at start or later) the limiter falls back to the in-process bucket
(fails open towards a per-instance limit, never towards refusing everyone), logs it, and tries Redis
again at most once every RETRY_REDIS_S; /readyz reports it as `"redis": "degraded"`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

KEY_PREFIX = "mjgate:rl:"
MAX_LOCAL_KEYS = 100_000
RETRY_REDIS_S = 1.0  # while Redis is down, how long the limiter stays local before trying it again  # beyond this, expired entries are swept before adding more


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float  # 0 when allowed


def _gcra(tat: float, now: float, interval: float, burst: int) -> tuple[bool, float, int, float]:
    """(allowed, new tat, remaining, retry after) for one request at `now` (any time unit)."""
    tat = max(tat, now)
    new_tat = tat + interval
    allow_at = new_tat - burst * interval
    if now < allow_at:
        return False, tat, 0, allow_at - now
    return True, new_tat, int((now - allow_at) // interval), 0.0


class LocalRateLimiter:
    """The in-process bucket: exact within one process, independent per process."""

    def __init__(self, limit: int, period_s: float = 60.0, clock=time.monotonic):
        self.limit = limit
        self.period_s = period_s
        self.interval = period_s / limit if limit > 0 else 0.0
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def hit(self, key: str) -> Decision:
        return self.hit_now(key)

    def hit_now(self, key: str) -> Decision:
        if self.limit <= 0:
            return Decision(True, 0, 0, 0.0)
        now = self._clock()
        if len(self._tat) >= MAX_LOCAL_KEYS and key not in self._tat:
            self._sweep(now)
        allowed, tat, remaining, retry = _gcra(self._tat.get(key, now), now, self.interval, self.limit)
        self._tat[key] = tat
        return Decision(allowed, self.limit, remaining, retry)

    def _sweep(self, now: float) -> None:
        # A key whose TAT is in the past is back to a full bucket: forgetting it changes nothing.
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    async def close(self) -> None:
        pass


# KEYS[1] = bucket key; ARGV[1] = interval in microseconds; ARGV[2] = burst.
# Returns {allowed (0/1), remaining, retry after in microseconds}. Uses the Redis clock so
# instances with skewed clocks still agree.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor((now - allow_at) / interval), 0}
"""


class RedisRateLimiter:
    """The shared bucket: one Redis key per client, updated atomically by a script."""

    def __init__(self, redis_url: str, limit: int, period_s: float = 60.0, clock=time.monotonic):
        from mjgate.events import redis_client

        self.limit = limit
        self.period_s = period_s
        self.interval_us = max(1, int(period_s * 1_000_000 / limit)) if limit > 0 else 0
        self._redis = redis_client(redis_url)
        self._script = self._redis.register_script(_GCRA_LUA)
        self._fallback = LocalRateLimiter(limit, period_s)
        self._clock = clock
        self._degraded = False
        self._retry_at = 0.0  # while degraded, Redis is tried again from this time on

    @property
    def status(self) -> str:
        return "degraded" if self._degraded else "ok"

    async def hit(self, key: str) -> Decision:
        if self.limit <= 0:
            return Decision(True, 0, 0, 0.0)
        if self._degraded and self._clock() < self._retry_at:
            # Not every request pays for a connection attempt to a Redis that is down.
            return self._fallback.hit_now(key)
        try:
            allowed, remaining, retry_us = await self._script(keys=[KEY_PREFIX + key],
                                                              args=[self.interval_us, self.limit])
        except Exception as exc:  # Redis down or unreachable: keep serving with a per-instance limit
            if not self._degraded:
                log.warning("rate limiter: redis unavailable, using the in-process limit", error=str(exc))
                self._degraded = True
            self._retry_at = self._clock() + RETRY_REDIS_S
            return self._fallback.hit_now(key)
        if self._degraded:
            log.info("rate limiter: redis is back")
            self._degraded = False
        return Decision(bool(int(allowed)), self.limit, int(remaining), int(retry_us) / 1_000_000)

    async def close(self) -> None:
        await self._redis.aclose()


RateLimiter = LocalRateLimiter | RedisRateLimiter


def build_rate_limiter(limit_per_minute: int, redis_url: str | None = None) -> RateLimiter:
    if redis_url and limit_per_minute > 0:
        return RedisRateLimiter(redis_url, limit_per_minute)
    return LocalRateLimiter(limit_per_minute)


def retry_after_header(decision: Decision) -> str:
    return str(max(1, math.ceil(decision.retry_after_s)))
