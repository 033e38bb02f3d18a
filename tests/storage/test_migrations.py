"""The migration chain builds exactly the schema the models describe, and runs both ways."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Float, MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

from flowloom.storage.database import Database
from flowloom.storage.migrate import (
    current_revision,
    downgrade_database,
    head_revision,
    pending_differences,
    upgrade_database,
)
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.revision import HEAD_REVISION
from flowloom.storage.tables import metadata


def _table_names(sync_conn: Connection) -> set[str]:
    return set(inspect(sync_conn).get_table_names())


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_table_names)


async def test_models_and_migrations_agree(db: Database) -> None:
    assert await pending_differences(db) == []
    assert await _tables(db) == set(metadata.tables) | {"alembic_version"}


async def test_current_revision_is_the_head(db: Database) -> None:
    assert head_revision() == "0009"
    # What a server's start compares with, without loading Alembic: a new migration moves both.
    assert head_revision() == HEAD_REVISION
    assert await current_revision(db) == head_revision()


def _rebuild_usage_with_drift(sync_conn: Connection) -> None:
    """Recreate ``usage`` with one drift of each kind the comparison must notice."""
    copy = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    drifted = copy.tables["usage"]
    drifted.c.cost.type = Float()
    drifted.constraints -= {
        c for c in drifted.constraints if c.name == "ck_usage_cost_not_negative"
    }
    drifted.indexes -= {i for i in drifted.indexes if i.name == "ix_usage_provider_model"}
    drifted.append_column(Column("stray", Float()))
    metadata.tables["usage"].drop(sync_conn)
    drifted.create(sync_conn)


def _restore_usage(sync_conn: Connection) -> None:
    sync_conn.exec_driver_sql("DROP TABLE usage")
    metadata.tables["usage"].create(sync_conn)


async def test_comparison_notices_drift(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_rebuild_usage_with_drift)
    try:
        found = {(d.kind, d.table, d.detail.split()[0]) for d in await pending_differences(db)}
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(_restore_usage)

    assert found == {
        ("modify_type", "usage", "cost:"),
        ("add_constraint", "usage", "CheckConstraint"),
        ("add_index", "usage", "Index"),
        ("remove_column", "usage", "column"),
    }
    assert await pending_differences(db) == []


async def test_downgrade_to_base_and_up_again(db: Database) -> None:
    await downgrade_database(db, "base")
    assert await _tables(db) == {"alembic_version"}
    assert await current_revision(db) is None

    await upgrade_database(db)
    await upgrade_database(db)  # a second upgrade finds nothing to do
    assert await current_revision(db) == head_revision()
    assert await pending_differences(db) == []


async def _twin(db: Database) -> Database:
    """A second Database on the same SQLite file or PostgreSQL schema, as another process has."""
    if db.is_sqlite:
        return Database(db.url)
    async with db.engine.connect() as conn:
        schema = (await conn.exec_driver_sql("SELECT current_schema()")).scalar_one()
    return Database(db.url, connect_args={"server_settings": {"search_path": schema}})


async def test_two_processes_upgrading_at_once_both_succeed(db: Database) -> None:
    await downgrade_database(db, "base")
    twin = await _twin(db)
    try:
        await asyncio.gather(upgrade_database(db), upgrade_database(twin))
        assert await current_revision(twin) == head_revision()
    finally:
        await twin.dispose()
    assert await pending_differences(db) == []


def _sqlite_pragma(path: Path, name: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


async def test_an_old_sqlite_file_is_switched_to_incremental_auto_vacuum(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE notes (body TEXT)")
        old.execute("INSERT INTO notes VALUES ('kept')")
    assert _sqlite_pragma(path, "auto_vacuum") == 0

    db = Database(f"sqlite:///{path}")
    try:
        await upgrade_database(db)
        async with db.engine.connect() as conn:
            kept = (await conn.exec_driver_sql("SELECT body FROM notes")).scalars().all()
            # The migration turned foreign keys off on its connection; it must be on again.
            foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        # One connection in the pool: the check above ran on the one the migration used.
        assert isinstance(db.engine.pool, QueuePool)
        assert db.engine.pool.checkedin() == 1
    finally:
        await db.dispose()

    assert _sqlite_pragma(path, "auto_vacuum") == 2
    assert kept == ["kept"]
    assert foreign_keys == 1


async def test_a_new_sqlite_file_gives_space_back_after_deletes(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = Database(f"sqlite:///{path}")
    try:
        await upgrade_database(db)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE filler (body TEXT)")
            await conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
                " INSERT INTO filler SELECT hex(randomblob(1000)) FROM n"
            )
            await conn.exec_driver_sql("DELETE FROM filler")
    finally:
        await db.dispose()
    full = _sqlite_pragma(path, "page_count")

    with sqlite3.connect(path, isolation_level=None) as conn:
        # executescript steps the pragma to its end; execute() would free a single page.
        conn.executescript("PRAGMA incremental_vacuum;")

    assert _sqlite_pragma(path, "auto_vacuum") == 2
    # The deleted rows filled about a thousand pages; all of them left the file.
    assert _sqlite_pragma(path, "page_count") < full - 900
    assert _sqlite_pragma(path, "freelist_count") == 0


async def test_embeddings_usage_rows_are_renamed_both_ways(db: Database) -> None:
    """0006: usage rows of type ``embedding`` become ``embeddings`` (seed 004's word), and the
    check refuses the old word afterwards; the downgrade turns them back."""
    await downgrade_database(db, "0005")
    async with db.write() as session:
        user = await UserRepo(session).create(email="usage-0006@example.com", username="u0006")
        owner = user.id
    insert = (
        "INSERT INTO usage (id, user_id, provider, model, type, tokens_in, tokens_out,"
        " tokens_total, cost, currency, created_at) VALUES ('{id}', '{owner}', 'openai',"
        " 'text-embedding-3-small', '{type}', 3, 0, 3, 0, 'USD', CURRENT_TIMESTAMP)"
    )
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(insert.format(id="use_old", owner=owner, type="embedding"))
        await conn.exec_driver_sql(insert.format(id="use_chat", owner=owner, type="chat"))

    await upgrade_database(db)

    async with db.engine.connect() as conn:
        types = dict((await conn.exec_driver_sql("SELECT id, type FROM usage")).all())
    assert types == {"use_old": "embeddings", "use_chat": "chat"}
    with pytest.raises(IntegrityError, match="ck_usage_type_valid"):
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(insert.format(id="use_bad", owner=owner, type="embedding"))
    assert await pending_differences(db) == []

    await downgrade_database(db, "0005")
    async with db.engine.connect() as conn:
        types = dict((await conn.exec_driver_sql("SELECT id, type FROM usage")).all())
    assert types == {"use_old": "embedding", "use_chat": "chat"}
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM usage")
        await conn.exec_driver_sql(f"DELETE FROM users WHERE id = '{owner}'")
    await upgrade_database(db)


async def test_run_control_fields_move_out_of_trigger_data_and_back(db: Database) -> None:
    """0008: ``use_cache``, ``depth`` and ``parent_attempt`` leave ``trigger_data`` for columns
    of their own (what the trigger said stays); the downgrade puts them back."""
    async with db.write() as session:
        user = await UserRepo(session).create(email="runs-0007@example.com", username="u0007")
        owner = user.id
        workflow = await WorkflowRepo(session, owner_id=owner).create(
            name="w0007", definition={"schema_version": 1, "nodes": [], "edges": []}
        )
    await downgrade_database(db, "0007")
    insert = (
        "INSERT INTO workflow_runs (id, workflow_id, workflow_version, user_id, status, scope,"
        " trigger_kind, trigger_data, inputs, cancel_requested, created_at, updated_at)"
        " VALUES ('{id}', '{workflow}', 1, '{owner}', 'COMPLETED', 'FULL', 'manual', {data},"
        " '{{}}', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    rows = {
        "run_plain": "NULL",
        "run_hook": '\'{"trigger_id": "trg_1"}\'',
        "run_child": '\'{"depth": 2, "parent_attempt": 3, "use_cache": false, "x": 1}\'',
        "run_pins": "'{\"use_pinned\": true}'",
    }
    async with db.engine.begin() as conn:
        for run_id, data in rows.items():
            await conn.exec_driver_sql(
                insert.format(id=run_id, workflow=workflow.id, owner=owner, data=data)
            )

    await upgrade_database(db)

    query = (
        "SELECT id, trigger_data, use_cache, use_pinned, depth, parent_attempt FROM workflow_runs"
        " WHERE id LIKE 'run_%' ORDER BY id"
    )
    async with db.read() as session:
        found = {
            row.id: (
                _json(row.trigger_data),
                bool(row.use_cache),
                bool(row.use_pinned),
                row.depth,
                row.parent_attempt,
            )
            for row in (await session.execute(text(query))).all()
        }
    assert found == {
        "run_child": ({"x": 1}, False, False, 2, 3),
        "run_hook": ({"trigger_id": "trg_1"}, True, False, 0, None),
        "run_pins": (None, True, True, 0, None),
        "run_plain": (None, True, False, 0, None),
    }
    assert await pending_differences(db) == []

    await downgrade_database(db, "0007")
    async with db.engine.connect() as conn:
        back = {
            row[0]: _json(row[1])
            for row in (
                await conn.exec_driver_sql(
                    "SELECT id, trigger_data FROM workflow_runs WHERE id LIKE 'run_%'"
                )
            ).all()
        }
    assert back == {
        "run_child": {"x": 1, "depth": 2, "parent_attempt": 3, "use_cache": False},
        "run_hook": {"trigger_id": "trg_1"},
        "run_pins": {"use_pinned": True},
        "run_plain": None,
    }
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM workflow_runs WHERE id LIKE 'run_%'")
    await upgrade_database(db)


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
