"""Core statements compiled once for the driver itself (``sqlite3``; asyncpg), for the few hot
reads that skip SQLAlchemy's per-execution work (a cache key, result processing; on PostgreSQL
also its connection checkout and the hop through a greenlet).

The SQL is still written once, as a SQLAlchemy statement: ``RawStatement`` compiles it for a
dialect on its first use (not at import: a server's start would pay for statements that only
some requests run) and binds the named parameters in the compiled order, so there is no second,
hand-written copy to drift from it. Each parameter goes through its bind parameter's own type,
as SQLAlchemy would bind it (on SQLite a timestamp compared with a column becomes that column's
text; text and numbers pass as given). ``converted`` makes a driver's row what SQLAlchemy's
result processing would have read (text to JSON and times on SQLite, booleans from integers,
times in UTC).

``SqliteStatement`` runs on a raw ``sqlite3`` connection (``first`` gives the row raw, JSON as
text; ``first_typed`` converted). ``PgStatement`` runs on an asyncpg connection
(``Database.asyncpg_connection`` or ``pg_read_connection``), whose codecs (JSON included) are
the ones SQLAlchemy installed.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Dialect, Float, Numeric
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

__all__ = ["PgStatement", "RawStatement", "SqliteStatement"]

_Processor = Callable[[Any], Any] | None
_Parameter = tuple[str, Any, _Processor]
"""A positional parameter: its name, the statement's own value (bound), its bind processor."""

_MISSING: Any = object()


class RawStatement:
    """``statement`` as SQL, parameter order and result processors for ``dialect``'s driver;
    ``dialect`` may be a function that makes it, called at the first use."""

    def __init__(self, statement: ClauseElement, dialect: Dialect | Callable[[], Dialect]) -> None:
        self._statement = statement
        self._dialect_or_maker = dialect

    @cached_property
    def _compiled(self) -> tuple[str, tuple[_Parameter, ...], tuple[_Processor, ...]]:
        """The SQL, each positional parameter, and each result column's processor."""
        made = self._dialect_or_maker
        dialect = made if isinstance(made, Dialect) else made()
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
        results = tuple(self._result_processor(column.type, dialect) for column in columns)
        return str(compiled), tuple(parameters), results

    def _result_processor(self, column_type: TypeEngine[Any], dialect: Dialect) -> _Processor:
        """What SQLAlchemy would run on the driver's value of a column of ``column_type``."""
        return column_type.dialect_impl(dialect).result_processor(dialect, None)

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

    def converted(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A row of the driver's values (of a SELECT) as SQLAlchemy would have read it: each
        value through its column type's result processor."""
        return tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self._compiled[2], row, strict=True)
        )


class SqliteStatement(RawStatement):
    """``statement`` for a raw ``sqlite3`` connection."""

    def __init__(self, statement: ClauseElement) -> None:
        super().__init__(statement, sqlite.dialect())

    def first(self, raw: sqlite3.Connection, **given: Any) -> Any:
        """The first row as ``sqlite3`` reads it, or None."""
        return raw.execute(self.sql, self.args(given)).fetchone()

    def first_typed(self, raw: sqlite3.Connection, **given: Any) -> tuple[Any, ...] | None:
        """The first row with each column converted as SQLAlchemy would (a timestamp column
        read back as an aware datetime), or None."""
        row = self.first(raw, **given)
        return None if row is None else self.converted(row)


def _asyncpg_dialect() -> Dialect:
    # Imported at the first PostgreSQL statement: a server on SQLite never loads it.
    from sqlalchemy.dialects.postgresql import asyncpg

    return cast(Dialect, asyncpg.dialect())  # type: ignore[no-untyped-call]


_PG_FLOAT8 = 701
_PG_NUMERIC = 1700
"""PostgreSQL's type ids of double precision and numeric (``pg_type.oid``)."""


_PG_PARAMETER = re.compile(r"\$(\d+)")
"""A positional parameter in SQL compiled for asyncpg (SQLAlchemy's statements put no ``$``
in a literal of their own: values are bound)."""


class PgStatement(RawStatement):
    """``statement`` for an asyncpg connection (``$n`` parameters, prepared by asyncpg once
    per connection)."""

    def __init__(self, statement: ClauseElement) -> None:
        super().__init__(statement, _asyncpg_dialect)

    def _result_processor(self, column_type: TypeEngine[Any], dialect: Dialect) -> _Processor:
        # SQLAlchemy picks a numeric column's processor by the type the driver reports
        # (float8 comes back a float, numeric a Decimal); asyncpg reports the column's own.
        affinity = column_type._type_affinity
        coltype = None
        if affinity is not None and issubclass(affinity, Float):
            coltype = _PG_FLOAT8
        elif affinity is not None and issubclass(affinity, Numeric):
            coltype = _PG_NUMERIC
        return column_type.dialect_impl(dialect).result_processor(dialect, coltype)

    def sql_from(self, first: int) -> str:
        """The SQL with its parameters numbered from ``$first`` (``$1`` when 1): for a
        statement carried inside another one, whose own parameters come before it."""
        numbered = self._numbered.get(first)
        if numbered is None:
            shift = first - 1
            numbered = _PG_PARAMETER.sub(lambda found: f"${int(found[1]) + shift}", self.sql)
            self._numbered[first] = numbered
        return numbered

    @cached_property
    def _numbered(self) -> dict[int, str]:
        return {}

    async def fetchrow(self, pg: Any, **given: Any) -> tuple[Any, ...] | None:
        """The first row, each column converted as SQLAlchemy would, or None."""
        row = await pg.fetchrow(self.sql, *self.args(given))
        return None if row is None else self.converted(row)

    async def fetch(self, pg: Any, **given: Any) -> list[tuple[Any, ...]]:
        """Every row, each column converted as SQLAlchemy would."""
        convert = self.converted
        return [convert(row) for row in await pg.fetch(self.sql, *self.args(given))]
