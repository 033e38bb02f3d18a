"""The caller's usage of AI models: totals over a range of days, and this month against the plan.

Days are UTC days and both ends of a range are included. Each answer is one aggregate query on
the usage table's ``(user_id, created_at)`` index. Costs are decimal strings, exact to the
nano-unit: sum them as decimals, never as floats.
"""

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query

from flowloom.api.deps import CurrentUser, DatabaseDep
from flowloom.api.schemas.usage import (
    GroupBy,
    LimitUse,
    PlanRef,
    UsageGroup,
    UsageReport,
    UsageSummary,
    UsageSums,
)
from flowloom.api.usage_window import usage_window
from flowloom.billing import month_status
from flowloom.storage.repos.billing import usage_by_provider
from flowloom.storage.repos.usage import UsageRepo
from flowloom.storage.tables.base import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/usage", tags=["usage"])


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
