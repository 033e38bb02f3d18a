"""What a provider call can end in besides an answer.

Every leaf says whether trying again later may help (``retryable``) and never carries a secret:
messages from the provider are passed through :func:`redact` first::

    ExecutionError
    └── ProviderError               a chat call failed; ``provider``, ``retryable``
        ├── ProviderRefused         the provider answered 4xx: bad request, bad key, no access
        │   └── UnknownModel        the provider does not know the model (not retried)
        ├── ProviderUnavailable     429 or 5xx after every attempt; ``retry_after_s`` if known
        ├── ProviderTimeout         no answer within ``timeout_s`` after every attempt
        └── MalformedResponse       the answer could not be read (not JSON, wrong shape)

A missing API key is a setup error, :class:`flowloom.exceptions.ConfigurationError`, raised
when the provider is resolved, before any call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flowloom.exceptions import ExecutionError

__all__ = [
    "MalformedResponse",
    "ProviderError",
    "ProviderRefused",
    "ProviderTimeout",
    "ProviderUnavailable",
    "UnknownModel",
    "redact",
]

# Shapes of provider keys (OpenAI sk-..., Anthropic sk-ant-..., Google AIza...) and bearer
# tokens, masked even when we were not told the value (a proxy may echo someone else's key).
_KEY_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)
_MAX_MESSAGE = 500


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret and anything shaped like an API key replaced by ``***``,
    cut to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _KEY_SHAPES.sub("***", text)
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return text


class ProviderError(ExecutionError):
    """A chat call failed. ``retryable`` says whether the same call may succeed later."""

    retryable: bool = False

    def __init__(self, message: str, *, provider: str, status_code: int | None = None) -> None:
        self.provider = provider
        self.status_code = status_code
        self.detail = message
        super().__init__(f"{provider}: {message}")


class ProviderRefused(ProviderError):
    """The provider refused the request (4xx other than 429): trying again will not help."""


class UnknownModel(ProviderRefused):
    """The provider does not know ``model`` (or the key may not use it)."""

    def __init__(
        self, model: str, *, provider: str, message: str = "", status_code: int | None = 404
    ) -> None:
        self.model = model
        text = f"unknown model {model!r}" + (f" ({message})" if message else "")
        super().__init__(text, provider=provider, status_code=status_code)


class ProviderUnavailable(ProviderError):
    """Rate limited (429) or failing (5xx, connection refused) on every attempt."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, provider=provider, status_code=status_code)


class ProviderTimeout(ProviderError):
    """No answer (or no next chunk) within the request's ``timeout_s``."""

    retryable = True


class MalformedResponse(ProviderError):
    """The provider answered 2xx with something we cannot read, or the model's JSON is not the
    JSON the schema asked for."""

    retryable = True
