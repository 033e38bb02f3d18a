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

The database may go away under a driver. A load or a tick that fails with the database
unavailable is tried again with backoff (``backoff.py``); a failed commit may or may not have
happened, so the driver then rebuilds its state from the rows, as after a crash, keeping the
attempts still in flight and the outcomes not yet applied: a node whose success was committed
is never run again, and one whose success was lost is applied again from its outcome. Messages
of the lost tick are answered with the error (the API's 503) for their callers to repeat. A
failure that is not an outage (the database refuses what the tick wrote, the run cannot be
loaded) fails the run in a fresh transaction (``run_failure.py``) instead of leaving it RUNNING.
Node outputs holding text no database can store fail their node before any commit
(``unstorable.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from flowloom.engine.artifacts import distinct_references
from flowloom.engine.backoff import Backoff, patiently
from flowloom.engine.batching import MAX_ROWS, Uncommitted
from flowloom.engine.events import Event, progress_publisher
from flowloom.engine.execution import Outcome
from flowloom.engine.plans import BIG_PLAN, full_collections_paused
from flowloom.engine.ports import ProbingStore, RunResult, StoredRun, Tick
from flowloom.engine.run_state import NodeSlot, NodeSpec, RunState, resume_time
from flowloom.engine.signature import signature
from flowloom.engine.subruns import EngineSubRuns
from flowloom.engine.templating import TemplateFailed, render_config
from flowloom.engine.unstorable import storable_text
from flowloom.exceptions import Conflict, NotFound, StorageError
from flowloom.nodes.base import MemoryStore, RunContext, idempotency_key
from flowloom.providers.usage import UsageSink
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.storage.errors import DatabaseUnavailable, is_unavailable

if TYPE_CHECKING:
    from flowloom.engine.seams import Executor

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


class LeaseLost(StorageError):
    """A node this driver ran was claimed by someone else meanwhile; the driver stops."""


class Driver:
    """Drives one run; created and registered by the Engine, never shared between runs."""

    def __init__(self, engine: Executor, run_id: str, stored: StoredRun | None = None) -> None:
        self.engine = engine
        self.run_id = run_id
        self._stored = stored
        """The run as just written, when this driver is its first: loaded without a read."""
        self.state: RunState | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self._inbox: list[Message] = []
        self._done: list[asyncio.Task[Outcome]] = []
        self._tasks: dict[str, asyncio.Task[Outcome]] = {}
        self._wake = asyncio.Event()
        self._memory: MemoryStore | None = None
        self._usage: UsageSink | None = None
        self._use_cache = True
        self._reclaim = False
        """A place under a per-owner or per-key limit came free: claim again next tick."""
        self._store = engine.store
        self._clock = engine.clock
        self._attempts: dict[str, int] = {}
        """The attempt each task in ``_tasks`` runs."""
        self._culprits: list[str] = []
        """Row ids whose outcomes the tick being committed writes (blamed if it is refused)."""
        self._backoff = Backoff()
        """Shared by every retry of this driver, reset by a committed tick: a database that
        answers reads but refuses writes (a lock held elsewhere) is not hammered."""
        self.found_finished = False
        """The run had finished before this driver loaded it (a late or repeated request)."""
        self._phase = "load"
        """Where the driver is: ``load``, ``tick`` or ``commit`` (to say what failed)."""
        self._uncommitted = Uncommitted(engine.batch_window_s)
        """What deferred ticks did since the last commit (``batching.py``)."""
        self._known: dict[str, tuple[str, dict[str, Any]]] = {}
        """What the cache answered this run, and more: a look-up that hits also brings the
        results of the rest of the run it hit (``RunStore.find_cached``), so the nodes that
        follow a cached one, in this tick or a later one, are mostly answered from here without
        a look-up of their own, and an earlier run's results are fetched once, not once a tick.
        Any success with a signature is a right answer for it, however new."""
        store = engine.store
        self._probing: ProbingStore | None = (
            cast(ProbingStore, store) if hasattr(store, "commit_probing") else None
        )
        """The store, when its tick commit can carry the cache probes of the nodes claimed."""
        self._probes: list[str] = []
        """Nodes the tick being made claimed with their cache probe left to its commit."""
        self._served: dict[str, tuple[str, dict[str, Any]]] = {}
        """Nodes whose committed claim carried a probe that hit, to serve from the cache at
        the next tick: node id -> (the row it is served from, its outputs)."""
        self.result: RunResult | None = None
        """How the run ended, as this driver's last commit stored it (None until then): what
        waiting for the run returns without reading it back."""

    def post(self, message: Message) -> None:
        self._inbox.append(message)
        self._wake.set()

    def wake_to_claim(self) -> None:
        """A limit that kept one of this run's READY nodes waiting has room now."""
        self._reclaim = True
        self._wake.set()

    def _on_done(self, task: asyncio.Task[Outcome]) -> None:
        if task.cancelled():
            return
        self._done.append(task)
        self._wake.set()

    # ---- the loop

    async def run(self) -> None:
        try:
            try:
                await self._drive()
            except (LeaseLost, NotFound):
                raise
            except Exception as exc:
                # Not an outage (those are waited out where they happen): this run cannot go
                # on as it is. It fails in a transaction of its own, never left RUNNING.
                _log.exception("driver of run %s failed; failing the run", self.run_id)
                await self._give_up(exc)
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
            self.engine.driver_ended(self)

    async def _load(self) -> RunState:
        """The run's state from its rows, waiting out an outage (messages posted meanwhile
        are answered with the error at once: their callers are not kept waiting)."""
        stored, self._stored = self._stored, None
        if stored is not None:
            self.state, self._use_cache = self.engine.state_of(stored)
            return self.state
        state, self._use_cache = await patiently(
            lambda: self.engine.load_state(self.run_id),
            what=f"run {self.run_id}: loading",
            backoff=self._backoff,
            on_unavailable=self._fail_inbox,
            reset=False,
        )
        self.state = state
        return state

    def _fail_inbox(self, exc: BaseException) -> None:
        messages, self._inbox = self._inbox, []
        _fail_messages(messages, exc)

    async def _drive(self) -> None:
        self._phase = "load"
        state = await self._load()
        if state.status in FINISHED_RUN_STATUSES:
            self.found_finished = True
            self._refuse_messages(state.status)
            return
        if state.cancel_requested and not any(m.kind == "cancel" for m in self._inbox):
            # Asked for through the store (another process's API): applied like a message.
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._inbox.append(Message("cancel", future))
        store = self._store
        self._memory = store.memory(owner_id=state.owner_id, workflow_id=state.workflow_id)
        self._usage = store.usage(
            owner_id=state.owner_id, api_key_id=state.api_key_id, run_id=self.run_id
        )
        big = len(state.slots) >= BIG_PLAN
        with full_collections_paused() if big else contextlib.nullcontext():
            await self._ticks(state)

    async def _ticks(self, state: RunState) -> None:
        """Tick until the run stops running and nothing more is asked of it."""
        first = True
        while True:
            now = self._clock.now()
            flush = self._uncommitted.due()
            if not (first or self._done or self._inbox or self._reclaim or flush or self._due(now)):
                await self._sleep()
                continue
            self._reclaim = False
            finished, self._done = self._done, []
            messages, self._inbox = self._inbox, []
            self._phase = "tick"
            try:
                claimed, committed = await self._tick(first, finished, messages, now)
            except LeaseLost:
                raise
            except Exception as exc:
                _fail_messages(messages, exc)
                if not is_unavailable(exc):
                    raise
                # The commit may or may not have happened: the rows say which. The outcomes
                # of the lost tick (and of the deferred ticks it carried) are applied again
                # where the rows still await them.
                await self._forget_uncommitted(finished)
                state = await self._recover(exc)
                if state.status in FINISHED_RUN_STATUSES:
                    self._refuse_messages(state.status)
                    self._publish_final(state)
                    return
                first = True
                continue
            first = False
            if committed:
                if self._backoff.failures:
                    _log.info("run %s: committing again after the outage", self.run_id)
                    self._backoff.reset()
                self.engine.bus.publish(state.events)
                state.events = []
                for message in messages:
                    if not message.future.done():
                        message.future.set_result(None)
                if claimed:
                    self.engine.failpoints.reach("after_commit_before_release")
            if claimed:
                self._dispatch(claimed)
            if state.status is not RunStatus.RUNNING and not self._inbox and not self._done:
                return

    async def _forget_uncommitted(self, finished: list[asyncio.Task[Outcome]]) -> None:
        """After a lost commit: stop the attempts whose claims were never committed (their
        nodes are claimed again after the reload), and queue every other applied outcome of
        the lost batch to be applied again."""
        uncommitted = self._uncommitted
        outcomes = [*uncommitted.outcomes, *finished, *self._done]
        self._done = [t for t in outcomes if not uncommitted.is_uncommitted_claim(t.result())]
        tasks = []
        for node_id, attempt in uncommitted.claims.items():
            if self._attempts.get(node_id) == attempt:
                del self._attempts[node_id]
                task = self._tasks.pop(node_id)
                task.cancel()
                tasks.append(task)
        uncommitted.committed()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _recover(self, exc: BaseException) -> RunState:
        """Wait for the database and rebuild the state from the rows (see the module
        docstring); LeaseLost if another engine took over a node meanwhile."""
        _log.warning(
            "run %s: a tick failed (%s); reloading when the database is back", self.run_id, exc
        )
        await self._backoff.wait()
        self._phase = "load"
        self._served = {}
        state = await self._load()
        in_flight = self._in_flight(self._done)
        owner = self.engine.owner_token
        for node_id in state.nodes_in(NodeStatus.RUNNING):
            slot = state.slots[node_id]
            if slot.lease_owner not in (None, owner) and (
                slot.lease_expires_at is None or slot.lease_expires_at > self._clock.now()
            ):
                holder = slot.lease_owner
                raise LeaseLost(f"run {self.run_id}: node {node_id!r} is held by {holder}")
            if node_id in in_flight and in_flight[node_id] != slot.attempt:
                raise LeaseLost(f"run {self.run_id}: node {node_id!r} moved on to another attempt")
        _log.info("run %s: reloaded after the database came back", self.run_id)
        return state

    def _in_flight(self, finished: list[asyncio.Task[Outcome]]) -> dict[str, int]:
        """Attempts running, or ``finished`` but not yet applied: node id -> attempt."""
        found = dict(self._attempts)
        for task in finished:
            outcome = task.result()
            found[outcome.node_id] = outcome.attempt
        return found

    def _publish_final(self, state: RunState) -> None:
        # The tick that finished the run was committed but its events were lost with the
        # connection: followers still learn how the run ended.
        self.engine.bus.publish(
            [Event(f"run.{state.status.value.lower()}", self.run_id, None, self._clock.now(), {})]
        )

    async def _give_up(self, exc: Exception) -> None:
        """Fail the run in a fresh transaction (waiting out an outage); see run_failure.py."""
        await self._cancel_tasks()
        messages, self._inbox = self._inbox, []
        _fail_messages(messages, exc)
        reason = storable_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        reason = (reason or type(exc).__name__)[:500]
        phase = self._phase
        if phase == "load":
            message = f"the run could not be loaded: {reason}"
        elif phase == "commit":
            message = f"the run's state could not be stored: {reason}"
        else:
            message = f"the engine failed while driving the run: {reason}"
        kind = "StorageError" if phase != "tick" else type(exc).__name__
        error = {"message": message, "type": kind}
        now = self._clock.now()
        state = self.state
        started_at = state.started_at if state is not None else None
        culprits = self._culprits if phase == "commit" else []
        changed = await patiently(
            lambda: self._store.fail_run(
                run_id=self.run_id,
                error=error,
                now=now,
                started_at=started_at,
                culprits=culprits,
            ),
            what=f"run {self.run_id}: failing it",
        )
        if state is not None:
            state.status = RunStatus.FAILED
        if changed:
            self.engine.bus.publish([Event("run.failed", self.run_id, None, now, {"error": error})])

    def _due(self, now: datetime) -> bool:
        assert self.state is not None
        timer = self.state.next_timer()
        return timer is not None and timer <= now

    async def _sleep(self) -> None:
        assert self.state is not None
        self._wake.clear()
        # A deferred batch wakes the driver itself when it is due (``Uncommitted.defer``).
        timer = self.state.next_timer()
        if timer is None:
            await self._wake.wait()
            return
        delay_s = (timer - self._clock.now()).total_seconds()
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
        finished: list[asyncio.Task[Outcome]],
        messages: list[Message],
        now: datetime,
    ) -> tuple[list[str], bool]:
        """Apply what happened, claim what is ready; commit, or defer the commit
        (``batching.py``). The nodes to dispatch, and whether the tick was committed."""
        state = self.state
        assert state is not None
        engine = self.engine
        run_values: dict[str, Any] = {}
        previous = state.status
        if first:
            # Attempts this driver still has (after a reload) are not interrupted: their
            # outcomes are applied as they come. Any other RUNNING node lost its worker.
            in_flight = self._in_flight(finished)
            for node_id in state.nodes_in(NodeStatus.RUNNING):
                slot = state.slots[node_id]
                if in_flight.get(node_id) != slot.attempt:
                    state.interrupt(slot, now)
            if state.status is RunStatus.PENDING:
                state.status = RunStatus.RUNNING
                state.started_at = now
                run_values.update(status=RunStatus.RUNNING.value, started_at=now)
                state.emit("run.started", None, now)

        fenced: set[str] = set()
        # Whether every outcome applied is the success of a pure node (see batching.py).
        quiet = not first and not messages
        for task in finished:
            outcome = task.result()
            if self._attempts.get(outcome.node_id) == outcome.attempt:
                self._tasks.pop(outcome.node_id, None)
                del self._attempts[outcome.node_id]
            slot = state.slots[outcome.node_id]
            if slot.status is NodeStatus.RUNNING and slot.attempt == outcome.attempt:
                fenced.add(slot.row_id)
                self._apply(outcome, slot, now)
                succeeded = outcome.wait is None and outcome.error is None
                quiet = quiet and succeeded and state.specs[slot.node_id].pure
        if self._served:
            fenced.update(await self._serve(now))
            quiet = False

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
        self._probes = []
        if abort is not None or state.failure is not None:
            fenced.update(await self._stop_running(now))
        if abort is None and state.failure is None:
            # A tick that commits whatever it claims may leave its probes to its commit.
            probing = self._probing
            claimed = await self._claim(
                now, fold=not quiet and probing is not None and probing.folds_probes()
            )
            if state.failure is not None:
                fenced.update(await self._stop_running(now))
                claimed = []
        run_values.update(self._settle(abort, previous, now))
        # Everything decided above is committed at once (the fence is checked in the same
        # transaction); nothing is published or dispatched before the commit returns.
        debug = state.debug
        uncommitted = self._uncommitted
        if (
            quiet
            and not run_values
            and debug is None
            and not uncommitted.due()
            and len(state.dirty) < MAX_ROWS
            and all(engine.starts_uncommitted(state.specs[node_id]) for node_id in claimed)
        ):
            slots = state.slots
            uncommitted.defer(
                {n: slots[n].attempt for n in claimed}, fenced, finished, self._wake.set
            )
            return claimed, False
        if finished or uncommitted.outcomes:
            engine.failpoints.reach("after_effect_before_commit")
        # Rows claimed by deferred ticks were never RUNNING in the database: not fenced.
        fenced |= uncommitted.fenced
        fenced -= {state.slots[node_id].row_id for node_id in uncommitted.claims}
        self._culprits = list(fenced)
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
            # A run's end, a park (WAITING) and every answer to a caller wait for the disk.
            durable=state.status is not RunStatus.RUNNING or bool(messages),
        )
        state.dirty.clear()
        self._phase = "commit"
        probes = [n for n in self._probes if state.slots[n].status is NodeStatus.RUNNING]
        hits: dict[str, tuple[str, dict[str, Any]]] | None = {}
        try:
            if probes and self._probing is not None:
                signatures = [state.slots[n].cache_signature or "" for n in probes]
                hits = await self._probing.commit_probing(tick, signatures)
                committed = hits is not None
            else:
                committed = await self._store.commit(tick)
        except Exception:
            # Claimed but never dispatched: their places under the limits are free again.
            if engine.limits.active:
                for node_id in claimed:
                    engine.give_back_place(self.run_id, node_id)
            raise
        self._phase = "tick"
        if not committed:
            raise LeaseLost(f"run {self.run_id}: a node was claimed by another worker")
        uncommitted.committed()
        if hits:
            claimed = self._to_serve(probes, hits, claimed)
        if write_debug and debug is not None:
            debug.dirty = False
        if finished_run:
            self.result = _stored_result(self.run_id, state.status, run_values)
        return claimed, True

    def _to_serve(
        self, probes: list[str], hits: dict[str, tuple[str, dict[str, Any]]], claimed: list[str]
    ) -> list[str]:
        """After a commit that carried the probes of ``probes`` (claimed, RUNNING): those
        that hit are not started but served from the cache by the next tick (which follows
        at once), their start events withdrawn; the rest of ``claimed``, to dispatch."""
        state = self.state
        assert state is not None
        served: dict[str, tuple[str, dict[str, Any]]] = {}
        for node_id in probes:
            hit = hits.get(state.slots[node_id].cache_signature or "")
            if hit is not None:
                served[node_id] = hit
        if not served:
            return claimed
        self._known.update(hits)
        state.withdraw_starts(served)
        if self.engine.limits.active:
            for node_id in served:
                self.engine.give_back_place(self.run_id, node_id)
        self._served = served
        self._reclaim = True
        return [node_id for node_id in claimed if node_id not in served]

    async def _serve(self, now: datetime) -> list[str]:
        """Serve from the cache the nodes a committed claim left to it (``_to_serve``) that
        are still as it left them; the row ids served (written only while still held). The
        runs their hits come from are looked up for the nodes that follow (``near``)."""
        state = self.state
        assert state is not None
        served, self._served = self._served, {}
        rows = []
        signatures = []
        for node_id, (cached_from_id, outputs) in served.items():
            slot = state.slots[node_id]
            if slot.status is not NodeStatus.RUNNING or node_id in self._tasks:
                continue
            rows.append(slot.row_id)
            if slot.cache_signature is not None:
                signatures.append(slot.cache_signature)
            state.serve_claimed(slot, now, outputs=outputs, cached_from_id=cached_from_id)
        if signatures:
            self._known.update(await self._store.find_cached(signatures, near=True))
        return rows

    def _apply(self, outcome: Outcome, slot: NodeSlot, now: datetime) -> None:
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

    async def _claim(self, now: datetime, *, fold: bool = False) -> list[str]:
        """Claim every ready node: park it at a breakpoint, fail it for a missing input,
        serve it from the cache, or mark it RUNNING under this engine's lease. With ``fold``
        (the tick commits, on a ``ProbingStore``), a node whose signature is not known yet is
        claimed without a look-up: its probe rides in the commit (``_probes``), and a hit is
        served from the cache by the next tick instead of started."""
        state = self.state
        assert state is not None
        engine = self.engine
        lease_until = now + timedelta(seconds=engine.lease_s)
        debug = state.debug
        claimed: list[str] = []
        # Nodes a per-owner or per-key limit refused this tick: they stay READY, unclaimed.
        deferred: set[str] = set()
        known = self._known
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
                        raw_config, slot.config = await render_config(
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
            unknown = [s for s in signatures if s not in known]
            if unknown and not fold:
                known.update(await self._store.find_cached(unknown, near=True))
            for slot in candidates:
                hit = known.get(slot.cache_signature) if slot.cache_signature else None
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
                    if fold and slot.cache_signature is not None:
                        self._probes.append(slot.node_id)

    def _take_place(self, slot: NodeSlot) -> bool:
        """Whether the per-owner and per-key limits let ``slot`` run now (counting it if so)."""
        engine = self.engine
        if not engine.limits.active:
            return True
        state = self.state
        assert state is not None
        spec = state.specs[slot.node_id]
        key = spec.node.concurrency_key(spec.config if slot.config is None else slot.config)
        return engine.take_place(self, slot.node_id, owner=state.owner_id, key=key)

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
        self._attempts.clear()
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
            # Read again rather than the tick's ``now``: the tick's own work (a run served
            # from the cache does all of its nodes in its first tick) is part of the run.
            finished_at = self._clock.now()
            values["finished_at"] = finished_at
            if state.started_at is not None:
                values["duration_ms"] = max(
                    0, round((finished_at - state.started_at).total_seconds() * 1000)
                )
        event_data: dict[str, Any] = {}
        if "duration_ms" in values:
            event_data["workflow_id"] = state.workflow_id
            event_data["duration_ms"] = values["duration_ms"]
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
        """The nodes whose attempts this driver has in flight under a committed claim (an
        uncommitted one has no lease in the database to renew yet)."""
        claims = self._uncommitted.claims
        return [node_id for node_id in self._tasks if node_id not in claims]

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
        engine.lease_keeper()
        for node_id in claimed:
            slot = state.slots[node_id]
            ctx = RunContext(
                run_id=self.run_id,
                node_id=node_id,
                attempt=slot.attempt,
                idempotency_key=idempotency_key(self.run_id, node_id),
                blobs=engine.blobs.for_owner(state.owner_id, self._owns),
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
                progress=progress_publisher(engine.bus, self.run_id, node_id, slot.attempt),
            )
            spec = state.specs[node_id]
            config = spec.config if slot.config is None else slot.config
            task = asyncio.create_task(
                self._attempt(spec, config, ctx, dict(slot.inputs or {}), slot.row_id)
            )
            self._tasks[node_id] = task
            self._attempts[node_id] = slot.attempt
            task.add_done_callback(self._on_done)
            if engine.limits.active:
                task.add_done_callback(functools.partial(self._give_back_place, node_id))

    async def _owns(self, sha256: str) -> bool:
        assert self.state is not None
        return await self._store.owns_blob(owner_id=self.state.owner_id, sha256=sha256)

    def _give_back_place(self, node_id: str, task: asyncio.Task[Outcome]) -> None:
        self.engine.give_back_place(self.run_id, node_id)

    async def _attempt(
        self, spec: NodeSpec, config: Any, ctx: RunContext, inputs: dict[str, Any], row_id: str
    ) -> Outcome:
        """One attempt of one node, then the artifact rows of the blobs its outputs refer to
        (before the tick commits the result, so a committed output never lacks its rows)."""
        assert self.state is not None
        outcome = await self.engine.execute_node(spec, config, ctx, inputs, self.state)
        references = distinct_references(outcome.outputs) if outcome.outputs else {}
        if references:
            owner_id = self.state.owner_id

            def record() -> Awaitable[int]:
                return self._store.record_artifacts(
                    owner_id=owner_id,
                    run_id=self.run_id,
                    node_execution_id=row_id,
                    references=references,
                    stored=(*getattr(ctx.blobs, "stored", ()), *outcome.stored),
                )

            try:
                try:
                    await record()
                except DatabaseUnavailable:
                    # Recording is idempotent: after an outage it is simply done again.
                    await patiently(record, what=f"run {self.run_id}: recording artifacts")
            except Exception as exc:
                _log.exception("run %s: recording the artifacts of %s failed", self.run_id, row_id)
                message = storable_text(f"could not record the artifacts of its outputs: {exc}")
                error = {"message": message, "type": "StorageError"}
                return Outcome(ctx.node_id, ctx.attempt, error=error, retryable=True)
        return outcome


def _stored_result(run_id: str, status: RunStatus, values: dict[str, Any]) -> RunResult:
    """The outcome of a run whose finishing tick wrote ``values``, as reading it back gives
    it (its JSON as the database returns JSON: tuples become lists, keys text)."""
    outputs, error = values.get("outputs"), values.get("error")
    return RunResult(
        run_id=run_id,
        status=status,
        outputs=None if outputs is None else json.loads(json.dumps(outputs)),
        error=None if error is None else json.loads(json.dumps(error)),
        duration_ms=values.get("duration_ms"),
    )


def _fail_messages(messages: list[Message], exc: BaseException) -> None:
    """Answer messages whose tick was lost: their callers see the error and may repeat."""
    error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
    for message in messages:
        if not message.future.done():
            message.future.set_exception(error)
