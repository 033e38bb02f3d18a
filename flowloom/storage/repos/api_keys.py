"""API keys: made once, shown once, stored as a SHA-256 digest, checked on every program request.

A key reads ``flk_<prefix>_<secret>``. The prefix (8 characters, no underscore) is stored in the
clear and finds the row; the digest of the whole key proves the caller holds the secret. A plain
SHA-256 is enough (no slow hash): the secret is 256 random bits, not something a person chose,
so there is nothing to guess.

Rotating gives the key a new secret under the same prefix; the digest of the one it replaced is
kept beside it until ``previous_valid_until`` (the grace period), then no longer accepted.

A run's start need not read its key first (``SeenKeys``, PostgreSQL only): a key read valid in
the last ``SEEN_FOR_S`` seconds is taken as read then, and the statement that writes the run
checks it again (``KeyGuard``, a start guard of the engine): revoked, switched off, expired,
its secret replaced (past the grace), its scopes or rate changed, its owner's account disabled,
and nothing is written. Anything else any request does reads the key first, as always.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.rates import parse_rate
from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.enums import ApiScope
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.raw_statements import RawStatement
from flowloom.storage.tables import ApiKey, User
from flowloom.storage.tables.base import utcnow

__all__ = [
    "KEY_MARKER",
    "SEEN_FOR_S",
    "ApiKeyRepo",
    "KeyGuard",
    "KeyMatch",
    "SeenKeys",
    "api_key_owner",
    "authenticate_api_key",
    "seen_keys",
]

KEY_MARKER = "flk"
"""How every flowloom API key begins (``flk_``), so scanners and people can recognise one."""

_ID_PREFIX = PREFIXES["api_keys"]
_PREFIX_LENGTH = 8
_PREFIX_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PREFIX_ATTEMPTS = 5
_NAME_MAX_LENGTH = 200
# Writing last_used_at on every request would turn each authenticated read into a write; a
# minute's precision is plenty for "when was this key last used".
_TOUCH_INTERVAL = timedelta(minutes=1)


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _split(plaintext: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    marker, sep, rest = plaintext.partition("_")
    prefix, sep2, secret = rest.partition("_")
    if marker != KEY_MARKER or not sep or not sep2 or not secret:
        return None
    if len(prefix) != _PREFIX_LENGTH or not set(prefix) <= set(_PREFIX_ALPHABET):
        return None
    return prefix


def _check_scopes(scopes: Iterable[ApiScope | str]) -> list[str]:
    checked: list[str] = []
    for scope in scopes:
        try:
            value = ApiScope(scope).value
        except ValueError:
            allowed = ", ".join(s.value for s in ApiScope)
            raise InputError(
                f"unknown scope {scope!r}; scopes are: {allowed}", field="scopes"
            ) from None
        if value not in checked:
            checked.append(value)
    if not checked:
        raise InputError("a key needs at least one scope", field="scopes")
    return checked


class ApiKeyRepo:
    """One user's API keys. Another user's key id behaves exactly like a missing one."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self._session = session
        self._owner_id = owner_id

    async def create(
        self,
        *,
        name: str,
        scopes: Iterable[ApiScope | str],
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext. The plaintext is not stored and cannot be shown again.

        InputError for an empty or overlong name, an unknown scope, no scopes, or an expiry that
        is naive or already past; NotFound if the owner does not exist.
        """
        name = name.strip()
        if not name or len(name) > _NAME_MAX_LENGTH:
            raise InputError(f"name must be 1-{_NAME_MAX_LENGTH} characters", field="name")
        checked_scopes = _check_scopes(scopes)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InputError("expires_at must carry a time zone", field="expires_at")
            if expires_at <= utcnow():
                raise InputError("expires_at is in the past", field="expires_at")
        attempt = 0
        while True:
            attempt += 1
            prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LENGTH))
            plaintext = f"{KEY_MARKER}_{prefix}_{secrets.token_urlsafe(32)}"
            key = ApiKey(
                id=new_id(_ID_PREFIX),
                user_id=self._owner_id,
                name=name,
                prefix=prefix,
                secret_sha256=_digest(plaintext),
                scopes=checked_scopes,
                expires_at=expires_at,
            )
            try:
                # A savepoint: a prefix collision (about one in a trillion per key) only undoes
                # this insert, and the next attempt draws a fresh prefix.
                async with self._session.begin_nested():
                    self._session.add(key)
            except IntegrityError as exc:
                collided = "prefix" in str(exc.orig).lower()
                if collided and attempt < _PREFIX_ATTEMPTS:
                    continue
                raise translate_integrity_error(exc, what="api key") from None
            return key, plaintext

    async def get(self, *, key_id: str) -> ApiKey:
        """The owner's key with this id (revoked ones too), or NotFound."""
        key = await self._session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == self._owner_id)
        )
        if key is None:
            raise NotFound("api key", key_id)
        return key

    async def list(self, *, cursor: str | None = None, limit: int = 10) -> Page[ApiKey]:
        """The owner's keys, newest first, revoked ones included (their rows hold no secret)."""
        check_limit(limit)
        query = select(ApiKey).where(ApiKey.user_id == self._owner_id)
        after = check_cursor(cursor, prefix=_ID_PREFIX)
        if after is not None:
            query = query.where(ApiKey.id < after)
        rows = await self._session.scalars(query.order_by(ApiKey.id.desc()).limit(limit + 1))
        return page_of(rows.all(), limit=limit)

    async def rotate(
        self, *, key_id: str, grace: timedelta, now: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new secret for the key (same id, prefix and scopes) and its plaintext, shown once.

        The secret it replaces still works for ``grace`` (not at all for zero); a secret
        replaced earlier stops at once, so at most two are ever valid. Conflict for a key that
        is revoked or expired: make a new one instead.
        """
        # Locked (on PostgreSQL): two rotations at once must not both hand out a secret when
        # only the later one would work.
        key = await self._session.scalar(
            select(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == self._owner_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if key is None:
            raise NotFound("api key", key_id)
        now = now or utcnow()
        if key.revoked_at is not None or not key.active:
            raise Conflict(f"api key {key_id} is revoked; create a new key instead")
        if key.expires_at is not None and key.expires_at <= now:
            raise Conflict(f"api key {key_id} has expired; create a new key instead")
        plaintext = f"{KEY_MARKER}_{key.prefix}_{secrets.token_urlsafe(32)}"
        if grace > timedelta(0):
            key.previous_secret_sha256 = key.secret_sha256
            key.previous_valid_until = now + grace
        else:
            key.previous_secret_sha256 = None
            key.previous_valid_until = None
        key.secret_sha256 = _digest(plaintext)
        key.updated_at = now
        await self._session.flush()
        return key, plaintext

    async def revoke(self, *, key_id: str) -> ApiKey:
        """Switch the key off for good. Revoking a revoked key changes nothing."""
        key = await self.get(key_id=key_id)
        if key.revoked_at is None:
            key.active = False
            key.revoked_at = utcnow()
            key.previous_secret_sha256 = None
            key.previous_valid_until = None
            await self._session.flush()
        return key

    async def revoke_all(self) -> int:
        """Revoke every key of the owner still in force (an account being disabled); how many."""
        result = await self._session.execute(
            update(ApiKey)
            .where(ApiKey.user_id == self._owner_id, ApiKey.revoked_at.is_(None))
            .values(
                active=False,
                revoked_at=utcnow(),
                previous_secret_sha256=None,
                previous_valid_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def set_rate_limit(self, *, key_id: str, rate_limit: str | None) -> ApiKey:
        """This key's own request rate (``"100/s"``); None: the instance default applies.
        InputError naming ``rate_limit`` for a malformed rate."""
        key = await self.get(key_id=key_id)
        if rate_limit is not None:
            try:
                rate_limit = str(parse_rate(rate_limit))
            except ValueError as exc:
                raise InputError(str(exc), field="rate_limit") from None
        key.rate_limit = rate_limit
        await self._session.flush()
        return key


async def api_key_owner(session: AsyncSession, *, key_id: str) -> str:
    """The id of the account that holds the key (for the instance's administrators, who reach
    every account's keys); NotFound for an unknown key."""
    owner_id = await session.scalar(select(ApiKey.user_id).where(ApiKey.id == key_id))
    if owner_id is None:
        raise NotFound("api key", key_id)
    return owner_id


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """The key a request was made with: enough to authorize it, nothing secret."""

    id: str
    user_id: str
    scopes: tuple[str, ...]
    rate_limit: str | None = None
    """The key's own rate (``"100/s"``), or None for the instance default."""


_KEY_BY_PREFIX = (
    select(
        ApiKey.id,
        ApiKey.user_id,
        ApiKey.secret_sha256,
        ApiKey.active,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        ApiKey.scopes,
        ApiKey.previous_secret_sha256,
        ApiKey.previous_valid_until,
        ApiKey.rate_limit,
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.prefix == bindparam("prefix"), User.is_active.is_(True))
)
"""Built once: every authenticated request runs it, and a statement made afresh per call costs
SQLAlchemy its construction and a new cache key each time."""


class _KeyRow(NamedTuple):
    """A row of ``_KEY_BY_PREFIX``."""

    id: str
    user_id: str
    secret_sha256: str
    active: bool
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    scopes: list[str] | None
    previous_secret_sha256: str | None
    previous_valid_until: datetime | None
    rate_limit: str | None


@cache
def _key_by_prefix(dialect: Dialect) -> RawStatement:
    return RawStatement(_KEY_BY_PREFIX, dialect)


async def _key_row(db: Database, prefix: str) -> _KeyRow | None:
    """The key with ``prefix`` of an active account, or None: one read by the unique index, on
    the driver's own connection (inline on SQLite; a reader's asyncpg connection on PostgreSQL).
    Every authenticated request makes it; SQLAlchemy's execution cost three times the read."""
    if db.is_sqlite:

        def read(conn: Connection) -> tuple[Any, ...] | None:
            statement = _key_by_prefix(conn.dialect)
            given = statement.args({"prefix": prefix})
            raw = sqlite_connection(conn).execute(statement.sql, given).fetchone()
            return None if raw is None else statement.converted(raw)

        found = await db.run_read(read, inline=True)
    else:
        statement = _key_by_prefix(db.engine.dialect)
        async with db.pg_read_connection() as pg:
            raw = await pg.fetchrow(statement.sql, *statement.args({"prefix": prefix}))
        found = None if raw is None else statement.converted(raw)
    return None if found is None else _KeyRow._make(found)


async def authenticate_api_key(
    db: Database, *, plaintext: str, now: datetime | None = None
) -> KeyMatch | None:
    """The key ``plaintext`` stands for, if it may be used now; None for anything else.

    None for a malformed string, an unknown prefix, a wrong secret, and a key that is revoked,
    inactive, expired, or whose owner's account is disabled; the caller cannot tell which, by
    design. The secret a rotation replaced is accepted until ``previous_valid_until``.
    Not owner-scoped: this is how the owner is found.

    Every authenticated request passes here, so the look-up is one indexed read on the fast
    path (no ORM session). When the key's ``last_used_at`` is more than a minute old it is set
    to ``now`` in a short write of its own; otherwise nothing is written.
    """
    prefix = _split(plaintext)
    if prefix is None:
        return None
    found = await _authenticate(db, prefix, _digest(plaintext), now or utcnow())
    return None if found is None else found[0]


async def _authenticate(
    db: Database, prefix: str, digest: str, now: datetime
) -> tuple[KeyMatch, _KeyRow] | None:
    """``authenticate_api_key`` of the key with ``prefix`` whose digest is ``digest``, with the
    row it read."""
    row = await _key_row(db, prefix)
    if row is None:
        return None
    current = hmac.compare_digest(row.secret_sha256, digest)
    previous = (
        row.previous_secret_sha256 is not None
        and row.previous_valid_until is not None
        and row.previous_valid_until > now
        and hmac.compare_digest(row.previous_secret_sha256, digest)
    )
    if not (current or previous):
        return None
    if not row.active or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_INTERVAL:
        stale = now - _TOUCH_INTERVAL
        # Conditional, so concurrent requests with the same key write the row once.
        touch = (
            update(ApiKey)
            .where(
                ApiKey.id == row.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stale),
            )
            .values(last_used_at=now)
        )
        await db.run_write(lambda conn: conn.execute(touch))
    scopes = tuple(str(scope) for scope in row.scopes or ())
    return KeyMatch(row.id, row.user_id, scopes, row.rate_limit), row


SEEN_FOR_S = 10.0
"""How long a key read valid may start runs unread (re-checked by each start's statement): also
how late, at most, its ``last_used_at`` is touched beyond ``_TOUCH_INTERVAL``."""
_SEEN_MAX = 1_000


class KeyGuard:
    """The key is still as a request of the last ``SEEN_FOR_S`` seconds read it valid: the same
    owner (whose account is active), switched on, not revoked, not expired, the caller's secret
    its current one or the one it replaced within the grace, the same scopes and rate. A start
    guard of the engine (``ports.StartGuard``): read by the statement that writes the run."""

    __slots__ = ("args", "db", "digest", "match", "prefix", "seen")

    def __init__(
        self,
        seen: SeenKeys,
        db: Database,
        match: KeyMatch,
        prefix: str,
        digest: str,
        scopes: list[Any] | None,
        now: datetime,
    ) -> None:
        self.seen = seen
        self.db = db
        """Where the key lives (``recheck``)."""
        self.match = match
        self.prefix = prefix
        self.digest = digest
        """The SHA-256 of the key as the caller sent it (never the key)."""
        self.args: tuple[Any, ...] = (
            match.id,
            match.user_id,
            digest,
            now,
            json.dumps(scopes if scopes is not None else None),
            match.rate_limit,
        )

    def pg_sql(self, first: int) -> str:
        return _pg_key_guard_sql(first)

    async def recheck(self) -> KeyMatch | None:
        """The key read now (its start was refused, or failed): None when it is no longer
        valid. Either way the next request that uses it reads it too, unless it is valid."""
        return await self.seen.recheck(self.db, self)


@cache
def _pg_key_guard_sql(first: int) -> str:
    key, owner, digest, now, scopes, rate = (f"${first + n}" for n in range(6))
    return (
        "SELECT EXISTS (SELECT 1 FROM api_keys AS k JOIN users AS u ON u.id = k.user_id"
        f" WHERE k.id = {key}::varchar AND k.user_id = {owner}::varchar AND u.is_active"
        " AND k.active AND k.revoked_at IS NULL"
        f" AND (k.expires_at IS NULL OR k.expires_at > {now}::timestamptz)"
        f" AND (k.secret_sha256 = {digest}::varchar OR (k.previous_secret_sha256 = {digest}"
        f"::varchar AND k.previous_valid_until > {now}::timestamptz))"
        f" AND k.scopes::jsonb IS NOT DISTINCT FROM {scopes}::jsonb"
        f" AND k.rate_limit IS NOT DISTINCT FROM {rate}::varchar) AS ok"
    )


class SeenKeys:
    """The keys of one database read valid lately, by the digest of the key as sent (never the
    key), each with when it was read: what a run's start takes instead of reading its key."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, KeyMatch, list[Any] | None]] = {}

    async def authenticate(
        self, db: Database, *, plaintext: str, now: datetime | None = None
    ) -> KeyGuard | KeyMatch | None:
        """A ``KeyGuard`` for a key read valid in the last ``SEEN_FOR_S`` seconds (not read
        now: the run's start must carry the guard); else ``authenticate_api_key``'s answer,
        remembered when valid (on PostgreSQL: only its statements carry a guard)."""
        prefix = _split(plaintext)
        if prefix is None:
            return None
        now = now or utcnow()
        digest = _digest(plaintext)
        seen = self._seen.get(digest)
        if seen is not None:
            read_at, match, scopes = seen
            if time.monotonic() - read_at < SEEN_FOR_S:
                return KeyGuard(self, db, match, prefix, digest, scopes, now)
            del self._seen[digest]
        found = await _authenticate(db, prefix, digest, now)
        if found is None:
            return None
        self._remember(db, digest, *found)
        return found[0]

    async def recheck(self, db: Database, guard: KeyGuard) -> KeyMatch | None:
        """The key of ``guard`` read now, by the digest it was sent with: None when it is no
        longer valid (remembered again when it is)."""
        self.forget(guard)
        found = await _authenticate(db, guard.prefix, guard.digest, utcnow())
        if found is None:
            return None
        self._remember(db, guard.digest, *found)
        return found[0]

    def _remember(self, db: Database, digest: str, match: KeyMatch, row: _KeyRow) -> None:
        if db.is_sqlite:
            return  # a start guard is a PostgreSQL statement
        self._seen.pop(digest, None)
        if len(self._seen) >= _SEEN_MAX:
            del self._seen[next(iter(self._seen))]  # the oldest
        self._seen[digest] = (time.monotonic(), match, row.scopes)

    def forget(self, guard: KeyGuard) -> None:
        """The key of ``guard`` is read again by the next request that uses it."""
        self._seen.pop(guard.digest, None)


_SEEN_KEYS: weakref.WeakKeyDictionary[Database, SeenKeys] = weakref.WeakKeyDictionary()


def seen_keys(db: Database) -> SeenKeys:
    """The keys ``db`` was seen to hold lately (one ``SeenKeys`` per database)."""
    found = _SEEN_KEYS.get(db)
    if found is None:
        found = _SEEN_KEYS[db] = SeenKeys()
    return found
