"""Workflows and what hangs off them: versions, validation logs, triggers, memory, presets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.enums import MemoryValueType, TriggerType
from flowloom.storage.tables.base import (
    ID_LENGTH,
    Base,
    CreatedAtMixin,
    JSONType,
    SoftDeleteMixin,
    TimestampMixin,
    check_in,
)

__all__ = [
    "NodeTemplate",
    "ValidationLog",
    "Workflow",
    "WorkflowMemory",
    "WorkflowTrigger",
    "WorkflowVersion",
]


class Workflow(TimestampMixin, SoftDeleteMixin, Base):
    """A user's workflow. ``definition`` is the current version's graph in React Flow's shape.

    Seed 003's normalized ``nodes`` and ``node_connections`` live inside this JSON (and each
    version's), queryable with the database's JSON functions.
    """

    __tablename__ = "workflows"
    __table_args__ = (
        Index(None, "user_id", "id"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    nl_description: Mapped[str | None] = mapped_column(Text)
    """The plain-language description it was generated from, if any (seed 002)."""
    definition: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(default=1)
    is_valid: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)
    """Whether its triggers (webhooks, schedules) may start runs."""


class WorkflowVersion(CreatedAtMixin, Base):
    """Every saved definition, numbered from 1; a run records the version it ran."""

    __tablename__ = "workflow_versions"
    __table_args__ = (
        UniqueConstraint("workflow_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index(None, "created_by"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]]
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(500))


class ValidationLog(CreatedAtMixin, Base):
    """The validation result of one saved version (seed 003's validation_logs)."""

    __tablename__ = "validation_logs"
    __table_args__ = (Index(None, "workflow_id", "version"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int]
    valid: Mapped[bool]
    problems: Mapped[list[Any]] = mapped_column(default=list)


class WorkflowTrigger(TimestampMixin, Base):
    """A webhook (path + hashed secret) or a schedule (cron + timezone) that starts runs."""

    __tablename__ = "workflow_triggers"
    __table_args__ = (
        check_in("kind", TriggerType),
        CheckConstraint(
            "(kind = 'webhook' AND webhook_path IS NOT NULL)"
            " OR (kind = 'schedule' AND cron IS NOT NULL)",
            name="kind_fields",
        ),
        Index(None, "kind", "enabled", "next_fire_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    webhook_path: Mapped[str | None] = mapped_column(String(64), unique=True)
    webhook_secret_sha256: Mapped[str | None] = mapped_column(String(64))
    cron: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_fire_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WorkflowMemory(TimestampMixin, Base):
    """Keyed runtime memory of a workflow; ``scope`` is ``""`` (whole workflow) or a thread id."""

    __tablename__ = "workflow_memory"
    __table_args__ = (
        UniqueConstraint("workflow_id", "scope", "key"),
        check_in("value_type", MemoryValueType),
        Index(None, "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(ID_LENGTH), default="")
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSONType)
    value_type: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]


class NodeTemplate(TimestampMixin, Base):
    """A configured node saved as a preset for the palette (seed 003)."""

    __tablename__ = "node_templates"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    node_type: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
