"""The rows of a run's detail (the run, its node executions, the usage of its model calls): what
the runs API answers every waited-for run with.

No session, no transaction, no ORM objects: two indexed statements for a run that made no model
calls (the run row says whether it made any), a third for one that did. On PostgreSQL the two
run on a reader's own asyncpg connection, prepared once per connection (no greenlet hop, no
SQLAlchemy execution: those cost more than the reads); on SQLite inline on a plain connection.
Each row is a dict of the columns the detail shows (``RUN_COLUMNS``, ``NODE_COLUMNS``), no
others: a finished run's detail is read for every run the API waits for, and each column more
is decoded for nothing (the owner, the leases, the trigger's data, the idempotency key, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select

from flowloom.exceptions import NotFound
from flowloom.storage.database import Database
from flowloom.storage.raw_statements import PgStatement
from flowloom.storage.repos.usage import UsageTotals, usage_by_node_of_run
from flowloom.storage.tables import NodeExecution, Usage, WorkflowRun

__all__ = ["NODE_COLUMNS", "RUN_COLUMNS", "RunDetailRows", "read_run_detail"]

_MADE_CALLS = "made_calls"

RUN_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_version",
    "status",
    "scope",
    "target_node_id",
    "trigger_kind",
    "inputs",
    "outputs",
    "error",
    "cancel_requested",
    "use_pinned",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
)
"""The columns of a run its detail shows."""
NODE_COLUMNS = (
    "id",
    "node_id",
    "node_type",
    "status",
    "attempt",
    "inputs",
    "outputs",
    "error",
    "attempts",
    "wait",
    "cached_from_id",
    "started_at",
    "finished_at",
    "duration_ms",
)
"""The columns of a node execution its run's detail shows (``id``: its usage's key)."""

_RUNS = cast(Table, WorkflowRun.__table__)
_NODES = cast(Table, NodeExecution.__table__)
_OWNED_RUN = select(
    *(_RUNS.c[name] for name in RUN_COLUMNS),
    select(Usage.id)
    .where(Usage.run_id == WorkflowRun.id, Usage.user_id == WorkflowRun.user_id)
    .exists()
    .label(_MADE_CALLS),
).where(WorkflowRun.id == bindparam("run_id"), WorkflowRun.user_id == bindparam("owner_id"))
_RUN_NODES = (
    select(*(_NODES.c[name] for name in NODE_COLUMNS))
    .where(NodeExecution.run_id == bindparam("run_id"))
    .order_by(NodeExecution.id)
)


_OWNED_RUN_PG = PgStatement(_OWNED_RUN)
_RUN_NODES_PG = PgStatement(_RUN_NODES)
_RUN_FIELDS = (*RUN_COLUMNS, _MADE_CALLS)


@dataclass(frozen=True, slots=True)
class RunDetailRows:
    run: dict[str, Any]
    """``RUN_COLUMNS``, and ``made_calls``: whether the run made any model call."""
    nodes: list[dict[str, Any]]
    """``NODE_COLUMNS`` of each, in the order they were checkpointed."""
    usage: dict[str | None, UsageTotals]
    """By node execution id (None: calls tied to no node); empty for a run with no calls."""


async def read_run_detail(db: Database, *, owner_id: str, run_id: str) -> RunDetailRows:
    """The owner's run, its node executions and its usage by node; NotFound also for another
    user's run."""
    if db.is_sqlite:
        return await db.run_read(
            lambda conn: _read_on(conn, owner_id=owner_id, run_id=run_id), inline=True
        )
    async with db.pg_read_connection() as pg:
        found = await _OWNED_RUN_PG.fetchrow(pg, run_id=run_id, owner_id=owner_id)
        if found is None:
            raise NotFound("run", run_id)
        nodes = [
            dict(zip(NODE_COLUMNS, row, strict=True))
            for row in await _RUN_NODES_PG.fetch(pg, run_id=run_id)
        ]
    run = dict(zip(_RUN_FIELDS, found, strict=True))
    usage: dict[str | None, UsageTotals] = {}
    if run[_MADE_CALLS]:
        usage = await db.run_read(
            lambda conn: usage_by_node_of_run(conn, owner_id=owner_id, run_id=run_id)
        )
    return RunDetailRows(run, nodes, usage)


def _read_on(conn: Connection, *, owner_id: str, run_id: str) -> RunDetailRows:
    """``read_run_detail`` on a plain connection (``Database.run_read``)."""
    found = conn.execute(_OWNED_RUN, {"run_id": run_id, "owner_id": owner_id}).first()
    if found is None:
        raise NotFound("run", run_id)
    nodes = [row._asdict() for row in conn.execute(_RUN_NODES, {"run_id": run_id})]
    run = found._asdict()
    usage = usage_by_node_of_run(conn, owner_id=owner_id, run_id=run_id) if run[_MADE_CALLS] else {}
    return RunDetailRows(run, nodes, usage)
