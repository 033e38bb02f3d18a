"""Starting a run as the caller, and reading a run back in detail: what the run routes and the
debug-session routes share.
"""

from __future__ import annotations

from typing import Any, Protocol

from flowloom.api.deps import Caller, recheck_key
from flowloom.api.limits import check_inputs_size
from flowloom.api.schemas.runs import RunDetail, run_detail
from flowloom.engine import Engine
from flowloom.engine.ports import StartRefused
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import ApiScope, RunScope, TriggerKind
from flowloom.storage.repos.run_detail import read_run_detail

__all__ = ["RunRequest", "read_detail", "start_as"]


async def read_detail(db: Database, owner_id: str, run_id: str) -> RunDetail:
    """The owner's run with every node execution and the usage of its model calls (no
    session: the runs API answers every waited-for run with it)."""
    rows = await read_run_detail(db, owner_id=owner_id, run_id=run_id)
    return run_detail(rows.run, rows.nodes, rows.usage)


class RunRequest(Protocol):
    """What a request to start a run says (``RunCreate``, a debug session's start)."""

    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int | None: ...
    @property
    def scope(self) -> RunScope: ...
    @property
    def target_node_id(self) -> str | None: ...


async def start_as(
    caller: Caller,
    engine: Engine,
    settings: Settings,
    workflow_id: str,
    body: RunRequest,
    **more: Any,
) -> str:
    """Start a run of ``workflow_id`` for the caller (its API key recorded, if any); ``more``
    goes to ``Engine.start_run`` as it is. 413 for inputs over the limit.

    A caller whose API key this request did not read (``Caller.key_guard``, ``RunStarter``)
    starts with the guard, so that the statement writing the run checks the key; a start it
    refused, or that failed for any reason, reads the key first (401 or 403 when it is no
    longer valid, before any other answer), and a refused start goes again unguarded."""
    if caller.key_guard is None:
        return await _start(caller, engine, settings, workflow_id, body, **more)
    try:
        return await _start(
            caller, engine, settings, workflow_id, body, guard=caller.key_guard, **more
        )
    except StartRefused:
        checked = await recheck_key(caller, ApiScope.RUNS_EXECUTE)
        return await _start(checked, engine, settings, workflow_id, body, **more)
    except Exception:
        await recheck_key(caller, ApiScope.RUNS_EXECUTE)
        raise


async def _start(
    caller: Caller,
    engine: Engine,
    settings: Settings,
    workflow_id: str,
    body: RunRequest,
    **more: Any,
) -> str:
    check_inputs_size(body.inputs, max_bytes=settings.max_run_inputs_bytes)
    return await engine.start_run(
        owner_id=caller.user_id,
        workflow_id=workflow_id,
        version=body.version,
        scope=body.scope.value,
        target_node_id=body.target_node_id,
        inputs=body.inputs,
        trigger_kind=TriggerKind.API if caller.api_key_id else TriggerKind.MANUAL,
        api_key_id=caller.api_key_id,
        use_pinned=getattr(body, "use_pinned", False),
        **more,
    )
