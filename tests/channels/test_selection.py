"""channels/selection.py: which channels may take a task, and in which order they are tried."""

from __future__ import annotations

import random
from collections import Counter

from mjgate.channels.selection import eligible, failover_order
from mjgate.models import Channel


def _channel(cid: int, **fields) -> Channel:
    base = dict(id=cid, name=f"c{cid}", base_url="http://x", status="enabled", priority=0, weight=1,
                groups=["default"], modes=["fast", "relax", "turbo"], actions=None)
    return Channel(**{**base, **fields})


def test_eligibility_by_status_group_mode_and_action():
    assert eligible(_channel(1), "default", "fast", "IMAGINE")
    assert not eligible(_channel(1, status="auto_disabled"), "default", "fast", "IMAGINE")
    assert not eligible(_channel(1, groups=["vip"]), "default", "fast", "IMAGINE")
    assert not eligible(_channel(1, modes=["relax"]), "default", "fast", "IMAGINE")
    assert not eligible(_channel(1, actions=["DESCRIBE"]), "default", "fast", "IMAGINE")


def test_priority_first_then_weighted_order():
    rng = random.Random(3)
    high, heavy, light, spare = (_channel(1, priority=10), _channel(2, weight=9), _channel(3, weight=1),
                                 _channel(4, weight=0))
    firsts = Counter()
    for _ in range(2_000):
        order = failover_order([spare, light, heavy, high], rng)
        assert order[0] is high and order[-1] is spare  # priority wins; weight 0 is the last resort
        firsts[order[1].id] += 1
    assert 0.85 < firsts[2] / 2_000 < 0.95  # heavy goes before light about 9 times in 10
