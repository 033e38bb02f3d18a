"""Deleting an account with everything it owns, in paced batches.

Deleting the ``users`` row alone would cascade to every run, node execution, usage row and
message of the account in one transaction: minutes of holding SQLite's only write lock for a
busy account. ``delete_account`` first deletes the big tables' rows in small paced batches
(see BatchPacer), then the row, whose cascade is left with only a handful of rows. Audit entries
stay, their actor NULL (the log outlives the people in it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from flowloom.storage.database import Database
from flowloom.storage.maintenance.retention import in_batches
from flowloom.storage.tables import (
    AiGeneration,
    Artifact,
    Message,
    Thread,
    Usage,
    User,
    ValidationLog,
    Workflow,
    WorkflowMemory,
    WorkflowRun,
    WorkflowVersion,
)

__all__ = ["delete_account"]


async def delete_account(db: Database, *, user_id: str) -> dict[str, int]:
    """Delete the user and all they own; rows deleted per table (the final cascade of small
    tables is counted as ``users``: 1). Their runs must have ended or been cancelled first.
    Returns ``{}`` if there is no such user."""
    async with db.read() as session:
        if await session.get(User, user_id) is None:
            return {}
    theirs = select(Workflow.id).where(Workflow.user_id == user_id).scalar_subquery()
    their_threads = select(Thread.id).where(Thread.user_id == user_id).scalar_subquery()
    steps: list[tuple[str, Any, Any]] = [
        ("workflow_runs", WorkflowRun, WorkflowRun.user_id == user_id),
        ("usage", Usage, Usage.user_id == user_id),
        ("messages", Message, Message.thread_id.in_(their_threads)),
        ("ai_generation_history", AiGeneration, AiGeneration.user_id == user_id),
        ("validation_logs", ValidationLog, ValidationLog.workflow_id.in_(theirs)),
        ("workflow_versions", WorkflowVersion, WorkflowVersion.workflow_id.in_(theirs)),
        ("artifacts", Artifact, Artifact.user_id == user_id),
        ("workflow_memory", WorkflowMemory, WorkflowMemory.user_id == user_id),
    ]
    deleted: dict[str, int] = {}
    for name, table, condition in steps:

        def deleting(ids: list[str], table: Any = table) -> Any:
            return delete(table).where(table.id.in_(ids))

        deleted[name] = await in_batches(db, table.id, condition, deleting)
    async with db.write() as session:
        result = await session.execute(delete(User).where(User.id == user_id))
    deleted["users"] = int(getattr(result, "rowcount", 0) or 0)
    return deleted
