"""Partial indexes (of only the rows a condition holds for), the same on both databases.

A table declares one with :func:`partial_index`, which gives it its SQLite ``WHERE``. Its
PostgreSQL ``WHERE`` (the same condition) is added by :func:`add_postgresql_conditions` when a
PostgreSQL database is opened: naming a ``postgresql_`` index option makes SQLAlchemy load its
PostgreSQL dialect (some 40 ms and 2 MiB), which a server on SQLite never otherwise needs. Both
then create what the migrations create (``sqlite_where`` and ``postgresql_where``).
"""

from __future__ import annotations

from sqlalchemy import Index, MetaData, text

__all__ = ["add_postgresql_conditions", "partial_index"]

_CONDITION = "flowloom_partial_where"
"""The ``info`` key an index's condition is kept under, as SQL text."""


def partial_index(column: str, where: str) -> Index:
    """An index of ``column`` over the rows where ``where`` (SQL) holds."""
    return Index(None, column, sqlite_where=text(where), info={_CONDITION: where})


def add_postgresql_conditions(metadata: MetaData) -> None:
    """Give every partial index of ``metadata`` its PostgreSQL ``WHERE`` (again sets the same)."""
    for table in metadata.tables.values():
        for index in table.indexes:
            where = index.info.get(_CONDITION)
            if where is not None:
                index.dialect_kwargs["postgresql_where"] = text(where)
