"""Which plan a user is on, and what the current calendar month (UTC) has used of it.

A user's plan is their subscription in force; without one, the package the instance setting
``default_package`` names; without that, no plan at all, which means no limits. Months are
calendar months in UTC: every count starts again at 00:00 UTC on the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    Boolean,
    Connection,
    and_,
    bindparam,
    case,
    false,
    literal_column,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.raw_statements import PgStatement, SqliteStatement
from flowloom.storage.repos.billing import runs_started, subscription_in_force, tokens_used
from flowloom.storage.repos.system_settings import setting_value, settings_generation
from flowloom.storage.tables import Package, User, UserSubscription

__all__ = [
    "DefaultPackageName",
    "MonthStatus",
    "Plan",
    "PlanRead",
    "month_status",
    "month_window",
    "plan_in_force",
    "plan_in_force_outside",
    "plan_of",
    "plan_read",
]


@dataclass(frozen=True, slots=True)
class Plan:
    """The package whose limits apply to a user, and why it applies."""

    package_id: str
    name: str
    max_runs_per_month: int | None
    """None: unlimited."""
    max_tokens_per_month: int | None
    """None: unlimited."""
    source: Literal["subscription", "default"]
    """``subscription``: the user's own; ``default``: the instance's ``default_package``."""
    subscription_id: str | None = None
    ends_at: datetime | None = None

    @property
    def limited(self) -> bool:
        return self.max_runs_per_month is not None or self.max_tokens_per_month is not None


@dataclass(frozen=True, slots=True)
class MonthStatus:
    """A user's current month against their plan."""

    plan: Plan | None
    month_start: datetime
    resets_at: datetime
    """The start of the next month, when the counts start again."""
    runs_used: int
    tokens_used: int
    credits: int


def month_window(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) holding ``now``: its first instant and the next month's."""
    at = now.astimezone(UTC)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else (start.replace(month=start.month + 1))
    )
    return start, end


_PLAN_COLUMNS = (
    Package.id,
    Package.name,
    Package.max_runs_per_month,
    Package.max_tokens_per_month,
)

# Built once (every run start asks): only the user and the moment are bound per call.
_SUBSCRIBED = (
    select(*_PLAN_COLUMNS, UserSubscription.id, UserSubscription.end_date)
    .join(Package, Package.id == UserSubscription.package_id)
    .where(*subscription_in_force(bindparam("user_id"), bindparam("at")))
    .order_by(UserSubscription.start_date.desc(), UserSubscription.id.desc())
    .limit(1)
)
_ACTIVE_PACKAGE = select(*_PLAN_COLUMNS).where(
    Package.name == bindparam("name"), Package.active.is_(True)
)
# On SQLite, on sqlite3 itself: SQLAlchemy's per-execution work on the subscription's join was
# a twentieth of a webhook run's server CPU, for a read that finds nothing for most users.
_SUBSCRIBED_RAW = SqliteStatement(_SUBSCRIBED)
_ACTIVE_PACKAGE_RAW = SqliteStatement(_ACTIVE_PACKAGE)
# On PostgreSQL, for a run start that asks outside any transaction: on asyncpg itself.
_SUBSCRIBED_PG = PgStatement(_SUBSCRIBED)
_ACTIVE_PACKAGE_PG = PgStatement(_ACTIVE_PACKAGE)


def _plan_read() -> Any:
    """Both reads of ``plan_in_force`` as ONE row (the default package's by a name bound from
    ``DefaultPackageName.kept``, ``known`` whether one is kept): first whether the plan in force
    limits nothing (no plan, or an unlimited one: a run is allowed with nothing more to read;
    false when no name is kept and there is no subscription), then the subscription's columns,
    then the default package's, each all NULL when there is none. For a run start that reads
    them in its own statement."""
    subscribed = _SUBSCRIBED.subquery("subscribed")
    default = _ACTIVE_PACKAGE.limit(1).subquery("default_package")
    one = select(literal_column("1").label("one")).subquery("one")

    def unlimited(package: Any) -> Any:
        return and_(
            package.c.max_runs_per_month.is_(None), package.c.max_tokens_per_month.is_(None)
        )

    limits_nothing = case(
        (subscribed.c.id.is_not(None), unlimited(subscribed)),
        (bindparam("known", type_=Boolean), default.c.id.is_(None) | unlimited(default)),
        else_=false(),
    )
    return select(limits_nothing.label("limits_nothing"), *subscribed.c, *default.c).select_from(
        one.outerjoin(subscribed, true()).outerjoin(default, true())
    )


_PLAN_READ_PG = PgStatement(_plan_read())
_SUBSCRIBED_WIDTH = len(_SUBSCRIBED.selected_columns)


class DefaultPackageName:
    """The ``default_package`` setting, read at most once every ``ttl_s`` seconds.

    Run starts ask for it every time (users without a subscription fall back to it); it changes
    only when an administrator changes it. A change made by this process is seen at once (the
    settings' generation moves); one made by another process, within ``ttl_s``. Only the name
    is kept: the package's limits and whether it is active are read at every start.
    """

    def __init__(self, ttl_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._kept: tuple[int, float, str | None] | None = None
        """(settings generation, read at, name) of the last read."""

    def get(self, conn: Connection) -> str | None:
        fresh, name = self.kept()
        if fresh:
            return name
        generation, now = settings_generation(), self._clock()
        name = cast(str | None, setting_value(conn, "default_package"))
        self._kept = (generation, now, name)
        return name

    def kept(self) -> tuple[bool, str | None]:
        """Whether the name kept is still to be trusted (no ``get`` needed), and the name."""
        kept = self._kept
        if kept is None or kept[0] != settings_generation():
            return False, None
        return self._clock() - kept[1] < self._ttl_s, kept[2]


async def plan_in_force_outside(
    db: Database, *, user_id: str, now: datetime, default_package: DefaultPackageName
) -> Plan | None:
    """``plan_in_force`` outside any transaction (a run start that asks before its write). On
    PostgreSQL its statements run on asyncpg itself, prepared once per connection: one round
    trip for a user with a subscription or without any default package, no SQLAlchemy
    checkout; the default package's name is read through SQLAlchemy when it is not kept."""
    if db.is_sqlite:
        return await db.run_read(
            lambda conn: plan_in_force(
                conn, user_id=user_id, now=now, default_package=default_package
            )
        )
    async with db.asyncpg_connection() as pg:
        subscribed = await _SUBSCRIBED_PG.fetchrow(pg, user_id=user_id, at=now)
    if subscribed is not None:
        return _subscribed_plan(subscribed)
    return await _default_plan_outside(db, default_package)


async def _default_plan_outside(db: Database, default_package: DefaultPackageName) -> Plan | None:
    """The default package's plan, for a user without a subscription (PostgreSQL)."""
    fresh, default_name = default_package.kept()
    if not fresh:
        default_name = await db.run_read(default_package.get)
    if default_name is None:
        return None
    async with db.asyncpg_connection() as pg:
        default = await _ACTIVE_PACKAGE_PG.fetchrow(pg, name=default_name)
    return None if default is None else _default_plan(default)


@dataclass(frozen=True, slots=True)
class PlanRead:
    """``plan_in_force_outside`` on PostgreSQL as part of another statement (a run start's
    look-up), made by ``plan_read``: ``sql(first)`` is a SELECT of exactly one row whose
    parameters are numbered from ``$first`` (its first column: whether the plan limits
    nothing), ``args`` their values, and ``plan`` what the row's values come to. The default
    package is read by the name kept (``DefaultPackageName.kept``); when none is kept fresh,
    ``plan`` reads the name, and the package, itself (for a user without a subscription)."""

    db: Database
    default_package: DefaultPackageName
    default_known: bool
    args: tuple[Any, ...]

    def sql(self, first: int) -> str:
        return _PLAN_READ_PG.sql_from(first)

    async def plan(self, values: Any) -> Plan | None:
        """The plan in force, from the values the row read (in its column order)."""
        row = _PLAN_READ_PG.converted(values)[1:]
        subscribed, default = row[:_SUBSCRIBED_WIDTH], row[_SUBSCRIBED_WIDTH:]
        if subscribed[0] is not None:
            return _subscribed_plan(subscribed)
        if not self.default_known:
            return await _default_plan_outside(self.db, self.default_package)
        return None if default[0] is None else _default_plan(default)


def plan_read(
    db: Database, *, user_id: str, now: datetime, default_package: DefaultPackageName
) -> PlanRead:
    """``PlanRead`` of the plan in force for the user at ``now`` (PostgreSQL)."""
    known, name = default_package.kept()
    args = _PLAN_READ_PG.args(
        {"user_id": user_id, "at": now, "name": name if known else None, "known": known}
    )
    return PlanRead(db, default_package, known, args)


def _subscribed_plan(row: Any) -> Plan:
    package_id, name, runs, tokens, subscription_id, ends_at = row
    return Plan(package_id, name, runs, tokens, "subscription", subscription_id, ends_at)


def _default_plan(row: Any) -> Plan:
    package_id, name, runs, tokens = row
    return Plan(package_id, name, runs, tokens, "default")


async def plan_of(
    session: AsyncSession,
    *,
    user_id: str,
    now: datetime,
    default_package: DefaultPackageName | None = None,
) -> Plan | None:
    """The plan in force for the user at ``now``, or None (no limits): ``plan_in_force``."""
    return await session.run_sync(
        lambda sync: plan_in_force(
            sync.connection(), user_id=user_id, now=now, default_package=default_package
        )
    )


def plan_in_force(
    conn: Connection,
    *,
    user_id: str,
    now: datetime,
    default_package: DefaultPackageName | None = None,
) -> Plan | None:
    """The plan in force for the user at ``now``, or None (no limits).

    A subscription counts even if its package was deactivated later (deactivation stops new
    subscriptions, not current ones); the default package counts only while it is active.
    Asked at every run start, on the start's connection: columns only (no ORM objects),
    statements built once, and the default package's name from ``default_package`` when
    given (else read from the settings).
    """
    raw = sqlite_connection(conn) if conn.dialect.name == "sqlite" else None
    if raw is not None:
        subscribed = _SUBSCRIBED_RAW.first_typed(raw, user_id=user_id, at=now)
    else:
        subscribed = conn.execute(_SUBSCRIBED, {"user_id": user_id, "at": now}).first()
    if subscribed is not None:
        return _subscribed_plan(subscribed)
    if default_package is not None:
        default_name = default_package.get(conn)
    else:
        default_name = setting_value(conn, "default_package")
    if default_name is None:
        return None
    if raw is not None:
        default = _ACTIVE_PACKAGE_RAW.first_typed(raw, name=default_name)
    else:
        default = conn.execute(_ACTIVE_PACKAGE, {"name": default_name}).first()
    return None if default is None else _default_plan(default)


async def month_status(session: AsyncSession, *, user_id: str, now: datetime) -> MonthStatus:
    """The plan, the month's runs and tokens, and the credits of the user at ``now``."""
    start, end = month_window(now)
    credits = await session.scalar(select(User.credits).where(User.id == user_id))
    return MonthStatus(
        plan=await plan_of(session, user_id=user_id, now=now),
        month_start=start,
        resets_at=end,
        runs_used=await runs_started(session, user_id=user_id, start=start, end=end),
        tokens_used=await tokens_used(session, user_id=user_id, start=start, end=end),
        credits=int(credits or 0),
    )
