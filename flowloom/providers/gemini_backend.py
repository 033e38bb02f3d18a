"""Gemini through the official ``google-genai`` SDK (the Gemini API, not Vertex AI).

``base_url`` overrides the endpoint through ``HttpOptions`` (tests point it at a local server).
Structured output uses ``response_json_schema``. Tools go as function declarations with
``parameters_json_schema``; the answer's ``function_call`` parts become ``ToolCall`` (ids made up
as ``call_<index>`` when the API gives none), an assistant turn with calls goes back as
``function_call`` parts, and ``tool`` turns go back as ``function_response`` parts
(``{"result": text}``) in one user turn. The SDK is imported when the first call is made, never
when this module is.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from flowloom.heavy_imports import imported
from flowloom.providers._common import cut_short, lost_connection, status_error
from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    redact,
)
from flowloom.providers.types import (
    ChatChunk,
    ChatMessage,
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
    from google.genai import Client
    from google.genai.types import GenerateContentResponse, Part, PartDict

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

    async def prepare(self) -> Client:
        """The SDK client, built at the first call (the SDK imported off the loop)."""
        if self._client is None:
            await imported("google.genai", "google.genai.types")
            from google import genai
            from google.genai import types

            options = types.HttpOptions(
                base_url=self._base_url,
                retry_options=types.HttpRetryOptions(attempts=1),
                async_client_args={"event_hooks": {"request": [_add_idempotency_key]}},
            )
            # Another call may have built it while the SDK was imported.
            self._client = self._client or genai.Client(
                api_key=self._api_key, vertexai=False, http_options=options
            )
        return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        from google.genai import types

        contents = _contents(request.messages)
        # Only what is set goes in: the SDK turns every field and every per-request HTTP option
        # into work on each call (0.3-0.6 ms each). The timeout is ProviderClient's (an asyncio
        # timeout around each attempt and each chunk), retries are off on the client, and the
        # idempotency key goes through the client's request hook (``_idempotency_key``).
        settings: dict[str, Any] = {
            "system_instruction": request.system_prompt or None,
            "temperature": request.temperature,
            "max_output_tokens": request.max_tokens,
        }
        config = types.GenerateContentConfig(
            **{name: value for name, value in settings.items() if value is not None}
        )
        if request.response_schema is not None:
            config.response_mime_type = "application/json"
            config.response_json_schema = dict(request.response_schema)
        if request.tools:
            declarations = [
                types.FunctionDeclaration(
                    name=tool.name,
                    description=tool.description or None,
                    parameters_json_schema=dict(tool.parameters),
                )
                for tool in request.tools
            ]
            config.tools = [types.Tool(function_declarations=declarations)]
        unset = config == types.GenerateContentConfig()
        return {"model": request.model, "contents": contents, "config": None if unset else config}

    async def send(self, request: ChatRequest) -> ChatResponse:
        client = await self.prepare()
        try:
            with _idempotency_key(request.idempotency_key):
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
                tool_calls=_tool_calls(response),
            )
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"the answer is not generated content ({type(exc).__name__})", provider=self.name
            ) from None

    async def open_stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        client = await self.prepare()
        stream: Any = None
        try:
            with _idempotency_key(request.idempotency_key):
                stream = await client.aio.models.generate_content_stream(**self._params(request))
                # The request goes out when the first answer is asked for: under the key.
                responses = aiter(stream)
                first = await anext(responses, None)
        except Exception as exc:
            if stream is not None:
                await _aclose(stream)
            raise self._translate(exc, request) from None
        usage = TokenUsage()
        finish: str | None = None
        model: str | None = None
        # Gemini streams each function call whole, in some chunk; they are handed on at the end.
        call_parts: list[Part] = []
        try:
            response = first
            while response is not None:
                model = response.model_version or model
                if response.usage_metadata is not None:
                    usage = _usage(response)
                finish = _finish_reason(response) or finish
                text = _text(response)
                if text:
                    yield ChatChunk(text=text, model=model)
                call_parts += _call_parts(response)
                response = await anext(responses, None)
        except ProviderError:
            raise
        except (AttributeError, TypeError) as exc:
            raise MalformedResponse(
                f"a streamed chunk could not be read ({type(exc).__name__})", provider=self.name
            ) from None
        except Exception as exc:
            raise self._translate(exc, request, mid_stream=True) from None
        finally:
            await _aclose(stream)
        if finish is None:
            # The last chunk of an answer says why it ended; a stream without one was cut,
            # and its usage (if any came) is only that of the part received.
            raise cut_short(provider=self.name, model=request.model, missing="its finish reason")
        yield ChatChunk(
            usage=usage, finish_reason=finish, model=model, tool_calls=_calls_of(call_parts)
        )

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """One ``embed_content`` call for every text of ``request``. The Gemini API reports no
        token count for embeddings: ``tokens_in`` is estimated (four characters a token)."""
        client = await self.prepare()
        from google.genai import types

        # One Content per text: a list of plain strings would be one text in several parts.
        contents = [types.Content(parts=[types.Part(text=text)]) for text in request.texts]
        try:
            response = await client.aio.models.embed_content(
                model=request.model, contents=list[Any](contents)
            )
        except Exception as exc:
            raise self._translate(exc, request) from None
        vectors = tuple(
            tuple(float(x) for x in (item.values or ())) for item in response.embeddings or ()
        )
        characters = sum(len(text) for text in request.texts)
        return Embeddings(
            vectors=vectors,
            model=request.model,
            tokens_in=-(-characters // 4),
            tokens_estimated=True,
        )

    async def generate_images(self, request: ImageRequest) -> GeneratedImages:
        """Gemini's image models through ``generate_content`` with image output, one call per
        image asked for (the API makes one per call); an input image goes with the prompt."""
        client = await self.prepare()
        from google.genai import types

        parts = [types.Part(text=request.prompt)]
        if request.input_image is not None:
            parts.append(
                types.Part.from_bytes(
                    data=request.input_image.data, mime_type=request.input_image.content_type
                )
            )
        config = types.GenerateContentConfig(response_modalities=["IMAGE", "TEXT"])
        images: list[ImagePart] = []
        tokens_in = tokens_out = 0
        for _ in range(request.count):
            try:
                response = await client.aio.models.generate_content(
                    model=request.model,
                    contents=[types.Content(role="user", parts=parts)],
                    config=config,
                )
            except Exception as exc:
                raise self._translate(exc, request) from None
            made = [
                ImagePart(part.inline_data.data, part.inline_data.mime_type or "image/png")
                for candidate in response.candidates or ()
                for part in (candidate.content.parts if candidate.content else None) or ()
                if part.inline_data is not None and part.inline_data.data
            ]
            if not made:
                raise MalformedResponse(
                    f"model {request.model!r} answered without an image", provider=self.name
                )
            images.extend(made)
            usage = _usage(response)
            tokens_in += usage.tokens_in
            tokens_out += usage.tokens_out
        return GeneratedImages(
            images=tuple(images), model=request.model, usage=TokenUsage(tokens_in, tokens_out)
        )

    def _translate(
        self,
        exc: Exception,
        request: ChatRequest | EmbedRequest | ImageRequest,
        *,
        mid_stream: bool = False,
    ) -> ProviderError:
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
            if mid_stream:
                return lost_connection(exc, provider=self.name, secrets=secrets)
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


_MADE_UP_ID = re.compile(r"call_\d+")
"""The ids ``_tool_calls`` makes up; the API never issued them, so they are not sent back."""


def _tool_calls(response: GenerateContentResponse) -> tuple[ToolCall, ...]:
    return _calls_of(_call_parts(response))


def _call_parts(response: GenerateContentResponse) -> list[Part]:
    """The ``function_call`` parts of the answer's first candidate."""
    candidates = response.candidates or []
    if not candidates or candidates[0].content is None:
        return []
    return [part for part in candidates[0].content.parts or [] if part.function_call is not None]


def _calls_of(calls: list[Part]) -> tuple[ToolCall, ...]:
    """The calls of ``function_call`` parts (a whole answer's, or a stream's in order)."""
    return tuple(
        ToolCall(
            id=part.function_call.id or f"call_{index}",
            name=str(part.function_call.name or ""),
            arguments=dict(part.function_call.args or {}),
            signature=part.thought_signature,
        )
        for index, part in enumerate(calls)
        if part.function_call is not None
    )


def _contents(turns: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The conversation as Gemini contents. The answers to one model turn's calls share one user
    turn, in the order of the calls, as the API expects."""
    from google.genai import types

    # (role, parts) per turn; Content copies its parts, so it is built once a turn is whole.
    turns_out: list[tuple[str, list[types.Part | PartDict]]] = []
    # Tool name by call id, for a tool turn that does not carry its tool's name.
    names: dict[str, str] = {}
    previous_was_tool = False
    for message in turns:
        if message.role == "tool":
            if not previous_was_tool:
                turns_out.append(("user", []))
            previous_was_tool = True
            call_id = message.tool_call_id or ""
            turns_out[-1][1].append(
                types.Part(
                    function_response=types.FunctionResponse(
                        id=None if _MADE_UP_ID.fullmatch(call_id) else call_id or None,
                        name=message.tool_name or names.get(call_id, ""),
                        response={"result": message.text},
                    )
                )
            )
            continue
        previous_was_tool = False
        parts: list[types.Part | PartDict] = []
        if message.text or not message.tool_calls:
            # Plain dicts where they will do: the SDK validates them faster than it copies
            # its own objects (about 0.4 ms less on each call).
            parts.append({"text": message.text})
        parts += [
            types.Part.from_bytes(data=image.data, mime_type=image.content_type)
            for image in message.images
        ]
        for call in message.tool_calls:
            names[call.id] = call.name
            parts.append(
                types.Part(
                    function_call=types.FunctionCall(
                        id=None if _MADE_UP_ID.fullmatch(call.id) else call.id,
                        name=call.name,
                        args=_args(call.arguments),
                    ),
                    thought_signature=call.signature,
                )
            )
        turns_out.append(("model" if message.role == "assistant" else "user", parts))
    return [{"role": role, "parts": parts} for role, parts in turns_out]


def _args(arguments: Any) -> dict[str, Any]:
    # ``args`` must be an object; arguments that were not JSON go back wrapped, not dropped.
    return arguments if isinstance(arguments, dict) else {"arguments": arguments}


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


_IDEMPOTENCY_KEY: ContextVar[str | None] = ContextVar(
    "flowloom_gemini_idempotency_key", default=None
)


@contextmanager
def _idempotency_key(key: str | None) -> Iterator[None]:
    """Inside, requests of this task carry ``Idempotency-Key: key``. A header set per call in
    the SDK's config costs about 0.6 ms a call (the SDK copies and checks its options); the
    client's request hook reads it from here for a few microseconds."""
    token = _IDEMPOTENCY_KEY.set(key)
    try:
        yield
    finally:
        _IDEMPOTENCY_KEY.reset(token)


async def _add_idempotency_key(request: Any) -> None:
    key = _IDEMPOTENCY_KEY.get()
    if key:
        request.headers["Idempotency-Key"] = key
