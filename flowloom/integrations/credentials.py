"""Stored credentials for the providers: a :class:`~flowloom.providers.CredentialSource` over
the database and the vault. Each lookup is its own short transaction."""

from __future__ import annotations

from flowloom.exceptions import ConfigurationError
from flowloom.storage.database import Database
from flowloom.storage.repos.credentials import CredentialKind, CredentialRepo
from flowloom.storage.vault import Vault

__all__ = ["DatabaseCredentials"]


class DatabaseCredentials:
    """Reads an owner's provider keys by credential name."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self._db = db
        self._vault = vault

    def __repr__(self) -> str:
        return f"DatabaseCredentials({self._vault!r})"

    async def provider_key(self, *, owner_id: str, name: str, provider: str) -> str:
        async with self._db.write() as session:
            repo = CredentialRepo(session, owner_id=owner_id, vault=self._vault)
            info, secret = await repo.get_secret(name=name)
        if info.kind != CredentialKind.API_KEY:
            raise ConfigurationError(
                f"credential {name!r} is a {info.kind}, not an api_key, so it cannot be used "
                f"as the key for {provider}"
            )
        if info.provider is not None and info.provider != provider:
            raise ConfigurationError(
                f"credential {name!r} holds a key for {info.provider}, not for {provider}"
            )
        return secret.get_secret_value()
