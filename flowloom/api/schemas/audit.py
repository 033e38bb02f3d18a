"""Audit entries: an account's own log and the instance's, as administrators read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowloom.api.schemas.common import FromRow
from flowloom.storage.tables import AuditEntry


class AuditEntryPublic(FromRow):
    id: str
    action: str
    object_type: str | None
    object_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    created_at: datetime


def audit_public(entry: AuditEntry) -> AuditEntryPublic:
    return AuditEntryPublic.model_validate(entry)


class InstanceAuditEntry(AuditEntryPublic):
    user_id: str | None
    """The actor; null: the system itself."""
    user_email: str | None
    """The actor's email (null for the system, or an actor since deleted)."""
