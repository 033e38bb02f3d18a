"""The in-memory state of one run: a cache of its node rows, and the rules that move them.

Nothing here touches the database. The scheduler loads a :class:`RunState` from the rows,
applies what happened in a tick (nodes finished, answers arrived), lets the rules below decide
what follows (children released, branches skipped, the run's new status), then writes the
``dirty`` rows and publishes ``events`` after the commit. Because every decision is derived
from the rows, a state rebuilt after a crash decides exactly as the lost one would have: an
edge delivered iff its source SUCCEEDED or was CACHED and emitted its ``sourceHandle``.

A tick costs what changed in it, not the size of the run: slots are indexed by status (every
status change goes through ``RunState``), so finding the ready nodes, the timers and the run's
status never walks every node.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flowloom.engine.events import Event
from flowloom.engine.retry import RetryPolicy
from flowloom.graph.definition import EdgeDefinition, NodeDefinition
from flowloom.graph.plan import Plan
from flowloom.graph.ports import Port
from flowloom.nodes.base import Node
from flowloom.storage.enums import NodeStatus, RunStatus

__all__ = [
    "DONE",
    "FINISHED",
    "DebugState",
    "NodeSlot",
    "NodeSpec",
    "RunState",
]

DONE = frozenset({NodeStatus.SUCCEEDED, NodeStatus.CACHED})
"""Statuses whose outputs feed children."""
FINISHED = frozenset(
    {
        NodeStatus.SUCCEEDED,
        NodeStatus.CACHED,
        NodeStatus.SKIPPED,
        NodeStatus.FAILED,
        NodeStatus.CANCELLED,
    }
)
"""Statuses a node never leaves."""
_NOT_DELIVERED = object()


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What never changes about a node during a run: its definition, type, config and ports."""

    definition: NodeDefinition
    node: Node[Any]
    config: Any
    inputs: tuple[Port, ...]
    outputs: frozenset[str]
    retry: RetryPolicy
    timeout_s: float | None
    deterministic: bool
    templated: frozenset[str] = frozenset()
    """Config fields holding templates, rendered over the inputs at each claim."""
    pure: bool = False
    """Deterministic with no effect beyond its outputs (``Node.pure``): it may start before
    what it is fed is committed (the driver then batches the commits of several ticks)."""


@dataclass(slots=True)
class NodeSlot:
    """One node execution row, as the scheduler keeps it between commits."""

    row_id: str
    node_id: str
    status: NodeStatus
    attempt: int
    pending: int
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempts: list[Any] = field(default_factory=list)
    inputs: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    retry_at: datetime | None = None
    wait: dict[str, Any] | None = None
    cache_signature: str | None = None
    cached_from_id: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    config: Any = None
    """The parsed config rendered for this attempt (templated nodes only; never stored)."""

    @property
    def answer(self) -> dict[str, Any] | None:
        """The answer to the node's own wait, for its next run (never a debugger's step)."""
        wait = self.wait
        if wait is None or wait.get("kind") == "breakpoint":
            return None
        answer = wait.get("answer")
        return answer if isinstance(answer, dict) else None

    @property
    def breakpoint_passed(self) -> bool:
        return bool(self.wait and self.wait.get("breakpoint_passed"))


@dataclass(slots=True)
class DebugState:
    """A debug run's session: where it pauses, and whether it steps node by node."""

    session_id: str
    breakpoints: frozenset[str]
    mode: str
    paused_node_id: str | None = None
    dirty: bool = False

    def pauses_before(self, node_id: str) -> bool:
        return self.mode == "step" or node_id in self.breakpoints


class RunState:
    """One run's nodes and the rules that move them; see the module docstring."""

    def __init__(
        self,
        *,
        run_id: str,
        workflow_id: str,
        owner_id: str,
        status: RunStatus,
        plan: Plan,
        specs: Mapping[str, NodeSpec],
        slots: dict[str, NodeSlot],
        run_inputs: dict[str, Any],
        outside_outputs: Mapping[str, dict[str, Any] | None] | None = None,
        debug: DebugState | None = None,
        started_at: datetime | None = None,
        timeout_s: float | None = None,
        api_key_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.api_key_id = api_key_id
        self.cancel_requested = False
        """Loaded with a cancellation asked for in the store: the driver applies it first."""
        """The API key that started the run, to attribute its usage to."""
        self.workflow_id = workflow_id
        self.owner_id = owner_id
        self.status = status
        self.plan = plan
        self.specs = specs
        self.slots = slots
        self.run_inputs = run_inputs
        self.outside_outputs = dict(outside_outputs or {})
        self.debug = debug
        self.started_at = started_at
        self.timeout_s = timeout_s
        self.dirty: set[str] = set()
        self.events: list[Event] = []
        self._rank = {node_id: rank for rank, node_id in enumerate(slots)}
        self._by_status: dict[NodeStatus, set[str]] = {status: set() for status in NodeStatus}
        for node_id, slot in slots.items():
            self._by_status[slot.status].add(node_id)
        self.failure: dict[str, Any] | None = None
        """Set when a node failed for good: the run fails with this error."""

    # ---- reading

    def edge_value(self, edge: EdgeDefinition) -> Any:
        """The value an edge delivers, or ``_NOT_DELIVERED``."""
        source = self.slots.get(edge.source)
        if source is None:
            outputs = self.outside_outputs.get(edge.source)
        elif source.status in DONE:
            outputs = source.outputs
        else:
            return _NOT_DELIVERED
        if outputs is None or edge.source_handle not in outputs:
            return _NOT_DELIVERED
        return outputs[edge.source_handle]

    def assemble_inputs(self, node_id: str) -> tuple[dict[str, Any], str | None]:
        """The node's input values, or an error naming the port that has none.

        Per port: the values of delivered edges (a list port joins them in edge order), else
        for a NODE run the request input of that name, else the config literal of that name,
        else the port default.
        """
        spec = self.specs[node_id]
        wired: dict[str, list[Any]] = {}
        for edge in self.plan.incoming[node_id]:
            value = self.edge_value(edge)
            if value is not _NOT_DELIVERED:
                wired.setdefault(edge.target_handle, []).append(value)
        raw = spec.definition.data.config
        node_run = self.plan.target == node_id and self.plan.scope.value == "NODE"
        inputs: dict[str, Any] = {}
        for port in spec.inputs:
            values = wired.get(port.name)
            if values is not None:
                inputs[port.name] = values if port.is_list else values[0]
            elif node_run and port.name in self.run_inputs:
                inputs[port.name] = self.run_inputs[port.name]
            elif raw.get(port.name) is not None:
                inputs[port.name] = raw[port.name]
            elif port.has_default:
                inputs[port.name] = port.default
            elif port.required:
                return {}, self._missing_input_message(node_id, port, node_run)
        return inputs, None

    def _missing_input_message(self, node_id: str, port: Port, node_run: bool) -> str:
        feeding = [e for e in self.plan.incoming[node_id] if e.target_handle == port.name]
        if node_run and feeding:
            parents = ", ".join(repr(e.source) for e in feeding)
            return (
                f"required input {port.name!r} has no value: {parents} never succeeded in an "
                f"earlier run and the request gives no {port.name!r}"
            )
        if feeding:
            return (
                f"required input {port.name!r} got no value: the branch feeding it was not "
                "taken and it has no literal or default"
            )
        return f"required input {port.name!r} has no value"

    def nodes_in(self, status: NodeStatus) -> list[str]:
        """The nodes now in ``status``, in plan order."""
        return sorted(self._by_status[status], key=self._rank.__getitem__)

    def claimable(self, now: datetime) -> list[str]:
        """READY nodes not backing off, in plan order."""
        slots = self.slots
        found = [
            node_id
            for node_id in self._by_status[NodeStatus.READY]
            if (retry_at := slots[node_id].retry_at) is None or retry_at <= now
        ]
        found.sort(key=self._rank.__getitem__)
        return found

    def next_timer(self) -> datetime | None:
        """The earliest moment something becomes due: a retry, a timed wait, the run deadline."""
        moments: list[datetime] = []
        for node_id in self._by_status[NodeStatus.READY]:
            retry_at = self.slots[node_id].retry_at
            if retry_at is not None:
                moments.append(retry_at)
        for node_id in self._by_status[NodeStatus.WAITING]:
            resume_at = resume_time(self.slots[node_id])
            if resume_at is not None:
                moments.append(resume_at)
        deadline = self.deadline()
        if deadline is not None:
            moments.append(deadline)
        return min(moments, default=None)

    def deadline(self) -> datetime | None:
        if self.timeout_s is None or self.started_at is None:
            return None
        return self.started_at + timedelta(seconds=self.timeout_s)

    def counts(self) -> dict[NodeStatus, int]:
        return {status: len(nodes) for status, nodes in self._by_status.items() if nodes}

    def sink_outputs(self) -> dict[str, Any]:
        """The outputs of the nodes with no children in the run, by node id."""
        return {
            node_id: slot.outputs or {}
            for node_id, slot in self.slots.items()
            if slot.status in DONE and not self.plan.children[node_id]
        }

    # ---- moving

    def touch(self, slot: NodeSlot) -> None:
        self.dirty.add(slot.node_id)

    def _move(self, slot: NodeSlot, status: NodeStatus) -> None:
        """Change the slot's status, keeping the index by status right."""
        self._by_status[slot.status].discard(slot.node_id)
        slot.status = status
        self._by_status[status].add(slot.node_id)

    def emit(self, type_: str, node_id: str | None, at: datetime, **data: Any) -> None:
        self.events.append(Event(type_, self.run_id, node_id, at, data))

    def record_attempt(
        self, slot: NodeSlot, status: str, now: datetime, error: dict[str, Any] | None = None
    ) -> None:
        started = slot.started_at
        slot.attempts = [
            *slot.attempts,
            {
                "attempt": slot.attempt,
                "status": status,
                "started_at": None if started is None else started.isoformat(),
                "finished_at": now.isoformat(),
                "duration_ms": _ms(started, now),
                "error": error,
            },
        ]

    def claim(self, slot: NodeSlot, *, owner: str, lease_until: datetime, now: datetime) -> None:
        self._move(slot, NodeStatus.RUNNING)
        slot.lease_owner = owner
        slot.lease_expires_at = lease_until
        slot.started_at = now
        slot.finished_at = None
        slot.duration_ms = None
        slot.retry_at = None
        self.touch(slot)
        self.emit("node.started", slot.node_id, now, attempt=slot.attempt)

    def withdraw_starts(self, node_ids: Collection[str]) -> None:
        """Drop the ``node.started`` events of ``node_ids`` not yet published (claims whose
        commit found them in the cache: they never start; ``serve_claimed``)."""
        self.events = [
            e for e in self.events if not (e.type == "node.started" and e.node_id in node_ids)
        ]

    def serve_claimed(
        self,
        slot: NodeSlot,
        now: datetime,
        *,
        outputs: dict[str, Any] | None,
        cached_from_id: str,
    ) -> None:
        """Serve a node from the cache that a committed claim left RUNNING without starting it
        (its commit carried its cache probe, which hit): finished CACHED as if served at its
        claim, no attempt recorded, its children released; its times are this moment's,
        as for a node served before its claim (no time spent)."""
        self._move(slot, NodeStatus.READY)
        slot.started_at = now
        self.finish(slot, NodeStatus.CACHED, now, outputs=outputs, cached_from_id=cached_from_id)

    def finish(
        self,
        slot: NodeSlot,
        status: NodeStatus,
        now: datetime,
        *,
        outputs: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        cached_from_id: str | None = None,
    ) -> None:
        """End the node for good with ``status`` and release (or skip) its children."""
        if slot.status is NodeStatus.RUNNING:
            self.record_attempt(slot, status.value, now, error)
        self._move(slot, status)
        slot.outputs = outputs
        slot.error = error
        slot.cached_from_id = cached_from_id
        slot.finished_at = now
        slot.duration_ms = _ms(slot.started_at, now)
        slot.lease_owner = None
        slot.lease_expires_at = None
        slot.retry_at = None
        self.touch(slot)
        event = f"node.{status.value.lower()}"
        if status is NodeStatus.SUCCEEDED or status is NodeStatus.FAILED:
            self.emit(
                event,
                slot.node_id,
                now,
                attempt=slot.attempt,
                duration_ms=slot.duration_ms,
                node_type=self.specs[slot.node_id].definition.type,
                **({"error": error} if status is NodeStatus.FAILED else {}),
            )
        elif status is NodeStatus.CACHED:
            self.emit(event, slot.node_id, now, cached_from_id=cached_from_id)
        else:
            self.emit(event, slot.node_id, now)
        if status is NodeStatus.FAILED:
            self.failure = {"node_id": slot.node_id, **(error or {})}
            return
        if status in DONE or status is NodeStatus.SKIPPED:
            self._release_children(slot.node_id, now)

    def _release_children(self, node_id: str, now: datetime) -> None:
        # Iterative, so that skipping a long chain does not recurse once per node.
        stack = [node_id]
        while stack:
            for child_id in self.plan.children[stack.pop()]:
                child = self.slots[child_id]
                if child.status is not NodeStatus.PENDING:
                    continue
                child.pending -= 1
                self.touch(child)
                if child.pending > 0:
                    continue
                if self._fed_by_nothing(child_id):
                    self._move(child, NodeStatus.SKIPPED)
                    child.finished_at = now
                    self.emit("node.skipped", child_id, now)
                    stack.append(child_id)
                else:
                    self._move(child, NodeStatus.READY)

    def _fed_by_nothing(self, node_id: str) -> bool:
        inside = [e for e in self.plan.incoming[node_id] if e.source in self.slots]
        return bool(inside) and all(self.edge_value(e) is _NOT_DELIVERED for e in inside)

    def retry_later(
        self, slot: NodeSlot, now: datetime, *, retry_at: datetime, error: dict[str, Any]
    ) -> None:
        self.record_attempt(slot, "RETRYING", now, error)
        delay_s = max(0.0, (retry_at - now).total_seconds())
        self.emit(
            "node.retrying",
            slot.node_id,
            now,
            attempt=slot.attempt,
            retry_in_s=delay_s,
            error=error,
        )
        self._move(slot, NodeStatus.READY)
        slot.attempt += 1
        slot.retry_at = retry_at
        slot.error = error
        slot.lease_owner = None
        slot.lease_expires_at = None
        self.touch(slot)

    def park(self, slot: NodeSlot, now: datetime, wait: dict[str, Any]) -> None:
        """Park the node as WAITING: its slot is freed until an answer or its timer comes."""
        if slot.status is NodeStatus.RUNNING:
            self.record_attempt(slot, "WAITING", now)
        wait = {**wait, "breakpoint_passed": slot.breakpoint_passed}
        self._move(slot, NodeStatus.WAITING)
        slot.wait = wait
        slot.lease_owner = None
        slot.lease_expires_at = None
        self.touch(slot)
        self.emit(
            "node.waiting",
            slot.node_id,
            now,
            kind=wait.get("kind"),
            reason=wait.get("reason"),
            payload=wait.get("payload"),
        )

    def answer(self, slot: NodeSlot, answer: dict[str, Any], now: datetime) -> None:
        """A WAITING node becomes READY, carrying ``answer`` to its next run."""
        wait = dict(slot.wait or {})
        wait["answer"] = answer
        wait["answered_at"] = now.isoformat()
        if wait.get("kind") == "breakpoint":
            wait["breakpoint_passed"] = True
        slot.wait = wait
        self._move(slot, NodeStatus.READY)
        slot.retry_at = None
        self.touch(slot)

    def interrupt(self, slot: NodeSlot, now: datetime) -> None:
        """A node found RUNNING with no live worker runs again as attempt + 1 (at-least-once)."""
        self.record_attempt(
            slot, "INTERRUPTED", now, {"message": "the engine stopped while this attempt ran"}
        )
        self._move(slot, NodeStatus.READY)
        slot.attempt += 1
        slot.lease_owner = None
        slot.lease_expires_at = None
        slot.retry_at = None
        self.touch(slot)

    def cancel_unfinished(self, now: datetime) -> None:
        unfinished = [
            node_id
            for status, nodes in self._by_status.items()
            if status not in FINISHED
            for node_id in nodes
        ]
        unfinished.sort(key=self._rank.__getitem__)
        for node_id in unfinished:
            slot = self.slots[node_id]
            if slot.status is NodeStatus.RUNNING:
                self.record_attempt(slot, "CANCELLED", now)
            self._move(slot, NodeStatus.CANCELLED)
            slot.finished_at = now
            slot.duration_ms = _ms(slot.started_at, now) if slot.started_at else None
            slot.lease_owner = None
            slot.lease_expires_at = None
            self.touch(slot)
            self.emit("node.cancelled", slot.node_id, now)

    def settle_status(self) -> RunStatus:
        """What the run is once a tick's changes are applied (failure and cancellation apart)."""
        by_status = self._by_status
        if by_status[NodeStatus.RUNNING] or by_status[NodeStatus.READY]:
            return RunStatus.RUNNING
        if by_status[NodeStatus.WAITING] or by_status[NodeStatus.PENDING]:
            return RunStatus.WAITING
        return RunStatus.COMPLETED

    def dirty_slots(self) -> Iterable[NodeSlot]:
        return (self.slots[node_id] for node_id in self.dirty)


def resume_time(slot: NodeSlot) -> datetime | None:
    """When a timed wait answers itself, or None for a wait that needs somebody."""
    wait = slot.wait
    if not wait or "answer" in wait:
        return None
    raw = wait.get("resume_at")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def _ms(start: datetime | None, end: datetime) -> int | None:
    if start is None:
        return None
    return max(0, round((end - start).total_seconds() * 1000))
