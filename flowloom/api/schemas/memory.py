"""Workflow memory: what a workflow keeps between runs, by scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowloom.api.schemas.common import ApiModel


class WorkflowMemorySummary(ApiModel):
    workflow_id: str
    workflow_name: str
    entries: int
    scopes: int
    """The whole workflow's scope and one per thread that has entries."""
    last_updated_at: datetime


class MemoryEntryPublic(ApiModel):
    id: str
    key: str
    scope: str
    """Empty: the whole workflow's memory; otherwise the thread id it belongs to."""
    value: Any
    value_type: str
    expires_at: datetime | None
    """Null: kept until deleted."""
    created_at: datetime
    updated_at: datetime


class MemoryCleared(ApiModel):
    deleted: int
