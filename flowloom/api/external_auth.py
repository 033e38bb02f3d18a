"""Sign-in by an external identity provider: verify its signed JWT, name the identity in it.

The provider (Clerk, Auth0, a company SSO...) signs a token for the user; flowloom checks the
signature (an HS256 shared key, or the provider's public keys from its JWKS URL), the issuer,
the audience and the expiry, and reads ``sub`` (the provider's user id) and ``email``. The
account is then found, or created, by (provider, subject): seed 000's fix, where the provider's
id is only ever a way to find our own user id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from flowloom.api.errors import Unauthenticated
from flowloom.exceptions import InputError, PermissionDenied
from flowloom.heavy_imports import ensure_imported, imported
from flowloom.settings import Settings

if TYPE_CHECKING:
    import jwt

__all__ = ["ExternalIdentity", "ExternalVerifier"]

# PyJWT loads cryptography's X.509 support (~0.15 s, ~10 MiB): only a server that verifies
# identity tokens pays for it, when it first does.
_JWT_MODULE: Final = "jwt"

_ASYMMETRIC: Final = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_LEEWAY_S: Final = 30


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    provider: str
    subject: str
    email: str


class ExternalVerifier:
    """Checks identity-provider tokens against the settings; one per app (JWKS keys cached)."""

    def __init__(self, settings: Settings) -> None:
        self.provider = settings.external_auth_provider
        self.issuer = settings.external_auth_issuer
        self.audience = settings.external_auth_audience
        key = settings.external_auth_shared_key
        self._shared_key = key.get_secret_value() if key is not None else None
        self._jwks_url = settings.external_auth_jwks_url
        self._jwks: jwt.PyJWKClient | None = None

    def _jwks_client(self) -> jwt.PyJWKClient | None:
        """The JWKS client (made on first use), or None with a shared key instead."""
        if self._jwks is None and self._jwks_url:
            ensure_imported(_JWT_MODULE)
            import jwt

            # It caches the key set and refetches it when a token names an unknown key.
            self._jwks = jwt.PyJWKClient(self._jwks_url, cache_keys=True, lifespan=3600)
        return self._jwks

    @property
    def enabled(self) -> bool:
        return self.issuer is not None

    async def verify(self, token: str) -> ExternalIdentity:
        """The identity the token proves; Unauthenticated if it proves nothing.

        PermissionDenied when external sign-in is not configured; InputError for a token whose
        signature holds but that names no email (an account needs one).
        """
        if not self.enabled:
            raise PermissionDenied("sign-in with an external identity provider is not set up")
        await imported(_JWT_MODULE)
        import jwt

        try:
            if (jwks := self._jwks_client()) is not None:
                # The key fetch is blocking I/O (urllib); keep it off the event loop.
                signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
                claims = self._decode(token, signing_key.key, _ASYMMETRIC)
            else:
                assert self._shared_key is not None
                claims = self._decode(token, self._shared_key, ["HS256"])
        except jwt.PyJWKClientError as exc:
            raise Unauthenticated(f"the identity token's key could not be found: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the identity token was refused: {exc}") from None
        subject = claims.get("sub")
        email = claims.get("email")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the identity token names no subject (sub)")
        if not isinstance(email, str) or not email:
            raise InputError("the identity token carries no email claim", field="token")
        return ExternalIdentity(provider=self.provider, subject=subject, email=email)

    def _decode(self, token: str, key: Any, algorithms: list[str]) -> dict[str, Any]:
        import jwt

        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=self.audience,
            issuer=self.issuer,
            leeway=_LEEWAY_S,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return claims
