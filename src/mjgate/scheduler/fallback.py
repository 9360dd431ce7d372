"""Mode fallback (opt-in per channel): an account out of fast hours runs fast tasks as relax.

When a channel with `mode_fallback` reports a fast (or turbo) task failed for want of fast hours,
the task is not failed: it goes back to the gateway queue as relax, repriced at the relax ratio
(the difference given back in a `reprice` ledger row), and the channel is marked out of fast hours
for a while, so new fast tasks for it go out as relax from the start (priced as relax). Either way
the task says so in `properties.modeFallback`.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from mjgate.billing import repository as billing
from mjgate.billing.pricing import OPTION_MODE_RATIOS, load_tables
from mjgate.clock import now_ms
from mjgate.invalidation import stale_after_commit
from mjgate.models import Channel
from mjgate.scheduler import repository as slots
from mjgate.tasks import repository as tasks

# Midjourney's own words when an account has no fast time left ("Credits exhausted", "no fast hours").
OUT_OF_FAST = re.compile(r"credits exhausted|fast hours|fast time|out of fast", re.I)
FAST_MODES = ("fast", "turbo")
EXHAUSTED_FOR_MS = 3_600_000  # how long a channel is taken as out of fast hours after it said so
FALLBACK = "relax"


def out_of_fast(reason: str) -> bool:
    return bool(reason) and OUT_OF_FAST.search(reason) is not None


def fast_exhausted(channel: Channel, now: int) -> bool:
    """The channel runs fast tasks as relax for now."""
    return bool(channel.mode_fallback) and (channel.fast_exhausted_until or 0) > now \
        and FALLBACK in (channel.modes or [])


def note(mode: str) -> str:
    return f"{mode}->{FALLBACK}"


def repriced(tables: dict, quota: int, mode: str) -> int:
    """The relax price of a task charged `quota` in `mode` (every ratio multiplies the price)."""
    ratios = tables[OPTION_MODE_RATIOS]
    ratio = Decimal(str(ratios.get(FALLBACK, 1))) / Decimal(str(ratios.get(mode, 1) or 1))
    return min(quota, int((Decimal(quota) * ratio).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


async def reroute(session, task, reason: str) -> bool:
    """If `task` failed for want of fast hours on a channel with mode fallback: queue it again as
    relax, repriced, and mark the channel. True if it did (the caller then does not fail it)."""
    if task.mode not in FAST_MODES or not out_of_fast(reason) or not task.upstream_request \
            or task.channel_id is None or task.refunded_at is not None:
        return False
    channel = await slots.channel_row(session, task.channel_id)
    if channel is None or not channel.mode_fallback or FALLBACK not in (channel.modes or []):
        return False
    now = now_ms()
    price = repriced(await load_tables(session), task.quota, task.mode)
    request = {**task.upstream_request, "mode": FALLBACK}
    values = dict(status="NOT_START", progress="0%", upstream_id=None, mode=FALLBACK, quota=price,
                  fail_reason="", description=f"out of fast hours on channel {channel.name}: queued again as relax",
                  properties={**(task.properties or {}), "modeFallback": note(task.mode)}, next_poll_at=None,
                  lease_owner=None, lease_until=None, upstream_missing=0, poll_attempts=0, updated_at=now,
                  image_url="", buttons=[], start_time=None)
    if not await tasks.compare_and_set(session, task, values):
        return False
    difference = task.quota - price
    for key, value in values.items():
        setattr(task, key, value)
    await slots.release_channel(session, task)
    await slots.enqueue(session, task, request, now, now)
    # The channel row before the user's: the order claims take them in (scheduler/repository.py).
    await slots.set_fast_exhausted(session, channel.id, now + EXHAUSTED_FOR_MS)
    if difference > 0:
        await billing.return_to_user(session, task.user_id, difference)
        if task.token_id is not None:
            await billing.return_to_key(session, task.token_id, difference)
        await billing.add_entry(session, user_id=task.user_id, token_id=task.token_id, task_id=task.id,
                                kind="reprice", amount=difference, memo=f"{values['properties']['modeFallback']}: priced as {FALLBACK}")
    stale_after_commit(session)
    return True
