"""The engine's seams: what it needs from the outside world, as narrow protocols.

- :class:`RunStore` is the one persistence boundary. The scheduler, the drivers, the lease
  keeper and sub-runs reach runs and node executions only through it. ``engine/sql/`` holds
  the implementation for SQLite and PostgreSQL; ``engine/memory_store.py`` one in memory
  (unit tests, and the engine end to end without any database).
- :class:`SharedRunStore` adds what processes sharing one database tell each other through it
  (distributed mode: runs needing a driver, answers and cancellations).
- :class:`Clock` is where the engine reads the time, so that tests can move it.
- :class:`PlanSource` is how a store turns a saved definition into a plan while it creates or
  loads a run (the engine's plan cache), so that a store never parses workflows itself.

The records passed across (``NewRun``, ``StoredRun``, ``Tick``, ...) are plain dataclasses of
the engine's own types; nothing here names a table or a session.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from flowloom.engine.run_state import DebugState, NodeSlot, NodeSpec
from flowloom.graph import Plan, Scope
from flowloom.nodes.base import MemoryStore
from flowloom.providers.usage import UsageSink
from flowloom.storage.enums import RunStatus, TriggerKind

__all__ = [
    "Clock",
    "NewRun",
    "PlanSource",
    "Prepared",
    "ProbingStore",
    "RunResult",
    "RunStore",
    "SharedRunStore",
    "Signals",
    "StartGuard",
    "StartRefused",
    "StoredRun",
    "Tick",
    "UnfinishedNode",
    "UnfinishedRun",
]


class Clock(Protocol):
    """The time, timezone-aware UTC."""

    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """One workflow version's validated plan in one scope, and its nodes' specs."""

    plan: Plan
    specs: dict[str, NodeSpec]
    pins: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    """With pinned data: the pinned outputs of the nodes outside the plan that feed it."""


class PlanSource(Protocol):
    """The engine's plan cache, as a store sees it while creating or loading a run."""

    def cached(
        self,
        workflow_id: str,
        version: int,
        scope: Scope,
        target: str | None,
        *,
        use_pinned: bool = False,
    ) -> Prepared | None:
        """The plan prepared before, if any (then no definition needs reading)."""
        ...

    def prepare(
        self,
        workflow_id: str,
        version: int,
        definition: dict[str, Any],
        scope: Scope,
        target: str | None,
        *,
        use_pinned: bool = False,
    ) -> Prepared:
        """Validate ``definition`` and plan it (with its pinned outputs standing in for the
        pinned nodes, when ``use_pinned``); ValidationFailed if it cannot run so."""
        ...


class StartGuard(Protocol):
    """A condition the caller of ``Engine.start_run`` read before it, checked again when the
    run is written (the webhook route: the hook as it saw it, still the same). On PostgreSQL
    the statement that writes the run reads it too and writes only if it holds: the caller's
    look-up and the start are one round trip. A store that writes the run otherwise checks it
    alone first. Either way ``StartRefused`` (nothing written) when it does not hold."""

    @property
    def args(self) -> Sequence[Any]:
        """The values of ``pg_sql``'s parameters."""
        ...

    def pg_sql(self, first: int) -> str:
        """A SELECT of exactly one row, its parameters numbered from ``$first``; its first
        column, named ``ok``, is true when the run may be written."""
        ...


class StartRefused(Exception):
    """A ``StartGuard`` did not hold: nothing was written. ``row`` is what its SELECT read
    (its first column false), for the caller to answer from without reading again."""

    def __init__(self, row: Sequence[Any]) -> None:
        super().__init__("the run's start guard did not hold")
        self.row = tuple(row)


@dataclass(slots=True)
class NewRun:
    """Everything a run is created with (see ``Engine.start_run``)."""

    owner_id: str
    workflow_id: str
    version: int | None
    """None: the workflow's current version."""
    scope: Scope
    target_node_id: str | None
    inputs: dict[str, Any]
    trigger_kind: TriggerKind
    trigger_data: dict[str, Any]
    idempotency_key: str | None
    timeout_s: float | None
    breakpoints: Sequence[str] | None
    use_cache: bool
    parent_run_id: str | None
    parent_node_id: str | None
    api_key_id: str | None
    max_depth: int
    """How deep sub-runs may nest; LimitExceeded past it."""
    parent_attempt: int | None = None
    """For a sub-run: the attempt of its parent node that starts it."""
    use_pinned: bool = False
    """Pinned outputs stand in for running their nodes (see ``build_plan``)."""
    guard: StartGuard | None = None
    """Checked when the run is written (``StartGuard``); PostgreSQL stores only."""


@dataclass(slots=True)
class StoredRun:
    """A run as its rows have it: what a driver rebuilds its state from."""

    run_id: str
    workflow_id: str
    owner_id: str
    status: RunStatus
    prepared: Prepared
    slots: dict[str, NodeSlot]
    run_inputs: dict[str, Any]
    outside_outputs: dict[str, dict[str, Any] | None]
    """For a NODE or UPSTREAM run: the newest outputs of each parent outside the plan."""
    debug: DebugState | None
    started_at: datetime | None
    timeout_s: float | None
    api_key_id: str | None
    use_cache: bool
    use_pinned: bool = False
    cancel_requested: bool = False
    """Someone asked (through the store) for the run's cancellation: its driver applies it."""

    @classmethod
    def of(
        cls,
        run: Any,
        *,
        owner_id: str,
        prepared: Prepared,
        slots: dict[str, NodeSlot],
        run_inputs: dict[str, Any],
        outside_outputs: dict[str, dict[str, Any] | None],
        debug: DebugState | None,
    ) -> StoredRun:
        """A stored run from a run record (a row, or a store's own record) with its settings."""
        return cls(
            run_id=run.id,
            workflow_id=run.workflow_id,
            owner_id=owner_id,
            status=RunStatus(run.status),
            prepared=prepared,
            slots=slots,
            run_inputs=run_inputs,
            outside_outputs=outside_outputs,
            debug=debug,
            started_at=run.started_at,
            timeout_s=run.timeout_s,
            api_key_id=run.api_key_id,
            use_cache=run.use_cache,
            use_pinned=run.use_pinned,
            cancel_requested=run.cancel_requested,
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """Where a run stands, as stored."""

    run_id: str
    status: RunStatus
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class UnfinishedNode:
    """A RUNNING or WAITING node of an unfinished run (what resuming needs to know)."""

    status: str
    lease_owner: str | None
    lease_expires_at: datetime | None
    wait: dict[str, Any] | None


@dataclass(slots=True)
class UnfinishedRun:
    run_id: str
    status: RunStatus
    nodes: list[UnfinishedNode] = field(default_factory=list)


@dataclass(slots=True)
class Tick:
    """What one scheduler tick commits."""

    run_id: str
    owner: str
    """This engine's lease owner: the fence for ``fenced``."""
    now: datetime
    slots: list[NodeSlot]
    """Every changed node row, written whole."""
    fenced: set[str]
    """Row ids (all among ``slots``) written only while RUNNING under ``owner``'s lease."""
    run_values: dict[str, Any]
    """Columns of the run row to change (empty: unchanged); a finished run never changes."""
    debug: DebugState | None = None
    """A debug session to write back, with ``debug_status``."""
    debug_status: str = "active"
    durable: bool = True
    """Whether the commit must be on disk before it returns. A tick that leaves the run
    RUNNING and answers no caller need not be: should the database server crash before a
    later commit flushed it, the run resumes from the ticks before it (nodes run at least
    once, as after any crash). PostgreSQL only (``synchronous_commit``); SQLite's
    ``synchronous=NORMAL`` treats every commit so already."""


class ProbingStore(Protocol):
    """A ``RunStore`` whose tick commit can carry the cache probes of the nodes the tick
    claims (PostgreSQL: one round trip for both; ``engine/sql/ticks.py``)."""

    def folds_probes(self) -> bool:
        """Whether ``commit_probing`` is worth using now (look-ups mostly miss lately)."""
        ...

    async def commit_probing(
        self, tick: Tick, signatures: Iterable[str]
    ) -> dict[str, tuple[str, dict[str, Any]]] | None:
        """``commit``, and ``find_cached(signatures)`` (without ``near``) read on the same
        snapshot: its hits, or None (nothing written) where ``commit`` answers False. A node
        the tick claimed whose signature hit was written RUNNING under the tick's lease: the
        caller serves it from the cache in its next tick (``Driver``)."""
        ...


@dataclass(frozen=True, slots=True)
class Signals:
    """What the API asked of runs a worker drives, read from the shared store."""

    cancelled: Sequence[str]
    """Unfinished runs whose cancellation was asked for."""
    answers: Sequence[tuple[str, str, dict[str, Any]]]
    """(run id, node id, answer) of nodes answered and READY again."""


class RunStore(Protocol):
    """Runs and their node executions, wherever they are kept.

    Every method is one short transaction (or none). Outages surface as
    ``flowloom.storage.errors.DatabaseUnavailable`` (the engine waits them out); every write
    may be retried after one.
    """

    # ---- starting and reading runs

    async def create_run(self, new: NewRun, plans: PlanSource) -> StoredRun:
        """Create the run and one row per planned node (roots READY, the rest PENDING), and a
        debug session when ``new.breakpoints`` is not None, in one transaction; the run as
        stored (what ``load_run`` gives back, so that its first driver need not read it).

        With an idempotency key this owner used before, the run made then, as it stands now
        (nothing written).
        NotFound for a workflow or version that is not the owner's; ValidationFailed (from
        ``plans``) for a definition that cannot run; LimitExceeded past ``max_depth`` or the
        owner's plan.
        """
        ...

    async def load_run(self, run_id: str, plans: PlanSource) -> StoredRun:
        """The run's rows, for a driver; NotFound if there is no such run."""
        ...

    async def outcome(self, run_id: str) -> RunResult:
        """The run's status and result; NotFound if there is no such run."""
        ...

    async def unfinished_runs(self) -> list[UnfinishedRun]:
        """Every PENDING, RUNNING or WAITING run, with its RUNNING and WAITING nodes."""
        ...

    # ---- the scheduler's tick

    async def commit(self, tick: Tick) -> bool:
        """Write the tick in one transaction; False (nothing written) if a fenced row is no
        longer RUNNING under ``tick.owner``'s lease."""
        ...

    async def find_cached(
        self, signatures: Iterable[str], *, near: bool = False
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """For each signature with an earlier success: the newest such row's id and outputs.

        With ``near``, the answer may hold more signatures than were asked for: those of
        every other success of the runs the hits come from, each with its own newest
        success. A re-run finds its next nodes' results there, so a run served from the
        cache costs one look-up rather than one per node. A store whose look-ups cost next
        to nothing (in memory) may answer only what was asked.
        """
        ...

    async def fail_run(
        self,
        *,
        run_id: str,
        error: dict[str, Any],
        now: datetime,
        started_at: datetime | None = None,
        culprits: Collection[str] = (),
    ) -> bool:
        """Fail the run with ``error``: ``culprits`` (row ids) FAILED, its other unfinished
        nodes CANCELLED, its debug session finished; whether the run row changed."""
        ...

    # ---- leases

    async def renew_lease(self, *, row_id: str, attempt: int, owner: str, until: datetime) -> bool:
        """Extend the lease of ``row_id`` to ``until`` if ``owner``'s ``attempt`` still holds
        it (RUNNING); whether it did."""
        ...

    async def expire_leases(self, *, owner: str, now: datetime) -> None:
        """End every lease ``owner`` holds now, so that another engine resumes at once."""
        ...

    # ---- sub-runs

    async def workflow_named(self, *, owner_id: str, name: str) -> str | None:
        """The id of the owner's workflow called ``name``, if there is one."""
        ...

    async def active_children(self, *, run_id: str, node_id: str) -> list[tuple[str, Any]]:
        """Unfinished sub-runs started by ``node_id`` of ``run_id``: (child id, the parent
        attempt that started it)."""
        ...

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
        """Add artifact rows for the blobs ``references`` names (sha256 -> reference) that the
        owner has already or ``stored`` holds; how many were added. Idempotent."""
        ...

    async def owns_blob(self, *, owner_id: str, sha256: str) -> bool:
        """Whether one of the owner's artifacts refers to ``sha256``."""
        ...

    def memory(self, *, owner_id: str, workflow_id: str) -> MemoryStore:
        """One workflow's memory, as its nodes see it."""
        ...

    def usage(self, *, owner_id: str, api_key_id: str | None, run_id: str) -> UsageSink | None:
        """Where a run's AI nodes record what they used (None: not recorded)."""
        ...


@runtime_checkable
class SharedRunStore(RunStore, Protocol):
    """A ``RunStore`` that several processes share (one database): the API writes answers and
    cancellations to it, workers read them back and find the runs that need a driver."""

    async def runs_needing_a_driver(
        self, *, now: datetime, run_ids: Collection[str] | None = None, older_than_s: float = 0.0
    ) -> list[str]:
        """Unfinished runs (of ``run_ids``, or all created over ``older_than_s`` ago) that a
        driver has work in: PENDING or RUNNING, or WAITING with a READY node, a due timer, or a
        cancellation asked for."""
        ...

    async def signals(self, run_ids: Collection[str]) -> Signals:
        """Cancellations asked for and answers given to the runs ``run_ids``."""
        ...

    async def answer_waiting(
        self, run_id: str, node_id: str, answer: Mapping[str, Any], *, now: datetime
    ) -> None:
        """Answer a WAITING node in the store (READY again, the answer in its wait). NotFound
        for an unknown run or node, Conflict for a finished run or a node not WAITING."""
        ...

    async def request_cancel(self, run_id: str) -> bool:
        """Ask for the run's cancellation; False if it is CANCELLED already. NotFound, or
        Conflict for a run that completed or failed."""
        ...

    async def settled(self, run_id: str, *, finished_only: bool) -> tuple[RunResult, bool]:
        """The run's outcome, and whether it finished (or, unless ``finished_only``, waits
        with nothing for a driver to do)."""
        ...

    async def attempt_wanted(self, row_id: str, attempt: int) -> bool:
        """Whether node execution ``row_id`` is still RUNNING as ``attempt``: a driver still
        waits for that attempt's outcome."""
        ...
