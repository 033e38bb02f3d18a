"""Sign-in sessions: opened at sign-in, checked on every request, closed at sign-out.

A session token reads ``fls_<secret>`` (256 random bits). Only its SHA-256 is stored, so a copy
of the database lets nobody in; a plain digest is enough because the secret is random, not
chosen by a person. ``authenticate`` is one indexed read; ``last_seen_at`` is written at most
once a minute per session (``touch``), so reads stay reads.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables.accounts import User, UserSession
from flowloom.storage.tables.base import utcnow

__all__ = [
    "SESSION_MARKER",
    "TOUCH_INTERVAL",
    "SessionMatch",
    "SessionRepo",
    "authenticate_session",
    "purge_expired_sessions",
    "token_digest",
]

SESSION_MARKER: Final = "fls"
"""How every session token begins (``fls_``), to tell it from an API key (``flk_``)."""

TOUCH_INTERVAL: Final = timedelta(minutes=1)
"""``last_seen_at`` is precise to this much; finer would turn every request into a write."""

_ID_PREFIX = PREFIXES["sessions"]
_USER_AGENT_MAX_LENGTH = 400
_IP_MAX_LENGTH = 64


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _looks_like_token(token: str) -> bool:
    marker, sep, secret = token.partition("_")
    return marker == SESSION_MARKER and bool(sep) and 20 <= len(secret) <= 100


class SessionRepo:
    """One user's sessions (or, for ``open``, the user signing in). Flushes, never commits."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self._session = session
        self._owner_id = owner_id

    async def open(
        self,
        *,
        ttl: timedelta,
        user_agent: str | None = None,
        ip: str | None = None,
        method: str = "password",
        now: datetime | None = None,
    ) -> tuple[UserSession, str]:
        """A new session of the owner lasting ``ttl``, and its token (shown this once).

        InputError for a ``ttl`` that is not positive; NotFound if the owner does not exist.
        """
        if ttl <= timedelta(0):
            raise InputError("a session must last a positive time", field="ttl")
        now = now or utcnow()
        token = f"{SESSION_MARKER}_{secrets.token_urlsafe(32)}"
        row = UserSession(
            id=new_id(_ID_PREFIX),
            user_id=self._owner_id,
            token_sha256=token_digest(token),
            created_at=now,
            expires_at=now + ttl,
            last_seen_at=now,
            user_agent=(user_agent or None) and user_agent[:_USER_AGENT_MAX_LENGTH],
            ip=(ip or None) and ip[:_IP_MAX_LENGTH],
            method=method[:32],
        )
        if await self._session.get(User, self._owner_id) is None:
            raise NotFound("user", self._owner_id)
        self._session.add(row)
        await self._session.flush()
        return row, token

    async def list(self, *, cursor: str | None = None, limit: int = 10) -> Page[UserSession]:
        """The owner's sessions that may still be used, newest first."""
        check_limit(limit)
        query = select(UserSession).where(
            UserSession.user_id == self._owner_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > utcnow(),
        )
        after = check_cursor(cursor, prefix=_ID_PREFIX)
        if after is not None:
            query = query.where(UserSession.id < after)
        rows = await self._session.scalars(query.order_by(UserSession.id.desc()).limit(limit + 1))
        return page_of(rows.all(), limit=limit)

    async def revoke(self, *, session_id: str) -> None:
        """End one of the owner's sessions; ending an ended one changes nothing.

        NotFound for another user's session.
        """
        row = await self._session.scalar(
            select(UserSession).where(
                UserSession.id == session_id, UserSession.user_id == self._owner_id
            )
        )
        if row is None:
            raise NotFound("session", session_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            await self._session.flush()

    async def revoke_all(self, *, except_id: str | None = None) -> int:
        """End every live session of the owner (but ``except_id``); how many were ended."""
        query = (
            update(UserSession)
            .where(UserSession.user_id == self._owner_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if except_id is not None:
            query = query.where(UserSession.id != except_id)
        result = await self._session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def touch(self, *, session_id: str, now: datetime | None = None) -> None:
        """Record that the session was used at ``now``, unless it was within the last minute."""
        now = now or utcnow()
        await self._session.execute(
            update(UserSession)
            .where(
                UserSession.id == session_id,
                UserSession.user_id == self._owner_id,
                UserSession.last_seen_at <= now - TOUCH_INTERVAL,
            )
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True, slots=True)
class SessionMatch:
    """The live session a request was made with."""

    id: str
    user_id: str
    last_seen_at: datetime


async def authenticate_session(
    db: Database, *, token: str, now: datetime | None = None
) -> SessionMatch | None:
    """The live session ``token`` stands for; None for anything else.

    None for a malformed token, an unknown one, and a session that is revoked or expired or
    whose account is disabled; the caller cannot tell which, by design. Writes nothing. One
    indexed read on the fast path: every signed-in request passes here.
    """
    if not _looks_like_token(token):
        return None
    now = now or utcnow()
    statement = (
        select(
            UserSession.id,
            UserSession.user_id,
            UserSession.revoked_at,
            UserSession.expires_at,
            UserSession.last_seen_at,
            User.is_active,
        )
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_sha256 == token_digest(token))
    )
    row = await db.run_read(lambda conn: conn.execute(statement).first(), inline=True)
    if row is None or row.revoked_at is not None or row.expires_at <= now or not row.is_active:
        return None
    return SessionMatch(row.id, row.user_id, row.last_seen_at)


async def purge_expired_sessions(session: AsyncSession, *, before: datetime | None = None) -> int:
    """Delete sessions that expired (or were revoked) before ``before`` (default now)."""
    cutoff = before or utcnow()
    result = await session.execute(
        delete(UserSession).where(
            (UserSession.expires_at < cutoff) | (UserSession.revoked_at < cutoff)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
