"""Values bound exactly as SQLAlchemy's column types would bind them, for the few hot statements
run on the driver's connection itself (the engine's tick, a run's node rows): they skip
SQLAlchemy's per-execution and per-value work, and rows read back as if SQLAlchemy wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Dialect, Table

from flowloom.storage.tables.base import UTCDateTime

__all__ = ["Processor", "bind", "processors"]

Processor = Callable[[Any], Any] | None


def bind(processors: Sequence[Processor], values: Sequence[Any]) -> list[Any]:
    return [
        value if process is None else process(value)
        for process, value in zip(processors, values, strict=True)
    ]


@cache
def processors(dialect: Dialect, table: Table, names: tuple[str, ...]) -> tuple[Processor, ...]:
    """The bind processors SQLAlchemy itself applies to these columns on this dialect, with
    shortcuts for what the hot statements bind over and over (they were a third of a tick's
    CPU time)."""
    found: list[Processor] = []
    for name in names:
        type_ = table.c[name].type
        process = type_.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and isinstance(type_, JSON):
            found.append(_json_binder(process))
        elif process is not None and isinstance(type_, UTCDateTime):
            found.append(_time_binder(process))
        else:
            found.append(process)
    return tuple(found)


def _json_binder(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # Most JSON values of a node row are None (no error, no wait) or empty (no attempts yet):
    # bind SQLAlchemy's own encoding of those without serialising them each time.
    none, empty = process(None), process([])

    def bind(value: Any) -> Any:
        if value is None:
            return none
        if isinstance(value, list) and not value:
            return empty
        return process(value)

    return bind


def _time_binder(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # A tick stamps most times with the same ``now``: convert each distinct time once.
    memo: dict[datetime, Any] = {}

    def bind(value: datetime | None) -> Any:
        if value is None:
            return None
        found = memo.get(value)
        if found is None:
            if len(memo) > 256:
                memo.clear()
            found = memo[value] = process(value)
        return found

    return bind
