"""Gemini through the official ``google-genai`` SDK (the Gemini API, not Vertex AI).

``base_url`` overrides the endpoint through ``HttpOptions`` (tests point it at a local server).
Structured output uses ``response_json_schema``. The SDK is imported when the first call is
made, never when this module is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from flowloom.providers._common import refuse_tools, status_error
from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    redact,
)
from flowloom.providers.types import ChatChunk, ChatRequest, ChatResponse, TokenUsage

if TYPE_CHECKING:
    from google.genai import Client
    from google.genai.types import GenerateContentResponse

__all__ = ["GeminiBackend"]


class GeminiBackend:
    """One attempt per call: the SDK's own retry options are set to a single attempt."""

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client: Client | None = None

    def __repr__(self) -> str:
        return f"GeminiBackend(base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return "gemini"

    def _sdk(self) -> Client:
        if self._client is None:
            from google import genai
            from google.genai import types

            options = types.HttpOptions(
                base_url=self._base_url, retry_options=types.HttpRetryOptions(attempts=1)
            )
            self._client = genai.Client(api_key=self._api_key, vertexai=False, http_options=options)
        return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        refuse_tools(request, provider=self.name)
        from google.genai import types

        contents = []
        for message in request.messages:
            parts = [types.Part.from_text(text=message.text)]
            parts += [
                types.Part.from_bytes(data=image.data, mime_type=image.content_type)
                for image in message.images
            ]
            contents.append(
                types.Content(role="model" if message.role == "assistant" else "user", parts=parts)
            )
        headers = {"Idempotency-Key": request.idempotency_key} if request.idempotency_key else {}
        config = types.GenerateContentConfig(
            system_instruction=request.system_prompt or None,
            temperature=request.temperature,
            max_output_tokens=request.max_tokens,
            http_options=types.HttpOptions(
                timeout=None if request.timeout_s is None else round(request.timeout_s * 1000),
                headers=headers,
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )
        if request.response_schema is not None:
            config.response_mime_type = "application/json"
            config.response_json_schema = dict(request.response_schema)
        return {"model": request.model, "contents": contents, "config": config}

    async def send(self, request: ChatRequest) -> ChatResponse:
        client = self._sdk()
        try:
            response = await client.aio.models.generate_content(**self._params(request))
        except Exception as exc:
            raise self._translate(exc, request) from None
        try:
            finish = _finish_reason(response)
            return ChatResponse(
                text=_text(response),
                usage=_usage(response),
                model=response.model_version or request.model,
                provider=self.name,
                finish_reason=finish,
            )
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"the answer is not generated content ({type(exc).__name__})", provider=self.name
            ) from None

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        client = self._sdk()
        try:
            stream = await client.aio.models.generate_content_stream(**self._params(request))
        except Exception as exc:
            raise self._translate(exc, request) from None
        usage = TokenUsage()
        finish: str | None = None
        model: str | None = None
        try:
            async for response in stream:
                model = response.model_version or model
                if response.usage_metadata is not None:
                    usage = _usage(response)
                finish = _finish_reason(response) or finish
                text = _text(response)
                if text:
                    yield ChatChunk(text=text, model=model)
        except ProviderError:
            raise
        except (AttributeError, TypeError) as exc:
            raise MalformedResponse(
                f"a streamed chunk could not be read ({type(exc).__name__})", provider=self.name
            ) from None
        except Exception as exc:
            raise self._translate(exc, request) from None
        finally:
            await _aclose(stream)
        yield ChatChunk(usage=usage, finish_reason=finish, model=model)

    def _translate(self, exc: Exception, request: ChatRequest) -> ProviderError:
        import httpx
        import httpx2
        from google.genai import errors

        secrets = (self._api_key,)
        if isinstance(exc, httpx.TimeoutException | httpx2.TimeoutException):
            return ProviderTimeout(
                f"no answer within {request.timeout_s or 0:g} s", provider=self.name
            )
        if isinstance(exc, errors.APIError):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            return status_error(
                provider=self.name,
                model=request.model,
                status_code=int(exc.code or 0),
                message=str(exc.message or exc.status or ""),
                headers=dict(headers) if headers is not None else None,
                secrets=secrets,
            )
        if isinstance(exc, httpx.TransportError | httpx2.TransportError):
            return ProviderUnavailable(
                f"cannot reach the server: {redact(str(exc), secrets)}", provider=self.name
            )
        if isinstance(exc, ValueError):
            # UnknownApiResponseError (not JSON) and pydantic's ValidationError (wrong shape).
            return MalformedResponse(
                f"the answer is not a valid response body: {redact(str(exc), secrets)}",
                provider=self.name,
            )
        raise exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
            self._client = None


def _text(response: GenerateContentResponse) -> str:
    # ``response.text`` warns on non-text parts (thoughts, function calls); join the text parts.
    candidates = response.candidates or []
    if not candidates or candidates[0].content is None:
        return ""
    return "".join(
        part.text for part in candidates[0].content.parts or [] if part.text and not part.thought
    )


def _usage(response: GenerateContentResponse) -> TokenUsage:
    meta = response.usage_metadata
    if meta is None:
        return TokenUsage()
    # Thinking tokens are billed as output.
    tokens_out = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return TokenUsage(int(meta.prompt_token_count or 0), int(tokens_out))


def _finish_reason(response: GenerateContentResponse) -> str | None:
    candidates = response.candidates or []
    if not candidates or candidates[0].finish_reason is None:
        return None
    reason = candidates[0].finish_reason
    return str(getattr(reason, "value", reason))


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
