"""The local account: who owns what the command line stores and runs on a laptop."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import NotFound
from flowloom.storage.enums import UserRole
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables import User

__all__ = ["LOCAL_OWNER_EMAIL", "local_owner"]

LOCAL_OWNER_EMAIL = "owner@flowloom.localhost"
"""The account ``flowloom run`` and ``flowloom demo`` work as; it has no password until one is
set, so nobody can sign in as it by default."""


async def local_owner(session: AsyncSession) -> User:
    """The local account, created (as an admin) the first time it is needed."""
    users = UserRepo(session)
    try:
        return await users.get_by_email(email=LOCAL_OWNER_EMAIL)
    except NotFound:
        return await users.create(email=LOCAL_OWNER_EMAIL, role=UserRole.ADMIN)
