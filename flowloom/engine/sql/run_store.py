"""``SqlRunStore``: the engine's ``RunStore`` on SQLite and PostgreSQL.

The tick's hot path is ``TickStore`` (``ticks.py``: raw statements compiled by SQLAlchemy, one
round trip per tick); everything else here is ordinary SQLAlchemy on the ``Database``'s one
async engine, each method its own short transaction.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import (
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.engine.plans import BIG_PLAN, check_breakpoints, collector_paused
from flowloom.engine.ports import (
    NewRun,
    PlanSource,
    Prepared,
    RunResult,
    Signals,
    StartRefused,
    StoredRun,
    Tick,
    UnfinishedNode,
    UnfinishedRun,
)
from flowloom.engine.run_state import DebugState, NodeSlot, NodeSpec
from flowloom.engine.sql import artifacts, failure, signals
from flowloom.engine.sql.memory import MemoryAdapter
from flowloom.engine.sql.run_loads import read_run, read_runs
from flowloom.engine.sql.ticks import (
    TickStore,
    debug_state,
    latest_success_outputs,
)
from flowloom.exceptions import FlowloomError, LimitExceeded, NotFound
from flowloom.graph import Scope
from flowloom.graph.plan import Plan
from flowloom.ids import PREFIXES, new_id
from flowloom.integrations.usage import DatabaseUsageSink
from flowloom.nodes.base import MemoryStore
from flowloom.providers.usage import UsageSink
from flowloom.storage.database import Database
from flowloom.storage.enums import ACTIVE_RUN_STATUSES, NodeStatus, RunScope, RunStatus
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.repos.runs import (
    PG_LOOKUPS_WIDTH,
    PlannedNodes,
    RunLookups,
    RunRepo,
    checked_run_values,
    insert_run,
    new_run_values,
    node_rows,
    pg_checked_start_sql,
    pg_insert_run,
    pg_run_lookups_sql,
    planned_nodes,
    run_row,
)
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun, WorkflowVersion

__all__ = ["QuotaRead", "RunQuota", "SqlRunStore"]


_NODES = cast(Table, NodeExecution.__table__)
_DEBUG_SESSIONS = cast(Table, DebugSession.__table__)


class QuotaRead(Protocol):
    """``RunQuota.unlocked_read``: the quota's reads carried by a run start's own look-up
    statement on PostgreSQL (one round trip for both), then what they found."""

    @property
    def args(self) -> Sequence[Any]:
        """The values of ``pg_sql``'s parameters."""
        ...

    def pg_sql(self, first: int) -> str:
        """A SELECT of exactly one row, its parameters numbered from ``$first``; its first
        column is true when the run is allowed with nothing more to read or write (``allows``
        would answer True at once), so that the start may write in the same statement."""
        ...

    async def allows(self, values: Sequence[Any]) -> bool:
        """Whether the run goes on without the lock (``RunQuota.unlocked_read`` says how it
        answers), given the values that row read."""
        ...


class RunQuota(Protocol):
    """Plan limits (``flowloom.billing.PlanQuota``), asked on the run's write transaction (its
    connection) before anything is written."""

    def before_run(
        self,
        conn: Connection,
        *,
        owner_id: str,
        idempotency_key: str | None,
        **future_kwargs: Any,
    ) -> Mapping[str, Any] | None:
        """Raise LimitExceeded to refuse the run; may return entries for its trigger data."""
        ...

    def unlocked_read(self, *, owner_id: str, **future_kwargs: Any) -> QuotaRead:
        """For a run without an idempotency key on PostgreSQL: the checks of ``before_run``
        that need no lock, as a read carried by the run start's look-up. Its ``allows``
        raises LimitExceeded to refuse the run; True allows it with nothing written and
        nothing more to ask; False has ``before_run`` asked in the run's write transaction."""
        ...


_SEEN_VERSIONS = 4096
"""At most this many workflows' versions are kept (``SqlRunStore._seen_version``)."""


async def _pg_write_run(pg: Any, sql: str, args: Sequence[Any], *, fetch: bool = False) -> Any:
    """Run a statement that writes a run on asyncpg (its row, when ``fetch``); integrity
    errors as ``translate_integrity_error`` makes them."""
    try:
        if fetch:
            return await pg.fetchrow(sql, *args)
        return await pg.execute(sql, *args)
    except Exception as exc:
        # asyncpg's integrity errors: SQLSTATE class 23.
        if str(getattr(exc, "sqlstate", "")).startswith("23"):
            raise translate_integrity_error(exc, what="run") from None
        raise


class _PlanNeeded(Exception):
    """The plan of ``version`` is not made yet: the start's transaction rolls back (nothing
    written), the plan is made outside it, and the start goes again."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


class SqlRunStore:
    """Runs on one ``Database``; ``quota`` (optional) is asked before every run is created."""

    def __init__(self, db: Database, *, quota: RunQuota | None = None) -> None:
        self.db = db
        self.quota = quota
        self._ticks = TickStore(db)
        self._versions: dict[str, int] = {}
        """The current version of workflows whose runs started here, as last read."""

    # ---- starting and reading runs

    async def create_run(self, new: NewRun, plans: PlanSource) -> StoredRun:
        if new.guard is not None and (
            self.db.is_sqlite or new.idempotency_key is not None or new.breakpoints is not None
        ):
            # Only the start in autocommit on PostgreSQL carries it: checked alone before.
            await self._check_guard(new)
        if new.idempotency_key is None:
            return await self._start(new, plans)
        found: str | None = None
        async with self.db.write() as session:
            run = await RunRepo(session, owner_id=new.owner_id).create(
                idempotency_key=new.idempotency_key,
                **await session.run_sync(lambda sync: self._checked(sync.connection(), new)),
            )
            existing = await session.scalar(
                select(func.count()).where(NodeExecution.run_id == run.id)
            )
            if existing:
                found = run.id
            else:
                prepared = await self._prepared(new, plans, run.workflow_version, session)
                big = len(prepared.plan.order) >= BIG_PLAN
                with collector_paused() if big else contextlib.nullcontext():
                    row_ids = await RunRepo(session, owner_id=new.owner_id).insert_node_executions(
                        run_id=run.id, nodes=_node_specs(prepared)
                    )
                    values = {name: getattr(run, name) for name in _STORED_COLUMNS}
                    created = await session.run_sync(
                        lambda sync: _stored_on(sync.connection(), new, prepared, values, row_ids)
                    )
        if found is not None:
            # Written before, for the same key: as it stands now.
            return await self.load_run(found, plans)
        return created

    def _checked(self, conn: Connection, new: NewRun) -> dict[str, Any]:
        """The depth and the plan limits of ``new`` (on its write transaction, before anything
        is written); the fields of its run row."""
        depth = 0
        if new.parent_run_id is not None:
            depth = _subrun_depth(conn, new)
        data = dict(new.trigger_data)
        if self.quota is not None:
            # Before the run's row: the month's count of runs must not include it.
            data.update(
                self.quota.before_run(
                    conn,
                    owner_id=new.owner_id,
                    idempotency_key=new.idempotency_key,
                    workflow_id=new.workflow_id,
                    parent_run_id=new.parent_run_id,
                    trigger_kind=new.trigger_kind,
                )
                or {}
            )
        return _run_fields(new, depth, data)

    async def _start(self, new: NewRun, plans: PlanSource) -> StoredRun:
        """A run without an idempotency key. On PostgreSQL without breakpoints, in autocommit
        on asyncpg when the plan limits allow (``_start_postgres``). Else: every check, its
        row, its node rows and its debug session in ONE write transaction of Core statements
        (``Database.run_write``, on SQLite inline on the writer's connection): no ORM
        session, whose begin, flush and commit were a third of a 100-node run's start. A
        version whose plan is not made yet rolls the transaction back before anything is
        written (``_PlanNeeded``); the plan is made from the saved definition, and the start
        goes again."""
        if not self.db.is_sqlite and new.breakpoints is None:
            started = await self._start_postgres(new, plans)
            if started is not None:
                return started
        made: dict[int, Prepared] = {}
        while True:
            try:
                return await self.db.run_write(
                    lambda conn: self._write_start(conn, new, plans, made), inline=True
                )
            except _PlanNeeded as needed:
                made[needed.version] = await self._prepared(new, plans, needed.version)

    def _write_start(
        self, conn: Connection, new: NewRun, plans: PlanSource, made: Mapping[int, Prepared]
    ) -> StoredRun:
        """``_start``'s transaction; ``made``: plans made for it (by version) since it began."""
        values = new_run_values(conn, owner_id=new.owner_id, **self._checked(conn, new))
        version = values["workflow_version"]
        prepared = made.get(version) or plans.cached(
            new.workflow_id, version, new.scope, new.target_node_id, use_pinned=new.use_pinned
        )
        if prepared is None:
            raise _PlanNeeded(version)
        check_breakpoints(new.breakpoints, prepared)
        big = len(prepared.plan.order) >= BIG_PLAN
        with collector_paused() if big else contextlib.nullcontext():
            nodes = node_rows(values["id"], _planned_nodes(prepared))
            insert_run(conn, run_row(values), nodes)
            return _stored_on(conn, new, prepared, values, nodes.ids)

    async def _start_postgres(self, new: NewRun, plans: PlanSource) -> StoredRun | None:
        """``_start`` on PostgreSQL for a run with no debug session: in autocommit on asyncpg's
        own connection (prepared once per connection), no BEGIN and no COMMIT. One statement
        reads what the checks need (``pg_run_lookups_sql``) and what the plan limits need
        (``unlocked_read``: the plan in force); another writes the run and its node rows at
        once, so nothing is ever half-written. Under READ COMMITTED this is what one
        transaction saw: each of its statements read what was committed when it began, and no
        row was locked between them. The plan limits are answered between the two, as
        ``allows_unlocked`` would outside any transaction; None when they must be asked in the
        run's write transaction (a plan that limits runs: the month's count is exact only
        under a lock), and nothing was written.

        A run with no parent and no version asked, of a workflow whose current version was
        seen before with its plan made, is tried first in ONE statement: the look-ups, and the
        write only if they allow it as they are (``pg_checked_start_sql``: that version still
        current, the key the owner's, a plan that limits nothing). If they do not, nothing was
        written, and the checks go on from what that statement read, as above."""
        quota = self.quota
        read = None
        if quota is not None:
            read = quota.unlocked_read(
                owner_id=new.owner_id,
                workflow_id=new.workflow_id,
                parent_run_id=new.parent_run_id,
                trigger_kind=new.trigger_kind,
            )
        carried = None if read is None else read.pg_sql(PG_LOOKUPS_WIDTH + 1)
        lookup_args = (
            new.workflow_id,
            new.owner_id,
            new.parent_run_id,
            new.api_key_id,
            *(() if read is None else read.args),
        )
        tried = await self._start_as_seen(new, plans, carried, lookup_args)
        if isinstance(tried, StoredRun):
            return tried
        if tried is None:
            await self._check_guard(new)
            async with self.db.asyncpg_connection() as pg:
                tried = await pg.fetchrow(pg_run_lookups_sql(carried), *lookup_args)
        found = tried
        current, parent_depth, parent_owned, key_owner = found[:PG_LOOKUPS_WIDTH]
        self._seen_version(new.workflow_id, current)
        depth = 0
        if new.parent_run_id is not None:
            depth = _checked_depth(new, parent_depth)
        if read is not None and not await read.allows(found[PG_LOOKUPS_WIDTH:]):
            return None
        values = checked_run_values(
            RunLookups(current, parent_owned, key_owner),
            owner_id=new.owner_id,
            **_run_fields(new, depth, dict(new.trigger_data)),
        )
        version = values["workflow_version"]
        prepared = plans.cached(
            new.workflow_id, version, new.scope, new.target_node_id, use_pinned=new.use_pinned
        ) or await self._prepared(new, plans, version)
        big = len(prepared.plan.order) >= BIG_PLAN
        with collector_paused() if big else contextlib.nullcontext():
            nodes = node_rows(values["id"], _planned_nodes(prepared))
            sql, args = pg_insert_run(self.db.engine.dialect, run_row(values), nodes)
        async with self.db.asyncpg_connection() as pg:
            await _pg_write_run(pg, sql, args)
        return await self._stored_pg(new, prepared, values, nodes.ids)

    async def _start_as_seen(
        self,
        new: NewRun,
        plans: PlanSource,
        carried: str | None,
        lookup_args: tuple[Any, ...],
    ) -> StoredRun | Sequence[Any] | None:
        """``_start_postgres``' one-statement try: the run started, or the look-ups' row when
        they did not allow it as they were (nothing written); None when not tried (a sub-run,
        a version asked, a workflow not seen, a plan not made, settings the checks refuse)."""
        version = self._versions.get(new.workflow_id)
        if version is None or new.parent_run_id is not None or new.version is not None:
            return None
        prepared = plans.cached(
            new.workflow_id, version, new.scope, new.target_node_id, use_pinned=new.use_pinned
        )
        if prepared is None:
            return None
        dialect = self.db.engine.dialect
        try:
            values = checked_run_values(
                RunLookups(version, False, new.owner_id),
                owner_id=new.owner_id,
                **_run_fields(new, 0, dict(new.trigger_data)),
            )
            big = len(prepared.plan.order) >= BIG_PLAN
            with collector_paused() if big else contextlib.nullcontext():
                nodes = node_rows(values["id"], _planned_nodes(prepared))
                _, args = pg_insert_run(dialect, run_row(values), nodes)
        except (FlowloomError, TypeError, ValueError):
            # Settings the checks refuse, values that cannot be bound: the checks, in their
            # order, say why (a refusal of the look-ups or the plan comes first).
            return None
        carried_args = len(lookup_args) - PG_LOOKUPS_WIDTH
        guard, guard_sql, guard_args = new.guard, None, ()
        if guard is not None:
            guard_args = tuple(guard.args)
            guard_sql = guard.pg_sql(len(lookup_args) + 1)
        sql = pg_checked_start_sql(dialect, carried, carried_args, guard_sql, len(guard_args))
        async with self.db.asyncpg_connection() as pg:
            found = await _pg_write_run(pg, sql, [*lookup_args, *guard_args, *args], fetch=True)
        if not found["written"]:
            row = tuple(found)
            at = list(found.keys()).index("written")
            if guard is not None and not row[at + 1]:
                raise StartRefused(row[at + 1 :])
            return row[:at]
        return await self._stored_pg(new, prepared, values, nodes.ids)

    async def _check_guard(self, new: NewRun) -> None:
        """``new.guard`` read alone (a start that does not carry it in its own statement);
        StartRefused if it does not hold."""
        guard = new.guard
        if guard is None:
            return
        if self.db.is_sqlite:
            raise ValueError("a start guard is a PostgreSQL statement: not on SQLite")
        async with self.db.asyncpg_connection() as pg:
            row = await pg.fetchrow(guard.pg_sql(1), *guard.args)
        if row is None or not row[0]:
            raise StartRefused(() if row is None else tuple(row))

    def _seen_version(self, workflow_id: str, version: int | None) -> None:
        """Keep ``version`` as the workflow's current one (for ``_start_as_seen``)."""
        versions = self._versions
        if version is None:
            versions.pop(workflow_id, None)
            return
        if len(versions) >= _SEEN_VERSIONS and workflow_id not in versions:
            versions.clear()
        versions[workflow_id] = version

    async def _stored_pg(
        self, new: NewRun, prepared: Prepared, values: dict[str, Any], row_ids: list[str]
    ) -> StoredRun:
        """The run just written on PostgreSQL, with the outputs its plan reads from outside."""
        outside: dict[str, dict[str, Any] | None] = {}
        if prepared.plan.outside_parents:
            outside = await self.db.run_read(
                lambda conn: _outside_outputs(conn, new.workflow_id, prepared)
            )
        return _stored(new, prepared, values, row_ids, None, outside)

    async def _prepared(
        self,
        new: NewRun,
        plans: PlanSource,
        version: int,
        session: AsyncSession | None = None,
    ) -> Prepared:
        """The plan of ``new`` at ``version``: cached, or made from the saved definition (read
        in ``session``, else in a read of its own); ValidationFailed for breakpoints that name
        no node of it."""
        owner_id = new.owner_id
        pinned = new.use_pinned
        # A version prepared before needs no definition read (nor its JSON parsed).
        prepared = plans.cached(
            new.workflow_id, version, new.scope, new.target_node_id, use_pinned=pinned
        )
        if prepared is None:
            # Parsing the definition makes as many objects as planning it, all living on
            # (``prepare`` pauses the collector for the planning; this, for both at once).
            with collector_paused():
                async with contextlib.AsyncExitStack() as stack:
                    reading = (
                        session
                        if session is not None
                        else await stack.enter_async_context(self.db.read())
                    )
                    saved = await WorkflowRepo(reading, owner_id=owner_id).get_version(
                        workflow_id=new.workflow_id, version=version
                    )
                prepared = plans.prepare(
                    new.workflow_id,
                    version,
                    saved.definition,
                    new.scope,
                    new.target_node_id,
                    use_pinned=pinned,
                )
        check_breakpoints(new.breakpoints, prepared)
        return prepared

    async def load_run(self, run_id: str, plans: PlanSource) -> StoredRun:
        found = await read_run(self.db, run_id)
        if found is None:
            raise NotFound("run", run_id)
        return await self._loaded(*found, plans)

    async def load_runs(self, run_ids: Collection[str], plans: PlanSource) -> dict[str, StoredRun]:
        """``load_run`` for several runs, their rows read in one statement (a worker's load
        of the runs of one task); a run that does not exist is absent."""
        found = await read_runs(self.db, run_ids)
        return {
            run_id: await self._loaded(run, slots, plans) for run_id, (run, slots) in found.items()
        }

    async def _loaded(self, run: Any, slots: dict[str, NodeSlot], plans: PlanSource) -> StoredRun:
        """The run read back (``run_loads``) with its plan and what parents outside it feed it."""
        prepared = plans.cached(
            run.workflow_id,
            run.workflow_version,
            Scope(run.scope),
            run.target_node_id,
            use_pinned=run.use_pinned,
        )
        outside: dict[str, dict[str, Any] | None] = {}
        if prepared is None or prepared.plan.outside_parents:  # else nothing more to read
            prepared, outside = await self._plan_and_outside(run, prepared, plans)
        return StoredRun.of(
            run,
            owner_id=run.user_id,
            prepared=prepared,
            slots=slots,
            run_inputs=dict(run.inputs or {}),
            outside_outputs=outside,
            debug=debug_state(run),
        )

    async def _plan_and_outside(
        self, run: Row[*tuple[Any, ...]], prepared: Prepared | None, plans: PlanSource
    ) -> tuple[Prepared, dict[str, dict[str, Any] | None]]:
        """The run's plan when no cached one fits, and what parents outside it feed it."""
        scope = Scope(run.scope)
        async with self.db.read() as session:
            if prepared is None:
                definition = await session.scalar(
                    select(WorkflowVersion.definition).where(
                        WorkflowVersion.workflow_id == run.workflow_id,
                        WorkflowVersion.version == run.workflow_version,
                    )
                )
                if definition is None:
                    raise NotFound("workflow version", f"{run.workflow_id}@{run.workflow_version}")
                prepared = plans.prepare(
                    run.workflow_id,
                    run.workflow_version,
                    definition,
                    scope,
                    run.target_node_id,
                    use_pinned=run.use_pinned,
                )
            planned = prepared
            outside = await session.run_sync(
                lambda sync: _outside_outputs(sync.connection(), run.workflow_id, planned)
            )
            return prepared, outside

    async def outcome(self, run_id: str) -> RunResult:
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

    async def unfinished_runs(self) -> list[UnfinishedRun]:
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(WorkflowRun.id, WorkflowRun.status).where(
                        WorkflowRun.status.in_(ACTIVE_RUN_STATUSES)
                    )
                )
            ).all()
            runs = {run_id: UnfinishedRun(run_id, RunStatus(status)) for run_id, status in rows}
            if not runs:
                return []
            nodes = await session.execute(
                select(
                    NodeExecution.run_id,
                    NodeExecution.status,
                    NodeExecution.lease_owner,
                    NodeExecution.lease_expires_at,
                    NodeExecution.wait,
                ).where(
                    NodeExecution.run_id.in_(list(runs)),
                    NodeExecution.status.in_([NodeStatus.RUNNING, NodeStatus.WAITING]),
                )
            )
            for run_id, status, owner, expires_at, wait in nodes:
                runs[run_id].nodes.append(UnfinishedNode(status, owner, expires_at, wait))
        return list(runs.values())

    # ---- the scheduler's tick

    async def commit(self, tick: Tick) -> bool:
        return await self._ticks.commit(tick)

    async def find_cached(
        self, signatures: Iterable[str], *, near: bool = False
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        return await self._ticks.find_cached(signatures, near=near)

    def folds_probes(self) -> bool:
        return self._ticks.folds_probes()

    async def commit_probing(
        self, tick: Tick, signatures: Iterable[str]
    ) -> dict[str, tuple[str, dict[str, Any]]] | None:
        return await self._ticks.commit_probing(tick, signatures)

    async def fail_run(
        self,
        *,
        run_id: str,
        error: dict[str, Any],
        now: datetime,
        started_at: datetime | None = None,
        culprits: Collection[str] = (),
    ) -> bool:
        return await failure.fail_run(
            self.db, run_id=run_id, error=error, now=now, started_at=started_at, culprits=culprits
        )

    # ---- leases

    async def renew_lease(self, *, row_id: str, attempt: int, owner: str, until: datetime) -> bool:
        async with self.db.write() as session:
            result = await session.execute(
                update(_NODES)
                .where(
                    _NODES.c.id == row_id,
                    _NODES.c.attempt == attempt,
                    _NODES.c.lease_owner == owner,
                    _NODES.c.status == NodeStatus.RUNNING.value,
                )
                .values(lease_expires_at=until)
            )
            return cast(CursorResult[object], result).rowcount == 1

    async def expire_leases(self, *, owner: str, now: datetime) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(_NODES)
                .where(
                    _NODES.c.status == NodeStatus.RUNNING.value,
                    _NODES.c.lease_owner == owner,
                )
                .values(lease_expires_at=now)
            )

    # ---- sub-runs

    async def workflow_named(self, *, owner_id: str, name: str) -> str | None:
        async with self.db.read() as session:
            match = await WorkflowRepo(session, owner_id=owner_id).find_by_reference(name=name)
        return None if match is None else match.id

    async def active_children(self, *, run_id: str, node_id: str) -> list[tuple[str, Any]]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(WorkflowRun.id, WorkflowRun.parent_attempt).where(
                    WorkflowRun.parent_run_id == run_id,
                    WorkflowRun.parent_node_id == node_id,
                    WorkflowRun.status.in_(ACTIVE_RUN_STATUSES),
                )
            )
            return [(child_id, attempt) for child_id, attempt in rows]

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
        return await artifacts.record_artifacts(
            self.db,
            owner_id=owner_id,
            run_id=run_id,
            node_execution_id=node_execution_id,
            references=references,
            stored=stored,
        )

    async def owns_blob(self, *, owner_id: str, sha256: str) -> bool:
        return await artifacts.owns_blob(self.db, owner_id=owner_id, sha256=sha256)

    def memory(self, *, owner_id: str, workflow_id: str) -> MemoryStore:
        return MemoryAdapter(self.db, owner_id=owner_id, workflow_id=workflow_id)

    def usage(self, *, owner_id: str, api_key_id: str | None, run_id: str) -> UsageSink | None:
        return DatabaseUsageSink(self.db, owner_id=owner_id, api_key_id=api_key_id, run_id=run_id)

    # ---- shared by the processes of distributed mode (``SharedRunStore``)

    async def runs_needing_a_driver(
        self, *, now: datetime, run_ids: Collection[str] | None = None, older_than_s: float = 0.0
    ) -> list[str]:
        return await signals.runs_needing_a_driver(
            self.db, now=now, run_ids=run_ids, older_than_s=older_than_s
        )

    async def signals(self, run_ids: Collection[str]) -> Signals:
        return await signals.signals(self.db, run_ids)

    async def answer_waiting(
        self, run_id: str, node_id: str, answer: Mapping[str, Any], *, now: datetime
    ) -> None:
        await signals.answer_waiting(self.db, run_id, node_id, answer, now=now)

    async def request_cancel(self, run_id: str) -> bool:
        return await signals.request_cancel(self.db, run_id)

    async def settled(self, run_id: str, *, finished_only: bool) -> tuple[RunResult, bool]:
        return await signals.settled(self.db, run_id, finished_only=finished_only)

    async def attempt_wanted(self, row_id: str, attempt: int) -> bool:
        return await signals.attempt_wanted(self.db, row_id, attempt)


def _node_specs(prepared: Prepared) -> list[tuple[str, str, int]]:
    """The node rows ``prepared`` plans: node id, type, unfinished parents, in plan order."""
    counts = prepared.plan.unfinished_parents()
    specs = prepared.specs
    return [(node, specs[node].definition.type, counts[node]) for node in prepared.plan.order]


_PLANNED: weakref.WeakKeyDictionary[Plan, tuple[Mapping[str, NodeSpec], PlannedNodes]] = (
    weakref.WeakKeyDictionary()
)
"""``_planned_nodes`` by plan, with the specs they were made from; an entry goes with its plan
(the plan cache's eviction)."""


def _planned_nodes(prepared: Prepared) -> PlannedNodes:
    """The node rows ``prepared`` plans (``planned_nodes``), made once a plan: neither a plan
    nor its specs change once made, so every run of it writes the same (making them again
    was about 0.1 ms of a 100-node run's start)."""
    found = _PLANNED.get(prepared.plan)
    if found is not None and found[0] is prepared.specs:
        return found[1]
    planned = planned_nodes(_node_specs(prepared))
    _PLANNED[prepared.plan] = (prepared.specs, planned)
    return planned


_STORED_COLUMNS = ("id", "workflow_id", "inputs", "timeout_s", "api_key_id", "use_cache")
"""The columns of a new run that ``_stored`` reads."""


def _stored_on(
    conn: Connection,
    new: NewRun,
    prepared: Prepared,
    values: Mapping[str, Any],
    row_ids: list[str],
) -> StoredRun:
    """``_stored``, with the debug session added and what parents outside the plan feed it
    read on ``conn`` (the run's write transaction)."""
    debug = _debug_session(conn, new, values["id"])
    outside = _outside_outputs(conn, values["workflow_id"], prepared)
    return _stored(new, prepared, values, row_ids, debug, outside)


def _debug_session(conn: Connection, new: NewRun, run_id: str) -> DebugState | None:
    """The debug session of a new run with breakpoints, added on ``conn``; None without."""
    if new.breakpoints is None:
        return None
    debug = DebugState(
        session_id=new_id(PREFIXES["debug_sessions"]),
        breakpoints=frozenset(new.breakpoints),
        mode="continue",
    )
    conn.execute(
        insert(_DEBUG_SESSIONS).values(
            id=debug.session_id,
            run_id=run_id,
            user_id=new.owner_id,
            breakpoints=list(new.breakpoints),
            mode=debug.mode,
        )
    )
    return debug


def _stored(
    new: NewRun,
    prepared: Prepared,
    values: Mapping[str, Any],
    row_ids: list[str],
    debug: DebugState | None,
    outside: dict[str, dict[str, Any] | None],
) -> StoredRun:
    """The run just written (``values``: its columns, ``_STORED_COLUMNS`` at least) with its
    node rows ``row_ids`` (in plan order), its debug session and what parents outside the
    plan feed it: what ``load_run`` would read back, built without reading it back."""
    planned = _planned_nodes(prepared)
    # By position (row_id, node_id, status, attempt, pending): half the cost of keywords.
    slots = {
        node: NodeSlot(row_id, node, status, 1, pending)
        for node, row_id, status, pending in zip(
            planned.node_ids, row_ids, planned.statuses, planned.pending, strict=True
        )
    }
    return StoredRun(
        run_id=values["id"],
        workflow_id=values["workflow_id"],
        owner_id=new.owner_id,
        status=RunStatus.PENDING,
        prepared=prepared,
        slots=slots,
        # As the database gives them back (its JSON), not the caller's own objects.
        run_inputs=json.loads(json.dumps(values["inputs"] or {})),
        outside_outputs=outside,
        debug=debug,
        started_at=None,
        timeout_s=values["timeout_s"],
        api_key_id=values["api_key_id"],
        use_cache=values["use_cache"],
        use_pinned=new.use_pinned,
    )


def _run_fields(new: NewRun, depth: int, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``new``'s run row (``checked_run_values``' arguments but the owner):
    ``depth`` its sub-run depth, ``data`` its trigger data."""
    return {
        "workflow_id": new.workflow_id,
        "workflow_version": new.version,
        "scope": RunScope(new.scope.value),
        "target_node_id": new.target_node_id if new.scope is not Scope.FULL else None,
        "trigger_kind": new.trigger_kind,
        "trigger_data": data or None,
        "inputs": new.inputs,
        "timeout_s": new.timeout_s,
        "parent_run_id": new.parent_run_id,
        "parent_node_id": new.parent_node_id,
        "api_key_id": new.api_key_id,
        "use_cache": new.use_cache,
        "depth": depth,
        "parent_attempt": new.parent_attempt,
        "use_pinned": new.use_pinned,
    }


def _subrun_depth(conn: Connection, new: NewRun) -> int:
    """The depth a child of ``new.parent_run_id`` has; LimitExceeded past the limit."""
    parent_depth = conn.execute(
        select(WorkflowRun.depth).where(WorkflowRun.id == new.parent_run_id)
    ).scalar()
    return _checked_depth(new, parent_depth)


def _checked_depth(new: NewRun, parent_depth: int | None) -> int:
    """The depth of a child of a run ``parent_depth`` deep (None: no such run); LimitExceeded
    past the limit."""
    depth = (parent_depth or 0) + 1
    if depth > new.max_depth:
        raise LimitExceeded(
            f"sub-runs would nest {depth} deep, over the limit of {new.max_depth}"
            f" (does workflow {new.workflow_id!r} call itself?)",
            limit="max_subrun_depth",
        )
    return depth


def _outside_outputs(
    conn: Connection, workflow_id: str, prepared: Prepared
) -> dict[str, dict[str, Any] | None]:
    """For a NODE or UPSTREAM run: what each parent outside the plan feeds it (its pinned
    outputs, or its newest success in the workflow)."""
    outside: dict[str, dict[str, Any] | None] = {}
    for parents in prepared.plan.outside_parents.values():
        for parent in parents:
            if parent in prepared.pins:
                outside[parent] = prepared.pins[parent]
                continue
            outside[parent] = latest_success_outputs(conn, workflow_id=workflow_id, node_id=parent)
    return outside
