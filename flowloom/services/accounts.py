"""Accounts as the instance's administrators change them: role, credits, on or off, API key
rates, and deleting one with everything it owns.

Each change writes its ``admin.user.*`` (or ``admin.api_key.*``) audit entry in the same
transaction, and answers the account with the package of its subscription in force (None:
none, the default package applies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import Conflict
from flowloom.services.actor import Actor
from flowloom.storage.database import Database
from flowloom.storage.maintenance.accounts import delete_account
from flowloom.storage.repos.api_keys import ApiKeyRepo, api_key_owner
from flowloom.storage.repos.billing import SubscriptionRepo, grant_credits, set_role
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.tables import ApiKey, Package, User

if TYPE_CHECKING:
    from flowloom.engine import Engine

__all__ = ["AccountAdmin", "Deleted", "Disabled"]


@dataclass(frozen=True, slots=True)
class Disabled:
    """A disabled account, with the sessions and API keys its disabling ended."""

    user: User
    package: Package | None
    sessions_ended: int
    api_keys_revoked: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """A deleted account: its address, the runs its deletion cancelled, the rows per table."""

    email: str
    runs_cancelled: int
    deleted: dict[str, int]


class AccountAdmin:
    """Changes accounts, each change audited, as ``actor`` (an administrator)."""

    def __init__(self, db: Database, actor: Actor) -> None:
        self._db = db
        self._actor = actor

    async def set_role(self, *, user_id: str, role: str) -> tuple[User, Package | None]:
        """Give the account ``role``; Conflict if that would leave no active admin."""
        async with self._db.write() as session:
            before = (await UserRepo(session).get(user_id=user_id)).role
            user = await set_role(session, user_id=user_id, role=role)
            await self._actor.record(
                session, "admin.user.role", "user", user_id, {"from": before, "to": user.role}
            )
            return user, await _package(session, user_id)

    async def grant_credits(self, *, user_id: str, amount: int, reason: str | None) -> int:
        """Add ``amount`` credits (negative takes some back; Conflict below zero); the balance."""
        async with self._db.write() as session:
            balance = await grant_credits(session, user_id=user_id, amount=amount)
            await self._actor.record(
                session,
                "admin.user.credits",
                "user",
                user_id,
                {"amount": amount, "balance": balance, "reason": reason},
            )
        return balance

    async def disable(self, *, user_id: str) -> Disabled:
        """Switch the account off: its sessions and API keys end now. Conflict for the
        actor's own account or the last active admin."""
        async with self._db.write() as session:
            user, sessions, keys = await UserRepo(session).disable(
                user_id=user_id, by=self._actor.user_id
            )
            await self._actor.record(
                session,
                "admin.user.disable",
                "user",
                user_id,
                {"sessions_ended": sessions, "api_keys_revoked": keys},
            )
            return Disabled(user, await _package(session, user_id), sessions, keys)

    async def enable(self, *, user_id: str) -> tuple[User, Package | None]:
        """Let a disabled account sign in again (with new sessions and new keys)."""
        async with self._db.write() as session:
            user = await UserRepo(session).enable(user_id=user_id)
            await self._actor.record(session, "admin.user.enable", "user", user_id, {})
            return user, await _package(session, user_id)

    async def set_api_key_rate_limit(self, *, key_id: str, rate_limit: str | None) -> ApiKey:
        """Give any account's API key its own rate (``100/s``); None: the instance default."""
        async with self._db.write() as session:
            owner_id = await api_key_owner(session, key_id=key_id)
            key = await ApiKeyRepo(session, owner_id=owner_id).set_rate_limit(
                key_id=key_id, rate_limit=rate_limit
            )
            await self._actor.record(
                session,
                "admin.api_key.rate_limit",
                "api_key",
                key_id,
                {"rate_limit": key.rate_limit},
            )
            return key

    async def delete(self, *, user_id: str, engine: Engine) -> Deleted:
        """Delete the account and everything it owns, for good. Not one transaction, on
        purpose: it is disabled first (its sessions and keys end at once, and it starts nothing
        new), its unfinished runs are cancelled, then its rows go in small batches so the
        instance keeps working meanwhile; the audit entry comes last, with what was deleted.
        Conflict for the actor's own account or the last active admin."""
        async with self._db.write() as session:
            user, _, _ = await UserRepo(session).disable(user_id=user_id, by=self._actor.user_id)
            email = user.email
        async with self._db.read() as session:
            unfinished = await RunRepo(session, owner_id=user_id).unfinished_top_level()
        cancelled = 0
        for run_id in unfinished:
            try:
                await engine.cancel(run_id)
                cancelled += 1
            except Conflict:
                pass  # it ended meanwhile
        deleted = await delete_account(self._db, user_id=user_id)
        async with self._db.write() as session:
            await self._actor.record(
                session,
                "admin.user.delete",
                "user",
                user_id,
                {"email": email, "deleted": deleted, "runs_cancelled": cancelled},
            )
        return Deleted(email, cancelled, deleted)


async def _package(session: AsyncSession, user_id: str) -> Package | None:
    current = await SubscriptionRepo(session).current(user_id=user_id)
    return None if current is None else current[1]
