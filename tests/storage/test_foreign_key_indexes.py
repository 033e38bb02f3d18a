"""Every foreign key of the migrated schema is the leading part of an index (or of the primary
key or a unique constraint): deleting a user, a key or a workflow must never scan a table for
the rows that point to it. Read back from the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from flowloom.storage.database import Database


def _unindexed(sync_conn: Connection) -> list[str]:
    inspector = inspect(sync_conn)
    missing = []
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        leading = [list(inspector.get_pk_constraint(table)["constrained_columns"])]
        leading += [list(index["column_names"]) for index in inspector.get_indexes(table)]
        leading += [list(u["column_names"]) for u in inspector.get_unique_constraints(table)]
        for key in inspector.get_foreign_keys(table):
            columns = list(key["constrained_columns"])
            if not any(cols[: len(columns)] == columns for cols in leading):
                missing.append(f"{table}({', '.join(columns)})")
    return sorted(missing)


def _foreign_key_count(sync_conn: Connection) -> int:
    inspector = inspect(sync_conn)
    return sum(len(inspector.get_foreign_keys(t)) for t in inspector.get_table_names())


async def test_every_foreign_key_is_indexed(db: Database) -> None:
    async with db.engine.connect() as conn:
        missing = await conn.run_sync(_unindexed)
        keys = await conn.run_sync(_foreign_key_count)

    assert keys > 30  # the check saw the schema, not an empty database
    assert missing == []
