"""The storage under plans: instance settings, packages, subscriptions, credits, roles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from billingkit import make_package, make_user
from sqlalchemy import update

from flowloom.billing import month_window, plan_of
from flowloom.exceptions import Conflict, InputError
from flowloom.storage.database import Database
from flowloom.storage.enums import SubscriptionStatus
from flowloom.storage.repos.billing import (
    PackageRepo,
    SubscriptionRepo,
    grant_credits,
    set_role,
    spend_credit,
)
from flowloom.storage.repos.system_settings import InstanceSettings, SystemSettingsRepo
from flowloom.storage.tables import SystemSetting


def test_month_window_is_the_calendar_month_in_utc() -> None:
    assert month_window(datetime(2030, 12, 31, 23, 0, tzinfo=UTC)) == (
        datetime(2030, 12, 1, tzinfo=UTC),
        datetime(2031, 1, 1, tzinfo=UTC),
    )
    # 00:30 on 1 March in UTC+2 is still February in UTC.
    east = datetime(2030, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert month_window(east)[0] == datetime(2030, 2, 1, tzinfo=UTC)


async def test_settings_have_defaults_and_refuse_what_they_do_not_know(db: Database) -> None:
    async with db.write() as session:
        settings = SystemSettingsRepo(session)
        assert await settings.read() == InstanceSettings()
        with pytest.raises(InputError) as unknown:
            await settings.update(changes={"colour": "blue"})
        assert unknown.value.field == "colour"
        with pytest.raises(InputError) as wrong_type:
            await settings.update(changes={"registration_open": "no"})
        assert wrong_type.value.field == "registration_open"
        with pytest.raises(InputError) as missing:
            await settings.update(changes={"default_package": "no-such-plan"})
        assert missing.value.field == "default_package"
        assert (
            await settings.update(changes={"registration_open": False})
        ).registration_open is False
        assert (
            await settings.update(changes={"registration_open": None})
        ).registration_open is True


async def test_one_setting_reads_as_all_of_them_do(db: Database) -> None:
    async with db.write() as session:
        settings = SystemSettingsRepo(session)
        assert await settings.value("registration_open") is True
        await settings.update(changes={"registration_open": False})
        assert await settings.value("registration_open") is False
        # A stored value that is not valid (written by hand) reads as the default, as in read().
        await session.execute(
            update(SystemSetting)
            .where(SystemSetting.key == "registration_open")
            .values(value="not a bool")
        )
        assert await settings.value("registration_open") is True
        assert (await settings.read()).registration_open is True
        with pytest.raises(InputError) as unknown:
            await settings.value("colour")
        assert unknown.value.field == "colour"


async def test_an_inactive_package_cannot_be_the_default(db: Database) -> None:
    package_id = await make_package(db, active=False)
    async with db.write() as session:
        name = (await PackageRepo(session).get(package_id=package_id)).name
        with pytest.raises(InputError):
            await SystemSettingsRepo(session).update(changes={"default_package": name})


async def test_package_values_are_checked_naming_the_field(db: Database) -> None:
    async with db.write() as session:
        packages = PackageRepo(session)
        for field, value in [
            ("max_runs_per_month", -1),
            ("max_tokens_per_month", True),
            ("price", "-0.01"),
            ("price", 0.5),
            ("interval", "week"),
            ("currency", "dollars"),
        ]:
            with pytest.raises(InputError) as bad:
                await packages.create(name="bad", **{field: value})
            assert bad.value.field == field


async def test_a_package_with_subscribers_cannot_be_deleted(db: Database) -> None:
    user = await make_user(db)
    used = await make_package(db)
    unused = await make_package(db)
    async with db.write() as session:
        await SubscriptionRepo(session).subscribe(user_id=user, package_id=used)
        await SubscriptionRepo(session).cancel(user_id=user)
        with pytest.raises(Conflict):
            await PackageRepo(session).delete(package_id=used)
        await PackageRepo(session).delete(package_id=unused)


async def test_subscribing_ends_the_subscription_in_force(db: Database) -> None:
    user = await make_user(db)
    small = await make_package(db, max_runs_per_month=1)
    big = await make_package(db, max_runs_per_month=1000)
    async with db.write() as session:
        subscriptions = SubscriptionRepo(session)
        first = await subscriptions.subscribe(user_id=user, package_id=small)
        await subscriptions.subscribe(user_id=user, package_id=big)
        await session.refresh(first)
        assert first.status == SubscriptionStatus.CANCELLED
        assert first.end_date is not None
        plan = await plan_of(session, user_id=user, now=datetime.now(UTC))
        assert plan is not None
        assert (plan.package_id, plan.max_runs_per_month, plan.source) == (
            big,
            1000,
            "subscription",
        )
        assert await subscriptions.cancel(user_id=user) == 1
        assert await plan_of(session, user_id=user, now=datetime.now(UTC)) is None
        inactive = await PackageRepo(session).create(name="retired-plan", active=False)
        with pytest.raises(Conflict):
            await subscriptions.subscribe(user_id=user, package_id=inactive.id)


async def test_a_subscription_past_its_end_date_no_longer_applies(db: Database) -> None:
    user = await make_user(db)
    package = await make_package(db, max_runs_per_month=3)
    now = datetime.now(UTC)
    async with db.write() as session:
        await SubscriptionRepo(session).subscribe(
            user_id=user, package_id=package, end_date=now + timedelta(days=1), now=now
        )
        assert await plan_of(session, user_id=user, now=now) is not None
        assert await plan_of(session, user_id=user, now=now + timedelta(days=2)) is None


async def test_credits_never_go_below_zero_and_each_is_spent_once(db: Database) -> None:
    user = await make_user(db)
    async with db.write() as session:
        assert await grant_credits(session, user_id=user, amount=2) == 2
        with pytest.raises(Conflict):
            await grant_credits(session, user_id=user, amount=-3)
        with pytest.raises(InputError):
            await grant_credits(session, user_id=user, amount=0)

    async def spend() -> int | None:
        async with db.write() as session:
            return await spend_credit(session, user_id=user)

    spent = await asyncio.gather(*(spend() for _ in range(6)))
    assert sorted(s for s in spent if s is not None) == [0, 1]
    assert spent.count(None) == 4


async def test_the_last_admin_keeps_the_role(db: Database) -> None:
    async with db.write() as session:
        from sqlalchemy import update

        from flowloom.storage.tables import User

        # Only this test's admins count: demote whatever admins earlier tests made.
        await session.execute(update(User).values(role="user"))
    admin = await make_user(db, admin=True)
    async with db.write() as session:
        with pytest.raises(Conflict):
            await set_role(session, user_id=admin, role="user")
        with pytest.raises(InputError):
            await set_role(session, user_id=admin, role="root")
    other = await make_user(db)
    async with db.write() as session:
        await set_role(session, user_id=other, role="admin")
        assert (await set_role(session, user_id=admin, role="user")).role == "user"
