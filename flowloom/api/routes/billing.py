"""The caller's own plan: the package in force, the subscription, the credits, and the
packages the instance offers. Changing them is for an administrator (``/admin``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from flowloom.api.deps import CurrentUser, DatabaseDep
from flowloom.api.schemas import Page
from flowloom.billing import CREDIT_SPENT, plan_of
from flowloom.storage.enums import SubscriptionStatus
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.tables import User
from flowloom.storage.tables.base import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/billing", tags=["billing"])


class PackageOffer(BaseModel):
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


class SubscriptionView(BaseModel):
    id: str
    status: SubscriptionStatus
    start_date: datetime
    end_date: datetime | None


class PlanView(BaseModel):
    package: PackageOffer | None
    """The package whose limits apply; null: no plan, so no limits."""
    source: Literal["subscription", "default"] | None
    """``subscription``: the caller's own; ``default``: the instance's default package."""
    subscription: SubscriptionView | None
    credits: int
    credit_rule: str
    """What a credit buys."""


CREDIT_RULE = (
    "one credit buys one run past the plan's monthly run limit; it is spent only when the "
    f"limit is reached, and the run it paid for says {CREDIT_SPENT}: true in its trigger data. "
    "Credits do not buy tokens."
)


@router.get("/plan")
async def read_plan(caller: CurrentUser, db: DatabaseDep) -> PlanView:
    """The caller's plan, subscription and credits."""
    now = utcnow()
    async with db.read() as session:
        plan = await plan_of(session, user_id=caller.user_id, now=now)
        current = await SubscriptionRepo(session).current(user_id=caller.user_id, now=now)
        package = (
            None if plan is None else await PackageRepo(session).get(package_id=plan.package_id)
        )
        user = await session.get(User, caller.user_id)
    subscription = None
    if current is not None:
        row = current[0]
        subscription = SubscriptionView(
            id=row.id, status=row.status, start_date=row.start_date, end_date=row.end_date
        )
    return PlanView(
        package=None if package is None else PackageOffer.model_validate(package),
        source=None if plan is None else plan.source,
        subscription=subscription,
        credits=0 if user is None else user.credits,
        credit_rule=CREDIT_RULE,
    )


@router.get("/packages")
async def list_offered_packages(caller: CurrentUser, db: DatabaseDep) -> Page[PackageOffer]:
    """The active packages of this instance, by name."""
    async with db.read() as session:
        packages = await PackageRepo(session).list(active_only=True)
    return Page(items=[PackageOffer.model_validate(p) for p in packages])
