"""The MCP servers a run may use, from the database: an
:class:`~flowloom.integrations.mcp.McpServers` over the owner's integrations and the vault. Each
lookup is its own short transaction.

Who may start commands: a stdio MCP server is a program flowloom runs on its own host, so only
accounts with the ``admin`` role may start one (registered or written inline in a workflow). HTTP
servers are open to every account, within the instance's rules on private addresses.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.integrations.mcp import McpServerSpec
from flowloom.storage.database import Database
from flowloom.storage.enums import UserRole
from flowloom.storage.repos.integrations import IntegrationRepo
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.vault import Vault

__all__ = ["DatabaseMcpServers", "may_run_commands", "mcp_server"]


class DatabaseMcpServers:
    """Reads an owner's MCP integrations, secrets opened with the vault."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self._db = db
        self._vault = vault

    def __repr__(self) -> str:
        return f"DatabaseMcpServers({self._vault!r})"

    async def server(self, integration_id: str, *, owner_id: str | None) -> McpServerSpec:
        if owner_id is None:
            raise NotFound("integration", integration_id)
        # A write transaction: opening the secrets marks their credential used.
        async with self._db.write() as session:
            repo = IntegrationRepo(session, owner_id=owner_id, vault=self._vault)
            return await mcp_server(repo, integration_id=integration_id)

    async def may_run_commands(self, *, owner_id: str | None) -> bool:
        if owner_id is None:
            return False
        async with self._db.read() as session:
            return await may_run_commands(session, owner_id)


async def mcp_server(repo: IntegrationRepo, *, integration_id: str) -> McpServerSpec:
    """How to connect to the repository owner's MCP integration, secrets included (never put
    this in an answer). InputError when it is disabled, not an MCP server, or misconfigured."""
    stored = await repo.mcp_server_config(integration_id=integration_id)
    config = stored.config
    try:
        return McpServerSpec(
            transport=stored.transport,
            command=config.get("command"),
            args=tuple(config.get("args") or ()),
            cwd=config.get("cwd"),
            env=stored.secrets.env,
            url=config.get("url"),
            headers=stored.secrets.headers,
            connect_timeout_s=float(config.get("timeout_s", 30.0)),
            label=stored.name,
        )
    except ValueError as exc:
        raise InputError(f"integration {stored.name!r} is misconfigured: {exc}") from None


async def may_run_commands(session: AsyncSession, owner_id: str) -> bool:
    """Whether ``owner_id`` may start stdio MCP servers: admins only."""
    try:
        user = await UserRepo(session).get(user_id=owner_id)
    except NotFound:
        return False
    return user.role == UserRole.ADMIN
