"""The engine of one worker process, on an event loop of its own in a background thread.

Celery runs tasks on ordinary threads (prefork: one per child process; solo: the main
thread), so each worker process hosts ONE ``WorkerEngine`` on one asyncio loop, started once.
Runs come to it one of two ways: the inbox loop (``_take_runs``) pops and claims them from the
runs' inbox (``inbox.py``) whenever fewer than ``worker_runs_at_once`` are in hand, or a
``drive_runs`` task submits a coroutine to the loop and blocks until its runs finish or wait
(RabbitMQ, or a Redis broker apart from the claims'). Beside the drivers, the loop runs three
small loops:

- the heartbeat (a thread of its own: ``heartbeat.py``) renews this process's run claims
  every third of their TTL, and makes a driver whose claim went to another worker stop
  (``Driver.abandon``);
- the watch looks, every ``_WATCH_S``, at the runs driven here: a cancellation asked for in
  the database (``cancel_requested``, set by the API) and answers applied by the API to a node
  this driver still holds as WAITING are posted to the driver as messages, exactly as
  embedded mode's ``Engine.cancel`` and ``Engine.answer`` post them;
- the sweep (one process at a time, under a Redis lock) queues every unfinished run that needs
  a driver and that no worker holds or has queued: runs of a worker that died, due timers of
  WAITING runs whose worker is gone, runs queued while no worker ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from pydantic import BaseModel

from flowloom.engine.driver import Driver, Message
from flowloom.engine.execution import Outcome
from flowloom.engine.looplag import watch_loop_lag
from flowloom.engine.ports import PlanSource, RunStore, SharedRunStore, StoredRun
from flowloom.engine.run_state import NodeSpec, RunState
from flowloom.engine.scheduler import Engine
from flowloom.nodes.base import RunContext
from flowloom.nodes.registry import NodeRegistry
from flowloom.nodes.warm import start_warm_up
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.worker.claims import RunClaims
from flowloom.worker.heartbeat import ClaimHeartbeat
from flowloom.worker.inbox import RunInbox, inbox_used
from flowloom.worker.lookups import BatchedLookups
from flowloom.worker.node_jobs import NodeJob, RoutedNodes, run_job
from flowloom.worker.node_queues import NodeRoutes
from flowloom.worker.redis_push import task_push
from flowloom.worker.relay import RedisEventBus
from flowloom.worker.runs import RunQueue, queued_for_s, shared_store

__all__ = ["DRIVEN", "LOAD_AT_ONCE", "WorkerEngine", "WorkerHost", "log_outcome", "sweep_lock_s"]

_log = logging.getLogger("flowloom.worker")
_WATCH_S = 0.25
"""How often a worker looks for cancellations and answers of the runs it drives."""
_LAG_WAKE_S = 0.2
"""How often a worker's loop-lag watchdog wakes: it only logs (no histogram to fill, as the
API's does), and every wake of every process costs CPU that no run uses: a block of a loop
past 0.3 s is always caught, a shorter one when it holds up a wake by 0.1 s. While the process
has no run and no routed job in hand, neither it nor its sampler wakes at all."""
_CREATION_GRACE_S = 2.0
"""The sweep leaves runs younger than this alone: their creator is about to queue or claim."""
DRIVEN = "driven to the end"
"""What ``drive`` says of a run it drove until it finished: what most runs come to."""
_INBOX_WAIT_S = 2.0
"""How long one wait for the inbox blocks (a process with no run in hand waits in Redis)."""
_STOP_GRACE_S = 20.0
"""How long a stopping worker lets the runs it took from the inbox go on before it stops
them (their claims released, another worker resumes them at once)."""
_T = TypeVar("_T")
LOAD_AT_ONCE = 50
"""The most runs a worker loads in one statement: a task the sweep queued after a worker died
may carry hundreds, and one read of all their rows would hold them all in one result."""


@runtime_checkable
class RunsLoader(Protocol):
    """A run store that loads several runs at once (``SqlRunStore``)."""

    async def load_runs(self, run_ids: list[str], plans: PlanSource) -> dict[str, StoredRun]:
        """The runs of ``run_ids`` as stored, by id; a run that does not exist is absent."""
        ...


class WorkerEngine(Engine):
    """The Engine, driving only the runs this worker claimed. Two things differ from embedded
    mode: a run this engine starts itself (a ``workflow.call`` sub-run) is claimed before its
    driver starts, and a timed wait that comes due is queued (any worker may take it)."""

    claims: RunClaims
    queue: RunQueue
    routes: NodeRoutes
    routed: RoutedNodes
    local_queues: frozenset[str] = frozenset()
    """Routed queues this process consumes itself: their nodes run here, never sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookups = BatchedLookups(self.store, lambda: len(self.driven()))
        """The store's cache look-ups, those its drivers ask close together (the runs of a
        task) made as one (``lookups.py``)."""
        self.store = cast(RunStore, self.lookups)
        self.busy = asyncio.Event()
        """Set whenever a driver or a routed node job starts here (the watch and the loop-lag
        watchdog sleep on it while this process has neither)."""

    def drive(self, run_id: str, stored: StoredRun | None = None) -> Driver:
        driver = super().drive(run_id, stored)
        self.busy.set()
        return driver

    @property
    def shared(self) -> SharedRunStore:
        """The run store this worker shares with the API and the other workers."""
        return shared_store(self.store)

    async def dispatch_new_run(self, run_id: str, stored: StoredRun | None = None) -> None:
        if not await self.claims.take(run_id, self.owner_token):
            _log.warning("run %s: claimed elsewhere before its creator could drive it", run_id)
        self.drive(run_id, stored)

    async def execute_node(
        self, spec: NodeSpec, config: Any, ctx: RunContext, inputs: dict[str, Any], run: RunState
    ) -> Outcome:
        queue = self.routes.queue_for(spec.definition.type)
        if queue is None or queue in self.local_queues:
            return await super().execute_node(spec, config, ctx, inputs, run)
        job = NodeJob(
            run_id=ctx.run_id,
            node_id=ctx.node_id,
            attempt=ctx.attempt,
            row_id=run.slots[ctx.node_id].row_id,
            node_type=spec.definition.type,
            config=config.model_dump(mode="json") if isinstance(config, BaseModel) else config,
            inputs=inputs,
            outputs=sorted(spec.outputs),
            timeout_s=spec.timeout_s,
            owner_id=run.owner_id,
            workflow_id=run.workflow_id,
            api_key_id=run.api_key_id,
            run_inputs=dict(run.run_inputs),
        )
        return await self.routed.run(queue, job)

    def starts_uncommitted(self, spec: NodeSpec) -> bool:
        """A pure node this worker runs itself starts on uncommitted results, as in embedded
        mode (``batching.py``); a node routed to another queue never does: its job checks
        its claim in the database before it starts."""
        if not (spec.pure and self.batch_window_s > 0):
            return False
        queue = self.routes.queue_for(spec.definition.type)
        return queue is None or queue in self.local_queues

    async def load_runs(self, run_ids: list[str]) -> dict[str, StoredRun]:
        """The runs of ``run_ids`` as stored, read at once when the store can (one statement
        for the runs of a task, not one each; ``LOAD_AT_ONCE`` at most per statement); those
        absent are left to their drivers' own loads: runs that do not exist, or all of those
        of a read that failed, or of a store that cannot load several (each driver then waits
        out an outage, or fails, on its own)."""
        store = self.store
        if len(run_ids) < 2 or not isinstance(store, RunsLoader):
            return {}
        loaded: dict[str, StoredRun] = {}
        for first in range(0, len(run_ids), LOAD_AT_ONCE):
            some = run_ids[first : first + LOAD_AT_ONCE]
            try:
                loaded.update(await store.load_runs(some, self.plans))
            except Exception as exc:
                _log.warning("loading %d runs at once failed (%s): each alone", len(some), exc)
        return loaded

    def timer_due(self, run_id: str) -> None:
        if not self.closed:
            task = asyncio.create_task(self.queue.put(run_id))
            task.add_done_callback(_log_failure)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where it is installed (it comes with ``uvicorn[standard]``, and the API
    runs on it too), else asyncio's: a worker's loop does little but socket reads and
    callbacks for PostgreSQL and Redis, and asyncio's own loop code was ~30% of a worker's
    CPU in the profile of trivial runs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _no_routed_queues(queue: str, job: dict[str, Any]) -> None:
    raise RuntimeError(f"this worker cannot send tasks to {queue}")


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("a worker task failed", exc_info=task.exception())


def _post(driver: Driver, kind: str, **fields: Any) -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # Nobody awaits it: retrieve its outcome so that a refusal (a run that ended) is not logged.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    driver.post(Message(kind, future, **fields))


class WorkerHost:
    """One worker process's engine and its loop; ``start`` once, ``drive`` from any thread."""

    def __init__(
        self,
        settings: Settings,
        send: Callable[[list[str]], None],
        registry: NodeRegistry | None = None,
        open_database: Callable[[Settings], Database] = Database.from_settings,
        send_node: Callable[[str, dict[str, Any]], None] | None = None,
        consumed: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self._open_database = open_database
        self._send = send
        self._send_node = send_node or _no_routed_queues
        self._consumed = frozenset(consumed)
        self._registry = registry
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="flowloom engine")
        self._thread.daemon = True
        self._tasks: list[asyncio.Task[None]] = []
        self._cancelling: set[str] = set()
        self._since: dict[str, float] = {}
        """When this process began driving each run (``_watch`` skips the youngest)."""
        self._jobs: set[str] = set()
        """Claim ids of the routed node attempts this process runs (its heartbeat renews them)."""
        self._in_hand = 0
        """Runs taken from the inbox that this process drives now."""
        self._room = asyncio.Event()
        """Set whenever a run taken from the inbox stops being driven here."""
        self._taking: set[asyncio.Task[None]] = set()
        """The tasks driving runs taken from the inbox."""
        self._inbox: RunInbox | None = None
        """The runs' inbox, when this process takes runs from it (``inbox.py``)."""
        self._warming: asyncio.Task[None] | None = None
        self.engine: WorkerEngine | None = None

    def start(self) -> None:
        self._thread.start()
        self._call(self._open())

    def drive(self, run_id: str) -> str:
        """Drive the run until it finishes or waits (blocking); what happened, in words."""
        return self._call(self._drive(run_id))

    def drive_many(self, run_ids: list[str]) -> list[str]:
        """``drive`` for several runs at once (their drivers share the loop); what happened to
        each, in order."""
        return self._call(self._drive_many(run_ids))

    def run_node(self, job: dict[str, Any]) -> str:
        """Run one routed node attempt for a driver elsewhere (blocking); what happened."""
        return self._call(self._run_node(NodeJob.from_wire(job)))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close(), timeout_s=_STOP_GRACE_S + 30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coro: Coroutine[Any, Any, _T], timeout_s: float | None = None) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    # ---- on the loop

    async def _open(self) -> None:
        from redis.asyncio import Redis

        settings = self.settings
        redis = Redis.from_url(settings.resolved_events_url)
        bus = RedisEventBus(redis, settings.worker_queue)
        bus.start()
        db = self._open_database(settings)
        engine = WorkerEngine.from_settings(db, settings, self._registry, bus=bus)
        assert isinstance(engine, WorkerEngine)
        engine.claims = RunClaims(
            redis, namespace=settings.worker_queue, ttl_s=settings.worker_claim_ttl_s
        )
        inbox = RunInbox(engine.claims) if inbox_used(settings) else None
        self._push = task_push(settings)  # None with the inbox
        engine.queue = RunQueue(
            engine.claims,
            self._send,
            queued_for_s=queued_for_s(settings),
            push=self._push,
            inbox=inbox,
        )
        engine.routes = NodeRoutes(settings.worker_node_queues, namespace=settings.worker_queue)
        engine.local_queues = self._consumed
        engine.routed = RoutedNodes(
            redis, engine.claims, self._send_node, check_s=settings.worker_claim_ttl_s
        )
        self.engine = engine
        self._redis = redis
        self._bus = bus
        self._db = db
        self._heartbeat = ClaimHeartbeat(
            settings.resolved_events_url,
            engine.claims,
            engine.owner_token,
            held=lambda: (*engine.driven(), *self._jobs),
            on_lost=self._claim_lost,
            loop=asyncio.get_running_loop(),
        )
        self._heartbeat.start()
        loops: list[tuple[str, Callable[[], Coroutine[Any, Any, float]]]] = [
            ("watch", self._watch),
            ("sweep", self._sweep),
        ]
        if inbox is not None and settings.worker_queue in self._consumed:
            self._inbox = inbox
            loops.append(("inbox", self._take_runs))
        for name, loop in loops:
            self._tasks.append(asyncio.create_task(self._forever(name, loop)))
        self._tasks.append(
            asyncio.create_task(
                watch_loop_lag(interval_s=_LAG_WAKE_S, idle=self._idle), name="flowloom loop lag"
            )
        )
        self._warming = start_warm_up()

    async def _close(self) -> None:
        # The warm-up too: a host stopped within a second of its start has not begun it.
        tasks = [*self._tasks, *([self._warming] if self._warming is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._taking:
            # No more runs are taken; those in hand get a while to finish or wait (as a
            # Celery task in hand finishes before its worker stops), then stop below.
            await asyncio.wait(self._taking, timeout=_STOP_GRACE_S)
        await asyncio.to_thread(self._heartbeat.stop)
        engine = self.engine
        if engine is not None:
            driven = engine.driven()
            await engine.close()
            for run_id in driven:
                with contextlib.suppress(Exception):
                    await engine.claims.release(run_id, engine.owner_token)
        await self._bus.stop()
        if self._push is not None:
            await self._push.aclose()
        await self._redis.aclose()
        await self._db.dispose()

    async def _drive_many(self, run_ids: list[str]) -> list[str]:
        if len(run_ids) == 1:
            return [await self._drive(run_ids[0])]
        engine = self.engine
        assert engine is not None
        # dict.fromkeys: a run named twice in one message is driven once. Their claims are
        # taken in one round trip; each driver then goes its own way.
        unique = list(dict.fromkeys(run_ids))
        taken = await engine.claims.take_many(unique, engine.owner_token)
        loaded = await self._load_claimed(
            [run_id for run_id, held in zip(unique, taken, strict=True) if held]
        )
        found = await asyncio.gather(
            *(
                self._drive(run_id, taken=held, stored=loaded.get(run_id))
                for run_id, held in zip(unique, taken, strict=True)
            ),
            return_exceptions=True,
        )
        done: dict[str, str] = {}
        for run_id, outcome in zip(unique, found, strict=True):
            if isinstance(outcome, BaseException):
                # One run's failure (Redis unreachable for its claim) is not its neighbours':
                # they were driven; this one is the sweep's again.
                _log.error("driving run %s failed", run_id, exc_info=outcome)
                outcome = "failed"
            done[run_id] = outcome
        return [done[run_id] for run_id in run_ids]

    async def _load_claimed(self, run_ids: list[str]) -> dict[str, StoredRun]:
        """The runs claimed here and not driven here yet, loaded in one statement, after their
        claims were taken (a load before could read what the previous holder wrote)."""
        engine = self.engine
        assert engine is not None
        return await engine.load_runs([r for r in run_ids if engine.driver_of(r) is None])

    async def _take_runs(self) -> float:
        """One step of the inbox loop: wait for room, take runs (pop and claim at once, or
        wait in Redis while the inbox is empty), and start driving them."""
        engine = self.engine
        assert engine is not None
        room = self.settings.worker_runs_at_once - self._in_hand
        if room <= 0:
            self._room.clear()
            await self._room.wait()
            return 0.0
        inbox = self._inbox
        assert inbox is not None  # the loop runs only with an inbox
        owner = engine.owner_token
        taken = await inbox.take(owner, room)
        if not taken:
            popped = await inbox.wait(_INBOX_WAIT_S)
            if popped is None:
                return 0.0
            taken = await inbox.take(owner, room, popped)
        run_ids = list(dict.fromkeys(taken))
        if run_ids:
            self._in_hand += len(run_ids)
            task = asyncio.create_task(self._drive_taken(run_ids), name="flowloom inbox runs")
            self._taking.add(task)
            task.add_done_callback(self._taking.discard)
        return 0.0

    async def _drive_taken(self, run_ids: list[str]) -> None:
        """Drive runs claimed from the inbox, each freeing its room as soon as it is done."""
        left = set(run_ids)
        try:
            loaded = await self._load_claimed(run_ids)
            await asyncio.gather(
                *(self._drive_one(run_id, loaded.get(run_id), left) for run_id in run_ids)
            )
        finally:
            # Runs never driven (this process stopped first) free their room too.
            self._in_hand -= len(left)
            self._room.set()

    async def _drive_one(self, run_id: str, stored: StoredRun | None, left: set[str]) -> None:
        try:
            outcome = await self._drive(run_id, taken=True, stored=stored)
        except Exception:
            # Redis unreachable for a second round's claim: the sweep's again.
            _log.exception("driving run %s failed", run_id)
            outcome = "failed"
        finally:
            left.discard(run_id)
            self._in_hand -= 1
            self._room.set()
        log_outcome(run_id, outcome)

    async def _drive(
        self, run_id: str, *, taken: bool | None = None, stored: StoredRun | None = None
    ) -> str:
        """Drive the run; ``taken``: whether its claim was taken for this already (None:
        take it here); ``stored``: the run as loaded since its claim was taken (None: its
        driver loads it)."""
        engine = self.engine
        assert engine is not None
        owner = engine.owner_token
        # Two rounds at most: the second is for a WAITING run only (below); any later change
        # queues a task of its own, or is the sweep's.
        for round_number in range(2):
            if engine.driver_of(run_id) is not None:
                return "driven here already"
            if round_number == 0 and taken is not None:
                held = taken
            else:
                held = await engine.claims.take(run_id, owner)
            if not held:
                return "driven by another worker"
            driver = None
            try:
                # No look at the run first: the driver's load is that look (a finished run
                # ends it at once, a waiting one with nothing to do writes nothing), and a
                # cancellation asked for in the store comes with the load.
                driver = engine.drive(run_id, stored if round_number == 0 else None)
                self._since[run_id] = time.monotonic()
                while (current := engine.driver_of(run_id)) is not None:
                    driver = current
                    await asyncio.shield(driver.finished)
            except Exception:
                _log.exception("driving run %s failed; a sweep will queue it again", run_id)
                return "failed"
            finally:
                if engine.driver_of(run_id) is None:
                    self._cancelling.discard(run_id)
                    self._since.pop(run_id, None)
                    # A finished run's claim is left to expire: nobody needs it sooner, and
                    # that is a Redis round trip less per run.
                    state = driver.state if driver is not None else None
                    if state is None or state.status not in FINISHED_RUN_STATUSES:
                        await engine.claims.release(run_id, owner)
            # Driven until it finished or waited. A finished run needs nothing more (the
            # common case: no second claim and query); a waiting one gets one more round, for
            # an answer that came meanwhile (applied to the rows while this driver still held
            # the node WAITING).
            if driver.found_finished:
                return "nothing to do"
            status = driver.state.status if driver.state is not None else None
            if status is RunStatus.RUNNING:
                return "given up: another worker holds it"
            if status is not RunStatus.WAITING:
                return DRIVEN
        return "waiting"

    async def _run_node(self, job: NodeJob) -> str:
        engine = self.engine
        assert engine is not None
        self._jobs.add(job.claim_id)
        engine.busy.set()
        _log.info("run %s, node %s: attempt %d taken here", job.run_id, job.node_id, job.attempt)
        try:
            return await run_job(engine, engine.shared, engine.claims, engine.owner_token, job)
        finally:
            self._jobs.discard(job.claim_id)

    async def _forever(self, name: str, step: Callable[[], Coroutine[Any, Any, float]]) -> None:
        while True:
            try:
                pause_s = await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("the worker's %s failed; trying again", name)
                pause_s = 1.0
            await asyncio.sleep(pause_s)

    def _idle(self) -> Awaitable[object] | None:
        """For the loop-lag watchdog: None while a run or a routed job is in hand here, else
        what to await until one is."""
        engine = self.engine
        if engine is None or engine.driven() or self._jobs:
            return None
        engine.busy.clear()
        return engine.busy.wait()

    def _claim_lost(self, run_id: str) -> None:
        if run_id in self._jobs:
            # A routed attempt's claim lapsed (this process stalled): its driver may send it
            # again; the outcome pushed first is the one applied.
            _log.warning("the claim on %s lapsed while running it", run_id)
            return
        engine = self.engine
        driver = engine.driver_of(run_id) if engine is not None else None
        if driver is not None:
            driver.abandon("its claim went to another worker")

    async def _watch(self) -> float:
        engine = self.engine
        assert engine is not None
        if not engine.driven():
            # Nothing to look at until a driver starts: no wake, no work, while idle.
            engine.busy.clear()
            await engine.busy.wait()
        # A run driven for less than a watch period had its signals read when it started:
        # most runs end before they are looked at again.
        young = time.monotonic() - _WATCH_S
        driven = [run_id for run_id in engine.driven() if self._since.get(run_id, 0.0) < young]
        if not driven:
            return _WATCH_S
        found = await engine.shared.signals(driven)
        for run_id in found.cancelled:
            driver = engine.driver_of(run_id)
            loaded = driver.state if driver is not None else None
            if loaded is not None and loaded.cancel_requested:
                continue  # the driver found it asked for when it loaded the run
            if driver is not None and run_id not in self._cancelling:
                self._cancelling.add(run_id)
                _post(driver, "cancel")
        for run_id, node_id, answer in found.answers:
            driver = engine.driver_of(run_id)
            state = driver.state if driver is not None else None
            slot = state.slots.get(node_id) if state is not None else None
            if (
                driver is None
                or slot is None
                or slot.status is not NodeStatus.WAITING
                or "answer" in (slot.wait or {})
            ):
                continue
            # The API answered a node this driver still holds as WAITING: apply it here too,
            # so that the driver's own tick writes it, as in embedded mode.
            _post(driver, "answer", node_id=node_id, answer=answer)
        return _WATCH_S

    async def _sweep(self) -> float:
        engine = self.engine
        assert engine is not None
        interval_s = self.settings.worker_sweep_interval_s
        held_s = sweep_lock_s(self.settings)
        if not await engine.claims.try_lock("sweep", engine.owner_token, for_s=held_s):
            # Another process sweeps, and keeps its lock while it does: look again once the
            # lock could have lapsed (its holder died), not at every interval.
            return held_s
        needing = await engine.shared.runs_needing_a_driver(
            now=engine.clock.now(), older_than_s=_CREATION_GRACE_S
        )
        # Most of them are driven or queued: one look at all their claims, not one each,
        # and the rest go in one task.
        for run_id in await engine.queue.put_many(await engine.claims.unheld(needing)):
            _log.info("run %s had no driver: queued it again", run_id)
        return interval_s


def log_outcome(run_id: str, outcome: str) -> None:
    """Log what driving the run came to: at DEBUG for a run driven to its end (a line per
    short run cost a worker about 4% of its CPU, and the run's rows tell it), at INFO for the
    rest (a run waiting, one found driven elsewhere or finished: late or repeated deliveries,
    a failure)."""
    _log.log(logging.DEBUG if outcome == DRIVEN else logging.INFO, "run %s: %s", run_id, outcome)


def sweep_lock_s(settings: Settings) -> float:
    """How long the sweep's lock lasts unless its holder sweeps again, and how often the
    other processes try to take it: a quarter of a claim TTL (two sweep intervals at least).
    A sweeper that died is replaced within half a claim TTL, before the claims of the runs it
    drove have lapsed, so its runs are found as soon as with a sweeper alive; meanwhile the
    other processes of every worker ask Redis once per quarter TTL, not at every interval."""
    return max(2 * settings.worker_sweep_interval_s, settings.worker_claim_ttl_s / 4)
