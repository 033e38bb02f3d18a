"""OAuth 2 connections: a user's registered OAuth clients and the tokens they obtained.

A connection is an ``integrations`` row of kind ``oauth2`` whose ``config`` holds what may be
shown (client id, endpoints, scopes, extra authorization parameters). The secrets live sealed in
the vault, each bound to its row:

- the client secret, in the credential ``integration:<id>`` (as MCP servers keep theirs);
- the tokens (access and refresh), in the connection's ``oauth_tokens`` row, with the token
  type, the granted scopes and the expiry beside them in the clear;
- a pending authorization (the PKCE verifier and the redirect URI), in the credential
  ``integration:oauth-state:<SHA-256 of state>``, for ten minutes and one use.

Names starting with ``integration:`` are out of reach of the credentials API, and key rotation
(:func:`~flowloom.storage.repos.credentials.rotate_credentials`) re-seals all three. Nothing here
returns a secret except :meth:`OAuthRepo.client` and :meth:`OAuthRepo.tokens`, which are for
the token exchange and the engine, never for an answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import urlsplit

from pydantic import SecretStr
from sqlalchemy import CursorResult, Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.integrations.oauth import (
    RESERVED_PARAMS,
    OAuthClient,
    TokenAuthMethod,
    TokenSet,
    check_endpoint,
)
from flowloom.storage.enums import IntegrationKind
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.repos.credentials import CredentialKind, CredentialRepo
from flowloom.storage.repos.integrations import secret_credential_name
from flowloom.storage.tables import Credential, Integration, OAuthToken
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Sealed, Vault

__all__ = [
    "PENDING_TTL",
    "OAuthConnectionInfo",
    "OAuthRepo",
    "OAuthTokenInfo",
    "PendingAuthorization",
]

PENDING_TTL: Final = timedelta(minutes=10)
"""How long an authorization started with ``authorize`` may be completed."""
_MAX_PENDING: Final = 20
"""Pending authorizations kept per user; starting more forgets the oldest."""
_STATE_PREFIX: Final = "integration:oauth-state:"
_PREFIX = PREFIXES["integrations"]
_TOKEN_PREFIX = PREFIXES["oauth_tokens"]
_KIND: Final = IntegrationKind.OAUTH2.value
_TEXT_MAX: Final = 2000
_MAX_SCOPES: Final = 50
_MAX_PARAMS: Final = 20
_METHODS: Final = ("client_secret_basic", "client_secret_post", "none")


@dataclass(frozen=True, slots=True)
class OAuthTokenInfo:
    """What may be shown about a connection's tokens: never the tokens."""

    token_type: str
    scopes: list[str]
    expires_at: datetime | None
    connected_at: datetime
    """When the tokens were last obtained or refreshed."""


@dataclass(frozen=True, slots=True)
class OAuthConnectionInfo:
    """What may be shown about a connection: everything but its client secret and tokens."""

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
    """The redirect URI registered with the provider; None: this server's own callback."""
    revocation_url: str | None
    """The provider's token revocation endpoint (RFC 7009); None: it has none."""
    has_client_secret: bool
    created_at: datetime
    updated_at: datetime
    token: OAuthTokenInfo | None
    """None until the connection is authorized."""


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """A started authorization, as the callback finds it."""

    connection_id: str
    code_verifier: str
    redirect_uri: str

    def __repr__(self) -> str:
        return f"PendingAuthorization(connection_id={self.connection_id!r})"


def _token_context(row: OAuthToken) -> str:
    # Must match the context rotate_credentials builds for oauth tokens.
    return f"oauth token {row.id} of {row.user_id}"


def _state_name(state: str) -> str:
    return _STATE_PREFIX + hashlib.sha256(state.encode()).hexdigest()


def _token_info(row: OAuthToken) -> OAuthTokenInfo:
    return OAuthTokenInfo(row.token_type, list(row.scopes), row.expires_at, row.updated_at)


def _info(row: Integration, token: OAuthToken | None) -> OAuthConnectionInfo:
    config = row.config
    return OAuthConnectionInfo(
        id=row.id,
        name=row.name,
        provider=str(config.get("provider", "")),
        client_id=str(config.get("client_id", "")),
        authorization_url=str(config.get("authorization_url", "")),
        token_url=str(config.get("token_url", "")),
        scopes=list(config.get("scopes") or []),
        extra_params=dict(config.get("extra_params") or {}),
        token_auth_method=str(config.get("token_auth_method", "client_secret_basic")),
        redirect_uri=config.get("redirect_uri"),
        revocation_url=config.get("revocation_url"),
        has_client_secret=bool(config.get("has_client_secret")),
        created_at=row.created_at,
        updated_at=row.updated_at,
        token=_token_info(token) if token is not None else None,
    )


class OAuthRepo:
    """One owner's OAuth connections. Methods flush, never commit."""

    def __init__(self, session: AsyncSession, *, owner_id: str, vault: Vault) -> None:
        self._session = session
        self._owner_id = owner_id
        self._vault = vault
        self._credentials = CredentialRepo(session, owner_id=owner_id, vault=vault)

    def __repr__(self) -> str:
        return f"OAuthRepo(owner_id={self._owner_id!r})"

    # ---- connections

    async def create(
        self,
        *,
        name: str,
        client_id: str,
        authorization_url: str,
        token_url: str,
        client_secret: str | SecretStr | None = None,
        scopes: Sequence[str] = (),
        extra_params: Mapping[str, str] | None = None,
        token_auth_method: str | None = None,
        provider: str | None = None,
        redirect_uri: str | None = None,
        revocation_url: str | None = None,
        allow_plain_http: bool = False,
    ) -> OAuthConnectionInfo:
        """Register an OAuth client; Conflict when the owner has an integration of that name.

        Endpoints must be https unless ``allow_plain_http``. ``token_auth_method`` defaults to
        ``client_secret_basic`` with a secret and ``none`` (a public client) without.
        """
        if isinstance(client_secret, SecretStr):
            client_secret = client_secret.get_secret_value()
        secret = client_secret or None
        method = token_auth_method or ("client_secret_basic" if secret else "none")
        if method not in _METHODS:
            raise InputError(
                f"token_auth_method must be one of {', '.join(_METHODS)}", field="token_auth_method"
            )
        if method != "none" and secret is None:
            raise InputError(f"{method} needs a client_secret", field="client_secret")
        check_endpoint(
            _text(authorization_url, "authorization_url"),
            field_name="authorization_url",
            allow_plain_http=allow_plain_http,
        )
        check_endpoint(
            _text(token_url, "token_url"), field_name="token_url", allow_plain_http=allow_plain_http
        )
        if revocation_url is not None:
            check_endpoint(
                _text(revocation_url, "revocation_url"),
                field_name="revocation_url",
                allow_plain_http=allow_plain_http,
            )
        if redirect_uri is not None:
            parts = urlsplit(_text(redirect_uri, "redirect_uri"))
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
                raise InputError(
                    "redirect_uri must be an absolute http(s) URL", field="redirect_uri"
                )
        config: dict[str, Any] = {
            "provider": _text(provider or urlsplit(token_url).hostname or "oauth", "provider", 64),
            "client_id": _text(client_id, "client_id", 500),
            "authorization_url": authorization_url,
            "token_url": token_url,
            "scopes": _check_scopes(scopes),
            "extra_params": _check_params(extra_params or {}),
            "token_auth_method": method,
            "redirect_uri": redirect_uri,
            "revocation_url": revocation_url,
            "has_client_secret": secret is not None,
        }
        row = Integration(
            id=new_id(_PREFIX),
            user_id=self._owner_id,
            kind=_KIND,
            name=_text(name, "name", 200).strip(),
            config=config,
            enabled=True,
        )
        if not row.name:
            raise InputError("name must be 1-200 characters", field="name")
        try:
            async with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=f"integration {row.name!r}") from None
        if secret is not None:
            await self._credentials.create(
                name=secret_credential_name(row.id),
                value=secret,
                kind=CredentialKind.SECRET,
                provider="oauth",
            )
        return _info(row, None)

    async def list(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> Page[OAuthConnectionInfo]:
        """The owner's connections, newest first."""
        check_limit(limit)
        query = self._owned()
        after = check_cursor(cursor, prefix=_PREFIX)
        if after is not None:
            query = query.where(Integration.id < after)
        rows = (
            await self._session.scalars(query.order_by(Integration.id.desc()).limit(limit + 1))
        ).all()
        page = page_of(rows, limit=limit)
        tokens = await self._token_rows([row.id for row in page.items])
        return Page(
            items=[_info(row, tokens.get(row.id)) for row in page.items],
            next_cursor=page.next_cursor,
        )

    async def get(self, *, connection_id: str) -> OAuthConnectionInfo:
        """NotFound for another user's, a deleted or an unknown connection."""
        row = await self._row(connection_id)
        return _info(row, await self._token_row(row.id))

    async def delete(self, *, connection_id: str) -> None:
        """Soft-delete the connection (freeing its name) and forget its secrets and tokens."""
        row = await self._row(connection_id)
        row.deleted_at = utcnow()
        row.enabled = False
        row.name = f"{row.name[:150]} (deleted {row.id})"
        await self._session.execute(
            delete(OAuthToken).where(
                OAuthToken.user_id == self._owner_id, OAuthToken.integration_id == row.id
            )
        )
        await self._session.flush()
        with contextlib.suppress(NotFound):
            await self._credentials.delete(name=secret_credential_name(row.id))

    async def client(self, *, connection_id: str) -> OAuthClient:
        """The client, secret included, for talking to the provider (never for an answer)."""
        row = await self._row(connection_id)
        config = row.config
        secret: str | None = None
        if config.get("has_client_secret"):
            try:
                _, sealed = await self._credentials.get_secret(name=secret_credential_name(row.id))
            except NotFound:
                raise InputError(
                    f"the client secret of OAuth connection {row.name!r} is gone; register the "
                    "connection again",
                    field="client_secret",
                ) from None
            secret = sealed.get_secret_value()
        return OAuthClient(
            client_id=str(config["client_id"]),
            client_secret=secret,
            authorization_url=str(config["authorization_url"]),
            token_url=str(config["token_url"]),
            scopes=tuple(config.get("scopes") or ()),
            extra_params=dict(config.get("extra_params") or {}),
            token_auth_method=cast(TokenAuthMethod, config.get("token_auth_method", "none")),
            revocation_url=config.get("revocation_url"),
            label=f"{row.name!r} ({row.id})",
        )

    # ---- authorizations in flight

    async def start_authorization(
        self, *, connection_id: str, state: str, code_verifier: str, redirect_uri: str
    ) -> datetime:
        """Remember the verifier and redirect URI under ``state``; when it expires.

        Forgets the owner's expired authorizations, and the oldest beyond the last 20.
        """
        row = await self._row(connection_id)
        now = utcnow()
        await self._session.execute(
            delete(Credential).where(
                Credential.user_id == self._owner_id,
                Credential.name.startswith(_STATE_PREFIX, autoescape=True),
                Credential.created_at < now - PENDING_TTL,
            )
        )
        live = list(
            await self._session.scalars(
                select(Credential.id)
                .where(
                    Credential.user_id == self._owner_id,
                    Credential.name.startswith(_STATE_PREFIX, autoescape=True),
                )
                .order_by(Credential.id.desc())
                .offset(_MAX_PENDING - 1)
            )
        )
        if live:
            await self._session.execute(delete(Credential).where(Credential.id.in_(live)))
        value = json.dumps(
            {"connection_id": row.id, "code_verifier": code_verifier, "redirect_uri": redirect_uri}
        )
        await self._credentials.create(
            name=_state_name(state), value=value, kind=CredentialKind.SECRET, provider="oauth"
        )
        return now + PENDING_TTL

    async def consume_authorization(self, *, state: str) -> PendingAuthorization:
        """The authorization started under ``state``, forgotten as it is read (single use).

        InputError naming ``state`` when it is unknown (or another user's), used or expired.
        """
        refused = InputError(
            "unknown, already used or expired state: start the authorization again",
            field="state",
        )
        if not state or len(state) > _TEXT_MAX:
            raise refused
        try:
            info, secret = await self._credentials.get_secret(name=_state_name(state))
        except NotFound:
            raise refused from None
        # The DELETE is the claim: of two callbacks racing with one state, one removes the row.
        result = cast(
            CursorResult[Any],
            await self._session.execute(
                delete(Credential).where(
                    Credential.id == info.id, Credential.user_id == self._owner_id
                )
            ),
        )
        if result.rowcount != 1 or info.created_at < utcnow() - PENDING_TTL:
            raise refused
        data = json.loads(secret.get_secret_value())
        return PendingAuthorization(
            str(data["connection_id"]), str(data["code_verifier"]), str(data["redirect_uri"])
        )

    # ---- tokens

    async def tokens(self, *, connection_id: str) -> TokenSet | None:
        """The connection's tokens (for the engine; never for an answer); None before it was
        authorized."""
        row = await self._row(connection_id)
        token = await self._token_row(row.id)
        if token is None:
            return None
        sealed = Sealed(token.ciphertext, token.nonce, token.key_id)
        data = json.loads(self._vault.open(sealed, context=_token_context(token)))
        return TokenSet(
            access_token=str(data["access_token"]),
            token_type=token.token_type,
            refresh_token=data.get("refresh_token"),
            expires_at=token.expires_at,
            scopes=tuple(token.scopes),
        )

    async def store_tokens(self, *, connection_id: str, tokens: TokenSet) -> OAuthConnectionInfo:
        """Seal and keep ``tokens`` as the connection's (replacing any earlier ones)."""
        row = await self._row(connection_id)
        token = await self._token_row(row.id)
        if token is None:
            token = OAuthToken(
                id=new_id(_TOKEN_PREFIX),
                user_id=self._owner_id,
                integration_id=row.id,
                provider=str(row.config.get("provider", "oauth"))[:64],
                ciphertext=b"",
                nonce=b"",
                key_id="",
            )
            self._fill(token, tokens)
            try:
                async with self._session.begin_nested():
                    self._session.add(token)
            except IntegrityError:
                # Another authorization of the same connection stored its tokens first.
                token = await self._token_row(row.id)
                assert token is not None
                self._fill(token, tokens)
        else:
            self._fill(token, tokens)
        token.updated_at = utcnow()
        await self._session.flush()
        return _info(row, token)

    # ---- inside

    def _fill(self, token: OAuthToken, tokens: TokenSet) -> None:
        sealed = self._vault.seal(tokens.to_secret_json().encode(), context=_token_context(token))
        token.ciphertext, token.nonce, token.key_id = sealed.ciphertext, sealed.nonce, sealed.key_id
        token.token_type = tokens.token_type
        token.scopes = list(tokens.scopes)
        token.expires_at = tokens.expires_at

    def _owned(self) -> Select[Integration]:
        return select(Integration).where(
            Integration.user_id == self._owner_id,
            Integration.kind == _KIND,
            Integration.deleted_at.is_(None),
        )

    async def _row(self, connection_id: str) -> Integration:
        row = await self._session.scalar(self._owned().where(Integration.id == connection_id))
        if row is None:
            raise NotFound("OAuth connection", connection_id)
        return row

    async def _token_row(self, connection_id: str) -> OAuthToken | None:
        return await self._session.scalar(
            select(OAuthToken).where(
                OAuthToken.user_id == self._owner_id, OAuthToken.integration_id == connection_id
            )
        )

    async def _token_rows(self, ids: Sequence[str]) -> dict[str, OAuthToken]:
        if not ids:
            return {}
        rows = await self._session.scalars(
            select(OAuthToken).where(
                OAuthToken.user_id == self._owner_id, OAuthToken.integration_id.in_(ids)
            )
        )
        return {row.integration_id: row for row in rows}

    async def count_pending(self) -> int:
        """How many authorizations of the owner are in flight (expired ones included)."""
        found = await self._session.scalar(
            select(func.count())
            .select_from(Credential)
            .where(
                Credential.user_id == self._owner_id,
                Credential.name.startswith(_STATE_PREFIX, autoescape=True),
            )
        )
        return int(found or 0)


def _text(value: str, field: str, max_chars: int = _TEXT_MAX) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise InputError(f"{field} must be 1-{max_chars} characters", field=field)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InputError(f"{field} may not contain control characters", field=field)
    return value


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    if len(scopes) > _MAX_SCOPES:
        raise InputError(f"at most {_MAX_SCOPES} scopes", field="scopes")
    out: list[str] = []
    for scope in scopes:
        _text(scope, "scopes", 200)
        if any(c.isspace() or c in '"\\' for c in scope):
            raise InputError(f"scope {scope!r} may not contain spaces or quotes", field="scopes")
        if scope not in out:
            out.append(scope)
    return out


def _check_params(params: Mapping[str, str]) -> dict[str, str]:
    if len(params) > _MAX_PARAMS:
        raise InputError(f"at most {_MAX_PARAMS} extra_params", field="extra_params")
    out: dict[str, str] = {}
    for key, value in params.items():
        _text(key, "extra_params", 100)
        if key in RESERVED_PARAMS:
            raise InputError(
                f"extra_params may not set {key!r}: flowloom sets it", field="extra_params"
            )
        if not isinstance(value, str) or len(value) > _TEXT_MAX:
            raise InputError("extra_params values must be text", field="extra_params")
        out[key] = value
    return out
