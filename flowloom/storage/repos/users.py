"""Accounts: users, their external identities and their settings.

Accounts are not owner-scoped (an account is the owner). Every other table points at the internal
``users.id``; an identity provider's subject (a Clerk user id, say) is only ever a way to find
that id (seed 000's lesson), through ``find_by_identity`` or ``find_or_create_by_identity``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.enums import UserRole
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.repos.sessions import SessionRepo
from flowloom.storage.tables import User, UserIdentity, UserSettings
from flowloom.storage.tables.accounts import UserSession
from flowloom.storage.tables.base import utcnow

__all__ = ["UserRepo", "normalize_email"]

# flowloom.ids.PREFIXES has no entry for user_identities yet; this is the prefix to register there.
_EMAIL_MAX_LENGTH = 320
_USERNAME_MAX_LENGTH = 64
# Deliberately loose: one @, no spaces, a dot in the domain. Whether the address really receives
# mail is for a confirmation message to find out, not for a pattern.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalize_email(email: str) -> str:
    """``email`` stripped and lower-cased; InputError if it is not shaped like an address."""
    normalized = email.strip().lower()
    if len(normalized) > _EMAIL_MAX_LENGTH:
        raise InputError(f"email is longer than {_EMAIL_MAX_LENGTH} characters", field="email")
    if not _EMAIL.match(normalized):
        raise InputError(f"email {email!r} is not an email address", field="email")
    return normalized


def _check_identity(provider: str, subject: str) -> None:
    if not provider or len(provider) > 64:
        raise InputError("provider must be 1-64 characters", field="provider")
    if not subject or len(subject) > 255:
        raise InputError("subject must be 1-255 characters", field="subject")


class UserRepo:
    """Create, find, change and delete accounts. Every method flushes; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        email: str,
        password_hash: str | None = None,
        username: str | None = None,
        role: UserRole | str = UserRole.USER,
    ) -> User:
        """A new account. The email is stored lower-case.

        InputError for a malformed email, username or role; Conflict if the email or username
        is taken.
        """
        user = User(
            id=new_id(PREFIXES["users"]),
            email=normalize_email(email),
            username=_check_username(username),
            password_hash=password_hash,
            role=_check_role(role),
        )
        self._session.add(user)
        await self._flush(what="user")
        return user

    async def get(self, *, user_id: str) -> User:
        """The account with this id, or NotFound."""
        user = await self._session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user

    async def get_by_email(self, *, email: str) -> User:
        """The account with this email (any case), or NotFound."""
        normalized = email.strip().lower()
        user = await self._session.scalar(select(User).where(User.email == normalized))
        if user is None:
            raise NotFound("user", normalized)
        return user

    async def has_signed_in_from(self, *, email: str, ip: str | None) -> bool:
        """Whether the account with ``email`` ever opened a session from the address ``ip``
        (any session, ended or not): the sign-in limiter's "usual address" of its owner.
        False for an unknown account or address."""
        if not ip:
            return False
        found = await self._session.scalar(
            select(UserSession.id)
            .join(User, User.id == UserSession.user_id)
            .where(User.email == email.strip().lower(), UserSession.ip == ip)
            .limit(1)
        )
        return found is not None

    async def find_by_identity(self, *, provider: str, subject: str) -> User | None:
        """The account an external identity is linked to, or None if it is linked to none."""
        return await self._session.scalar(
            select(User)
            .join(UserIdentity, UserIdentity.user_id == User.id)
            .where(UserIdentity.provider == provider, UserIdentity.subject == subject)
        )

    async def link_identity(
        self, *, user_id: str, provider: str, subject: str, email: str | None = None
    ) -> UserIdentity:
        """Link an external identity to an account; linking it again to the same account is a no-op.

        NotFound if the account does not exist; Conflict if the identity belongs to another.
        """
        _check_identity(provider, subject)
        await self.get(user_id=user_id)
        existing = await self._identity(provider=provider, subject=subject)
        if existing is None:
            identity = UserIdentity(
                id=new_id(PREFIXES["user_identities"]),
                user_id=user_id,
                provider=provider,
                subject=subject,
                email=email,
            )
            try:
                # A savepoint, so losing a race to link the same identity leaves the caller's
                # transaction usable for the re-read below.
                async with self._session.begin_nested():
                    self._session.add(identity)
            except IntegrityError:
                existing = await self._identity(provider=provider, subject=subject)
                if existing is None:
                    raise
            else:
                return identity
        if existing.user_id != user_id:
            raise Conflict(f"identity {provider}:{subject} is linked to another account")
        return existing

    async def find_or_create_by_identity(self, *, provider: str, subject: str, email: str) -> User:
        """The account linked to this external identity, created (with ``email``) if there is none.

        Safe when two sign-ins of a new identity race: the unique (provider, subject) and email
        constraints let one insert win, and the loser re-reads the winner's account. Conflict if
        the email already belongs to an account that this identity is not linked to: linking
        them on the strength of an email claim alone would hand that account to whoever controls
        the identity, so that is an explicit ``link_identity`` by the signed-in owner.
        """
        _check_identity(provider, subject)
        found = await self.find_by_identity(provider=provider, subject=subject)
        if found is not None:
            return found
        user = User(id=new_id(PREFIXES["users"]), email=normalize_email(email))
        identity = UserIdentity(
            id=new_id(PREFIXES["user_identities"]),
            user_id=user.id,
            provider=provider,
            subject=subject,
            email=user.email,
        )
        try:
            async with self._session.begin_nested():
                self._session.add(user)
                # The user row must exist before the identity that points at it.
                await self._session.flush()
                self._session.add(identity)
        except IntegrityError as exc:
            found = await self.find_by_identity(provider=provider, subject=subject)
            if found is not None:
                return found
            raise translate_integrity_error(exc, what="user") from None
        return user

    async def set_password_hash(self, *, user_id: str, password_hash: str | None) -> User:
        """Replace the stored password hash (None: the account signs in through identities only)."""
        user = await self.get(user_id=user_id)
        user.password_hash = password_hash
        await self._flush(what="user")
        return user

    async def set_first_password_hash(self, *, user_id: str, password_hash: str) -> bool:
        """Store ``password_hash`` for an account that has no password (the local account's
        first start); False, changing nothing, if it has one already or no longer exists."""
        result = await self._session.execute(
            update(User)
            .where(User.id == user_id, User.password_hash.is_(None))
            .values(password_hash=password_hash)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def disable(self, *, user_id: str, by: str) -> tuple[User, int, int]:
        """Switch the account off, by the admin ``by``: it cannot sign in, and its sessions and
        API keys end now (revoked for good: enabling it again does not bring them back).

        Returns the account and how many sessions and keys were ended. Conflict when ``by``
        disables themselves, or the account is the last active admin; NotFound for no account.
        Disabling a disabled account ends nothing more.
        """
        if user_id == by:
            raise Conflict("you cannot disable your own account; ask another admin")
        user = await self.get(user_id=user_id)
        if user.is_active and user.role == UserRole.ADMIN:
            # Locked (on PostgreSQL), so two admins disabling each other cannot both succeed.
            admins = (
                await self._session.scalars(
                    select(User.id)
                    .where(User.role == UserRole.ADMIN, User.is_active.is_(True))
                    .with_for_update()
                )
            ).all()
            if set(admins) <= {user_id}:
                raise Conflict("this is the last active admin; make another account admin first")
        user.is_active = False
        user.updated_at = utcnow()
        await self._flush(what="user")
        sessions = await SessionRepo(self._session, owner_id=user_id).revoke_all()
        keys = await ApiKeyRepo(self._session, owner_id=user_id).revoke_all()
        return user, sessions, keys

    async def enable(self, *, user_id: str) -> User:
        """Let the account sign in again (its old sessions and keys stay ended). NotFound for
        no account; enabling an active account changes nothing."""
        user = await self.get(user_id=user_id)
        if not user.is_active:
            user.is_active = True
            user.updated_at = utcnow()
            await self._flush(what="user")
        return user

    async def touch_login(self, *, user_id: str, now: datetime | None = None) -> User:
        """Record a successful sign-in at ``now`` (default: the current time)."""
        user = await self.get(user_id=user_id)
        user.last_login_at = now or utcnow()
        await self._flush(what="user")
        return user

    async def delete(self, *, user_id: str) -> None:
        """Delete the account for good. NotFound if there is none.

        The database does the rest, as the tables declare: the user's identities, settings, keys,
        workflows (with their versions), runs, usage and memory go with it; audit entries stay,
        with the actor set to NULL.
        """
        result = await self._session.execute(
            delete(User).where(User.id == user_id).returning(User.id)
        )
        if result.scalar_one_or_none() is None:
            raise NotFound("user", user_id)

    async def get_settings(self, *, user_id: str) -> dict[str, Any]:
        """The user's settings ({} if never set). NotFound if the account does not exist."""
        await self.get(user_id=user_id)
        row = await self._settings_row(user_id=user_id, for_update=False)
        return dict(row.settings) if row is not None else {}

    async def update_settings(self, *, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the user's settings and return the result.

        The merge is deep: a dict value merges into the dict stored under the same key, any other
        value replaces it, and ``None`` removes the key. Concurrent updates do not lose each
        other's changes (the row is locked while it is merged on PostgreSQL; SQLite serialises
        writers anyway).
        """
        await self.get(user_id=user_id)
        row = await self._settings_row(user_id=user_id, for_update=True)
        if row is None:
            row = UserSettings(id=new_id(PREFIXES["user_settings"]), user_id=user_id, settings={})
            try:
                async with self._session.begin_nested():
                    self._session.add(row)
            except IntegrityError:
                # Another transaction created the row first; merge into theirs.
                row = await self._settings_row(user_id=user_id, for_update=True)
                if row is None:
                    raise
        # A new dict object, because the ORM does not see changes made inside a JSON value.
        row.settings = _merge(row.settings, changes)
        await self._flush(what="user settings")
        return dict(row.settings)

    async def _identity(self, *, provider: str, subject: str) -> UserIdentity | None:
        return await self._session.scalar(
            select(UserIdentity).where(
                UserIdentity.provider == provider, UserIdentity.subject == subject
            )
        )

    async def _settings_row(self, *, user_id: str, for_update: bool) -> UserSettings | None:
        query = select(UserSettings).where(UserSettings.user_id == user_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        return await self._session.scalar(query)

    async def _flush(self, *, what: str) -> None:
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=what) from None


def _check_username(username: str | None) -> str | None:
    if username is None:
        return None
    if not username.strip() or len(username) > _USERNAME_MAX_LENGTH:
        raise InputError(f"username must be 1-{_USERNAME_MAX_LENGTH} characters", field="username")
    return username


def _check_role(role: UserRole | str) -> str:
    try:
        return UserRole(role).value
    except ValueError:
        allowed = ", ".join(r.value for r in UserRole)
        raise InputError(f"role {role!r} is not one of: {allowed}", field="role") from None


def _merge(stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stored)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
