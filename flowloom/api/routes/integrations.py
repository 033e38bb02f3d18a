"""Integrations: register MCP servers, list their tools, test the connection.

Values of ``env`` and ``headers`` are write-only: they are sealed in the credential vault and
answers show only their names. A stdio server is a command flowloom runs on its own host, so only
accounts with the ``admin`` role may register, change, list or test one; an HTTP server on a
private address is refused unless the instance allows private targets, as for ``http.request``.
"""

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from flowloom.api.deps import (
    DatabaseDep,
    SettingsDep,
    WorkflowReader,
    WorkflowWriter,
    client_ip,
)
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.integrations import (
    ConnectionTest,
    IntegrationCreate,
    IntegrationPublic,
    IntegrationUpdate,
    ToolList,
    ToolPublic,
)
from flowloom.exceptions import InputError, PermissionDenied
from flowloom.integrations.mcp import McpError, McpServerSpec, list_tools
from flowloom.integrations.mcp_store import may_run_commands, mcp_server
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import IntegrationKind
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.integrations import IntegrationInfo, IntegrationRepo
from flowloom.storage.vault import Vault

__all__ = ["router"]

router = APIRouter(prefix="/integrations", tags=["integrations"])

_KINDS: dict[str, str] = {"stdio": IntegrationKind.MCP_STDIO, "http": IntegrationKind.MCP_HTTP}


def _public(info: IntegrationInfo) -> IntegrationPublic:
    config = info.config
    return IntegrationPublic(
        id=info.id,
        name=info.name,
        kind=info.kind,
        transport="stdio" if info.kind == IntegrationKind.MCP_STDIO else "http",
        command=config.get("command"),
        args=list(config.get("args") or []),
        cwd=config.get("cwd"),
        url=config.get("url"),
        env_names=list(config.get("env_names") or []),
        header_names=list(config.get("header_names") or []),
        timeout_s=float(config.get("timeout_s", 30.0)),
        enabled=info.enabled,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


def _vault(settings: Settings) -> Vault:
    return Vault.from_settings(settings)


async def _require_commands(db: Database, user_id: str) -> None:
    async with db.read() as session:
        allowed = await may_run_commands(session, user_id)
    if not allowed:
        raise PermissionDenied(
            "stdio MCP servers run commands on the flowloom host: only administrators may "
            "register, change or start them (register an http server instead)"
        )


async def _audit(
    db: Database, request: Request, user_id: str, action: str, info: IntegrationInfo
) -> None:
    async with db.write() as session:
        await AuditRepo(session).record(
            user_id=user_id,
            action=action,
            object_type="integration",
            object_id=info.id,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": info.name, "kind": info.kind},
        )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_integration(
    body: IntegrationCreate,
    caller: WorkflowWriter,
    request: Request,
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
) -> IntegrationPublic:
    """Register an MCP server (stdio: administrators only)."""
    from flowloom.storage.repos.integrations import IntegrationSecrets

    if body.transport == "stdio":
        await _require_commands(db, caller.user_id)
    config = body.model_dump(include={"command", "args", "cwd", "url", "timeout_s"})
    async with db.write() as session:
        info = await IntegrationRepo(
            session, owner_id=caller.user_id, vault=_vault(settings)
        ).create(
            name=body.name,
            kind=_KINDS[body.transport],
            config=config,
            secrets=IntegrationSecrets(dict(body.env), dict(body.headers)),
            enabled=body.enabled,
        )
    await _audit(db, request, caller.user_id, "integration.create", info)
    response.headers["Location"] = f"/api/v1/integrations/{info.id}"
    return _public(info)


@router.get("")
async def list_integrations(
    caller: WorkflowReader,
    db: DatabaseDep,
    settings: SettingsDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[IntegrationPublic]:
    """The caller's integrations, newest first (secrets never included)."""
    async with db.read() as session:
        page = await IntegrationRepo(session, owner_id=caller.user_id, vault=_vault(settings)).list(
            cursor=cursor, limit=limit
        )
    return Page(items=[_public(info) for info in page.items], next_cursor=page.next_cursor)


@router.get("/{integration_id}")
async def read_integration(
    integration_id: str, caller: WorkflowReader, db: DatabaseDep, settings: SettingsDep
) -> IntegrationPublic:
    async with db.read() as session:
        info = await IntegrationRepo(session, owner_id=caller.user_id, vault=_vault(settings)).get(
            integration_id=integration_id
        )
    return _public(info)


@router.patch("/{integration_id}")
async def update_integration(
    integration_id: str,
    body: IntegrationUpdate,
    caller: WorkflowWriter,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
) -> IntegrationPublic:
    """Change what is sent (a stdio server's settings: administrators only)."""
    vault = _vault(settings)
    async with db.read() as session:
        current = await IntegrationRepo(session, owner_id=caller.user_id, vault=vault).get(
            integration_id=integration_id
        )
    if current.kind == IntegrationKind.MCP_STDIO:
        await _require_commands(db, caller.user_id)
    sent = body.model_fields_set
    config: dict[str, Any] | None = None
    fields = {"command", "args", "cwd", "url", "timeout_s"}
    if sent & fields:
        config = {key: current.config.get(key) for key in fields if key in current.config}
        config.update(body.model_dump(include=sent & fields, exclude_none=True))
        if "cwd" in sent:
            config["cwd"] = body.cwd
    async with db.write() as session:
        info = await IntegrationRepo(session, owner_id=caller.user_id, vault=vault).update(
            integration_id=integration_id,
            name=body.name,
            config=config,
            env=body.env,
            headers=body.headers,
            enabled=body.enabled,
        )
    await _audit(db, request, caller.user_id, "integration.update", info)
    return _public(info)


@router.delete("/{integration_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_integration(
    integration_id: str,
    caller: WorkflowWriter,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
) -> None:
    """Delete the integration and forget its secrets."""
    async with db.write() as session:
        repo = IntegrationRepo(session, owner_id=caller.user_id, vault=_vault(settings))
        info = await repo.get(integration_id=integration_id)
        await repo.delete(integration_id=integration_id)
    await _audit(db, request, caller.user_id, "integration.delete", info)


@router.get("/{integration_id}/tools")
async def list_integration_tools(
    integration_id: str, caller: WorkflowReader, db: DatabaseDep, settings: SettingsDep
) -> ToolList:
    """Connect to the server and list its tools (for the canvas's tool picker).

    502 with the reason when the server cannot be reached or does not answer.
    """
    spec = await _connectable(integration_id, caller.user_id, db, settings)
    try:
        tools = await list_tools(spec)
    except McpError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from None
    return ToolList(items=[ToolPublic(**tool.to_json()) for tool in tools])


@router.post("/{integration_id}/test")
async def test_integration(
    integration_id: str, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> ConnectionTest:
    """Connect to the server and say whether it answers (``ok``) or why not (``message``)."""
    import time

    spec = await _connectable(integration_id, caller.user_id, db, settings)
    started = time.monotonic()
    try:
        tools = await list_tools(spec)
    except McpError as exc:
        elapsed = round((time.monotonic() - started) * 1000)
        return ConnectionTest(ok=False, message=str(exc), duration_ms=elapsed)
    elapsed = round((time.monotonic() - started) * 1000)
    return ConnectionTest(
        ok=True,
        message=f"{spec.describe()} answered with {len(tools)} tool(s)",
        tools=len(tools),
        duration_ms=elapsed,
    )


async def _connectable(
    integration_id: str, user_id: str, db: Database, settings: Settings
) -> McpServerSpec:
    """The integration's server, after the host's rules (who may start commands, which
    addresses may be reached)."""
    async with db.write() as session:
        repo = IntegrationRepo(session, owner_id=user_id, vault=_vault(settings))
        spec = await mcp_server(repo, integration_id=integration_id)
    if spec.transport == "stdio":
        await _require_commands(db, user_id)
    elif not settings.allow_private_http:
        from flowloom.nodes._net import resolve_checked

        parts = urlsplit(spec.url or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            await resolve_checked(parts.hostname or "", port)
        except ValueError as exc:
            raise InputError(f"{spec.describe()}: {exc}", field="url") from None
    return spec
