"""Runs and their checkpoints: workflow runs, node executions, artifacts, debug sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.enums import NodeStatus, RunScope, RunStatus, TriggerKind
from flowloom.storage.tables.base import ID_LENGTH, Base, CreatedAtMixin, TimestampMixin, check_in
from flowloom.storage.tables.partial_indexes import partial_index

__all__ = ["Artifact", "DebugSession", "NodeExecution", "WorkflowRun"]


class WorkflowRun(TimestampMixin, Base):
    """One execution of one version of a workflow.

    History is listed newest first by walking ``(user_id, id)`` or ``(workflow_id, id)``
    backwards, or the same with the status or the trigger between them when the history is
    filtered by one: ids are time-ordered, so the keyset cursor is simply the last id seen.
    """

    __tablename__ = "workflow_runs"
    __table_args__ = (
        check_in("status", RunStatus),
        check_in("scope", RunScope),
        check_in("trigger_kind", TriggerKind),
        CheckConstraint(
            "(scope = 'FULL') = (target_node_id IS NULL)", name="target_node_matches_scope"
        ),
        CheckConstraint("workflow_version >= 1", name="workflow_version_positive"),
        UniqueConstraint("user_id", "idempotency_key"),
        Index(None, "user_id", "id"),
        Index(None, "workflow_id", "id"),
        # A history filtered by status or by trigger walks only the runs that match, however
        # rare they are among the owner's (or the workflow's): without these, a status nobody's
        # runs have steps over every run of the owner (52 ms at 20,000 runs on PostgreSQL).
        Index(None, "user_id", "status", "id"),
        Index(None, "workflow_id", "status", "id"),
        Index(None, "user_id", "trigger_kind", "id"),
        Index(None, "workflow_id", "trigger_kind", "id"),
        # Covers "active runs by status" and "average duration of successful runs" (seed 003)
        # without touching the table rows.
        Index(None, "status", "workflow_id", "duration_ms"),
        Index(None, "created_at"),
        Index(None, "parent_run_id"),
        Index(None, "api_key_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version: Mapped[int]
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    parent_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="CASCADE")
    )
    """Set on a sub-run started by a ``workflow.call`` node; deleting the parent deletes it."""
    parent_node_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.PENDING)
    scope: Mapped[str] = mapped_column(String(16), default=RunScope.FULL)
    target_node_id: Mapped[str | None] = mapped_column(String(100))
    trigger_kind: Mapped[str] = mapped_column(String(16), default=TriggerKind.MANUAL)
    trigger_data: Mapped[dict[str, Any] | None]
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    timeout_s: Mapped[float | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    use_cache: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    """Whether deterministic nodes may take results of earlier runs (the engine's to read)."""
    use_pinned: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    """Pinned outputs (a node's ``data.pinned``) stood in for running their nodes."""
    depth: Mapped[int] = mapped_column(default=0, server_default="0")
    """How deep this run is nested as a sub-run (0: started from outside)."""
    parent_attempt: Mapped[int | None]
    """The attempt of ``parent_node_id`` that started this sub-run (orphans of an earlier
    attempt are cancelled)."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]


class NodeExecution(TimestampMixin, Base):
    """The checkpoint of one node in one run: the engine's unit of durability.

    ``pending_parents`` is the fan-in counter (the node turns READY at zero); ``lease_owner`` and
    ``lease_expires_at`` make a claim that a stale or duplicate worker cannot overwrite, with
    ``attempt`` as the fencing token; ``attempts`` keeps every attempt's timing and error.
    """

    __tablename__ = "node_executions"
    __table_args__ = (
        check_in("status", NodeStatus),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint("pending_parents >= 0", name="pending_parents_not_negative"),
        UniqueConstraint("run_id", "node_id"),
        Index(None, "status", "lease_expires_at"),
        Index(None, "cache_signature"),
        # Deleting a node execution (pruning) looks up rows cached from it; few rows have one.
        partial_index("cached_from_id", "cached_from_id IS NOT NULL"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(100))
    node_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=NodeStatus.PENDING)
    attempt: Mapped[int] = mapped_column(default=1)
    pending_parents: Mapped[int] = mapped_column(default=0)
    inputs: Mapped[dict[str, Any] | None]
    outputs: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    attempts: Mapped[list[Any]] = mapped_column(default=list)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    retry_at: Mapped[datetime | None]
    """When a node backing off may be claimed again."""
    wait: Mapped[dict[str, Any] | None]
    """Why a WAITING node is parked: ``kind``, ``reason``, ``payload``, ``resume_at`` (ISO time
    for a timed wait) and, once answered, ``answer`` (handed to the node's next run)."""
    cache_signature: Mapped[str | None] = mapped_column(String(64))
    cached_from_id: Mapped[str | None] = mapped_column(
        ForeignKey("node_executions.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    """``run:node:attempt``, handed to the services a node calls so they can drop repeats."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]


class Artifact(CreatedAtMixin, Base):
    """A blob (an image, a file) produced by a node or uploaded, stored by its SHA-256.

    Several artifacts may share one blob; pruning removes a blob file only when no artifact
    refers to it any longer.
    """

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="CASCADE"), index=True
    )
    node_execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("node_executions.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]
    filename: Mapped[str | None] = mapped_column(Text)


class DebugSession(TimestampMixin, Base):
    """A debug run's breakpoints and where it is paused (seed 003's debug_sessions)."""

    __tablename__ = "debug_sessions"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'finished', 'stopped')", name="status_valid"),
        CheckConstraint("mode IN ('step', 'continue')", name="mode_valid"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    breakpoints: Mapped[list[Any]] = mapped_column(default=list)
    mode: Mapped[str] = mapped_column(String(16), default="continue")
    paused_node_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")
