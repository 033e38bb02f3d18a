"""Accounts and sign-in: registration, login, sessions and the tokens they answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from flowloom.api.schemas.common import ApiModel, FromRow, RequestBody
from flowloom.storage.enums import UserRole
from flowloom.storage.tables import User


class UserRegister(RequestBody):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=8, max_length=256)
    username: str | None = Field(default=None, min_length=1, max_length=64)


class LoginRequest(RequestBody):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class ExternalLogin(RequestBody):
    token: str = Field(min_length=1, max_length=16_384)
    """A JWT signed by the configured identity provider."""
    password: str | None = Field(default=None, min_length=1, max_length=256)
    """To link the identity to an existing password account with the same email: that
    account's password (the token proves the identity, the password the account)."""


class UserPublic(FromRow):
    id: str
    email: str
    username: str | None
    role: UserRole
    created_at: datetime
    last_login_at: datetime | None


class TokenPublic(ApiModel):
    access_token: str
    """The session token: send it as ``Authorization: Bearer``, or rely on the cookie."""
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    csrf_token: str
    """Send as ``X-CSRF-Token`` on unsafe requests that use the session cookie."""
    user: UserPublic


def user_public(user: User) -> UserPublic:
    return UserPublic.model_validate(user)


class SignInProvider(ApiModel):
    provider: str
    """The identity provider's name, for the button (``Sign in with clerk``)."""
    sign_in_url: str
    """Where the button sends the browser: the provider's sign-in page, which sends it back to
    ``/signin#token=<JWT>``; the UI then signs in with ``POST /auth/external``."""


class SignInOptions(ApiModel):
    password: bool
    """Whether email and password sign-in is offered (always, for existing accounts)."""
    registration_open: bool
    external: SignInProvider | None
    """The configured identity provider; null when there is none."""


class PasswordChange(RequestBody):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class SessionPublic(ApiModel):
    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    method: str
    """How it was opened: ``password`` or ``external:<provider>``."""
    current: bool
    """Whether this request was made with it."""
