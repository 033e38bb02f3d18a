"""The connection to the database: one engine, read sessions and write transactions.

SQLite is set up for many concurrent writers without "database is locked": WAL journal,
``synchronous=NORMAL``, foreign keys on, a busy timeout, and write transactions that take the
write lock when they begin (``BEGIN IMMEDIATE``) so two writers never deadlock upgrading a read
lock. Inside one process writers also queue on an asyncio lock, so they wait without polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flowloom.exceptions import StorageError
from flowloom.settings import Settings, normalize_database_url

__all__ = ["WRITE_TRANSACTION", "Database"]

WRITE_TRANSACTION = "flowloom_write"
"""Execution option: this connection's transactions write (``BEGIN IMMEDIATE`` on SQLite)."""


class Database:
    """The engine and the two ways to use it: ``read()`` and ``write()``.

    ``write()`` is one transaction: it commits when the block ends and rolls back on error, so a
    failed operation leaves nothing half-written.
    """

    def __init__(
        self,
        url: str,
        *,
        sqlite_busy_timeout_ms: int = 30_000,
        pool_size: int = 10,
        echo: bool = False,
        connect_args: dict[str, Any] | None = None,
    ) -> None:
        self.url = normalize_database_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        engine_args: dict[str, Any] = {"echo": echo, "connect_args": dict(connect_args or {})}
        if self.dialect == "postgresql":
            engine_args.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_args)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, busy_timeout_ms=sqlite_busy_timeout_ms)
        write_engine = self.engine.execution_options(**{WRITE_TRANSACTION: True})
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writes = async_sessionmaker(write_engine, expire_on_commit=False, autoflush=False)
        self._write_lock: asyncio.Lock | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        if settings.is_sqlite:
            settings.ensure_data_dir()
        return cls(
            settings.resolved_database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.database_pool_size,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; nothing it does is committed."""
        async with self._reads() as session:
            try:
                yield session
            except (OperationalError, DBAPIError) as exc:
                raise _storage_error(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        if not self.is_sqlite:
            async with self._writes() as session, session.begin():
                yield session
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock, self._writes() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Connect once; StorageError naming the database if it cannot be reached."""
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (OSError, OperationalError, DBAPIError) as exc:
            raise _storage_error(exc) from None

    async def dispose(self) -> None:
        await self.engine.dispose()


def _storage_error(exc: Exception) -> StorageError:
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return StorageError(f"database error: {reason}")


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so BEGIN is ours (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Only takes effect on a new, empty file; existing files are converted by migrate.
            cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(WRITE_TRANSACTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
