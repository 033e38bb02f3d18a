"""Reading runs back for their drivers: the run row with its debug session and its node rows,
for one run (``read_run``) or for several at once (``read_runs``).

A worker is handed its runs in tasks of several runs each; it loads the runs of a task in
ONE statement (one round trip, one autocommit transaction on PostgreSQL) instead of one per
run. On PostgreSQL each load is one prepared statement on a reader's asyncpg connection (run
rows and node rows in one result, ``part`` telling them apart); on SQLite two statements in
one read.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Collection, Iterable
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Select

from flowloom.engine.run_state import NodeSlot
from flowloom.engine.sql.ticks import DEBUG_COLUMNS, LOAD_SLOTS, slot_of
from flowloom.storage.database import Database
from flowloom.storage.raw_statements import PgStatement
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun

__all__ = ["LoadedRun", "read_run", "read_runs"]

_NODES = cast(Table, NodeExecution.__table__)
_RUNS = cast(Table, WorkflowRun.__table__)
_DEBUG_SESSIONS = cast(Table, DebugSession.__table__)

_RUN_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_version",
    "user_id",
    "api_key_id",
    "status",
    "scope",
    "target_node_id",
    "inputs",
    "timeout_s",
    "cancel_requested",
    "use_cache",
    "use_pinned",
    "started_at",
)

LoadedRun = tuple[Any, dict[str, NodeSlot]]
"""A run as read back: its row (``_RUN_COLUMNS`` and ``DEBUG_COLUMNS`` by name) and its node
rows as slots keyed by node id, in checkpoint order."""


def _runs_where(runs: ColumnElement[bool]) -> Select[Any]:
    """Run rows (with their debug sessions) as a driver loads them, those ``runs`` picks."""
    return (
        select(*(_RUNS.c[name] for name in _RUN_COLUMNS), *DEBUG_COLUMNS)
        .select_from(_RUNS.outerjoin(_DEBUG_SESSIONS, _DEBUG_SESSIONS.c.run_id == _RUNS.c.id))
        .where(runs)
    )


def _typed_nulls(columns: Iterable[Any], prefix: str = "") -> list[Any]:
    return [sql_cast(null(), column.type).label(prefix + column.key) for column in columns]


_LOAD_RUN = _runs_where(_RUNS.c.id == bindparam("run_id"))
_LOAD_RUNS = _runs_where(_RUNS.c.id.in_(bindparam("run_ids", expanding=True)))
_LOAD_SLOTS_OF_RUNS = (
    select(_NODES.c.run_id, *LOAD_SLOTS.selected_columns)
    .where(_NODES.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .order_by(_NODES.c.run_id, _NODES.c.id)
)
"""``LOAD_SLOTS`` for several runs, each run's rows together (SQLite's second statement)."""

_RunRow = namedtuple("_RunRow", [column.key for column in _LOAD_RUN.selected_columns])  # type: ignore[misc]
_SlotRow = namedtuple("_SlotRow", [column.key for column in LOAD_SLOTS.selected_columns])  # type: ignore[misc]
_PART = len(_LOAD_RUN.selected_columns)
"""Where a row of the PostgreSQL loads has its ``part``: the run's columns before, a node's
after."""


def _pg_load(runs: ColumnElement[bool], nodes: ColumnElement[bool]) -> PgStatement:
    """Run rows (``runs``) and their node rows (``nodes``) in one statement for PostgreSQL:
    each run's row (``part`` 0, node columns null), then its node rows in checkpoint order
    (``part`` 1, run columns null), run after run."""
    return PgStatement(
        union_all(
            _runs_where(runs).add_columns(
                literal_column("0", Integer).label("part"),
                *_typed_nulls(LOAD_SLOTS.selected_columns, prefix="slot_"),
                _RUNS.c.id.label("run_key"),
            ),
            select(
                *_typed_nulls(_LOAD_RUN.selected_columns),
                literal_column("1", Integer),
                *LOAD_SLOTS.selected_columns,
                _NODES.c.run_id,
            ).where(nodes),
        ).order_by(literal_column("run_key"), literal_column("part"), literal_column("slot_id"))
    )


_LOAD_RUN_PG = _pg_load(_RUNS.c.id == bindparam("run_id"), _NODES.c.run_id == bindparam("run_id"))
# SQLAlchemy's own ARRAY, not its PostgreSQL dialect's: a server on SQLite never loads that
# dialect (some 2 MiB resident); PostgreSQL compiles this one as its own.
_RUN_IDS = bindparam("run_ids", type_=ARRAY(String))
_LOAD_RUNS_PG = _pg_load(_RUNS.c.id == any_(_RUN_IDS), _NODES.c.run_id == any_(_RUN_IDS))


def _pg_loaded(rows: list[tuple[Any, ...]]) -> dict[str, LoadedRun]:
    """The runs in the rows of ``_pg_load``'s statement, by run id."""
    found: dict[str, LoadedRun] = {}
    slots: dict[str, NodeSlot] = {}
    for row in rows:
        if row[_PART] == 0:
            slots = {}
            run: Any = _RunRow._make(row[:_PART])
            found[run.id] = (run, slots)
        else:
            # A run's node rows follow its run row (ordered by run, then part).
            slot = slot_of(_SlotRow._make(row[_PART + 1 : -1]))
            slots[slot.node_id] = slot
    return found


async def read_run(db: Database, run_id: str) -> LoadedRun | None:
    """The run as a driver loads it, or None when there is no such run."""
    if not db.is_sqlite:
        async with db.pg_read_connection() as pg:
            rows = await _LOAD_RUN_PG.fetch(pg, run_id=run_id)
        return _pg_loaded(rows).get(run_id)
    return (await read_runs(db, [run_id])).get(run_id)


async def read_runs(db: Database, run_ids: Collection[str]) -> dict[str, LoadedRun]:
    """The runs of ``run_ids`` as their drivers load them, read at once; a run that does not
    exist is absent."""
    if not run_ids:
        return {}
    ids = list(run_ids)
    if not db.is_sqlite:
        async with db.pg_read_connection() as pg:
            return _pg_loaded(await _LOAD_RUNS_PG.fetch(pg, run_ids=ids))

    def read(conn: Connection) -> dict[str, LoadedRun]:
        found: dict[str, LoadedRun] = {
            run.id: (run, {}) for run in conn.execute(_LOAD_RUNS, {"run_ids": ids})
        }
        if not found:
            return found
        for row in conn.execute(_LOAD_SLOTS_OF_RUNS, {"run_ids": list(found)}):
            found[row.run_id][1][row.node_id] = slot_of(row)
        return found

    return await db.run_read(read)
