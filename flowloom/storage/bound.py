"""Values bound exactly as SQLAlchemy's column types would bind them, for the few hot statements
run on the driver's connection itself (the engine's tick, a run's node rows): they skip
SQLAlchemy's per-execution and per-value work, and rows read back as if SQLAlchemy wrote them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from json.encoder import (  # type: ignore[attr-defined]
    JSONEncoder,
    c_make_encoder,
    encode_basestring_ascii,
)
from typing import Any, Final

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
            found.append(_json_binder(process, dialect))
        elif process is not None and isinstance(type_, UTCDateTime):
            found.append(_time_binder(_sqlite_time_text(process, dialect) or process))
        else:
            found.append(process)
    return tuple(found)


def _json_binder(process: Callable[[Any], Any], dialect: Dialect) -> Callable[[Any], Any]:
    # Most JSON values of a node row are None (no error, no wait) or empty (no attempts yet):
    # bind SQLAlchemy's own encoding of those without serialising them each time.
    none, empty = process(None), process([])
    encode = _plain_encoder(process, dialect)

    def bind(value: Any) -> Any:
        if value is None:
            return none
        if isinstance(value, list) and not value:
            return empty
        return encode(value)

    return bind


_SAMPLE: Final = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {"c": -0.0}, "d": []}
"""A value whose encoding shows an encoder writes what ``json.dumps`` writes."""


def _plain_encoder(process: Callable[[Any], Any], dialect: Dialect) -> Callable[[Any], Any]:
    """``process`` itself, or, when it is ``json.dumps`` with nothing done to its text (the
    dialect's default), the same text from ``json``'s C encoder made once: ``json.dumps`` makes
    one per call, half the cost of a node row's outputs or attempts (three a row, a tick's
    largest cost after SQLite's). Anything but a dict or a list, and a value the C encoder
    gives up on (a circular one: it does not look for cycles), goes to ``process``, which
    encodes it or raises as SQLAlchemy would."""
    if c_make_encoder is None or getattr(dialect, "_json_serializer", None) is not None:
        return process
    encoder = c_make_encoder(
        None, JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    if process(_SAMPLE) != json.dumps(_SAMPLE) or "".join(encoder(_SAMPLE, 0)) != json.dumps(
        _SAMPLE
    ):
        return process

    def encode(value: Any) -> Any:
        if type(value) is not dict and type(value) is not list:
            return process(value)
        try:
            return "".join(encoder(value, 0))
        except RecursionError:
            return process(value)

    return encode


_TIME_SAMPLES: Final = (
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(5, 1, 2, 0, 30, 0, 7, tzinfo=timezone(timedelta(hours=3))),
)
"""Times whose text shows a formatter writes what SQLAlchemy's SQLite binding writes."""


def _sqlite_time_text(
    process: Callable[[Any], Any], dialect: Dialect
) -> Callable[[Any], Any] | None:
    """On SQLite, a timestamp's stored text made by ``datetime.isoformat`` in C (the UTC time,
    always with microseconds), when it is the text ``process`` makes (checked on samples); None
    elsewhere. A naive time goes to ``process``, which refuses it."""
    if dialect.name != "sqlite":
        return None

    def text(value: Any) -> Any:
        if type(value) is not datetime or value.tzinfo is None:
            return process(value)
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    if any(text(sample) != process(sample) for sample in _TIME_SAMPLES):
        return None
    return text


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
