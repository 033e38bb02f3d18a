"""OAuth connections: registering a provider, authorizing, a connection's tokens (not values)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr

from flowloom.api.schemas.common import ApiModel, RequestBody


class OAuthConnectionCreate(RequestBody):
    """An OAuth 2 client as registered with the provider. ``client_secret`` is sealed and never
    shown again; leave it out for a public client (PKCE alone)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    """A label (``github``); the token endpoint's host when not given."""
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr | None = Field(default=None, min_length=1, max_length=10_000)
    authorization_url: str = Field(min_length=1, max_length=2000)
    token_url: str = Field(min_length=1, max_length=2000)
    scopes: list[str] = Field(default_factory=list, max_length=50)
    extra_params: dict[str, str] = Field(default_factory=dict)
    """Added to the authorization URL (``access_type=offline``, ``prompt=consent``)."""
    token_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    """How the client authenticates at the token endpoint: ``client_secret_basic`` by default
    with a secret, ``none`` without."""
    revocation_url: str | None = Field(default=None, min_length=1, max_length=2000)
    """The provider's token revocation endpoint (RFC 7009): disconnecting revokes the tokens
    there. Without it they are only forgotten here."""
    redirect_uri: str | None = Field(default=None, min_length=1, max_length=2000)
    """The redirect URI registered with the provider, when this server is reached under
    another address than the one it sees (behind a proxy); it must lead to
    ``/api/v1/oauth/callback``. By default, this server's own callback URL."""


class OAuthTokenPublic(ApiModel):
    """The tokens' metadata (never the tokens)."""

    token_type: str
    scopes: list[str]
    expires_at: datetime | None
    connected_at: datetime


class OAuthConnectionPublic(ApiModel):
    id: str
    name: str
    provider: str
    client_id: str
    authorization_url: str
    token_url: str
    scopes: list[str]
    extra_params: dict[str, str]
    token_auth_method: str
    redirect_uri: str | None
    revocation_url: str | None
    has_client_secret: bool
    connected: bool
    """Whether the connection holds tokens (it was authorized)."""
    token: OAuthTokenPublic | None
    created_at: datetime
    updated_at: datetime


class AuthorizationStart(ApiModel):
    authorization_url: str
    """Send the user's browser here; the provider sends it back to the callback."""
    expires_at: datetime
    """The authorization must be completed by then."""


class OAuthDisconnected(ApiModel):
    id: str
    revoked: bool
    """Whether the provider confirmed the revocation of the tokens (RFC 7009)."""
    revocation: Literal["revoked", "not_supported", "no_tokens", "failed"]
    """``not_supported``: the connection names no revocation endpoint; ``no_tokens``: it was
    never authorized; ``failed``: the provider refused or could not be reached (see
    ``detail``). The connection is deleted here in every case."""
    detail: str | None = None
