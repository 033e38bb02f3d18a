"""A conversation turn in a thread: the user's message in, the agent's reply out, both stored.

:meth:`ThreadService.post` reads the thread, its agent (if any) and the thread's last
``history_messages`` messages, runs :func:`~flowloom.agents.loop.run_agent_loop` with that
history as context, and then stores the user's message and the reply together, in one
transaction. A failure (the provider, the tools, the quota) therefore stores no message at all:
the client still holds what it sent and may send it again. Usage rows are written per model call
as the loop goes (type ``agent``, the thread and agent ids in their metadata), so calls already
paid for stay on record even when a later step fails.

Tools run as they do in ``ai.agent``: MCP servers through the owner's integrations (stdio
servers only for administrators), HTTP requests within the instance's address policy, workflows
as runs of their own (trigger ``api``, with the thread's id in the trigger data).

This module reads and writes the database; nodes never import it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pydantic import TypeAdapter

from flowloom.agents.loop import LoopOptions, LoopOutcome, StepFailed, run_agent_loop
from flowloom.agents.tools import open_toolbox
from flowloom.exceptions import (
    ConfigurationError,
    ExecutionError,
    InputError,
    NodeFailed,
    NotFound,
)
from flowloom.integrations.usage import DatabaseUsageSink
from flowloom.nodes.agent import AgentTool
from flowloom.nodes.base import (
    MemoryItem,
    NodeSettings,
    NoSubRuns,
    RunContext,
    SubRuns,
    WorkflowRef,
    default_http_client,
)
from flowloom.providers import ChatMessage, ChatResponse, UsageEvent
from flowloom.storage.database import Database
from flowloom.storage.enums import MessageRole, RunStatus, TriggerKind
from flowloom.storage.repos.agents import (
    AgentRepo,
    NewMessage,
    ThreadRepo,
    has_hidden_secrets,
    split_model,
)
from flowloom.storage.tables import Agent, Message, Thread

if TYPE_CHECKING:
    from flowloom.engine import Engine
    from flowloom.integrations.http_client import HttpClientFactory
    from flowloom.integrations.mcp import McpServers
    from flowloom.providers import ChatProvider, ProviderResolver
    from flowloom.storage.vault import Vault

__all__ = ["DEFAULT_MAX_STEPS", "TOOLS_ADAPTER", "Reply", "ThreadService"]

DEFAULT_MAX_STEPS: Final = 10
"""Model calls per turn, as ``ai.agent``'s default."""

TOOLS_ADAPTER: Final = TypeAdapter(list[AgentTool])
"""Parses an agent's stored ``tools`` into the tool models of ``ai.agent``."""

_log = logging.getLogger("flowloom.agents")

StepListener = Callable[[dict[str, Any]], Awaitable[None]]
DeltaListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Reply:
    """One turn, stored: the user's message, the agent's reply and what the turn used."""

    user_message: Message
    message: Message
    outcome: LoopOutcome


@dataclass(frozen=True, slots=True)
class _Setup:
    thread: Thread
    agent: Agent | None
    provider: str
    model: str
    instructions: str | None
    tools: list[Any]
    history: list[Message]


class ThreadService:
    """Runs conversation turns for the threads in ``db``.

    ``providers`` and ``integrations`` are the engine's (so plan limits guard every call);
    ``engine`` runs workflow tools; ``history_messages`` bounds the context sent to the model;
    ``vault`` opens the sealed secrets of agents' tools (without one, an agent whose tools hold
    secrets cannot be talked to).
    """

    def __init__(
        self,
        db: Database,
        *,
        providers: ProviderResolver | None,
        integrations: McpServers | None = None,
        engine: Engine | None = None,
        node_settings: NodeSettings | None = None,
        history_messages: int = 50,
        max_steps: int = DEFAULT_MAX_STEPS,
        http_client: HttpClientFactory = default_http_client,
        vault: Vault | None = None,
    ) -> None:
        self._db = db
        self._vault = vault
        self._providers = providers
        self._integrations = integrations
        self._engine = engine
        self._node_settings = node_settings or NodeSettings()
        self._history_messages = history_messages
        self._max_steps = max_steps
        self._http_client = http_client

    async def post(
        self,
        *,
        owner_id: str,
        thread_id: str,
        content: str,
        api_key_id: str | None = None,
        on_step: StepListener | None = None,
        on_delta: DeltaListener | None = None,
    ) -> Reply:
        """Answer ``content`` in the thread and store both messages.

        NotFound for a thread that is not the owner's (or deleted); InputError when its model
        cannot be reached as configured or its tools cannot be used; ProviderError when the
        model fails; QuotaExceeded over a plan limit. None of these stores a message.
        """
        setup = await self._setup(owner_id, thread_id)
        provider = await self._provider(setup, owner_id)
        turn_key = f"{thread_id}:{secrets.token_hex(8)}"
        ctx = self._context(setup, owner_id, turn_key)
        messages = [_chat_message(row) for row in setup.history]
        messages.append(ChatMessage("user", content))
        usage = DatabaseUsageSink(self._db, owner_id=owner_id, api_key_id=api_key_id)

        async def record(response: ChatResponse, step: int) -> Decimal | None:
            return await _record(usage, setup, response, step)

        async with AsyncExitStack() as stack:
            try:
                toolbox = await open_toolbox(ctx, TOOLS_ADAPTER.validate_python(setup.tools), stack)
            except NodeFailed as exc:
                raise InputError(_reason(exc), field="tools") from None
            options = LoopOptions(
                model=setup.model,
                instructions=setup.instructions,
                max_steps=self._max_steps,
                idempotency_key=turn_key,
            )
            try:
                outcome = await run_agent_loop(
                    provider,
                    messages,
                    toolbox,
                    options,
                    record=record,
                    on_step=on_step,
                    on_delta=on_delta,
                )
            except StepFailed as failed:
                raise failed.error from None
        tool_calls = [step for step in outcome.steps if step["tool"] is not None]
        async with self._db.write() as session:
            user_message, reply = await ThreadRepo(session, owner_id=owner_id).add_messages(
                thread_id=thread_id,
                messages=[
                    NewMessage(MessageRole.USER, content),
                    NewMessage(
                        MessageRole.ASSISTANT,
                        outcome.text,
                        tool_calls=tool_calls or None,
                        tokens_in=outcome.totals.tokens_in,
                        tokens_out=outcome.totals.tokens_out,
                    ),
                ],
            )
        return Reply(user_message, reply, outcome)

    async def _setup(self, owner_id: str, thread_id: str) -> _Setup:
        async with self._db.read() as session:
            threads = ThreadRepo(session, owner_id=owner_id)
            thread = await threads.get(thread_id=thread_id)
            agent = None
            if thread.agent_id is not None:
                agent = await AgentRepo(session, owner_id=owner_id).get(agent_id=thread.agent_id)
            history = await threads.recent(thread_id=thread_id, limit=self._history_messages)
        # A window that starts with a reply would start the conversation with the model
        # speaking, which some providers refuse.
        while history and history[0].role != MessageRole.USER:
            history.pop(0)
        if agent is not None:
            assert agent.provider is not None
            assert agent.model is not None
            tools = list(agent.tools)
            if has_hidden_secrets(tools):
                if self._vault is None:
                    raise InputError(
                        "this agent's tool secrets cannot be opened here", field="tools"
                    )
                # A write transaction: opening the sealed values marks their credential used.
                async with self._db.write() as session:
                    tools = await AgentRepo(
                        session, owner_id=owner_id, vault=self._vault
                    ).tools_with_secrets(agent_id=agent.id)
            parts = [agent.instructions]
            if agent.context:
                parts.append(f"Context:\n{agent.context}")
            if thread.instructions:
                parts.append(thread.instructions)
            instructions = "\n\n".join(part for part in parts if part) or None
            return _Setup(
                thread,
                agent,
                agent.provider,
                agent.model,
                instructions,
                tools,
                history,
            )
        provider, model = split_model(thread.model)
        if provider is None or model is None:
            raise InputError("the thread has no agent and no model", field="model")
        return _Setup(thread, None, provider, model, thread.instructions or None, [], history)

    async def _provider(self, setup: _Setup, owner_id: str) -> ChatProvider:
        if self._providers is None:
            raise InputError("no LLM providers are configured on this instance", field="provider")
        try:
            return await self._providers.resolve(setup.provider, owner_id=owner_id)
        except ConfigurationError as exc:
            raise InputError(str(exc), field="provider") from None

    def _context(self, setup: _Setup, owner_id: str, turn_key: str) -> RunContext:
        subruns: SubRuns = NoSubRuns()
        if self._engine is not None:
            subruns = _ThreadSubRuns(self._engine, owner_id=owner_id, thread_id=setup.thread.id)
        return RunContext(
            run_id=setup.thread.id,
            node_id="agent",
            idempotency_key=turn_key,
            blobs=_NoBlobs(),
            memory=_NoMemory(),
            settings=self._node_settings,
            http_client=self._http_client,
            logger=_log,
            subruns=subruns,
            owner_id=owner_id,
            integrations=self._integrations,
        )


def _chat_message(row: Message) -> ChatMessage:
    if row.role == MessageRole.ASSISTANT:
        return ChatMessage("assistant", row.content)
    return ChatMessage("user", row.content)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split("): ", 1)[-1] if text.startswith("node ") else text


async def _record(
    usage: DatabaseUsageSink, setup: _Setup, response: ChatResponse, step: int
) -> Decimal | None:
    event = UsageEvent(
        provider=setup.provider,
        model=setup.model,
        tokens_in=response.usage.tokens_in,
        tokens_out=response.usage.tokens_out,
        type="agent",
        metadata={
            "thread_id": setup.thread.id,
            "agent_id": setup.agent.id if setup.agent is not None else None,
            "step": step,
            "answered_by": response.model,
            "finish_reason": response.finish_reason,
            "tool_calls": [call.name for call in response.tool_calls],
        },
    )
    try:
        return await usage.record(event)
    except Exception:
        # Paid for already: keep the answer, and log enough to reconcile by hand.
        _log.exception(
            "usage of %s/%s (%d in, %d out) by step %d in thread %s was not recorded",
            setup.provider,
            setup.model,
            event.tokens_in,
            event.tokens_out,
            step,
            setup.thread.id,
        )
        return None


class _ThreadSubRuns:
    """Workflow tools of a thread: each call is a run of its own, awaited to its end."""

    def __init__(self, engine: Engine, *, owner_id: str, thread_id: str) -> None:
        self._engine = engine
        self._owner_id = owner_id
        self._thread_id = thread_id

    async def start_and_wait(
        self, workflow: WorkflowRef, version: int | None, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        if workflow.id is None:
            raise ExecutionError(f"workflow {workflow}: a thread's tools name workflows by id")
        try:
            result = await self._engine.run_to_end(
                owner_id=self._owner_id,
                workflow_id=workflow.id,
                version=version,
                inputs=inputs,
                trigger_kind=TriggerKind.API,
                trigger_data={"thread_id": self._thread_id},
            )
        except NotFound:
            raise ExecutionError(f"you have no workflow {workflow.id!r}") from None
        except (InputError, ExecutionError) as exc:
            raise ExecutionError(f"cannot run workflow {workflow.id!r}: {exc}") from None
        if result.status is RunStatus.COMPLETED:
            return dict(result.outputs or {})
        reason = (result.error or {}).get("message") or f"it ended {result.status.value}"
        raise ExecutionError(f"run {result.run_id} of workflow {workflow.id!r}: {reason}")


class _NoBlobs:
    """Agent tools store no binary data; a thread has no blob store."""

    async def put(self, data: bytes) -> str:
        raise ExecutionError("a thread has no blob store")

    async def read(self, sha256: str) -> bytes:
        raise ExecutionError("a thread has no blob store")


class _NoMemory:
    """Workflow memory belongs to runs, not to threads."""

    async def get(self, key: str) -> MemoryItem | None:
        raise ExecutionError("a thread has no workflow memory")

    async def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> MemoryItem:
        raise ExecutionError("a thread has no workflow memory")

    async def delete(self, key: str) -> bool:
        raise ExecutionError("a thread has no workflow memory")
