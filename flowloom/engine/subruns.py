"""Sub-runs: how the engine runs another workflow for a ``workflow.call`` node.

A child run is an ordinary run of the same owner (trigger kind ``subworkflow``), linked to its
parent by ``parent_run_id`` and ``parent_node_id``, with its nesting depth in its trigger data
so that a workflow calling itself fails clearly at the engine's depth limit instead of filling
the database. The calling node waits for the child in place, but lends its slot of the global
concurrency limit back while it waits: otherwise nested calls could hold every slot while the
children they wait for get none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowloom.engine.events import DROPPED, RUN_FINISHED_EVENTS
from flowloom.engine.limits import Holding
from flowloom.exceptions import Conflict, FlowloomError, NodeFailed
from flowloom.nodes.base import WorkflowRef
from flowloom.storage.enums import FINISHED_RUN_STATUSES, RunStatus, TriggerKind

if TYPE_CHECKING:
    from flowloom.engine.ports import RunResult
    from flowloom.engine.seams import RunClient

__all__ = ["EngineSubRuns"]


class _SlotLoan:
    """Gives the node's places back while any of its sub-runs is awaited: its permit of the
    global limit, and its place under the per-owner and per-key limits (the children count
    against the same owner, so holding it could starve them).

    Transitions happen under a lock so that concurrent ``for_each`` calls give back and take
    again exactly one permit between them. Taking the per-owner place back ignores the limit
    for a moment rather than keep a finished child's parent from finishing.
    """

    def __init__(self, engine: RunClient, run_id: str, node_id: str) -> None:
        self._engine = engine
        self._run_id = run_id
        self._node_id = node_id
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._holding: Holding | None = None

    async def lend(self) -> None:
        async with self._lock:
            self._waiting += 1
            if self._waiting == 1:
                self._engine.concurrency.release()
                self._holding = self._engine.give_back_place(self._run_id, self._node_id)

    async def take_back(self) -> None:
        async with self._lock:
            self._waiting -= 1
            if self._waiting == 0:
                if self._holding is not None:
                    self._engine.limits.take(self._run_id, self._node_id, self._holding)
                    self._holding = None
                await self._engine.concurrency.acquire()


class EngineSubRuns:
    """The SubRuns of one attempt of one node, backed by the engine that runs it."""

    def __init__(
        self, engine: RunClient, *, run_id: str, node_id: str, attempt: int, owner_id: str
    ) -> None:
        self._engine = engine
        self._run_id = run_id
        self._node_id = node_id
        self._attempt = attempt
        self._owner_id = owner_id
        # Built on first use: every dispatched node gets one of these, few ever call it.
        self._loan: _SlotLoan | None = None
        self._orphans_checked: asyncio.Lock | None = None
        self._checked = False
        self._names: dict[str, str] = {}

    def _fail(self, message: str) -> NodeFailed:
        return NodeFailed(message, node_id=self._node_id, attempt=self._attempt)

    async def start_and_wait(
        self, workflow: WorkflowRef, version: int | None, inputs: Mapping[str, Any]
    ) -> dict[str, Any]:
        await self._cancel_orphans()
        workflow_id = await self._resolve(workflow)
        try:
            child_id = await self._engine.start_run(
                owner_id=self._owner_id,
                workflow_id=workflow_id,
                version=version,
                inputs=inputs,
                trigger_kind=TriggerKind.SUBWORKFLOW,
                parent_attempt=self._attempt,
                parent_run_id=self._run_id,
                parent_node_id=self._node_id,
            )
        except FlowloomError as exc:
            raise self._fail(f"cannot start workflow {workflow_id!r}: {exc}") from None
        # The child's driver task has not run yet (nothing awaited since it was created), so
        # no event of the child can be missed by subscribing now.
        if self._loan is None:
            self._loan = _SlotLoan(self._engine, self._run_id, self._node_id)
        loan = self._loan
        with self._engine.bus.subscribe(child_id) as events:
            await loan.lend()
            try:
                result = await self._wait(child_id, events)
            except asyncio.CancelledError:
                await self._cancel_child(child_id)
                raise
            finally:
                await asyncio.shield(loan.take_back())
        if result.status is RunStatus.COMPLETED:
            return dict(result.outputs or {})
        error = result.error or {}
        reason = error.get("message") or f"it ended {result.status.value}"
        raise self._fail(f"sub-run {child_id} of workflow {workflow_id!r} failed: {reason}")

    async def _resolve(self, workflow: WorkflowRef) -> str:
        """The id of the workflow meant; a name is looked up among the owner's workflows (once
        per attempt: a for_each node calls with the same name for every item)."""
        if workflow.id is not None:
            return workflow.id
        assert workflow.name is not None
        found = self._names.get(workflow.name)
        if found is None:
            match = await self._engine.store.workflow_named(
                owner_id=self._owner_id, name=workflow.name
            )
            if match is None:
                raise self._fail(f"no workflow named {workflow.name!r}")
            found = self._names[workflow.name] = match
        return found

    async def _wait(self, child_id: str, events: Any) -> RunResult:
        while True:
            result = await self._engine.wait(child_id)
            if result.status in FINISHED_RUN_STATUSES:
                return result
            # WAITING (an approval inside the child): nothing runs until an answer restarts
            # its driver; sleep until the child says something that may have changed that.
            async for event in events:
                if event.type in RUN_FINISHED_EVENTS or event.type in ("run.resumed", DROPPED):
                    break

    async def _cancel_child(self, child_id: str) -> None:
        if self._engine.closed:
            # The engine is stopping, not the parent: the child resumes with the next engine.
            return
        with contextlib.suppress(Conflict):
            await asyncio.shield(self._engine.cancel(child_id))

    async def _cancel_orphans(self) -> None:
        """Cancel unfinished children left by an earlier attempt of this node (a crash)."""
        if self._attempt == 1 or self._checked:
            return
        if self._orphans_checked is None:
            self._orphans_checked = asyncio.Lock()
        async with self._orphans_checked:
            if self._checked:
                return
            self._checked = True
            children = await self._engine.store.active_children(
                run_id=self._run_id, node_id=self._node_id
            )
            for child_id, parent_attempt in children:
                if parent_attempt != self._attempt:
                    await self._cancel_child(child_id)
