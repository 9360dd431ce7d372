"""What a channel can take right now, from its row as the reference data holds it.

Only the counters (in flight, sent today) need the database's word, and a claim gets it with a
conditional UPDATE (scheduler/repository.py); everything here is decided in memory.
"""

from __future__ import annotations

import re

from mjgate.models import Channel

DAY_MS = 86_400_000
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_active_hours(value: str | None) -> tuple[int, int] | None:
    """"HH:MM-HH:MM" (UTC) as minutes of the day; None when always active. Raises ValueError."""
    if value is None or value == "":
        return None
    match = _HOURS.match(value.strip())
    if match is None:
        raise ValueError("active hours must be HH:MM-HH:MM in UTC, e.g. 08:00-20:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError("active hours must not start and end at the same minute")
    return start, end


def within_active_hours(channel: Channel, now_ms: int) -> bool:
    window = parse_active_hours(channel.active_hours)
    if window is None:
        return True
    minute = (now_ms % DAY_MS) // 60_000
    start, end = window
    return start <= minute < end if start < end else (minute >= start or minute < end)  # a window may wrap midnight


def day_start(now_ms: int) -> int:
    return now_ms - now_ms % DAY_MS


def capacity(channel: Channel) -> int | None:
    """How many unfinished tasks the channel may hold (running plus queued upstream); None = unbounded."""
    if channel.max_running is None:
        return None
    return channel.max_running + (channel.max_queued or 0)


def counted(channel: Channel) -> bool:
    """Whether a task sent there must be counted in the database (a capacity or a daily cap)."""
    return channel.max_running is not None or channel.daily_cap is not None


def cooling(channel: Channel, now_ms: int) -> bool:
    return channel.cooldown_until is not None and channel.cooldown_until > now_ms


def open_now(channel: Channel, now_ms: int) -> bool:
    """Enabled, not in cooldown, inside its hours, and (as far as memory knows) not at its daily cap."""
    if not channel.enabled or cooling(channel, now_ms) or not within_active_hours(channel, now_ms):
        return False
    if channel.daily_cap is not None and channel.day_start == day_start(now_ms) and channel.day_count >= channel.daily_cap:
        return False
    return True


def free_share(channel: Channel) -> float:
    """Share of the capacity still free as memory last saw it (1.0 when unbounded)."""
    cap = capacity(channel)
    if cap is None or cap <= 0:
        return 1.0 if cap is None else 0.0
    return max(0.0, (cap - (channel.in_flight or 0)) / cap)
