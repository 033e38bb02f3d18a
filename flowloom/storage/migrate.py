"""Move a database along flowloom's one migration chain, and compare its schema with the models.

The chain ships inside the package (``flowloom/storage/migrations``) and the Alembic configuration
is built here, in code: there is no ini file. Every function runs Alembic on a connection of the
given ``Database`` (through ``run_sync``), so that connection's settings hold while migrating:
SQLite's pragmas, a PostgreSQL ``search_path`` (tests migrate a fresh schema per module).

A migration is one transaction, committed only if every step succeeded:

- PostgreSQL takes an advisory lock first, so two processes starting at once migrate one after
  the other (the second finds nothing left to do);
- SQLite begins with ``BEGIN IMMEDIATE`` (the write lock, waited for within the busy timeout) and
  turns foreign-key enforcement off for the duration, as SQLite's procedure for schema changes
  requires: rebuilding a table (batch mode) drops the old copy, and with enforcement on that drop
  would cascade into every child row. ``PRAGMA foreign_key_check`` must find nothing before the
  transaction commits. Upgrading also makes sure the file uses incremental auto-vacuum, so that
  pruning can give space back to the file system.

Alembic is imported only by the functions that need it: a server's start reads the revision and
builds an empty database without it (``flowloom.storage.revision``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import JSON, Column, Constraint, Index, Table, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from flowloom.exceptions import StorageError
from flowloom.storage.database import WRITE_TRANSACTION, Database
from flowloom.storage.revision import read_revision, stamp_head
from flowloom.storage.tables import metadata
from flowloom.storage.tables.base import Money, PostgresJSONB, UTCDateTime

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.config import Config

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaDifference",
    "alembic_config",
    "context_options",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "install_or_upgrade",
    "pending_differences",
    "upgrade_database",
    "write_revision",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""The Alembic script folder: ``env.py``, ``script.py.mako`` and ``versions/``."""

# Any constant works; it only has to be the same in every flowloom process.
_PG_MIGRATION_LOCK = 0x666C6F77

_SQLITE_AUTO_VACUUM_INCREMENTAL = 2


@dataclass(frozen=True)
class SchemaDifference:
    """One way a database's schema differs from the models (what a new migration would do)."""

    kind: str
    """Alembic's name for the change: ``add_table``, ``remove_column``, ``modify_type``, ..."""
    table: str | None
    """The table concerned, when there is one."""
    detail: str
    """What differs, for people: the column, index or constraint, and old and new types."""

    def __str__(self) -> str:
        where = f" {self.table}" if self.table else ""
        return f"{self.kind}{where}: {self.detail}"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for the packaged chain; ``env.py`` migrates on ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def context_options(dialect_name: str) -> dict[str, Any]:
    """The options ``env.py`` and ``pending_differences`` give Alembic, so both compare alike.

    Check constraints are compared by name (Alembic's opt-in plugin): a renamed, added or dropped
    CHECK is found, an edited expression under the same name is not, because the databases
    rewrite expressions when they store them.
    """
    return {
        "target_metadata": metadata,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "compare_server_default": True,
        "render_item": _render_item,
        "autogenerate_plugins": ["alembic.autogenerate.*", "alembic.ext.checkconstraint_byname"],
    }


def head_revision() -> str:
    """The newest revision of the packaged chain, as Alembic finds it in the scripts (a
    server uses ``flowloom.storage.revision.HEAD_REVISION``, which a test keeps equal)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StorageError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def upgrade_database(db: Database, revision: str = "head") -> None:
    """Migrate ``db`` up to ``revision`` (default: the newest) in one transaction.

    Safe to call on every start: a database already there is left as it is.
    """
    async with _migration_connection(db, upgrading=True) as conn:
        await conn.run_sync(_run_command, "upgrade", revision)


async def install_or_upgrade(db: Database) -> bool:
    """Bring ``db`` to the newest revision the quickest way; True if it was empty.

    An empty database (no tables at all) gets the models' schema in one ``create_all`` and is
    stamped at the head revision (Alembic's recipe for building a database from scratch): on
    SQLite that takes a fraction of replaying the chain, whose table rebuilds (batch mode) made
    most of a first start. The migration tests prove both ways end at the same schema. Any
    other database is upgraded along the chain (:func:`upgrade_database`). Same transaction,
    locks and checks as migrating.
    """
    async with _migration_connection(db, upgrading=True) as conn:
        return bool(await conn.run_sync(_install_or_upgrade))


def _install_or_upgrade(sync_conn: Connection) -> bool:
    if inspect(sync_conn).get_table_names():
        _run_command(sync_conn, "upgrade", "head")
        return False
    metadata.create_all(sync_conn)
    stamp_head(sync_conn)
    return True


async def downgrade_database(db: Database, revision: str) -> None:
    """Migrate ``db`` down to ``revision`` in one transaction (``"base"``: no tables left)."""
    async with _migration_connection(db, upgrading=False) as conn:
        await conn.run_sync(_run_command, "downgrade", revision)


async def current_revision(db: Database) -> str | None:
    """The revision ``db`` is at, or None for a database never migrated (or migrated to base)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(read_revision)


async def pending_differences(db: Database) -> list[SchemaDifference]:
    """How ``db``'s schema differs from the models; empty when migrations and models agree.

    Uses Alembic's autogenerate comparison with the options of ``env.py``; changes nothing.
    """
    async with db.engine.connect() as conn:
        raw = await conn.run_sync(_compare)
    return [difference for entry in raw for difference in _describe(entry)]


async def write_revision(db: Database, message: str, *, rev_id: str | None = None) -> Path:
    """Write a new migration file with what autogenerate finds between ``db`` and the models.

    For developers: migrate a scratch database to head first, change the models, then call this
    and read the result before committing it. Returns the new file's path.
    """
    async with db.engine.connect() as conn:
        path = await conn.run_sync(_write_revision, message, rev_id)
    return path


def _run_command(
    sync_conn: Connection, action: Literal["upgrade", "downgrade"], revision: str
) -> None:
    from alembic import command

    run: Callable[[Config, str], None] = {
        "upgrade": command.upgrade,
        "downgrade": command.downgrade,
    }[action]
    run(alembic_config(sync_conn), revision)


def _compare(sync_conn: Connection) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    options = context_options(sync_conn.dialect.name)
    context = MigrationContext.configure(sync_conn, opts=options)
    return list(compare_metadata(context, metadata))


def _write_revision(sync_conn: Connection, message: str, rev_id: str | None) -> Path:
    from alembic import command

    script = command.revision(
        alembic_config(sync_conn), message=message, autogenerate=True, rev_id=rev_id
    )
    if script is None or isinstance(script, list):
        raise StorageError("alembic wrote no single revision")
    return Path(script.path)


@asynccontextmanager
async def _migration_connection(db: Database, *, upgrading: bool) -> AsyncIterator[AsyncConnection]:
    """A connection inside one write transaction, ready for schema changes (see module doc)."""
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            yield conn
        return
    async with db.engine.connect() as conn:
        # Both pragmas below are ignored (or refused) inside a transaction, so they run on the
        # driver's connection before SQLAlchemy begins one.
        if upgrading:
            await conn.run_sync(_ensure_incremental_auto_vacuum)
        await conn.run_sync(_sqlite_pragma, "PRAGMA foreign_keys = OFF")
        try:
            await conn.execution_options(**{WRITE_TRANSACTION: True})
            async with conn.begin():
                yield conn
                await conn.run_sync(_check_foreign_keys)
        finally:
            await conn.run_sync(_sqlite_pragma, "PRAGMA foreign_keys = ON")


def _sqlite_pragma(sync_conn: Connection, sql: str) -> list[Sequence[Any]]:
    """Run ``sql`` on the driver connection directly: no BEGIN is sent first."""
    cursor = sync_conn.connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _ensure_incremental_auto_vacuum(sync_conn: Connection) -> None:
    (mode,) = _sqlite_pragma(sync_conn, "PRAGMA auto_vacuum")[0]
    if mode == _SQLITE_AUTO_VACUUM_INCREMENTAL:
        return
    _sqlite_pragma(sync_conn, f"PRAGMA auto_vacuum = {_SQLITE_AUTO_VACUUM_INCREMENTAL}")
    if mode == 0:
        # A file created without auto-vacuum keeps none until it is rebuilt; this happens once.
        _sqlite_pragma(sync_conn, "VACUUM")
    (now,) = _sqlite_pragma(sync_conn, "PRAGMA auto_vacuum")[0]
    if now != _SQLITE_AUTO_VACUUM_INCREMENTAL:
        raise StorageError(f"could not switch the SQLite file to incremental auto-vacuum ({now})")


def _check_foreign_keys(sync_conn: Connection) -> None:
    broken = sync_conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        sample = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in broken[:5])
        raise StorageError(f"migration left {len(broken)} broken foreign keys: {sample}")


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write flowloom's own column types by name in new migrations, imported from ``base``."""
    if type_ != "type":
        return False
    for custom in (Money, UTCDateTime):
        if isinstance(obj, custom):
            autogen_context.imports.add(
                f"from flowloom.storage.tables.base import {custom.__name__}"
            )
            return f"{custom.__name__}()"
    if isinstance(obj, JSON) and isinstance(_variants(obj).get("postgresql"), PostgresJSONB):
        autogen_context.imports.add("from flowloom.storage.tables.base import JSONType")
        return "JSONType"
    return False


def _variants(type_: Any) -> dict[str, Any]:
    mapping = getattr(type_, "_variant_mapping", None)
    return dict(mapping) if mapping else {}


def _describe(entry: Any) -> list[SchemaDifference]:
    """Alembic's raw diff entries (tuples, or lists of column changes) as SchemaDifferences."""
    if isinstance(entry, list):
        return [difference for item in entry for difference in _describe(item)]
    kind, *rest = entry
    if kind.startswith("modify_"):
        # (kind, schema, table, column, existing info, old, new)
        _schema, table, column, _info, old, new = rest
        return [SchemaDifference(kind, table, f"{column}: {old!r} -> {new!r}")]
    obj = rest[-1] if kind.endswith("_column") else rest[0]
    if isinstance(obj, Table):
        return [SchemaDifference(kind, obj.name, "the whole table")]
    if isinstance(obj, Column):
        return [SchemaDifference(kind, rest[1], f"column {obj.name} {obj.type!r}")]
    if isinstance(obj, Index | Constraint):
        table = obj.table.name if isinstance(obj.table, Table) else None
        columns = ", ".join(column.name for column in getattr(obj, "columns", []))
        what = type(obj).__name__
        return [SchemaDifference(kind, table, f"{what} {obj.name} ({columns})")]
    return [SchemaDifference(kind, None, repr(rest))]
