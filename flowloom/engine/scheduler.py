"""The Engine: starts runs, drives them to the end, answers waits, cancels, resumes after a crash.

Embedded mode: one process, asyncio. Each active run has one driver task (``driver.py``) that
dispatches every ready node at once, bounded by the engine's global concurrency limit, and
group-commits each scheduler tick. The run store (``ports.RunStore``: ``engine/sql/`` on SQLite
and PostgreSQL, ``memory_store.py`` in memory) is the truth; the drivers' state is a cache of
it, so ``resume_unfinished()`` after a crash picks every unfinished run up where its rows say
it was: nodes that SUCCEEDED, were CACHED or SKIPPED never run again, a node that was RUNNING
runs again as attempt + 1 (at-least-once; exactly-once only holds for effects inside our own
transaction, so nodes pass ``ctx.idempotency_key`` to the services they call).

Besides the global limit, claims obey per-owner and per-key limits (``limits.py``: a refused
node stays READY until a place frees). Running nodes renew their leases (``leases.py``); one
that lost its lease is abandoned unwritten. ``workflow.call`` nodes run child runs through
``subruns.py``; string config fields are rendered as templates at claim (``templating.py``);
blob outputs get artifact rows (``artifacts.py``). ``Engine.from_settings`` wires all of it
from the settings, with blobs in ``settings.blob_dir``. The time comes from an injectable
``Clock``.

Distributed mode (``flowloom.worker``) reuses this class unchanged but for two public hooks,
``dispatch_new_run`` and ``timer_due``: the API process queues new runs for ``flowloom worker``
processes, each of which drives its runs with the same drivers as here, through the executor
seam (``drive``, ``driver_of``, ``driven``, ``take_place``, ``give_back_place``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from flowloom.engine.batching import DEFAULT_WINDOW_S
from flowloom.engine.clock import SystemClock
from flowloom.engine.context import BlobAdapter
from flowloom.engine.driver import Driver, Message
from flowloom.engine.events import EventBus
from flowloom.engine.execution import Outcome, execute_attempt
from flowloom.engine.failpoints import Failpoints
from flowloom.engine.leases import LeaseKeeper
from flowloom.engine.limits import ClaimLimits, Holding
from flowloom.engine.plans import PlanCache
from flowloom.engine.ports import (
    Clock,
    NewRun,
    RunResult,
    RunStore,
    StartGuard,
    StoredRun,
    UnfinishedRun,
)
from flowloom.engine.run_state import NodeSpec, RunState, resume_time
from flowloom.engine.seams import RunDriver
from flowloom.engine.sql import RunQuota as StoreQuota
from flowloom.engine.sql import SqlRunStore
from flowloom.engine.unstorable import check_storable
from flowloom.graph import Scope
from flowloom.integrations.mcp import McpServers
from flowloom.integrations.oauth_http import HttpSecrets
from flowloom.nodes.base import NodeSettings, RunContext
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.providers.base import ProviderResolver
from flowloom.settings import Settings
from flowloom.storage.blobs import BlobStore as StorageBlobStore
from flowloom.storage.blobs import FileBlobStore, MemoryBlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus, TriggerKind
from flowloom.storage.errors import DatabaseUnavailable

__all__ = ["Engine", "RunQuota", "RunResult"]

_log = logging.getLogger("flowloom.engine")


class RunQuota(StoreQuota, Protocol):
    """Plan limits (``flowloom.billing.PlanQuota``): asked before a run is written (by the run
    store, inside its transaction), and wrapped around the providers so that every provider
    call is asked too."""

    def guard_providers(self, providers: ProviderResolver) -> ProviderResolver: ...


class Engine:
    """Runs workflows durably in this process. Create it inside the event loop that uses it.

    ``blobs`` is the storage blob store (a folder by default in the application; in memory if
    not given); nodes reach it through an async adapter. ``concurrency`` bounds the node
    attempts running at once across every run. ``lease_s`` is how long a claim on a node lasts
    before another engine may take the node back. ``batch_window_s`` is how long the commit of
    a tick that only ran pure nodes may wait to be batched with later ones (``batching.py``).
    """

    def __init__(
        self,
        store: RunStore | Database,
        registry: NodeRegistry | None = None,
        blobs: StorageBlobStore | None = None,
        *,
        node_settings: NodeSettings | None = None,
        concurrency: int = 64,
        lease_s: float = 600.0,
        bus: EventBus | None = None,
        failpoints: Failpoints | None = None,
        max_subrun_depth: int = 10,
        max_running_per_owner: int | None = None,
        key_limits: Mapping[str, int] | None = None,
        providers: ProviderResolver | None = None,
        integrations: McpServers | None = None,
        quota: RunQuota | None = None,
        http_secrets: HttpSecrets | None = None,
        clock: Clock | None = None,
        batch_window_s: float = DEFAULT_WINDOW_S,
    ) -> None:
        if isinstance(store, Database):
            self.db: Database | None = store
            store = SqlRunStore(store, quota=quota)
        else:
            self.db = getattr(store, "db", None)
        self.store: RunStore = store
        """Where runs are kept: the engine reads and writes them only through it."""
        self.clock: Clock = clock or SystemClock()
        """Where the engine reads the time (a test may hand it one it moves itself)."""
        self.quota = quota
        """Plan limits checked before every run starts and every provider call; None: none."""
        if quota is not None and providers is not None:
            providers = quota.guard_providers(providers)
        self.providers = providers
        """LLM providers handed to AI nodes; None where none are configured (they then fail
        saying so). The engine closes it."""
        self.integrations = integrations
        """The owners' registered MCP servers, handed to ``mcp.tool`` and ``ai.agent``."""
        self.http_secrets = http_secrets
        """The owners' credentials and OAuth connections as HTTP auth, for ``http.request``."""
        self.registry = registry or default_registry()
        self.plans = PlanCache(self.registry)
        """Validated plans of the workflow versions run lately (a saved version never changes)."""
        self.blobs = BlobAdapter(blobs if blobs is not None else MemoryBlobStore())
        self.node_settings = node_settings or NodeSettings()
        self.concurrency = asyncio.Semaphore(concurrency)
        self.lease_s = lease_s
        self.bus = bus or EventBus()
        self.failpoints = failpoints if failpoints is not None else Failpoints.from_env()
        self.limits = ClaimLimits(per_owner=max_running_per_owner, per_key=key_limits)
        """Per-owner and per-key limits on running attempts (see ``engine/limits.py``)."""
        self._claim_waiters: dict[str, set[RunDriver]] = {}
        self._leases = LeaseKeeper(self)
        self.max_subrun_depth = max_subrun_depth
        """How deep ``workflow.call`` sub-runs may nest (a workflow calling itself stops here)."""
        self.owner_token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """This engine's lease owner name: host, process id, and a token of its own."""
        self._drivers: dict[str, Driver] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._executes_here = type(self).execute_node is Engine.execute_node
        """Every node runs in this process (``execute_node`` is not overridden)."""
        if batch_window_s < 0:
            raise ValueError("batch_window_s must be at least 0")
        self.batch_window_s = batch_window_s
        """The longest a tick's commit may be deferred (``batching.py``); 0: never."""
        self._closed = False

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, registry: NodeRegistry | None = None, **given: Any
    ) -> Engine:
        """The engine production uses: blobs in ``settings.blob_dir`` (a FileBlobStore), the
        settings' concurrency, lease and limits; ``given`` keyword arguments win."""
        options: dict[str, Any] = {
            "node_settings": NodeSettings(allow_private_http=settings.allow_private_http),
            "concurrency": settings.engine_concurrency,
            "lease_s": settings.engine_lease_s,
            "max_subrun_depth": settings.subworkflow_max_depth,
            "max_running_per_owner": settings.max_running_nodes_per_user,
            "key_limits": settings.node_concurrency_limits,
        }
        options.update(given)
        if "providers" not in options:
            from flowloom.integrations.credentials import DatabaseCredentials
            from flowloom.providers.resolver import SettingsProviderResolver
            from flowloom.storage.vault import Vault

            credentials = DatabaseCredentials(db, Vault.from_settings(settings))
            options["providers"] = SettingsProviderResolver.from_settings(
                settings, credentials=credentials
            )
        if "integrations" not in options:
            from flowloom.integrations.mcp_store import DatabaseMcpServers
            from flowloom.storage.vault import Vault

            options["integrations"] = DatabaseMcpServers(db, Vault.from_settings(settings))
        if "http_secrets" not in options:
            from flowloom.integrations.oauth_store import DatabaseHttpSecrets
            from flowloom.storage.vault import Vault

            options["http_secrets"] = DatabaseHttpSecrets(
                db, Vault.from_settings(settings), allow_private_http=settings.allow_private_http
            )
        if "quota" not in options:
            from flowloom.billing import PlanQuota

            options["quota"] = PlanQuota(db)
        blobs = options.pop("blobs", None)
        if blobs is None:  # not `or`: an empty MemoryBlobStore is falsy (it has a length)
            blobs = FileBlobStore(settings.blob_dir)
        return cls(db, registry, blobs, **options)

    # ---- starting runs

    async def start_run(
        self,
        *,
        owner_id: str,
        workflow_id: str,
        version: int | None = None,
        scope: Scope | str = Scope.FULL,
        target_node_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        trigger_kind: TriggerKind = TriggerKind.MANUAL,
        trigger_data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout_s: float | None = None,
        breakpoints: Sequence[str] | None = None,
        use_cache: bool = True,
        parent_run_id: str | None = None,
        parent_node_id: str | None = None,
        api_key_id: str | None = None,
        parent_attempt: int | None = None,
        use_pinned: bool = False,
        guard: StartGuard | None = None,
    ) -> str:
        """Create a run and every planned node execution in one transaction, then drive it.

        Roots start READY, the rest PENDING with their count of unfinished parents. A debug
        run (``breakpoints`` given, even empty) gets a debug session. ValidationFailed (nothing
        written) if the definition cannot run as this scope; NotFound for a workflow or
        version that is not the owner's. With an ``idempotency_key`` used before by this owner,
        the run created then is returned and nothing new is written or started. InputError,
        naming the field, for inputs or trigger data holding text no database can store (a
        lone surrogate, NUL): refused before anything is written.

        A sub-run names its ``parent_run_id`` and ``parent_node_id`` (a ``workflow.call``
        node); LimitExceeded when that would nest sub-runs deeper than ``max_subrun_depth``.

        With ``use_pinned``, nodes' pinned outputs (``data.pinned``) stand in for running them:
        a FULL run covers what follows the pinned nodes (see ``flowloom.graph.build_plan``).

        ``guard`` (PostgreSQL stores only): a condition the caller read before, checked again
        by the statement that writes the run; ``StartRefused`` (nothing written) if it no
        longer holds (see ``ports.StartGuard``).
        """
        scope = Scope(scope)
        self._check_open()
        check_storable(dict(inputs or {}), "inputs")
        check_storable(dict(trigger_data or {}), "trigger_data")
        new = NewRun(
            owner_id=owner_id,
            workflow_id=workflow_id,
            version=version,
            scope=scope,
            target_node_id=target_node_id,
            inputs=dict(inputs or {}),
            trigger_kind=trigger_kind,
            trigger_data=dict(trigger_data or {}),
            idempotency_key=idempotency_key,
            timeout_s=timeout_s,
            breakpoints=breakpoints,
            use_cache=use_cache,
            parent_run_id=parent_run_id,
            parent_node_id=parent_node_id,
            api_key_id=api_key_id,
            max_depth=self.max_subrun_depth,
            parent_attempt=parent_attempt,
            use_pinned=use_pinned,
            guard=guard,
        )
        stored = await self.store.create_run(new, self.plans)
        await self.dispatch_new_run(stored.run_id, stored)
        return stored.run_id

    async def dispatch_new_run(self, run_id: str, stored: StoredRun | None = None) -> None:
        """Hand a freshly written run to whoever drives it: here, a driver in this process,
        which starts from ``stored`` (the run as just written) instead of reading it back.

        The hook distributed mode overrides (``flowloom.worker``): the API queues the run for
        a worker, a worker claims it first. An override must not await after creating a
        driver, so that a caller may still subscribe to the run's events before it starts.
        """
        self.drive(run_id, stored)

    async def execute_node(
        self, spec: NodeSpec, config: Any, ctx: RunContext, inputs: dict[str, Any], run: RunState
    ) -> Outcome:
        """One attempt of one node of ``run``: here, in this process.

        The hook distributed mode overrides to run some node types on a queue of their own
        (``flowloom.worker.node_queues``); never raises but ``CancelledError``.
        """
        return await execute_attempt(
            self.concurrency,
            spec.node,
            config,
            ctx,
            inputs,
            timeout_s=spec.timeout_s,
            outputs=spec.outputs,
        )

    def starts_uncommitted(self, spec: NodeSpec) -> bool:
        """Whether a node of ``spec`` may start before its claim, and the results it is fed,
        are committed (``batching.py``): a pure node that ``execute_node`` runs here.

        An engine that overrides ``execute_node`` may run nodes elsewhere (a worker's routed
        queues), where a node checks its claim in the database before it starts: such an
        engine starts nothing uncommitted unless it overrides this too.
        """
        return spec.pure and self._executes_here and self.batch_window_s > 0

    async def run_to_end(self, **start: Any) -> RunResult:
        """``start_run(**start)``, then ``wait`` for it to finish or wait for an answer."""
        return await self.wait(await self.start_run(**start))

    # ---- following, answering, cancelling

    async def wait(self, run_id: str) -> RunResult:
        """Return once the run is finished or WAITING with no work in flight in this engine."""
        while (driver := self._drivers.get(run_id)) is not None:
            await asyncio.shield(driver.finished)
            if driver.result is not None:
                # Committed, and a finished run never changes: no need to read it back.
                return driver.result
        return await self.store.outcome(run_id)

    async def settle(self, run_id: str) -> None:
        """``wait`` for a caller that reads the run itself afterwards (the runs API): an
        engine that learns of a run's end from elsewhere need not read its outcome."""
        await self.wait(run_id)

    async def answer(self, run_id: str, node_id: str, answer: Mapping[str, Any]) -> None:
        """Answer a WAITING node (an approval, a breakpoint): it is READY again, the run resumes.

        Returns once the answer is committed. Conflict if the node is not WAITING or the run
        is finished; NotFound for an unknown run or node. A breakpoint takes
        ``{"action": "step"}`` (pause before every next node) or ``{"action": "continue"}``
        (run on to the next breakpoint). The caller checks that the run is the user's.
        InputError, naming the field, for an answer holding text no database can store.
        """
        check_storable(dict(answer), "answer")
        await self._post(run_id, "answer", node_id=node_id, answer=dict(answer))

    async def cancel(self, run_id: str) -> None:
        """Cancel the run: nodes in flight are cancelled, unfinished nodes CANCELLED, the run
        CANCELLED, all in one commit. Cancelling a cancelled run changes nothing; Conflict for
        a run that completed or failed."""
        await self._post(run_id, "cancel")

    async def _post(self, run_id: str, kind: str, **fields: Any) -> None:
        self._check_open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.drive(run_id).post(Message(kind, future, **fields))
        await future

    # ---- resuming, closing

    async def resume_unfinished(self) -> list[str]:
        """Drive again every unfinished run nobody alive is driving; the ids taken up.

        PENDING and RUNNING runs get a driver unless one of their RUNNING nodes holds a live
        lease (unexpired, and on this machine held by a process that still exists). WAITING
        runs with a timed wait get their timer back.
        """
        self._check_open()
        now = self.clock.now()
        resumed = []
        for run in await self.store.unfinished_runs():
            if run.run_id in self._drivers or self._held_elsewhere(run, now):
                continue
            if run.status is RunStatus.WAITING:
                wake_at = _wake_time(run)
                if wake_at is not None:
                    self._wake_at(run.run_id, wake_at)
                continue
            self.drive(run.run_id)
            resumed.append(run.run_id)
        return resumed

    def _held_elsewhere(self, run: UnfinishedRun, now: datetime) -> bool:
        return any(
            node.status == NodeStatus.RUNNING
            and self._lease_is_live(node.lease_owner, node.lease_expires_at, now)
            for node in run.nodes
        )

    async def close(self) -> None:
        """Stop driving: timers off, node tasks cancelled, this engine's leases expired so that
        the next engine resumes those runs at once (their nodes run again as attempt + 1)."""
        if self._closed:
            return
        self._closed = True
        await self._leases.stop()
        if self.providers is not None:
            await self.providers.aclose()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        drivers = list(self._drivers.values())
        for driver in drivers:
            if driver.task is not None:
                driver.task.cancel()
        for driver in drivers:
            if driver.task is not None:
                with contextlib.suppress(BaseException):
                    await driver.task
        try:
            await self.store.expire_leases(owner=self.owner_token, now=self.clock.now())
        except DatabaseUnavailable as exc:
            # Closing must not hang on an outage: the leases then run out on their own, and
            # the next engine resumes those runs once they have.
            _log.warning("closing: the leases could not be released (%s)", exc)

    # ---- the executor seam: what drivers, sub-runs and a worker host use

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")

    def driver_of(self, run_id: str) -> Driver | None:
        """The driver of ``run_id`` in this engine, if it is being driven here."""
        return self._drivers.get(run_id)

    def driven(self) -> list[str]:
        """The runs this engine drives now."""
        return list(self._drivers)

    def drivers(self) -> Iterator[Driver]:
        """The drivers of this engine (a snapshot)."""
        return iter(list(self._drivers.values()))

    def drive(self, run_id: str, stored: StoredRun | None = None) -> Driver:
        """The run's driver here, started if there was none (from ``stored`` when given: the
        run as its rows have it, so the driver need not read them)."""
        driver = self._drivers.get(run_id)
        if driver is None:
            handle = self._timers.pop(run_id, None)
            if handle is not None:
                handle.cancel()
            driver = Driver(self, run_id, stored)
            self._drivers[run_id] = driver
            driver.task = asyncio.create_task(driver.run(), name=f"flowloom run {run_id}")
        return driver

    def take_place(self, driver: RunDriver, node_id: str, *, owner: str, key: str | None) -> bool:
        """Count the node against its limits, or note that ``driver`` waits for room."""
        refused = self.limits.try_take(driver.run_id, node_id, owner=owner, key=key)
        if refused is None:
            return True
        self._claim_waiters.setdefault(refused, set()).add(driver)
        return False

    def give_back_place(self, run_id: str, node_id: str) -> Holding | None:
        """Free the node's place under its limits and wake the runs that waited for it."""
        holding, freed = self.limits.give_back(run_id, node_id)
        self._wake_claim_waiters(freed)
        return holding

    def _wake_claim_waiters(self, freed: list[str]) -> None:
        for name in freed:
            for waiter in self._claim_waiters.pop(name, ()):
                waiter.wake_to_claim()

    def lease_keeper(self) -> LeaseKeeper:
        """The task renewing the leases of this engine's running nodes (started on demand)."""
        self._leases.ensure_running()
        return self._leases

    def driver_ended(self, driver: RunDriver) -> None:
        if self._drivers.get(driver.run_id) is driver:
            del self._drivers[driver.run_id]
        if self.limits.active:
            # A driver that died between claiming and dispatching must not keep its places.
            self._wake_claim_waiters(self.limits.give_back_run(driver.run_id))
        task = driver.task
        error = None
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
        if not driver.finished.done():
            if error is None:
                driver.finished.set_result(None)
            else:
                driver.finished.set_exception(error)
                # Mark it retrieved: nobody may be waiting, and the driver logged it already.
                driver.finished.exception()
        state = driver.state
        if state is not None and state.status is RunStatus.WAITING and not self._closed:
            times = [t for s in state.slots.values() if (t := resume_time(s)) is not None]
            if times:
                self._wake_at(driver.run_id, min(times))

    def _wake_at(self, run_id: str, at: datetime) -> None:
        previous = self._timers.pop(run_id, None)
        if previous is not None:
            previous.cancel()
        delay_s = max(0.0, (at - self.clock.now()).total_seconds())
        loop = asyncio.get_running_loop()
        self._timers[run_id] = loop.call_later(delay_s, self._timer_fired, run_id)

    def _timer_fired(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        if not self._closed:
            self.timer_due(run_id)

    def timer_due(self, run_id: str) -> None:
        """A WAITING run's timed wait came due: drive it here (the hook a worker overrides)."""
        self.drive(run_id)

    def _lease_is_live(self, owner: str | None, expires_at: datetime | None, now: datetime) -> bool:
        if owner is None or owner == self.owner_token:
            return False
        if expires_at is not None and expires_at <= now:
            return False
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if host != socket.gethostname() or not pid_text.isdigit():
            return True
        pid = int(pid_text)
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def load_state(self, run_id: str) -> tuple[RunState, bool]:
        """The run's state rebuilt from the store, and whether it may use the cache."""
        return self.state_of(await self.store.load_run(run_id, self.plans))

    def state_of(self, run: StoredRun) -> tuple[RunState, bool]:
        """The state of ``run`` as stored, and whether it may use the cache."""
        state = RunState(
            run_id=run.run_id,
            workflow_id=run.workflow_id,
            owner_id=run.owner_id,
            status=run.status,
            plan=run.prepared.plan,
            specs=run.prepared.specs,
            slots=run.slots,
            run_inputs=run.run_inputs,
            outside_outputs=run.outside_outputs,
            debug=run.debug,
            started_at=run.started_at,
            timeout_s=run.timeout_s,
            api_key_id=run.api_key_id,
        )
        state.cancel_requested = run.cancel_requested
        return state, run.use_cache


def _wake_time(run: UnfinishedRun) -> datetime | None:
    """When the earliest timed wait of a WAITING run comes due (an answer wakes the rest)."""
    found: datetime | None = None
    for node in run.nodes:
        wait = node.wait
        if node.status != NodeStatus.WAITING or not wait or "answer" in wait:
            continue
        raw = wait.get("resume_at")
        if isinstance(raw, str):
            at = datetime.fromisoformat(raw)
            found = at if found is None else min(found, at)
    return found
