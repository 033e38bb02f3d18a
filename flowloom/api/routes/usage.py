"""The caller's usage of AI models: totals over a range of days, and this month against the plan.

Days are UTC days and both ends of a range are included. Each answer is one aggregate query on
the usage table's ``(user_id, created_at)`` index. Costs are decimal strings, exact to the
nano-unit: sum them as decimals, never as floats.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Protocol

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from flowloom.api.deps import CurrentUser, DatabaseDep
from flowloom.api.schemas import UsageSums
from flowloom.billing import month_status
from flowloom.exceptions import InputError
from flowloom.storage.repos.billing import usage_by_provider
from flowloom.storage.repos.usage import UsageRepo
from flowloom.storage.tables.base import utcnow

__all__ = ["MAX_RANGE_DAYS", "router", "usage_window"]

router = APIRouter(prefix="/usage", tags=["usage"])

MAX_RANGE_DAYS: Final = 366
"""The longest range one request may sum, in days (both ends included)."""

GroupBy = Literal["day", "model", "provider", "api_key"]


class UsageGroup(UsageSums):
    day: date | None = None
    """With ``group_by=day``: the UTC day."""
    provider: str | None = None
    """With ``group_by=model`` or ``provider``."""
    model: str | None = None
    """With ``group_by=model``."""
    api_key_id: str | None = None
    """With ``group_by=api_key``: the key, or null for calls made without one (browser, CLI)."""


class UsageReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    """The first day summed (UTC)."""
    to: date
    """The last day summed (UTC), included."""
    group_by: GroupBy
    groups: list[UsageGroup]
    """Only groups with calls; days without calls are absent."""
    totals: UsageSums


class LimitUse(BaseModel):
    used: int
    allowed: int | None
    """None: unlimited."""
    remaining: int | None


class PlanRef(BaseModel):
    id: str
    name: str
    source: Literal["subscription", "default"]
    """``subscription``: the caller's own; ``default``: the instance's default package."""


class UsageSummary(BaseModel):
    month_start: datetime
    resets_at: datetime
    """When this month's counts start again (the first of next month, 00:00 UTC)."""
    package: PlanRef | None
    """None: no plan, so no limits."""
    runs: LimitUse
    tokens: LimitUse
    cost: Decimal
    """This month's cost so far, a decimal string."""
    credits: int
    """Each buys one run past the monthly run limit."""


def usage_window(first: date | None, last: date | None) -> tuple[date, date, datetime, datetime]:
    """The days asked for (default: this month so far) and the half-open times they cover.

    InputError naming the field when ``from`` is after ``to``, the range is longer than
    ``MAX_RANGE_DAYS``, or ``to`` is the last day a date can name (its end cannot be named).
    """
    today = utcnow().date()
    last = last or today
    if last >= date.max:
        raise InputError(f"to must be before {date.max.isoformat()}", field="to")
    first = first or last.replace(day=1)
    if first > last:
        raise InputError("from must be on or before to", field="from")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InputError(f"the range may cover at most {MAX_RANGE_DAYS} days", field="to")
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    return first, last, start, end


def _totals(groups: list[UsageGroup]) -> UsageSums:
    return UsageSums(
        calls=sum(g.calls for g in groups),
        tokens_in=sum(g.tokens_in for g in groups),
        tokens_out=sum(g.tokens_out for g in groups),
        tokens_total=sum(g.tokens_total for g in groups),
        cost=sum((g.cost for g in groups), Decimal("0E-9")),
    )


@router.get("")
async def read_usage(
    caller: CurrentUser,
    db: DatabaseDep,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    group_by: GroupBy = "day",
) -> UsageReport:
    """The caller's calls, tokens and cost from ``from`` to ``to`` (UTC days, both included;
    default: this month so far), summed per ``group_by``, with the range's totals."""
    first, last, start, end = usage_window(first, last)
    async with db.read() as session:
        usage = UsageRepo(session, owner_id=caller.user_id)
        if group_by == "day":
            groups = [
                UsageGroup(day=r.day, **_sums(r)) for r in await usage.by_day(start=start, end=end)
            ]
        elif group_by == "model":
            groups = [
                UsageGroup(provider=r.provider, model=r.model, **_sums(r))
                for r in await usage.by_model(start=start, end=end)
            ]
        elif group_by == "provider":
            rows = await usage_by_provider(session, user_id=caller.user_id, start=start, end=end)
            groups = [UsageGroup(provider=r.provider, **_sums(r)) for r in rows]
        else:
            groups = [
                UsageGroup(api_key_id=r.api_key_id, **_sums(r))
                for r in await usage.by_api_key(start=start, end=end)
            ]
    return UsageReport(
        from_=first, to=last, group_by=group_by, groups=groups, totals=_totals(groups)
    )


class _Summed(Protocol):
    @property
    def calls(self) -> int: ...
    @property
    def tokens_in(self) -> int: ...
    @property
    def tokens_out(self) -> int: ...
    @property
    def tokens_total(self) -> int: ...
    @property
    def cost(self) -> Decimal: ...


def _sums(row: _Summed) -> dict[str, Any]:
    return {
        "calls": row.calls,
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "tokens_total": row.tokens_total,
        "cost": row.cost,
    }


@router.get("/summary")
async def read_usage_summary(caller: CurrentUser, db: DatabaseDep) -> UsageSummary:
    """This calendar month (UTC) so far against the caller's plan: runs, tokens, cost, credits."""
    now = utcnow()
    async with db.read() as session:
        status = await month_status(session, user_id=caller.user_id, now=now)
        by_provider = await usage_by_provider(
            session, user_id=caller.user_id, start=status.month_start, end=status.resets_at
        )
    plan = status.plan
    return UsageSummary(
        month_start=status.month_start,
        resets_at=status.resets_at,
        package=None
        if plan is None
        else PlanRef(id=plan.package_id, name=plan.name, source=plan.source),
        runs=_limit_use(status.runs_used, None if plan is None else plan.max_runs_per_month),
        tokens=_limit_use(status.tokens_used, None if plan is None else plan.max_tokens_per_month),
        cost=sum((r.cost for r in by_provider), Decimal("0E-9")),
        credits=status.credits,
    )


def _limit_use(used: int, allowed: int | None) -> LimitUse:
    remaining = None if allowed is None else max(0, allowed - used)
    return LimitUse(used=used, allowed=allowed, remaining=remaining)
