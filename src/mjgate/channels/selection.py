"""Which channels may take a new task, in the order to try them."""

from __future__ import annotations

import random

from mjgate.models import Channel
from mjgate.scheduler.capacity import free_share


def eligible(channel: Channel, group: str, mode: str, action: str) -> bool:
    return (
        channel.enabled
        and group in (channel.groups or [])
        and mode in (channel.modes or [])
        and (channel.actions is None or action in channel.actions)
    )


def health_factor(channel: Channel) -> float:
    """How much to trust a channel: its success rate (smoothed), damped by a current failure streak,
    and a little less when its capacity is mostly taken. 1.0 for a new, idle, unbounded channel."""
    ok, failed = channel.success_count or 0, channel.failure_count or 0
    rate = (ok + 1) / (ok + failed + 1)
    streak = channel.consecutive_failures or 0
    return rate / (1 + streak) * (0.25 + 0.75 * free_share(channel))


def failover_order(channels: list[Channel], rng: random.Random | None = None) -> list[Channel]:
    """Highest priority first; inside a priority, a weighted random order where the weight is the
    operator's weight times the channel's health (health_factor).

    Each channel draws key u^(1/w) and the keys sort descending: the first pick is weighted by
    weight, and the rest follow in a weighted order for failover (Efraimidis-Spirakis).
    Weight 0 keeps a channel as a last resort within its priority.
    """
    rng = rng or random
    def key(channel: Channel) -> tuple[int, float]:
        weight = (channel.weight or 0) * health_factor(channel)
        draw = rng.random() ** (1.0 / weight) if weight > 0 else -1.0
        return (channel.priority, draw)

    return sorted(channels, key=key, reverse=True)
