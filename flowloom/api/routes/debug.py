"""Debug sessions (seed 003): run a workflow with breakpoints, step, continue, stop.

A debug session is a run that pauses as WAITING before each breakpoint node (and, in ``step``
mode, before every next node). Starting one answers once the run has paused or ended, so the
answer shows where it stands; ``step`` and ``continue`` release the paused node and answer
the same way; ``stop`` cancels the run. The session row keeps the breakpoints, the mode and the
node it is paused at, so a session can be read back after the fact.
"""

import asyncio
import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from flowloom.api.caller_runs import read_detail, start_as
from flowloom.api.deps import DatabaseDep, EngineDep, RunExecutor, SettingsDep, WorkflowReader
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.debug import DebugSessionDetail, DebugSessionPublic, DebugStart
from flowloom.engine import Engine
from flowloom.exceptions import Conflict
from flowloom.storage.database import Database
from flowloom.storage.repos.debug_sessions import DebugSessionRepo
from flowloom.storage.tables import DebugSession

__all__ = ["router"]

router = APIRouter(tags=["debug"])

Wait = Annotated[
    bool, Query(description="Answer once the run has paused again or ended (default).")
]


def _public(row: DebugSession) -> DebugSessionPublic:
    return DebugSessionPublic(
        id=row.id,
        run_id=row.run_id,
        breakpoints=list(row.breakpoints or []),
        mode="step" if row.mode == "step" else "continue",
        paused_node_id=row.paused_node_id,
        status=row.status,  # a CHECK constraint keeps it to the three
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _detail(db: Database, owner_id: str, debug_session_id: str) -> DebugSessionDetail:
    async with db.read() as session:
        row = await DebugSessionRepo(session, owner_id=owner_id).get(session_id=debug_session_id)
        public = _public(row)
    run = await read_detail(db, owner_id, row.run_id)
    return DebugSessionDetail(**public.model_dump(), run=run)


async def _settle(engine: Engine, run_id: str, timeout_s: float) -> None:
    """Wait until the run has paused or ended, at most ``timeout_s``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.wait(run_id), timeout_s)


@router.post("/workflows/{workflow_id}/debug-sessions", status_code=status.HTTP_201_CREATED)
async def start_debug_session(
    workflow_id: str,
    body: DebugStart,
    caller: RunExecutor,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    wait: Wait = True,
) -> DebugSessionDetail:
    """Start a debug run of the workflow; 422 names a breakpoint on a node not in the run."""
    run_id = await start_as(
        caller, engine, settings, workflow_id, body, breakpoints=body.breakpoints
    )
    if wait:
        await _settle(engine, run_id, settings.run_wait_timeout_s)
    async with db.read() as session:
        row = await session.scalar(DebugSessionRepo.by_run(run_id=run_id, owner_id=caller.user_id))
        assert row is not None, "start_run makes the session with the run"
        debug_session_id = row.id
    return await _detail(db, caller.user_id, debug_session_id)


@router.get("/debug-sessions")
async def list_debug_sessions(
    caller: WorkflowReader,
    db: DatabaseDep,
    workflow_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[DebugSessionPublic]:
    """The caller's debug sessions, newest first, optionally of one workflow."""
    async with db.read() as session:
        page = await DebugSessionRepo(session, owner_id=caller.user_id).list(
            workflow_id=workflow_id, cursor=cursor, limit=limit
        )
        items = [_public(row) for row in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/debug-sessions/{debug_session_id}")
async def read_debug_session(
    debug_session_id: str, caller: WorkflowReader, db: DatabaseDep
) -> DebugSessionDetail:
    """The session and its run, node by node."""
    return await _detail(db, caller.user_id, debug_session_id)


async def _release(
    action: Literal["step", "continue"],
    debug_session_id: str,
    caller: RunExecutor,
    db: Database,
    engine: Engine,
    timeout_s: float,
    wait: bool,
) -> DebugSessionDetail:
    async with db.read() as session:
        row = await DebugSessionRepo(session, owner_id=caller.user_id).get(
            session_id=debug_session_id
        )
        run_id, paused = row.run_id, row.paused_node_id
    if paused is None:
        raise Conflict(f"debug session {debug_session_id!r} is not paused at a node")
    await engine.answer(run_id, paused, {"action": action})
    if wait:
        await _settle(engine, run_id, timeout_s)
    return await _detail(db, caller.user_id, debug_session_id)


@router.post("/debug-sessions/{debug_session_id}/step")
async def step_debug_session(
    debug_session_id: str,
    caller: RunExecutor,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    wait: Wait = True,
) -> DebugSessionDetail:
    """Run the paused node and pause again before the next one; 409 when not paused."""
    return await _release(
        "step", debug_session_id, caller, db, engine, settings.run_wait_timeout_s, wait
    )


@router.post("/debug-sessions/{debug_session_id}/continue")
async def continue_debug_session(
    debug_session_id: str,
    caller: RunExecutor,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    wait: Wait = True,
) -> DebugSessionDetail:
    """Run on to the next breakpoint (or the end); 409 when not paused."""
    return await _release(
        "continue", debug_session_id, caller, db, engine, settings.run_wait_timeout_s, wait
    )


@router.post("/debug-sessions/{debug_session_id}/stop")
async def stop_debug_session(
    debug_session_id: str, caller: RunExecutor, db: DatabaseDep, engine: EngineDep
) -> DebugSessionDetail:
    """Cancel the session's run and mark the session stopped; stopping an ended session only
    marks it."""
    async with db.read() as session:
        row = await DebugSessionRepo(session, owner_id=caller.user_id).get(
            session_id=debug_session_id
        )
        run_id = row.run_id
    with contextlib.suppress(Conflict):
        await engine.cancel(run_id)
    async with db.write() as session:
        await DebugSessionRepo(session, owner_id=caller.user_id).mark_stopped(
            session_id=debug_session_id
        )
    return await _detail(db, caller.user_id, debug_session_id)
