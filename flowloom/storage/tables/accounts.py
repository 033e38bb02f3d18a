"""People and their keys: users, external identities, per-user settings, API keys, sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.enums import UserRole
from flowloom.storage.tables.base import ID_LENGTH, Base, CreatedAtMixin, TimestampMixin, check_in

__all__ = ["ApiKey", "ApiKeyRateCounter", "User", "UserIdentity", "UserSession", "UserSettings"]


class User(TimestampMixin, Base):
    """An account. Internal ``id`` is what every other table points at (seed 000's lesson)."""

    __tablename__ = "users"
    __table_args__ = (
        check_in("role", UserRole),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    """argon2id; empty for accounts that only sign in through an identity provider."""
    role: Mapped[str] = mapped_column(String(16), default=UserRole.USER)
    credits: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]


class UserIdentity(CreatedAtMixin, Base):
    """An external identity (provider + subject, e.g. a Clerk user id) mapped to one user.

    Its own table rather than columns on ``users`` so one account can be reached from several
    providers; the (provider, subject) pair is unique, so a lookup finds at most one user.
    """

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))


class UserSettings(TimestampMixin, Base):
    __tablename__ = "user_settings"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(TimestampMixin, Base):
    """A key for programs. Only the SHA-256 of the secret is stored; the prefix is shown."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "user_id", "active"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    """The visible public part (seed 004's ``keyId``), used to find the key."""
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    previous_secret_sha256: Mapped[str | None] = mapped_column(String(64))
    """After a rotation: the digest of the secret it replaced, accepted until
    ``previous_valid_until`` so programs can switch over without downtime."""
    previous_valid_until: Mapped[datetime | None]
    rate_limit: Mapped[str | None] = mapped_column(String(32))
    """This key's request rate (``"100/s"``), set by an admin; null: the instance default."""


class ApiKeyRateCounter(Base):
    """Where the requests of a rate-limited key are counted, so every server process sharing
    the database counts them together (GCRA: one theoretical arrival time per key)."""

    __tablename__ = "api_key_rate_counters"

    api_key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    tat_s: Mapped[float]
    """The GCRA's theoretical arrival time (Unix seconds): from then on the key may make its
    whole burst again."""


class UserSession(CreatedAtMixin, Base):
    """A signed-in browser or program session. Only the SHA-256 of its token is stored.

    The token itself travels in the httpOnly session cookie or an ``Authorization: Bearer``
    header; a row past ``expires_at`` or with ``revoked_at`` set lets nobody in.
    """

    __tablename__ = "sessions"
    __table_args__ = (Index(None, "user_id", "id"), Index(None, "expires_at"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(String(400))
    ip: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(32), default="password")
    """How the session was opened: ``password`` or ``external:<provider>``."""
