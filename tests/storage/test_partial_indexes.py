"""A partial index carries its condition on both databases, PostgreSQL's once one is opened."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex

from flowloom.storage.tables.partial_indexes import add_postgresql_conditions, partial_index


def _table() -> Table:
    return Table(
        "things",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer),
        partial_index("parent_id", "parent_id IS NOT NULL"),
    )


def _create(table: Table, dialect: object) -> str:
    (index,) = table.indexes
    return str(CreateIndex(index).compile(dialect=dialect))  # type: ignore[arg-type]


def test_sqlite_gets_the_condition_at_once_and_postgresql_when_added() -> None:
    table = _table()
    assert _create(table, sqlite.dialect()).endswith("WHERE parent_id IS NOT NULL")
    assert "WHERE" not in _create(table, postgresql.dialect())

    add_postgresql_conditions(table.metadata)
    add_postgresql_conditions(table.metadata)

    assert _create(table, postgresql.dialect()).endswith("WHERE parent_id IS NOT NULL")
    assert _create(table, sqlite.dialect()).count("WHERE") == 1


def test_flowlooms_partial_indexes_are_declared_for_both_databases() -> None:
    from flowloom.storage.tables import metadata

    add_postgresql_conditions(metadata)
    partial = {
        (index.table.name, index.dialect_options["sqlite"]["where"].text)
        for table in metadata.tables.values()
        for index in table.indexes
        if index.dialect_options["sqlite"]["where"] is not None
    }
    on_postgresql = {
        (index.table.name, index.dialect_options["postgresql"]["where"].text)
        for table in metadata.tables.values()
        for index in table.indexes
        if index.dialect_options["postgresql"]["where"] is not None
    }

    assert partial == on_postgresql
    assert ("node_executions", "cached_from_id IS NOT NULL") in partial
