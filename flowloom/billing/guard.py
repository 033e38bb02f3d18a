"""A provider resolver that asks a check before every call it lets through.

Nodes keep calling ``ctx.providers.resolve(...).chat(...)`` and know nothing of plans: the
providers they are handed are wrapped, and a call for an owner whose check fails raises before
one byte goes to the provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from flowloom.providers.base import ChatProvider, ProviderResolver
from flowloom.providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Embeddings,
    EmbedRequest,
    GeneratedImages,
    ImageRequest,
)

__all__ = ["GuardedProvider", "QuotaGuardedResolver"]

CallCheck = Callable[..., Awaitable[None]]
"""Called as ``check(owner_id=..., provider=..., model=...)``; raises to refuse the call."""


class GuardedProvider:
    """One provider whose every call for ``owner_id`` first passes ``check``."""

    def __init__(
        self, inner: ChatProvider, *, provider: str, owner_id: str, check: CallCheck
    ) -> None:
        self._inner = inner
        self._provider = provider
        self._owner_id = owner_id
        self._check = check

    @property
    def name(self) -> str:
        return self._inner.name

    async def chat(self, request: ChatRequest) -> ChatResponse:
        await self._check(owner_id=self._owner_id, provider=self._provider, model=request.model)
        return await self._inner.chat(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        await self._check(owner_id=self._owner_id, provider=self._provider, model=request.model)
        async for chunk in self._inner.stream(request):
            yield chunk

    async def embed(self, request: EmbedRequest) -> Embeddings:
        await self._check(owner_id=self._owner_id, provider=self._provider, model=request.model)
        return await self._inner.embed(request)

    async def generate_images(self, request: ImageRequest) -> GeneratedImages:
        await self._check(owner_id=self._owner_id, provider=self._provider, model=request.model)
        return await self._inner.generate_images(request)


class QuotaGuardedResolver:
    """``inner`` with ``check(owner_id=, provider=, model=)`` before every call for an owner.

    Calls resolved without an owner are not checked: there is nobody to hold to a plan.
    """

    def __init__(self, inner: ProviderResolver, check: CallCheck) -> None:
        self.inner = inner
        self._check = check

    async def resolve(
        self, provider: str, *, credential: str | None = None, owner_id: str | None = None
    ) -> ChatProvider:
        resolved = await self.inner.resolve(provider, credential=credential, owner_id=owner_id)
        if owner_id is None:
            return resolved
        return GuardedProvider(resolved, provider=provider, owner_id=owner_id, check=self._check)

    async def aclose(self) -> None:
        await self.inner.aclose()
