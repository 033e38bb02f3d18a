"""The credential vault: secrets encrypted at rest with AES-256-GCM.

The data key is derived (HKDF-SHA256) from the configured ``FLOWLOOM_CREDENTIALS_KEY`` or, by
default, from the instance secret key, so the raw secret key never encrypts anything itself.
Every sealed value records the ``key_id`` of the key that sealed it (a fingerprint, not the
key), so a vault given the new key plus the old ones reads every row, and
:func:`flowloom.storage.repos.credentials.rotate_credentials` re-seals old rows with the new key.

The associated data binds a ciphertext to its row (owner and id): a ciphertext copied into
another user's row does not decrypt.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from flowloom.exceptions import ConfigurationError

if TYPE_CHECKING:
    from flowloom.settings import Settings

__all__ = ["Sealed", "Vault", "VaultError"]

_INFO: Final = b"flowloom credentials v1"
_NONCE_BYTES: Final = 12
_MIN_KEY_BYTES: Final = 32


class VaultError(ConfigurationError):
    """A sealed value cannot be opened: its key is not configured, or it was altered.

    The message names the key id and the row, never any part of the secret.
    """


@dataclass(frozen=True, slots=True)
class Sealed:
    """A value as stored: ciphertext (with its GCM tag), nonce, and the sealing key's id."""

    ciphertext: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    key_id: str


class Vault:
    """Seals and opens secrets. Holds the current key and any older ones still accepted."""

    def __init__(self, key: bytes, *, old_keys: Iterable[bytes] = ()) -> None:
        self._secrets = [_checked(key), *(_checked(old) for old in old_keys)]
        self._ring: tuple[_DataKey, dict[str, _DataKey]] | None = None

    def _keys(self) -> tuple[_DataKey, dict[str, _DataKey]]:
        """The current data key, and every accepted one by id; derived at first use, because
        deriving loads ``cryptography`` (some 10 MiB), which a server that never stores a
        credential need not."""
        if self._ring is None:
            current, *older = (_DataKey.derive(secret) for secret in self._secrets)
            accepted = {current.key_id: current}
            for derived in older:
                accepted.setdefault(derived.key_id, derived)
            self._ring = (current, accepted)
        return self._ring

    def __repr__(self) -> str:
        return f"Vault(key_id={self.key_id!r}, accepted={sorted(self._keys()[1])!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """The vault for this instance: ``credentials_key`` if set, else the secret key."""
        if settings.credentials_key is not None:
            key = settings.credentials_key.get_secret_value().encode()
        else:
            key = settings.load_secret_key()
        old = [secret.get_secret_value().encode() for secret in settings.credentials_old_keys]
        return cls(key, old_keys=old)

    @property
    def key_id(self) -> str:
        """The id of the key new values are sealed with."""
        return self._keys()[0].key_id

    def accepts(self, key_id: str) -> bool:
        return key_id in self._keys()[1]

    def seal(self, plaintext: bytes, *, context: str) -> Sealed:
        """Encrypt ``plaintext`` with the current key, bound to ``context`` (the row)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        current = self._keys()[0]
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(current.key).encrypt(nonce, plaintext, context.encode())
        return Sealed(ciphertext, nonce, current.key_id)

    def open(self, sealed: Sealed, *, context: str) -> bytes:
        """The plaintext of ``sealed``; VaultError if its key is unknown or it was altered."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        data_key = self._keys()[1].get(sealed.key_id)
        if data_key is None:
            raise VaultError(
                f"{context}: sealed with key {sealed.key_id!r}, which is not configured "
                "(set FLOWLOOM_CREDENTIALS_OLD_KEYS to the earlier key)"
            )
        try:
            return AESGCM(data_key.key).decrypt(sealed.nonce, sealed.ciphertext, context.encode())
        except (InvalidTag, ValueError):
            raise VaultError(
                f"{context}: cannot be decrypted with key {sealed.key_id!r}: "
                "the stored value was altered or belongs to another row"
            ) from None

    def reseal(self, sealed: Sealed, *, context: str) -> Sealed:
        """``sealed`` opened and sealed again with the current key (unchanged if already so)."""
        if sealed.key_id == self.key_id:
            return sealed
        return self.seal(self.open(sealed, context=context), context=context)


@dataclass(frozen=True, slots=True)
class _DataKey:
    key: bytes = field(repr=False)
    key_id: str

    @classmethod
    def derive(cls, secret: bytes) -> _DataKey:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
        # The id is a fingerprint of the derived key: stable, public, and useless for decrypting.
        key_id = "k_" + hashlib.sha256(b"flowloom key id\0" + key).hexdigest()[:20]
        return cls(key, key_id)


def _checked(secret: bytes) -> bytes:
    """``secret`` if it is long enough to be a credentials key; else ConfigurationError (at
    start-up, not at the first credential)."""
    if len(secret) < _MIN_KEY_BYTES:
        raise ConfigurationError(
            f"a credentials key must be at least {_MIN_KEY_BYTES} bytes "
            "(FLOWLOOM_CREDENTIALS_KEY or FLOWLOOM_SECRET_KEY)"
        )
    return secret
