"""``MemoryRunStore``: the engine's ``RunStore`` in plain dicts, for tests and throwaway runs.

It keeps the SQL store's rules where the engine relies on them: ticks are fenced by the lease
(a fenced row is written only while RUNNING under the tick's owner, and a refused tick writes
nothing), a finished run never changes, idempotency keys are per owner, runs and workflows are
the owner's only. What it hands out and takes in is copied, so a driver's state is never the
store's. Workflows are added with :meth:`MemoryRunStore.add_workflow`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flowloom.engine.plans import check_breakpoints
from flowloom.engine.ports import (
    NewRun,
    PlanSource,
    RunResult,
    StoredRun,
    Tick,
    UnfinishedNode,
    UnfinishedRun,
)
from flowloom.engine.run_state import DebugState, NodeSlot
from flowloom.exceptions import Conflict, LimitExceeded, NotFound
from flowloom.graph import Scope
from flowloom.ids import new_id
from flowloom.nodes.base import MemoryStore
from flowloom.providers.usage import UsageSink
from flowloom.storage.enums import (
    ACTIVE_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    NodeStatus,
    RunStatus,
)
from flowloom.testing import InMemoryMemoryStore

__all__ = ["MemoryRunStore"]

_UNFINISHED_NODES = (NodeStatus.PENDING, NodeStatus.READY, NodeStatus.RUNNING, NodeStatus.WAITING)


@dataclass(slots=True)
class _Workflow:
    owner_id: str
    name: str
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class _Run:
    id: str
    owner_id: str
    workflow_id: str
    version: int
    scope: Scope
    target_node_id: str | None
    inputs: dict[str, Any]
    trigger_data: dict[str, Any]
    timeout_s: float | None
    api_key_id: str | None
    parent_run_id: str | None
    parent_node_id: str | None
    use_cache: bool = True
    use_pinned: bool = False
    depth: int = 0
    parent_attempt: int | None = None
    status: RunStatus = RunStatus.PENDING
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    cancel_requested: bool = False
    rows: dict[str, NodeSlot] = field(default_factory=dict)
    """Node rows by node id, in plan order."""
    debug: DebugState | None = None
    debug_status: str = "active"


class MemoryRunStore:
    """Runs in this process's memory; gone with it."""

    def __init__(self) -> None:
        self._workflows: dict[str, _Workflow] = {}
        self._runs: dict[str, _Run] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._cache: dict[str, tuple[str, dict[str, Any]]] = {}
        self._artifacts: dict[str, set[tuple[str, str]]] = {}
        """owner -> {(sha256, node execution id)}."""
        self._memories: dict[tuple[str, str], InMemoryMemoryStore] = {}
        self._seq = itertools.count(1)

    # ---- workflows (the store's own, for callers that have no database)

    def add_workflow(
        self, *, owner_id: str, definition: Mapping[str, Any], name: str | None = None
    ) -> str:
        """Save ``definition`` as version 1 of a new workflow of ``owner_id``; its id."""
        workflow_id = new_id("wf")
        self._workflows[workflow_id] = _Workflow(owner_id, name or workflow_id)
        self._workflows[workflow_id].versions[1] = copy.deepcopy(dict(definition))
        return workflow_id

    def add_version(self, workflow_id: str, definition: Mapping[str, Any]) -> int:
        """Save ``definition`` as the workflow's next version; its number."""
        workflow = self._workflows[workflow_id]
        version = max(workflow.versions) + 1
        workflow.versions[version] = copy.deepcopy(dict(definition))
        return version

    # ---- starting and reading runs

    async def create_run(self, new: NewRun, plans: PlanSource) -> StoredRun:
        return await self.load_run(await self._create_run(new, plans), plans)

    async def _create_run(self, new: NewRun, plans: PlanSource) -> str:
        if new.guard is not None:
            raise ValueError("a start guard is read by PostgreSQL: not kept in memory")
        if new.idempotency_key is not None:
            existing = self._keys.get((new.owner_id, new.idempotency_key))
            if existing is not None:
                if self._runs[existing].workflow_id != new.workflow_id:
                    raise Conflict("this idempotency key was used for another workflow")
                return existing
        workflow = self._workflows.get(new.workflow_id)
        if workflow is None or workflow.owner_id != new.owner_id:
            raise NotFound("workflow", new.workflow_id)
        version = max(workflow.versions) if new.version is None else new.version
        if version not in workflow.versions:
            raise NotFound("workflow version", f"{new.workflow_id}@{version}")
        data = dict(new.trigger_data)
        depth = 0
        if new.parent_run_id is not None:
            parent = self._owned_run(new.parent_run_id, new.owner_id)
            depth = parent.depth + 1
            if depth > new.max_depth:
                raise LimitExceeded(
                    f"sub-runs would nest {depth} deep, over the limit of {new.max_depth}",
                    limit="max_subrun_depth",
                )
        pinned = new.use_pinned
        prepared = plans.cached(
            new.workflow_id, version, new.scope, new.target_node_id, use_pinned=pinned
        )
        if prepared is None:
            prepared = plans.prepare(
                new.workflow_id,
                version,
                workflow.versions[version],
                new.scope,
                new.target_node_id,
                use_pinned=pinned,
            )
        check_breakpoints(new.breakpoints, prepared)
        run = _Run(
            id=new_id("run"),
            owner_id=new.owner_id,
            workflow_id=new.workflow_id,
            version=version,
            scope=new.scope,
            target_node_id=new.target_node_id if new.scope is not Scope.FULL else None,
            inputs=copy.deepcopy(new.inputs),
            trigger_data=data,
            timeout_s=new.timeout_s,
            api_key_id=new.api_key_id,
            parent_run_id=new.parent_run_id,
            parent_node_id=new.parent_node_id,
            use_cache=new.use_cache,
            depth=depth,
            parent_attempt=new.parent_attempt,
            use_pinned=new.use_pinned,
        )
        counts = prepared.plan.unfinished_parents()
        for node_id in prepared.plan.order:
            pending = counts[node_id]
            run.rows[node_id] = NodeSlot(
                row_id=f"nex_{next(self._seq):012d}",
                node_id=node_id,
                status=NodeStatus.READY if pending == 0 else NodeStatus.PENDING,
                attempt=1,
                pending=pending,
            )
        if new.breakpoints is not None:
            run.debug = DebugState(
                session_id=new_id("dbg"),
                breakpoints=frozenset(new.breakpoints),
                mode="continue",
                paused_node_id=None,
            )
        self._runs[run.id] = run
        if new.idempotency_key is not None:
            self._keys[(new.owner_id, new.idempotency_key)] = run.id
        return run.id

    async def load_run(self, run_id: str, plans: PlanSource) -> StoredRun:
        run = self._run(run_id)
        definition = self._workflows[run.workflow_id].versions[run.version]
        pinned = run.use_pinned
        prepared = plans.cached(
            run.workflow_id, run.version, run.scope, run.target_node_id, use_pinned=pinned
        )
        if prepared is None:
            prepared = plans.prepare(
                run.workflow_id,
                run.version,
                definition,
                run.scope,
                run.target_node_id,
                use_pinned=pinned,
            )
        outside = {
            parent: prepared.pins[parent]
            if parent in prepared.pins
            else self._latest_success(run.workflow_id, parent)
            for parents in prepared.plan.outside_parents.values()
            for parent in parents
        }
        return StoredRun.of(
            run,
            owner_id=run.owner_id,
            prepared=prepared,
            slots={node_id: _copy_slot(slot) for node_id, slot in run.rows.items()},
            run_inputs=copy.deepcopy(run.inputs),
            outside_outputs=outside,
            debug=None if run.debug is None else replace(run.debug),
        )

    async def outcome(self, run_id: str) -> RunResult:
        run = self._run(run_id)
        return RunResult(
            run_id=run.id,
            status=run.status,
            outputs=copy.deepcopy(run.outputs),
            error=copy.deepcopy(run.error),
            duration_ms=run.duration_ms,
        )

    async def unfinished_runs(self) -> list[UnfinishedRun]:
        found = []
        for run in self._runs.values():
            if run.status not in ACTIVE_RUN_STATUSES:
                continue
            nodes = [
                UnfinishedNode(
                    slot.status.value, slot.lease_owner, slot.lease_expires_at, slot.wait
                )
                for slot in run.rows.values()
                if slot.status in (NodeStatus.RUNNING, NodeStatus.WAITING)
            ]
            found.append(UnfinishedRun(run.id, run.status, nodes))
        return found

    # ---- the scheduler's tick

    async def commit(self, tick: Tick) -> bool:
        run = self._run(tick.run_id)
        by_row = {slot.row_id: slot for slot in run.rows.values()}
        if not tick.fenced.issubset(slot.row_id for slot in tick.slots):
            raise ValueError("every fenced row must be among the tick's rows")
        for row_id in tick.fenced:
            held = by_row.get(row_id)
            if held is None or held.status is not NodeStatus.RUNNING:
                return False
            if held.lease_owner != tick.owner:
                return False
        for slot in tick.slots:
            if slot.row_id not in by_row:
                return False
        for slot in tick.slots:
            run.rows[slot.node_id] = _copy_slot(slot)
            if slot.status is NodeStatus.SUCCEEDED and slot.cache_signature is not None:
                self._cache[slot.cache_signature] = (slot.row_id, copy.deepcopy(slot.outputs or {}))
        if tick.run_values and run.status not in FINISHED_RUN_STATUSES:
            for name, value in tick.run_values.items():
                if name == "status":
                    value = RunStatus(value)
                setattr(run, name, copy.deepcopy(value))
        if tick.debug is not None:
            run.debug = replace(tick.debug)
            run.debug_status = tick.debug_status
        return True

    async def find_cached(
        self, signatures: Iterable[str], *, near: bool = False
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        # ``near`` asks for nothing more here: every look-up is a dictionary's.
        found = {}
        for signature in set(signatures):
            hit = self._cache.get(signature)
            if hit is not None:
                found[signature] = (hit[0], copy.deepcopy(hit[1]))
        return found

    async def fail_run(
        self,
        *,
        run_id: str,
        error: dict[str, Any],
        now: datetime,
        started_at: datetime | None = None,
        culprits: Collection[str] = (),
    ) -> bool:
        run = self._run(run_id)
        for slot in run.rows.values():
            if slot.status not in _UNFINISHED_NODES:
                continue
            if slot.row_id in culprits:
                slot.status, slot.error = NodeStatus.FAILED, copy.deepcopy(error)
            else:
                slot.status = NodeStatus.CANCELLED
            slot.finished_at, slot.lease_owner, slot.lease_expires_at = now, None, None
        if run.debug is not None:
            run.debug = replace(run.debug, paused_node_id=None)
            run.debug_status = "finished"
        if run.status in FINISHED_RUN_STATUSES:
            return False
        run.status, run.error, run.finished_at = RunStatus.FAILED, copy.deepcopy(error), now
        if started_at is not None:
            run.duration_ms = max(0, round((now - started_at).total_seconds() * 1000))
        return True

    # ---- leases

    async def renew_lease(self, *, row_id: str, attempt: int, owner: str, until: datetime) -> bool:
        for run in self._runs.values():
            for slot in run.rows.values():
                if slot.row_id == row_id:
                    if (
                        slot.attempt == attempt
                        and slot.lease_owner == owner
                        and slot.status is NodeStatus.RUNNING
                    ):
                        slot.lease_expires_at = until
                        return True
                    return False
        return False

    async def expire_leases(self, *, owner: str, now: datetime) -> None:
        for run in self._runs.values():
            for slot in run.rows.values():
                if slot.status is NodeStatus.RUNNING and slot.lease_owner == owner:
                    slot.lease_expires_at = now

    # ---- sub-runs

    async def workflow_named(self, *, owner_id: str, name: str) -> str | None:
        for workflow_id, workflow in self._workflows.items():
            if workflow.owner_id == owner_id and workflow.name == name:
                return workflow_id
        return None

    async def active_children(self, *, run_id: str, node_id: str) -> list[tuple[str, Any]]:
        return [
            (run.id, run.parent_attempt)
            for run in self._runs.values()
            if run.parent_run_id == run_id
            and run.parent_node_id == node_id
            and run.status in ACTIVE_RUN_STATUSES
        ]

    # ---- what nodes reach

    async def record_artifacts(
        self,
        *,
        owner_id: str,
        run_id: str,
        node_execution_id: str,
        references: Mapping[str, Mapping[str, Any]],
        stored: Collection[str],
    ) -> int:
        mine = self._artifacts.setdefault(owner_id, set())
        owned = set(stored) | {sha256 for sha256, _ in mine}
        added = 0
        for sha256 in references:
            if sha256 in owned and (sha256, node_execution_id) not in mine:
                mine.add((sha256, node_execution_id))
                added += 1
        return added

    async def owns_blob(self, *, owner_id: str, sha256: str) -> bool:
        return any(found == sha256 for found, _ in self._artifacts.get(owner_id, ()))

    def memory(self, *, owner_id: str, workflow_id: str) -> MemoryStore:
        return self._memories.setdefault((owner_id, workflow_id), InMemoryMemoryStore())

    def usage(self, *, owner_id: str, api_key_id: str | None, run_id: str) -> UsageSink | None:
        return None

    # ---- inside

    def _run(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound("run", run_id)
        return run

    def _owned_run(self, run_id: str, owner_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None or run.owner_id != owner_id:
            raise NotFound("run", run_id)
        return run

    def _latest_success(self, workflow_id: str, node_id: str) -> dict[str, Any] | None:
        for run in reversed(self._runs.values()):
            slot = run.rows.get(node_id)
            if (
                run.workflow_id == workflow_id
                and slot is not None
                and slot.status in (NodeStatus.SUCCEEDED, NodeStatus.CACHED)
            ):
                return copy.deepcopy(slot.outputs)
        return None


def _copy_slot(slot: NodeSlot) -> NodeSlot:
    return copy.deepcopy(replace(slot, config=None))
