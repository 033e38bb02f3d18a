"""Load the fill's rows into a SQLite file, fast: what a bulk loader does, and no more.

One ``sqlite3`` connection and ONE transaction for the whole load, so a failure leaves the
tables as they were. While it lasts: the rollback journal in memory instead of the WAL (new
pages need no journal, so nothing is written twice) and no fsync; the secondary indexes of the
loaded tables are dropped and built again from their own DDL (``sqlite_master``) after the
rows, which sorts once instead of inserting into random places of a growing B-tree (cache
signatures); and rows go in as multi-row INSERTs: SQLite evaluates a table's ``IN (...)``
CHECK constraints by building a small table once per statement execution, which for
single-row statements was half of a run row's cost. Afterwards the file is back in WAL mode,
as ``flowloom.storage.database`` keeps it; the other settings belonged to this connection only.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

from benchmarks.fill_rows import TABLES, Chunk, LoadReport

__all__ = ["ROWS_PER_INSERT", "load"]

ROWS_PER_INSERT = 250
_CACHE_KIB = 1_000_000


def load(path: str, chunks: Iterable[Chunk]) -> LoadReport:
    """Write ``chunks`` into the migrated SQLite file at ``path``. Best with no other
    connection open on it: leaving WAL mode needs the file to itself."""
    report = LoadReport()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _loading_settings(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            indexes = _drop_indexes(conn, [table for table, _ in TABLES])
            inserts = [_Insert(conn, table, columns) for table, columns in TABLES]
            began = last = time.perf_counter()
            for chunk in chunks:
                for insert, rows in zip(inserts, chunk, strict=True):
                    insert(rows)
                now = time.perf_counter()
                report.rows += len(chunk)
                report.chunk_rates.append(len(chunk) / (now - last))
                last = now
            report.row_seconds = last - began
            for sql in indexes:
                conn.execute(sql)
            report.index_seconds = time.perf_counter() - last
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                conn.execute("ROLLBACK")
            raise
    finally:
        try:
            _restore_wal(conn)
        finally:
            conn.close()
    return report


def _loading_settings(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")  # every row still checked, at little cost
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA threads = 2")  # sorter threads for the index builds
    mode = conn.execute("PRAGMA journal_mode = MEMORY").fetchone()[0]
    if mode != "memory":
        # Another connection holds the file: the load still works, its pages written twice.
        print(f"fill: journal stays {mode} (the file is open elsewhere)", file=sys.stderr)


def _restore_wal(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"could not put the filled file back in WAL mode (it is in {mode})")


def _drop_indexes(conn: sqlite3.Connection, tables: Sequence[str]) -> list[str]:
    """Drop the tables' own indexes (those of PRIMARY KEY and UNIQUE constraints stay, they are
    part of the tables); their exact DDL, to create them again."""
    marks = ", ".join("?" for _ in tables)
    found = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({marks}) ORDER BY rowid",
        list(tables),
    ).fetchall()
    for name, _sql in found:
        conn.execute(f'DROP INDEX "{name}"')
    return [sql for _name, sql in found]


class _Insert:
    """``INSERT``s of one table's rows, ``ROWS_PER_INSERT`` rows per statement."""

    def __init__(self, conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> None:
        self.conn = conn
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self.per_statement = max(1, min(ROWS_PER_INSERT, limit // len(columns)))
        self._head = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES '
        self._row = f"({', '.join('?' for _ in columns)})"
        self._full = self._sql(self.per_statement)

    def _sql(self, rows: int) -> str:
        return self._head + ", ".join([self._row] * rows)

    def __call__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        step = self.per_statement
        full = len(rows) - len(rows) % step
        flat: Callable[[Iterable[tuple[Any, ...]]], Iterable[Any]] = chain.from_iterable
        self.conn.executemany(
            self._full, (tuple(flat(rows[at : at + step])) for at in range(0, full, step))
        )
        if full < len(rows):
            self.conn.execute(self._sql(len(rows) - full), tuple(flat(rows[full:])))
