"""Agents, threads and their messages (seed 004), each bound to its owner.

Agents and threads soft-delete: a deleted one is NotFound like another user's, and so are its
messages. Deleting an agent deletes its threads with it (one transaction), so no thread is left
talking to an agent nobody can see.

A thread without an agent keeps its own model in ``threads.model`` as ``provider/model``
(``openai/gpt-4o-mini``): the table has no provider column, and a provider name never holds a
``/``, so the first ``/`` splits the two unambiguously (model names may hold more).

Secrets in an agent's tools (HTTP tool headers, the env and headers of an MCP server written
inline) never rest in ``agents.tools``: there each value is :data:`HIDDEN`, and the values are
sealed in the credential vault, in one credential per agent named ``agent:<id>`` (as
integrations do, so key rotation re-seals them with every other credential). Only
:meth:`AgentRepo.tools_with_secrets` opens them, for running a turn and for keeping a value a
PATCH sends back as ``HIDDEN``. Rows written before this held plain values;
:func:`seal_plain_agent_secrets` moves those into the vault (the API runs it as it starts).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import ConfigurationError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.enums import MessageRole
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.repos.credentials import CredentialKind, CredentialRepo
from flowloom.storage.tables import Agent, Message, Thread
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Vault

__all__ = [
    "HIDDEN",
    "UNSET",
    "AgentRepo",
    "NewMessage",
    "ThreadRepo",
    "Unset",
    "agent_secret_name",
    "has_hidden_secrets",
    "join_model",
    "seal_plain_agent_secrets",
    "secret_maps",
    "split_model",
]

HIDDEN: Final = "********"
"""Stands for a sealed secret: in ``agents.tools`` at rest, and in every answer."""

ToolSecrets = dict[str, dict[str, dict[str, str]]]
"""Sealed secrets of an agent's tools: tool index (as text) -> where -> name -> value."""

_AGENT: Final = PREFIXES["agents"]
_THREAD: Final = PREFIXES["threads"]
_MESSAGE: Final = PREFIXES["messages"]


class _Unset:
    """A field not given to an update (``None`` clears a nullable one)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()

Unset = _Unset
"""The type of :data:`UNSET`, for signatures that pass it on."""


def join_model(provider: str, model: str) -> str:
    """``threads.model`` for a thread that names its own provider and model."""
    return f"{provider}/{model}"


def split_model(value: str | None) -> tuple[str | None, str | None]:
    """``(provider, model)`` of a ``threads.model`` value; ``(None, None)`` when there is none."""
    if not value:
        return None, None
    provider, _, model = value.partition("/")
    return (provider, model) if model else (None, value)


def agent_secret_name(agent_id: str) -> str:
    """The name of the credential holding an agent's tool secrets."""
    return f"agent:{agent_id}"


def secret_maps(tool: Any) -> list[tuple[str, dict[str, Any]]]:
    """Where a stored tool keeps secret values: ``(where, mapping)`` pairs, mutable in place
    (``headers`` of an HTTP tool, ``server.env`` and ``server.headers`` of an inline MCP
    server)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(tool, dict):
        return found
    if tool.get("kind") == "http" and isinstance(tool.get("headers"), dict):
        found.append(("headers", tool["headers"]))
    server = tool.get("server")
    if tool.get("kind") == "mcp" and isinstance(server, dict):
        for part in ("env", "headers"):
            if isinstance(server.get(part), dict):
                found.append((f"server.{part}", server[part]))
    return found


def has_hidden_secrets(tools: Sequence[Any]) -> bool:
    """Whether ``tools`` (as stored) stand for sealed values that must be opened to use them."""
    return any(
        value == HIDDEN
        for tool in tools
        for _, values in secret_maps(tool)
        for value in values.values()
    )


def _has_plain_secrets(tools: Sequence[Any]) -> bool:
    return any(
        value != HIDDEN
        for tool in tools
        for _, values in secret_maps(tool)
        for value in values.values()
    )


def _split(
    tools: Sequence[Any], kept: ToolSecrets | None = None
) -> tuple[builtins.list[Any], ToolSecrets]:
    """``tools`` with every secret value replaced by HIDDEN, and the values by tool index.

    A value that is HIDDEN already stands for the one in ``kept`` at the same place (a row
    being sealed that held both); with nothing there it is dropped from the secrets.
    """
    public = copy.deepcopy(list(tools))
    secrets: ToolSecrets = {}
    for index, tool in enumerate(public):
        for where, values in secret_maps(tool):
            for name, value in values.items():
                if value == HIDDEN:
                    value = (kept or {}).get(str(index), {}).get(where, {}).get(name)
                    if value is None:
                        continue
                secrets.setdefault(str(index), {}).setdefault(where, {})[name] = str(value)
                values[name] = HIDDEN
    return public, secrets


def _fill(tools: Sequence[Any], secrets: ToolSecrets) -> builtins.list[Any]:
    """``tools`` with each HIDDEN value replaced by its sealed value (left HIDDEN if none)."""
    filled = copy.deepcopy(list(tools))
    for index, tool in enumerate(filled):
        for where, values in secret_maps(tool):
            sealed = secrets.get(str(index), {}).get(where, {})
            for name, value in values.items():
                if value == HIDDEN and name in sealed:
                    values[name] = sealed[name]
    return filled


class AgentRepo:
    """One owner's agents; a deleted or another user's agent is NotFound.

    ``vault`` seals and opens the secrets in tools; without one, writing tools that hold
    secrets and opening them raise ConfigurationError (reading and listing need none).
    """

    def __init__(self, session: AsyncSession, *, owner_id: str, vault: Vault | None = None) -> None:
        self.session = session
        self.owner_id = owner_id
        self._vault = vault

    async def create(
        self,
        *,
        name: str,
        instructions: str,
        provider: str,
        model: str,
        tools: list[dict[str, Any]],
        context: str | None = None,
    ) -> Agent:
        """A new agent; the secret values in ``tools`` are sealed, the row holds HIDDEN."""
        public, secrets = _split(tools)
        row = Agent(
            id=new_id(_AGENT),
            user_id=self.owner_id,
            name=name,
            instructions=instructions,
            provider=provider,
            model=model,
            tools=public,
            context=context,
        )
        self.session.add(row)
        await self.session.flush()
        await self._store_secrets(row, secrets)
        return row

    async def tools_with_secrets(self, *, agent_id: str) -> builtins.list[Any]:
        """The agent's tools with their secret values (never put this in an answer).

        Marks the credential used, so call it in a write transaction. ConfigurationError
        without a vault, VaultError if the values cannot be decrypted.
        """
        row = await self.get(agent_id=agent_id)
        if not has_hidden_secrets(row.tools):
            return list(row.tools)
        return _fill(row.tools, await self._secrets(row))

    async def get(self, *, agent_id: str, lock: bool = False) -> Agent:
        """The agent; with ``lock``, its row stays locked until the transaction ends, so a
        change checked against it cannot interleave with another (``FOR UPDATE`` on
        PostgreSQL; a SQLite write transaction holds the whole database already)."""
        statement = select(Agent).where(
            Agent.id == agent_id, Agent.user_id == self.owner_id, Agent.deleted_at.is_(None)
        )
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        row = await self.session.scalar(statement)
        if row is None:
            raise NotFound("agent", agent_id)
        return row

    async def list(self, *, cursor: str | None = None, limit: int = 50) -> Page[Agent]:
        """Newest first."""
        check_limit(limit)
        statement = select(Agent).where(Agent.user_id == self.owner_id, Agent.deleted_at.is_(None))
        if (after := check_cursor(cursor, prefix=_AGENT)) is not None:
            statement = statement.where(Agent.id < after)
        rows = await self.session.scalars(statement.order_by(Agent.id.desc()).limit(limit + 1))
        return page_of(list(rows), limit=limit)

    async def update(
        self,
        *,
        agent_id: str,
        name: str | _Unset = UNSET,
        instructions: str | _Unset = UNSET,
        provider: str | _Unset = UNSET,
        model: str | _Unset = UNSET,
        tools: builtins.list[dict[str, Any]] | _Unset = UNSET,
        context: str | _Unset | None = UNSET,
    ) -> Agent:
        """Change what is given. ``tools`` replaces the tools whole, their secret values
        given in full (sealed here; :mod:`flowloom.services.agents` resolves HIDDEN to the
        stored values first)."""
        row = await self.get(agent_id=agent_id)
        secrets: ToolSecrets | None = None
        if not isinstance(tools, _Unset):
            tools, secrets = _split(tools)
        _apply(
            row,
            name=name,
            instructions=instructions,
            provider=provider,
            model=model,
            tools=tools,
            context=context,
        )
        await self.session.flush()
        if secrets is not None:
            await self._store_secrets(row, secrets)
        return row

    async def seal_plain_secrets(self, row: Agent) -> bool:
        """Move plain secret values still in ``row.tools`` (rows written before secrets were
        sealed) into the vault; whether there were any."""
        if not _has_plain_secrets(row.tools):
            return False
        kept = await self._secrets(row) if has_hidden_secrets(row.tools) else {}
        row.tools, secrets = _split(row.tools, kept)
        await self.session.flush()
        await self._store_secrets(row, secrets)
        return True

    def _credentials(self) -> CredentialRepo:
        if self._vault is None:
            raise ConfigurationError("the secrets of agent tools need the credential vault")
        return CredentialRepo(self.session, owner_id=self.owner_id, vault=self._vault)

    async def _secrets(self, row: Agent) -> ToolSecrets:
        try:
            _, secret = await self._credentials().get_secret(name=agent_secret_name(row.id))
        except NotFound:
            return {}
        data: ToolSecrets = json.loads(secret.get_secret_value())
        return data

    async def _store_secrets(self, row: Agent, secrets: ToolSecrets) -> None:
        name = agent_secret_name(row.id)
        if not secrets:
            if self._vault is not None:
                with contextlib.suppress(NotFound):
                    await self._credentials().delete(name=name)
            return
        credentials = self._credentials()
        value = json.dumps(secrets, separators=(",", ":"))
        try:
            await credentials.update_value(name=name, value=value)
        except NotFound:
            await credentials.create(
                name=name, value=value, kind=CredentialKind.SECRET, provider="agent"
            )

    async def delete(self, *, agent_id: str) -> None:
        """Soft-delete the agent and every thread with it; its sealed secrets are forgotten
        for good (with a vault; without one they go with the account)."""
        row = await self.get(agent_id=agent_id)
        now = utcnow()
        row.deleted_at = now
        if self._vault is not None:
            await self._store_secrets(row, {})
        await self.session.execute(
            update(Thread)
            .where(
                Thread.agent_id == agent_id,
                Thread.user_id == self.owner_id,
                Thread.deleted_at.is_(None),
            )
            .values(deleted_at=now, updated_at=now)
        )
        await self.session.flush()


async def seal_plain_agent_secrets(session: AsyncSession, *, vault: Vault) -> int:
    """Seal the plain secret values that agents written before sealing still hold (every
    owner's, deleted agents too); how many agents changed. Idempotent, and safe to run from
    several processes at once (each row is locked while it is sealed)."""
    candidates = await session.execute(select(Agent.id, Agent.user_id, Agent.tools))
    changed = 0
    for agent_id, owner_id, tools in candidates.all():
        if not _has_plain_secrets(tools or []):
            continue
        row = await session.scalar(
            select(Agent)
            .where(Agent.id == agent_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is not None and await AgentRepo(
            session, owner_id=owner_id, vault=vault
        ).seal_plain_secrets(row):
            changed += 1
    return changed


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: MessageRole
    content: str
    tool_calls: list[Any] | None = None
    tokens_in: int = 0
    tokens_out: int = 0


class ThreadRepo:
    """One owner's threads and their messages; a deleted or another user's thread is NotFound,
    and so are its messages."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

    async def create(
        self,
        *,
        name: str,
        agent_id: str | None = None,
        instructions: str | None = None,
        model: str | None = None,
    ) -> Thread:
        """A new thread; ``agent_id`` must name a live agent of the owner (NotFound if not)."""
        if agent_id is not None:
            await AgentRepo(self.session, owner_id=self.owner_id).get(agent_id=agent_id)
        row = Thread(
            id=new_id(_THREAD),
            user_id=self.owner_id,
            agent_id=agent_id,
            name=name,
            instructions=instructions,
            model=model,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, *, thread_id: str, lock: bool = False) -> Thread:
        """The thread; with ``lock``, its row stays locked until the transaction ends (as
        :meth:`AgentRepo.get`)."""
        statement = select(Thread).where(
            Thread.id == thread_id,
            Thread.user_id == self.owner_id,
            Thread.deleted_at.is_(None),
        )
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        row = await self.session.scalar(statement)
        if row is None:
            raise NotFound("thread", thread_id)
        return row

    async def list(
        self, *, agent_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[Thread]:
        """Newest first; only the threads with ``agent_id`` when it is given."""
        check_limit(limit)
        statement = select(Thread).where(
            Thread.user_id == self.owner_id, Thread.deleted_at.is_(None)
        )
        if agent_id is not None:
            statement = statement.where(Thread.agent_id == agent_id)
        if (after := check_cursor(cursor, prefix=_THREAD)) is not None:
            statement = statement.where(Thread.id < after)
        rows = await self.session.scalars(statement.order_by(Thread.id.desc()).limit(limit + 1))
        return page_of(list(rows), limit=limit)

    async def update(
        self,
        *,
        thread_id: str,
        name: str | _Unset = UNSET,
        instructions: str | _Unset | None = UNSET,
        model: str | _Unset | None = UNSET,
    ) -> Thread:
        row = await self.get(thread_id=thread_id)
        _apply(row, name=name, instructions=instructions, model=model)
        await self.session.flush()
        return row

    async def delete(self, *, thread_id: str) -> None:
        row = await self.get(thread_id=thread_id)
        row.deleted_at = utcnow()
        await self.session.flush()

    async def messages(
        self,
        *,
        thread_id: str,
        order: Literal["newest", "oldest"] = "newest",
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Message]:
        """A page of the thread's messages, newest or oldest first; ``next_cursor`` goes on
        in the same direction."""
        check_limit(limit)
        await self.get(thread_id=thread_id)
        statement = select(Message).where(Message.thread_id == thread_id)
        after = check_cursor(cursor, prefix=_MESSAGE)
        if order == "newest":
            if after is not None:
                statement = statement.where(Message.id < after)
            statement = statement.order_by(Message.id.desc())
        else:
            if after is not None:
                statement = statement.where(Message.id > after)
            statement = statement.order_by(Message.id.asc())
        rows = await self.session.scalars(statement.limit(limit + 1))
        return page_of(list(rows), limit=limit)

    async def recent(self, *, thread_id: str, limit: int) -> builtins.list[Message]:
        """The thread's last ``limit`` messages, oldest first (what the model is shown)."""
        await self.get(thread_id=thread_id)
        rows = await self.session.scalars(
            select(Message)
            .where(Message.thread_id == thread_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
        return list(reversed(list(rows)))

    async def add_messages(
        self, *, thread_id: str, messages: Sequence[NewMessage]
    ) -> builtins.list[Message]:
        """Append ``messages`` in order (ids minted now, so they sort after every earlier one)
        and mark the thread updated."""
        thread = await self.get(thread_id=thread_id)
        rows = [
            Message(
                id=new_id(_MESSAGE),
                thread_id=thread_id,
                role=message.role.value,
                content=message.content,
                tool_calls=message.tool_calls,
                tokens_in=message.tokens_in,
                tokens_out=message.tokens_out,
            )
            for message in messages
        ]
        self.session.add_all(rows)
        thread.updated_at = utcnow()
        await self.session.flush()
        return rows


def _apply(row: object, **changes: object) -> None:
    """Set the attributes given, leaving those passed as ``UNSET`` as they are."""
    for name, value in changes.items():
        if not isinstance(value, _Unset):
            setattr(row, name, value)
