"""Agents and threads as their owner edits them: each change checked and written in ONE write
transaction.

Before an agent or a thread is written, what it names is checked against what the owner holds:
the provider is known, the model is not disabled on this instance, no two tools share a name,
and every integration and workflow a tool names is the owner's (InputError naming the field).
The check reads in the transaction that writes, with the agent's (or thread's) row locked, so
no other change can land between them: two PATCHes of one agent apply one after the other, and
a ``********`` sent back always keeps the secret stored when the change is written, never an
older one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.agents.threads import TOOLS_ADAPTER
from flowloom.exceptions import InputError, NotFound
from flowloom.nodes.agent import AgentTool, McpTools, WorkflowTool
from flowloom.providers import PROVIDER_NAMES
from flowloom.services.agent_secrets import resolve_hidden
from flowloom.storage.database import Database
from flowloom.storage.repos.agents import (
    UNSET,
    AgentRepo,
    ThreadRepo,
    Unset,
    join_model,
    seal_plain_agent_secrets,
    split_model,
)
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.integrations import IntegrationRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import Agent, Thread
from flowloom.storage.vault import Vault

__all__ = ["AgentService", "seal_stored_secrets"]

DEFAULT_PROVIDER = "openai"


class AgentService:
    """One owner's agents and threads: create, change and delete them."""

    def __init__(self, db: Database, *, owner_id: str, vault: Vault) -> None:
        self._db = db
        self._owner_id = owner_id
        self._vault = vault

    async def create_agent(
        self,
        *,
        name: str,
        instructions: str,
        context: str | None,
        provider: str,
        model: str,
        tools: list[AgentTool],
    ) -> Agent:
        """A new agent, its model and tools checked first; the tools' secrets are sealed."""
        dumped = resolve_hidden(tools)
        async with self._db.write() as session:
            await self._check(session, provider=provider, model=model, tools=dumped)
            return await self._agents(session).create(
                name=name,
                instructions=instructions,
                context=context,
                provider=provider,
                model=model,
                tools=dumped,
            )

    async def update_agent(
        self,
        *,
        agent_id: str,
        name: str | None = None,
        instructions: str | None = None,
        context: str | Unset | None = UNSET,
        provider: str | None = None,
        model: str | None = None,
        tools: list[AgentTool] | None = None,
    ) -> Agent:
        """Change what is given (``None``: unchanged; ``context=None`` clears it). ``tools``
        replace the tools whole, each ``********`` keeping the stored value. The result is
        checked as a whole (the new model with the old tools too) before it is written."""
        changes: dict[str, Any] = {
            field: value
            for field, value in (
                ("name", name),
                ("instructions", instructions),
                ("provider", provider),
                ("model", model),
            )
            if value is not None
        }
        if not isinstance(context, Unset):
            changes["context"] = context
        # A write transaction from the start: opening the sealed values marks their credential
        # used, and the locked row keeps every other change of this agent out until commit.
        async with self._db.write() as session:
            agents = self._agents(session)
            current = await agents.get(agent_id=agent_id, lock=True)
            if tools is None:
                checked = list(current.tools)
            else:
                stored = await agents.tools_with_secrets(agent_id=agent_id)
                checked = changes["tools"] = resolve_hidden(tools, stored)
            await self._check(
                session,
                provider=provider or current.provider or DEFAULT_PROVIDER,
                model=model or current.model or "",
                tools=checked,
            )
            return await agents.update(agent_id=agent_id, **changes)

    async def delete_agent(self, *, agent_id: str) -> None:
        """Soft-delete the agent and its threads; its sealed tool secrets are forgotten."""
        async with self._db.write() as session:
            await self._agents(session).delete(agent_id=agent_id)

    async def create_thread(
        self,
        *,
        name: str,
        agent_id: str | None,
        provider: str | None,
        model: str | None,
        instructions: str | None,
    ) -> Thread:
        """A new thread: with an agent (which must be the owner's), or with a model of its own
        (checked as an agent's is; ``openai`` when no provider is named)."""
        async with self._db.write() as session:
            joined = None
            if model is not None:
                provider = provider or DEFAULT_PROVIDER
                await self._check(session, provider=provider, model=model, tools=[])
                joined = join_model(provider, model)
            try:
                return await ThreadRepo(session, owner_id=self._owner_id).create(
                    name=name, agent_id=agent_id, instructions=instructions, model=joined
                )
            except NotFound:
                raise InputError(f"you have no agent {agent_id!r}", field="agent_id") from None

    async def update_thread(
        self,
        *,
        thread_id: str,
        name: str | None = None,
        instructions: str | Unset | None = UNSET,
        provider: str | None = None,
        model: str | None = None,
    ) -> Thread:
        """Rename it, change its instructions (``None`` clears them), or, for a thread without
        an agent, its provider and model (checked as an agent's are)."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if not isinstance(instructions, Unset):
            changes["instructions"] = instructions
        async with self._db.write() as session:
            threads = ThreadRepo(session, owner_id=self._owner_id)
            current = await threads.get(thread_id=thread_id, lock=True)
            if provider is not None or model is not None:
                if current.agent_id is not None:
                    raise InputError("a thread with an agent uses the agent's model", field="model")
                old_provider, old_model = split_model(current.model)
                provider = provider or old_provider or DEFAULT_PROVIDER
                model = model or old_model or ""
                await self._check(session, provider=provider, model=model, tools=[])
                changes["model"] = join_model(provider, model)
            return await threads.update(thread_id=thread_id, **changes)

    def _agents(self, session: AsyncSession) -> AgentRepo:
        return AgentRepo(session, owner_id=self._owner_id, vault=self._vault)

    async def _check(
        self, session: AsyncSession, *, provider: str, model: str, tools: list[Any]
    ) -> None:
        """InputError naming the field when the provider is unknown, the model is disabled
        here, two tools share a name, or a tool names an integration or workflow the owner
        does not have. Reads through ``session``: the transaction that writes."""
        if provider not in PROVIDER_NAMES:
            raise InputError(f"unknown provider {provider!r}", field="provider")
        parsed = TOOLS_ADAPTER.validate_python(tools)
        named = [tool.name for tool in parsed if not isinstance(tool, McpTools)]
        duplicates = sorted({name for name in named if named.count(name) > 1})
        if duplicates:
            raise InputError(f"tools named twice: {', '.join(duplicates)}", field="tools")
        try:
            entry = await AiModelRepo(session).get(provider=provider, model=model)
        except NotFound:
            entry = None
        if entry is not None and not entry.enabled:
            raise InputError(
                f"the model {provider}/{model} is disabled on this instance", field="model"
            )
        integrations = IntegrationRepo(session, owner_id=self._owner_id, vault=self._vault)
        workflows = WorkflowRepo(session, owner_id=self._owner_id)
        for index, tool in enumerate(parsed):
            try:
                if isinstance(tool, McpTools) and isinstance(tool.server, str):
                    await integrations.get(integration_id=tool.server)
                elif isinstance(tool, WorkflowTool):
                    await workflows.get(workflow_id=tool.workflow_id)
            except NotFound as exc:
                raise InputError(
                    f"you have no {exc.kind} {exc.object_id!r}", field=f"tools.{index}"
                ) from None


async def seal_stored_secrets(db: Database, *, vault: Vault) -> int:
    """Move plain tool secrets that agents written by earlier versions still hold into the
    vault (every owner's); how many agents changed. Idempotent."""
    async with db.write() as session:
        return await seal_plain_agent_secrets(session, vault=vault)
