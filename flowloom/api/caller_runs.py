"""Starting a run as the caller, and reading a run back in detail: what the run routes and the
debug-session routes share.
"""

from __future__ import annotations

from typing import Any, Protocol

from flowloom.api.deps import Caller
from flowloom.api.limits import check_inputs_size
from flowloom.api.schemas.runs import RunDetail, run_detail
from flowloom.engine import Engine
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import RunScope, TriggerKind
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
    goes to ``Engine.start_run`` as it is. 413 for inputs over the limit."""
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
