"""Plans and what they count: packages, subscriptions, credits, and the month's runs and tokens.

Not owner-scoped: packages are the instance's, and subscriptions and credits are assigned by the
instance admin. Functions that read one user's numbers take the user explicitly. Methods flush,
never commit.

Credits are spent with one conditional ``UPDATE ... SET credits = credits - 1 WHERE credits > 0``
so two concurrent spenders can never take the same credit: the database decides, not a read
followed by a write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BindParameter, ColumnElement, Connection, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import PREFIXES, id_floor, new_id
from flowloom.storage.enums import SubscriptionStatus, UserRole
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.repos.ai_models import exact_price
from flowloom.storage.tables import Package, Usage, User, UserSubscription, WorkflowRun
from flowloom.storage.tables.base import utcnow

__all__ = [
    "PACKAGE_FIELDS",
    "PackageRepo",
    "SubscriptionRepo",
    "UsageByProvider",
    "grant_credits",
    "list_accounts",
    "runs_started",
    "runs_started_on",
    "set_role",
    "spend_credit",
    "spend_credit_on",
    "subscription_in_force",
    "tokens_used",
    "tokens_used_on",
    "usage_by_provider",
]

PACKAGE_FIELDS: Final = (
    "name",
    "description",
    "price",
    "currency",
    "interval",
    "features",
    "max_runs_per_month",
    "max_tokens_per_month",
    "active",
    "public",
)
"""What a package has that can be set; ``PackageRepo.update`` takes any of them."""

_INT32_MAX: Final = 2**31 - 1
_INT64_MAX: Final = 2**63 - 1
_MAX_CREDIT_CHANGE: Final = 1_000_000_000
_PRICE_CEILING: Final = Decimal(10) ** 11
_NANO: Final = Decimal("0.000000001")


# ---- packages


class PackageRepo:
    """The instance's packages (plans)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, **values: Any) -> Package:
        """A new package from ``values`` (the ``PACKAGE_FIELDS``; ``name`` required).

        A NULL limit means unlimited. InputError naming the field for a bad value; Conflict if
        the name is taken.
        """
        if "name" not in values:
            raise InputError("name is required", field="name")
        checked = _package_values(values)
        package = Package(id=new_id(PREFIXES["packages"]), **checked)
        self._session.add(package)
        await self._flush()
        return package

    async def get(self, *, package_id: str, lock: bool = False) -> Package:
        """The package; with ``lock``, its row stays locked until the transaction ends, so a
        rule checked against it (the instance's default package) holds when the change is
        written (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction locks everything)."""
        package = await self._session.get(
            Package, package_id, with_for_update=lock, populate_existing=lock
        )
        if package is None:
            raise NotFound("package", package_id)
        return package

    async def get_by_name(self, *, name: str) -> Package:
        package = await self._session.scalar(select(Package).where(Package.name == name))
        if package is None:
            raise NotFound("package", name)
        return package

    async def list(self, *, active_only: bool = False, public_only: bool = False) -> list[Package]:
        """Every package by name (a handful, so no paging)."""
        query = select(Package).order_by(Package.name)
        if active_only:
            query = query.where(Package.active.is_(True))
        if public_only:
            query = query.where(Package.public.is_(True))
        return list(await self._session.scalars(query))

    async def update(self, *, package_id: str, changes: Mapping[str, Any]) -> Package:
        """Set the given fields. A new limit applies from the next check on; subscribers stay.

        InputError naming the field for a bad value; Conflict for a taken name.
        """
        package = await self.get(package_id=package_id)
        for field, value in _package_values(changes).items():
            setattr(package, field, value)
        package.updated_at = utcnow()
        await self._flush()
        return package

    async def subscriber_count(self, *, package_id: str) -> int:
        """How many subscriptions, past or present, point at the package."""
        count = await self._session.scalar(
            select(func.count()).where(UserSubscription.package_id == package_id)
        )
        return int(count or 0)

    async def delete(self, *, package_id: str) -> None:
        """Delete a package nobody ever subscribed to; Conflict (deactivate it instead) if
        somebody did, because their subscriptions are billing history."""
        package = await self.get(package_id=package_id)
        subscribers = await self.subscriber_count(package_id=package_id)
        if subscribers:
            raise Conflict(
                f"package {package.name!r} has {subscribers} subscription(s), so it cannot be "
                "deleted; deactivate it instead (PATCH active: false)"
            )
        await self._session.delete(package)
        await self._flush()

    async def _flush(self) -> None:
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what="package") from None


def _package_values(values: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for field, value in values.items():
        if field not in PACKAGE_FIELDS:
            raise InputError(f"packages have no field {field!r}", field=field)
        checked[field] = _package_value(field, value)
    return checked


def _package_value(field: str, value: Any) -> Any:
    if field == "name":
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise InputError("name must be 1-100 characters", field=field)
        return value.strip()
    if field == "description":
        if value is not None and not isinstance(value, str):
            raise InputError("description must be text", field=field)
        return value
    if field == "price":
        price = exact_price(value, field=field)
        if price >= _PRICE_CEILING or price.quantize(_NANO) != price:
            raise InputError("price must be below 10^11 with at most 9 decimals", field=field)
        return price
    if field == "currency":
        if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
            raise InputError("currency must be a three-letter code such as 'usd'", field=field)
        return value.lower()
    if field == "interval":
        if value not in ("month", "year"):
            raise InputError("interval must be 'month' or 'year'", field=field)
        return value
    if field == "features":
        if not isinstance(value, list):
            raise InputError("features must be a list", field=field)
        return list(value)
    if field in ("max_runs_per_month", "max_tokens_per_month"):
        highest = _INT32_MAX if field == "max_runs_per_month" else _INT64_MAX
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= highest:
            raise InputError(
                f"{field} must be a whole number from 0 to {highest}, or null for unlimited",
                field=field,
            )
        return value
    if field in ("active", "public"):
        if not isinstance(value, bool):
            raise InputError(f"{field} must be true or false", field=field)
        return value
    raise InputError(f"packages have no field {field!r}", field=field)


# ---- subscriptions


def subscription_in_force(
    user_id: str | BindParameter[Any], at: datetime | BindParameter[Any]
) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a user's subscription in force at ``at``: active, started, not ended
    (values, or bind parameters for a statement built once)."""
    return (
        UserSubscription.user_id == user_id,
        UserSubscription.status == SubscriptionStatus.ACTIVE,
        UserSubscription.start_date <= at,
        (UserSubscription.end_date.is_(None)) | (UserSubscription.end_date > at),
    )


class SubscriptionRepo:
    """Who is on which package. A user has at most one active subscription at a time."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def current(
        self, *, user_id: str, now: datetime | None = None
    ) -> tuple[UserSubscription, Package] | None:
        """The user's subscription in force at ``now`` (active, started, not ended) and its
        package; the newest if several overlap."""
        row = (
            await self._session.execute(
                select(UserSubscription, Package)
                .join(Package, Package.id == UserSubscription.package_id)
                .where(*subscription_in_force(user_id, now or utcnow()))
                .order_by(UserSubscription.start_date.desc(), UserSubscription.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def counts_in_force(
        self, *, package_id: str | None = None, now: datetime | None = None
    ) -> dict[str, int]:
        """How many subscriptions are in force at ``now``, by package id (only
        ``package_id``'s when it is given); a package nobody is on is absent."""
        at = now or utcnow()
        query = (
            select(UserSubscription.package_id, func.count())
            .where(
                UserSubscription.status == SubscriptionStatus.ACTIVE,
                UserSubscription.start_date <= at,
                UserSubscription.end_date.is_(None) | (UserSubscription.end_date > at),
            )
            .group_by(UserSubscription.package_id)
        )
        if package_id is not None:
            query = query.where(UserSubscription.package_id == package_id)
        return {row[0]: int(row[1]) for row in await self._session.execute(query)}

    async def current_packages(
        self, *, user_ids: Sequence[str], now: datetime | None = None
    ) -> dict[str, Package]:
        """The package each of ``user_ids`` is subscribed to at ``now`` (absent: none)."""
        if not user_ids:
            return {}
        at = now or utcnow()
        rows = await self._session.execute(
            select(UserSubscription.user_id, Package)
            .join(Package, Package.id == UserSubscription.package_id)
            .where(
                UserSubscription.user_id.in_(list(user_ids)),
                UserSubscription.status == SubscriptionStatus.ACTIVE,
                UserSubscription.start_date <= at,
                (UserSubscription.end_date.is_(None)) | (UserSubscription.end_date > at),
            )
            .order_by(UserSubscription.start_date, UserSubscription.id)
        )
        # Ordered oldest first, so the newest of overlapping subscriptions wins.
        return {row[0]: row[1] for row in rows}

    async def subscribe(
        self,
        *,
        user_id: str,
        package_id: str,
        end_date: datetime | None = None,
        now: datetime | None = None,
    ) -> UserSubscription:
        """Put the user on the package from ``now``: the subscription in force ends (status
        ``cancelled``, end date now) and a new active one starts.

        NotFound for an unknown user or package; Conflict for an inactive package; InputError
        for an end date that is not after now.
        """
        at = now or utcnow()
        if await self._session.get(User, user_id) is None:
            raise NotFound("user", user_id)
        package = await self._session.get(Package, package_id)
        if package is None:
            raise NotFound("package", package_id)
        if not package.active:
            raise Conflict(f"package {package.name!r} is not active; nobody can subscribe to it")
        if end_date is not None and end_date <= at:
            raise InputError("end_date must be in the future", field="end_date")
        await self.cancel(user_id=user_id, now=at)
        subscription = UserSubscription(
            id=new_id(PREFIXES["user_subscriptions"]),
            user_id=user_id,
            package_id=package_id,
            status=SubscriptionStatus.ACTIVE,
            start_date=at,
            end_date=end_date,
        )
        self._session.add(subscription)
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what="subscription") from None
        return subscription

    async def cancel(self, *, user_id: str, now: datetime | None = None) -> int:
        """End every active subscription of the user at ``now``; how many there were."""
        at = now or utcnow()
        result = await self._session.execute(
            update(UserSubscription)
            .where(
                UserSubscription.user_id == user_id,
                UserSubscription.status == SubscriptionStatus.ACTIVE,
            )
            .values(
                status=SubscriptionStatus.CANCELLED,
                # One that has not started yet ends at its start (dates_ordered holds).
                end_date=case(
                    (UserSubscription.start_date > at, UserSubscription.start_date), else_=at
                ),
                updated_at=at,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


# ---- credits


async def grant_credits(session: AsyncSession, *, user_id: str, amount: int) -> int:
    """Add ``amount`` credits (negative takes them back) and return the new balance.

    One conditional UPDATE, so it never races a spend into a negative balance. InputError for
    zero or a non-integer; NotFound for an unknown user; Conflict if the user holds fewer
    credits than a negative ``amount`` takes.
    """
    if (
        isinstance(amount, bool)
        or not isinstance(amount, int)
        or amount == 0
        or abs(amount) > _MAX_CREDIT_CHANGE
    ):
        raise InputError(
            f"amount must be a non-zero whole number up to {_MAX_CREDIT_CHANGE} either way",
            field="amount",
        )
    balance = await session.scalar(
        update(User)
        .where(User.id == user_id, User.credits + amount >= 0)
        .values(credits=User.credits + amount)
        .returning(User.credits)
        .execution_options(synchronize_session=False)
    )
    if balance is None:
        held = await session.scalar(select(User.credits).where(User.id == user_id))
        if held is None:
            raise NotFound("user", user_id)
        raise Conflict(f"the user holds {held} credit(s); cannot take {-amount}")
    return int(balance)


def _spend_credit_statement(user_id: str) -> Any:
    return (
        update(User)
        .where(User.id == user_id, User.credits > 0)
        .values(credits=User.credits - 1)
        .returning(User.credits)
        .execution_options(synchronize_session=False)
    )


async def spend_credit(session: AsyncSession, *, user_id: str) -> int | None:
    """Take one credit if the user has any: the balance left, or None if there was none."""
    left = await session.scalar(_spend_credit_statement(user_id))
    return None if left is None else int(left)


def spend_credit_on(conn: Connection, *, user_id: str) -> int | None:
    """``spend_credit`` on a connection, in its transaction (a run's start)."""
    left = conn.execute(_spend_credit_statement(user_id)).scalar()
    return None if left is None else int(left)


# ---- what a month used


def _runs_started_statement(user_id: str, start: datetime, end: datetime) -> Any:
    # Run ids are time-ordered, so the range is a range of ids on the (user_id, id) index.
    prefix = PREFIXES["workflow_runs"]
    return select(func.count()).where(
        WorkflowRun.user_id == user_id,
        WorkflowRun.id >= id_floor(prefix, _ms(start)),
        WorkflowRun.id < id_floor(prefix, _ms(end)),
    )


async def runs_started(
    session: AsyncSession, *, user_id: str, start: datetime, end: datetime
) -> int:
    """How many runs (sub-runs included) the user started in ``[start, end)``."""
    return int(await session.scalar(_runs_started_statement(user_id, start, end)) or 0)


def runs_started_on(conn: Connection, *, user_id: str, start: datetime, end: datetime) -> int:
    """``runs_started`` on a connection, in its transaction (a run's start)."""
    return int(conn.execute(_runs_started_statement(user_id, start, end)).scalar() or 0)


def _tokens_used_statement(user_id: str, start: datetime, end: datetime) -> Any:
    # On the usage (user_id, created_at) index.
    return select(func.coalesce(func.sum(Usage.tokens_total), 0)).where(
        Usage.user_id == user_id, Usage.created_at >= start, Usage.created_at < end
    )


async def tokens_used(
    session: AsyncSession, *, user_id: str, start: datetime, end: datetime
) -> int:
    """The user's tokens (in + out) recorded in ``[start, end)``."""
    return int(await session.scalar(_tokens_used_statement(user_id, start, end)) or 0)


def tokens_used_on(conn: Connection, *, user_id: str, start: datetime, end: datetime) -> int:
    """``tokens_used`` on a connection, in its transaction (a run's start)."""
    return int(conn.execute(_tokens_used_statement(user_id, start, end)).scalar() or 0)


@dataclass(frozen=True, slots=True)
class UsageByProvider:
    provider: str
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


async def usage_by_provider(
    session: AsyncSession, *, user_id: str, start: datetime, end: datetime
) -> list[UsageByProvider]:
    """The user's calls in ``[start, end)`` summed per provider, by provider name."""
    rows = await session.execute(
        select(
            Usage.provider,
            func.count(),
            func.coalesce(func.sum(Usage.tokens_in), 0),
            func.coalesce(func.sum(Usage.tokens_out), 0),
            func.coalesce(func.sum(Usage.tokens_total), 0),
            # sum() keeps the Money type, so SQLite's nano-unit integers come back as Decimal.
            func.sum(Usage.cost),
        )
        .where(Usage.user_id == user_id, Usage.created_at >= start, Usage.created_at < end)
        .group_by(Usage.provider)
        .order_by(Usage.provider)
    )
    return [
        UsageByProvider(
            provider, int(calls), int(t_in), int(t_out), int(t_total), cost or Decimal("0E-9")
        )
        for provider, calls, t_in, t_out, t_total, cost in rows
    ]


def _ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise InputError("times must be timezone-aware", field="start")
    return int(at.timestamp() * 1000)


# ---- accounts, as the instance admin sees them


async def list_accounts(
    session: AsyncSession,
    *,
    cursor: str | None = None,
    limit: int = 20,
    email_contains: str | None = None,
) -> Page[User]:
    """Every account, newest first, optionally only those whose email contains a text."""
    check_limit(limit)
    query = select(User)
    after = check_cursor(cursor, prefix=PREFIXES["users"])
    if after is not None:
        query = query.where(User.id < after)
    if email_contains:
        pattern = "".join("\\" + c if c in "\\%_" else c for c in email_contains.lower())
        query = query.where(User.email.like(f"%{pattern}%", escape="\\"))
    rows = await session.scalars(query.order_by(User.id.desc()).limit(limit + 1))
    return page_of(rows.all(), limit=limit)


async def set_role(session: AsyncSession, *, user_id: str, role: UserRole | str) -> User:
    """Give the account ``role``. Conflict if that would leave the instance without an active
    admin; InputError for an unknown role; NotFound for an unknown user."""
    try:
        new_role = UserRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in UserRole)
        raise InputError(f"role {role!r} is not one of: {allowed}", field="role") from None
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    if user.role == UserRole.ADMIN and new_role is not UserRole.ADMIN:
        # Locked (on PostgreSQL), so two admins demoting each other cannot both succeed.
        admins = (
            await session.scalars(
                select(User.id)
                .where(User.role == UserRole.ADMIN, User.is_active.is_(True))
                .with_for_update()
            )
        ).all()
        if set(admins) <= {user_id}:
            raise Conflict("this is the last admin; make another account admin first")
    user.role = new_role.value
    user.updated_at = utcnow()
    await session.flush()
    return user
