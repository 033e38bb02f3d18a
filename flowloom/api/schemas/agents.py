"""Agents, threads and their messages, and a thread turn's reply.

Secret values in an agent's tools are answered as ``********``; sending ``********`` back in a
PATCH keeps the stored value (see :mod:`flowloom.services.agents`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from flowloom.agents.threads import Reply
from flowloom.api.schemas.common import ApiModel, RequestBody
from flowloom.nodes.agent import AgentTool
from flowloom.providers.model_names import ModelName
from flowloom.services.agent_secrets import public_tools
from flowloom.storage.enums import MessageRole
from flowloom.storage.repos.agents import split_model
from flowloom.storage.tables import Agent, Message, Thread

Provider = Literal["openai", "gemini", "anthropic"]

_TEXT_MAX: Final = 100_000


class AgentCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=_TEXT_MAX)
    """What the agent is for and how it behaves (the system prompt)."""
    context: str | None = Field(default=None, max_length=_TEXT_MAX)
    """Knowledge the agent always has, sent after the instructions."""
    provider: Provider = "openai"
    model: ModelName
    tools: list[AgentTool] = Field(default_factory=list)
    """As in ``ai.agent``: ``{"kind": "mcp", "server": ...}``, ``{"kind": "http", ...}``,
    ``{"kind": "workflow", "workflow_id": ...}``."""


class AgentUpdate(RequestBody):
    """Only the fields sent change; ``context: null`` clears it."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=_TEXT_MAX)
    context: str | None = Field(default=None, max_length=_TEXT_MAX)
    provider: Provider | None = None
    model: ModelName | None = None
    tools: list[AgentTool] | None = None


class AgentPublic(ApiModel):
    id: str
    name: str
    instructions: str
    context: str | None
    provider: str | None
    model: str | None
    tools: list[dict[str, Any]]
    """Secret values (headers, env) shown as ``********``."""
    created_at: datetime
    updated_at: datetime


class ThreadCreate(RequestBody):
    name: str = Field(default="New thread", min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, max_length=100)
    """Talk to this agent (its model, instructions and tools)."""
    provider: Provider | None = None
    """Without an agent: who runs the model (``openai`` when only ``model`` is given)."""
    model: ModelName | None = Field(default=None, max_length=150)
    """Without an agent: the model to talk to (required then)."""
    instructions: str | None = Field(default=None, max_length=_TEXT_MAX)
    """The thread's own instructions (after the agent's, with an agent)."""

    @model_validator(mode="after")
    def _agent_or_model(self) -> ThreadCreate:
        if self.agent_id is not None and (self.provider or self.model):
            raise ValueError("a thread with an agent uses the agent's model: omit provider/model")
        if self.agent_id is None and self.model is None:
            raise ValueError("a thread without an agent needs a model")
        return self


class ThreadUpdate(RequestBody):
    """Only the fields sent change; ``instructions: null`` clears them."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=_TEXT_MAX)
    provider: Provider | None = None
    model: ModelName | None = Field(default=None, max_length=150)


class ThreadPublic(ApiModel):
    id: str
    name: str
    agent_id: str | None
    provider: str | None
    """The thread's own model; null for a thread with an agent (it uses the agent's)."""
    model: str | None
    instructions: str | None
    created_at: datetime
    updated_at: datetime


class MessageCreate(RequestBody):
    content: str = Field(min_length=1, max_length=_TEXT_MAX)


class MessagePublic(ApiModel):
    id: str
    thread_id: str
    role: MessageRole
    content: str
    tool_calls: list[dict[str, Any]] | None
    """For a reply: each tool call the agent made (``step``, ``tool``, ``arguments``,
    ``result``, ``is_error``, ``usage``)."""
    tokens_in: int
    tokens_out: int
    created_at: datetime


class TurnUsage(ApiModel):
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: str | None
    """Exact decimal, summed over the model calls; null when one could not be priced."""
    calls: int


class ReplyPublic(ApiModel):
    user_message: MessagePublic
    message: MessagePublic
    """The agent's reply."""
    usage: TurnUsage
    stop_reason: Literal["answer", "max_steps"]


def agent_public(row: Agent) -> AgentPublic:
    return AgentPublic(
        id=row.id,
        name=row.name,
        instructions=row.instructions,
        context=row.context,
        provider=row.provider,
        model=row.model,
        tools=public_tools(row.tools),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def thread_public(row: Thread) -> ThreadPublic:
    provider, model = split_model(row.model) if row.agent_id is None else (None, None)
    return ThreadPublic(
        id=row.id,
        name=row.name,
        agent_id=row.agent_id,
        provider=provider,
        model=model,
        instructions=row.instructions,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def message_public(row: Message) -> MessagePublic:
    return MessagePublic(
        id=row.id,
        thread_id=row.thread_id,
        role=row.role,
        content=row.content,
        tool_calls=row.tool_calls,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        created_at=row.created_at,
    )


def reply_public(reply: Reply) -> ReplyPublic:
    return ReplyPublic(
        user_message=message_public(reply.user_message),
        message=message_public(reply.message),
        usage=TurnUsage(**reply.outcome.totals.to_json()),
        stop_reason=reply.outcome.stop_reason,
    )
