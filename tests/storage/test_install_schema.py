"""An empty database created from the models ends exactly where the migration chain ends."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pgkit import drop_postgres_schema, make_postgres_database
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from flowloom.storage.database import Database
from flowloom.storage.migrate import (
    current_revision,
    head_revision,
    install_or_upgrade,
    pending_differences,
    upgrade_database,
)


@asynccontextmanager
async def _fresh(db_kind: str, folder: Path) -> AsyncIterator[Database]:
    """One more empty database of ``db_kind``, dropped afterwards."""
    if db_kind == "sqlite":
        database = Database(f"sqlite:///{folder / f'{secrets.token_hex(4)}.db'}")
        try:
            yield database
        finally:
            await database.dispose()
        return
    schema = f"t_{secrets.token_hex(6)}"
    database = await make_postgres_database(schema)
    try:
        yield database
    finally:
        await database.dispose()
        await drop_postgres_schema(schema)


def _schema(sync_conn: Connection) -> dict[str, Any]:
    """Everything the inspector tells of every table, in a comparable form."""
    found = inspect(sync_conn)
    shapes: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        by_name: Callable[[dict[str, Any]], str] = lambda item: str(item.get("name"))  # noqa: E731
        shapes[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in found.get_columns(table)
            ),
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (
                    str(fk["name"]),
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    str(sorted(fk.get("options", {}).items())),
                )
                for fk in found.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (
                    str(ix["name"]),
                    tuple(str(c) for c in ix["column_names"]),
                    bool(ix["unique"]),
                    str(sorted((k, str(v)) for k, v in ix.get("dialect_options", {}).items())),
                )
                for ix in found.get_indexes(table)
            ),
            "uniques": sorted(
                (str(uq["name"]), tuple(uq["column_names"]))
                for uq in found.get_unique_constraints(table)
            ),
            "checks": sorted(by_name(ck) for ck in found.get_check_constraints(table)),
        }
    return shapes


async def _described(db: Database) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_schema)


async def test_an_empty_database_is_created_as_the_chain_builds_it(
    db_kind: str, tmp_path: Path
) -> None:
    async with _fresh(db_kind, tmp_path) as chained, _fresh(db_kind, tmp_path) as created:
        await upgrade_database(chained)
        assert await install_or_upgrade(created) is True

        assert await current_revision(created) == head_revision()
        assert await pending_differences(created) == []
        assert await _described(created) == await _described(chained)


async def test_a_database_with_tables_is_migrated_along_the_chain(
    db_kind: str, tmp_path: Path
) -> None:
    async with _fresh(db_kind, tmp_path) as db:
        await upgrade_database(db, "0004")

        assert await install_or_upgrade(db) is False
        assert await current_revision(db) == head_revision()
        assert await pending_differences(db) == []
        assert await install_or_upgrade(db) is False  # at the head: nothing left to do


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_a_created_sqlite_file_uses_incremental_auto_vacuum(
    db_kind: str, tmp_path: Path
) -> None:
    async with _fresh(db_kind, tmp_path) as db:
        await install_or_upgrade(db)
        async with db.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA auto_vacuum")).scalar_one()
            foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
    assert mode == 2
    assert foreign_keys == 1
