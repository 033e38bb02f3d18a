"""A streamed answer, put together: what ``ai.llm``, the agent loop and threads share.

``stream_answer`` reads a provider's stream, hands each piece of text to ``on_text`` as it
arrives, and returns the whole as ``chat`` would, tool calls included (they come whole, in the
stream's last chunks: a call is not run before its arguments are complete). After the first
piece it lets the event loop turn once: an SDK that finds several chunks in one network read
hands them over without awaiting anything, and the first token should reach whoever watches
(the event bus, an SSE client) at once, not with the rest of that read.

Usage comes from the stream's last chunk; a stream that ends without it was cut (a dropped
connection, a proxy timing out) and is refused with MalformedResponse rather than taken for a
whole answer: the partial text is not returned as a result and no usage is recorded for it, so
a retry does not count anything twice. (The provider adapters refuse a cut stream themselves,
each by its own protocol's last event; this check holds for any ChatProvider.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from flowloom.providers.errors import MalformedResponse
from flowloom.providers.types import ChatResponse

if TYPE_CHECKING:
    from flowloom.providers.base import ChatProvider
    from flowloom.providers.types import ChatRequest, TokenUsage, ToolCall

__all__ = ["TextListener", "stream_answer"]

TextListener = Callable[[str], Awaitable[None] | None]
"""Called with each piece of text; may be a coroutine function."""


async def stream_answer(
    provider: ChatProvider, request: ChatRequest, on_text: TextListener
) -> ChatResponse:
    """The answer to ``request`` through ``provider.stream`` (see the module docstring)."""
    pieces: list[str] = []
    calls: list[ToolCall] = []
    usage: TokenUsage | None = None
    finish: str | None = None
    model: str | None = None
    async for chunk in provider.stream(request):
        if chunk.text:
            pieces.append(chunk.text)
            waiting = on_text(chunk.text)
            if waiting is not None:
                await waiting
            if len(pieces) == 1:
                await asyncio.sleep(0)
        calls.extend(chunk.tool_calls)
        usage = chunk.usage or usage
        finish = chunk.finish_reason or finish
        model = chunk.model or model
    if usage is None:
        raise MalformedResponse(
            f"the stream of model {request.model!r} ended without its usage (cut short)",
            provider=provider.name,
        )
    return ChatResponse(
        text="".join(pieces),
        usage=usage,
        model=model or request.model,
        provider=provider.name,
        finish_reason=finish,
        tool_calls=tuple(calls),
    )
