"""Core statements compiled once for the driver itself (``sqlite3``; asyncpg), for the few hot
reads that skip SQLAlchemy's per-execution work (a cache key, result processing; on
PostgreSQL also its connection checkout and the hop through a greenlet).

The SQL is still written once, as a SQLAlchemy statement: ``SqliteStatement`` and
``PgStatement`` compile it for their dialect on its first use (not at import: a server's start
would pay for statements that only some requests run) and bind the named parameters in the
compiled order, so there is no second, hand-written copy to drift from it. Each parameter goes
through its bind parameter's own type, as SQLAlchemy would bind it (on SQLite a timestamp
compared with a column becomes that column's text; text and numbers pass as given). ``first``
gives the row raw (JSON as text); ``first_typed`` converts each column as SQLAlchemy's result
processing would. On PostgreSQL, ``fetchrow`` runs it on an asyncpg connection
(``Database.asyncpg_connection``), whose codecs (JSON included) are the ones SQLAlchemy
installed.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["PgStatement", "SqliteStatement"]

_Processor = Callable[[Any], Any] | None
_Parameter = tuple[str, Any, _Processor]
"""A positional parameter: its name, the statement's own value (bound), its bind processor."""


class _DriverStatement(ABC):
    """``statement`` as SQL and parameter order for one dialect's driver."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement

    @staticmethod
    @abstractmethod
    def _dialect() -> Dialect:
        """The dialect the statement is compiled for."""

    @cached_property
    def _compiled(self) -> tuple[str, tuple[_Parameter, ...], tuple[_Processor, ...]]:
        """The SQL, each positional parameter, and each result column's processor."""
        dialect = self._dialect()
        compiled = cast(SQLCompiler, self._statement.compile(dialect=dialect))
        order = compiled.positiontup or ()
        fixed = compiled.params
        parameters: list[_Parameter] = []
        for name in order:
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            value = fixed.get(name)
            if process is not None and value is not None:
                value = process(value)
            parameters.append((name, value, process))
        columns = getattr(self._statement, "selected_columns", ())
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        return str(compiled), tuple(parameters), results

    @property
    def sql(self) -> str:
        return self._compiled[0]

    def args(self, given: dict[str, Any]) -> tuple[Any, ...]:
        """The positional arguments: ``given`` by name (bound by the parameter's type), the
        statement's own values elsewhere."""
        return tuple(
            (value if process is None else process(value))
            if (value := given.get(name, _MISSING)) is not _MISSING
            else fixed
            for name, fixed, process in self._compiled[1]
        )

    def _typed(self, row: Any) -> tuple[Any, ...] | None:
        if row is None:
            return None
        return tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self._compiled[2], row, strict=True)
        )


class SqliteStatement(_DriverStatement):
    """``statement`` for a raw ``sqlite3`` connection."""

    @staticmethod
    def _dialect() -> Dialect:
        return sqlite.dialect()

    def first(self, raw: sqlite3.Connection, **given: Any) -> Any:
        """The first row as ``sqlite3`` reads it, or None."""
        return raw.execute(self.sql, self.args(given)).fetchone()

    def first_typed(self, raw: sqlite3.Connection, **given: Any) -> tuple[Any, ...] | None:
        """The first row with each column converted as SQLAlchemy would (a timestamp column
        read back as an aware datetime), or None."""
        return self._typed(self.first(raw, **given))


class PgStatement(_DriverStatement):
    """``statement`` for an asyncpg connection (``$n`` parameters, prepared by asyncpg once
    per connection)."""

    @staticmethod
    def _dialect() -> Dialect:
        # Imported at the first PostgreSQL statement: a server on SQLite never loads it.
        from sqlalchemy.dialects.postgresql import asyncpg

        return asyncpg.dialect()  # type: ignore[no-untyped-call]

    async def fetchrow(self, pg: Any, **given: Any) -> tuple[Any, ...] | None:
        """The first row, each column converted as SQLAlchemy would, or None."""
        return self._typed(await pg.fetchrow(self.sql, *self.args(given)))


_MISSING: Any = object()
