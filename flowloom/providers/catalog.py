"""The models a new instance knows, with their published prices: its first model table.

Usage is costed from the ``ai_models`` table; an instance that starts with it empty records
every call at cost 0 until an admin types the prices in. So a new instance is given this
catalog (``seed_model_table``, at start-up, only while the table is empty): the common chat,
image and embedding models of OpenAI, Anthropic and Gemini, at the list prices each provider
published (USD per million tokens, standard tier, or per image, as of ``PRICES_AS_OF``).
Admins edit the table from then on (``/api/v1/admin/ai-models``); the catalog never overwrites
it.

``kind`` (chat, embedding or image) lives here, not in the table: it is a fact about the model, and
``GET /api/v1/models`` reads it from here (a model the catalog does not know is a chat model).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

__all__ = ["CATALOG", "PRICES_AS_OF", "CatalogModel", "ModelKind", "kind_of"]

PRICES_AS_OF: Final = "2025-10"
"""When the catalog's prices were taken from the providers' price lists."""

ModelKind = Literal["chat", "embedding", "image"]


@dataclass(frozen=True, slots=True)
class CatalogModel:
    provider: str
    model: str
    display_name: str
    kind: ModelKind
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    context_window: int | None
    supports_images: bool = False
    price_per_image: Decimal | None = None
    """For image models priced per image (DALL-E 3: standard quality, 1024x1024)."""


def _chat(
    provider: str, model: str, name: str, prices: tuple[str, str], context: int, images: bool
) -> CatalogModel:
    return CatalogModel(
        provider, model, name, "chat", Decimal(prices[0]), Decimal(prices[1]), context, images
    )


def _image(
    provider: str, model: str, name: str, prices: tuple[str, str], per_image: str | None
) -> CatalogModel:
    return CatalogModel(
        provider,
        model,
        name,
        "image",
        Decimal(prices[0]),
        Decimal(prices[1]),
        None,
        True,
        None if per_image is None else Decimal(per_image),
    )


def _embedding(provider: str, model: str, name: str, price: str, context: int) -> CatalogModel:
    return CatalogModel(provider, model, name, "embedding", Decimal(price), Decimal(0), context)


CATALOG: Final[tuple[CatalogModel, ...]] = (
    _chat("openai", "gpt-4.1", "GPT-4.1", ("2.00", "8.00"), 1_047_576, True),
    _chat("openai", "gpt-4.1-mini", "GPT-4.1 mini", ("0.40", "1.60"), 1_047_576, True),
    _chat("openai", "gpt-4.1-nano", "GPT-4.1 nano", ("0.10", "0.40"), 1_047_576, True),
    _chat("openai", "gpt-4o", "GPT-4o", ("2.50", "10.00"), 128_000, True),
    _chat("openai", "gpt-4o-mini", "GPT-4o mini", ("0.15", "0.60"), 128_000, True),
    _chat("openai", "o3", "o3", ("2.00", "8.00"), 200_000, True),
    _chat("openai", "o4-mini", "o4-mini", ("1.10", "4.40"), 200_000, True),
    _embedding("openai", "text-embedding-3-small", "Embedding 3 small", "0.02", 8_191),
    _embedding("openai", "text-embedding-3-large", "Embedding 3 large", "0.13", 8_191),
    _chat("anthropic", "claude-opus-4-1", "Claude Opus 4.1", ("15.00", "75.00"), 200_000, True),
    _chat("anthropic", "claude-sonnet-4-5", "Claude Sonnet 4.5", ("3.00", "15.00"), 200_000, True),
    _chat("anthropic", "claude-haiku-4-5", "Claude Haiku 4.5", ("1.00", "5.00"), 200_000, True),
    _chat(
        "anthropic", "claude-3-5-haiku-latest", "Claude Haiku 3.5", ("0.80", "4.00"), 200_000, True
    ),
    _chat("gemini", "gemini-2.5-pro", "Gemini 2.5 Pro", ("1.25", "10.00"), 1_048_576, True),
    _chat("gemini", "gemini-2.5-flash", "Gemini 2.5 Flash", ("0.30", "2.50"), 1_048_576, True),
    _chat(
        "gemini",
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        ("0.10", "0.40"),
        1_048_576,
        True,
    ),
    _chat("gemini", "gemini-2.0-flash", "Gemini 2.0 Flash", ("0.10", "0.40"), 1_048_576, True),
    _embedding("gemini", "gemini-embedding-001", "Gemini Embedding", "0.15", 2_048),
    _image("openai", "gpt-image-1", "GPT Image 1", ("5.00", "40.00"), None),
    _image("openai", "dall-e-3", "DALL-E 3", ("0", "0"), "0.04"),
    _image("gemini", "gemini-2.5-flash-image", "Gemini 2.5 Flash Image", ("0.30", "30.00"), None),
)

_KINDS: Final = {(m.provider, m.model): m.kind for m in CATALOG}


def kind_of(provider: str, model: str) -> ModelKind:
    """What the model does, as far as the catalog knows (chat when it does not)."""
    return _KINDS.get((provider, model), "chat")
