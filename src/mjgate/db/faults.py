"""Lost database connections: recognised, thrown out of the pool, and answered as "retry shortly".

Without a pre-ping per checkout (db/engine.py) a pooled connection the server dropped is found
dead at its first statement. SQLAlchemy invalidates connections its dialect calls disconnected;
`treat_as_disconnects` adds the cases it misses (asyncpg's "another operation is in progress",
left by an operation cancelled mid-flight), so no broken connection goes back to the pool. The
request that hit it is retried once when it may be (a read), else answered 503 with Retry-After;
a transaction that failed rolled back whole, so nothing is ever half-written.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

RETRY_AFTER_S = 1
# Driver messages that mean the connection cannot be used again, beyond each dialect's own list.
_LOST_MESSAGES = ("another operation is in progress", "connection is closed", "connection was closed",
                  "lost connection", "server has gone away", "terminating connection", "connection reset",
                  "broken pipe", "server closed the connection", "cannot switch to state")


def is_connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or any(m in str(exc).lower() for m in _LOST_MESSAGES)
    return False


_DEADLOCK_MESSAGES = ("deadlock detected", "deadlock found when trying to get lock")


def is_deadlock(exc: BaseException) -> bool:
    """The database broke a lock cycle by rolling this transaction back: running it again is safe."""
    return isinstance(exc, DBAPIError) and any(m in str(exc).lower() for m in _DEADLOCK_MESSAGES)


def treat_as_disconnects(engine) -> None:
    @event.listens_for(engine.sync_engine, "handle_error")
    def _lost(context) -> None:
        if any(m in str(context.original_exception).lower() for m in _LOST_MESSAGES):
            context.is_disconnect = True
