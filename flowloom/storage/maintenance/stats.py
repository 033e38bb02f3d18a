"""What takes the space: rows and sizes per table (seed 003's storage query), database size."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from flowloom.storage.database import Database
from flowloom.storage.maintenance.files import sqlite_file


@dataclass(frozen=True, slots=True)
class TableStat:
    """One table's size."""

    name: str
    rows: int
    rows_exact: bool
    """False when ``rows`` is PostgreSQL's planner estimate rather than a count."""
    bytes: int | None
    """The table with its indexes and TOAST data; None where the database cannot tell."""


async def table_stats(db: Database, *, exact: bool = False) -> list[TableStat]:
    """Every table of the database's schema with its rows and bytes, largest first.

    PostgreSQL: bytes from ``pg_total_relation_size`` (table, indexes, TOAST) in the current
    schema; rows are the planner's estimate (``rows_exact`` False), counted instead when the
    table was never analyzed or ``exact`` is set. SQLite: rows are always counted; bytes come
    from the ``dbstat`` table when SQLite was built with it, else None. Counting reads whole
    tables, so on big databases it takes seconds.
    """
    if db.is_sqlite:
        return await _sqlite_table_stats(db)
    return await _postgres_table_stats(db, exact=exact)


async def _postgres_table_stats(db: Database, *, exact: bool) -> list[TableStat]:
    quote = db.engine.dialect.identifier_preparer.quote
    async with db.read() as session:
        schema = await session.scalar(text("SELECT current_schema()"))
        rows = (
            await session.execute(
                text(
                    "SELECT c.relname, c.reltuples, pg_total_relation_size(c.oid)"
                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
                )
            )
        ).all()
        stats = []
        for name, estimate, size in rows:
            # reltuples is -1 until the table is first vacuumed or analyzed.
            if exact or estimate < 0:
                count = await session.scalar(
                    text(f"SELECT count(*) FROM {quote(str(schema))}.{quote(name)}")
                )
                stats.append(TableStat(name, int(count or 0), True, int(size)))
            else:
                stats.append(TableStat(name, round(estimate), False, int(size)))
    return sorted(stats, key=lambda s: (-(s.bytes or 0), s.name))


async def _sqlite_table_stats(db: Database) -> list[TableStat]:
    quote = db.engine.dialect.identifier_preparer.quote
    async with db.read() as session:
        names = (
            await session.scalars(
                text(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            )
        ).all()
        sizes: dict[str, int] | None
        try:
            result = await session.execute(
                text(
                    "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat AS d"
                    " JOIN sqlite_master AS m ON m.name = d.name GROUP BY m.tbl_name"
                )
            )
            sizes = {str(name): int(size) for name, size in result.all()}
        except Exception as exc:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            if "dbstat" not in str(exc):
                raise
            sizes = None
        stats = []
        for name in names:
            count = await session.scalar(text(f"SELECT count(*) FROM {quote(name)}"))
            size = sizes.get(name, 0) if sizes is not None else None
            stats.append(TableStat(name, int(count or 0), True, size))
    return sorted(stats, key=lambda s: (-(s.bytes or 0), s.name))


async def database_bytes(db: Database) -> dict[str, int]:
    """The space the database takes on disk.

    SQLite: each file that exists (the database, ``-wal``, ``-shm``) by path. PostgreSQL: the
    whole database by name (``pg_database_size``), which includes every schema in it.
    """
    path = sqlite_file(db)
    if path is not None:
        sizes = {}
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            with contextlib.suppress(FileNotFoundError):
                sizes[str(file)] = file.stat().st_size
        return sizes
    if db.is_sqlite:
        return {}
    async with db.read() as session:
        row = (
            await session.execute(
                text("SELECT current_database(), pg_database_size(current_database())")
            )
        ).one()
    return {str(row[0]): int(row[1])}
