"""Agents, threads and their messages (seed 004), each bound to its owner.

Agents and threads soft-delete: a deleted one is NotFound like another user's, and so are its
messages. Deleting an agent deletes its threads with it (one transaction), so no thread is left
talking to an agent nobody can see.

A thread without an agent keeps its own model in ``threads.model`` as ``provider/model``
(``openai/gpt-4o-mini``): the table has no provider column, and a provider name never holds a
``/``, so the first ``/`` splits the two unambiguously (model names may hold more).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.enums import MessageRole
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables import Agent, Message, Thread
from flowloom.storage.tables.base import utcnow

__all__ = [
    "UNSET",
    "AgentRepo",
    "NewMessage",
    "ThreadRepo",
    "join_model",
    "split_model",
]

_AGENT: Final = PREFIXES["agents"]
_THREAD: Final = PREFIXES["threads"]
_MESSAGE: Final = PREFIXES["messages"]


class _Unset:
    """A field not given to an update (``None`` clears a nullable one)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def join_model(provider: str, model: str) -> str:
    """``threads.model`` for a thread that names its own provider and model."""
    return f"{provider}/{model}"


def split_model(value: str | None) -> tuple[str | None, str | None]:
    """``(provider, model)`` of a ``threads.model`` value; ``(None, None)`` when there is none."""
    if not value:
        return None, None
    provider, _, model = value.partition("/")
    return (provider, model) if model else (None, value)


class AgentRepo:
    """One owner's agents; a deleted or another user's agent is NotFound."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

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
        row = Agent(
            id=new_id(_AGENT),
            user_id=self.owner_id,
            name=name,
            instructions=instructions,
            provider=provider,
            model=model,
            tools=tools,
            context=context,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, *, agent_id: str) -> Agent:
        row = await self.session.scalar(
            select(Agent).where(
                Agent.id == agent_id, Agent.user_id == self.owner_id, Agent.deleted_at.is_(None)
            )
        )
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
        row = await self.get(agent_id=agent_id)
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
        return row

    async def delete(self, *, agent_id: str) -> None:
        """Soft-delete the agent and every thread with it."""
        row = await self.get(agent_id=agent_id)
        now = utcnow()
        row.deleted_at = now
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

    async def get(self, *, thread_id: str) -> Thread:
        row = await self.session.scalar(
            select(Thread).where(
                Thread.id == thread_id,
                Thread.user_id == self.owner_id,
                Thread.deleted_at.is_(None),
            )
        )
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
