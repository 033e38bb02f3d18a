"""The signed-in user's own things: settings and the audit log of sensitive actions."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from flowloom.api.deps import AccountOwner, DatabaseDep
from flowloom.api.schemas.audit import AuditEntryPublic, audit_public
from flowloom.api.schemas.common import Page
from flowloom.exceptions import InputError
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.users import UserRepo

__all__ = ["router"]

router = APIRouter(tags=["account"])

_SETTINGS_MAX_BYTES = 64 * 1024


@router.get("/users/me/settings")
async def read_settings(caller: AccountOwner, db: DatabaseDep) -> dict[str, Any]:
    """The caller's settings ({} until set)."""
    async with db.read() as session:
        return await UserRepo(session).get_settings(user_id=caller.user_id)


@router.patch("/users/me/settings")
async def update_settings(
    changes: Annotated[dict[str, Any], Body()], caller: AccountOwner, db: DatabaseDep
) -> dict[str, Any]:
    """Merge ``changes`` into the settings: nested objects merge, ``null`` removes a key."""
    async with db.write() as session:
        merged = await UserRepo(session).update_settings(user_id=caller.user_id, changes=changes)
        if len(repr(merged)) > _SETTINGS_MAX_BYTES:
            # Raising rolls the transaction back: nothing is stored.
            raise InputError(f"settings may be at most {_SETTINGS_MAX_BYTES} bytes", field="body")
    return merged


@router.get("/audit-log")
async def list_audit_log(
    caller: AccountOwner,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[AuditEntryPublic]:
    """What was done as the caller (sign-ins, keys created and revoked, workflows deleted)."""
    async with db.read() as session:
        page = await AuditRepo(session).list_for_user(
            owner_id=caller.user_id, cursor=cursor, limit=limit
        )
    return Page(items=[audit_public(e) for e in page.items], next_cursor=page.next_cursor)
