"""Retention of everything but runs: usage, audit, generation and validation rows deleted, node
inputs and outputs cleared, once they are older than the instance keeps them.

Every table here has time-ordered ids, so "older than" is a range of the primary key: each
batch is the next ids after the last one seen (no ties, so no row is ever skipped), chosen in a
read transaction and deleted (or cleared) in a short write transaction of its own, paced by a
BatchPacer so writers never wait long behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, delete, null, select, update

from flowloom.ids import PREFIXES, id_floor
from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES
from flowloom.storage.maintenance.pacing import BatchPacer
from flowloom.storage.tables import (
    AiGeneration,
    AuditEntry,
    NodeExecution,
    Usage,
    ValidationLog,
    WorkflowRun,
)

__all__ = [
    "RETAINED_TABLES",
    "RetainedTable",
    "clear_node_outputs",
    "in_batches",
    "prune_table",
]

_LARGEST_BATCH: Final = 2_000


@dataclass(frozen=True, slots=True)
class RetainedTable:
    """A table whose old rows are deleted, by the instance setting that says how old."""

    setting: str
    table: Table
    prefix: str


RETAINED_TABLES: Final = (
    RetainedTable("retain_usage_days", Usage.__table__, PREFIXES["usage"]),  # type: ignore[arg-type]
    RetainedTable("retain_audit_days", AuditEntry.__table__, PREFIXES["audit_log"]),  # type: ignore[arg-type]
    RetainedTable(
        "retain_generations_days",
        AiGeneration.__table__,  # type: ignore[arg-type]
        PREFIXES["ai_generation_history"],
    ),
    RetainedTable(
        "retain_validation_days",
        ValidationLog.__table__,  # type: ignore[arg-type]
        PREFIXES["validation_logs"],
    ),
)


def _floor(prefix: str, cutoff: datetime) -> str:
    return id_floor(prefix, int(cutoff.timestamp() * 1000))


async def prune_table(db: Database, retained: RetainedTable, *, cutoff: datetime) -> int:
    """Delete the rows of ``retained.table`` made before ``cutoff``; how many went."""
    table = retained.table
    id_column, created_at = table.c.id, table.c.created_at
    older = (id_column < _floor(retained.prefix, cutoff)) & (created_at < cutoff)

    def deleting(ids: list[str]) -> Any:
        return delete(table).where(id_column.in_(ids))

    return await in_batches(db, id_column, older, deleting)


async def clear_node_outputs(db: Database, *, cutoff: datetime) -> int:
    """Clear the inputs and outputs of node executions of finished runs made before ``cutoff``
    (their cache signature too: a cleared output can never be reused); how many were cleared."""
    finished = (
        select(WorkflowRun.id)
        .where(
            WorkflowRun.id == NodeExecution.run_id,
            WorkflowRun.status.in_(FINISHED_RUN_STATUSES),
        )
        .exists()
    )
    older = (
        (NodeExecution.id < _floor(PREFIXES["node_executions"], cutoff))
        & (NodeExecution.created_at < cutoff)
        & ((NodeExecution.outputs.is_not(None)) | (NodeExecution.inputs.is_not(None)))
        & finished
    )

    def clearing(ids: list[str]) -> Any:
        return (
            update(NodeExecution)
            .where(NodeExecution.id.in_(ids))
            .values(inputs=null(), outputs=null(), cache_signature=None)
        )

    return await in_batches(db, NodeExecution.id, older, clearing)  # type: ignore[arg-type]


async def in_batches(
    db: Database,
    id_column: ColumnElement[str],
    condition: ColumnElement[bool],
    statement: Callable[[list[str]], Any],
) -> int:
    """Apply ``statement(ids)`` to the rows matching ``condition``, ids ascending, a paced
    batch per write transaction; how many rows it touched."""
    pacer = BatchPacer(largest=_LARGEST_BATCH, first=200)
    after: str | None = None
    done = 0
    while True:
        query = select(id_column).where(condition).order_by(id_column).limit(pacer.size)
        if after is not None:
            query = query.where(id_column > after)
        async with db.read() as session:
            ids = list((await session.scalars(query)).all())
        if not ids:
            return done
        after = ids[-1]
        async with pacer.timed(), db.write() as session:
            result = await session.execute(
                statement(ids).execution_options(synchronize_session=False)
            )
        done += int(getattr(result, "rowcount", 0) or 0)
        await pacer.pause()
