"""Pieces the SDK adapters share: turning an HTTP failure into our error, a stream that stopped
before its end, images as base64."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    UnknownModel,
    redact,
)
from flowloom.providers.retry import parse_retry_after

__all__ = ["b64", "cut_short", "is_transport_error", "lost_connection", "sdk_error", "status_error"]

# The HTTP clients the SDKs are built on (the newer SDK releases use the httpx2 fork).
_HTTP_CLIENTS = ("httpx", "httpx2")

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


def sdk_error(
    exc: Exception,
    sdk: ModuleType,
    *,
    provider: str,
    model: str,
    timeout_s: float | None,
    secrets: Iterable[str],
    mid_stream: bool = False,
) -> ProviderError:
    """Our error for an exception of the ``openai`` or ``anthropic`` SDK.

    Both SDKs raise the same family (``APITimeoutError``, ``APIStatusError``,
    ``APIConnectionError``, ``APIResponseValidationError``); ``sdk`` is the module. While a
    stream is read (``mid_stream``) the HTTP client's own errors come through too (the
    ``anthropic`` SDK does not wrap them): a failed connection is ProviderUnavailable either
    way. Anything else is re-raised unchanged.
    """
    kept = tuple(secrets)
    if isinstance(exc, sdk.APITimeoutError) or is_transport_error(exc, timeout=True):
        return ProviderTimeout(f"no answer within {timeout_s or 0:g} s", provider=provider)
    if mid_stream and (isinstance(exc, sdk.APIConnectionError) or is_transport_error(exc)):
        return lost_connection(exc, provider=provider, secrets=kept)
    if isinstance(exc, sdk.APIStatusError):
        return status_error(
            provider=provider,
            model=model,
            status_code=exc.status_code,
            message=error_body_message(exc.body) or exc.message,
            headers=dict(exc.response.headers),
            secrets=kept,
        )
    if isinstance(exc, sdk.APIConnectionError) or is_transport_error(exc):
        return ProviderUnavailable(
            f"cannot reach the server: {redact(str(exc), kept)}", provider=provider
        )
    if isinstance(exc, sdk.APIResponseValidationError | ValueError):
        return MalformedResponse(
            f"the answer is not a valid response body: {redact(str(exc), kept)}",
            provider=provider,
        )
    raise exc


def error_body_message(body: Any) -> str | None:
    """The human part of an error body shaped ``{"error": {"message": ...}}``."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return None


def is_transport_error(exc: BaseException, *, timeout: bool = False) -> bool:
    """Whether ``exc`` is the HTTP client's report of a failed connection (httpx or httpx2's
    ``TransportError``: refused, reset, closed with a body unfinished, ...); with ``timeout``,
    of one that timed out (``TimeoutException``)."""
    for name in _HTTP_CLIENTS:
        # Only a client some SDK has loaded can have raised it; none is imported here.
        client = sys.modules.get(name)
        if client is None:
            continue
        if isinstance(exc, client.TimeoutException if timeout else client.TransportError):
            return True
    return False


def lost_connection(
    exc: BaseException, *, provider: str, secrets: Iterable[str]
) -> ProviderUnavailable:
    """The error for a connection lost while an answer streamed: worth another attempt, which
    the engine makes when the node has retries (the text shown so far is of this attempt)."""
    return ProviderUnavailable(
        f"the connection was lost mid-answer: {redact(str(exc) or type(exc).__name__, secrets)}",
        provider=provider,
    )


def cut_short(*, provider: str, model: str, missing: str) -> MalformedResponse:
    """The error for a stream that ended in good order but before the answer did: what a
    proxy that gives up does. ``missing`` names the end that never came. Retryable, and the
    partial text is not an answer: nothing is recorded for it."""
    return MalformedResponse(
        f"the stream of model {model!r} ended before {missing} (cut short)", provider=provider
    )
