"""The protocols: what callers use (:class:`ChatProvider`, :class:`ProviderResolver`) and what
each SDK adapter implements (:class:`ChatBackend`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from flowloom.providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Embeddings,
    EmbedRequest,
    GeneratedImages,
    ImageRequest,
)

__all__ = ["PROVIDER_NAMES", "ChatBackend", "ChatProvider", "ProviderResolver"]

PROVIDER_NAMES = ("openai", "gemini", "anthropic")
"""The providers flowloom speaks to (a public contract: workflow configs name them)."""


class ChatProvider(Protocol):
    """A chat model service, with retries, rate limit and timeouts already applied."""

    @property
    def name(self) -> str: ...

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """The whole answer. Raises a :class:`~flowloom.providers.errors.ProviderError`."""
        ...

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """One vector per text. ConfigurationError when the provider has no embeddings."""
        ...

    async def generate_images(self, request: ImageRequest) -> GeneratedImages:
        """The images asked for. ConfigurationError when the provider makes no images."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The answer in pieces as they come; the last carries usage and finish reason.

        Retried only until the first piece arrives: after that a failure is raised to the
        caller, who has already seen part of the answer.
        """
        ...


class ProviderResolver(Protocol):
    """Finds the configured provider for a call: from the instance settings, or from a
    credential the owner stored."""

    async def resolve(
        self, provider: str, *, credential: str | None = None, owner_id: str | None = None
    ) -> ChatProvider:
        """The provider called ``provider`` (one of :data:`PROVIDER_NAMES`).

        With ``credential``, its key is the owner's stored credential of that name; without,
        the instance's key. ConfigurationError names the setting when no key is configured;
        NotFound when the owner has no such credential.
        """
        ...

    async def aclose(self) -> None:
        """Release what the providers hold open (SDK clients); called once at shutdown."""
        ...


class ChatBackend(Protocol):
    """One SDK, bare: a single attempt, SDK retries off, SDK errors turned into ours."""

    @property
    def name(self) -> str: ...

    async def prepare(self) -> object:
        """Import the SDK (off the event loop) and build its client, once. The caller awaits it
        before the clock of a call's first attempt starts: a first import takes seconds on a
        busy machine, and they are not the provider's."""
        ...

    async def send(self, request: ChatRequest) -> ChatResponse:
        """One attempt; raises ProviderError (already redacted) on failure."""
        ...

    def open_stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """One attempt at streaming; raises ProviderError (already redacted) on failure."""
        ...

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        ...
