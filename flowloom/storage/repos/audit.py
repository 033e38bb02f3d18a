"""The audit log: who did what to which object, from where.

Entries are written, never changed. ``details`` never holds a secret: before an entry is stored,
every key whose name contains ``password``, ``passwd``, ``secret``, ``token``, ``key``,
``credential``, ``authorization`` or ``cookie`` (any case, at any depth, inside lists too) is
dropped with its value. The match is broad on purpose (``key_id`` goes too): an entry missing a
harmless field costs little, an entry holding a live secret is a leak in every backup.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables import AuditEntry

__all__ = ["AuditRepo", "noting_audit_entries", "scrub_details"]

_ID_PREFIX = PREFIXES["audit_log"]
_SECRET_KEY = re.compile(
    r"password|passwd|secret|token|key|credential|authorization|cookie", re.IGNORECASE
)
_ACTION_MAX_LENGTH = 64


_noted: ContextVar[list[str] | None] = ContextVar("flowloom_audit_noted", default=None)


@contextlib.contextmanager
def noting_audit_entries() -> Iterator[list[str]]:
    """Collect the actions of the entries recorded inside the block (in this context and the
    tasks it starts), so a caller can tell whether the work it wrapped audited itself."""
    noted: list[str] = []
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def scrub_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``details`` without the keys that may name a secret (see the module docstring)."""
    return {
        key: _scrub(value) for key, value in details.items() if not _SECRET_KEY.search(str(key))
    }


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return scrub_details(value)
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


class AuditRepo:
    """Write audit entries and read them back per user.

    Not owner-scoped at construction, because the system also writes entries with no actor;
    ``list_for_user`` takes the owner explicitly and returns only that user's entries.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        *,
        user_id: str | None,
        action: str,
        object_type: str | None = None,
        object_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry (``user_id`` None: done by the system). ``details`` is scrubbed.

        InputError for an empty or overlong action; NotFound if ``user_id`` names no user.
        """
        if not action or len(action) > _ACTION_MAX_LENGTH:
            raise InputError(f"action must be 1-{_ACTION_MAX_LENGTH} characters", field="action")
        entry = AuditEntry(
            id=new_id(_ID_PREFIX),
            user_id=user_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            ip=ip,
            user_agent=user_agent,
            details=scrub_details(details or {}),
        )
        self._session.add(entry)
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what="audit entry") from None
        noted = _noted.get()
        if noted is not None:
            noted.append(action)
        return entry

    async def list_for_user(
        self, *, owner_id: str, cursor: str | None = None, limit: int = 10
    ) -> Page[AuditEntry]:
        """The entries whose actor is ``owner_id``, newest first."""
        check_limit(limit)
        query = select(AuditEntry).where(AuditEntry.user_id == owner_id)
        after = check_cursor(cursor, prefix=_ID_PREFIX)
        if after is not None:
            query = query.where(AuditEntry.id < after)
        rows = await self._session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1))
        return page_of(rows.all(), limit=limit)

    async def list_instance(
        self,
        *,
        user_id: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> Page[AuditEntry]:
        """Every actor's entries, newest first: for the instance's administrators only.

        ``action`` keeps the entries whose action starts with it (``admin.user`` finds
        ``admin.user.disable`` and the rest); ``since`` and ``until`` bound ``created_at``
        (``until`` excluded). ``user_id`` ``"system"`` keeps the entries without an actor.
        """
        check_limit(limit)
        query = select(AuditEntry)
        if user_id == "system":
            query = query.where(AuditEntry.user_id.is_(None))
        elif user_id is not None:
            query = query.where(AuditEntry.user_id == user_id)
        if action:
            escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(AuditEntry.action.like(f"{escaped}%", escape="\\"))
        if object_type:
            query = query.where(AuditEntry.object_type == object_type)
        if object_id:
            query = query.where(AuditEntry.object_id == object_id)
        if since is not None:
            query = query.where(AuditEntry.created_at >= since)
        if until is not None:
            query = query.where(AuditEntry.created_at < until)
        after = check_cursor(cursor, prefix=_ID_PREFIX)
        if after is not None:
            query = query.where(AuditEntry.id < after)
        rows = await self._session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1))
        return page_of(rows.all(), limit=limit)

    async def list_for_object(
        self,
        *,
        owner_id: str,
        object_type: str,
        object_id: str,
        actions: Sequence[str],
        limit: int = 10,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries of ``owner_id`` about one object, of the given actions."""
        check_limit(limit)
        rows = await self._session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.object_type == object_type,
                AuditEntry.object_id == object_id,
                AuditEntry.user_id == owner_id,
                AuditEntry.action.in_(actions),
            )
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        return list(rows.all())
