"""Agents and threads (seed 004): ``/agents``, ``/threads`` and a thread's ``/messages``.

An agent is instructions, context, a model and tools (the tool shapes of ``ai.agent``). A thread
is a conversation, with an agent or with a model of its own. ``POST /threads/{id}/messages``
answers the reply, whole or as Server-Sent Events. Agents and threads soft-delete; deleting an
agent deletes its threads.

Secrets in tools (HTTP tool headers, the env and headers of an MCP server written inline) are
write-only and sealed in the credential vault (``agents.tools`` holds ``********`` in their
place; see :mod:`flowloom.storage.repos.agents`): answers show each value as ``********``, and
sending ``********`` back in a PATCH keeps the stored value. Servers that need secrets are
better registered as integrations. As the API starts, agents written before secrets were sealed
have their plain values moved into the vault (:func:`_seal_stored_secrets`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from flowloom.agents.threads import TOOLS_ADAPTER, Reply, ThreadService
from flowloom.api.deps import (
    Caller,
    DatabaseDep,
    EngineDep,
    RunExecutor,
    SettingsDep,
    WorkflowReader,
    WorkflowWriter,
)
from flowloom.api.errors import flowloom_problem, problem_json
from flowloom.api.schemas.agents import (
    AgentCreate,
    AgentPublic,
    AgentUpdate,
    MessageCreate,
    MessagePublic,
    ReplyPublic,
    ThreadCreate,
    ThreadPublic,
    ThreadUpdate,
    TurnUsage,
)
from flowloom.api.schemas.common import Page
from flowloom.exceptions import FlowloomError, InputError, NotFound
from flowloom.nodes.agent import HttpTool, McpTools, WorkflowTool
from flowloom.providers import PROVIDER_NAMES
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.agents import (
    HIDDEN,
    AgentRepo,
    ThreadRepo,
    join_model,
    seal_plain_agent_secrets,
    secret_maps,
    split_model,
)
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.integrations import IntegrationRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import Agent, Message, Thread
from flowloom.storage.vault import Vault

__all__ = ["router"]

_log = logging.getLogger("flowloom.api")


@asynccontextmanager
async def _seal_stored_secrets(app: FastAPI) -> AsyncIterator[None]:
    """The data migration of sealed agent secrets, run as the API starts (after the app's own
    start-up has migrated the schema): plain values left in ``agents.tools`` by earlier
    versions go into the vault. Idempotent; finds nothing to do once done."""
    state = app.state.flowloom
    async with state.db.write() as session:
        sealed = await seal_plain_agent_secrets(session, vault=Vault.from_settings(state.settings))
    if sealed:
        _log.info("sealed the plain tool secrets of %d agents in the vault", sealed)
    yield


router = APIRouter(tags=["agents"], lifespan=_seal_stored_secrets)


# Turns answered as a stream run on when the client goes away (their reply is still stored);
# this keeps their tasks referenced until they end.
_running_turns: set[asyncio.Task[Reply]] = set()


# ---- schemas


# ---- conversions


def _agent_public(row: Agent) -> AgentPublic:
    return AgentPublic(
        id=row.id,
        name=row.name,
        instructions=row.instructions,
        context=row.context,
        provider=row.provider,
        model=row.model,
        tools=[_hide_secrets(tool) for tool in row.tools],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _thread_public(row: Thread) -> ThreadPublic:
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


def _message_public(row: Message) -> MessagePublic:
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


def _reply_public(reply: Reply) -> ReplyPublic:
    return ReplyPublic(
        user_message=_message_public(reply.user_message),
        message=_message_public(reply.message),
        usage=TurnUsage(**reply.outcome.totals.to_json()),
        stop_reason=reply.outcome.stop_reason,
    )


def _hide_secrets(tool: Any) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(json.dumps(tool))
    for _label, values in secret_maps(shown):
        for name in values:
            values[name] = HIDDEN
    return shown


def _tool_key(tool: dict[str, Any], index: int) -> str:
    """Which stored tool a sent one stands for: HTTP tools by name, MCP servers by address."""
    if tool.get("kind") == "http":
        return f"http:{tool.get('name')}"
    server = tool.get("server")
    if isinstance(server, dict):
        return f"mcp:{server.get('transport')}:{server.get('command') or server.get('url')}"
    return f"{tool.get('kind')}:{index}"


def _dump_tools(
    tools: list[McpTools | HttpTool | WorkflowTool], stored: list[Any] | None = None
) -> list[dict[str, Any]]:
    """The tools with their secret values, each ``********`` replaced by the value it stands
    for in ``stored`` (the current tools, secrets opened)."""
    dumped = [tool.model_dump(mode="json", exclude_defaults=False) for tool in tools]
    previous = {
        _tool_key(tool, i): dict(secret_maps(tool))
        for i, tool in enumerate(stored or [])
        if isinstance(tool, dict)
    }
    for index, tool in enumerate(dumped):
        old = previous.get(_tool_key(tool, index), {})
        for label, values in secret_maps(tool):
            for name, value in values.items():
                if value != HIDDEN:
                    continue
                kept = old.get(label, {}).get(name)
                if kept is None:
                    raise InputError(
                        f"tools[{index}].{label}.{name}: {HIDDEN} stands for a stored value, "
                        "and there is none; send the value itself",
                        field=f"tools.{index}.{label}.{name}",
                    )
                values[name] = kept
    return dumped


# ---- validation against what the owner holds


async def _check_agent(
    db: Database,
    settings: Settings,
    owner_id: str,
    *,
    provider: str,
    model: str,
    tools: list[Any],
) -> None:
    """InputError naming the field when the model is disabled here, when two tools share a
    name, or when a tool names an integration or workflow the owner does not have."""
    if provider not in PROVIDER_NAMES:
        raise InputError(f"unknown provider {provider!r}", field="provider")
    parsed = TOOLS_ADAPTER.validate_python(tools)
    named = [tool.name for tool in parsed if not isinstance(tool, McpTools)]
    duplicates = sorted({name for name in named if named.count(name) > 1})
    if duplicates:
        raise InputError(f"tools named twice: {', '.join(duplicates)}", field="tools")
    async with db.read() as session:
        try:
            entry = await AiModelRepo(session).get(provider=provider, model=model)
        except NotFound:
            entry = None
        if entry is not None and not entry.enabled:
            raise InputError(
                f"the model {provider}/{model} is disabled on this instance", field="model"
            )
        integrations = IntegrationRepo(
            session, owner_id=owner_id, vault=Vault.from_settings(settings)
        )
        workflows = WorkflowRepo(session, owner_id=owner_id)
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


# ---- agents


@router.post("/agents", status_code=status.HTTP_201_CREATED)
async def create_agent(
    body: AgentCreate, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> AgentPublic:
    """A new agent; its model and tools are checked first (422 naming the field)."""
    tools = _dump_tools(body.tools)
    await _check_agent(
        db, settings, caller.user_id, provider=body.provider, model=body.model, tools=tools
    )
    async with db.write() as session:
        row = await AgentRepo(
            session, owner_id=caller.user_id, vault=Vault.from_settings(settings)
        ).create(
            name=body.name,
            instructions=body.instructions,
            context=body.context,
            provider=body.provider,
            model=body.model,
            tools=tools,
        )
        return _agent_public(row)


@router.get("/agents")
async def list_agents(
    caller: WorkflowReader,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[AgentPublic]:
    """Your agents, newest first."""
    async with db.read() as session:
        page = await AgentRepo(session, owner_id=caller.user_id).list(cursor=cursor, limit=limit)
        return Page(items=[_agent_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/agents/{agent_id}")
async def read_agent(agent_id: str, caller: WorkflowReader, db: DatabaseDep) -> AgentPublic:
    async with db.read() as session:
        return _agent_public(
            await AgentRepo(session, owner_id=caller.user_id).get(agent_id=agent_id)
        )


@router.patch("/agents/{agent_id}")
async def update_agent(
    agent_id: str,
    body: AgentUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> AgentPublic:
    """Change the fields sent; tools are replaced whole (``********`` keeps a stored secret)."""
    sent = body.model_fields_set
    vault = Vault.from_settings(settings)
    # A write transaction: opening the sealed values marks their credential used.
    async with db.write() as session:
        agents = AgentRepo(session, owner_id=caller.user_id, vault=vault)
        current = await agents.get(agent_id=agent_id)
        provider = body.provider or current.provider or "openai"
        model = body.model or current.model or ""
        stored_tools = list(current.tools)
        if body.tools is not None:
            stored_tools = await agents.tools_with_secrets(agent_id=agent_id)
    tools = _dump_tools(body.tools, stored_tools) if body.tools is not None else stored_tools
    await _check_agent(db, settings, caller.user_id, provider=provider, model=model, tools=tools)
    changes: dict[str, Any] = {}
    for field in ("name", "instructions", "provider", "model"):
        value = getattr(body, field)
        if field in sent and value is not None:
            changes[field] = value
    if "context" in sent:
        changes["context"] = body.context
    if body.tools is not None:
        changes["tools"] = tools
    async with db.write() as session:
        row = await AgentRepo(session, owner_id=caller.user_id, vault=vault).update(
            agent_id=agent_id, **changes
        )
        return _agent_public(row)


@router.delete("/agents/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(
    agent_id: str, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> Response:
    """Soft-delete the agent and its threads: they answer 404 from now on. Its sealed tool
    secrets are forgotten."""
    async with db.write() as session:
        await AgentRepo(
            session, owner_id=caller.user_id, vault=Vault.from_settings(settings)
        ).delete(agent_id=agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- threads


@router.post("/threads", status_code=status.HTTP_201_CREATED)
async def create_thread(
    body: ThreadCreate, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> ThreadPublic:
    """A new thread, with an agent or with a model of its own."""
    model = None
    if body.model is not None:
        provider = body.provider or "openai"
        await _check_agent(
            db, settings, caller.user_id, provider=provider, model=body.model, tools=[]
        )
        model = join_model(provider, body.model)
    async with db.write() as session:
        try:
            row = await ThreadRepo(session, owner_id=caller.user_id).create(
                name=body.name, agent_id=body.agent_id, instructions=body.instructions, model=model
            )
        except NotFound:
            raise InputError(f"you have no agent {body.agent_id!r}", field="agent_id") from None
        return _thread_public(row)


@router.get("/threads")
async def list_threads(
    caller: WorkflowReader,
    db: DatabaseDep,
    agent_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[ThreadPublic]:
    """Your threads, newest first; with ``agent_id``, only that agent's."""
    async with db.read() as session:
        page = await ThreadRepo(session, owner_id=caller.user_id).list(
            agent_id=agent_id, cursor=cursor, limit=limit
        )
        return Page(items=[_thread_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/threads/{thread_id}")
async def read_thread(thread_id: str, caller: WorkflowReader, db: DatabaseDep) -> ThreadPublic:
    async with db.read() as session:
        row = await ThreadRepo(session, owner_id=caller.user_id).get(thread_id=thread_id)
        return _thread_public(row)


@router.patch("/threads/{thread_id}")
async def update_thread(
    thread_id: str,
    body: ThreadUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> ThreadPublic:
    """Rename it, change its instructions, or (without an agent) its provider and model."""
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    if body.provider is not None or body.model is not None:
        async with db.read() as session:
            current = await ThreadRepo(session, owner_id=caller.user_id).get(thread_id=thread_id)
        if current.agent_id is not None:
            raise InputError("a thread with an agent uses the agent's model", field="model")
        old_provider, old_model = split_model(current.model)
        provider = body.provider or old_provider or "openai"
        model = body.model or old_model or ""
        await _check_agent(db, settings, caller.user_id, provider=provider, model=model, tools=[])
        changes["model"] = join_model(provider, model)
    if body.name is not None:
        changes["name"] = body.name
    if "instructions" in sent:
        changes["instructions"] = body.instructions
    async with db.write() as session:
        row = await ThreadRepo(session, owner_id=caller.user_id).update(
            thread_id=thread_id, **changes
        )
        return _thread_public(row)


@router.delete("/threads/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread_id: str, caller: WorkflowWriter, db: DatabaseDep) -> Response:
    """Soft-delete the thread: it and its messages answer 404 from now on."""
    async with db.write() as session:
        await ThreadRepo(session, owner_id=caller.user_id).delete(thread_id=thread_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    thread_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    order: Literal["newest", "oldest"] = "newest",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[MessagePublic]:
    """The thread's history: newest first by default (``order=oldest`` for oldest first);
    ``next_cursor`` continues in the same order."""
    async with db.read() as session:
        page = await ThreadRepo(session, owner_id=caller.user_id).messages(
            thread_id=thread_id, order=order, cursor=cursor, limit=limit
        )
        return Page(items=[_message_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.post(
    "/threads/{thread_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=ReplyPublic,
    responses={
        201: {"content": {"text/event-stream": {}}},
        502: {"description": "The model provider failed; no message was stored"},
    },
)
async def post_message(
    thread_id: str,
    body: MessageCreate,
    request: Request,
    caller: RunExecutor,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    stream: bool = False,
) -> ReplyPublic | StreamingResponse:
    """Send a message and get the agent's reply; both are stored only once the reply is whole.

    With ``?stream=true`` (or ``Accept: text/event-stream``) the answer is Server-Sent Events:
    ``delta`` (``{"text"}``: the reply as it arrives; with tools, the final answer in one
    piece), ``tool_call`` (each tool the agent called, with its result), then ``message`` (what
    the plain answer would be) or ``error`` (a problem document; nothing was stored). A failure
    before the first event answers problem+json with its own status instead.
    """
    service = ThreadService(
        db,
        providers=engine.providers,
        integrations=engine.integrations,
        engine=engine,
        node_settings=engine.node_settings,
        history_messages=settings.thread_history_messages,
        vault=Vault.from_settings(settings),
    )
    wants_stream = stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        reply = await service.post(
            owner_id=caller.user_id,
            thread_id=thread_id,
            content=body.content,
            api_key_id=caller.api_key_id,
        )
        return _reply_public(reply)
    return await _streamed(service, caller, thread_id, body.content)


_END: Final = object()


async def _streamed(
    service: ThreadService, caller: Caller, thread_id: str, content: str
) -> StreamingResponse:
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | object] = asyncio.Queue()

    async def on_delta(text: str) -> None:
        queue.put_nowait(("delta", {"text": text}))

    async def on_step(step: dict[str, Any]) -> None:
        queue.put_nowait(("tool_call", {k: v for k, v in step.items() if k != "usage"}))

    task = asyncio.create_task(
        service.post(
            owner_id=caller.user_id,
            thread_id=thread_id,
            content=content,
            api_key_id=caller.api_key_id,
            on_step=on_step,
            on_delta=on_delta,
        ),
        name=thread_id,
    )
    _running_turns.add(task)
    task.add_done_callback(_running_turns.discard)
    task.add_done_callback(lambda _: queue.put_nowait(_END))
    first = await queue.get()
    if first is _END:
        # Over before anything was sent: a failure answers problem+json with its own status.
        task.result()
    return StreamingResponse(
        _events(first, queue, task),
        status_code=status.HTTP_201_CREATED,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    first: tuple[str, dict[str, Any]] | object,
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | object],
    task: asyncio.Task[Reply],
) -> AsyncIterator[bytes]:
    item = first
    seq = 0
    while item is not _END:
        assert isinstance(item, tuple)
        kind, data = item
        yield _sse(seq, kind, data)
        seq += 1
        item = await queue.get()
    if task.cancelled():
        return
    error = task.exception()
    if error is None:
        yield _sse(seq, "message", _reply_public(task.result()).model_dump(mode="json"))
        return
    code: int = 500
    extra: dict[str, Any] = {}
    if isinstance(error, FlowloomError):
        code, extra, _headers = flowloom_problem(error)
    if code == 502:
        _log.warning("thread %s: %s", task.get_name(), error)
    elif code >= 500:
        _log.error("a streamed thread reply failed", exc_info=error)
    detail = str(error) if code < 500 or code == 502 else "the server failed to answer"
    yield _sse(seq, "error", problem_json(code, detail, **extra))


def _sse(seq: int, kind: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {seq}\nevent: {kind}\ndata: {payload}\n\n".encode()
