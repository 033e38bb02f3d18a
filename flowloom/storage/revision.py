"""The schema revision a database is at, read and stamped without loading Alembic.

Alembic (with Mako and Pygments) takes a tenth of a second and several megabytes to import, and
a server's start only needs two things from it: the newest revision of the packaged chain, to
compare with the database's, and a stamp of that revision on a database just built from the
models. The first is :data:`HEAD_REVISION` (a test checks it against Alembic's own head); the
second writes Alembic's version table as Alembic does. Alembic itself is loaded only when a
migration must really run (``flowloom.storage.migrate``).
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection

from flowloom.exceptions import StorageError

__all__ = ["HEAD_REVISION", "VERSION_TABLE", "read_revision", "stamp_head"]

HEAD_REVISION = "0009"
"""The newest revision in ``flowloom/storage/migrations/versions``; a new migration moves it
(``tests/storage/test_migrations.py`` fails until it does)."""

VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's version table, as ``alembic.ddl.impl.DefaultImpl.version_table_impl`` defines it."""


def read_revision(sync_conn: Connection) -> str | None:
    """The revision the connection's database is at; None when it was never stamped (or was
    migrated down to base). Raises StorageError when it has more than one head."""
    if not inspect(sync_conn).has_table(VERSION_TABLE.name):
        return None
    rows = sync_conn.execute(select(VERSION_TABLE.c.version_num)).scalars().all()
    if len(rows) > 1:
        raise StorageError(f"the database has several schema revisions: {', '.join(rows)}")
    return rows[0] if rows else None


def stamp_head(sync_conn: Connection) -> None:
    """Record :data:`HEAD_REVISION` in a database that has no version table yet (one just
    built from the models), inside the caller's transaction."""
    VERSION_TABLE.create(sync_conn)
    sync_conn.execute(VERSION_TABLE.insert().values(version_num=HEAD_REVISION))
