"""ProviderClient: one SDK adapter plus the behaviour every provider shares.

Rate limit, per-attempt timeout, retries with backoff that honours Retry-After, and the
checking of structured answers are done here once, not three times in the adapters.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from flowloom.exceptions import ConfigurationError
from flowloom.providers.base import ChatBackend
from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from flowloom.providers.ratelimit import RateLimiter
from flowloom.providers.retry import RetryPolicy
from flowloom.providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Embeddings,
    EmbedRequest,
    GeneratedImages,
    ImageRequest,
)

__all__ = ["ProviderClient", "check_structured", "schema_problem"]

_log = logging.getLogger("flowloom.providers")
_T = TypeVar("_T")


class ProviderClient:
    """A :class:`~flowloom.providers.base.ChatProvider` over one :class:`ChatBackend`."""

    def __init__(
        self,
        backend: ChatBackend,
        *,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        timeout_s: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.backend = backend
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.limiter = limiter
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.backend.name

    def __repr__(self) -> str:
        return f"ProviderClient({self.backend!r})"

    async def chat(self, request: ChatRequest) -> ChatResponse:
        request = self._with_timeout(request)
        await self.backend.prepare()
        attempt = 0
        while True:
            attempt += 1
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                async with asyncio.timeout(request.timeout_s):
                    response = await self.backend.send(request)
            except TimeoutError:
                error: ProviderError = self._timeout(request)
            except ProviderError as exc:
                error = exc
            else:
                return check_structured(response, request)
            await self._before_retry(error, attempt)

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """Vectors for ``request.texts``, with the rate limit, timeout and retries of ``chat``.
        ConfigurationError when the provider offers no embeddings."""
        embed = self._capability("embed", "embedding models")
        request = replace(request, timeout_s=request.timeout_s or self.timeout_s)
        embeddings: Embeddings = await self._retrying(lambda: embed(request), request.timeout_s)
        if len(embeddings.vectors) != len(request.texts):
            raise MalformedResponse(
                f"{len(request.texts)} texts were sent and "
                f"{len(embeddings.vectors)} vectors came back",
                provider=self.name,
            )
        return embeddings

    async def generate_images(self, request: ImageRequest) -> GeneratedImages:
        """Images for ``request``, with the rate limit, timeout and retries of ``chat``.
        ConfigurationError when the provider makes no images."""
        generate = self._capability("generate_images", "image generation")
        request = replace(request, timeout_s=request.timeout_s or self.timeout_s)
        made: GeneratedImages = await self._retrying(lambda: generate(request), request.timeout_s)
        if not made.images:
            raise MalformedResponse(f"model {request.model!r} made no image", provider=self.name)
        return made

    def _capability(self, method: str, what: str) -> Callable[..., Awaitable[Any]]:
        found = getattr(self.backend, method, None)
        if found is None:
            raise ConfigurationError(f"{self.name} offers no {what}")
        return cast(Callable[..., Awaitable[Any]], found)

    async def _retrying(self, call: Callable[[], Awaitable[_T]], timeout_s: float | None) -> _T:
        """``call()`` under the rate limit and ``timeout_s``, retried as ``chat`` is."""
        await self.backend.prepare()
        attempt = 0
        while True:
            attempt += 1
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                async with asyncio.timeout(timeout_s):
                    return await call()
            except TimeoutError:
                error: ProviderError = ProviderTimeout(
                    f"no answer within {timeout_s or 0:g} s", provider=self.name
                )
            except ProviderError as exc:
                error = exc
            await self._before_retry(error, attempt)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        request = self._with_timeout(request)
        await self.backend.prepare()
        attempt = 0
        while True:
            attempt += 1
            if self.limiter is not None:
                await self.limiter.acquire()
            chunks = self.backend.open_stream(request)
            try:
                try:
                    async with asyncio.timeout(request.timeout_s):
                        first = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    error: ProviderError = self._timeout(request)
                except ProviderError as exc:
                    error = exc
                else:
                    yield first
                    while True:
                        try:
                            async with asyncio.timeout(request.timeout_s):
                                chunk = await anext(chunks)
                        except StopAsyncIteration:
                            return
                        except TimeoutError:
                            raise self._timeout(request) from None
                        yield chunk
            finally:
                await _close(chunks)
            await self._before_retry(error, attempt)

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def _before_retry(self, error: ProviderError, attempt: int) -> None:
        """Sleep before the next attempt, or raise ``error`` when there is none to make."""
        # Only the provider's own trouble is retried here; a malformed answer is retryable by the
        # engine (a later run may fare better) but repeating it at once rarely helps.
        if not isinstance(error, ProviderUnavailable | ProviderTimeout):
            raise error
        if attempt >= self.retry.attempts:
            raise error
        retry_after_s = getattr(error, "retry_after_s", None)
        if retry_after_s is not None and retry_after_s > self.retry.max_retry_after_s:
            raise error
        delay_s = self.retry.delay_s(attempt, retry_after_s)
        _log.info(
            "%s: attempt %d failed (%s); retrying in %.2f s",
            self.name,
            attempt,
            error.detail,
            delay_s,
        )
        await self._sleep(delay_s)

    def _with_timeout(self, request: ChatRequest) -> ChatRequest:
        if request.timeout_s is not None:
            return request
        return replace(request, timeout_s=self.timeout_s)

    def _timeout(self, request: ChatRequest) -> ProviderTimeout:
        return ProviderTimeout(f"no answer within {request.timeout_s or 0:g} s", provider=self.name)


async def _close(chunks: AsyncIterator[ChatChunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def check_structured(response: ChatResponse, request: ChatRequest) -> ChatResponse:
    """``response`` with ``json`` parsed and checked against the request's schema, if any.

    MalformedResponse when the text is not JSON or not of the schema's shape.
    """
    if request.response_schema is None:
        return response
    text = response.text.strip()
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        raise MalformedResponse(
            f"model {response.model!r} was asked for JSON and answered text that is not JSON",
            provider=response.provider,
        ) from None
    problem = schema_problem(parsed, request.response_schema)
    if problem is not None:
        raise MalformedResponse(
            f"model {response.model!r} answered JSON that does not match the schema: {problem}",
            provider=response.provider,
        )
    return replace(response, json=parsed)


def schema_problem(value: Any, schema: Any) -> str | None:
    """The first way ``value`` breaks ``schema`` (JSON Schema), or None when it conforms."""
    # ~50 ms to import, and only structured calls need it; it ships with the mcp SDK.
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"
