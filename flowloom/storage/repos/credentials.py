"""Credentials: a user's secrets (provider keys, HTTP auth), encrypted with the vault.

Listing returns :class:`CredentialInfo`, which has no secret field at all; only
:meth:`CredentialRepo.get_secret` (for the engine, never the API) opens a value, and it comes
back as a ``SecretStr`` that prints as ``**********``. Each ciphertext is bound to its row
(owner and id), so copying it into another row makes it unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit
from flowloom.storage.tables import Credential, OAuthToken
from flowloom.storage.tables.base import utcnow
from flowloom.storage.vault import Sealed, Vault

__all__ = ["CredentialInfo", "CredentialKind", "CredentialRepo", "rotate_credentials"]

_PREFIX = PREFIXES["credentials"]
_NAME_MAX = 200
_VALUE_MAX = 64 * 1024


class CredentialKind(StrEnum):
    API_KEY = "api_key"
    """A provider's API key (OpenAI, Gemini, Anthropic, ...)."""
    BEARER_TOKEN = "bearer_token"
    """Sent as ``Authorization: Bearer ...`` by HTTP nodes."""
    BASIC_AUTH = "basic_auth"
    """``user:password`` for HTTP basic authentication."""
    HEADER = "header"
    """A header value (``X-Api-Key`` and the like)."""
    SECRET = "secret"
    """Any other secret string."""


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What may be shown about a credential: everything but its value."""

    id: str
    name: str
    kind: str
    provider: str | None
    key_id: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


def _info(row: Credential) -> CredentialInfo:
    return CredentialInfo(
        row.id,
        row.name,
        row.kind,
        row.provider,
        row.key_id,
        row.created_at,
        row.updated_at,
        row.last_used_at,
    )


def _context(row_user_id: str, row_id: str) -> str:
    # Must match the context _rotate_table builds for credentials.
    return f"credential {row_id} of {row_user_id}"


class CredentialRepo:
    """One owner's credentials. Methods flush, never commit."""

    def __init__(self, session: AsyncSession, *, owner_id: str, vault: Vault) -> None:
        self._session = session
        self._owner_id = owner_id
        self._vault = vault

    def __repr__(self) -> str:
        return f"CredentialRepo(owner_id={self._owner_id!r})"

    async def create(
        self,
        *,
        name: str,
        value: str | SecretStr,
        kind: CredentialKind | str = CredentialKind.API_KEY,
        provider: str | None = None,
    ) -> CredentialInfo:
        """Store a new secret under ``name`` (unique per owner): Conflict if taken."""
        name = _check_name(name)
        checked_kind = _check_kind(kind)
        plaintext = _check_value(value)
        row = Credential(
            id=new_id(_PREFIX),
            user_id=self._owner_id,
            name=name,
            kind=checked_kind,
            provider=provider,
            ciphertext=b"",
            nonce=b"",
            key_id="",
        )
        _seal_into(row, self._vault, plaintext)
        try:
            # A savepoint: a duplicate name undoes only this insert, not the caller's work.
            async with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=f"credential {name!r}") from None
        return _info(row)

    async def list(self, *, cursor: str | None = None, limit: int = 50) -> Page[CredentialInfo]:
        """The owner's credentials, newest first, without their values."""
        check_limit(limit)
        query = select(Credential).where(Credential.user_id == self._owner_id)
        after = check_cursor(cursor, prefix=_PREFIX)
        if after is not None:
            query = query.where(Credential.id < after)
        rows = list(
            await self._session.scalars(query.order_by(Credential.id.desc()).limit(limit + 1))
        )
        items = [_info(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=items[-1].id if more and items else None)

    async def get(self, *, name: str) -> CredentialInfo:
        """The owner's credential called ``name``, without its value; NotFound otherwise."""
        return _info(await self._row(name))

    async def get_secret(self, *, name: str) -> tuple[CredentialInfo, SecretStr]:
        """The credential and its value, for the engine (never hand this to the API).

        Marks the credential used. VaultError if it cannot be decrypted.
        """
        row = await self._row(name)
        sealed = Sealed(row.ciphertext, row.nonce, row.key_id)
        plaintext = self._vault.open(sealed, context=_context(row.user_id, row.id))
        row.last_used_at = utcnow()
        await self._session.flush()
        return _info(row), SecretStr(plaintext.decode())

    async def update_value(self, *, name: str, value: str | SecretStr) -> CredentialInfo:
        """Replace the secret of ``name`` (sealed with the current key)."""
        row = await self._row(name)
        _seal_into(row, self._vault, _check_value(value))
        await self._session.flush()
        return _info(row)

    async def delete(self, *, name: str) -> None:
        """Forget the credential for good (secrets are not kept soft-deleted)."""
        row = await self._row(name)
        await self._session.execute(delete(Credential).where(Credential.id == row.id))

    async def _row(self, name: str) -> Credential:
        row = await self._session.scalar(
            select(Credential).where(Credential.user_id == self._owner_id, Credential.name == name)
        )
        if row is None:
            raise NotFound("credential", name)
        return row


async def rotate_credentials(session: AsyncSession, *, vault: Vault, batch: int = 500) -> int:
    """Re-seal every credential and OAuth token not sealed with the vault's current key.

    Instance-wide (an admin task). Returns how many rows changed. Rows whose key the vault does
    not hold raise VaultError naming the row, and nothing is flushed for that batch.
    """
    changed = await _rotate_table(session, vault, Credential, "credential", batch)
    return changed + await _rotate_table(session, vault, OAuthToken, "oauth token", batch)


async def _rotate_table(
    session: AsyncSession,
    vault: Vault,
    table: type[Credential] | type[OAuthToken],
    label: str,
    batch: int,
) -> int:
    changed = 0
    while True:
        query = select(table).where(table.key_id != vault.key_id).order_by(table.id).limit(batch)
        rows: list[Credential | OAuthToken] = list(await session.scalars(query))
        if not rows:
            return changed
        for row in rows:
            context = f"{label} {row.id} of {row.user_id}"
            sealed = vault.reseal(Sealed(row.ciphertext, row.nonce, row.key_id), context=context)
            row.ciphertext, row.nonce, row.key_id = sealed.ciphertext, sealed.nonce, sealed.key_id
        await session.flush()
        changed += len(rows)


def _seal_into(row: Credential, vault: Vault, plaintext: bytes) -> None:
    sealed = vault.seal(plaintext, context=_context(row.user_id, row.id))
    row.ciphertext, row.nonce, row.key_id = sealed.ciphertext, sealed.nonce, sealed.key_id


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _NAME_MAX:
        raise InputError(f"name must be 1-{_NAME_MAX} characters", field="name")
    return name


def _check_kind(kind: CredentialKind | str) -> str:
    try:
        return CredentialKind(kind).value
    except ValueError:
        allowed = ", ".join(k.value for k in CredentialKind)
        raise InputError(f"unknown kind {kind!r}; kinds are: {allowed}", field="kind") from None


def _check_value(value: str | SecretStr) -> bytes:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not text:
        raise InputError("the value is empty", field="value")
    data = text.encode()
    if len(data) > _VALUE_MAX:
        raise InputError(f"the value is over {_VALUE_MAX} bytes", field="value")
    return data
