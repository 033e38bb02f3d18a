"""Stored secrets as HTTP authentication, from the database: the
:class:`~flowloom.integrations.oauth_http.HttpSecrets` the engine hands to ``http.request``.

Credentials are read by name with the vault. OAuth connections hand out their access token,
refreshed first when it expires within a minute, or when a server answered 401 to it. Refreshes
of one connection are serialized by a lock per connection, and the token is read again once the
lock is held, so concurrent nodes that all find it expired refresh it once. Across processes
(workers sharing PostgreSQL) two refreshes may still race; when the provider then refuses the
loser's (rotated) refresh token, the stored tokens are read again and the winner's are used.

Each database step is its own short transaction; no transaction is held open while the provider
is called.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Final

from flowloom.exceptions import ConfigurationError, InputError, NotFound
from flowloom.integrations.http_client import HttpClientFactory
from flowloom.integrations.oauth import OAuthError, OAuthRefused, TokenSet, refresh_tokens
from flowloom.integrations.oauth_http import (
    HttpAuthError,
    HttpAuthHeader,
    HttpAuthRef,
    credential_header,
)
from flowloom.integrations.oauth_repo import OAuthRepo
from flowloom.storage.database import Database
from flowloom.storage.repos.credentials import CredentialRepo
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Vault

__all__ = ["EXPIRY_MARGIN_S", "DatabaseHttpSecrets"]

EXPIRY_MARGIN_S: Final = 60.0
"""An access token expiring within this many seconds is refreshed before use."""

_RESERVED = "integration:"
_RACE_WAITS_S: Final = (0.0, 0.25, 0.5, 1.0)
"""After a refused refresh, how long to wait before each look for another process's tokens."""


class DatabaseHttpSecrets:
    """Reads an owner's credentials and OAuth connections; refreshes OAuth tokens."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        allow_private_http: bool = False,
        http_client: HttpClientFactory | None = None,
    ) -> None:
        self._db = db
        self._vault = vault
        self._allow_private_http = allow_private_http
        self._http_client = http_client
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.refreshes = 0
        """How many refreshes this instance made (for tests and metrics)."""

    def __repr__(self) -> str:
        return f"DatabaseHttpSecrets({self._vault!r})"

    async def http_auth(
        self,
        ref: HttpAuthRef,
        *,
        owner_id: str | None,
        rejected: HttpAuthHeader | None = None,
    ) -> HttpAuthHeader:
        if owner_id is None:
            raise HttpAuthError(f"{ref.describe()}: this run has no owner to read it for")
        if ref.oauth is not None:
            token = await self.access_token(owner_id, ref.oauth, rejected=rejected)
            return HttpAuthHeader("Authorization", f"Bearer {token}", (token,))
        assert ref.credential is not None
        name = ref.credential
        if name.strip().startswith(_RESERVED):
            raise HttpAuthError(f"no stored credential named {name!r}")
        try:
            async with self._db.write() as session:
                repo = CredentialRepo(session, owner_id=owner_id, vault=self._vault)
                info, secret = await repo.get_secret(name=name)
        except NotFound:
            raise HttpAuthError(f"no stored credential named {name!r}") from None
        except ConfigurationError as exc:  # VaultError: names the row, never the value
            raise HttpAuthError(f"credential {name!r}: {exc}") from None
        return credential_header(ref, kind=info.kind, value=secret.get_secret_value())

    async def access_token(
        self, owner_id: str, connection_id: str, *, rejected: HttpAuthHeader | None = None
    ) -> str:
        """The connection's access token, refreshed when it expires within a minute or when
        ``rejected`` (a 401 answer's header) still carries it."""
        tokens = await self._tokens(owner_id, connection_id)
        if not self._stale(tokens, rejected):
            return tokens.access_token
        lock = self._locks.get((owner_id, connection_id))
        if lock is None:
            lock = asyncio.Lock()
            self._locks[(owner_id, connection_id)] = lock
        seen = tokens.access_token
        async with lock:
            # Whoever held the lock before may have refreshed already: read again, and use a
            # token that replaced the one found stale rather than refreshing a second time.
            tokens = await self._tokens(owner_id, connection_id)
            if tokens.access_token != seen:
                return tokens.access_token
            return (await self._refresh(owner_id, connection_id, tokens)).access_token

    # ---- inside

    def _stale(self, tokens: TokenSet, rejected: HttpAuthHeader | None) -> bool:
        if rejected is not None:
            return rejected.value == f"Bearer {tokens.access_token}"
        return tokens.expires_within(EXPIRY_MARGIN_S, now=utcnow())

    async def _tokens(self, owner_id: str, connection_id: str) -> TokenSet:
        try:
            async with self._db.read() as session:
                repo = OAuthRepo(session, owner_id=owner_id, vault=self._vault)
                tokens = await repo.tokens(connection_id=connection_id)
        except NotFound:
            raise HttpAuthError(f"no OAuth connection {connection_id!r}") from None
        except ConfigurationError as exc:
            raise HttpAuthError(f"OAuth connection {connection_id!r}: {exc}") from None
        if tokens is None:
            raise HttpAuthError(
                f"OAuth connection {connection_id!r} is not authorized yet: authorize it first "
                f"(POST /api/v1/oauth/connections/{connection_id}/authorize)"
            )
        return tokens

    async def _refresh(self, owner_id: str, connection_id: str, tokens: TokenSet) -> TokenSet:
        try:
            async with self._db.write() as session:
                client = await OAuthRepo(session, owner_id=owner_id, vault=self._vault).client(
                    connection_id=connection_id
                )
        except (NotFound, InputError, ConfigurationError) as exc:
            raise HttpAuthError(f"OAuth connection {connection_id!r}: {exc}") from None
        if tokens.refresh_token is None:
            raise HttpAuthError(
                f"OAuth connection {client.label}: the access token expired and the provider "
                "gave no refresh token; authorize the connection again"
            )
        try:
            fresh = await refresh_tokens(
                client,
                refresh_token=tokens.refresh_token,
                now=utcnow(),
                allow_private_http=self._allow_private_http,
                http_client=self._http_client,
            )
        except OAuthRefused as exc:
            # Another process may have refreshed (and rotated the refresh token) meanwhile; its
            # new tokens may take a moment to be stored.
            for delay_s in _RACE_WAITS_S:
                await asyncio.sleep(delay_s)
                current = await self._tokens(owner_id, connection_id)
                if current.refresh_token != tokens.refresh_token:
                    return current
            raise HttpAuthError(
                f"{exc}; the refresh token is revoked or expired: authorize the connection again"
            ) from None
        except OAuthError as exc:
            raise HttpAuthError(str(exc), retryable=exc.retryable) from None
        async with self._db.write() as session:
            await OAuthRepo(session, owner_id=owner_id, vault=self._vault).store_tokens(
                connection_id=connection_id, tokens=fresh
            )
        self.refreshes += 1
        return fresh
