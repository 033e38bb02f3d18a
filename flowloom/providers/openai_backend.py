"""OpenAI chat completions through the official ``openai`` SDK: api.openai.com or any server
that speaks the same protocol (Ollama, vLLM, LM Studio) at ``base_url``.

The SDK is imported when the first call is made, never when this module is.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from flowloom.heavy_imports import imported
from flowloom.providers._common import b64, cut_short, sdk_error
from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
)
from flowloom.providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Embeddings,
    EmbedRequest,
    GeneratedImages,
    ImagePart,
    ImageRequest,
    TokenUsage,
    ToolCall,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["OpenAIBackend"]


class OpenAIBackend:
    """One attempt per call, SDK retries off (``max_retries=0``)."""

    def __init__(self, *, api_key: str, base_url: str | None = None, name: str = "openai") -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._name = name
        self._client: AsyncOpenAI | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return self._name

    async def prepare(self) -> AsyncOpenAI:
        """The SDK client, built at the first call (the SDK imported off the loop)."""
        if self._client is None:
            await imported("openai")
            from openai import AsyncOpenAI

            # Another call may have built it while the SDK was imported.
            self._client = self._client or AsyncOpenAI(
                api_key=self._api_key, base_url=self._base_url, max_retries=0
            )
        return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        for message in request.messages:
            if message.role == "tool":
                messages.append(
                    {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
                )
                continue
            if message.tool_calls:
                messages.append(
                    {
                        "role": "assistant",
                        "content": message.text or None,
                        "tool_calls": [
                            {
                                "id": call.id,
                                "type": "function",
                                "function": {
                                    "name": call.name,
                                    "arguments": _arguments_text(call.arguments),
                                },
                            }
                            for call in message.tool_calls
                        ],
                    }
                )
                continue
            if not message.images:
                messages.append({"role": message.role, "content": message.text})
                continue
            parts: list[dict[str, Any]] = [{"type": "text", "text": message.text}]
            for image in message.images:
                url = f"data:{image.content_type};base64,{b64(image.data)}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            messages.append({"role": message.role, "content": parts})
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "timeout": request.timeout_s,
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.response_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(request.response_schema)},
            }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": dict(tool.parameters),
                    },
                }
                for tool in request.tools
            ]
        if request.idempotency_key:
            params["extra_headers"] = {"Idempotency-Key": request.idempotency_key}
        return params

    async def send(self, request: ChatRequest) -> ChatResponse:
        client = await self.prepare()
        try:
            completion = await client.chat.completions.create(**self._params(request))
        except Exception as exc:
            raise self._translate(exc, request) from None
        try:
            choice = completion.choices[0]
            usage = completion.usage
            return ChatResponse(
                text=choice.message.content or "",
                usage=TokenUsage(
                    int(usage.prompt_tokens) if usage else 0,
                    int(usage.completion_tokens) if usage else 0,
                ),
                model=str(completion.model or request.model),
                provider=self._name,
                finish_reason=choice.finish_reason,
                tool_calls=tuple(
                    ToolCall(call.id, call.function.name, _parse_arguments(call.function.arguments))
                    for call in (choice.message.tool_calls or ())
                ),
            )
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"the answer is not a chat completion ({type(exc).__name__})", provider=self._name
            ) from None

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        client = await self.prepare()
        params = self._params(request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        try:
            stream = await client.chat.completions.create(**params)
        except Exception as exc:
            raise self._translate(exc, request) from None
        finish: str | None = None
        model: str | None = None
        ended = False
        calls = _StreamedCalls()
        try:
            async for event in stream:
                model = event.model or model
                if event.usage is not None:
                    ended = True
                    yield ChatChunk(
                        usage=TokenUsage(
                            int(event.usage.prompt_tokens), int(event.usage.completion_tokens)
                        ),
                        finish_reason=finish,
                        model=model,
                        tool_calls=calls.whole(self._name),
                    )
                for choice in event.choices:
                    finish = choice.finish_reason or finish
                    if choice.delta is None:
                        continue
                    if choice.delta.content:
                        yield ChatChunk(text=choice.delta.content, model=model)
                    for part in choice.delta.tool_calls or ():
                        calls.add(part)
        except ProviderError:
            raise
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"a streamed chunk could not be read ({type(exc).__name__})", provider=self._name
            ) from None
        except Exception as exc:
            raise self._translate(exc, request, mid_stream=True) from None
        finally:
            await stream.close()
        if not ended:
            # Asked for (include_usage), the usage chunk is the answer's last: without it the
            # answer may be whole or not, and what it cost is unknown.
            raise cut_short(provider=self._name, model=request.model, missing="its usage")

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """One call to the embeddings endpoint for every text of ``request``."""
        client = await self.prepare()
        try:
            response = await client.embeddings.create(
                model=request.model, input=list(request.texts), encoding_format="float"
            )
        except Exception as exc:
            raise self._translate(exc, request) from None
        ordered = sorted(response.data, key=lambda item: item.index)
        return Embeddings(
            vectors=tuple(tuple(float(x) for x in item.embedding) for item in ordered),
            model=response.model or request.model,
            tokens_in=int(response.usage.prompt_tokens) if response.usage else 0,
        )

    async def generate_images(self, request: ImageRequest) -> GeneratedImages:
        """``images.generate``, or ``images.edit`` when the request has an input image. The
        images come back as base64 (asked for explicitly from the DALL-E models, which
        otherwise answer with URLs)."""
        import base64

        client = await self.prepare()
        params: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        if request.count != 1:
            params["n"] = request.count
        if request.size:
            params["size"] = request.size
        if request.quality:
            params["quality"] = request.quality
        if request.model.startswith("dall-e"):
            params["response_format"] = "b64_json"
        try:
            if request.input_image is None:
                response = await client.images.generate(**params)
            else:
                image = request.input_image
                extension = image.content_type.rsplit("/", 1)[-1]
                upload = (f"input.{extension}", image.data, image.content_type)
                response = await client.images.edit(image=upload, **params)
        except Exception as exc:
            raise self._translate(exc, request) from None
        images = []
        for item in response.data or ():
            if not item.b64_json:
                raise MalformedResponse(
                    "an image came back without its data (b64_json)", provider=self._name
                )
            images.append(ImagePart(base64.b64decode(item.b64_json), "image/png"))
        usage = getattr(response, "usage", None)
        return GeneratedImages(
            images=tuple(images),
            model=request.model,
            usage=TokenUsage(
                int(getattr(usage, "input_tokens", 0) or 0),
                int(getattr(usage, "output_tokens", 0) or 0),
            ),
        )

    def _translate(
        self,
        exc: Exception,
        request: ChatRequest | EmbedRequest | ImageRequest,
        *,
        mid_stream: bool = False,
    ) -> ProviderError:
        import openai

        return sdk_error(
            exc,
            openai,
            provider=self._name,
            model=request.model,
            timeout_s=request.timeout_s,
            secrets=(self._api_key,),
            mid_stream=mid_stream,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class _StreamedCalls:
    """Tool calls put together from a stream's fragments: the first fragment of a call (by its
    ``index``) brings its id and name, the later ones pieces of its arguments' JSON text."""

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}

    def add(self, part: Any) -> None:
        id_, name, arguments = self._calls.setdefault(int(part.index), ["", "", ""])
        function = part.function
        self._calls[int(part.index)] = [
            id_ or (part.id or ""),
            name or ((function.name if function else None) or ""),
            arguments + ((function.arguments if function else None) or ""),
        ]

    def whole(self, provider: str) -> tuple[ToolCall, ...]:
        if any(not name for _, name, _ in self._calls.values()):
            raise MalformedResponse("a streamed tool call came without its name", provider=provider)
        return tuple(
            ToolCall(id_, name, _parse_arguments(arguments))
            for _, (id_, name, arguments) in sorted(self._calls.items())
        )


def _arguments_text(arguments: Any) -> str:
    """Arguments as the protocol carries them: a JSON string (raw text stays as it came)."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _parse_arguments(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text
