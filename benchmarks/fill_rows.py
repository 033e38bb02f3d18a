"""The rows of the storage benchmark's fill, as tuples ready for the driver.

Runs, their node executions and their usage, in chunks, each value already in the form the
driver takes for its column (``Encoding``): text times and nano-unit money on SQLite, aware
datetimes and decimals on PostgreSQL, JSON text on both. Nothing is built twice: a run's times
are converted once and shared by its node rows and its usage row, constant JSON values are
encoded once, and ids share their time part.

Ids are flowloom's (``flowloom.ids``): a UUIDv7 in 26 characters of Crockford's base32, whose
48 leading bits are the row's ``created_at`` in milliseconds and whose random bits hold a
counter, as flowloom's own monotonic ids do, so ids of one table sort by creation time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from flowloom.ids import PREFIXES

__all__ = [
    "MODELS",
    "NODES_PER_RUN",
    "NODE_COLUMNS",
    "POSTGRES",
    "PYTHON",
    "RUN_COLUMNS",
    "SQLITE",
    "TABLES",
    "USAGE_COLUMNS",
    "Chunk",
    "Encoding",
    "LoadReport",
    "RowPlan",
    "chunks",
    "encode_id",
]

NODES_PER_RUN = 5
MODELS = [
    ("openai", "gpt-4o-mini", Decimal("0.15"), Decimal("0.60")),
    ("openai", "gpt-4o", Decimal("2.50"), Decimal("10.00")),
    ("anthropic", "claude-sonnet", Decimal("3.00"), Decimal("15.00")),
    ("anthropic", "claude-haiku", Decimal("0.80"), Decimal("4.00")),
    ("gemini", "gemini-flash", Decimal("0.075"), Decimal("0.30")),
    ("gemini", "gemini-pro", Decimal("1.25"), Decimal("5.00")),
]
"""Provider, model, and price in and out per million tokens."""

RUN_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_version",
    "user_id",
    "status",
    "scope",
    "trigger_kind",
    "inputs",
    "outputs",
    "cancel_requested",
    "started_at",
    "finished_at",
    "duration_ms",
    "created_at",
    "updated_at",
)
NODE_COLUMNS = (
    "id",
    "run_id",
    "node_id",
    "node_type",
    "status",
    "attempt",
    "pending_parents",
    "outputs",
    "attempts",
    "idempotency_key",
    "cache_signature",
    "started_at",
    "finished_at",
    "duration_ms",
    "created_at",
    "updated_at",
)
USAGE_COLUMNS = (
    "id",
    "user_id",
    "provider",
    "model",
    "type",
    "tokens_in",
    "tokens_out",
    "tokens_total",
    "cost",
    "currency",
    "created_at",
)

TABLES = (
    ("workflow_runs", RUN_COLUMNS),
    ("node_executions", NODE_COLUMNS),
    ("usage", USAGE_COLUMNS),
)
"""The filled tables and their columns, in the order of a ``Chunk``'s lists (parents first)."""

_NODE_TYPES = ("trigger.manual", "llm.chat", "image.crop", "text.template", "flow.join")
_ACTIVE = ("PENDING", "RUNNING", "WAITING")
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Chunk(NamedTuple):
    """Rows of consecutive runs: ``RUN_COLUMNS``, ``NODE_COLUMNS`` and ``USAGE_COLUMNS`` tuples."""

    runs: list[tuple[Any, ...]]
    nodes: list[tuple[Any, ...]]
    usage: list[tuple[Any, ...]]

    def __len__(self) -> int:  # rows, all tables together
        return len(self.runs) + len(self.nodes) + len(self.usage)


@dataclass
class LoadReport:
    """What a loader (``fill_sqlite``, ``fill_postgres``) did with the chunks it was given."""

    rows: int = 0
    row_seconds: float = 0.0
    """Making and writing the rows."""
    index_seconds: float = 0.0
    """Building the indexes (and on PostgreSQL checking the foreign keys) after the rows."""
    chunk_rates: list[float] = field(default_factory=list)
    """Rows per second of each chunk, making its rows included."""


@dataclass(frozen=True)
class Encoding:
    """How one driver takes the fill's values: ``time`` from epoch milliseconds, ``json`` from
    JSON text as ``json.dumps`` writes it, ``money`` from nano-units, and ``false``."""

    time: Callable[[int], Any]
    json: Callable[[str], Any]
    money: Callable[[int], Any]
    false: Any


@cache
def _sqlite_day(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")


def _sqlite_time(ms: int) -> str:
    """What SQLAlchemy binds for an aware UTC datetime on SQLite (``UTCDateTime``):
    ``YYYY-MM-DD HH:MM:SS.ffffff``, without the day's strftime for every value."""
    day, rest = divmod(ms, _DAY_MS)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{_sqlite_day(day)}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}000"


def _aware_time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _decimal(nano: int) -> Decimal:
    return Decimal(nano).scaleb(-9)


def _text(value: str) -> str:
    return value


def _parsed(text: str) -> Any:
    return json.loads(text)


SQLITE = Encoding(time=_sqlite_time, json=_text, money=int, false=0)
"""sqlite3 parameters, bound as flowloom's column types bind them (``flowloom.storage.bound``)."""
POSTGRES = Encoding(time=_aware_time, json=_text, money=_decimal, false=False)
"""asyncpg's binary COPY: timestamptz from aware datetimes, numeric from decimals, jsonb text."""
PYTHON = Encoding(time=_aware_time, json=_parsed, money=_decimal, false=False)
"""The values as the application holds them (what the ORM reads back): for checking a fill."""


@dataclass(frozen=True)
class RowPlan:
    """What ``chunks`` writes: ``runs`` runs from ``start_ms`` over ``days`` days."""

    runs: int
    start_ms: int
    days: int
    seed: int
    chunk_runs: int


# -- ids ---------------------------------------------------------------------------------------

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = tuple(high + low for high in _ALPHABET for low in _ALPHABET)
"""Every two-character string of the alphabet, by its 10-bit value."""
_UUID7_LOW = (0x7 << 76) | (0b10 << 62)
"""The version and variant bits of a UUIDv7 below its 48-bit time."""
_SERIAL_BITS = 40
_MIDDLE = "".join(_PAIRS[(_UUID7_LOW >> shift) & 1023] for shift in (70, 60, 50, 40))
"""Characters 11-18 of every id whose serial is below 2**40: version, variant, zeros."""
_SLOTS = 8
"""Serials per run: the run, its node executions and its usage take consecutive ones."""


def encode_id(prefix: str, ms: int, serial: int) -> str:
    """The id made at ``ms`` whose random bits hold ``serial``: what ``_stem`` speeds up."""
    value = (ms << 80) | _UUID7_LOW | serial
    return prefix + "_" + "".join(_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10))


def _stem(ms: int, serial: int) -> str:
    """The first 24 characters of the suffix of ``encode_id(_, ms, serial + k)``, 0 <= k < 8,
    for ``serial`` a multiple of 8 below 2**40: the last two come from ``_PAIRS[low | k]``."""
    return (
        _PAIRS[ms >> 40]
        + _PAIRS[(ms >> 30) & 1023]
        + _PAIRS[(ms >> 20) & 1023]
        + _PAIRS[(ms >> 10) & 1023]
        + _PAIRS[ms & 1023]
        + _MIDDLE
        + _PAIRS[serial >> 30]
        + _PAIRS[(serial >> 20) & 1023]
        + _PAIRS[(serial >> 10) & 1023]
    )


# -- rows --------------------------------------------------------------------------------------


def chunks(
    plan: RowPlan,
    encoding: Encoding,
    user_ids: Sequence[str],
    workflow_ids: Sequence[str],
    owner_of: Callable[[int], int],
) -> Iterator[Chunk]:
    """The plan's rows, ``plan.chunk_runs`` runs at a time; runs and node executions in id
    order, usage too while runs are further apart than they last.

    Runs are spread evenly over the plan's days; the newest 0.1% are still going (the
    "active executions" the monitoring query counts), 5% of the others failed. Each run has
    ``NODES_PER_RUN`` node executions (all finished, or only the first for an active run;
    two of five carry a cache signature, as deterministic nodes do) and one usage row,
    recorded when the run finished (at its ``finished_at``; an active run's at its start).
    """
    if plan.runs * _SLOTS >= 1 << _SERIAL_BITS:
        raise ValueError(f"{plan.runs} runs is too many for one fill")
    rng = random.Random(plan.seed)
    uniform, bits = rng.random, rng.getrandbits
    time, money, false = encoding.time, encoding.money, encoding.false
    json_value = encoding.json
    step_ms = plan.days * _DAY_MS / max(plan.runs, 1)
    active_from = plan.runs - max(1, plan.runs // 1000)
    run_prefix, node_prefix = PREFIXES["workflow_runs"] + "_", PREFIXES["node_executions"] + "_"
    usage_prefix = PREFIXES["usage"] + "_"
    node_ids = [f"n{n}" for n in range(NODES_PER_RUN)]
    done_outputs = [json_value(f'{{"value": {n}}}') for n in range(NODES_PER_RUN)]
    no_attempts = json_value("[]")
    # Prices in nano-units per token: a price per million tokens times 1,000.
    prices = [(p, m, int(i.scaleb(3)), int(o.scaleb(3))) for p, m, i, o in MODELS]
    signed = (2, 3)  # the nodes with a cache signature
    for first in range(0, plan.runs, plan.chunk_runs):
        runs: list[tuple[Any, ...]] = []
        nodes: list[tuple[Any, ...]] = []
        usage: list[tuple[Any, ...]] = []
        add_run, add_node, add_usage = runs.append, nodes.append, usage.append
        for i in range(first, min(first + plan.chunk_runs, plan.runs)):
            ms = plan.start_ms + int(i * step_ms)
            serial = i * _SLOTS
            stem, low = _stem(ms, serial), serial & 1023
            owner = owner_of(i)
            user_id = user_ids[owner]
            run_id = run_prefix + stem + _PAIRS[low]
            duration_ms = 50 + int(uniform() * 4951)
            created = time(ms)
            active = i >= active_from
            if active:
                status = _ACTIVE[i % 3]
                finished_ms, finished = ms, created
                add_run(
                    (
                        run_id,
                        workflow_ids[owner],
                        1,
                        user_id,
                        status,
                        "FULL",
                        "manual",
                        json_value(f'{{"n": {i}}}'),
                        None,
                        false,
                        None if status == "PENDING" else created,
                        None,
                        None,
                        created,
                        created,
                    )
                )
            else:
                finished_ms = ms + duration_ms
                finished = time(finished_ms)
                add_run(
                    (
                        run_id,
                        workflow_ids[owner],
                        1,
                        user_id,
                        "FAILED" if uniform() < 0.05 else "COMPLETED",
                        "FULL",
                        "manual",
                        json_value(f'{{"n": {i}}}'),
                        json_value(f'{{"result": "output {i}"}}'),
                        false,
                        created,
                        finished,
                        duration_ms,
                        created,
                        finished,
                    )
                )
            node_ms = duration_ms // NODES_PER_RUN
            for n in range(NODES_PER_RUN):
                done = not active or n == 0
                add_node(
                    (
                        node_prefix + stem + _PAIRS[low | (n + 1)],
                        run_id,
                        node_ids[n],
                        _NODE_TYPES[n],
                        "SUCCEEDED" if done else "PENDING",
                        1,
                        0 if done else 1,
                        done_outputs[n] if done else None,
                        no_attempts,
                        f"{run_id}:{node_ids[n]}",  # flowloom.ids.idempotency_key
                        f"{bits(256):064x}" if n in signed else None,
                        created if done else None,
                        created if done else None,
                        node_ms if done else None,
                        created,
                        created,
                    )
                )
            provider, model, price_in, price_out = prices[int(uniform() * len(prices))]
            tokens_in, tokens_out = 10 + int(uniform() * 3991), 10 + int(uniform() * 1991)
            add_usage(
                (
                    # Usage is recorded as its run finishes: its id is of that time.
                    usage_prefix + _stem(finished_ms, serial) + _PAIRS[low | 6],
                    user_id,
                    provider,
                    model,
                    "chat",
                    tokens_in,
                    tokens_out,
                    tokens_in + tokens_out,
                    money(tokens_in * price_in + tokens_out * price_out),
                    "usd",
                    finished,
                )
            )
        yield Chunk(runs, nodes, usage)
