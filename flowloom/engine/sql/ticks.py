"""The engine's statements beyond the repositories: few, set-based, and Core rather than ORM.

The scheduler's tick is the hot path (one transaction per tick for every node of a run: group
commit), so it has a path of its own, ``TickStore``:

- SQLite: one ``Database.run_write`` per tick (inline on the event loop's thread unless the
  tick is big), whose statements run straight on the ``sqlite3`` connection: an executemany
  writing every changed node row, and the run row only when it changed. The lease fence is in
  the UPDATE's WHERE: a finished node's row is written only while its attempt still holds the
  lease, and a row count short of the rows given rolls the whole tick back. The SQL is
  compiled by SQLAlchemy once, and values are bound by the columns' own type processors, so
  rows read back exactly as if SQLAlchemy wrote them.
- PostgreSQL: ONE statement per tick, in autocommit, on asyncpg (prepared once per
  connection): a CTE locks the fenced rows (``FOR UPDATE``) and counts them, and the
  ``UPDATE ... FROM unnest(ids)`` writes every changed row only if all of them are still held,
  their values sent as one JSON text.
  One round trip instead of four (BEGIN, the fence, the writes, COMMIT). A tick that also
  changes the run row or a debug session (the first tick of a run, the last) writes them in
  the same statement, as further CTEs that write only if every node row was written: still
  one round trip and one commit.

Cache lookups run outside the tick's transaction (inline on SQLite, where an indexed point
lookup costs less than a hop to a thread): a success, once committed, stays a success. A
lookup that also brings the results of the runs it hits (``near``, what a driver asks) may
return a whole run's outputs: on SQLite it follows a point lookup that hit, on a reader thread.
On PostgreSQL, while lookups mostly miss, a tick that commits whatever it claims leaves the
point lookups of the nodes it claims to its own statement (``commit_probing``): a miss cost no
round trip of its own; a node that hit was written RUNNING under the tick's lease but never
started, and the driver's next tick writes it CACHED from the row hit, as a lookup before the
claim would have (no attempt recorded, no start event published).

Part of ``SqlRunStore`` (``run_store.py``); creating runs goes through ``RunRepo``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Dialect,
    Row,
    Table,
    and_,
    bindparam,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from flowloom.engine.ports import Tick
from flowloom.engine.run_state import DebugState, NodeSlot
from flowloom.ids import idempotency_key
from flowloom.storage.bound import Processor as _Processor
from flowloom.storage.bound import bind as _bind
from flowloom.storage.bound import processors as _processors
from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun

__all__ = [
    "DEBUG_COLUMNS",
    "LOAD_SLOTS",
    "TICK_DEBUG",
    "TICK_NODES",
    "TICK_RUNS",
    "TickStore",
    "debug_state",
    "latest_success_outputs",
    "load_slots",
    "node_row_values",
    "slot_of",
]

# Typed as Table (``__table__`` is only known as a FromClause) so Core update() accepts them.
TICK_NODES = _NODES = cast(Table, NodeExecution.__table__)
TICK_RUNS = _RUNS = cast(Table, WorkflowRun.__table__)
TICK_DEBUG = _DEBUG = cast(Table, DebugSession.__table__)

_SLOT_COLUMNS = (
    "id",
    "node_id",
    "status",
    "attempt",
    "pending_parents",
    "outputs",
    "error",
    "attempts",
    "inputs",
    "started_at",
    "finished_at",
    "duration_ms",
    "retry_at",
    "wait",
    "cache_signature",
    "cached_from_id",
    "lease_owner",
    "lease_expires_at",
)
_MUTABLE = (
    "status",
    "attempt",
    "pending_parents",
    "inputs",
    "outputs",
    "error",
    "attempts",
    "lease_owner",
    "lease_expires_at",
    "retry_at",
    "wait",
    "cache_signature",
    "cached_from_id",
    "idempotency_key",
    "started_at",
    "finished_at",
    "duration_ms",
    "updated_at",
)
"""The node columns a tick writes, in the table's order (the order SQLAlchemy compiles SET in)
and the order ``_slot_values`` gives them."""

_NEAR_AT_ONCE = 0.25
"""The share of recent near look-ups that hit above which PostgreSQL is asked for the hits'
runs at once: a miss then costs some 30 us more, a hit one statement less."""
_NEAR_WEIGHT = 0.125
"""The weight of the latest near look-up in that share."""

_INLINE_MAX_ROWS = 64
"""The most node rows a SQLite tick writes inline, on the event loop's thread (~2 ms)."""


class TickStore:
    """The tick's statements on one database; cheap to create (statements are built once)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._dialect: Dialect = db.engine.dialect
        self._near_hits = 0.0
        """How often near look-ups hit lately (weighted toward the latest; PostgreSQL)."""

    @property
    def near_at_once(self) -> bool:
        """Whether a near look-up on PostgreSQL asks for the hits' runs at once (see
        ``find_cached``)."""
        return self._near_hits >= _NEAR_AT_ONCE

    async def find_cached(
        self, signatures: Iterable[str], *, near: bool = False
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """For each signature with an earlier success: the newest such row's id and outputs;
        with ``near``, also for the signatures of every other success of the runs the hits
        come from (``RunStore.find_cached``), in the same statement."""
        wanted = sorted(set(signatures))
        if not wanted:
            return {}
        rows: Sequence[Any]
        # The point look-up first (most miss: a run's inputs are new). Only when something
        # hit, the look-up that may bring a whole run's results back follows. On PostgreSQL
        # the point look-up's miss costs the database about 47 us of CPU, the other's 77 us
        # (a plan of three parts to start and end for nothing); but a hit then costs both
        # statements. So while near look-ups hit often (re-runs of the same inputs), the
        # look-up that brings the hits' runs is asked at once, alone.
        if self.db.is_sqlite:

            def lookup(sql: str) -> Callable[[Connection], list[Any]]:
                return lambda conn: sqlite_connection(conn).execute(sql, wanted).fetchall()

            # Inline; the look-up of the hits' runs on a reader thread rather than holding
            # the event loop.
            rows = await self.db.run_read(lookup(_sqlite_find_cached_sql(len(wanted))), inline=True)
            if near and rows:
                nearby = await self.db.run_read(lookup(_sqlite_find_cached_sql(len(wanted), True)))
                rows = [*rows, *nearby]
        else:
            at_once = near and self.near_at_once
            async with self.db.asyncpg_connection() as pg:
                rows = await pg.fetch(_PG_FIND_NEAR if at_once else _PG_FIND_CACHED, wanted)
                hit = bool(rows)
                if near and rows and not at_once:
                    rows = [*rows, *await pg.fetch(_PG_FIND_NEAR, wanted)]
            if near:
                self._near_hits += _NEAR_WEIGHT * (hit - self._near_hits)
        # SQLite hands JSON back as text; on PostgreSQL the JSONB codec SQLAlchemy installs on
        # every asyncpg connection has decoded it already (no result processor then).
        decode = _result_processor(self._dialect, "outputs")
        return {
            signature: (row_id, (decode(outputs) if decode else outputs) or {})
            for signature, row_id, outputs in rows
        }

    async def commit(self, tick: Tick) -> bool:
        """Write the tick in one transaction; False (nothing written) if a fenced row is no
        longer RUNNING under ``tick.owner``'s lease."""
        if not (tick.slots or tick.run_values or tick.debug is not None):
            return True
        if self.db.is_sqlite:
            return await self._commit_sqlite(tick)
        written, _ = await self._commit_postgres(tick)
        return written

    # ---- SQLite

    async def _commit_sqlite(self, tick: Tick) -> bool:
        dialect = self._dialect
        processors = _processors(dialect, _NODES, _MUTABLE)
        fenced, owner = tick.fenced, tick.owner
        if not fenced.issubset(slot.row_id for slot in tick.slots):
            raise ValueError("every fenced row must be among the tick's rows")
        # Rows grouped by the statement that writes them (see _sqlite_write_slot).
        groups: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {}
        for slot in tick.slots:
            bound = _bind(processors, _slot_values(slot, tick.run_id, tick.now))
            shape = (slot.cache_signature is not None, slot.cached_from_id is not None)
            row = (*_sqlite_pick(bound, shape), slot.row_id, slot.row_id not in fenced, owner)
            groups.setdefault(shape, []).append(row)
        writes = [(_sqlite_write_slot(dialect, *shape), rows) for shape, rows in groups.items()]
        extra = self._run_and_debug(tick, _qmark)

        def write(conn: Connection) -> bool:
            raw = sqlite_connection(conn)
            for sql, rows in writes:
                if raw.executemany(sql, rows).rowcount != len(rows):
                    raise _Fenced
            for statement, args in extra:
                raw.execute(statement, args)
            return True

        # A tick of a few rows commits on the event loop's thread (cheaper than any hop); a big
        # one (a wide fan-out finishing at once) goes to the writer thread rather than stall
        # the loop for milliseconds.
        inline = len(tick.slots) <= _INLINE_MAX_ROWS
        try:
            return await self.db.run_write(write, inline=inline)
        except _Fenced:
            return False

    # ---- PostgreSQL

    def folds_probes(self) -> bool:
        """Whether ``commit_probing`` may carry a tick's cache probes: on PostgreSQL while
        look-ups mostly miss (``near_at_once`` false); else a probe is asked alone, before
        the tick, with the hits' runs (one statement either way when it hits)."""
        return not self.db.is_sqlite and not self.near_at_once

    async def commit_probing(
        self, tick: Tick, signatures: Iterable[str]
    ) -> dict[str, tuple[str, dict[str, Any]]] | None:
        """``commit`` on PostgreSQL, with the point look-up of ``find_cached`` for
        ``signatures`` (of the nodes the tick claims) in the same statement, read on the
        snapshot the tick writes on. The look-up's hits, or None (nothing written) when a
        fenced row is no longer held."""
        wanted = sorted(set(signatures))
        if self.db.is_sqlite or not wanted:
            raise ValueError("a probing commit is PostgreSQL's, with signatures to look up")
        written, found = await self._commit_postgres(tick, wanted)
        if not written:
            return None
        self._near_hits += _NEAR_WEIGHT * (bool(found) - self._near_hits)
        return {signature: (row_id, outputs or {}) for signature, row_id, outputs in found}

    async def _commit_postgres(
        self, tick: Tick, probes: list[str] | None = None
    ) -> tuple[bool, list[Any]]:
        """The tick's statement (``probes``: with their look-up); whether it was written, and
        the look-up's rows (signature, row id, outputs)."""
        ids = [slot.row_id for slot in tick.slots]
        if not tick.fenced.issubset(ids):
            raise ValueError("every fenced row must be among the tick's rows")
        args: list[Any] = [sorted(tick.fenced), tick.owner, ids, _pg_rows(tick)]
        extra = self._run_and_debug(tick, _dollar, first=len(args) + 1)
        for _statement, values in extra:
            args.extend(values)
        updates = tuple(statement for statement, _ in extra)
        if probes is None:
            sql = _pg_tick_statement(updates)
            async with self.db.asyncpg_connection(flush=tick.durable) as pg:
                return cast(int, await pg.fetchval(sql, *args)) == len(ids), []
        args.append(probes)
        sql = _pg_tick_statement(updates, len(args))
        async with self.db.asyncpg_connection(flush=tick.durable) as pg:
            row = await pg.fetchrow(sql, *args)
        return row[0] == len(ids), json.loads(row[1])

    # ---- both

    def _run_and_debug(
        self, tick: Tick, placeholder: Callable[[int], str], *, first: int = 1
    ) -> list[tuple[str, list[Any]]]:
        """The run row's and the debug session's updates, when they change (rarely).

        With numbered placeholders (``$n``) the statements number their parameters on from
        ``first``, one after the other, so that they can be parts of one statement."""
        found: list[tuple[str, list[Any]]] = []

        def numbered() -> Callable[[int], str]:
            if placeholder is _qmark:
                return placeholder
            return _dollar_after(first - 1 + sum(len(values) for _, values in found))

        if tick.run_values:
            values = {**tick.run_values, "updated_at": tick.now}
            names = tuple(sorted(values))
            sql, processors = _update_by_id(self._dialect, "runs", names, numbered())
            bound = _bind(processors, [values[name] for name in names])
            found.append((sql, [*bound, tick.run_id, *(s.value for s in FINISHED_RUN_STATUSES)]))
        debug = tick.debug
        if debug is not None:
            names = ("mode", "paused_node_id", "status", "updated_at")
            sql, processors = _update_by_id(self._dialect, "debug", names, numbered())
            bound = _bind(
                processors, [debug.mode, debug.paused_node_id, tick.debug_status, tick.now]
            )
            found.append((sql, [*bound, debug.session_id]))
        return found


class _Fenced(Exception):
    """A fenced row was not held: the tick's transaction rolls back."""


def _qmark(_n: int) -> str:
    return "?"


def _dollar(n: int) -> str:
    return f"${n}"


@cache
def _dollar_after(offset: int) -> Callable[[int], str]:
    """``$n`` numbered after ``offset`` parameters (one function per offset: a cache key)."""
    if offset == 0:
        return _dollar

    def placeholder(n: int) -> str:
        return f"${n + offset}"

    return placeholder


def _slot_values(slot: NodeSlot, run_id: str, now: datetime) -> list[Any]:
    """The values of ``_MUTABLE`` for ``slot``, not yet bound."""
    return [
        slot.status.value,
        slot.attempt,
        slot.pending,
        slot.inputs,
        slot.outputs,
        slot.error,
        slot.attempts,
        slot.lease_owner,
        slot.lease_expires_at,
        slot.retry_at,
        slot.wait,
        slot.cache_signature,
        slot.cached_from_id,
        idempotency_key(run_id, slot.node_id),
        slot.started_at,
        slot.finished_at,
        slot.duration_ms,
        now,
    ]


def node_row_values(slot: NodeSlot, run_id: str, now: datetime) -> dict[str, Any]:
    """The node row's columns a tick writes for ``slot``, by name (not yet bound)."""
    return dict(zip(_MUTABLE, _slot_values(slot, run_id, now), strict=True))


@cache
def _result_processor(dialect: Dialect, name: str) -> _Processor:
    processor: _Processor = (
        _NODES.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
    )
    return processor


_OPTIONAL = ("cache_signature", "cached_from_id")
"""Indexed node columns the SQLite tick leaves out of its UPDATE while they are NULL.

Each goes from NULL to a value at most once in a row's life and never back (a signature is
a pure function of the run's fixed cache setting, the node's config and its inputs; a row
names the row it was served from only when it finishes CACHED), so leaving them out while
NULL writes nothing different. It matters: naming ``cached_from_id`` in an UPDATE makes
SQLite run its self-referencing foreign key check, which tripled the cost of a tick.
"""


def _sqlite_pick(bound: list[Any], shape: tuple[bool, bool]) -> list[Any]:
    """``bound`` (the values of ``_MUTABLE``) without the optional columns ``shape`` omits."""
    if all(shape):
        return bound
    return [
        value
        for name, value in zip(_MUTABLE, bound, strict=True)
        if name not in _OPTIONAL or shape[_OPTIONAL.index(name)]
    ]


@cache
def _sqlite_write_slot(dialect: Dialect, with_signature: bool, with_cached_from: bool) -> str:
    """UPDATE one node row by id, fenced: ``b_free`` is true, or the row is RUNNING under
    ``b_owner``'s lease (the WHERE sees the row as it was before the statement). The optional
    columns are written only when asked for (see ``_OPTIONAL``)."""
    shape = (with_signature, with_cached_from)
    names = [name for name in _MUTABLE if name not in _OPTIONAL or shape[_OPTIONAL.index(name)]]
    statement = (
        update(_NODES)
        .where(
            _NODES.c.id == bindparam("b_id"),
            or_(
                bindparam("b_free"),
                and_(
                    # A literal, so that the only parameters are the rows' own.
                    _NODES.c.status == literal_column(f"'{NodeStatus.RUNNING.value}'"),
                    _NODES.c.lease_owner == bindparam("b_owner"),
                ),
            ),
        )
        .values({name: bindparam(f"b_{name}") for name in names})
    )
    compiled = statement.compile(dialect=dialect)
    expected = [f"b_{name}" for name in names] + ["b_id", "b_free", "b_owner"]
    # The rows are built in this positional order: checked once, not assumed.
    if list(compiled.positiontup or []) != expected:
        raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
    return compiled.string


_SUCCEEDED = f"'{NodeStatus.SUCCEEDED.value}'"


@cache
def _sqlite_find_cached_sql(count: int, near: bool = False) -> str:
    marks = ", ".join("?" * count)
    # ``+status``: keeps SQLite on the signature's (or the run's) index; left to itself it may
    # pick the status index and walk every success ever recorded.
    signed = f"cache_signature IN ({marks}) AND +status = {_SUCCEEDED}"
    if near:
        # The runs of the newest hits, by the (run_id, node_id) index; every signature their
        # successes recorded. ``+cache_signature`` keeps the signature's index out of it.
        signed = (
            "cache_signature IN (SELECT n.cache_signature FROM node_executions AS n"
            " WHERE n.run_id IN (SELECT h.run_id FROM node_executions AS h WHERE h.id IN"
            f" (SELECT max(id) FROM node_executions WHERE {signed} GROUP BY cache_signature))"
            f" AND +n.status = {_SUCCEEDED} AND +n.cache_signature IS NOT NULL)"
            f" AND +status = {_SUCCEEDED}"
        )
    # SQLite returns the other bare columns from the row holding max(): the newest success.
    return (
        f"SELECT cache_signature, max(id), outputs FROM node_executions WHERE {signed}"
        " GROUP BY cache_signature"
    )


# ``OFFSET 0`` keeps the inner query apart, so the (generic) plan finds the rows by the
# signature's index: given the status too, it ANDs in the status index and reads every
# success ever recorded (2 ms a lookup at 10,000 rows, growing).
_PG_FIND_CACHED = f"""
SELECT DISTINCT ON (cache_signature) cache_signature, id, outputs
FROM (
    SELECT cache_signature, id, outputs, status FROM node_executions
    WHERE cache_signature = ANY($1::varchar[])
    OFFSET 0
) AS signed
WHERE status = '{NodeStatus.SUCCEEDED.value}'
ORDER BY cache_signature, id DESC
"""

_PG_FIND_NEAR = f"""
WITH hits AS (
    SELECT DISTINCT ON (cache_signature) id
    FROM (
        SELECT cache_signature, id, status FROM node_executions
        WHERE cache_signature = ANY($1::varchar[])
        OFFSET 0
    ) AS signed
    WHERE status = '{NodeStatus.SUCCEEDED.value}'
    ORDER BY cache_signature, id DESC
), near AS (
    SELECT DISTINCT n.cache_signature FROM node_executions AS n
    WHERE n.run_id IN (
        SELECT h.run_id FROM node_executions AS h WHERE h.id IN (SELECT id FROM hits)
    )
    AND n.status = '{NodeStatus.SUCCEEDED.value}' AND n.cache_signature IS NOT NULL
)
SELECT DISTINCT ON (cache_signature) cache_signature, id, outputs
FROM (
    SELECT cache_signature, id, outputs, status FROM node_executions
    WHERE cache_signature IN (SELECT cache_signature FROM near)
    OFFSET 0
) AS signed
WHERE status = '{NodeStatus.SUCCEEDED.value}'
ORDER BY cache_signature, id DESC
"""
"""``_PG_FIND_CACHED`` with ``near``: the newest success of every signature that the runs of
the hits recorded (the hits' own among them)."""

_PG_TYPES = {
    "status": "varchar",
    "attempt": "int",
    "pending_parents": "int",
    "outputs": "jsonb",
    "error": "jsonb",
    "attempts": "jsonb",
    "inputs": "jsonb",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "duration_ms": "int",
    "retry_at": "timestamptz",
    "wait": "jsonb",
    "cache_signature": "varchar",
    "cached_from_id": "varchar",
    "lease_owner": "varchar",
    "lease_expires_at": "timestamptz",
    "idempotency_key": "varchar",
    "updated_at": "timestamptz",
}


def _pg_write_slots() -> str:
    # ``$3`` holds the rows' ids, ``$4`` the rows as one JSON array (``_pg_rows``): row ``i``
    # of it is the values of ``_MUTABLE`` for id ``i``, in order. A JSON value is read as it
    # is (``->``: JSON null stays JSON null, as SQLAlchemy binds None), any other column from
    # its text (``->>``: JSON null is NULL).
    sets = ", ".join(
        f"{name} = v.slot -> {place}"
        if _PG_TYPES[name] == "jsonb"
        else f"{name} = (v.slot ->> {place})::{_PG_TYPES[name]}"
        for place, name in enumerate(_MUTABLE)
    )
    # The fence locks the fenced rows by primary key alone and counts those still held:
    # with the status in the WHERE, the generic plan walks the status index over every
    # RUNNING row of every run. Under FOR UPDATE the count sees each row's newest version.
    # The rows are found by their ids' array (a few rows, one index look-up each); joined on
    # a set read from the JSON, of unknown size to the planner, the plan hashed the table's
    # rows. ``OFFSET 0`` takes each row out of the JSON once, not once a column.
    return f"""
WITH fence AS (
    SELECT count(*) FILTER (
        WHERE status = '{NodeStatus.RUNNING.value}' AND lease_owner = $2
    ) AS held
    FROM (
        SELECT status, lease_owner FROM node_executions
        WHERE id = ANY($1::varchar[])
        FOR UPDATE
    ) AS locked
), written AS (
    UPDATE node_executions AS n SET {sets}
    FROM unnest($3::varchar[]) WITH ORDINALITY AS i(id, place),
    LATERAL (SELECT $4::jsonb -> (i.place::int - 1) AS slot OFFSET 0) AS v, fence
    WHERE n.id = i.id AND fence.held = cardinality($1::varchar[])
    RETURNING n.id
)"""


_PG_WRITE_SLOTS = _pg_write_slots()
"""Every changed node row of a tick: all of them, or none if the fence fails (the CTEs)."""

_ROWS_JSON = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, separators=(",", ":")
).encode
"""The tick's rows as one JSON text: one parameter for asyncpg to send, where one array a
column cost it two ``isinstance`` checks against abstract classes at every value (a tick's
client CPU: 230-250 us with the arrays, 195-210 us so, in turns). Text the engine stores was
checked storable before (``unstorable``)."""


def _pg_time(value: datetime) -> str:
    """A time as the text ``timestamptz`` reads back exactly (asyncpg's own conversion: an
    aware time in UTC; a naive one read as local time, as ``astimezone`` reads it)."""
    return value.astimezone(UTC).isoformat()


_PG_TIMES = tuple(place for place, name in enumerate(_MUTABLE) if _PG_TYPES[name] == "timestamptz")
"""The places of the times in a row of ``_pg_rows``."""


def _pg_rows(tick: Tick) -> str:
    """``_PG_WRITE_SLOTS``' rows: each row of the tick as the values of ``_MUTABLE``, its
    JSON values nested as they are and its times as text (each distinct time converted
    once: most are the tick's ``now``)."""
    texts: dict[datetime, str] = {}
    rows = []
    for slot in tick.slots:
        row = _slot_values(slot, tick.run_id, tick.now)
        for place in _PG_TIMES:
            value = row[place]
            if value is not None:
                text = texts.get(value)
                if text is None:
                    text = texts[value] = _pg_time(value)
                row[place] = text
        rows.append(row)
    return _ROWS_JSON(rows)


@cache
def _pg_tick_statement(updates: tuple[str, ...], probes: int | None = None) -> str:
    """The tick's ONE statement: the node rows, then each of ``updates`` (``UPDATE ... WHERE
    ...``, parameters numbered after the node rows') only if every node row was written; it
    returns how many node rows were written. PostgreSQL runs every data-modifying CTE once,
    whether or not the query reads it, all on one snapshot. With ``probes`` (the number of
    the parameter that comes last, an array of signatures), also ``_PG_FIND_CACHED``'s rows
    for them, as one JSON text of [signature, id, outputs] rows, read on that snapshot."""
    every_row = "(SELECT count(*) FROM written) = cardinality($3::varchar[])"
    parts = [_PG_WRITE_SLOTS]
    parts += [f", extra{n} AS ({update} AND {every_row})" for n, update in enumerate(updates)]
    if probes is None:
        return "".join(parts) + "\nSELECT count(*) FROM written"
    lookup = _PG_FIND_CACHED.replace("$1::varchar[]", f"${probes}::varchar[]")
    parts.append(f", probe AS ({lookup})")
    return "".join(parts) + (
        "\nSELECT (SELECT count(*) FROM written), (SELECT coalesce(json_agg(json_build_array("
        "cache_signature, id, outputs)), '[]') FROM probe)::text"
    )


_UPDATES: dict[str, tuple[Table, str]] = {
    # A finished run is never changed again.
    "runs": (_RUNS, "status NOT IN ({0}, {1}, {2})"),
    "debug": (_DEBUG, ""),
}


@cache
def _update_by_id(
    dialect: Dialect, which: str, names: tuple[str, ...], placeholder: Callable[[int], str]
) -> tuple[str, tuple[_Processor, ...]]:
    """``UPDATE table SET name = ..., ... WHERE id = ... [AND extra]``, and its processors."""
    table, extra = _UPDATES[which]
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"not columns of {table.name}: {unknown}")
    sets = ", ".join(f"{name} = {placeholder(n)}" for n, name in enumerate(names, start=1))
    n = len(names) + 1
    where = f"id = {placeholder(n)}"
    if extra:
        where += " AND " + extra.format(*(placeholder(n + i) for i in range(1, 4)))
    return f"UPDATE {table.name} SET {sets} WHERE {where}", _processors(dialect, table, names)


LOAD_SLOTS = (
    select(*(_NODES.c[name] for name in _SLOT_COLUMNS))
    .where(_NODES.c.run_id == bindparam("run_id"))
    .order_by(_NODES.c.id)
)
"""A run's node rows as ``slot_of`` reads them, in checkpoint order (parameter ``run_id``)."""


def load_slots(conn: Connection, run_id: str) -> dict[str, NodeSlot]:
    """Every node row of the run, as slots keyed by node id (in checkpoint order)."""
    return {row.node_id: slot_of(row) for row in conn.execute(LOAD_SLOTS, {"run_id": run_id})}


def slot_of(row: Any) -> NodeSlot:
    """The slot of a node row read with ``LOAD_SLOTS``'s columns (reached by name)."""
    return NodeSlot(
        row_id=row.id,
        node_id=row.node_id,
        status=NodeStatus(row.status),
        attempt=row.attempt,
        pending=row.pending_parents,
        outputs=row.outputs,
        error=row.error,
        attempts=list(row.attempts or []),
        inputs=row.inputs,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
        retry_at=row.retry_at,
        wait=row.wait,
        cache_signature=row.cache_signature,
        cached_from_id=row.cached_from_id,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


DEBUG_COLUMNS = (
    _DEBUG.c.id.label("debug_id"),
    _DEBUG.c.breakpoints.label("debug_breakpoints"),
    _DEBUG.c.mode.label("debug_mode"),
    _DEBUG.c.paused_node_id.label("debug_paused_node_id"),
)
"""The run's debug session, to read beside its run row (outer-joined on ``run_id``)."""


def debug_state(row: Row[*tuple[Any, ...]]) -> DebugState | None:
    """The debug session of a row read with ``DEBUG_COLUMNS`` (None: the run has none)."""
    if row.debug_id is None:
        return None
    return DebugState(
        session_id=row.debug_id,
        breakpoints=frozenset(row.debug_breakpoints or []),
        mode=row.debug_mode,
        paused_node_id=row.debug_paused_node_id,
    )


def latest_success_outputs(
    conn: Connection, *, workflow_id: str, node_id: str
) -> dict[str, Any] | None:
    """The outputs of ``node_id``'s newest SUCCEEDED or CACHED execution in ``workflow_id``:
    what a NODE-scope run feeds a node from parents outside it. None if it never succeeded."""
    outputs: dict[str, Any] | None = conn.execute(
        select(_NODES.c.outputs)
        .join(_RUNS, _RUNS.c.id == _NODES.c.run_id)
        .where(
            _RUNS.c.workflow_id == workflow_id,
            _NODES.c.node_id == node_id,
            _NODES.c.status.in_((NodeStatus.SUCCEEDED, NodeStatus.CACHED)),
        )
        .order_by(_RUNS.c.id.desc())
        .limit(1)
    ).scalar()
    return outputs
