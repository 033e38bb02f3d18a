"""A database the test can take away and give back, on PostgreSQL and on SQLite.

- PostgreSQL: the engine's Database reaches the server through a ``TcpProxy``; ``cut()`` drops
  every connection and refuses new ones (as a server that went away), ``restore()`` listens
  again.
- SQLite: another connection takes the write lock (``BEGIN EXCLUSIVE``) and holds it, and the
  Database's busy timeout is short, so every write fails with "database is locked" past it
  (reads go on: WAL lets them); ``restore()`` ends that transaction. That connection is in
  this process; ``sqlite_in_another_process`` is for what only another process shows.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pgkit import POSTGRES_URL, drop_postgres_schema, make_postgres_database
from tcpproxy import TcpProxy

from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database

__all__ = ["Outage", "outage_database", "sqlite_in_another_process"]

SQLITE_BUSY_TIMEOUT_MS = 200


class Outage:
    """``db`` and the switch that takes its database away (``cut``) and back (``restore``)."""

    def __init__(
        self,
        kind: str,
        db: Database,
        *,
        proxy: TcpProxy | None = None,
        path: Path | None = None,
    ) -> None:
        self.kind = kind
        self.db = db
        self._proxy = proxy
        self._path = path
        self._holder: sqlite3.Connection | None = None

    def cut(self) -> None:
        if self._proxy is not None:
            self._proxy.cut()
            return
        assert self._path is not None
        holder = sqlite3.connect(
            self._path, isolation_level=None, timeout=10, check_same_thread=False
        )
        holder.execute("BEGIN EXCLUSIVE")
        self._holder = holder

    def restore(self) -> None:
        if self._proxy is not None:
            self._proxy.restore()
            return
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.execute("COMMIT")
            holder.close()


@asynccontextmanager
async def outage_database(kind: str, folder: Path) -> AsyncIterator[Outage]:
    """A migrated database of ``kind`` whose outage the test controls (for PostgreSQL, call
    ``pgkit.require_postgres()`` first, outside the event loop)."""
    if kind == "sqlite":
        path = folder / "flowloom.db"
        db = Database(f"sqlite:///{path}", sqlite_busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
        await upgrade_database(db)
        outage = Outage(kind, db, path=path)
        try:
            yield outage
        finally:
            outage.restore()
            await db.dispose()
        return
    target = urlsplit(POSTGRES_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    schema = f"t_{secrets.token_hex(6)}"
    # The schema is made directly; the engine's own Database goes through the proxy.
    await (await make_postgres_database(schema)).dispose()
    proxied = POSTGRES_URL.replace(target.netloc.rpartition("@")[2], proxy.address, 1)
    db = Database(proxied, connect_args={"server_settings": {"search_path": schema}})
    try:
        await upgrade_database(db)
        yield Outage(kind, db, proxy=proxy)
    finally:
        proxy.restore()
        await db.dispose()
        proxy.close()
        await drop_postgres_schema(schema)


_OTHER_PROCESS = """
import json, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
rows = [connection.execute(sql).fetchall() for sql in json.loads(sys.argv[2])]
connection.close()
print(json.dumps(rows))
"""


def sqlite_in_another_process(path: Path, statements: list[str]) -> list[list[list[Any]]]:
    """Run ``statements`` on the SQLite file ``path`` in a new Python process, one connection
    closed at the end; each statement's rows.

    Another process, not another connection: SQLite shares one process's file locks between
    its connections, so only another process sees what this one really holds on the file, and
    reads only what was committed to it.
    """
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(path), json.dumps(statements)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows: list[list[list[Any]]] = json.loads(done.stdout)
    return rows
