"""The caller's own plan: the package in force, the month's usage against its limits, the
credits, and the public packages the instance offers, which the caller may subscribe to and
cancel on their own (an administrator gives any other package, ``/admin``). flowloom takes no
payment: an instance that charges for a package keeps it private and assigns it once paid.

A subscription ends at its end date, if it has one: from then on its limits no longer apply (the
instance's default package does), and the daily maintenance pass writes its status ``expired``.
"""

from fastapi import APIRouter, Request, Response, status

from flowloom.api.deps import AccountOwner, CurrentUser, DatabaseDep, actor
from flowloom.api.errors import problem_responses
from flowloom.api.schemas.billing import (
    MonthUsage,
    PackageOffer,
    PlanView,
    SelfSubscribe,
    SubscriptionView,
)
from flowloom.api.schemas.common import Page
from flowloom.billing import CREDIT_SPENT, month_status, plan_of
from flowloom.services import subscriptions
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.tables import User
from flowloom.storage.tables.base import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/billing", tags=["billing"])


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
        month = await month_status(session, user_id=caller.user_id, now=now)
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
        usage=MonthUsage(
            month_start=month.month_start,
            resets_at=month.resets_at,
            runs_used=month.runs_used,
            max_runs=None if plan is None else plan.max_runs_per_month,
            tokens_used=month.tokens_used,
            max_tokens=None if plan is None else plan.max_tokens_per_month,
        ),
    )


@router.get("/packages")
async def list_offered_packages(caller: CurrentUser, db: DatabaseDep) -> Page[PackageOffer]:
    """The packages a user may subscribe to on their own (active and public), by name."""
    async with db.read() as session:
        packages = await PackageRepo(session).list(active_only=True, public_only=True)
    return Page(items=[PackageOffer.model_validate(p) for p in packages])


@router.put(
    "/subscription",
    responses=problem_responses(
        {404: "No such package, or one that is not public", 409: "An inactive package"}
    ),
)
async def subscribe(
    body: SelfSubscribe, caller: AccountOwner, request: Request, db: DatabaseDep
) -> PlanView:
    """Subscribe to a public package from now; the subscription in force ends. A package an
    administrator keeps private answers 404, as if there were none."""
    await subscriptions.subscribe_own(db, actor(caller, request), package_id=body.package_id)
    return await read_plan(caller, db)


@router.delete("/subscription", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_subscription(caller: AccountOwner, request: Request, db: DatabaseDep) -> Response:
    """End the caller's subscription now (the default package applies from then on); 404 when
    there is none in force."""
    await subscriptions.cancel_own(db, actor(caller, request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
