"""Pieces the SDK adapters share: turning an HTTP failure into our error, images as base64."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

from flowloom.providers.errors import (
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
    UnknownModel,
    redact,
)
from flowloom.providers.retry import parse_retry_after

__all__ = ["b64", "status_error"]

# 408 (request timeout) and 409 (lock conflict) are transient at every provider we speak to.
_TRANSIENT_4XX = frozenset({408, 409, 429})


def status_error(
    *,
    provider: str,
    model: str,
    status_code: int,
    message: str,
    headers: Mapping[str, str] | None,
    secrets: Iterable[str],
) -> ProviderError:
    """Our error for an HTTP error answer; ``message`` is the provider's, redacted here."""
    text = redact(message or f"HTTP {status_code}", secrets)
    if status_code in _TRANSIENT_4XX or status_code >= 500:
        return ProviderUnavailable(
            f"HTTP {status_code}: {text}",
            provider=provider,
            status_code=status_code,
            retry_after_s=parse_retry_after(headers),
        )
    if status_code == 404:
        return UnknownModel(model, provider=provider, message=text, status_code=status_code)
    return ProviderRefused(
        f"the request was refused (HTTP {status_code}): {text}",
        provider=provider,
        status_code=status_code,
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
