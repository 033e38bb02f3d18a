"""Outside services: integrations (MCP servers and others), encrypted credentials, OAuth tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.enums import IntegrationKind
from flowloom.storage.tables.base import (
    ID_LENGTH,
    Base,
    SoftDeleteMixin,
    TimestampMixin,
    check_in,
)

__all__ = ["Credential", "Integration", "OAuthToken"]


class Integration(TimestampMixin, SoftDeleteMixin, Base):
    """A user's connection to an outside service: an MCP server (stdio or URL), OAuth, HTTP."""

    __tablename__ = "integrations"
    __table_args__ = (check_in("kind", IntegrationKind), UniqueConstraint("user_id", "name"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Non-secret settings only (command, URL, tool filter); secrets go to credentials."""
    enabled: Mapped[bool] = mapped_column(default=True)


class Credential(TimestampMixin, Base):
    """A secret, encrypted with AES-GCM; ``key_id`` names the key so keys can be rotated."""

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    last_used_at: Mapped[datetime | None]


class OAuthToken(TimestampMixin, Base):
    """An OAuth 2 token set for one integration, encrypted like credentials."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (UniqueConstraint("user_id", "integration_id"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    """The encrypted JSON of access token and refresh token."""
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    token_type: Mapped[str] = mapped_column(String(32), default="Bearer")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    expires_at: Mapped[datetime | None]
