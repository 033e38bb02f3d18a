"""Administration of the instance, for accounts with the admin role only (``InstanceAdmin``).

Instance settings, the AI model table with its prices, packages (plans), users (their role,
their package, their credits; disabling and enabling them) and API keys' own rate limits.
Every change writes an audit entry (``admin.*`` actions) in the same transaction as the change.
Everybody else gets 403 on every route here.

The rules (the default package, the merge of a model's PATCH, the last admin) live in
:mod:`flowloom.services` (``ai_models``, ``packages``, ``instance_settings``, ``accounts``,
``subscriptions``); these routes parse, call them, and answer.
"""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowloom.api.deps import DatabaseDep, InstanceAdmin, actor
from flowloom.api.errors import problem_responses
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
    admin_user_public,
    package_public,
    settings_public,
)
from flowloom.api.schemas.common import Page
from flowloom.api.usage_window import usage_window
from flowloom.billing import month_status
from flowloom.services import subscriptions
from flowloom.services.accounts import AccountAdmin
from flowloom.services.ai_models import AiModelAdmin
from flowloom.services.instance_settings import read_instance_settings as read_settings
from flowloom.services.instance_settings import update_instance_settings as update_settings
from flowloom.services.packages import PackageAdmin, packages_with_subscribers
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.billing import SubscriptionRepo, list_accounts
from flowloom.storage.repos.usage import instance_usage_by_model
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables.base import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


# ---- instance settings


@router.get("/settings")
async def read_instance_settings(admin: InstanceAdmin, db: DatabaseDep) -> InstanceSettingsPublic:
    return settings_public(await read_settings(db))


@router.patch("/settings")
async def update_instance_settings(
    body: InstanceSettingsUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> InstanceSettingsPublic:
    changes = body.model_dump(exclude_unset=True)
    return settings_public(await update_settings(db, actor(admin, request), changes))


# ---- AI models


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
    row = await AiModelAdmin(db, actor(admin, request)).create(**body.model_dump())
    return AiModelPublic.model_validate(row)


@router.patch("/ai-models/{model_id}")
async def update_ai_model(
    model_id: str, body: AiModelUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AiModelPublic:
    """Change prices, limits or flags. New prices cost usage recorded from now on."""
    row = await AiModelAdmin(db, actor(admin, request)).update(
        model_id=model_id, changes=body.model_dump(exclude_unset=True)
    )
    return AiModelPublic.model_validate(row)


@router.delete("/ai-models/{model_id}")
async def disable_ai_model(
    model_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AiModelPublic:
    """Disable the entry: calls to the model are refused from now on. It stays listed, with
    its prices, because usage history names it; PATCH ``enabled: true`` brings it back."""
    row = await AiModelAdmin(db, actor(admin, request)).disable(model_id=model_id)
    return AiModelPublic.model_validate(row)


# ---- packages


@router.get("/packages")
async def list_packages(admin: InstanceAdmin, db: DatabaseDep) -> Page[PackagePublic]:
    """Every package by name, inactive ones included, with its current subscriber count."""
    listed = await packages_with_subscribers(db)
    return Page(items=[package_public(package, count) for package, count in listed])


@router.post("/packages", status_code=status.HTTP_201_CREATED)
async def create_package(
    body: PackageCreate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> PackagePublic:
    """A new package; 409 if the name is taken."""
    package = await PackageAdmin(db, actor(admin, request)).create(**body.model_dump())
    return package_public(package, 0)


@router.patch("/packages/{package_id}")
async def update_package(
    package_id: str, body: PackageUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> PackagePublic:
    """Change a package; new limits apply to its subscribers from the next check on. The
    instance's default package can be neither renamed nor deactivated (change the setting
    first)."""
    package, subscribers = await PackageAdmin(db, actor(admin, request)).update(
        package_id=package_id, changes=body.model_dump(exclude_unset=True)
    )
    return package_public(package, subscribers)


@router.delete("/packages/{package_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_package(
    package_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> Response:
    """Delete a package nobody ever subscribed to. 409 if somebody did (deactivate it with
    PATCH ``active: false`` instead) or if it is the instance's default package."""
    await PackageAdmin(db, actor(admin, request)).delete(package_id=package_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- users


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
        items=[admin_user_public(u, packages.get(u.id)) for u in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/users/{user_id}")
async def read_user(user_id: str, admin: InstanceAdmin, db: DatabaseDep) -> AdminUserDetail:
    """One account with its plan and this month's runs and tokens."""
    async with db.read() as session:
        user = await UserRepo(session).get(user_id=user_id)
        current = await SubscriptionRepo(session).current(user_id=user_id)
        month = await month_status(session, user_id=user_id, now=utcnow())
    plan = month.plan
    return AdminUserDetail(
        **admin_user_public(user, None if current is None else current[1]).model_dump(),
        runs_this_month=month.runs_used,
        tokens_this_month=month.tokens_used,
        plan=None if plan is None else PackageRef(id=plan.package_id, name=plan.name),
    )


@router.patch("/users/{user_id}")
async def update_user_role(
    user_id: str, body: RoleUpdate, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AdminUserPublic:
    """Give the account a role; 409 if that would leave the instance without an admin."""
    user, package = await AccountAdmin(db, actor(admin, request)).set_role(
        user_id=user_id, role=body.role
    )
    return admin_user_public(user, package)


@router.put("/users/{user_id}/subscription")
async def set_user_subscription(
    user_id: str, body: SubscriptionSet, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> SubscriptionPublic:
    """Put the user on a package from now (the subscription in force ends). 409 for an
    inactive package; 422 for an end date in the past."""
    subscription, package = await subscriptions.subscribe(
        db,
        actor(admin, request),
        user_id=user_id,
        package_id=body.package_id,
        end_date=body.end_date,
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
    await subscriptions.cancel_for(db, actor(admin, request), user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{user_id}/credits")
async def grant_user_credits(
    user_id: str, body: CreditGrant, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> CreditsPublic:
    """Add credits (or take some back with a negative amount; 409 below zero)."""
    balance = await AccountAdmin(db, actor(admin, request)).grant_credits(
        user_id=user_id, amount=body.amount, reason=body.reason
    )
    return CreditsPublic(user_id=user_id, credits=balance)


@router.post(
    "/users/{user_id}/disable",
    responses=problem_responses(
        {404: "No such user", 409: "Your own account, or the last active admin"}
    ),
)
async def disable_user(
    user_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> UserDisabled:
    """Switch the account off: it cannot sign in, and its sessions and API keys end now (401 on
    their next request; enabling the account again does not revive them). 409 for your own
    account or the last active admin."""
    disabled = await AccountAdmin(db, actor(admin, request)).disable(user_id=user_id)
    return UserDisabled(
        **admin_user_public(disabled.user, disabled.package).model_dump(),
        sessions_ended=disabled.sessions_ended,
        api_keys_revoked=disabled.api_keys_revoked,
    )


@router.post("/users/{user_id}/enable", responses=problem_responses({404: "No such user"}))
async def enable_user(
    user_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AdminUserPublic:
    """Let a disabled account sign in again (with new sessions and new keys)."""
    user, package = await AccountAdmin(db, actor(admin, request)).enable(user_id=user_id)
    return admin_user_public(user, package)


@router.put(
    "/api-keys/{key_id}/rate-limit",
    responses=problem_responses({404: "No such API key", 422: "A rate not shaped <count>/<s|m|h>"}),
)
async def set_api_key_rate_limit(
    key_id: str, body: ApiKeyRateLimitSet, admin: InstanceAdmin, request: Request, db: DatabaseDep
) -> AdminApiKeyPublic:
    """Give one API key its own rate limit, above or below ``FLOWLOOM_API_KEY_RATE_LIMIT``."""
    key = await AccountAdmin(db, actor(admin, request)).set_api_key_rate_limit(
        key_id=key_id, rate_limit=body.rate_limit
    )
    return AdminApiKeyPublic(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        rate_limit=key.rate_limit,
    )


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
