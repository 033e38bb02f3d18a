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

The rules (what a change must name, secrets kept, one transaction per change) live in
:mod:`flowloom.services.agents`; these routes parse, call it, and answer.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from flowloom.agents.threads import Reply, ThreadService
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
    agent_public,
    message_public,
    reply_public,
    thread_public,
)
from flowloom.api.schemas.common import Page
from flowloom.exceptions import FlowloomError
from flowloom.services.agents import AgentService, seal_stored_secrets
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.agents import UNSET, AgentRepo, ThreadRepo
from flowloom.storage.vault import Vault

__all__ = ["router"]

_log = logging.getLogger("flowloom.api")


@asynccontextmanager
async def _seal_stored_secrets(app: FastAPI) -> AsyncIterator[None]:
    """The data migration of sealed agent secrets, run as the API starts (after the app's own
    start-up has migrated the schema): plain values left in ``agents.tools`` by earlier
    versions go into the vault. Idempotent; finds nothing to do once done."""
    state = app.state.flowloom
    sealed = await seal_stored_secrets(state.db, vault=Vault.from_settings(state.settings))
    if sealed:
        _log.info("sealed the plain tool secrets of %d agents in the vault", sealed)
    yield


router = APIRouter(tags=["agents"], lifespan=_seal_stored_secrets)


# Turns answered as a stream run on when the client goes away (their reply is still stored);
# this keeps their tasks referenced until they end.
_running_turns: set[asyncio.Task[Reply]] = set()


def _service(caller: Caller, db: Database, settings: Settings) -> AgentService:
    return AgentService(db, owner_id=caller.user_id, vault=Vault.from_settings(settings))


# ---- agents


@router.post("/agents", status_code=status.HTTP_201_CREATED)
async def create_agent(
    body: AgentCreate, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> AgentPublic:
    """A new agent; its model and tools are checked first (422 naming the field)."""
    row = await _service(caller, db, settings).create_agent(
        name=body.name,
        instructions=body.instructions,
        context=body.context,
        provider=body.provider,
        model=body.model,
        tools=body.tools,
    )
    return agent_public(row)


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
    return Page(items=[agent_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/agents/{agent_id}")
async def read_agent(agent_id: str, caller: WorkflowReader, db: DatabaseDep) -> AgentPublic:
    async with db.read() as session:
        row = await AgentRepo(session, owner_id=caller.user_id).get(agent_id=agent_id)
    return agent_public(row)


@router.patch("/agents/{agent_id}")
async def update_agent(
    agent_id: str,
    body: AgentUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> AgentPublic:
    """Change the fields sent; tools are replaced whole (``********`` keeps a stored secret)."""
    # Checked and written in one transaction, the agent's row locked (the service).
    row = await _service(caller, db, settings).update_agent(
        agent_id=agent_id,
        name=body.name,
        instructions=body.instructions,
        context=body.context if "context" in body.model_fields_set else UNSET,
        provider=body.provider,
        model=body.model,
        tools=body.tools,
    )
    return agent_public(row)


@router.delete("/agents/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(
    agent_id: str, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> Response:
    """Soft-delete the agent and its threads: they answer 404 from now on. Its sealed tool
    secrets are forgotten."""
    await _service(caller, db, settings).delete_agent(agent_id=agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- threads


@router.post("/threads", status_code=status.HTTP_201_CREATED)
async def create_thread(
    body: ThreadCreate, caller: WorkflowWriter, db: DatabaseDep, settings: SettingsDep
) -> ThreadPublic:
    """A new thread, with an agent or with a model of its own."""
    row = await _service(caller, db, settings).create_thread(
        name=body.name,
        agent_id=body.agent_id,
        provider=body.provider,
        model=body.model,
        instructions=body.instructions,
    )
    return thread_public(row)


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
    return Page(items=[thread_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/threads/{thread_id}")
async def read_thread(thread_id: str, caller: WorkflowReader, db: DatabaseDep) -> ThreadPublic:
    async with db.read() as session:
        row = await ThreadRepo(session, owner_id=caller.user_id).get(thread_id=thread_id)
    return thread_public(row)


@router.patch("/threads/{thread_id}")
async def update_thread(
    thread_id: str,
    body: ThreadUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> ThreadPublic:
    """Rename it, change its instructions, or (without an agent) its provider and model."""
    row = await _service(caller, db, settings).update_thread(
        thread_id=thread_id,
        name=body.name,
        instructions=body.instructions if "instructions" in body.model_fields_set else UNSET,
        provider=body.provider,
        model=body.model,
    )
    return thread_public(row)


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
        return Page(items=[message_public(r) for r in page.items], next_cursor=page.next_cursor)


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
    ``delta`` (``{"text"}``: the reply as it arrives, with tools too; text said before a
    tool call is part of it, and a blank line starts what follows the call), ``tool_call``
    (each tool the agent called, with its result), then ``message`` (what the plain answer
    would be) or ``error`` (a problem document; nothing was stored). A failure before the
    first event answers problem+json with its own status instead.
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
        return reply_public(reply)
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
        yield _sse(seq, "message", reply_public(task.result()).model_dump(mode="json"))
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
