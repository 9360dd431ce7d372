"""The one source of "now", in epoch milliseconds, so tests can move time."""

import time

_offset_ms = 0


def now_ms() -> int:
    return int(time.time() * 1000) + _offset_ms


def advance(ms: int) -> None:
    """Test hook: move the gateway's clock forward."""
    global _offset_ms
    _offset_ms += ms


def reset() -> None:
    global _offset_ms
    _offset_ms = 0
