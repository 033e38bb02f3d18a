"""The driver of one active run: one asyncio task that ticks until the run ends or waits.

A tick takes everything that happened since the last one (nodes that finished, answers, a
cancellation, timers that came due), applies it to the run's in-memory state, and commits the
result in ONE write transaction (group commit): the finished nodes' outcomes, fenced by their
leases; the children they released or skipped; the next ready nodes, claimed (or served from
the cache); the run's status. Only after that commit are events published and the claimed nodes
dispatched, each as its own asyncio task, so a child never starts on a result that could still
be rolled back.

When nothing runs and nothing is ready but something waits, the run is WAITING and the driver
ends: waits are rows, not tasks. An answer, a due timer or a cancellation starts a new driver,
which rebuilds the state from the rows.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowloom.engine.artifacts import record_artifacts
from flowloom.engine.context import MemoryAdapter
from flowloom.engine.run_state import NodeSlot, NodeSpec, RunState, resume_time
from flowloom.engine.signature import signature
from flowloom.engine.store import Tick, TickStore
from flowloom.engine.subruns import EngineSubRuns
from flowloom.engine.templating import TemplateFailed, render_config
from flowloom.exceptions import Conflict, NodeFailed, NotFound, RetryNode, StorageError
from flowloom.integrations.usage import DatabaseUsageSink
from flowloom.nodes.base import RunContext, WaitForInput, idempotency_key
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.storage.tables.base import utcnow

if TYPE_CHECKING:
    from flowloom.engine.scheduler import Engine

__all__ = ["Driver", "Message"]

_log = logging.getLogger("flowloom.engine")


@dataclass(slots=True)
class Message:
    """Something for the driver to apply in its next tick; ``future`` settles after the commit."""

    kind: str
    """``answer`` or ``cancel``."""
    future: asyncio.Future[None]
    node_id: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Outcome:
    node_id: str
    attempt: int
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    wait: WaitForInput | None = None


class LeaseLost(StorageError):
    """A node this driver ran was claimed by someone else meanwhile; the driver stops."""


class Driver:
    """Drives one run; created and registered by the Engine, never shared between runs."""

    def __init__(self, engine: Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id
        self.state: RunState | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self._inbox: list[Message] = []
        self._done: list[asyncio.Task[_Outcome]] = []
        self._tasks: dict[str, asyncio.Task[_Outcome]] = {}
        self._wake = asyncio.Event()
        self._memory: MemoryAdapter | None = None
        self._usage: DatabaseUsageSink | None = None
        self._use_cache = True
        self._reclaim = False
        """A place under a per-owner or per-key limit came free: claim again next tick."""
        self._store = TickStore(engine.db)

    def post(self, message: Message) -> None:
        self._inbox.append(message)
        self._wake.set()

    def wake_to_claim(self) -> None:
        """A limit that kept one of this run's READY nodes waiting has room now."""
        self._reclaim = True
        self._wake.set()

    def _on_done(self, task: asyncio.Task[_Outcome]) -> None:
        if task.cancelled():
            return
        self._done.append(task)
        self._wake.set()

    # ---- the loop

    async def run(self) -> None:
        try:
            await self._drive()
        except BaseException as exc:
            await self._cancel_tasks()
            for message in self._inbox:
                if not message.future.done():
                    message.future.set_exception(
                        exc if isinstance(exc, Exception) else StorageError("engine stopped")
                    )
            if isinstance(exc, Exception) and not isinstance(exc, NotFound):
                _log.exception("driver of run %s stopped", self.run_id)
            raise
        finally:
            self.engine._driver_ended(self)

    async def _drive(self) -> None:
        loaded = await self.engine._load_state(self.run_id)
        self.state, self._use_cache = loaded
        state = self.state
        if state.status in FINISHED_RUN_STATUSES:
            self._refuse_messages(state.status)
            return
        self._memory = MemoryAdapter(
            self.engine.db, owner_id=state.owner_id, workflow_id=state.workflow_id
        )
        self._usage = DatabaseUsageSink(
            self.engine.db,
            owner_id=state.owner_id,
            api_key_id=state.api_key_id,
            run_id=self.run_id,
        )
        first = True
        while True:
            now = utcnow()
            if not (first or self._done or self._inbox or self._reclaim or self._due(now)):
                await self._sleep()
                continue
            self._reclaim = False
            finished, self._done = self._done, []
            messages, self._inbox = self._inbox, []
            claimed = await self._tick(first, finished, messages, now)
            first = False
            self.engine.bus.publish(state.events)
            state.events = []
            for message in messages:
                if not message.future.done():
                    message.future.set_result(None)
            if claimed:
                self.engine.failpoints.reach("after_commit_before_release")
                self._dispatch(claimed)
            if state.status is not RunStatus.RUNNING and not self._inbox and not self._done:
                return

    def _due(self, now: datetime) -> bool:
        assert self.state is not None
        timer = self.state.next_timer()
        return timer is not None and timer <= now

    async def _sleep(self) -> None:
        assert self.state is not None
        self._wake.clear()
        timer = self.state.next_timer()
        if timer is None:
            await self._wake.wait()
            return
        delay_s = (timer - utcnow()).total_seconds()
        if delay_s <= 0:
            return
        try:
            async with asyncio.timeout(delay_s):
                await self._wake.wait()
        except TimeoutError:
            pass

    # ---- one tick

    async def _tick(
        self,
        first: bool,
        finished: list[asyncio.Task[_Outcome]],
        messages: list[Message],
        now: datetime,
    ) -> list[str]:
        state = self.state
        assert state is not None
        engine = self.engine
        run_values: dict[str, Any] = {}
        previous = state.status
        if first:
            for node_id in state.nodes_in(NodeStatus.RUNNING):
                state.interrupt(state.slots[node_id], now)
            if state.status is RunStatus.PENDING:
                state.status = RunStatus.RUNNING
                state.started_at = now
                run_values.update(status=RunStatus.RUNNING.value, started_at=now)
                state.emit("run.started", None, now)

        fenced: set[str] = set()
        for task in finished:
            outcome = task.result()
            self._tasks.pop(outcome.node_id, None)
            slot = state.slots[outcome.node_id]
            if slot.status is NodeStatus.RUNNING and slot.attempt == outcome.attempt:
                fenced.add(slot.row_id)
                self._apply(outcome, slot, now)
        if finished:
            engine.failpoints.reach("after_effect_before_commit")

        abort: str | None = None
        for message in messages:
            if message.kind == "cancel":
                abort = "cancel"
            else:
                self._answer(message, now)
        for node_id in state.nodes_in(NodeStatus.WAITING):
            slot = state.slots[node_id]
            resume_at = resume_time(slot)
            if resume_at is not None and resume_at <= now:
                state.answer(slot, {"resumed_at": now.isoformat()}, now)
        deadline = state.deadline()
        if abort is None and deadline is not None and now >= deadline:
            abort = "timeout"

        claimed: list[str] = []
        if abort is not None or state.failure is not None:
            fenced.update(await self._stop_running(now))
        if abort is None and state.failure is None:
            claimed = await self._claim(now)
            if state.failure is not None:
                fenced.update(await self._stop_running(now))
                claimed = []
        run_values.update(self._settle(abort, previous, now))
        # Everything decided above is committed at once (the fence is checked in the same
        # transaction); nothing is published or dispatched before the commit returns.
        debug = state.debug
        finished_run = state.status in FINISHED_RUN_STATUSES
        write_debug = debug is not None and (debug.dirty or finished_run)
        tick = Tick(
            run_id=self.run_id,
            owner=engine.owner_token,
            now=now,
            slots=list(state.dirty_slots()),
            fenced=fenced,
            run_values=run_values,
            debug=debug if write_debug else None,
            debug_status="finished" if finished_run else "active",
        )
        state.dirty.clear()
        if not await self._store.commit(tick):
            raise LeaseLost(f"run {self.run_id}: a node was claimed by another worker")
        if write_debug and debug is not None:
            debug.dirty = False
        return claimed

    def _apply(self, outcome: _Outcome, slot: NodeSlot, now: datetime) -> None:
        state = self.state
        assert state is not None
        spec = state.specs[slot.node_id]
        if outcome.wait is not None:
            wait = outcome.wait
            parked: dict[str, Any] = {
                "kind": wait.kind,
                "reason": wait.reason,
                "payload": wait.payload,
            }
            if wait.resume_after_s is not None:
                parked["resume_at"] = (now + timedelta(seconds=wait.resume_after_s)).isoformat()
            state.park(slot, now, parked)
        elif outcome.error is None:
            state.finish(slot, NodeStatus.SUCCEEDED, now, outputs=outcome.outputs)
        elif outcome.retryable and slot.attempt < spec.retry.max_attempts:
            requested = outcome.retry_after_s if outcome.retry_after_s else None
            delay_s = spec.retry.delay_s(slot.attempt, requested_s=requested)
            state.retry_later(
                slot, now, retry_at=now + timedelta(seconds=delay_s), error=outcome.error
            )
        else:
            state.finish(slot, NodeStatus.FAILED, now, error=outcome.error)

    def _answer(self, message: Message, now: datetime) -> None:
        state = self.state
        assert state is not None
        assert message.node_id is not None
        slot = state.slots.get(message.node_id)
        if slot is None:
            message.future.set_exception(
                NotFound("node execution", f"{self.run_id}/{message.node_id}")
            )
            return
        if slot.status is not NodeStatus.WAITING:
            message.future.set_exception(
                Conflict(f"node {message.node_id!r} is {slot.status}, not WAITING")
            )
            return
        debug = state.debug
        if slot.wait is not None and slot.wait.get("kind") == "breakpoint":
            action = message.answer.get("action", "continue")
            if action not in ("step", "continue") or debug is None:
                message.future.set_exception(
                    Conflict("a breakpoint is answered with action 'step' or 'continue'")
                )
                return
            debug.mode = action
            debug.paused_node_id = None
            debug.dirty = True
        state.answer(slot, dict(message.answer), now)

    async def _claim(self, now: datetime) -> list[str]:
        """Claim every ready node: park it at a breakpoint, fail it for a missing input,
        serve it from the cache, or mark it RUNNING under this engine's lease."""
        state = self.state
        assert state is not None
        engine = self.engine
        lease_until = now + timedelta(seconds=engine.lease_s)
        debug = state.debug
        claimed: list[str] = []
        # Nodes a per-owner or per-key limit refused this tick: they stay READY, unclaimed.
        deferred: set[str] = set()
        while True:
            batch = state.claimable(now)
            if deferred:
                batch = [node_id for node_id in batch if node_id not in deferred]
            if not batch:
                return claimed
            candidates: list[NodeSlot] = []
            signatures: list[str] = []
            for node_id in batch:
                slot = state.slots[node_id]
                if (
                    debug is not None
                    and not slot.breakpoint_passed
                    and debug.pauses_before(node_id)
                ):
                    debug.paused_node_id = node_id
                    debug.dirty = True
                    state.park(
                        slot,
                        now,
                        {
                            "kind": "breakpoint",
                            "reason": f"paused before {node_id!r}",
                            "payload": {"mode": debug.mode},
                        },
                    )
                    continue
                spec = state.specs[node_id]
                inputs, problem = state.assemble_inputs(node_id)
                if problem is not None:
                    state.finish(slot, NodeStatus.FAILED, now, error={"message": problem})
                    return []
                slot.inputs = inputs
                slot.cache_signature = None
                raw_config = spec.definition.data.config
                if spec.templated:
                    try:
                        raw_config, slot.config = render_config(
                            spec.node, raw_config, spec.templated, inputs
                        )
                    except TemplateFailed as exc:
                        error = {"message": str(exc), "type": "TemplateError"}
                        state.finish(slot, NodeStatus.FAILED, now, error=error)
                        return []
                if self._use_cache and spec.deterministic:
                    slot.cache_signature = signature(
                        owner_id=state.owner_id,
                        node_type=spec.definition.type,
                        version=spec.node.version,
                        config=raw_config,
                        inputs=inputs,
                    )
                    if slot.cache_signature is not None:
                        signatures.append(slot.cache_signature)
                candidates.append(slot)
            hits = await self._store.find_cached(signatures) if signatures else {}
            for slot in candidates:
                hit = hits.get(slot.cache_signature) if slot.cache_signature else None
                if hit is not None:
                    slot.started_at = now
                    state.finish(
                        slot, NodeStatus.CACHED, now, outputs=hit[1], cached_from_id=hit[0]
                    )
                elif not self._take_place(slot):
                    deferred.add(slot.node_id)
                else:
                    state.claim(slot, owner=engine.owner_token, lease_until=lease_until, now=now)
                    claimed.append(slot.node_id)

    def _take_place(self, slot: NodeSlot) -> bool:
        """Whether the per-owner and per-key limits let ``slot`` run now (counting it if so)."""
        engine = self.engine
        if not engine.limits.active:
            return True
        state = self.state
        assert state is not None
        spec = state.specs[slot.node_id]
        key = spec.node.concurrency_key(spec.config if slot.config is None else slot.config)
        return engine._take_place(self, slot.node_id, owner=state.owner_id, key=key)

    async def _stop_running(self, now: datetime) -> list[str]:
        """Cancel the node tasks in flight; the row ids they held (to fence and overwrite)."""
        state = self.state
        assert state is not None
        held = [state.slots[node_id].row_id for node_id in self._tasks]
        await self._cancel_tasks()
        self._done = []
        return held

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _settle(self, abort: str | None, previous: RunStatus, now: datetime) -> dict[str, Any]:
        """The run's new status after the tick, as column values (empty when unchanged)."""
        state = self.state
        assert state is not None
        values: dict[str, Any] = {}
        if abort == "cancel":
            state.cancel_unfinished(now)
            status = RunStatus.CANCELLED
            values["cancel_requested"] = True
        elif abort == "timeout" or state.failure is not None:
            state.cancel_unfinished(now)
            status = RunStatus.FAILED
            if abort == "timeout":
                values["error"] = {"message": f"run timed out after {state.timeout_s:g} s"}
            else:
                failure = state.failure or {}
                node_id = failure.get("node_id")
                values["error"] = {
                    "node_id": node_id,
                    "message": f"node {node_id!r} failed: {failure.get('message')}",
                    "type": failure.get("type"),
                }
        else:
            status = state.settle_status()
        if status is state.status and status is previous:
            return values
        state.status = status
        values["status"] = status.value
        if status is RunStatus.COMPLETED:
            values["outputs"] = state.sink_outputs()
        if status in FINISHED_RUN_STATUSES:
            values["finished_at"] = now
            if state.started_at is not None:
                values["duration_ms"] = max(
                    0, round((now - state.started_at).total_seconds() * 1000)
                )
        event_data: dict[str, Any] = {}
        if "error" in values:
            event_data["error"] = values["error"]
        if status is RunStatus.WAITING:
            event_data["waiting"] = state.nodes_in(NodeStatus.WAITING)
        if status is RunStatus.RUNNING and previous is RunStatus.WAITING:
            state.emit("run.resumed", None, now)
        elif status is not RunStatus.RUNNING:
            state.emit(f"run.{status.value.lower()}", None, now, **event_data)
        return values

    def _refuse_messages(self, status: RunStatus) -> None:
        for message in self._inbox:
            if message.future.done():
                continue
            if message.kind == "cancel" and status is RunStatus.CANCELLED:
                message.future.set_result(None)
            else:
                message.future.set_exception(
                    Conflict(f"run {self.run_id!r} already finished as {status}")
                )
        self._inbox = []

    # ---- running nodes

    def running_nodes(self) -> list[str]:
        """The nodes whose attempts this driver has in flight."""
        return list(self._tasks)

    def abandon(self, reason: str) -> None:
        """Stop driving this run at once, writing nothing more: another holder took it over.

        Cancelling the driver task cancels every node task without applying its outcome, so
        no result of an attempt that lost its lease is ever written.
        """
        _log.warning("run %s: %s; this engine stops driving it", self.run_id, reason)
        if self.task is not None:
            self.task.cancel()

    def _dispatch(self, claimed: list[str]) -> None:
        state = self.state
        assert state is not None
        assert self._memory is not None
        engine = self.engine
        engine._leases.ensure_running()
        for node_id in claimed:
            slot = state.slots[node_id]
            ctx = RunContext(
                run_id=self.run_id,
                node_id=node_id,
                attempt=slot.attempt,
                idempotency_key=idempotency_key(self.run_id, node_id),
                blobs=engine.blobs,
                memory=self._memory,
                workflow_id=state.workflow_id,
                run_inputs=state.run_inputs,
                answer=slot.answer,
                settings=engine.node_settings,
                owner_id=state.owner_id,
                providers=engine.providers,
                usage=self._usage,
                integrations=engine.integrations,
                secrets=engine.http_secrets,
                subruns=EngineSubRuns(
                    engine,
                    run_id=self.run_id,
                    node_id=node_id,
                    attempt=slot.attempt,
                    owner_id=state.owner_id,
                ),
            )
            spec = state.specs[node_id]
            config = spec.config if slot.config is None else slot.config
            task = asyncio.create_task(
                self._attempt(spec, config, ctx, dict(slot.inputs or {}), slot.row_id)
            )
            self._tasks[node_id] = task
            task.add_done_callback(self._on_done)
            if engine.limits.active:
                task.add_done_callback(functools.partial(self._give_back_place, node_id))

    def _give_back_place(self, node_id: str, task: asyncio.Task[_Outcome]) -> None:
        self.engine._give_back_place(self.run_id, node_id)

    async def _attempt(
        self, spec: NodeSpec, config: Any, ctx: RunContext, inputs: dict[str, Any], row_id: str
    ) -> _Outcome:
        """One attempt of one node, then the artifact rows of the blobs its outputs refer to
        (before the tick commits the result, so a committed output never lacks its rows)."""
        outcome = await _execute(self.engine.concurrency, spec, config, ctx, inputs)
        if outcome.outputs:
            assert self.state is not None
            try:
                await record_artifacts(
                    self.engine.db,
                    owner_id=self.state.owner_id,
                    run_id=self.run_id,
                    node_execution_id=row_id,
                    outputs=outcome.outputs,
                )
            except Exception as exc:
                _log.exception("run %s: recording the artifacts of %s failed", self.run_id, row_id)
                message = f"could not record the artifacts of its outputs: {exc}"
                error = {"message": message, "type": "StorageError"}
                return _Outcome(ctx.node_id, ctx.attempt, error=error, retryable=True)
        return outcome


async def _execute(
    limit: asyncio.Semaphore, spec: NodeSpec, config: Any, ctx: RunContext, inputs: dict[str, Any]
) -> _Outcome:
    """Run one attempt of one node and say how it ended; never raises but CancelledError."""
    node_id, attempt = ctx.node_id, ctx.attempt
    timeout_s = spec.timeout_s
    try:
        async with limit:
            if timeout_s is None:
                result = await spec.node.run(ctx, config, inputs)
            else:
                async with asyncio.timeout(timeout_s) as scope:
                    try:
                        result = await spec.node.run(ctx, config, inputs)
                    except TimeoutError:
                        if scope.expired():
                            raise
                        raise _OwnTimeout() from None
    except WaitForInput as wait:
        return _Outcome(node_id, attempt, wait=wait)
    except RetryNode as retry:
        return _Outcome(
            node_id, attempt, error=_error(retry), retryable=True, retry_after_s=retry.after_s
        )
    except NodeFailed as failed:
        return _Outcome(node_id, attempt, error=_error(failed), retryable=failed.retryable)
    except TimeoutError:
        message = f"node {node_id!r} timed out after {timeout_s:g} s"
        return _Outcome(
            node_id, attempt, error={"message": message, "type": "NodeTimedOut"}, retryable=True
        )
    except _OwnTimeout:
        return _Outcome(node_id, attempt, error={"message": "TimeoutError", "type": "TimeoutError"})
    except Exception as exc:
        return _Outcome(node_id, attempt, error=_error(exc))
    outputs = result.outputs
    undeclared = set(outputs) - spec.outputs
    if undeclared:
        message = f"emitted outputs it does not declare: {', '.join(sorted(undeclared))}"
        return _Outcome(node_id, attempt, error={"message": message, "type": "NodeFailed"})
    try:
        json.dumps(outputs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        message = f"outputs are not JSON (binary data belongs in the blob store): {exc}"
        return _Outcome(node_id, attempt, error={"message": message, "type": "NodeFailed"})
    return _Outcome(node_id, attempt, outputs=outputs)


class _OwnTimeout(Exception):
    """The node raised TimeoutError itself: a failure like any other, not our timeout."""


def _error(exc: BaseException) -> dict[str, Any]:
    message = str(exc)
    if isinstance(exc, NodeFailed):
        # NodeFailed's text repeats the node and attempt, which the row already records.
        message = message.split("): ", 1)[-1]
    return {"message": message or type(exc).__name__, "type": type(exc).__name__}
