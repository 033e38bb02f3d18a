"""The instance-wide audit log, for the instance's administrators (``InstanceAdmin``).

Every actor's entries, newest first, filtered by actor, action, object and time, with cursor
paging; each entry names its actor's email (null for the system's own, such as the daily
maintenance pass). Users read their own entries at ``GET /audit-log``.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from flowloom.api.deps import DatabaseDep, InstanceAdmin
from flowloom.api.schemas.audit import InstanceAuditEntry, audit_public
from flowloom.api.schemas.common import Page
from flowloom.exceptions import InputError
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.tables import User

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InputError(f"{name} needs a timezone (e.g. 2030-01-01T00:00:00Z)", field=name)
    return value


@router.get("/audit-log")
async def list_instance_audit_log(
    admin: InstanceAdmin,
    db: DatabaseDep,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[InstanceAuditEntry]:
    """Who did what to which object, across the instance, newest first. ``action`` matches
    the start of the action (``admin.user``); ``user_id=system`` keeps the entries the system
    made itself; ``since`` and ``until`` (excluded) are date-times with a timezone."""
    start, end = _aware(since, "since"), _aware(until, "until")
    if start is not None and end is not None and end <= start:
        raise InputError("until must be after since", field="until")
    async with db.read() as session:
        page = await AuditRepo(session).list_instance(
            user_id=user_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=start,
            until=end,
            cursor=cursor,
            limit=limit,
        )
        actors = {e.user_id for e in page.items if e.user_id is not None}
        emails = dict(
            (await session.execute(select(User.id, User.email).where(User.id.in_(actors)))).all()
            if actors
            else []
        )
    return Page(
        items=[
            InstanceAuditEntry(
                **audit_public(e).model_dump(),
                user_id=e.user_id,
                user_email=emails.get(e.user_id) if e.user_id else None,
            )
            for e in page.items
        ],
        next_cursor=page.next_cursor,
    )
