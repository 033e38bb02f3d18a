"""Billing as an account sees it: the packages offered, its subscription, plan and month."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field

from flowloom.api.schemas.common import ApiModel, RequestBody
from flowloom.storage.enums import SubscriptionStatus


class PackageOffer(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str | None
    price: Decimal
    """A decimal string."""
    currency: str
    interval: str
    features: list[Any]
    max_runs_per_month: int | None
    """Null: unlimited."""
    max_tokens_per_month: int | None
    """Null: unlimited."""


class SubscriptionView(ApiModel):
    id: str
    status: SubscriptionStatus
    start_date: datetime
    end_date: datetime | None


class MonthUsage(ApiModel):
    month_start: datetime
    resets_at: datetime
    """When the month's counts start again (the first instant of the next month, UTC)."""
    runs_used: int
    """Runs started this month, sub-runs included."""
    max_runs: int | None
    """The plan's monthly run limit; null: unlimited."""
    tokens_used: int
    max_tokens: int | None
    """The plan's monthly token limit; null: unlimited."""


class PlanView(ApiModel):
    package: PackageOffer | None
    """The package whose limits apply; null: no plan, so no limits."""
    source: Literal["subscription", "default"] | None
    """``subscription``: the caller's own; ``default``: the instance's default package."""
    subscription: SubscriptionView | None
    credits: int
    credit_rule: str
    """What a credit buys."""
    usage: MonthUsage
    """This month against the plan's limits."""


class SelfSubscribe(RequestBody):
    model_config = ConfigDict(extra="forbid")

    package_id: str = Field(min_length=1, max_length=40)
