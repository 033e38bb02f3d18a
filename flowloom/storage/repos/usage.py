"""Usage: one row per billable AI call, costed exactly, and the sums the seeds ask for.

``UsageRepo`` is owner-scoped: it records calls for its owner and every sum covers only the
owner's rows. ``instance_usage_by_model`` is the instance-wide variant, for admins and monitoring.

Date ranges are half-open, ``[start, end)``, in aware datetimes; days are UTC days on both
databases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Date, Row, bindparam, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.enums import UsageType
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.repos.ai_models import exact_price
from flowloom.storage.tables import AiModel, Usage, User
from flowloom.storage.tables.base import utcnow

__all__ = [
    "COST_PLACES",
    "UNKNOWN_MODEL_NOTE",
    "UsageByApiKey",
    "UsageByDay",
    "UsageByModel",
    "UsageByUser",
    "UsageRepo",
    "UsageTotals",
    "cost_of",
    "instance_usage_by_day",
    "instance_usage_by_model",
    "instance_usage_by_user",
    "usage_by_node_of_run",
]

_USAGE = PREFIXES["usage"]
_PER_MTOK_SHIFT = -6

COST_PLACES = Decimal("0.000000001")
"""Costs are kept to the nano-unit, the precision of the ``cost`` column on both databases."""

UNKNOWN_MODEL_NOTE = "cost_note"
"""The metadata key that says a call was costed at 0 because its model has no price entry."""


@dataclass(frozen=True, slots=True)
class UsageTotals:
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class UsageByModel:
    provider: str
    model: str
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class UsageByDay:
    day: date
    """A UTC day."""
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class UsageByApiKey:
    api_key_id: str | None
    """None gathers calls made without a key (from the browser, or by the engine itself)."""
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


def cost_of(
    *,
    tokens_in: int,
    tokens_out: int,
    input_price_per_mtok: Decimal,
    output_price_per_mtok: Decimal,
) -> Decimal:
    """The exact cost of a call at prices per million tokens, rounded half-even to the nano-unit.

    ``cost_of(tokens_in=1234, tokens_out=567, input_price_per_mtok=Decimal("0.15"),
    output_price_per_mtok=Decimal("0.60")) == Decimal("0.0005253")``.
    """
    raw = tokens_in * input_price_per_mtok + tokens_out * output_price_per_mtok
    # scaleb moves the decimal point: exact, unlike a division that could round.
    return raw.scaleb(_PER_MTOK_SHIFT).quantize(COST_PLACES, rounding=ROUND_HALF_EVEN)


class UsageRepo:
    """The usage of one owner. Methods flush, never commit."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

    async def record(
        self,
        *,
        provider: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
        type: UsageType = UsageType.CHAT,
        api_key_id: str | None = None,
        run_id: str | None = None,
        node_execution_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        cost: Decimal | None = None,
        at: datetime | None = None,
        images: int = 0,
    ) -> Usage:
        """Record one call made for the owner at ``at`` (default now) and return the row.

        ``tokens_total`` is ``tokens_in + tokens_out``. When ``cost`` is None it is computed
        from the ``ai_models`` prices of (provider, model) with ``cost_of``; a model with no
        entry costs 0 and the row's metadata says so under ``UNKNOWN_MODEL_NOTE``. InputError for
        negative or non-integer token counts, an unknown ``type`` or a negative ``cost``.
        """
        for field, count in (("tokens_in", tokens_in), ("tokens_out", tokens_out)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InputError(f"{field} must be an integer >= 0, not {count!r}", field=field)
        try:
            usage_type = UsageType(type)
        except ValueError:
            raise InputError(f"unknown usage type {type!r}", field="type") from None
        meta = dict(metadata) if metadata is not None else None
        if cost is None:
            prices = (
                await self.session.execute(
                    select(
                        AiModel.input_price_per_mtok,
                        AiModel.output_price_per_mtok,
                        AiModel.price_per_image,
                    ).where(AiModel.provider == provider, AiModel.model == model)
                )
            ).first()
            if prices is None:
                cost = Decimal(0)
                meta = {**(meta or {}), UNKNOWN_MODEL_NOTE: f"no price for {provider}/{model}"}
            else:
                cost = cost_of(
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                    input_price_per_mtok=prices[0],
                    output_price_per_mtok=prices[1],
                )
                if images and prices[2] is not None:
                    cost += images * prices[2]  # exact: the price has nine places at most
        else:
            cost = exact_price(cost, field="cost").quantize(COST_PLACES, rounding=ROUND_HALF_EVEN)
        # run_id and api_key_id are not checked against the owner: every sum below filters by
        # the owner, so a foreign id can neither reveal nor inflate another user's numbers.
        row = Usage(
            id=new_id(_USAGE),
            user_id=self.owner_id,
            api_key_id=api_key_id,
            run_id=run_id,
            node_execution_id=node_execution_id,
            provider=provider,
            model=model,
            type=usage_type,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            tokens_total=tokens_in + tokens_out,
            cost=cost,
            meta=meta,
            created_at=_aware(at, "at") if at is not None else utcnow(),
        )
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            self.session.expunge(row)
            raise translate_integrity_error(exc, what="usage") from None
        return row

    async def by_model(self, *, start: datetime, end: datetime) -> list[UsageByModel]:
        """The owner's calls in ``[start, end)`` summed per (provider, model), in that order."""
        return await _by_model(self.session, start, end, Usage.user_id == self.owner_id)

    async def by_day(self, *, start: datetime, end: datetime) -> list[UsageByDay]:
        """The owner's calls in ``[start, end)`` summed per UTC day, oldest first.

        Days without calls are absent, not zero.
        """
        day = _utc_day(self.session)
        rows = await self.session.execute(
            select(day, *_sums())
            .where(Usage.user_id == self.owner_id, *_in_range(start, end))
            .group_by(day)
            .order_by(day)
        )
        return [UsageByDay(_as_date(r[0]), *_sum_values(r, 1)) for r in rows]

    async def by_api_key(self, *, start: datetime, end: datetime) -> list[UsageByApiKey]:
        """The owner's calls in ``[start, end)`` summed per API key (None: no key), by key id."""
        rows = await self.session.execute(
            select(Usage.api_key_id, *_sums())
            .where(Usage.user_id == self.owner_id, *_in_range(start, end))
            .group_by(Usage.api_key_id)
            .order_by(Usage.api_key_id)
        )
        return [UsageByApiKey(r[0], *_sum_values(r, 1)) for r in rows]

    async def by_node_for_run(self, *, run_id: str) -> dict[str | None, UsageTotals]:
        """The owner's calls made by one run, summed per node execution (None: calls of the
        run tied to no node)."""
        rows = await self.session.execute(_BY_NODE, {"owner_id": self.owner_id, "run_id": run_id})
        return _by_node(rows)

    async def totals_for_run(self, *, run_id: str) -> UsageTotals:
        """The owner's calls made by one run, summed (all zero for a run with none)."""
        row = (
            await self.session.execute(
                select(*_sums()).where(Usage.user_id == self.owner_id, Usage.run_id == run_id)
            )
        ).one()
        return UsageTotals(*_sum_values(row, 0))


async def instance_usage_by_model(
    session: AsyncSession, *, start: datetime, end: datetime
) -> list[UsageByModel]:
    """Instance-wide (every user; for admins and monitoring): ``UsageRepo.by_model`` over all."""
    return await _by_model(session, start, end)


@dataclass(frozen=True, slots=True)
class UsageByUser:
    user_id: str
    email: str | None
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


async def instance_usage_by_user(
    session: AsyncSession, *, start: datetime, end: datetime, limit: int = 100
) -> list[UsageByUser]:
    """Instance-wide: the ``limit`` users with the most cost, then tokens, in ``[start, end)``."""
    cost = func.sum(Usage.cost)
    rows = await session.execute(
        select(Usage.user_id, User.email, *_sums())
        .join(User, User.id == Usage.user_id, isouter=True)
        .where(*_in_range(start, end))
        .group_by(Usage.user_id, User.email)
        .order_by(func.coalesce(cost, 0).desc(), func.sum(Usage.tokens_total).desc())
        .limit(limit)
    )
    return [UsageByUser(r[0], r[1], *_sum_values(r, 2)) for r in rows]


async def instance_usage_by_day(
    session: AsyncSession, *, start: datetime, end: datetime, user_id: str | None = None
) -> list[UsageByDay]:
    """Instance-wide (or one user's): the calls of ``[start, end)`` summed per UTC day."""
    day = _utc_day(session)
    query = select(day, *_sums()).where(*_in_range(start, end)).group_by(day).order_by(day)
    if user_id is not None:
        query = query.where(Usage.user_id == user_id)
    rows = await session.execute(query)
    return [UsageByDay(_as_date(r[0]), *_sum_values(r, 1)) for r in rows]


async def _by_model(
    session: AsyncSession, start: datetime, end: datetime, *where: ColumnElement[bool]
) -> list[UsageByModel]:
    rows = await session.execute(
        select(Usage.provider, Usage.model, *_sums())
        .where(*where, *_in_range(start, end))
        .group_by(Usage.provider, Usage.model)
        .order_by(Usage.provider, Usage.model)
    )
    return [UsageByModel(r[0], r[1], *_sum_values(r, 2)) for r in rows]


def _sums() -> tuple[ColumnElement[Any], ...]:
    return (
        func.count(),
        func.coalesce(func.sum(Usage.tokens_in), 0),
        func.coalesce(func.sum(Usage.tokens_out), 0),
        func.coalesce(func.sum(Usage.tokens_total), 0),
        # sum() keeps the column's Money type, so SQLite's nano-unit integers come back Decimal.
        func.sum(Usage.cost),
    )


def _sum_values(row: Row[Any], first: int) -> tuple[int, int, int, int, Decimal]:
    calls, tokens_in, tokens_out, tokens_total, cost = row[first : first + 5]
    return (
        int(calls),
        int(tokens_in),
        int(tokens_out),
        int(tokens_total),
        Decimal(0).quantize(COST_PLACES) if cost is None else cost,
    )


_BY_NODE = (
    select(Usage.node_execution_id, *_sums())
    .where(Usage.user_id == bindparam("owner_id"), Usage.run_id == bindparam("run_id"))
    .group_by(Usage.node_execution_id)
)


def usage_by_node_of_run(
    conn: Connection, *, owner_id: str, run_id: str
) -> dict[str | None, UsageTotals]:
    """``UsageRepo.by_node_for_run`` on a plain connection (``Database.run_read``)."""
    return _by_node(conn.execute(_BY_NODE, {"owner_id": owner_id, "run_id": run_id}))


def _by_node(rows: Iterable[Row[Any]]) -> dict[str | None, UsageTotals]:
    return {r[0]: UsageTotals(*_sum_values(r, 1)) for r in rows}


def _in_range(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    start, end = _aware(start, "start"), _aware(end, "end")
    if not start < end:
        raise InputError("start must be before end", field="start")
    return (Usage.created_at >= start, Usage.created_at < end)


def _utc_day(session: AsyncSession) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        # timezone('UTC', timestamptz) is the UTC wall-clock time, whatever the session's zone.
        return cast(func.timezone("UTC", Usage.created_at), Date)
    # SQLite stores UTC as ISO text; date() takes its first ten characters' worth.
    return func.date(Usage.created_at)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InputError(f"{field} must be a timezone-aware datetime", field=field)
    return value
