"""LLM providers behind one protocol: OpenAI (and compatible servers), Gemini, Anthropic.

Callers hold a :class:`ChatProvider` (from a :class:`ProviderResolver`) and send it a
:class:`ChatRequest`; retries with backoff that honours Retry-After, the per-provider rate limit
and timeouts are applied uniformly by :class:`ProviderClient`, whichever SDK is underneath.
Importing this package imports no SDK: each is imported on the first call that needs it.
"""

from flowloom.providers.base import PROVIDER_NAMES, ChatBackend, ChatProvider, ProviderResolver
from flowloom.providers.client import ProviderClient
from flowloom.providers.errors import (
    MalformedResponse,
    ProviderError,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    UnknownModel,
    redact,
)
from flowloom.providers.ratelimit import RateLimiter
from flowloom.providers.resolver import (
    API_KEY_SETTINGS,
    CredentialSource,
    ProviderConfig,
    SettingsProviderResolver,
    make_backend,
)
from flowloom.providers.retry import RetryPolicy, parse_retry_after
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
    ToolSpec,
)
from flowloom.providers.usage import UsageEvent, UsageSink

__all__ = [
    "API_KEY_SETTINGS",
    "PROVIDER_NAMES",
    "ChatBackend",
    "ChatChunk",
    "ChatMessage",
    "ChatProvider",
    "ChatRequest",
    "ChatResponse",
    "CredentialSource",
    "EmbedRequest",
    "Embeddings",
    "GeneratedImages",
    "ImagePart",
    "ImageRequest",
    "MalformedResponse",
    "ProviderClient",
    "ProviderConfig",
    "ProviderError",
    "ProviderRefused",
    "ProviderResolver",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimiter",
    "RetryPolicy",
    "SettingsProviderResolver",
    "TokenUsage",
    "ToolCall",
    "ToolSpec",
    "UnknownModel",
    "UsageEvent",
    "UsageSink",
    "make_backend",
    "parse_retry_after",
    "redact",
]
