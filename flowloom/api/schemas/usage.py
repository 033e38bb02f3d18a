"""Model usage: the sums of calls, tokens and cost, and the reports built from them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal

from pydantic import ConfigDict, Field

from flowloom.api.schemas.common import ApiModel


class UsageSums(ApiModel):
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal
    """A decimal string, exact to the nano-unit."""


NO_USAGE: Final = UsageSums(calls=0, tokens_in=0, tokens_out=0, tokens_total=0, cost=Decimal(0))

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


class UsageReport(ApiModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    """The first day summed (UTC)."""
    to: date
    """The last day summed (UTC), included."""
    group_by: GroupBy
    groups: list[UsageGroup]
    """Only groups with calls; days without calls are absent."""
    totals: UsageSums


class LimitUse(ApiModel):
    used: int
    allowed: int | None
    """None: unlimited."""
    remaining: int | None


class PlanRef(ApiModel):
    id: str
    name: str
    source: Literal["subscription", "default"]
    """``subscription``: the caller's own; ``default``: the instance's default package."""


class UsageSummary(ApiModel):
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
