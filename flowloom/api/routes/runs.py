"""Runs: start one, read the history, read one node by node, cancel, answer, follow live (SSE)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse

from flowloom.api.caller_runs import read_detail, start_as
from flowloom.api.deps import (
    AppStateDep,
    Caller,
    DatabaseDep,
    EngineDep,
    RunExecutor,
    RunStarter,
    SettingsDep,
    WorkflowReader,
)
from flowloom.api.events_schema import RunStreamMessage
from flowloom.api.limits import check_inputs_size
from flowloom.api.run_feed import WRITE_EVERY_S, FeedReader, sse_message
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.runs import (
    AnswerCreate,
    RunCreate,
    RunDetail,
    RunPublic,
    run_page,
    run_public,
)
from flowloom.engine import Engine
from flowloom.exceptions import InputError
from flowloom.ids import PREFIXES, parse_id
from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES, RunStatus, TriggerKind
from flowloom.storage.repos.run_history import read_history
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.workflows import WorkflowRepo

__all__ = ["router"]

router = APIRouter(tags=["runs"])

Limit = Annotated[int, Query(ge=1, le=100)]
Wait = Annotated[
    bool, Query(description="Answer once the run has finished or waits for an answer.")
]

_KEEPALIVE_S = 15.0


async def _wait(engine: Engine, run_id: str, timeout_s: float) -> bool:
    """Whether the run finished (or parked) within ``timeout_s``."""
    try:
        await asyncio.wait_for(engine.settle(run_id), timeout_s)
    except TimeoutError:
        return False
    return True


@router.post(
    "/workflows/{workflow_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": RunDetail, "description": "With wait: the finished run"}},
)
async def start_run(
    workflow_id: str,
    body: RunCreate,
    caller: RunStarter,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    wait: Wait = False,
) -> RunPublic | RunDetail:
    """Start a run of the workflow (FULL, one NODE, or a node and its UPSTREAM).

    Without wait: 202 with the run as it starts. With wait: 200 with the finished run and
    every node execution (a run still going after ``run_wait_timeout_s`` answers 202). A
    definition that cannot run answers 422 naming its problems, and nothing is written.
    """
    run_id = await start_as(
        caller,
        engine,
        settings,
        workflow_id,
        body,
        idempotency_key=body.idempotency_key,
        timeout_s=body.timeout_s,
    )
    response.headers["Location"] = f"/api/v1/runs/{run_id}"
    if (wait or body.wait) and await _wait(engine, run_id, settings.run_wait_timeout_s):
        response.status_code = status.HTTP_200_OK
        return await read_detail(db, caller.user_id, run_id)
    async with db.read() as session:
        run = await RunRepo(session, owner_id=caller.user_id).get(run_id=run_id)
    return run_public(run)


@router.get("/runs")
async def list_runs(
    caller: WorkflowReader,
    db: DatabaseDep,
    cursor: Annotated[
        str | None, Query(description="The `next_cursor` of the page before.")
    ] = None,
    limit: Limit = 10,
    status: RunStatus | None = None,
    workflow_id: Annotated[str | None, Query(description="Only this workflow's runs.")] = None,
    trigger: Annotated[TriggerKind | None, Query(description="Only runs started so.")] = None,
    since: Annotated[
        datetime | None, Query(description="Only runs created at or after this time (ISO 8601).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Only runs created before this time (ISO 8601).")
    ] = None,
) -> Page[RunPublic]:
    """The caller's run history across every workflow, newest first (seed 000's sidebar).

    Every filter is optional and they combine. A time without a zone is UTC. A bad status,
    trigger kind, time, cursor or an ``until`` not after ``since`` answers 422 naming the
    parameter; another user's ``workflow_id`` finds no runs (an empty page, as for a deleted
    workflow), never theirs.
    """
    if workflow_id is not None:
        _check_workflow_id(workflow_id)
    page = await read_history(
        db,
        owner_id=caller.user_id,
        cursor=cursor,
        limit=limit,
        status=status,
        workflow_id=workflow_id,
        trigger=trigger,
        since=since,
        until=until,
    )
    return run_page(page)


def _check_workflow_id(workflow_id: str) -> None:
    try:
        parse_id(workflow_id, prefix=PREFIXES["workflows"])
    except ValueError as exc:
        raise InputError(str(exc), field="workflow_id") from None


@router.get("/workflows/{workflow_id}/runs")
async def list_workflow_runs(
    workflow_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Limit = 10,
    status: RunStatus | None = None,
) -> Page[RunPublic]:
    """The runs of one workflow, newest first."""
    async with db.read() as session:
        await WorkflowRepo(session, owner_id=caller.user_id).get(workflow_id=workflow_id)
        page = await RunRepo(session, owner_id=caller.user_id).history(
            cursor=cursor, limit=limit, status=status, workflow_id=workflow_id
        )
    return Page(items=[run_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/runs/{run_id}")
async def read_run(run_id: str, caller: WorkflowReader, db: DatabaseDep) -> RunDetail:
    """The run with every node execution: status, attempt, inputs, outputs, error, timings."""
    return await read_detail(db, caller.user_id, run_id)


@router.post("/runs/{run_id}/cancel")
async def cancel_run(
    run_id: str, caller: RunExecutor, db: DatabaseDep, engine: EngineDep
) -> RunDetail:
    """Cancel the run: nodes in flight stop, the rest are CANCELLED. 409 if it already ended
    otherwise; cancelling a cancelled run changes nothing."""
    async with db.read() as session:
        await RunRepo(session, owner_id=caller.user_id).get(run_id=run_id)
    await engine.cancel(run_id)
    return await read_detail(db, caller.user_id, run_id)


@router.post("/runs/{run_id}/nodes/{node_id}/answer")
async def answer_node(
    run_id: str,
    node_id: str,
    body: AnswerCreate,
    caller: RunExecutor,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    wait: Wait = False,
) -> RunDetail:
    """Answer a WAITING node (an approval: ``{"approved": true}``); the run goes on.

    409 if the node is not waiting. With wait: answers once the run has finished or waits
    again.
    """
    answer = body.model_dump(exclude_none=True)
    check_inputs_size(answer, max_bytes=settings.max_run_inputs_bytes)
    async with db.read() as session:
        await RunRepo(session, owner_id=caller.user_id).get(run_id=run_id)
    await engine.answer(run_id, node_id, answer)
    if wait:
        await _wait(engine, run_id, settings.run_wait_timeout_s)
    return await read_detail(db, caller.user_id, run_id)


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


@router.get(
    "/runs/{run_id}/events",
    response_class=EventStreamResponse,
    responses={
        200: {
            "model": RunStreamMessage,
            "description": "Server-Sent Events, each one `RunStreamMessage`",
        }
    },
)
async def follow_run(
    run_id: str, caller: WorkflowReader, db: DatabaseDep, state: AppStateDep
) -> EventStreamResponse:
    """The run's state changes as Server-Sent Events, ending when the run ends.

    The first event, ``snapshot``, is the whole run as it is now (``GET /runs/{id}``), so a
    late subscriber misses nothing (a node streaming text follows it with its text so far, as
    one ``node.delta`` at offset 0); then ``run.started``, ``node.started``,
    ``node.succeeded``, ``node.delta``, ... as they are committed; the stream ends after
    ``run.completed``, ``run.failed`` or ``run.cancelled``. Each event's ``data`` is JSON:
    ``RunDetail`` for ``snapshot``, a ``RunEvent`` of that ``type`` otherwise (an unknown
    type is to be ignored). A reader that fell behind gets a fresh ``snapshot`` (or, if it
    only lost streamed text, the node's whole text so far): a slow reader never slows the
    run. Events close together come in one write (at most one every 20 ms). A comment line
    every 15 s keeps proxies from closing an idle stream.
    """
    # Follow before reading the snapshot, so nothing committed in between is lost.
    reader = state.run_feeds().reader(run_id)
    try:
        snapshot = await read_detail(db, caller.user_id, run_id)
    except BaseException:
        reader.close()
        raise
    return EventStreamResponse(
        _stream(reader, snapshot, db, caller),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _snapshot(reader: FeedReader, detail: RunDetail) -> bytes:
    """The run as ``detail`` has it, then the text so far of every node streaming now."""
    message = sse_message(reader.feed.next_seq(), "snapshot", detail.model_dump(mode="json"))
    return message + reader.texts()


async def _stream(
    reader: FeedReader, snapshot: RunDetail, db: Database, caller: Caller
) -> AsyncIterator[bytes]:
    try:
        yield _snapshot(reader, snapshot)
        if RunStatus(snapshot.status) in FINISHED_RUN_STATUSES:
            return
        while True:
            try:
                async with asyncio.timeout(_KEEPALIVE_S):
                    await reader.wait()
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            chunk = b""
            if reader.needs_snapshot:
                # This reader fell behind and lost state changes: the database has the truth.
                reader.needs_snapshot = False
                fresh = await read_detail(db, caller.user_id, snapshot.id)
                chunk = _snapshot(reader, fresh)
                if RunStatus(fresh.status) in FINISHED_RUN_STATUSES:
                    yield chunk
                    return
            chunk += reader.take()
            if chunk:
                yield chunk
            if reader.finished and not reader.needs_snapshot:
                return
            # What comes in the meantime goes out in the next write, together.
            await asyncio.sleep(WRITE_EVERY_S)
    finally:
        reader.close()
