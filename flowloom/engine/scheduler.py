"""The Engine: starts runs, drives them to the end, answers waits, cancels, resumes after a crash.

Embedded mode: one process, asyncio. Each active run has one driver task (``driver.py``) that
dispatches every ready node at once, bounded by the engine's global concurrency limit, and
group-commits each scheduler tick. The database is the truth; the drivers' state is a cache of
it, so ``resume_unfinished()`` after a crash picks every unfinished run up where its rows say
it was: nodes that SUCCEEDED, were CACHED or SKIPPED never run again, a node that was RUNNING
runs again as attempt + 1 (at-least-once; exactly-once only holds for effects inside our own
transaction, so nodes pass ``ctx.idempotency_key`` to the services they call).

Besides the global limit, claims obey per-owner and per-key limits (``limits.py``: a refused
node stays READY until a place frees). Running nodes renew their leases (``leases.py``); one
that lost its lease is abandoned unwritten. ``workflow.call`` nodes run child runs through
``subruns.py``; string config fields are rendered as templates at claim (``templating.py``);
blob outputs get artifact rows (``artifacts.py``). ``Engine.from_settings`` wires all of it
from the settings, with blobs in ``settings.blob_dir``.

Distributed mode (``flowloom.worker``) reuses this class unchanged but for one hook,
``_drive_new_run``: the API process queues new runs for ``flowloom worker`` processes, each of
which drives its runs with the same drivers as here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.engine.context import BlobAdapter
from flowloom.engine.driver import Driver, Message
from flowloom.engine.events import EventBus
from flowloom.engine.failpoints import Failpoints
from flowloom.engine.leases import LeaseKeeper
from flowloom.engine.limits import ClaimLimits, Holding
from flowloom.engine.retry import node_timeout_s, retry_policy
from flowloom.engine.run_state import NodeSpec, RunState, resume_time
from flowloom.engine.store import latest_success_outputs, load_debug, load_slots
from flowloom.engine.templating import templated_fields
from flowloom.engine.unstorable import check_storable
from flowloom.exceptions import LimitExceeded, NotFound, Problem, ValidationFailed
from flowloom.graph import Plan, Scope, build_plan, parse_definition, validate
from flowloom.ids import PREFIXES, new_id
from flowloom.integrations.mcp import McpServers
from flowloom.integrations.oauth_http import HttpSecrets
from flowloom.nodes.base import NodeSettings
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.providers.base import ProviderResolver
from flowloom.settings import Settings
from flowloom.storage.blobs import BlobStore as StorageBlobStore
from flowloom.storage.blobs import FileBlobStore, MemoryBlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunScope, RunStatus, TriggerKind
from flowloom.storage.errors import DatabaseUnavailable
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun, WorkflowVersion
from flowloom.storage.tables.base import utcnow

__all__ = ["Engine", "RunQuota", "RunResult"]

_log = logging.getLogger("flowloom.engine")
_PREPARED_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class RunResult:
    """Where a run stands: finished (COMPLETED, FAILED, CANCELLED) or WAITING for an answer."""

    run_id: str
    status: RunStatus
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    plan: Plan
    specs: dict[str, NodeSpec]


class RunQuota(Protocol):
    """Plan limits (``flowloom.billing.PlanQuota``): asked before a run is written, and
    wrapped around the providers so that every provider call is asked too."""

    async def before_run(
        self,
        session: AsyncSession,
        *,
        owner_id: str,
        idempotency_key: str | None,
        **future_kwargs: Any,
    ) -> Mapping[str, Any] | None:
        """Raise LimitExceeded to refuse the run (inside its transaction, before anything is
        written); may return entries for the run's trigger data."""
        ...

    def guard_providers(self, providers: ProviderResolver) -> ProviderResolver: ...


class Engine:
    """Runs workflows durably in this process. Create it inside the event loop that uses it.

    ``blobs`` is the storage blob store (a folder by default in the application; in memory if
    not given); nodes reach it through an async adapter. ``concurrency`` bounds the node
    attempts running at once across every run. ``lease_s`` is how long a claim on a node lasts
    before another engine may take the node back.
    """

    def __init__(
        self,
        db: Database,
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
    ) -> None:
        self.db = db
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
        self.blobs = BlobAdapter(blobs if blobs is not None else MemoryBlobStore())
        self.node_settings = node_settings or NodeSettings()
        self.concurrency = asyncio.Semaphore(concurrency)
        self.lease_s = lease_s
        self.bus = bus or EventBus()
        self.failpoints = failpoints if failpoints is not None else Failpoints.from_env()
        self.limits = ClaimLimits(per_owner=max_running_per_owner, per_key=key_limits)
        """Per-owner and per-key limits on running attempts (see ``engine/limits.py``)."""
        self._claim_waiters: dict[str, set[Driver]] = {}
        self._leases = LeaseKeeper(self)
        self.max_subrun_depth = max_subrun_depth
        """How deep ``workflow.call`` sub-runs may nest (a workflow calling itself stops here)."""
        self.owner_token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """This engine's lease owner name: host, process id, and a token of its own."""
        self._drivers: dict[str, Driver] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._prepared: OrderedDict[tuple[Any, ...], _Prepared] = OrderedDict()
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
        """
        scope = Scope(scope)
        self._check_open()
        check_storable(dict(inputs or {}), "inputs")
        check_storable(dict(trigger_data or {}), "trigger_data")
        data = dict(trigger_data or {})
        if not use_cache:
            data["use_cache"] = False
        async with self.db.write() as session:
            if parent_run_id is not None:
                data["depth"] = await self._subrun_depth(session, parent_run_id, workflow_id)
            workflows = WorkflowRepo(session, owner_id=owner_id)
            if version is None:
                version = await workflows.current_version(workflow_id=workflow_id)
            # A version prepared before needs no definition read (nor its JSON parsed); the
            # run's insert below checks that the workflow and version are the owner's.
            prepared = self._cached_plan(workflow_id, version, scope, target_node_id)
            if prepared is None:
                saved = await workflows.get_version(workflow_id=workflow_id, version=version)
                prepared = self._prepare(
                    workflow_id, version, saved.definition, scope, target_node_id
                )
            if breakpoints is not None:
                unknown = [node for node in breakpoints if node not in prepared.specs]
                if unknown:
                    raise ValidationFailed(
                        [Problem("breakpoint on a node not in the run", node_id=n) for n in unknown]
                    )
            if self.quota is not None:
                data.update(
                    await self.quota.before_run(
                        session,
                        owner_id=owner_id,
                        idempotency_key=idempotency_key,
                        workflow_id=workflow_id,
                        parent_run_id=parent_run_id,
                        trigger_kind=trigger_kind,
                    )
                    or {}
                )
            runs = RunRepo(session, owner_id=owner_id)
            run = await runs.create(
                workflow_id=workflow_id,
                workflow_version=version,
                scope=RunScope(scope.value),
                target_node_id=target_node_id if scope is not Scope.FULL else None,
                trigger_kind=trigger_kind,
                trigger_data=data or None,
                inputs=dict(inputs or {}),
                idempotency_key=idempotency_key,
                timeout_s=timeout_s,
                parent_run_id=parent_run_id,
                parent_node_id=parent_node_id,
                api_key_id=api_key_id,
            )
            if idempotency_key is not None:
                existing = await session.scalar(
                    select(func.count()).where(NodeExecution.run_id == run.id)
                )
                if existing:
                    return run.id
            counts = prepared.plan.unfinished_parents()
            await runs.add_node_executions(
                run_id=run.id,
                nodes=[
                    (node, prepared.specs[node].definition.type, counts[node])
                    for node in prepared.plan.order
                ],
            )
            if breakpoints is not None:
                session.add(
                    DebugSession(
                        id=new_id(PREFIXES["debug_sessions"]),
                        run_id=run.id,
                        user_id=owner_id,
                        breakpoints=list(breakpoints),
                        mode="continue",
                    )
                )
            run_id = run.id
        await self._drive_new_run(run_id)
        return run_id

    async def _drive_new_run(self, run_id: str) -> None:
        """Hand a freshly written run to whoever drives it: here, a driver in this process.

        Distributed mode overrides this (``flowloom.worker``): the API queues the run for a
        worker, a worker claims it first. An override must not await after creating a
        driver, so that a caller may still subscribe to the run's events before it starts.
        """
        self._ensure_driver(run_id)

    async def _subrun_depth(self, session: Any, parent_run_id: str, workflow_id: str) -> int:
        """The depth a child of ``parent_run_id`` has; LimitExceeded past the limit."""
        parent_data = await session.scalar(
            select(WorkflowRun.trigger_data).where(WorkflowRun.id == parent_run_id)
        )
        depth = int((parent_data or {}).get("depth", 0)) + 1
        if depth > self.max_subrun_depth:
            raise LimitExceeded(
                f"sub-runs would nest {depth} deep, over the limit of {self.max_subrun_depth}"
                f" (does workflow {workflow_id!r} call itself?)",
                limit="max_subrun_depth",
            )
        return depth

    async def run_to_end(self, **start: Any) -> RunResult:
        """``start_run(**start)``, then ``wait`` for it to finish or wait for an answer."""
        return await self.wait(await self.start_run(**start))

    # ---- following, answering, cancelling

    async def wait(self, run_id: str) -> RunResult:
        """Return once the run is finished or WAITING with no work in flight in this engine."""
        while (driver := self._drivers.get(run_id)) is not None:
            await asyncio.shield(driver.finished)
        async with self.db.read() as session:
            run = await session.get(WorkflowRun, run_id)
            if run is None:
                raise NotFound("run", run_id)
            return RunResult(
                run_id=run.id,
                status=RunStatus(run.status),
                outputs=run.outputs,
                error=run.error,
                duration_ms=run.duration_ms,
            )

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
        self._ensure_driver(run_id).post(Message(kind, future, **fields))
        await future

    # ---- resuming, closing

    async def resume_unfinished(self) -> list[str]:
        """Drive again every unfinished run nobody alive is driving; the ids taken up.

        PENDING and RUNNING runs get a driver unless one of their RUNNING nodes holds a live
        lease (unexpired, and on this machine held by a process that still exists). WAITING
        runs with a timed wait get their timer back.
        """
        self._check_open()
        now = utcnow()
        async with self.db.read() as session:
            runs = (
                await session.execute(
                    select(WorkflowRun.id, WorkflowRun.status).where(
                        WorkflowRun.status.in_(
                            [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING]
                        )
                    )
                )
            ).all()
            active = [run_id for run_id, _ in runs]
            nodes = (
                (
                    await session.execute(
                        select(
                            NodeExecution.run_id,
                            NodeExecution.status,
                            NodeExecution.lease_owner,
                            NodeExecution.lease_expires_at,
                            NodeExecution.wait,
                        ).where(
                            NodeExecution.run_id.in_(active),
                            NodeExecution.status.in_([NodeStatus.RUNNING, NodeStatus.WAITING]),
                        )
                    )
                ).all()
                if active
                else []
            )
        held: set[str] = set()
        wake_at: dict[str, datetime] = {}
        for run_id, status, owner, expires_at, wait in nodes:
            if status == NodeStatus.RUNNING and self._lease_is_live(owner, expires_at, now):
                held.add(run_id)
            elif status == NodeStatus.WAITING and wait:
                raw = wait.get("resume_at") if "answer" not in wait else None
                if isinstance(raw, str):
                    at = datetime.fromisoformat(raw)
                    wake_at[run_id] = min(at, wake_at.get(run_id, at))
        resumed = []
        for run_id, status in runs:
            if run_id in self._drivers or run_id in held:
                continue
            if status == RunStatus.WAITING:
                if run_id in wake_at:
                    self._wake_at(run_id, wake_at[run_id])
                continue
            self._ensure_driver(run_id)
            resumed.append(run_id)
        return resumed

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
            async with self.db.write() as session:
                await session.execute(
                    update(NodeExecution)
                    .where(
                        NodeExecution.status == NodeStatus.RUNNING,
                        NodeExecution.lease_owner == self.owner_token,
                    )
                    .values(lease_expires_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        except DatabaseUnavailable as exc:
            # Closing must not hang on an outage: the leases then run out on their own, and
            # the next engine resumes those runs once they have.
            _log.warning("closing: the leases could not be released (%s)", exc)

    # ---- internals shared with the drivers

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")

    def _ensure_driver(self, run_id: str) -> Driver:
        driver = self._drivers.get(run_id)
        if driver is None:
            handle = self._timers.pop(run_id, None)
            if handle is not None:
                handle.cancel()
            driver = Driver(self, run_id)
            self._drivers[run_id] = driver
            driver.task = asyncio.create_task(driver.run(), name=f"flowloom run {run_id}")
        return driver

    def _take_place(self, driver: Driver, node_id: str, *, owner: str, key: str | None) -> bool:
        """Count the node against its limits, or note that ``driver`` waits for room."""
        refused = self.limits.try_take(driver.run_id, node_id, owner=owner, key=key)
        if refused is None:
            return True
        self._claim_waiters.setdefault(refused, set()).add(driver)
        return False

    def _give_back_place(self, run_id: str, node_id: str) -> Holding | None:
        """Free the node's place under its limits and wake the runs that waited for it."""
        holding, freed = self.limits.give_back(run_id, node_id)
        self._wake_claim_waiters(freed)
        return holding

    def _wake_claim_waiters(self, freed: list[str]) -> None:
        for name in freed:
            for waiter in self._claim_waiters.pop(name, ()):
                waiter.wake_to_claim()

    def _driver_ended(self, driver: Driver) -> None:
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
        delay_s = max(0.0, (at - utcnow()).total_seconds())
        loop = asyncio.get_running_loop()
        self._timers[run_id] = loop.call_later(delay_s, self._timer_fired, run_id)

    def _timer_fired(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        if not self._closed:
            self._ensure_driver(run_id)

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

    def _cached_plan(
        self, workflow_id: str, version: int, scope: Scope, target: str | None
    ) -> _Prepared | None:
        found = self._prepared.get((workflow_id, version, scope, target))
        if found is not None:
            self._prepared.move_to_end((workflow_id, version, scope, target))
        return found

    def _prepare(
        self,
        workflow_id: str,
        version: int,
        raw: dict[str, Any],
        scope: Scope,
        target: str | None,
    ) -> _Prepared:
        """The validated plan and node specs of one workflow version in one scope (cached:
        a saved version never changes)."""
        key = (workflow_id, version, scope, target)
        found = self._prepared.get(key)
        if found is not None:
            self._prepared.move_to_end(key)
            return found
        definition = parse_definition(raw)
        problems = validate(definition, self.registry)
        if problems:
            raise ValidationFailed(problems)
        plan = build_plan(definition, scope, target)
        specs: dict[str, NodeSpec] = {}
        nodes = definition.node_map()
        for node_id in plan.order:
            node = nodes[node_id]
            impl = self.registry.get(node.type)
            config = impl.parse_config(node.data.config)
            specs[node_id] = NodeSpec(
                definition=node,
                node=impl,
                config=config,
                inputs=tuple(impl.inputs(config)),
                outputs=frozenset(port.name for port in impl.outputs(config)),
                retry=retry_policy(node),
                timeout_s=node_timeout_s(node),
                deterministic=impl.is_deterministic(config),
                templated=templated_fields(impl, node.data.config),
            )
        prepared = _Prepared(plan, specs)
        self._prepared[key] = prepared
        if len(self._prepared) > _PREPARED_CACHE_SIZE:
            self._prepared.popitem(last=False)
        return prepared

    async def _load_state(self, run_id: str) -> tuple[RunState, bool]:
        """The run's state rebuilt from its rows, and whether it may use the cache."""
        async with self.db.read() as session:
            run = await session.get(WorkflowRun, run_id)
            if run is None:
                raise NotFound("run", run_id)
            scope = Scope(run.scope)
            key = (run.workflow_id, run.workflow_version, scope, run.target_node_id)
            prepared = self._prepared.get(key)
            if prepared is None:
                definition = await session.scalar(
                    select(WorkflowVersion.definition).where(
                        WorkflowVersion.workflow_id == run.workflow_id,
                        WorkflowVersion.version == run.workflow_version,
                    )
                )
                if definition is None:
                    raise NotFound("workflow version", f"{run.workflow_id}@{run.workflow_version}")
                prepared = self._prepare(
                    run.workflow_id, run.workflow_version, definition, scope, run.target_node_id
                )
            slots = await load_slots(session, run_id)
            debug = await load_debug(session, run_id)
            outside: dict[str, dict[str, Any] | None] = {}
            if prepared.plan.outside_parents:
                for parents in prepared.plan.outside_parents.values():
                    for parent in parents:
                        outside[parent] = await latest_success_outputs(
                            session, workflow_id=run.workflow_id, node_id=parent
                        )
        state = RunState(
            run_id=run.id,
            workflow_id=run.workflow_id,
            owner_id=run.user_id,
            status=RunStatus(run.status),
            plan=prepared.plan,
            specs=prepared.specs,
            slots=slots,
            run_inputs=dict(run.inputs or {}),
            outside_outputs=outside,
            debug=debug,
            started_at=run.started_at,
            timeout_s=run.timeout_s,
            api_key_id=run.api_key_id,
        )
        use_cache = (run.trigger_data or {}).get("use_cache", True) is not False
        return state, use_cache
