"""AI models as every account sees them: which providers answer and which models they offer."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from flowloom.api.schemas.common import ApiModel
from flowloom.providers.catalog import ModelKind


class ProviderAvailability(ApiModel):
    name: str
    configured: bool
    """Whether a call can go through: the instance has a key, or the caller a credential."""
    via: Literal["instance", "credential"] | None


class ModelPublic(ApiModel):
    provider: str
    model: str
    display_name: str
    kind: ModelKind
    input_price_per_mtok: Decimal
    """USD (``currency``) per million input tokens, a decimal string."""
    output_price_per_mtok: Decimal
    price_per_image: Decimal | None
    """For image models priced per image made."""
    currency: str
    context_window: int | None
    supports_images: bool


class ModelList(ApiModel):
    providers: list[ProviderAvailability]
    items: list[ModelPublic]
    """The enabled models of the table, by provider then name."""
