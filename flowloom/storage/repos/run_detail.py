"""The rows of a run's detail (the run, its node executions, the usage of its model calls), read
on a plain connection: what the runs API answers every waited-for run with.

No session, no transaction, no ORM objects: two indexed statements for a run that made no model
calls (the run row says whether it made any), a third for one that did. Each row has the columns
the detail shows (``RUN_COLUMNS``, ``NODE_COLUMNS``) as attributes, no others: a finished run's
detail is read for every run the API waits for, and each column more is decoded for nothing
(the owner, the leases, the trigger's data, the idempotency key, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, select

from flowloom.exceptions import NotFound
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


@dataclass(frozen=True, slots=True)
class RunDetailRows:
    run: Row[Any]
    nodes: list[Row[Any]]
    """In the order they were checkpointed."""
    usage: dict[str | None, UsageTotals]
    """By node execution id (None: calls tied to no node); empty for a run with no calls."""


def read_run_detail(conn: Connection, *, owner_id: str, run_id: str) -> RunDetailRows:
    """The owner's run, its node executions and its usage by node; NotFound also for another
    user's run. For ``Database.run_read``."""
    run = cast(
        "Row[Any] | None",
        conn.execute(_OWNED_RUN, {"run_id": run_id, "owner_id": owner_id}).first(),
    )
    if run is None:
        raise NotFound("run", run_id)
    nodes = list(conn.execute(_RUN_NODES, {"run_id": run_id}))
    usage = (
        usage_by_node_of_run(conn, owner_id=owner_id, run_id=run_id)
        if getattr(run, _MADE_CALLS)
        else {}
    )
    return RunDetailRows(run, nodes, usage)
