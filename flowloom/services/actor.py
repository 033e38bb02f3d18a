"""Who makes a change and from where: what the audit entry written with the change records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.storage.repos.audit import AuditRepo

__all__ = ["Actor"]


@dataclass(frozen=True, slots=True)
class Actor:
    """The account making a change, with the address and user agent it came from."""

    user_id: str
    ip: str | None = None
    user_agent: str | None = None

    async def record(
        self,
        session: AsyncSession,
        action: str,
        object_type: str,
        object_id: str | None,
        details: dict[str, Any],
    ) -> None:
        """An audit entry for ``action``, in ``session``'s transaction: written with the change
        or not at all."""
        await AuditRepo(session).record(
            user_id=self.user_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            ip=self.ip,
            user_agent=self.user_agent,
            details=details,
        )
