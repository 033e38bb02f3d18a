"""Anthropic messages through the official ``anthropic`` SDK (``base_url`` configurable).

Structured output uses ``output_config.format`` (JSON Schema). Tools go as ``tools`` (each
``{name, description, input_schema}``); the answer's ``tool_use`` blocks become ``ToolCall``, an
assistant turn with calls goes back as ``tool_use`` blocks, and ``tool`` turns go back as
``tool_result`` blocks in one user turn. The SDK is imported when the first call is made, never
when this module is.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from flowloom.heavy_imports import imported
from flowloom.providers._common import b64, cut_short, sdk_error
from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
)
from flowloom.providers.types import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    TokenUsage,
    ToolCall,
)

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicBackend"]

DEFAULT_MAX_TOKENS: Final = 4096
"""Anthropic requires ``max_tokens``; this is sent when the request leaves it unset."""


class AnthropicBackend:
    """One attempt per call, SDK retries off (``max_retries=0``)."""

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client: AsyncAnthropic | None = None

    def __repr__(self) -> str:
        return f"AnthropicBackend(base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return "anthropic"

    async def prepare(self) -> AsyncAnthropic:
        """The SDK client, built at the first call (the SDK imported off the loop)."""
        if self._client is None:
            await imported("anthropic")
            from anthropic import AsyncAnthropic

            # Another call may have built it while the SDK was imported.
            self._client = self._client or AsyncAnthropic(
                api_key=self._api_key, base_url=self._base_url, max_retries=0
            )
        return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": _messages(request.messages),
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "timeout": request.timeout_s,
        }
        if request.system_prompt:
            params["system"] = request.system_prompt
        if request.temperature is not None:
            # The SDK no longer takes ``temperature`` as an argument; the API decides whether
            # the model accepts it, and refuses with a message if not.
            params["extra_body"] = {"temperature": request.temperature}
        if request.response_schema is not None:
            params["output_config"] = {
                "format": {"type": "json_schema", "schema": dict(request.response_schema)}
            }
        if request.tools:
            params["tools"] = [
                _tool(tool.name, tool.description, tool.parameters) for tool in request.tools
            ]
        if request.idempotency_key:
            params["extra_headers"] = {"Idempotency-Key": request.idempotency_key}
        return params

    async def send(self, request: ChatRequest) -> ChatResponse:
        client = await self.prepare()
        try:
            message = await client.messages.create(**self._params(request))
        except Exception as exc:
            raise self._translate(exc, request) from None
        try:
            text = "".join(
                block.text for block in message.content if getattr(block, "type", "") == "text"
            )
            return ChatResponse(
                text=text,
                usage=TokenUsage(int(message.usage.input_tokens), int(message.usage.output_tokens)),
                model=str(message.model or request.model),
                provider=self.name,
                finish_reason=message.stop_reason,
                tool_calls=tuple(
                    ToolCall(str(block.id), str(block.name), block.input)
                    for block in message.content
                    if getattr(block, "type", "") == "tool_use"
                ),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"the answer is not a message ({type(exc).__name__})", provider=self.name
            ) from None

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        client = await self.prepare()
        params = self._params(request)
        params["stream"] = True
        try:
            stream = await client.messages.create(**params)
        except Exception as exc:
            raise self._translate(exc, request) from None
        tokens_in = tokens_out = 0
        model: str | None = None
        finish: str | None = None
        stopped = False
        # The tool_use blocks by index: id, name and their input's JSON text as it streams.
        uses: dict[int, tuple[str, str, list[str]]] = {}
        try:
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    model = event.message.model
                    tokens_in = int(event.message.usage.input_tokens)
                    tokens_out = int(event.message.usage.output_tokens or 0)
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        uses[int(event.index)] = (str(block.id), str(block.name), [])
                elif kind == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield ChatChunk(text=event.delta.text, model=model)
                    elif event.delta.type == "input_json_delta" and int(event.index) in uses:
                        uses[int(event.index)][2].append(event.delta.partial_json)
                elif kind == "message_delta":
                    finish = event.delta.stop_reason or finish
                    tokens_out = int(event.usage.output_tokens)
                    if getattr(event.usage, "input_tokens", None):
                        tokens_in = int(event.usage.input_tokens)
                elif kind == "message_stop":
                    stopped = True
                    yield ChatChunk(
                        usage=TokenUsage(tokens_in, tokens_out),
                        finish_reason=finish,
                        model=model,
                        tool_calls=tuple(
                            ToolCall(id_, name, _streamed_input("".join(parts)))
                            for _, (id_, name, parts) in sorted(uses.items())
                        ),
                    )
        except ProviderError:
            raise
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"a streamed event could not be read ({type(exc).__name__})", provider=self.name
            ) from None
        except Exception as exc:
            raise self._translate(exc, request, mid_stream=True) from None
        finally:
            await stream.close()
        if not stopped:
            raise cut_short(provider=self.name, model=request.model, missing="message_stop")

    def _translate(
        self, exc: Exception, request: ChatRequest, *, mid_stream: bool = False
    ) -> ProviderError:
        import anthropic

        return sdk_error(
            exc,
            anthropic,
            provider=self.name,
            model=request.model,
            timeout_s=request.timeout_s,
            secrets=(self._api_key,),
            mid_stream=mid_stream,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _messages(turns: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The conversation as Messages API turns. Tool results answer in a user turn, and the
    results of one assistant turn's calls share that user turn, as the API expects."""
    messages: list[dict[str, Any]] = []
    # The tool_result blocks of the user turn being filled, while tool turns follow.
    results: list[dict[str, Any]] | None = None
    for message in turns:
        if message.role == "tool":
            if results is None:
                results = []
                messages.append({"role": "user", "content": results})
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.text,
                }
            )
            continue
        results = None
        parts: list[dict[str, Any]] = [
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": image.content_type,
                    "data": b64(image.data),
                },
            }
            for image in message.images
        ]
        if message.tool_calls:
            # The API refuses an empty text block, and a turn of calls often has no text.
            if message.text:
                parts.append({"type": "text", "text": message.text})
            parts += [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call)}
                for call in message.tool_calls
            ]
        else:
            parts.append({"type": "text", "text": message.text})
        messages.append({"role": message.role, "content": parts})
    return messages


def _streamed_input(text: str) -> Any:
    """A tool_use block's input from its streamed JSON text: ``{}`` when none came (a tool
    without arguments), the raw text when it is not JSON (as ``send`` keeps it)."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def _input(call: ToolCall) -> Any:
    # ``input`` must be an object; arguments that were not JSON go back wrapped, not dropped.
    return call.arguments if isinstance(call.arguments, dict) else {"arguments": call.arguments}


def _tool(name: str, description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name, "input_schema": dict(schema)}
    if description:
        tool["description"] = description
    return tool
