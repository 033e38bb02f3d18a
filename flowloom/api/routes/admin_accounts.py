"""Administration of accounts beyond their settings: deleting one with all its data, and usage
across the instance by user and by day. For the instance's administrators only."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from flowloom.api.deps import DatabaseDep, EngineDep, InstanceAdmin, actor
from flowloom.api.errors import problem_responses
from flowloom.api.schemas.admin_accounts import DayUsage, UserDeleted, UserUsage
from flowloom.api.schemas.common import Page
from flowloom.api.usage_window import usage_window
from flowloom.services.accounts import AccountAdmin
from flowloom.storage.repos.usage import instance_usage_by_day, instance_usage_by_user

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


@router.delete(
    "/users/{user_id}",
    responses=problem_responses(
        {404: "No such user", 409: "Your own account, or the last active admin"}
    ),
)
async def delete_user(
    user_id: str, admin: InstanceAdmin, request: Request, db: DatabaseDep, engine: EngineDep
) -> UserDeleted:
    """Delete the account and everything it owns (workflows, runs, usage, threads, keys...),
    for good. It is disabled first (sessions and keys end at once), its unfinished runs are
    cancelled, then its rows go in small batches, so the instance keeps working meanwhile.
    Audit entries stay, without their actor. 409 for your own account or the last admin."""
    gone = await AccountAdmin(db, actor(admin, request)).delete(user_id=user_id, engine=engine)
    return UserDeleted(
        user_id=user_id, email=gone.email, runs_cancelled=gone.runs_cancelled, deleted=gone.deleted
    )


@router.get("/usage/by-user")
async def read_usage_by_user(
    admin: InstanceAdmin,
    db: DatabaseDep,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[UserUsage]:
    """The users with the most cost (then tokens) from ``from`` to ``to`` (UTC days, both
    included; default this month)."""
    _, _, start, end = usage_window(first, last)
    async with db.read() as session:
        rows = await instance_usage_by_user(session, start=start, end=end, limit=limit)
    return Page(items=[UserUsage.model_validate(r, from_attributes=True) for r in rows])


@router.get("/usage/by-day")
async def read_usage_by_day(
    admin: InstanceAdmin,
    db: DatabaseDep,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[DayUsage]:
    """Every user's calls (or one user's) per UTC day from ``from`` to ``to`` (default this
    month); days without calls are left out."""
    _, _, start, end = usage_window(first, last)
    async with db.read() as session:
        rows = await instance_usage_by_day(session, start=start, end=end, user_id=user_id)
    return Page(items=[DayUsage.model_validate(r, from_attributes=True) for r in rows])
