"""Workflow runs: create, read back (with their node executions), list newest first, move status.

``RunRepo`` is owner-scoped: every query filters by the owner given at construction, so another
user's run behaves exactly like a missing one (NotFound). Two instance-wide monitoring queries
(seed 003's "active executions" and "execution performance") are module functions taking a bare
session, named for what they are: they see every user's runs and belong behind an admin check.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any, Final, NamedTuple, Required, TypeAlias, TypedDict, TypeVar, Unpack, cast

from sqlalchemy import (
    JSON,
    BindParameter,
    Connection,
    Dialect,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import PREFIXES, id_floor, idempotency_keys, new_id, new_ids
from flowloom.storage.bound import Processor, bind, processors
from flowloom.storage.database import sqlite_connection
from flowloom.storage.enums import (
    ACTIVE_RUN_STATUSES,
    NodeStatus,
    RunScope,
    RunStatus,
    TriggerKind,
)
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, page_of
from flowloom.storage.raw_statements import SqliteStatement
from flowloom.storage.tables import ApiKey, NodeExecution, Workflow, WorkflowRun
from flowloom.storage.tables.base import utcnow

__all__ = [
    "MAX_PAGE_SIZE",
    "DurationStats",
    "HistoryFilters",
    "NodeSpec",
    "RunRepo",
    "active_runs_by_status",
    "average_successful_duration",
    "checked_history_filters",
    "history_query",
    "history_statement",
    "run_id_floor",
]

MAX_PAGE_SIZE = 100

_E = TypeVar("_E", bound=StrEnum)

_RUN = PREFIXES["workflow_runs"]
_NODE_EXECUTION = PREFIXES["node_executions"]
_NODE_EXECUTIONS = cast(Table, NodeExecution.__table__)
_WORKFLOW_RUNS = cast(Table, WorkflowRun.__table__)


_CURRENT_VERSION = select(Workflow.version).where(
    Workflow.id == bindparam("workflow_id"),
    Workflow.user_id == bindparam("owner_id"),
    Workflow.deleted_at.is_(None),
)
"""The current version of the owner's workflow (the number only: a definition can be large),
built once: it is asked at every run start."""

_VARYING_NODE_COLUMNS = (
    "id",
    "node_id",
    "node_type",
    "status",
    "pending_parents",
    "idempotency_key",
)
"""The columns of a new node execution row that differ from node to node of one run."""
_SHARED_NODE_COLUMNS = ("run_id", "attempt", "attempts", "updated_at", "created_at")
"""The columns every new node execution row of one run holds alike."""
_NODE_ROW = _VARYING_NODE_COLUMNS + _SHARED_NODE_COLUMNS
"""The columns of a new node execution row, in the order its statements bind them."""


_RUN_ROW = (
    "id",
    "workflow_id",
    "workflow_version",
    "user_id",
    "api_key_id",
    "parent_run_id",
    "parent_node_id",
    "status",
    "scope",
    "target_node_id",
    "trigger_kind",
    "trigger_data",
    "inputs",
    "idempotency_key",
    "timeout_s",
    "cancel_requested",
    "use_cache",
    "use_pinned",
    "depth",
    "parent_attempt",
    "updated_at",
    "created_at",
)
"""The columns of a new run row (``RunRepo.create``): the ones the mapped class would insert.
The rest (outputs, error, timings) start NULL and are left out, as the ORM leaves them."""


_NEW_RUN_NULLS = tuple(c.key for c in _WORKFLOW_RUNS.c if c.key not in _RUN_ROW)
"""The run columns a new run leaves NULL."""


@cache
def _insert_sql(dialect: Dialect, table: Table, names: tuple[str, ...]) -> str:
    """An INSERT of one row of ``names`` into ``table``, bound by position in that order (a
    qmark paramstyle: SQLite's)."""
    if dialect.paramstyle != "qmark":
        raise RuntimeError(f"positional INSERTs are for SQLite, not {dialect.name}")
    quote = dialect.identifier_preparer.quote
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)})"
        f" VALUES ({', '.join('?' * len(names))})"
    )


def _insert_rows(
    conn: Connection, table: Table, names: tuple[str, ...], rows: list[tuple[Any, ...]], what: str
) -> None:
    """``rows`` (tuples of the columns ``names``) into ``table`` in one executemany.

    On SQLite on the driver's connection: what SQLAlchemy's executemany does, without its
    per-row and per-value work (the node rows were most of a 100-node run's start), bound as
    the column types bind (``storage.bound``). On PostgreSQL, Core's executemany (one
    multi-row INSERT): the table, not the mapped class, skips the ORM's bookkeeping.
    """
    dialect = conn.dialect
    try:
        if dialect.name == "sqlite":
            binders = processors(dialect, table, names)
            sqlite_connection(conn).executemany(
                _insert_sql(dialect, table, names), [bind(binders, row) for row in rows]
            )
        else:
            conn.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
    except (IntegrityError, sqlite3.IntegrityError) as exc:
        raise translate_integrity_error(exc, what=what) from None


class PlannedNodes(NamedTuple):
    """What the node rows of every run of one plan hold alike, a value a node in plan order
    (``planned_nodes``): the part of ``node_rows`` a plan's runs need not make again."""

    node_ids: tuple[str, ...]
    node_types: tuple[str, ...]
    statuses: tuple[NodeStatus, ...]
    """READY for a node with no unfinished parents, else PENDING."""
    pending: tuple[int, ...]
    """Its unfinished parents."""


def planned_nodes(nodes: Sequence[tuple[str, str, int]]) -> PlannedNodes:
    """``PlannedNodes`` of ``nodes`` (``NodeSpec`` or plain tuples: node id, type, unfinished
    parents)."""
    pending = tuple(node[2] for node in nodes)
    ready, waiting = NodeStatus.READY, NodeStatus.PENDING
    return PlannedNodes(
        node_ids=tuple(node[0] for node in nodes),
        node_types=tuple(node[1] for node in nodes),
        statuses=tuple(waiting if count else ready for count in pending),
        pending=pending,
    )


class NewNodes(NamedTuple):
    """A run's new node rows, column by column (``node_rows``)."""

    varying: tuple[Sequence[Any], ...]
    """One sequence a column of ``_VARYING_NODE_COLUMNS``, a value a node, in plan order."""
    shared: tuple[Any, ...]
    """The values of ``_SHARED_NODE_COLUMNS``, alike for every node."""

    @property
    def ids(self) -> list[str]:
        return cast(list[str], self.varying[0])


def _bound_nodes(dialect: Dialect, nodes: NewNodes) -> tuple[list[Any], list[Sequence[Any]]]:
    """``nodes`` bound as the column types bind (``storage.bound``): the shared values once,
    each varying column as a whole (most need no conversion at all)."""
    binders = processors(dialect, _NODE_EXECUTIONS, _NODE_ROW)
    count = len(_VARYING_NODE_COLUMNS)
    columns: list[Sequence[Any]] = [
        column if process is None else [process(value) for value in column]
        for process, column in zip(binders[:count], nodes.varying, strict=True)
    ]
    shared = [
        _bound(process, value) for process, value in zip(binders[count:], nodes.shared, strict=True)
    ]
    return shared, columns


_CHUNK_ROWS: Final = (64, 32, 16)
"""The row counts of the node INSERTs on SQLite, largest first: a run's rows go in chunks of
these sizes and one of the rest (100 rows: 64, 32 and 4; 3 rows: one of 3), so their
statements are few, one for a run of fewer than 16 nodes, and stay in the connection's
statement cache (18 shapes at most)."""


def _sqlite_chunks(count: int) -> list[tuple[int, int]]:
    """``(first row, rows)`` of each chunk of a run's ``count`` node rows (``_CHUNK_ROWS``)."""
    chunks = []
    first = 0
    for size in _CHUNK_ROWS:
        while count - first >= size:
            chunks.append((first, size))
            first += size
    if first < count:
        chunks.append((first, count - first))
    return chunks


@cache
def _sqlite_nodes_sql(dialect: Dialect, rows: int) -> str:
    """An INSERT of ``rows`` node rows in one statement: ``?1``... the shared values
    (``_SHARED_NODE_COLUMNS``), bound once, then the varying ones row by row. One statement
    checks its constraints' constant lists once, where one execution a row (an executemany)
    checked them at every row: a third of the cost of a row."""
    if dialect.paramstyle != "qmark":
        raise RuntimeError(f"positional INSERTs are for SQLite, not {dialect.name}")
    quote = dialect.identifier_preparer.quote
    shared = len(_SHARED_NODE_COLUMNS)
    varying = len(_VARYING_NODE_COLUMNS)
    tail = ", ".join(f"?{n}" for n in range(1, shared + 1))
    values = []
    for row in range(rows):
        first = shared + row * varying + 1
        values.append(f"({', '.join(f'?{n}' for n in range(first, first + varying))}, {tail})")
    return (
        f"INSERT INTO {quote(_NODE_EXECUTIONS.name)}"
        f" ({', '.join(quote(name) for name in _NODE_ROW)}) VALUES {', '.join(values)}"
    )


def _insert_node_rows(conn: Connection, nodes: NewNodes) -> None:
    """A run's node rows: on SQLite in a few multi-row INSERTs (``_sqlite_nodes_sql``), on
    PostgreSQL in one statement."""
    if not nodes.ids:
        return
    dialect = conn.dialect
    shared, columns = _bound_nodes(dialect, nodes)
    try:
        if dialect.name == "sqlite":
            raw = sqlite_connection(conn)
            # Row by row, column after column: each column laid in by one slice assignment.
            width = len(columns)
            values: list[Any] = [None] * (width * len(nodes.ids))
            for place, column in enumerate(columns):
                values[place::width] = column
            for first, rows in _sqlite_chunks(len(nodes.ids)):
                raw.execute(
                    _sqlite_nodes_sql(dialect, rows),
                    shared + values[first * width : (first + rows) * width],
                )
        else:
            conn.exec_driver_sql(_pg_nodes_sql(dialect), (*shared, _pg_node_values(columns)))
    except (IntegrityError, sqlite3.IntegrityError) as exc:
        raise translate_integrity_error(exc, what="node execution") from None


def insert_run(conn: Connection, run: tuple[Any, ...], nodes: NewNodes) -> None:
    """A new run's row (a ``_RUN_ROW`` tuple) and its node rows.

    On PostgreSQL in ONE statement (``pg_insert_run``). On SQLite two executions on the
    driver's connection.
    """
    dialect = conn.dialect
    if dialect.name == "sqlite":
        _insert_rows(conn, _WORKFLOW_RUNS, _RUN_ROW, [run], "run")
        _insert_node_rows(conn, nodes)
        return
    sql, args = pg_insert_run(dialect, run, nodes)
    try:
        conn.exec_driver_sql(sql, tuple(args))
    except IntegrityError as exc:
        raise translate_integrity_error(exc, what="run") from None


def pg_insert_run(dialect: Dialect, run: tuple[Any, ...], nodes: NewNodes) -> tuple[str, list[Any]]:
    """``insert_run`` on PostgreSQL: its ONE statement (the run's INSERT in a CTE, the node
    rows from one JSON array) and its arguments, bound as the columns' types bind: for
    ``exec_driver_sql`` or asyncpg's own connection alike."""
    run_values = bind(processors(dialect, _WORKFLOW_RUNS, _RUN_ROW), run)
    shared, columns = _bound_nodes(dialect, nodes)
    return _pg_start_sql(dialect), [*run_values, *shared, _pg_node_values(columns)]


def _bound(process: Processor, value: Any) -> Any:
    return value if process is None else process(value)


def _pg_cast(dialect: Dialect, table: Table, name: str) -> tuple[str, bool]:
    """The PostgreSQL type a column's bound value is sent as, and whether it is JSON (sent as
    the text SQLAlchemy's own binding makes, then cast)."""
    type_ = table.c[name].type
    if isinstance(type_, JSON):
        return "text", True
    return type_.compile(dialect=dialect), False


def _pg_nodes_select(dialect: Dialect, first: int) -> str:
    """The SELECT of the node rows from ``$first``...: the shared values, then the varying
    ones as one JSON array of rows (``_pg_node_values``)."""
    picks: dict[str, str] = {}
    n = first - 1
    for name in _SHARED_NODE_COLUMNS:
        n += 1
        cast_to, is_json = _pg_cast(dialect, _NODE_EXECUTIONS, name)
        picks[name] = f"${n}::{cast_to}" + ("::jsonb" if is_json else "")
    for place, name in enumerate(_VARYING_NODE_COLUMNS):
        cast_to, is_json = _pg_cast(dialect, _NODE_EXECUTIONS, name)
        picks[name] = f"(v.node ->> {place})::{cast_to}" + ("::jsonb" if is_json else "")
    return (
        f"INSERT INTO {_NODE_EXECUTIONS.name} ({', '.join(_NODE_ROW)})"
        f" SELECT {', '.join(picks[name] for name in _NODE_ROW)}"
        f" FROM jsonb_array_elements(${n + 1}::jsonb) AS v(node)"
    )


_ROWS_JSON: Final = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, separators=(",", ":")
).encode


def _pg_node_values(columns: Sequence[Sequence[Any]]) -> str:
    """The varying values of a run's node rows (bound, one sequence a column) as the JSON
    array of rows ``_pg_nodes_select`` reads: one text, where one array a column cost asyncpg
    two ``isinstance`` checks against abstract classes at every value (most of a node's
    share of the start on PostgreSQL). Strings and integers come back from JSON as they went
    in. Read as ``jsonb``, parsed once: as ``json`` each value read parsed its row again
    (server time of 100 rows: arrays 0.11 ms, json 0.59 ms, jsonb 0.09 ms)."""
    return _ROWS_JSON(list(zip(*columns, strict=True)))


@cache
def _pg_nodes_sql(dialect: Dialect) -> str:
    """``_insert_node_rows``' statement: ``$1``... the node rows' shared values, then their
    varying values (``_pg_node_values``)."""
    return _pg_nodes_select(dialect, 1)


@cache
def _pg_start_sql(dialect: Dialect) -> str:
    """``insert_run``'s statement: ``$1``... the run's ``_RUN_ROW`` values, the node rows'
    shared values, then their varying values (``_pg_node_values``)."""
    values = []
    for n, name in enumerate(_RUN_ROW, start=1):
        cast_to, is_json = _pg_cast(dialect, _WORKFLOW_RUNS, name)
        values.append(f"${n}::{cast_to}" + ("::jsonb" if is_json else ""))
    return (
        f"WITH run AS (INSERT INTO {_WORKFLOW_RUNS.name} ({', '.join(_RUN_ROW)})"
        f" VALUES ({', '.join(values)})) " + _pg_nodes_select(dialect, len(_RUN_ROW) + 1)
    )


@cache
def pg_checked_start_sql(
    dialect: Dialect,
    carried: str | None,
    carried_args: int,
    guard: str | None = None,
    guard_args: int = 0,
) -> str:
    """``pg_run_lookups_sql`` and ``pg_insert_run``'s write in ONE statement, for a run with no
    parent: its arguments are the look-ups' (``$1``... and ``carried_args`` of the carried
    SELECT), then ``guard_args`` of the ``guard`` SELECT (built to number its parameters from
    the one after the look-ups'), then ``pg_insert_run``'s. The run and its node rows are
    written only if the look-ups allow them as they are: the owner's workflow, not deleted, is
    at the run's version, the API key (if any) is the owner's, no parent run is named, the
    carried SELECT's first column is true, and so is the guard's (``ok``). Answers one row:
    the look-ups' (as ``pg_run_lookups_sql`` reads them), then whether the run was written
    (``written``), then the guard's columns."""
    first = PG_LOOKUPS_WIDTH + carried_args + guard_args + 1
    values = []
    for n, name in enumerate(_RUN_ROW, start=first):
        cast_to, is_json = _pg_cast(dialect, _WORKFLOW_RUNS, name)
        values.append(f"${n}::{cast_to}" + ("::jsonb" if is_json else ""))
    version = values[_RUN_ROW.index("workflow_version")]
    allowed = "" if carried is None else " AND look.limits_nothing"
    sources, guarded = "look", ""
    if guard is not None:
        sources, guarded = "look, guard", " AND guard.ok"
    lookups = pg_run_lookups_sql(carried)
    return (
        f"WITH look AS ({lookups}),"
        + ("" if guard is None else f" guard AS ({guard}),")
        + f" run AS (INSERT INTO {_WORKFLOW_RUNS.name} ({', '.join(_RUN_ROW)})"
        f" SELECT {', '.join(values)} FROM {sources}"
        f" WHERE look.current_version = {version} AND $3::varchar IS NULL"
        f" AND ($4::varchar IS NULL OR look.key_owner = $2::varchar){allowed}{guarded}"
        " RETURNING 1),"
        f" nodes AS ({_pg_nodes_select(dialect, first + len(_RUN_ROW))}"
        " WHERE EXISTS (SELECT FROM run))"
        " SELECT look.*, EXISTS (SELECT FROM run) AS written"
        + ("" if guard is None else ", guard.*")
        + f" FROM {sources}"
    )


def node_rows(run_id: str, planned: PlannedNodes) -> NewNodes:
    """The new node rows of ``run_id`` that ``planned`` plans, at attempt 1."""
    now = utcnow()
    node_ids = planned.node_ids
    return NewNodes(
        varying=(
            new_ids(_NODE_EXECUTION, len(node_ids)),
            node_ids,
            planned.node_types,
            planned.statuses,
            planned.pending,
            idempotency_keys(run_id, node_ids),
        ),
        shared=(run_id, 1, [], now, now),
    )


class NodeSpec(NamedTuple):
    """One node of a run to checkpoint: its id in the definition, its type, unfinished parents."""

    node_id: str
    node_type: str
    pending_parents: int


class DurationStats(NamedTuple):
    """The mean duration of successful runs (``avg_ms``) and how many runs it is the mean of."""

    avg_ms: float | None
    runs: int


def history_statement(
    *,
    owner_id: str,
    cursor: str | None = None,
    limit: int = 10,
    workflow_id: str | None = None,
    status: RunStatus | None = None,
    trigger: TriggerKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[WorkflowRun]:
    """The keyset query behind ``RunRepo.history``: ``limit + 1`` runs older than ``cursor``.

    ``since`` and ``until`` bound the runs' creation times (``since`` included, ``until``
    not) through the time in their ids, so a date range is a range of the same index walk.
    Public so that benchmarks and diagnostics can EXPLAIN exactly the statement the repo runs.
    """
    return history_query(
        select(WorkflowRun),
        owner_id=owner_id,
        workflow_id=workflow_id,
        status=None if status is None else status.value,
        trigger=None if trigger is None else trigger.value,
        since_id=None if since is None else run_id_floor(since),
        until_id=None if until is None else run_id_floor(until),
        cursor=cursor,
        fetch=limit + 1,
    )


_V = TypeVar("_V")
_Bound: TypeAlias = _V | BindParameter[_V]
"""A filter's value, or the bound parameter that will carry it."""


def history_query(
    selected: Select[Any],
    *,
    owner_id: _Bound[str],
    workflow_id: _Bound[str] | None,
    status: _Bound[str] | None,
    trigger: _Bound[str] | None,
    since_id: _Bound[str] | None,
    until_id: _Bound[str] | None,
    cursor: _Bound[str] | None,
    fetch: _Bound[int],
) -> Select[Any]:
    """``selected`` (columns of ``workflow_runs``) narrowed to the owner's runs by the filters
    given (values, or bound parameters for a statement built once), newest first, ``fetch``
    rows: the one keyset walk behind every run history. None leaves a filter out."""
    if workflow_id is None:
        query = selected.where(WorkflowRun.user_id == owner_id)
    else:
        # Owner scoping goes through the workflow (a run's owner is its workflow's owner), not
        # through workflow_runs.user_id: given both columns, PostgreSQL's generic plan for the
        # prepared statement ANDs two bitmaps and sorts every run of the workflow (1.1 s for a
        # workflow with 20,000 runs) instead of walking the (workflow_id, id) index backwards.
        # The EXISTS is evaluated once, before the walk.
        owned = (
            select(Workflow.id)
            .where(Workflow.id == workflow_id, Workflow.user_id == owner_id)
            .exists()
        )
        query = selected.where(WorkflowRun.workflow_id == workflow_id, owned)
    if status is not None:
        query = query.where(WorkflowRun.status == status)
    if trigger is not None:
        query = query.where(WorkflowRun.trigger_kind == trigger)
    if since_id is not None:
        query = query.where(WorkflowRun.id >= since_id)
    if until_id is not None:
        query = query.where(WorkflowRun.id < until_id)
    if cursor is not None:
        query = query.where(WorkflowRun.id < cursor)
    return query.order_by(WorkflowRun.id.desc()).limit(fetch)


def run_id_floor(moment: datetime) -> str:
    """The smallest run id made at ``moment``: runs created at or after it have ids >= it."""
    return id_floor(_RUN, _epoch_ms(moment))


def _checked_settings(
    scope: Any, trigger_kind: Any, target_node_id: str | None, timeout_s: float | None
) -> tuple[RunScope, TriggerKind]:
    """A new run's scope and trigger kind as enums; InputError for what cannot be."""
    scope = _enum(RunScope, scope, "scope")
    trigger_kind = _enum(TriggerKind, trigger_kind, "trigger_kind")
    if (scope is RunScope.FULL) != (target_node_id is None):
        raise InputError(
            "target_node_id is required for scope NODE and UPSTREAM, and refused for FULL",
            field="target_node_id",
        )
    if timeout_s is not None and not timeout_s > 0:
        raise InputError("timeout_s must be positive", field="timeout_s")
    return scope, trigger_kind


_OWNED_RUN = select(WorkflowRun.id).where(
    WorkflowRun.id == bindparam("run_id"), WorkflowRun.user_id == bindparam("owner_id")
)
_KEY_OWNER = select(ApiKey.user_id).where(ApiKey.id == bindparam("api_key_id"))
_CURRENT_VERSION_RAW = SqliteStatement(_CURRENT_VERSION)
_OWNED_RUN_RAW = SqliteStatement(_OWNED_RUN)
_KEY_OWNER_RAW = SqliteStatement(_KEY_OWNER)


class RunLookups(NamedTuple):
    """What the checks of a new run read: the owner's workflow's current version (None: no
    such workflow of the owner's), whether the parent run is the owner's, the API key's owner."""

    current_version: int | None
    parent_owned: bool
    key_owner: str | None


def run_lookups(
    conn: Connection,
    *,
    owner_id: str,
    workflow_id: str,
    parent_run_id: str | None = None,
    api_key_id: str | None = None,
) -> RunLookups:
    """``RunLookups`` read by Core statements on ``conn`` (in the caller's transaction); on
    SQLite, on sqlite3 itself (SQLAlchemy's per-execution work was most of their cost)."""
    if conn.dialect.name == "sqlite":
        raw = sqlite_connection(conn)
        version = _CURRENT_VERSION_RAW.first(raw, workflow_id=workflow_id, owner_id=owner_id)
        owned = parent_run_id is None or (
            _OWNED_RUN_RAW.first(raw, run_id=parent_run_id, owner_id=owner_id) is not None
        )
        owner = None if api_key_id is None else _KEY_OWNER_RAW.first(raw, api_key_id=api_key_id)
        return RunLookups(
            None if version is None else version[0], owned, None if owner is None else owner[0]
        )
    current = conn.execute(
        _CURRENT_VERSION, {"workflow_id": workflow_id, "owner_id": owner_id}
    ).scalar()
    owned = parent_run_id is None or (
        conn.execute(_OWNED_RUN, {"run_id": parent_run_id, "owner_id": owner_id}).first()
        is not None
    )
    key_owner = None
    if api_key_id is not None:
        key_owner = conn.execute(_KEY_OWNER, {"api_key_id": api_key_id}).scalar()
    return RunLookups(current, owned, key_owner)


PG_LOOKUPS_WIDTH: Final = 4
"""The columns of ``pg_run_lookups_sql``'s own look-ups (before a carried SELECT's)."""


@cache
def pg_run_lookups_sql(carried: str | None = None) -> str:
    """``run_lookups`` in ONE PostgreSQL statement, with the parent run's depth (read whoever
    owns it, as a sub-run's depth is): ``$1`` workflow id, ``$2`` owner id, ``$3`` parent run
    id, ``$4`` API key id (either may be NULL); one row of current version, parent depth,
    parent owned, key owner. ``carried``: a SELECT of exactly one row (its parameters from
    ``$5``) read in the same statement, its columns after those four; its first column,
    whether the run is allowed with nothing more to read, is named ``limits_nothing``."""
    workflows, runs = cast(Table, Workflow.__table__).name, _WORKFLOW_RUNS.name
    keys = cast(Table, ApiKey.__table__).name
    lookups = (
        f"SELECT (SELECT version FROM {workflows}"
        " WHERE id = $1::varchar AND user_id = $2::varchar AND deleted_at IS NULL)"
        " AS current_version,"
        f" (SELECT depth FROM {runs} WHERE id = $3::varchar) AS parent_depth,"
        f" EXISTS (SELECT 1 FROM {runs} WHERE id = $3::varchar AND user_id = $2::varchar)"
        " AS parent_owned,"
        f" (SELECT user_id FROM {keys} WHERE id = $4::varchar) AS key_owner"
    )
    if carried is None:
        return lookups
    return f"{lookups}, carried.* FROM ({carried}) AS carried(limits_nothing)"


def new_run_values(
    conn: Connection,
    *,
    owner_id: str,
    workflow_id: str,
    parent_run_id: str | None = None,
    api_key_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """``checked_run_values`` of what ``run_lookups`` reads on ``conn``."""
    found = run_lookups(
        conn,
        owner_id=owner_id,
        workflow_id=workflow_id,
        parent_run_id=parent_run_id,
        api_key_id=api_key_id,
    )
    return checked_run_values(
        found,
        owner_id=owner_id,
        workflow_id=workflow_id,
        parent_run_id=parent_run_id,
        api_key_id=api_key_id,
        **fields,
    )


class RunFields(TypedDict, total=False):
    """A new run's settings as ``RunRepo.create`` takes them; ``checked_run_values`` says what
    each means and holds their defaults."""

    workflow_id: Required[str]
    workflow_version: Required[int | None]
    scope: RunScope
    target_node_id: str | None
    trigger_kind: TriggerKind
    trigger_data: dict[str, Any] | None
    inputs: dict[str, Any] | None
    idempotency_key: str | None
    api_key_id: str | None
    parent_run_id: str | None
    parent_node_id: str | None
    timeout_s: float | None
    use_cache: bool
    use_pinned: bool
    depth: int
    parent_attempt: int | None


def checked_run_values(
    found: RunLookups,
    *,
    owner_id: str,
    workflow_id: str,
    workflow_version: int | None,
    scope: RunScope = RunScope.FULL,
    target_node_id: str | None = None,
    trigger_kind: TriggerKind = TriggerKind.MANUAL,
    trigger_data: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    api_key_id: str | None = None,
    parent_run_id: str | None = None,
    parent_node_id: str | None = None,
    timeout_s: float | None = None,
    use_cache: bool = True,
    use_pinned: bool = False,
    depth: int = 0,
    parent_attempt: int | None = None,
) -> dict[str, Any]:
    """The checks of ``RunRepo.create`` but the look-up of an earlier use of
    ``idempotency_key``, on what ``found`` read; the new run's ``_RUN_ROW`` values (nothing
    written).

    NotFound for a workflow, version, parent run or API key that is not ``owner_id``'s;
    InputError for settings that do not fit together (checked first).
    """
    scope, trigger_kind = _checked_settings(scope, trigger_kind, target_node_id, timeout_s)
    current = found.current_version
    if current is None:
        raise NotFound("workflow", workflow_id)
    if workflow_version is None:
        workflow_version = current
    if not 1 <= workflow_version <= current:
        raise NotFound("workflow version", f"{workflow_id}@{workflow_version}")
    if parent_run_id is not None and not found.parent_owned:
        raise NotFound("run", parent_run_id)
    if api_key_id is not None and found.key_owner != owner_id:
        raise NotFound("API key", api_key_id)
    now = utcnow()
    return {
        "id": new_id(_RUN),
        "workflow_id": workflow_id,
        "workflow_version": workflow_version,
        "user_id": owner_id,
        "api_key_id": api_key_id,
        "parent_run_id": parent_run_id,
        "parent_node_id": parent_node_id,
        "status": RunStatus.PENDING,
        "scope": scope,
        "target_node_id": target_node_id,
        "trigger_kind": trigger_kind,
        "trigger_data": trigger_data,
        "inputs": inputs or {},
        "idempotency_key": idempotency_key,
        "timeout_s": timeout_s,
        "cancel_requested": False,
        "use_cache": use_cache,
        "use_pinned": use_pinned,
        "depth": depth,
        "parent_attempt": parent_attempt,
        "created_at": now,
        "updated_at": now,
    }


def run_row(values: dict[str, Any]) -> tuple[Any, ...]:
    """``new_run_values``' run as a ``_RUN_ROW`` tuple (what ``insert_run`` takes)."""
    return tuple(values[name] for name in _RUN_ROW)


class RunRepo:
    """The runs of one owner. Methods flush but never commit: the caller owns the transaction."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

    async def create(self, **fields: Unpack[RunFields]) -> WorkflowRun:
        """A new PENDING run of the owner's workflow at ``workflow_version`` (None: its
        current version, read in the same statement that checks the workflow is the owner's).

        NotFound if the workflow (or the parent run, or the API key) is missing, soft-deleted or
        another user's, or if the version was never saved. InputError if ``target_node_id`` does
        not match ``scope`` (FULL takes none, NODE and UPSTREAM need one) or ``timeout_s`` is not
        positive.

        Idempotency: when ``idempotency_key`` was already used by this owner, the run created
        then is returned as it is now (whatever its status) and nothing new is written; so a
        client may safely retry a request whose answer it lost. Reusing a key for a different
        workflow is a Conflict. Keys are per owner: two users may use the same key.
        """
        run, fresh = await self._new_run(fields)
        if not fresh:
            return run
        idempotency_key = fields.get("idempotency_key")
        if idempotency_key is None:
            await self._insert_new(run, node_rows(run.id, planned_nodes(())))
            return run
        # A concurrent request with the same key may commit between our look-up and our insert;
        # the savepoint lets us lose that race politely and return the winner's run.
        try:
            async with self.session.begin_nested():
                self.session.add(run)
        except IntegrityError as exc:
            winner = await self._by_idempotency_key(idempotency_key)
            if winner is None:
                raise translate_integrity_error(exc, what="run") from None
            return _same_workflow(winner, fields["workflow_id"])
        return run

    async def _new_run(self, fields: RunFields) -> tuple[WorkflowRun, bool]:
        """The checks of ``create``, and the run it would write (not yet in the session), with
        True; or the run an earlier use of ``idempotency_key`` wrote, with False."""
        _checked_settings(
            fields.get("scope", RunScope.FULL),
            fields.get("trigger_kind", TriggerKind.MANUAL),
            fields.get("target_node_id"),
            fields.get("timeout_s"),
        )
        idempotency_key = fields.get("idempotency_key")
        if idempotency_key is not None:
            existing = await self._by_idempotency_key(idempotency_key)
            if existing is not None:
                return _same_workflow(existing, fields["workflow_id"]), False
        owner_id = self.owner_id
        values = await self.session.run_sync(
            lambda sync: new_run_values(sync.connection(), owner_id=owner_id, **fields)
        )
        return WorkflowRun(**values), True

    async def add_node_executions(
        self, *, run_id: str, nodes: Sequence[tuple[str, str, int]]
    ) -> int:
        """Checkpoint ``nodes`` (``NodeSpec`` or plain tuples) of the owner's run; count them.

        One executemany.

        A node with no unfinished parents starts READY, the others PENDING, all at attempt 1.
        NotFound for another user's run; Conflict if a node id is already checkpointed.
        """
        await self.get(run_id=run_id)
        return len(await self.insert_node_executions(run_id=run_id, nodes=nodes))

    async def insert_node_executions(
        self, *, run_id: str, nodes: Sequence[tuple[str, str, int]]
    ) -> list[str]:
        """``add_node_executions`` for a run this transaction has just created (so known to
        be the owner's): the rows only; their ids, in the order of ``nodes``."""
        if not nodes:
            return []
        rows = node_rows(run_id, planned_nodes(nodes))
        await self.session.run_sync(lambda sync: _insert_node_rows(sync.connection(), rows))
        return rows.ids

    async def get(self, *, run_id: str) -> WorkflowRun:
        """The owner's run, or NotFound (also when it is another user's)."""
        run = await self.session.scalar(self._one(run_id))
        if run is None:
            raise NotFound("run", run_id)
        return run

    async def get_with_nodes(self, *, run_id: str) -> tuple[WorkflowRun, list[NodeExecution]]:
        """The owner's run and its node executions in the order they were checkpointed."""
        run = await self.get(run_id=run_id)
        nodes = await self.session.scalars(
            select(NodeExecution).where(NodeExecution.run_id == run.id).order_by(NodeExecution.id)
        )
        return run, list(nodes)

    async def history(
        self,
        *,
        cursor: str | None = None,
        limit: int = 10,
        workflow_id: str | None = None,
        status: RunStatus | None = None,
        trigger: TriggerKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[WorkflowRun]:
        """The owner's runs, newest first, ``limit`` a page; optionally of one workflow, status
        or trigger kind, created in ``[since, until)``.

        Pass ``next_cursor`` back for the next (older) page. Because the cursor is the last id
        seen and ids only grow, runs created between two fetches never shift a later page: the
        walk has no duplicates and no gaps. A cursor that is not a run id is an InputError.
        """
        filters = checked_history_filters(
            cursor=cursor,
            limit=limit,
            workflow_id=workflow_id,
            status=status,
            trigger=trigger,
            since=since,
            until=until,
        )
        statement = history_statement(owner_id=self.owner_id, **filters._asdict())
        rows = (await self.session.scalars(statement)).all()
        return page_of(rows, limit=limit)

    async def started_by_trigger(
        self, *, workflow_id: str, trigger_id: str, limit: int = 10
    ) -> list[WorkflowRun]:
        """The newest ``limit`` runs that the trigger ``trigger_id`` of ``workflow_id`` started
        (a webhook's calls, a schedule's firings), newest first."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
        started_by = WorkflowRun.trigger_data["trigger_id"].as_string() == trigger_id
        rows = await self.session.scalars(
            select(WorkflowRun)
            .where(
                WorkflowRun.workflow_id == workflow_id,
                WorkflowRun.user_id == self.owner_id,
                WorkflowRun.trigger_kind.in_((TriggerKind.WEBHOOK, TriggerKind.SCHEDULE)),
                started_by,
            )
            .order_by(WorkflowRun.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def unfinished_top_level(self) -> list[str]:
        """The ids of the owner's runs not finished yet that no other run started (a sub-run
        ends with the run that started it)."""
        rows = await self.session.scalars(
            select(WorkflowRun.id).where(
                WorkflowRun.user_id == self.owner_id,
                WorkflowRun.status.in_(ACTIVE_RUN_STATUSES),
                WorkflowRun.parent_run_id.is_(None),
            )
        )
        return list(rows)

    def _one(self, run_id: str) -> Select[WorkflowRun]:
        return select(WorkflowRun).where(
            WorkflowRun.id == run_id, WorkflowRun.user_id == self.owner_id
        )

    async def _by_idempotency_key(self, key: str) -> WorkflowRun | None:
        return await self.session.scalar(
            select(WorkflowRun).where(
                WorkflowRun.user_id == self.owner_id, WorkflowRun.idempotency_key == key
            )
        )

    async def _insert_new(self, run: WorkflowRun, nodes: NewNodes) -> None:
        """Insert ``run`` (every column of ``_RUN_ROW`` set) and its node rows, and make the
        run the session's as a flush would: a later change to it is written as an UPDATE. No
        unit of work (it was a third of a run's start)."""
        row = tuple(getattr(run, name) for name in _RUN_ROW)
        await self.session.run_sync(lambda sync: insert_run(sync.connection(), row, nodes))
        # The rest of its columns are NULL in the row: set so, they are not loaded again.
        for name in _NEW_RUN_NULLS:
            setattr(run, name, None)
        make_transient_to_detached(run)
        self.session.add(run)


class HistoryFilters(NamedTuple):
    """A history page's cursor, size and filters, checked (``checked_history_filters``)."""

    cursor: str | None
    limit: int
    workflow_id: str | None
    status: RunStatus | None
    trigger: TriggerKind | None
    since: datetime | None
    until: datetime | None


def checked_history_filters(
    *,
    cursor: str | None,
    limit: int,
    workflow_id: str | None,
    status: RunStatus | None,
    trigger: TriggerKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> HistoryFilters:
    """The caller's limit, filters and cursor, checked (InputError naming the bad one); times
    given without a zone are UTC."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    if status is not None:
        status = _enum(RunStatus, status, "status")
    if trigger is not None:
        trigger = _enum(TriggerKind, trigger, "trigger")
    since = None if since is None else _utc(since)
    until = None if until is None else _utc(until)
    if since is not None and until is not None and until <= since:
        raise InputError("until must be later than since", field="until")
    return HistoryFilters(
        check_cursor(cursor, prefix=_RUN), limit, workflow_id, status, trigger, since, until
    )


async def active_runs_by_status(session: AsyncSession) -> dict[RunStatus, int]:
    """Instance-wide (every user's runs; for admins and monitoring): unfinished runs by status.

    Always has a key for each of PENDING, RUNNING and WAITING, zero when there are none.
    """
    counts: dict[RunStatus, int] = dict.fromkeys(ACTIVE_RUN_STATUSES, 0)
    rows = await session.execute(
        select(WorkflowRun.status, func.count())
        .where(WorkflowRun.status.in_(ACTIVE_RUN_STATUSES))
        .group_by(WorkflowRun.status)
    )
    for status, count in rows:
        counts[RunStatus(status)] = count
    return counts


async def average_successful_duration(
    session: AsyncSession, *, workflow_id: str | None = None
) -> DurationStats:
    """Instance-wide (for admins and monitoring): mean ``duration_ms`` of COMPLETED runs.

    Over every workflow, or one. ``avg_ms`` is None when no completed run has a duration.
    """
    query = select(func.avg(WorkflowRun.duration_ms), func.count(WorkflowRun.duration_ms)).where(
        WorkflowRun.status == RunStatus.COMPLETED
    )
    if workflow_id is not None:
        query = query.where(WorkflowRun.workflow_id == workflow_id)
    avg_ms, count = (await session.execute(query)).one()
    return DurationStats(avg_ms=None if avg_ms is None else float(avg_ms), runs=int(count))


def _same_workflow(run: WorkflowRun, workflow_id: str) -> WorkflowRun:
    if run.workflow_id != workflow_id:
        raise Conflict(
            f"idempotency key {run.idempotency_key!r} was already used for another workflow"
        )
    return run


def _utc(moment: datetime) -> datetime:
    """The moment with a zone; a time without one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _epoch_ms(moment: datetime) -> int:
    return max(0, int(_utc(moment).timestamp() * 1000))


def _enum(kind: type[_E], value: Any, field: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"unknown {field} {value!r}", field=field) from None
