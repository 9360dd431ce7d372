"""When reference data (channels, prices, keys) changes, every in-memory copy of it must know.

A change made through mjgate's own code marks the data stale after its transaction commits
(`stale_after_commit`): at once in this process (a generation counter every cache compares), and
in other instances through the listeners (the event bus forwards the notice over Redis).
"""

from __future__ import annotations

from mjgate.db.unit_of_work import unit_of

# One generation for the whole process: every Database and cache in it sees a change at once.
_generation = 0
_listeners: list = []


def generation() -> int:
    return _generation


def mark_stale() -> None:
    global _generation
    _generation += 1


def stale_after_commit(session) -> None:
    """Call inside a write transaction that changes channels, prices, keys or users."""
    def done() -> None:
        mark_stale()
        for listener in list(_listeners):
            listener()
    unit_of(session).after_commit(done)


def on_local_change(listener) -> None:
    """`listener()` runs after each local change (the event bus forwards it to other instances)."""
    _listeners.append(listener)


def remove_listener(listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)
