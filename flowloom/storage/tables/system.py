"""Instance-wide settings and the audit log of sensitive actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.tables.base import ID_LENGTH, Base, CreatedAtMixin, JSONType, TimestampMixin

__all__ = ["AuditEntry", "SystemSetting"]


class SystemSetting(TimestampMixin, Base):
    """One instance-wide setting, by key."""

    __tablename__ = "system_settings"
    # Every foreign key is indexed: deleting a user must not scan the table for its rows.
    __table_args__ = (Index(None, "updated_by"),)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AuditEntry(CreatedAtMixin, Base):
    """Who did what to which object. Kept when the actor is deleted (``user_id`` NULL)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "user_id", "id"), Index(None, "object_type", "object_id"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
