"""Core statements compiled once for the driver's own connection (``sqlite3``, asyncpg), for the
few hot reads that skip SQLAlchemy's per-execution work (a cache key, result processing, on
PostgreSQL the hop through a greenlet).

The SQL is still written once, as a SQLAlchemy statement: ``RawStatement`` compiles it for a
dialect on its first use (not at import: a server's start would pay for statements that only
some requests run) and binds the named parameters in the compiled order, so there is no second,
hand-written copy to drift from it. Parameters are passed through as given (text and numbers:
what such lookups take); results come back as the driver gives them (on SQLite, JSON as text)
unless ``converted`` makes them what SQLAlchemy would have read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.selectable import SelectBase

__all__ = ["RawStatement", "SqliteStatement"]


class RawStatement:
    """``statement`` as SQL and positional parameter order for ``dialect``'s driver."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        self._statement = statement
        self._dialect = dialect

    @cached_property
    def _compiled(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        """The SQL, and each positional parameter's name with the statement's own value."""
        compiled: Compiled = self._statement.compile(dialect=self._dialect)
        order = compiled.positiontup or ()  # type: ignore[attr-defined]
        fixed = compiled.params
        return str(compiled), tuple((name, fixed.get(name)) for name in order)

    @property
    def sql(self) -> str:
        return self._compiled[0]

    def args(self, given: dict[str, Any]) -> tuple[Any, ...]:
        """The positional arguments: ``given`` by name, the statement's own values elsewhere."""
        return tuple(given.get(name, value) for name, value in self._compiled[1])

    @cached_property
    def _converters(self) -> tuple[Callable[[Any], Any] | None, ...]:
        """Each selected column's result processor on the dialect (None: kept as given)."""
        dialect = self._dialect
        columns = cast(SelectBase, self._statement).selected_columns
        return tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )

    def converted(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A row of the driver's values (of a SELECT) as SQLAlchemy would have read it: each
        value through its column type's result processor (text to JSON and times on SQLite,
        booleans from integers, times in UTC)."""
        return tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self._converters, row, strict=True)
        )


class SqliteStatement(RawStatement):
    """``statement`` as SQL and parameter order for a raw ``sqlite3`` connection."""

    def __init__(self, statement: ClauseElement) -> None:
        super().__init__(statement, sqlite.dialect())

    def first(self, raw: sqlite3.Connection, **given: Any) -> Any:
        """The first row, or None."""
        return raw.execute(self.sql, self.args(given)).fetchone()
