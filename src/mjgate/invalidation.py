"""When reference data (channels, prices, keys) changes, every in-memory copy of it must know.

A change made through mjgate's own code marks the data stale after its transaction commits
(`stale_after_commit`): at once in this process (a generation counter every cache compares), and
in other instances through the listeners: with Redis configured the event bus publishes a notice
(mjgate.events), and every other instance that receives it calls `mark_stale()`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mjgate.db.unit_of_work import unit_of

# One generation for the whole process: every Database and cache in it sees a change at once.
_generation = 0
_listeners: list[Callable[[], Awaitable[None]]] = []
_ONCE = "mjgate.invalidation"  # one notice per transaction, however many changes it made


def generation() -> int:
    return _generation


def mark_stale() -> None:
    """Every cache of this process reloads on its next use (also called for other instances' changes)."""
    global _generation
    _generation += 1


async def _changed() -> None:
    mark_stale()
    for listener in list(_listeners):
        await listener()


def stale_after_commit(session) -> None:
    """Call inside a write transaction that changes channels, prices, keys or users."""
    unit_of(session).after_commit(_changed, once=_ONCE)


def on_local_change(listener: Callable[[], Awaitable[None]]) -> None:
    """`await listener()` runs after each committed local change, before the request that made it
    answers (the event bus publishes it to other instances). A listener must not raise."""
    _listeners.append(listener)


def remove_listener(listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)
