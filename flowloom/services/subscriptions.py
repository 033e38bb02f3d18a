"""Putting an account on a package and taking it off: by an administrator, or by the account
itself for a package offered to everyone.

An account subscribes on its own only to a package that is public (a private one is NotFound,
as if there were none) and active (Conflict); an administrator may put it on any active
package, with an end date. Each change writes its audit entry in the same transaction:
``admin.user.subscribe`` / ``admin.user.unsubscribe`` for an administrator's,
``billing.subscribe`` / ``billing.cancel`` for the account's own.
"""

from __future__ import annotations

from datetime import datetime

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.services.actor import Actor
from flowloom.storage.database import Database
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables import Package, UserSubscription

__all__ = ["cancel_for", "cancel_own", "subscribe", "subscribe_own"]


async def subscribe(
    db: Database, actor: Actor, *, user_id: str, package_id: str, end_date: datetime | None
) -> tuple[UserSubscription, Package]:
    """An administrator puts the account on the package from now (the subscription in force
    ends). Conflict for an inactive package; InputError for an end date without a time zone
    or not in the future."""
    if end_date is not None and end_date.tzinfo is None:
        raise InputError("end_date needs a timezone (e.g. 2030-01-01T00:00:00Z)", field="end_date")
    async with db.write() as session:
        await UserRepo(session).get(user_id=user_id)
        subscription = await SubscriptionRepo(session).subscribe(
            user_id=user_id, package_id=package_id, end_date=end_date
        )
        package = await PackageRepo(session).get(package_id=package_id)
        await actor.record(
            session,
            "admin.user.subscribe",
            "user",
            user_id,
            {"package": package.name, "subscription": subscription.id},
        )
        return subscription, package


async def cancel_for(db: Database, actor: Actor, *, user_id: str) -> int:
    """An administrator ends the account's subscription now; how many ended (the default
    package, if any, applies from then on)."""
    async with db.write() as session:
        await UserRepo(session).get(user_id=user_id)
        ended = await SubscriptionRepo(session).cancel(user_id=user_id)
        if ended:
            await actor.record(session, "admin.user.unsubscribe", "user", user_id, {"ended": ended})
    return ended


async def subscribe_own(db: Database, actor: Actor, *, package_id: str) -> UserSubscription:
    """The actor subscribes to a public, active package from now."""
    async with db.write() as session:
        package = await PackageRepo(session).get(package_id=package_id)
        if not package.public:
            raise NotFound("package", package_id)
        if not package.active:
            raise Conflict(f"package {package.name!r} is no longer offered")
        subscription = await SubscriptionRepo(session).subscribe(
            user_id=actor.user_id, package_id=package.id
        )
        await actor.record(
            session, "billing.subscribe", "subscription", subscription.id, {"package": package.name}
        )
        return subscription


async def cancel_own(db: Database, actor: Actor) -> None:
    """The actor ends its own subscription now; NotFound when none is in force."""
    async with db.write() as session:
        subscriptions = SubscriptionRepo(session)
        current = await subscriptions.current(user_id=actor.user_id)
        if current is None:
            raise NotFound("subscription", "current")
        await subscriptions.cancel(user_id=actor.user_id)
        await actor.record(
            session, "billing.cancel", "subscription", current[0].id, {"package": current[1].name}
        )
