"""A page of the owner's run history read as plain rows: what the runs API lists (``GET /runs``).

The keyset walk of ``history_query``, built once per combination of filters with bound
parameters (a statement made afresh per call costs SQLAlchemy a new cache key each time), on
the driver's own connection: no session, no transaction, no ORM objects. Each value is
converted as its column type converts it, so a row holds what SQLAlchemy would have read.

On PostgreSQL it is one statement on a reader's asyncpg connection (prepared once per
connection). Every filter of status or of trigger has an index of its own beside the owner or
the workflow (``workflow_runs``' indexes), so a walk stops within ``limit + 1`` rows of it. On
SQLite such a walk runs on the event loop's thread (``run_read(inline=True)``); a filter of both
status and trigger follows one of the two indexes and may step over many runs before it has a
page, so that walk goes to a reader thread.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Dialect, Select, Table, bindparam, select

from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.enums import RunStatus, TriggerKind
from flowloom.storage.pages import Page, page_of
from flowloom.storage.raw_statements import RawStatement
from flowloom.storage.repos.runs import checked_history_filters, history_query, run_id_floor
from flowloom.storage.tables import WorkflowRun

__all__ = ["HistoryRow", "read_history"]

_RUNS = cast(Table, WorkflowRun.__table__)


class HistoryRow(NamedTuple):
    """A run as its history lists it: the columns of ``workflow_runs`` a list entry shows."""

    id: str
    workflow_id: str
    workflow_version: int
    status: str
    scope: str
    target_node_id: str | None
    trigger_kind: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    use_pinned: bool


class _Shape(NamedTuple):
    """Which optional filters a history statement has."""

    workflow: bool
    status: bool
    trigger: bool
    since: bool
    until: bool
    cursor: bool


def _given(present: bool, name: str) -> Any:
    return bindparam(name) if present else None


@cache
def _statement(shape: _Shape) -> Select[Any]:
    return history_query(
        select(*(_RUNS.c[name] for name in HistoryRow._fields)),
        owner_id=bindparam("owner_id"),
        workflow_id=_given(shape.workflow, "workflow_id"),
        status=_given(shape.status, "status"),
        trigger=_given(shape.trigger, "trigger"),
        since_id=_given(shape.since, "since_id"),
        until_id=_given(shape.until, "until_id"),
        cursor=_given(shape.cursor, "cursor"),
        fetch=bindparam("fetch"),
    )


@cache
def _raw_statement(shape: _Shape, dialect: Dialect) -> RawStatement:
    return RawStatement(_statement(shape), dialect)


async def read_history(
    db: Database,
    *,
    owner_id: str,
    cursor: str | None = None,
    limit: int = 10,
    workflow_id: str | None = None,
    status: RunStatus | None = None,
    trigger: TriggerKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[HistoryRow]:
    """The pages of ``RunRepo(...).history(...)`` (the same checks, the same runs in the same
    order) as ``HistoryRow``s, in one hop."""
    checked = checked_history_filters(
        cursor=cursor,
        limit=limit,
        workflow_id=workflow_id,
        status=status,
        trigger=trigger,
        since=since,
        until=until,
    )
    shape = _Shape(
        workflow=checked.workflow_id is not None,
        status=checked.status is not None,
        trigger=checked.trigger is not None,
        since=checked.since is not None,
        until=checked.until is not None,
        cursor=checked.cursor is not None,
    )
    values: dict[str, Any] = {
        "owner_id": owner_id,
        "workflow_id": checked.workflow_id,
        "status": None if checked.status is None else checked.status.value,
        "trigger": None if checked.trigger is None else checked.trigger.value,
        "since_id": None if checked.since is None else run_id_floor(checked.since),
        "until_id": None if checked.until is None else run_id_floor(checked.until),
        "cursor": checked.cursor,
        "fetch": checked.limit + 1,
    }

    if not db.is_sqlite:
        statement = _raw_statement(shape, db.engine.dialect)
        async with db.pg_read_connection() as pg:
            found = await pg.fetch(statement.sql, *statement.args(values))
        return page_of(
            [HistoryRow._make(statement.converted(row)) for row in found], limit=checked.limit
        )

    def fetch(conn: Connection) -> list[HistoryRow]:
        statement = _raw_statement(shape, conn.dialect)
        found = sqlite_connection(conn).execute(statement.sql, statement.args(values))
        return [HistoryRow._make(statement.converted(row)) for row in found]

    bounded = not (shape.status and shape.trigger)
    return page_of(await db.run_read(fetch, inline=bounded), limit=checked.limit)
