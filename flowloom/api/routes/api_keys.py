"""API keys: create (the secret shown once), list, read, rotate (a new secret, the old one kept
for a grace period), revoke."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from flowloom.api.deps import AccountOwner, DatabaseDep, SettingsDep, client_ip
from flowloom.api.errors import problem_responses
from flowloom.api.schemas.api_keys import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRotated,
    api_key_public,
)
from flowloom.api.schemas.common import Page
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.repos.audit import AuditRepo

__all__ = ["router"]

router = APIRouter(prefix="/api-keys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, caller: AccountOwner, request: Request, db: DatabaseDep
) -> ApiKeyCreated:
    """A new key for programs. ``key`` is in this answer only: store it now."""
    async with db.write() as session:
        key, plaintext = await ApiKeyRepo(session, owner_id=caller.user_id).create(
            name=body.name, scopes=body.scopes, expires_at=body.expires_at
        )
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="api_key.create",
            object_type="api_key",
            object_id=key.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": key.name, "scopes": list(key.scopes), "prefix": key.prefix},
        )
    return ApiKeyCreated(**api_key_public(key).model_dump(), key=plaintext)


@router.get("")
async def list_api_keys(
    caller: AccountOwner,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[ApiKeyPublic]:
    """The caller's keys, newest first, revoked ones included (none holds its secret)."""
    async with db.read() as session:
        page = await ApiKeyRepo(session, owner_id=caller.user_id).list(cursor=cursor, limit=limit)
    return Page(items=[api_key_public(k) for k in page.items], next_cursor=page.next_cursor)


@router.get("/{key_id}")
async def read_api_key(key_id: str, caller: AccountOwner, db: DatabaseDep) -> ApiKeyPublic:
    async with db.read() as session:
        key = await ApiKeyRepo(session, owner_id=caller.user_id).get(key_id=key_id)
    return api_key_public(key)


@router.delete("/{key_id}")
async def revoke_api_key(
    key_id: str, caller: AccountOwner, request: Request, db: DatabaseDep
) -> ApiKeyPublic:
    """Switch the key off for good; it stays listed, revoked. Revoking twice changes nothing."""
    async with db.write() as session:
        key = await ApiKeyRepo(session, owner_id=caller.user_id).revoke(key_id=key_id)
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="api_key.revoke",
            object_type="api_key",
            object_id=key.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": key.name, "prefix": key.prefix},
        )
    return api_key_public(key)


@router.post(
    "/{key_id}/rotate",
    responses=problem_responses(
        {404: "No such key of yours", 409: "The key is revoked or expired"}
    ),
)
async def rotate_api_key(
    key_id: str, caller: AccountOwner, request: Request, db: DatabaseDep, settings: SettingsDep
) -> ApiKeyRotated:
    """A new secret for the key: same id, prefix and scopes. ``key`` is in this answer only.

    The replaced secret keeps working until ``previous_valid_until``, so programs can switch
    without downtime; a secret replaced by an earlier rotation stops now. 409 for a revoked or
    expired key.
    """
    grace = timedelta(seconds=settings.api_key_rotation_grace_s)
    async with db.write() as session:
        key, plaintext = await ApiKeyRepo(session, owner_id=caller.user_id).rotate(
            key_id=key_id, grace=grace
        )
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="api_key.rotate",
            object_type="api_key",
            object_id=key.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": key.name, "prefix": key.prefix, "grace_s": int(grace.total_seconds())},
        )
    return ApiKeyRotated(
        **api_key_public(key).model_dump(),
        key=plaintext,
        previous_valid_until=key.previous_valid_until,
    )
