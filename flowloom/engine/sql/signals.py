"""What processes sharing one database tell each other through it (distributed mode).

The database stays the truth: a run needs a driver when it is PENDING or RUNNING, or WAITING
with something to do (a node answered and READY again, a timed wait that came due, or a
cancellation asked for). The API writes answers and cancellations here (``answer_waiting``,
``request_cancel``); the worker driving the run reads them back (``signals``) and posts them to
its driver, as embedded mode's ``Engine.answer`` and ``Engine.cancel`` post them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from flowloom.engine.ports import RunResult, Signals
from flowloom.exceptions import Conflict, NotFound
from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun

__all__ = [
    "answer_waiting",
    "attempt_wanted",
    "request_cancel",
    "runs_needing_a_driver",
    "settled",
    "signals",
]

_UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)


def _due(wait: Mapping[str, Any] | None, now: datetime) -> bool:
    if not wait or "answer" in wait:
        return False
    raw = wait.get("resume_at")
    return isinstance(raw, str) and datetime.fromisoformat(raw) <= now


_RUNS = cast(Table, WorkflowRun.__table__)
_NODES = cast(Table, NodeExecution.__table__)
_UNFINISHED_RUNS = select(_RUNS.c.id, _RUNS.c.status, _RUNS.c.cancel_requested).where(
    _RUNS.c.status.in_([status.value for status in _UNFINISHED])
)
_OLD_UNFINISHED_RUNS = _UNFINISHED_RUNS.where(_RUNS.c.created_at < bindparam("before"))
_UNFINISHED_OF = _UNFINISHED_RUNS.where(_RUNS.c.id.in_(bindparam("run_ids", expanding=True)))
_READY_OR_WAITING = select(_NODES.c.run_id, _NODES.c.status, _NODES.c.wait).where(
    _NODES.c.run_id.in_(bindparam("run_ids", expanding=True)),
    _NODES.c.status.in_([NodeStatus.READY.value, NodeStatus.WAITING.value]),
)
_CANCELLED_OF = select(_RUNS.c.id).where(
    _RUNS.c.id.in_(bindparam("run_ids", expanding=True)),
    _RUNS.c.cancel_requested.is_(True),
    _RUNS.c.status.in_([status.value for status in _UNFINISHED]),
)
_READY_OF = select(_NODES.c.run_id, _NODES.c.node_id, _NODES.c.wait).where(
    _NODES.c.run_id.in_(bindparam("run_ids", expanding=True)),
    _NODES.c.status == NodeStatus.READY.value,
)
"""The statements of the sweep and the watch, built once: each asks several times a second in
every worker, so neither an ORM session nor a statement built anew is paid per look."""

_PG_LIVE = ", ".join(f"'{status.value}'" for status in _UNFINISHED)
_PG_RUNS = f"SELECT id, status, cancel_requested FROM workflow_runs WHERE status IN ({_PG_LIVE})"
_PG_READY_OR_WAITING = f"""
SELECT run_id, status, wait FROM node_executions
WHERE run_id = ANY($1::varchar[])
AND status IN ('{NodeStatus.READY.value}', '{NodeStatus.WAITING.value}')
"""
_PG_CANCELLED_OF = f"""
SELECT id FROM workflow_runs
WHERE id = ANY($1::varchar[]) AND cancel_requested AND status IN ({_PG_LIVE})
"""
_PG_READY_OF = f"""
SELECT run_id, node_id, wait FROM node_executions
WHERE run_id = ANY($1::varchar[]) AND status = '{NodeStatus.READY.value}'
"""
"""The same statements for PostgreSQL, sent on a pooled asyncpg connection
(``Database.asyncpg_connection``): a look through SQLAlchemy's ``run_sync`` cost a worker
~2 ms of CPU, four times a second in the sweeping process, where asyncpg's cached prepared
statement costs a tenth of it. Every column they filter on is indexed."""


def _pg_runs(*, of_ids: bool, old: bool) -> str:
    """``_PG_RUNS`` for the runs of ``$1`` (``of_ids``) and/or created before the last
    parameter (``old``)."""
    sql = _PG_RUNS
    if of_ids:
        sql += " AND id = ANY($1::varchar[])"
    if old:
        sql += f" AND created_at < ${2 if of_ids else 1}"
    return sql


async def runs_needing_a_driver(
    db: Database,
    *,
    now: datetime,
    run_ids: Collection[str] | None = None,
    older_than_s: float = 0.0,
) -> list[str]:
    """The unfinished runs (of ``run_ids``, or all created over ``older_than_s`` ago) that a
    driver has work in: PENDING or RUNNING, or WAITING with a READY node, a due timer, or a
    cancellation requested."""
    if run_ids is not None:
        if not run_ids:
            return []
        params: dict[str, Any] = {"run_ids": list(run_ids)}
        query = _UNFINISHED_OF
        if older_than_s > 0:
            query = query.where(_RUNS.c.created_at < bindparam("before"))
    else:
        params, query = {}, _UNFINISHED_RUNS
        if older_than_s > 0:
            query = _OLD_UNFINISHED_RUNS
    if older_than_s > 0:
        params["before"] = now - timedelta(seconds=older_than_s)
    if not db.is_sqlite:
        return await _pg_runs_needing_a_driver(db, now, params)

    def read(conn: Connection) -> tuple[Sequence[Any], Sequence[Any]]:
        runs = conn.execute(query, params).all()
        waiting = [
            run_id
            for run_id, status, cancelling in runs
            if status == RunStatus.WAITING and not cancelling
        ]
        if not waiting:
            return runs, []
        return runs, conn.execute(_READY_OR_WAITING, {"run_ids": waiting}).all()

    runs, nodes = await db.run_read(read)
    return _needing(runs, nodes, now)


async def _pg_runs_needing_a_driver(
    db: Database, now: datetime, params: Mapping[str, Any]
) -> list[str]:
    """``runs_needing_a_driver`` on PostgreSQL (``params``: its ``run_ids`` and ``before``)."""
    args = [value for key in ("run_ids", "before") if (value := params.get(key)) is not None]
    sql = _pg_runs(of_ids="run_ids" in params, old="before" in params)
    async with db.asyncpg_connection() as pg:
        runs = await pg.fetch(sql, *args)
        waiting = [
            run_id
            for run_id, status, cancelling in runs
            if status == RunStatus.WAITING and not cancelling
        ]
        nodes = await pg.fetch(_PG_READY_OR_WAITING, waiting) if waiting else []
    return _needing(runs, nodes, now)


def _needing(runs: Sequence[Any], nodes: Sequence[Any], now: datetime) -> list[str]:
    """Of the unfinished ``runs`` (id, status, cancel asked) and the READY or WAITING
    ``nodes`` of those WAITING (run id, status, wait): the runs a driver has work in."""
    needed = [
        run_id for run_id, status, cancelling in runs if status != RunStatus.WAITING or cancelling
    ]
    chosen: set[str] = set()
    for run_id, status, wait in nodes:
        if run_id not in chosen and (status == NodeStatus.READY or _due(wait, now)):
            chosen.add(run_id)
            needed.append(run_id)
    return needed


async def signals(db: Database, run_ids: Collection[str]) -> Signals:
    """Of ``run_ids``: the unfinished runs whose cancellation was asked for, and the nodes
    answered (READY with an answer in their wait) since their driver loaded them."""
    if not run_ids:
        return Signals((), ())
    params = {"run_ids": list(run_ids)}
    cancelled: Sequence[Any]
    ready: Sequence[Any]
    if db.is_sqlite:

        def read(conn: Connection) -> tuple[Sequence[Any], Sequence[Any]]:
            cancelled = conn.execute(_CANCELLED_OF, params).scalars().all()
            return cancelled, conn.execute(_READY_OF, params).all()

        cancelled, ready = await db.run_read(read)
    else:
        async with db.asyncpg_connection() as pg:
            cancelled = [row[0] for row in await pg.fetch(_PG_CANCELLED_OF, params["run_ids"])]
            ready = await pg.fetch(_PG_READY_OF, params["run_ids"])
    answers = tuple(
        (run_id, node_id, dict(wait["answer"]))
        for run_id, node_id, wait in ready
        if isinstance(wait, dict) and isinstance(wait.get("answer"), dict)
    )
    return Signals(tuple(cancelled), answers)


async def answer_waiting(
    db: Database, run_id: str, node_id: str, answer: Mapping[str, Any], *, now: datetime
) -> None:
    """Apply an answer to a WAITING node's row, as ``RunState.answer`` applies it to the slot:
    the node READY again, the answer in its wait. One transaction, the run row locked.
    NotFound for an unknown run or node, Conflict for a finished run or a node not WAITING."""
    async with db.write() as session:
        run = await session.get(WorkflowRun, run_id, with_for_update=True)
        if run is None:
            raise NotFound("run", run_id)
        if run.status in FINISHED_RUN_STATUSES:
            raise Conflict(f"run {run_id!r} already finished as {run.status}")
        row = await session.scalar(
            select(NodeExecution)
            .where(NodeExecution.run_id == run_id, NodeExecution.node_id == node_id)
            .with_for_update()
        )
        if row is None:
            raise NotFound("node execution", f"{run_id}/{node_id}")
        if row.status != NodeStatus.WAITING:
            raise Conflict(f"node {node_id!r} is {row.status}, not WAITING")
        wait = dict(row.wait or {})
        if wait.get("kind") == "breakpoint":
            action = answer.get("action", "continue")
            debug = await session.scalar(select(DebugSession).where(DebugSession.run_id == run_id))
            if action not in ("step", "continue") or debug is None:
                raise Conflict("a breakpoint is answered with action 'step' or 'continue'")
            debug.mode = action
            debug.paused_node_id = None
            wait["breakpoint_passed"] = True
        wait["answer"] = dict(answer)
        wait["answered_at"] = now.isoformat()
        row.wait = wait
        row.status = NodeStatus.READY
        row.retry_at = None


async def request_cancel(db: Database, run_id: str) -> bool:
    """Mark the run's cancellation as asked for; False when it is CANCELLED already (nothing
    to do). NotFound for an unknown run, Conflict for one that completed or failed."""
    async with db.write() as session:
        run = await session.get(WorkflowRun, run_id, with_for_update=True)
        if run is None:
            raise NotFound("run", run_id)
        if run.status == RunStatus.CANCELLED:
            return False
        if run.status in FINISHED_RUN_STATUSES:
            raise Conflict(f"run {run_id!r} already finished as {run.status}")
        run.cancel_requested = True
        return True


_SETTLED = select(
    WorkflowRun.id,
    WorkflowRun.status,
    WorkflowRun.outputs,
    WorkflowRun.error,
    WorkflowRun.duration_ms,
    WorkflowRun.cancel_requested,
    select(NodeExecution.id)
    .where(NodeExecution.run_id == WorkflowRun.id, NodeExecution.status == NodeStatus.READY)
    .exists(),
).where(WorkflowRun.id == bindparam("run_id"))


async def settled(db: Database, run_id: str, *, finished_only: bool) -> tuple[RunResult, bool]:
    """The run's outcome now, and whether a waiter may stop: it finished, or (unless
    ``finished_only``) it is WAITING with nothing for a worker to do.

    One statement, so one snapshot: read in two, a driver's commit between them could show the
    run still WAITING and its answered node already past READY (a waiter stopped too early).
    """
    found = await db.run_read(
        lambda conn: conn.execute(_SETTLED, {"run_id": run_id}).first(), inline=True
    )
    if found is None:
        raise NotFound("run", run_id)
    id_, status, outputs, error, duration_ms, cancelling, any_ready = found
    result = RunResult(
        run_id=id_, status=RunStatus(status), outputs=outputs, error=error, duration_ms=duration_ms
    )
    if result.status in FINISHED_RUN_STATUSES:
        return result, True
    if finished_only or result.status is not RunStatus.WAITING or cancelling:
        return result, False
    return result, not any_ready


async def attempt_wanted(db: Database, row_id: str, attempt: int) -> bool:
    """Whether node execution ``row_id`` is still RUNNING as ``attempt`` (a worker of a routed
    queue asks before it starts work that a driver elsewhere may have given up on)."""
    query = select(NodeExecution.status, NodeExecution.attempt).where(NodeExecution.id == row_id)
    async with db.read() as session:
        found = (await session.execute(query)).first()
    return found is not None and found[0] == NodeStatus.RUNNING and found[1] == attempt
