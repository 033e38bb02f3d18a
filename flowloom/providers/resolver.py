"""Which provider a call goes to, with which key: instance settings or a stored credential.

One :class:`SettingsProviderResolver` serves the whole process. It keeps one rate limiter per
provider (the limit is the instance's, whoever's key is used) and one SDK client per distinct
(provider, key, base URL), so connections are reused across calls.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from flowloom.exceptions import ConfigurationError
from flowloom.providers.base import PROVIDER_NAMES, ChatBackend
from flowloom.providers.client import ProviderClient
from flowloom.providers.ratelimit import RateLimiter
from flowloom.providers.retry import RetryPolicy

if TYPE_CHECKING:
    from flowloom.settings import Settings

__all__ = [
    "API_KEY_SETTINGS",
    "CredentialSource",
    "ProviderConfig",
    "SettingsProviderResolver",
    "make_backend",
]

API_KEY_SETTINGS: Final = {
    "openai": "FLOWLOOM_OPENAI_API_KEY",
    "gemini": "FLOWLOOM_GEMINI_API_KEY",
    "anthropic": "FLOWLOOM_ANTHROPIC_API_KEY",
}
_MAX_CLIENTS = 256


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """How to reach one provider."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    requests_per_s: float | None = None
    """The instance's limit for this provider; None for none."""


class CredentialSource(Protocol):
    """The owner's stored provider keys, by credential name."""

    async def provider_key(self, *, owner_id: str, name: str, provider: str) -> str:
        """The key stored in the owner's credential ``name``, for ``provider``.

        NotFound when the owner has no such credential; ConfigurationError when it is not an
        API key or is meant for another provider.
        """
        ...


def make_backend(provider: str, api_key: str, base_url: str | None) -> ChatBackend:
    """The SDK adapter for ``provider``; the SDK itself is imported on its first call."""
    if provider == "openai":
        from flowloom.providers.openai_backend import OpenAIBackend

        return OpenAIBackend(api_key=api_key, base_url=base_url)
    if provider == "gemini":
        from flowloom.providers.gemini_backend import GeminiBackend

        return GeminiBackend(api_key=api_key, base_url=base_url)
    if provider == "anthropic":
        from flowloom.providers.anthropic_backend import AnthropicBackend

        return AnthropicBackend(api_key=api_key, base_url=base_url)
    raise ConfigurationError(_unknown_provider(provider))


class SettingsProviderResolver:
    """A :class:`~flowloom.providers.base.ProviderResolver` over instance settings and stored
    credentials."""

    def __init__(
        self,
        configs: Mapping[str, ProviderConfig],
        *,
        credentials: CredentialSource | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backend_factory: Callable[[str, str, str | None], ChatBackend] = make_backend,
    ) -> None:
        unknown = sorted(set(configs) - set(PROVIDER_NAMES))
        if unknown:
            raise ConfigurationError(_unknown_provider(unknown[0]))
        self._configs = {name: configs.get(name, ProviderConfig()) for name in PROVIDER_NAMES}
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._backend_factory = backend_factory
        self._limiters = {
            name: RateLimiter(config.requests_per_s, sleep=sleep)
            for name, config in self._configs.items()
            if config.requests_per_s is not None
        }
        self._clients: OrderedDict[tuple[str, str, str | None], ProviderClient] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credentials: CredentialSource | None = None
    ) -> SettingsProviderResolver:
        def key(value: object) -> str | None:
            secret = getattr(value, "get_secret_value", None)
            return secret() if secret is not None else None

        configs = {
            "openai": ProviderConfig(
                key(settings.openai_api_key),
                settings.openai_base_url,
                settings.openai_requests_per_s,
            ),
            "gemini": ProviderConfig(
                key(settings.gemini_api_key),
                settings.gemini_base_url,
                settings.gemini_requests_per_s,
            ),
            "anthropic": ProviderConfig(
                key(settings.anthropic_api_key),
                settings.anthropic_base_url,
                settings.anthropic_requests_per_s,
            ),
        }
        return cls(
            configs,
            credentials=credentials,
            retry=RetryPolicy(attempts=settings.provider_max_attempts),
            timeout_s=settings.provider_timeout_s,
        )

    def limiter(self, provider: str) -> RateLimiter | None:
        """The rate limiter every call to ``provider`` passes through, if one is configured."""
        return self._limiters.get(provider)

    async def resolve(
        self, provider: str, *, credential: str | None = None, owner_id: str | None = None
    ) -> ProviderClient:
        config = self._configs.get(provider)
        if config is None:
            raise ConfigurationError(_unknown_provider(provider))
        if credential is not None:
            if self._credentials is None:
                raise ConfigurationError(
                    f"credential {credential!r} was named, but stored credentials are not "
                    "available here"
                )
            if owner_id is None:
                raise ConfigurationError(
                    f"credential {credential!r} was named, but the run has no owner to read it for"
                )
            api_key = await self._credentials.provider_key(
                owner_id=owner_id, name=credential, provider=provider
            )
        elif config.api_key:
            api_key = config.api_key
        else:
            raise ConfigurationError(
                f"no API key for {provider}: set {API_KEY_SETTINGS[provider]}, or name a stored "
                "credential in the node's 'credential' setting"
            )
        # The key is part of the cache key only as a digest, so the cache holds no extra copy.
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        cache_key = (provider, digest, config.base_url)
        client = self._clients.get(cache_key)
        if client is None:
            client = ProviderClient(
                self._backend_factory(provider, api_key, config.base_url),
                retry=self._retry,
                limiter=self._limiters.get(provider),
                timeout_s=self._timeout_s,
                sleep=self._sleep,
            )
            self._clients[cache_key] = client
            if len(self._clients) > _MAX_CLIENTS:
                # Dropped, not closed: a call may still be using it; its pool closes when freed.
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(cache_key)
        return client

    async def aclose(self) -> None:
        """Close every SDK client (at shutdown)."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()


def _unknown_provider(name: str) -> str:
    return f"unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}"
