"""Webhook addresses and secret tokens: made once, the token shown once, stored as SHA-256.

A webhook answers at ``/api/v1/hooks/<path>`` and starts a run only for a caller holding its
token (``flh_`` + 256 random bits). Only the token's SHA-256 is stored: like an API key's
secret it is random, not chosen by a person, so a fast hash leaves nothing to guess, and a
stolen database holds no usable token. The path is random too, but it is an address, not a
secret: it shows up in logs and proxies, which is why the token travels separately.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "TOKEN_MARKER",
    "new_webhook_path",
    "new_webhook_token",
    "token_digest",
    "token_matches",
]

TOKEN_MARKER = "flh"
"""How every webhook token begins (``flh_``), so scanners and people can recognise one."""

_PATH_BYTES = 18
"""24 URL-safe characters: room in ``webhook_path`` (64) and no practical chance of a clash."""

# Compared against when a hook has no stored digest, so every refusal costs the same work.
_NO_DIGEST = "0" * 64


def new_webhook_path() -> str:
    """A fresh random path segment for a webhook's address (URL-safe, no slash)."""
    return secrets.token_urlsafe(_PATH_BYTES)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_webhook_token() -> tuple[str, str]:
    """A new token and its digest. The token itself is not stored: show it once."""
    token = f"{TOKEN_MARKER}_{secrets.token_urlsafe(32)}"
    return token, token_digest(token)


def token_matches(stored_digest: str | None, offered: str | None) -> bool:
    """Whether ``offered`` is the token whose digest is ``stored_digest``, in constant time.

    False when either is missing; the comparison is done anyway, so a missing token, a wrong
    one and a hook without a digest cannot be told apart by timing.
    """
    expected = stored_digest or _NO_DIGEST
    given = token_digest(offered) if offered is not None else _NO_DIGEST
    same = hmac.compare_digest(expected, given)
    return same and stored_digest is not None and offered is not None
