"""Credentials: a user's secrets (provider keys, bearer tokens, basic auth, header values),
sealed in the vault, used by nodes by name (``"credential": "openai-work"``), never shown again.

Create takes the value; every answer after that shows the name, kind, provider and timestamps,
never the value. ``PUT /credentials/{name}/value`` replaces the secret. The secrets that
integrations and agents keep for themselves (``integration:<id>``, ``agent:<id>``) are theirs:
not listed here, and not reachable by name.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowloom.api.deps import DatabaseDep, SettingsDep, WorkflowReader, WorkflowWriter, client_ip
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.credentials import CredentialCreate, CredentialPublic, CredentialValue
from flowloom.exceptions import InputError, NotFound
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.credentials import CredentialInfo, CredentialRepo
from flowloom.storage.vault import Vault

__all__ = ["router"]

router = APIRouter(prefix="/credentials", tags=["credentials"])

_RESERVED = ("integration:", "agent:")
"""Name prefixes integrations and agents keep their own secrets under."""


def _public(info: CredentialInfo) -> CredentialPublic:
    return CredentialPublic(
        id=info.id,
        name=info.name,
        kind=info.kind,
        provider=info.provider,
        created_at=info.created_at,
        updated_at=info.updated_at,
        last_used_at=info.last_used_at,
    )


def _check_name(name: str) -> str:
    if name.strip().startswith(_RESERVED):
        reserved = " or ".join(repr(prefix) for prefix in _RESERVED)
        raise InputError(f"names starting with {reserved} are reserved", field="name")
    return name


def _reachable(name: str) -> str:
    if name.strip().startswith(_RESERVED):
        raise NotFound("credential", name)
    return name


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_credential(
    body: CredentialCreate,
    request: Request,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> CredentialPublic:
    """Seal a new secret under ``name`` (409 if the name is taken); the value is never shown
    again."""
    name = _check_name(body.name)
    async with db.write() as session:
        info = await CredentialRepo(
            session, owner_id=caller.user_id, vault=Vault.from_settings(settings)
        ).create(name=name, value=body.value, kind=body.kind, provider=body.provider)
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="credential.created",
            object_type="credential",
            object_id=info.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": info.name, "kind": info.kind},
        )
    return _public(info)


@router.get("")
async def list_credentials(
    caller: WorkflowReader,
    db: DatabaseDep,
    settings: SettingsDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[CredentialPublic]:
    """The caller's credentials, newest first, without values."""
    async with db.read() as session:
        page = await CredentialRepo(
            session, owner_id=caller.user_id, vault=Vault.from_settings(settings)
        ).list(cursor=cursor, limit=limit)
    items = [_public(info) for info in page.items if not info.name.startswith(_RESERVED)]
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/{credential_name}")
async def read_credential(
    credential_name: str, caller: WorkflowReader, db: DatabaseDep, settings: SettingsDep
) -> CredentialPublic:
    async with db.read() as session:
        info = await CredentialRepo(
            session, owner_id=caller.user_id, vault=Vault.from_settings(settings)
        ).get(name=_reachable(credential_name))
    return _public(info)


@router.put("/{credential_name}/value")
async def replace_credential_value(
    credential_name: str,
    body: CredentialValue,
    request: Request,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> CredentialPublic:
    """Replace the secret (a rotated provider key, say); the name and its users stay."""
    async with db.write() as session:
        info = await CredentialRepo(
            session, owner_id=caller.user_id, vault=Vault.from_settings(settings)
        ).update_value(name=_reachable(credential_name), value=body.value)
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="credential.replaced",
            object_type="credential",
            object_id=info.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": info.name},
        )
    return _public(info)


@router.delete("/{credential_name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_credential(
    credential_name: str,
    request: Request,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    """Forget the secret for good; nodes naming it then fail saying it is missing."""
    async with db.write() as session:
        repo = CredentialRepo(session, owner_id=caller.user_id, vault=Vault.from_settings(settings))
        info = await repo.get(name=_reachable(credential_name))
        await repo.delete(name=info.name)
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="credential.deleted",
            object_type="credential",
            object_id=info.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": info.name},
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
