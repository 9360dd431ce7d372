"""One engine factory for SQLite, PostgreSQL and MySQL/MariaDB.

SQLite gets two engines: a single writer connection whose transactions start with
BEGIN IMMEDIATE (a deferred BEGIN that later upgrades to a write fails at once with
"database is locked", and read-then-write without it loses updates), and a pool of
read-only readers that WAL lets run beside the writer. The server databases use one
engine for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from sqlalchemy.exc import DBAPIError

from mjgate.db.faults import is_connection_lost, is_deadlock, treat_as_disconnects
from mjgate.db.unit_of_work import UOW_KEY, CommitHooks, UnitOfWork

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_WRITER_WAIT_S = 60
POOL_RECYCLE_S = 1800  # below PostgreSQL's and MariaDB's usual idle timeouts
NO_BEGIN = "mjgate_no_begin"  # execution option: SQLite reads that run each statement on its own

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}


def normalize_url(url: str) -> str:
    """Map plain scheme names (postgresql://, mysql://, mariadb://) to their async drivers."""
    parsed = make_url(url)
    if "+" not in parsed.drivername and parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    if parsed.drivername.startswith("mysql") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def dialect_of(url: str) -> str:
    """'sqlite', 'postgresql' or 'mysql', without creating an engine."""
    return make_url(normalize_url(url)).get_backend_name()


def _no_tls_on_loopback(url: str) -> dict:
    """asyncpg asks every new connection for TLS first (sslmode "prefer"). To a server on this
    machine TLS protects nothing and costs a handshake per connection, so it is off there unless
    the URL asks for it (ssl= or sslmode=)."""
    parsed = make_url(url)
    if "ssl" in parsed.query or "sslmode" in parsed.query:
        return {}
    host = parsed.host or parsed.query.get("host") or ""
    if host in ("", "localhost", "::1") or host.startswith("127.") or host.startswith("/"):
        return {"ssl": False}
    return {}


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates its file but not the directory around it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """Owns the engines; hands out write sessions (a transaction) and read sessions."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 10, pg_statement_cache_size: int = 100):
        self.url = normalize_url(url)
        self.dialect = dialect_of(self.url)
        if self.dialect == "sqlite":
            ensure_sqlite_dir(self.url)
            self.write_engine = self._sqlite_engine(writer=True, pool_size=1)
            self.read_engine = self._sqlite_engine(writer=False, pool_size=max(2, min(pool_size, 8)))
        else:
            # No pre-ping: it cost a BEGIN; ROLLBACK round trip on every checkout (16% of a fetch).
            # Connections are recycled before servers drop idle ones, and a connection that died
            # anyway is invalidated by the pool and answered as 503 (db/faults.py).
            kwargs: dict = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_recycle": POOL_RECYCLE_S}
            if self.dialect == "postgresql":
                kwargs["connect_args"] = {"prepared_statement_cache_size": pg_statement_cache_size,
                                          **_no_tls_on_loopback(self.url)}
            elif self.dialect == "mysql":
                # READ COMMITTED: lease claims and conditional updates see other instances'
                # commits instead of a repeatable-read snapshot.
                kwargs.update(isolation_level="READ COMMITTED")
            self.write_engine = create_async_engine(self.url, **kwargs)
            self.read_engine = self.write_engine
        # Reads that need no snapshot (one statement, or a few that need not agree) skip the
        # transaction: no BEGIN before and no ROLLBACK after. MySQL's driver would spend two
        # round trips switching autocommit instead, so there they stay ordinary. SQLite's
        # connections are already in autocommit (the driver never begins; _on_begin does), so there
        # the BEGIN is simply not sent: switching its isolation level would cost two more trips to
        # aiosqlite's thread per read (8 instead of 5; 1.0-1.7 ms CPU a read instead of 0.7).
        if self.dialect == "sqlite":
            self.fast_read_engine = self.read_engine.execution_options(**{NO_BEGIN: True})
        elif self.dialect == "mysql":
            self.fast_read_engine = self.read_engine
        else:
            self.fast_read_engine = self.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        for engine in {self.write_engine, self.read_engine}:
            treat_as_disconnects(engine)
        self.hooks = CommitHooks()  # set by the resources that own this database
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def supports_skip_locked(self) -> bool:
        return self.dialect in ("postgresql", "mysql")

    def _sqlite_engine(self, *, writer: bool, pool_size: int) -> AsyncEngine:
        engine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=SQLITE_WRITER_WAIT_S,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection, _record):
            # Take transaction control away from the driver so "begin" below decides.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not writer:
                cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn):
            options = conn.get_execution_options()
            if options.get("isolation_level") != "AUTOCOMMIT" and not options.get(NO_BEGIN):
                conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on error; its unit of
        work announces what it changed after the commit."""
        async with self._writer() as session:
            uow = session.info[UOW_KEY] = UnitOfWork(session, self.hooks)
            async with session.begin():
                yield session
        await uow.committed()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a plain connection (the hot paths' Core statements), with the same
        unit of work as write()."""
        async with self.write_engine.connect() as conn:
            uow = conn.info[UOW_KEY] = UnitOfWork(conn, self.hooks)
            try:
                async with conn.begin():
                    yield conn
            finally:
                # conn.info lives with the pooled DBAPI connection: never hand this one on.
                conn.info.pop(UOW_KEY, None)
        await uow.committed()

    async def run_transaction(self, work, *, retries: int = 1):
        """`await work(conn)` in transaction(), again on a fresh connection if the connection was
        lost or the database broke a deadlock (the failed attempt rolled back whole). For writes that
        must not be dropped, such as an upstream's answer recorded after the job was taken."""
        for attempt in range(retries + 1):
            try:
                async with self.transaction() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if attempt == retries or not (is_connection_lost(exc) or is_deadlock(exc)):
                    raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads outside a transaction (no BEGIN/ROLLBACK round trips)."""
        async with self.fast_read_engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        """One round trip to the database (readiness); raises if it cannot answer."""
        async with self.read_engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
