"""Administration of the instance, for accounts with the admin role only (``InstanceAdmin``).

Instance settings, the AI model table with its prices, packages (plans), users (their role,
their package, their credits; disabling and enabling them) and API keys' own rate limits.
Every change writes an audit entry (``admin.*`` actions) in the same transaction as the change.
Everybody else gets 403 on every route here.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.api.deps import Caller, DatabaseDep, InstanceAdmin, client_ip
from flowloom.api.schemas.admin import (
    AdminApiKeyPublic,
    AdminUserDetail,
    AdminUserPublic,
    AiModelCreate,
    AiModelPublic,
    AiModelUpdate,
    ApiKeyRateLimitSet,
    CreditGrant,
    CreditsPublic,
    InstanceSettingsPublic,
    InstanceSettingsUpdate,
    ModelUsage,
    PackageCreate,
    PackagePublic,
    PackageRef,
    PackageUpdate,
    RoleUpdate,
    SubscriptionPublic,
    SubscriptionSet,
    UserDisabled,
)
from flowloom.api.schemas.common import Page
from flowloom.api.usage_window import usage_window
from flowloom.billing import month_status
from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.storage.enums import SubscriptionStatus
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.billing import (
    PackageRepo,
    SubscriptionRepo,
    grant_credits,
    list_accounts,
    set_role,
)
from flowloom.storage.repos.system_settings import InstanceSettings, SystemSettingsRepo
from flowloom.storage.repos.usage import instance_usage_by_model
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables import AiModel, ApiKey, Package, User, UserSubscription
from flowloom.storage.tables.base import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- instance settings


def _settings_public(current: InstanceSettings) -> InstanceSettingsPublic:
    return InstanceSettingsPublic(**asdict(current))


@router.get("/settings")
async def read_instance_settings(admin: InstanceAdmin, db: DatabaseDep) -> InstanceSettingsPublic:
    async with db.read() as session:
        current = await SystemSettingsRepo(session).read()
    return _settings_public(current)


@router.patch("/settings")
async def update_instance_settings(
    body: InstanceSettingsUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> InstanceSettingsPublic:
    changes = body.model_dump(exclude_unset=True)
    async with db.write() as session:
        current = await SystemSettingsRepo(session).update(
            changes=changes, updated_by=admin.user_id
        )
        await _audit(
            session,
            admin,
            request,
            "admin.settings.update",
            "system_settings",
            None,
            {"changed": sorted(changes), "values": changes},
        )
    return _settings_public(current)


# ---- AI models


_NOT_NULL_MODEL_FIELDS: Final = frozenset(
    AiModelUpdate.model_fields.keys() - {"display_name", "context_window", "price_per_image"}
)


@router.get("/ai-models")
async def list_ai_models(admin: InstanceAdmin, db: DatabaseDep) -> Page[AiModelPublic]:
    """Every model entry, by provider then model, disabled ones included."""
    async with db.read() as session:
        rows = await AiModelRepo(session).list()
    return Page(items=[AiModelPublic.model_validate(r) for r in rows])


@router.post("/ai-models", status_code=status.HTTP_201_CREATED)
async def create_ai_model(
    body: AiModelCreate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AiModelPublic:
    """A new entry; 409 if (provider, model) has one already (change it with PATCH)."""
    async with db.write() as session:
        models = AiModelRepo(session)
        try:
            await models.get(provider=body.provider, model=body.model)
        except NotFound:
            pass
        else:
            raise Conflict(f"the AI model {body.provider}/{body.model} already has an entry")
        values = body.model_dump()
        values["currency"] = body.currency.lower()
        row = await models.upsert(**values)
        await _audit(
            session,
            admin,
            request,
            "admin.ai_model.create",
            "ai_model",
            row.id,
            _model_details(row),
        )
        return AiModelPublic.model_validate(row)


@router.patch("/ai-models/{model_id}")
async def update_ai_model(
    model_id: str, body: AiModelUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AiModelPublic:
    """Change prices, limits or flags. New prices cost usage recorded from now on."""
    changes = body.model_dump(exclude_unset=True)
    for field in _NOT_NULL_MODEL_FIELDS & {k for k, v in changes.items() if v is None}:
        raise InputError(f"{field} cannot be null", field=field)
    async with db.write() as session:
        row = await _ai_model(session, model_id)
        values = {
            "provider": row.provider,
            "model": row.model,
            "input_price_per_mtok": row.input_price_per_mtok,
            "output_price_per_mtok": row.output_price_per_mtok,
            "price_per_image": row.price_per_image,
            "display_name": row.display_name,
            "context_window": row.context_window,
            "supports_images": row.supports_images,
            "supports_json": row.supports_json,
            "enabled": row.enabled,
            "currency": row.currency,
            **changes,
        }
        values["currency"] = str(values["currency"]).lower()
        row = await AiModelRepo(session).upsert(**values)
        await _audit(
            session,
            admin,
            request,
            "admin.ai_model.update",
            "ai_model",
            row.id,
            {"changed": sorted(changes), **_model_details(row)},
        )
        return AiModelPublic.model_validate(row)


@router.delete("/ai-models/{model_id}")
async def disable_ai_model(
    model_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AiModelPublic:
    """Disable the entry: calls to the model are refused from now on. It stays listed, with
    its prices, because usage history names it; PATCH ``enabled: true`` brings it back."""
    async with db.write() as session:
        row = await _ai_model(session, model_id)
        row.enabled = False
        row.updated_at = utcnow()
        await session.flush()
        await _audit(
            session,
            admin,
            request,
            "admin.ai_model.disable",
            "ai_model",
            row.id,
            _model_details(row),
        )
        return AiModelPublic.model_validate(row)


async def _ai_model(session: AsyncSession, model_id: str) -> AiModel:
    row = await session.get(AiModel, model_id)
    if row is None:
        raise NotFound("AI model", model_id)
    return row


def _model_details(row: AiModel) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "model": row.model,
        "input_price_per_mtok": str(row.input_price_per_mtok),
        "output_price_per_mtok": str(row.output_price_per_mtok),
        "enabled": row.enabled,
    }


# ---- packages


_NULLABLE_PACKAGE_FIELDS: Final = frozenset(
    {"description", "max_runs_per_month", "max_tokens_per_month"}
)


@router.get("/packages")
async def list_packages(admin: InstanceAdmin, db: DatabaseDep) -> Page[PackagePublic]:
    """Every package by name, inactive ones included, with its current subscriber count."""
    async with db.read() as session:
        packages = await PackageRepo(session).list()
        counts = await _subscriber_counts(session)
    return Page(items=[_package_public(p, counts.get(p.id, 0)) for p in packages])


@router.post("/packages", status_code=status.HTTP_201_CREATED)
async def create_package(
    body: PackageCreate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> PackagePublic:
    """A new package; 409 if the name is taken."""
    async with db.write() as session:
        package = await PackageRepo(session).create(**body.model_dump())
        await _audit(
            session,
            admin,
            request,
            "admin.package.create",
            "package",
            package.id,
            _package_details(package),
        )
        return _package_public(package, 0)


@router.patch("/packages/{package_id}")
async def update_package(
    package_id: str, body: PackageUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> PackagePublic:
    """Change a package; new limits apply to its subscribers from the next check on. The
    instance's default package can be neither renamed nor deactivated (change the setting
    first)."""
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field not in _NULLABLE_PACKAGE_FIELDS:
            raise InputError(f"{field} cannot be null", field=field)
    async with db.write() as session:
        packages = PackageRepo(session)
        package = await packages.get(package_id=package_id)
        default = (await SystemSettingsRepo(session).read()).default_package
        renamed = "name" in changes and changes["name"] != package.name
        if package.name == default and (renamed or changes.get("active") is False):
            raise Conflict(
                f"package {package.name!r} is the instance's default_package; set another "
                "default before renaming or deactivating it"
            )
        package = await packages.update(package_id=package_id, changes=changes)
        await _audit(
            session,
            admin,
            request,
            "admin.package.update",
            "package",
            package.id,
            {"changed": sorted(changes), **_package_details(package)},
        )
        counts = await _subscriber_counts(session, package_id=package.id)
        return _package_public(package, counts.get(package.id, 0))


@router.delete("/packages/{package_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_package(
    package_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> Response:
    """Delete a package nobody ever subscribed to. 409 if somebody did (deactivate it with
    PATCH ``active: false`` instead) or if it is the instance's default package."""
    async with db.write() as session:
        packages = PackageRepo(session)
        package = await packages.get(package_id=package_id)
        if package.name == (await SystemSettingsRepo(session).read()).default_package:
            raise Conflict(f"package {package.name!r} is the instance's default_package")
        details = _package_details(package)
        await packages.delete(package_id=package_id)
        await _audit(
            session, admin, request, "admin.package.delete", "package", package_id, details
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _subscriber_counts(
    session: AsyncSession, *, package_id: str | None = None
) -> dict[str, int]:
    now = utcnow()
    query = (
        select(UserSubscription.package_id, func.count())
        .where(
            UserSubscription.status == SubscriptionStatus.ACTIVE,
            UserSubscription.start_date <= now,
            UserSubscription.end_date.is_(None) | (UserSubscription.end_date > now),
        )
        .group_by(UserSubscription.package_id)
    )
    if package_id is not None:
        query = query.where(UserSubscription.package_id == package_id)
    return {row[0]: int(row[1]) for row in await session.execute(query)}


def _package_public(package: Package, subscribers: int) -> PackagePublic:
    public = PackagePublic.model_validate(package)
    public.subscribers = subscribers
    return public


def _package_details(package: Package) -> dict[str, Any]:
    # Plain names: the audit log drops keys that look like secrets ("token"), so the token
    # limit is recorded under a name of its own.
    return {
        "name": package.name,
        "price": str(package.price),
        "runs_per_month": package.max_runs_per_month,
        "tok_per_month": package.max_tokens_per_month,
        "active": package.active,
        "public": package.public,
    }


# ---- users


def _user_public(user: User, package: Package | None) -> AdminUserPublic:
    return AdminUserPublic(
        id=user.id,
        email=user.email,
        username=user.username,
        role=user.role,
        credits=user.credits,
        is_active=user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        package=None if package is None else PackageRef(id=package.id, name=package.name),
    )


@router.get("/users")
async def list_users(
    admin: InstanceAdmin,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    email: Annotated[str | None, Query(max_length=320)] = None,
) -> Page[AdminUserPublic]:
    """Every account, newest first; ``email`` keeps those whose address contains it."""
    async with db.read() as session:
        page = await list_accounts(session, cursor=cursor, limit=limit, email_contains=email)
        packages = await SubscriptionRepo(session).current_packages(
            user_ids=[u.id for u in page.items]
        )
    return Page(
        items=[_user_public(u, packages.get(u.id)) for u in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/users/{user_id}")
async def read_user(user_id: str, admin: InstanceAdmin, db: DatabaseDep) -> AdminUserDetail:
    """One account with its plan and this month's runs and tokens."""
    async with db.read() as session:
        user = await _user(session, user_id)
        current = await SubscriptionRepo(session).current(user_id=user_id)
        month = await month_status(session, user_id=user_id, now=utcnow())
    plan = month.plan
    return AdminUserDetail(
        **_user_public(user, None if current is None else current[1]).model_dump(),
        runs_this_month=month.runs_used,
        tokens_this_month=month.tokens_used,
        plan=None if plan is None else PackageRef(id=plan.package_id, name=plan.name),
    )


@router.patch("/users/{user_id}")
async def update_user_role(
    user_id: str, body: RoleUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AdminUserPublic:
    """Give the account a role; 409 if that would leave the instance without an admin."""
    async with db.write() as session:
        before = (await _user(session, user_id)).role
        user = await set_role(session, user_id=user_id, role=body.role)
        await _audit(
            session,
            admin,
            request,
            "admin.user.role",
            "user",
            user_id,
            {"from": before, "to": user.role},
        )
        current = await SubscriptionRepo(session).current(user_id=user_id)
        return _user_public(user, None if current is None else current[1])


@router.put("/users/{user_id}/subscription")
async def set_user_subscription(
    user_id: str, body: SubscriptionSet, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> SubscriptionPublic:
    """Put the user on a package from now (the subscription in force ends). 409 for an
    inactive package; 422 for an end date in the past."""
    if body.end_date is not None and body.end_date.tzinfo is None:
        raise InputError("end_date needs a timezone (e.g. 2030-01-01T00:00:00Z)", field="end_date")
    async with db.write() as session:
        await _user(session, user_id)
        subscription = await SubscriptionRepo(session).subscribe(
            user_id=user_id, package_id=body.package_id, end_date=body.end_date
        )
        package = await PackageRepo(session).get(package_id=body.package_id)
        await _audit(
            session,
            admin,
            request,
            "admin.user.subscribe",
            "user",
            user_id,
            {"package": package.name, "subscription": subscription.id},
        )
        return SubscriptionPublic(
            id=subscription.id,
            user_id=user_id,
            package=PackageRef(id=package.id, name=package.name),
            status=subscription.status,
            start_date=subscription.start_date,
            end_date=subscription.end_date,
        )


@router.delete("/users/{user_id}/subscription", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_user_subscription(
    user_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> Response:
    """End the user's subscription now; the default package (if any) applies from then on."""
    async with db.write() as session:
        await _user(session, user_id)
        ended = await SubscriptionRepo(session).cancel(user_id=user_id)
        if ended:
            await _audit(
                session, admin, request, "admin.user.unsubscribe", "user", user_id, {"ended": ended}
            )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{user_id}/credits")
async def grant_user_credits(
    user_id: str, body: CreditGrant, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> CreditsPublic:
    """Add credits (or take some back with a negative amount; 409 below zero)."""
    async with db.write() as session:
        balance = await grant_credits(session, user_id=user_id, amount=body.amount)
        await _audit(
            session,
            admin,
            request,
            "admin.user.credits",
            "user",
            user_id,
            {"amount": body.amount, "balance": balance, "reason": body.reason},
        )
    return CreditsPublic(user_id=user_id, credits=balance)


def _problems(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json answers a route gives, with what each means."""
    return {
        code: {"description": text, "content": {"application/problem+json": {}}}
        for code, text in described.items()
    }


@router.post(
    "/users/{user_id}/disable",
    responses=_problems({404: "No such user", 409: "Your own account, or the last active admin"}),
)
async def disable_user(
    user_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> UserDisabled:
    """Switch the account off: it cannot sign in, and its sessions and API keys end now (401 on
    their next request; enabling the account again does not revive them). 409 for your own
    account or the last active admin."""
    async with db.write() as session:
        user, sessions, keys = await UserRepo(session).disable(user_id=user_id, by=admin.user_id)
        await _audit(
            session,
            admin,
            request,
            "admin.user.disable",
            "user",
            user_id,
            {"sessions_ended": sessions, "api_keys_revoked": keys},
        )
        current = await SubscriptionRepo(session).current(user_id=user_id)
        public = _user_public(user, None if current is None else current[1])
    return UserDisabled(**public.model_dump(), sessions_ended=sessions, api_keys_revoked=keys)


@router.post("/users/{user_id}/enable", responses=_problems({404: "No such user"}))
async def enable_user(
    user_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AdminUserPublic:
    """Let a disabled account sign in again (with new sessions and new keys)."""
    async with db.write() as session:
        user = await UserRepo(session).enable(user_id=user_id)
        await _audit(session, admin, request, "admin.user.enable", "user", user_id, {})
        current = await SubscriptionRepo(session).current(user_id=user_id)
        return _user_public(user, None if current is None else current[1])


@router.put(
    "/api-keys/{key_id}/rate-limit",
    responses=_problems({404: "No such API key", 422: "A rate not shaped <count>/<s|m|h>"}),
)
async def set_api_key_rate_limit(
    key_id: str, body: ApiKeyRateLimitSet, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AdminApiKeyPublic:
    """Give one API key its own rate limit, above or below ``FLOWLOOM_API_KEY_RATE_LIMIT``."""
    async with db.write() as session:
        owner_id = await session.scalar(select(ApiKey.user_id).where(ApiKey.id == key_id))
        if owner_id is None:
            raise NotFound("api key", key_id)
        key = await ApiKeyRepo(session, owner_id=owner_id).set_rate_limit(
            key_id=key_id, rate_limit=body.rate_limit
        )
        await _audit(
            session,
            admin,
            request,
            "admin.api_key.rate_limit",
            "api_key",
            key_id,
            {"rate_limit": key.rate_limit},
        )
        return AdminApiKeyPublic(
            id=key.id,
            user_id=key.user_id,
            name=key.name,
            prefix=key.prefix,
            rate_limit=key.rate_limit,
        )


async def _user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


# ---- usage across the instance


@router.get("/usage")
async def read_instance_usage(
    admin: InstanceAdmin,
    db: DatabaseDep,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
) -> Page[ModelUsage]:
    """Every user's calls from ``from`` to ``to`` (UTC days, both included; default this
    month), summed per provider and model."""
    _, _, start, end = usage_window(first, last)
    async with db.read() as session:
        rows = await instance_usage_by_model(session, start=start, end=end)
    return Page(items=[ModelUsage.model_validate(r, from_attributes=True) for r in rows])


async def _audit(
    session: AsyncSession,
    admin: Caller,
    request: Request,
    action: str,
    object_type: str,
    object_id: str | None,
    details: dict[str, Any],
) -> None:
    await AuditRepo(session).record(
        user_id=admin.user_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        details=details,
    )
