"""What goes to a chat model and what comes back, the same for every provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ChatChunk",
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "ImagePart",
    "TokenUsage",
    "ToolCall",
    "ToolSpec",
]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image sent to a multimodal model, as bytes and their MIME type."""

    data: bytes
    content_type: str
    """``image/png``, ``image/jpeg``, ``image/webp`` or ``image/gif``."""

    def __repr__(self) -> str:
        # Megabytes of image in a log line or a traceback help nobody.
        return f"ImagePart(content_type={self.content_type!r}, size={len(self.data)})"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may ask to call (a function, in the providers' words)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    """A JSON Schema of the arguments object."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for tool ``name`` with ``arguments``; ``id`` pairs it with its answer."""

    id: str
    name: str
    arguments: Any
    """The parsed JSON arguments (an object when the model behaves), or the raw text when the
    model sent something that is not JSON."""
    signature: bytes | None = field(default=None, repr=False)
    """Opaque bytes the provider wants back with this call when the conversation goes on
    (Gemini's thought signature); None for most providers."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of the conversation: text, and for a user turn any images.

    An assistant turn that asked for tools carries ``tool_calls``; the answer to one call is a
    ``tool`` turn with its ``tool_call_id`` (and ``tool_name``) and the result as ``text``.
    """

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    images: tuple[ImagePart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """One call to a chat model."""

    model: str
    messages: tuple[ChatMessage, ...]
    system_prompt: str | None = None
    temperature: float | None = None
    """None leaves the provider's default."""
    max_tokens: int | None = None
    """Most tokens the answer may have; None leaves the provider's default (Anthropic needs
    one, so it gets ``DEFAULT_MAX_TOKENS`` there)."""
    response_schema: Mapping[str, Any] | None = None
    """A JSON Schema: the model answers JSON of this shape, parsed into ``ChatResponse.json``."""
    timeout_s: float | None = None
    """Per attempt: the whole answer for ``chat``; the wait for each chunk for ``stream``.
    None takes the provider's configured default (``FLOWLOOM_PROVIDER_TIMEOUT_S``)."""
    idempotency_key: str | None = None
    """Sent as an ``Idempotency-Key`` header, so a provider that deduplicates does so."""
    tools: tuple[ToolSpec, ...] = ()
    """Tools the model may call; its answer then may hold ``tool_calls`` instead of text."""


@dataclass(frozen=True, slots=True)
class TokenUsage:
    tokens_in: int = 0
    tokens_out: int = 0

    @property
    def tokens_total(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A whole answer."""

    text: str
    usage: TokenUsage
    model: str
    """The model that answered, as the provider names it (may be more precise than asked)."""
    provider: str
    finish_reason: str | None = None
    """Why the model stopped, in the provider's words (``stop``, ``end_turn``, ``STOP``, ...)."""
    json: Any = None
    """The parsed answer when the request had a ``response_schema``; None otherwise."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model asks to call (only when the request offered ``tools``)."""


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """A piece of a streamed answer. The last chunk carries the usage and the finish reason,
    and the tool calls the model asked for (each whole: the adapters put a call's streamed
    fragments together before handing it on)."""

    text: str = ""
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    model: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """Texts to embed with one model, in one call (the caller keeps within the provider's
    batch size)."""

    model: str
    texts: tuple[str, ...]
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One vector per text, in the order of the texts."""

    vectors: tuple[tuple[float, ...], ...]
    model: str
    tokens_in: int
    tokens_estimated: bool = False
    """True when the provider reports no token count and ``tokens_in`` was estimated from the
    text (about four characters per token)."""


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """Images to generate from a prompt, or to make from ``input_image`` (an edit)."""

    model: str
    prompt: str
    count: int = 1
    size: str | None = None
    """``WIDTHxHEIGHT`` as the provider names its sizes, or None for its default."""
    quality: str | None = None
    input_image: ImagePart | None = None
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class GeneratedImages:
    """The images made, in order, as encoded bytes with their content type."""

    images: tuple[ImagePart, ...]
    model: str
    usage: TokenUsage
