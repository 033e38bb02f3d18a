"""Values bound for the hot statements (``storage.bound``) are what SQLAlchemy's own column
types bind, JSON included: the same text, and the same errors for what JSON cannot hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg

from flowloom.storage.bound import bind, processors
from flowloom.storage.tables import NodeExecution

_NODES = cast(Table, NodeExecution.__table__)
_JSON_COLUMNS = ("outputs", "attempts", "inputs")

VALUES: list[Any] = [
    None,
    [],
    {},
    {"value": 12345},
    {"text": 'é ü \u2603 "quoted" \\ \n\t', "n": -0.0, "big": 10**30, "f": 1e-300},
    [{"attempt": 1, "status": "SUCCEEDED", "error": None, "ok": True}],
    {"nested": [[1, [2, {"3": [None]}]]], "nan": float("nan"), "inf": float("inf")},
    {1: "int key", 2.5: "float key", None: "none key", False: "bool key"},
    "a bare string",
    7,
    ("a", "tuple"),
]


def _sqlalchemy(dialect: Any, name: str) -> Any:
    return _NODES.c[name].type.dialect_impl(dialect).bind_processor(dialect)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), asyncpg.dialect()])
@pytest.mark.parametrize("value", VALUES)
def test_json_is_bound_as_sqlalchemy_binds_it(dialect: Any, value: Any) -> None:
    binders = processors(dialect, _NODES, _JSON_COLUMNS)
    for name, binder in zip(_JSON_COLUMNS, binders, strict=True):
        own = _sqlalchemy(dialect, name)
        expected = value if own is None else own(value)
        assert bind([binder], [value]) == [expected]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), asyncpg.dialect()])
def test_what_json_cannot_hold_raises_as_sqlalchemy_raises(dialect: Any) -> None:
    (binder,) = processors(dialect, _NODES, ("outputs",))
    assert binder is not None
    circular: dict[str, Any] = {"a": 1}
    circular["self"] = circular
    looped: list[Any] = [1]
    looped.append({"back": looped})
    for value, error in [
        (circular, ValueError),
        (looped, ValueError),
        ({"when": object()}, TypeError),
        ({("tuple", "key"): 1}, TypeError),
    ]:
        with pytest.raises(error) as ours:
            binder(value)
        with pytest.raises(error) as theirs:
            _sqlalchemy(dialect, "outputs")(value)
        assert str(ours.value) == str(theirs.value)


TIMES = [
    datetime(2026, 12, 7, 2, 40, 0, tzinfo=UTC),
    datetime(2026, 12, 7, 2, 40, 0, 1, tzinfo=UTC),
    datetime(2026, 6, 30, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
    datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    None,
]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), asyncpg.dialect()])
def test_times_are_bound_as_sqlalchemy_binds_them(dialect: Any) -> None:
    names = ("started_at", "finished_at")
    binders = processors(dialect, _NODES, names)
    for name, binder in zip(names, binders, strict=True):
        own = _sqlalchemy(dialect, name)
        # Twice: the second comes from the binder's memo.
        for _ in range(2):
            assert bind([binder], TIMES[:1]) == [own(TIMES[0])]
            assert [bind([binder], [value])[0] for value in TIMES] == [own(v) for v in TIMES]
        with pytest.raises(ValueError, match="naive"):
            bind([binder], [datetime(2026, 12, 7, 2, 40)])
