"""The instance-wide table of AI models and their prices per million tokens (not owner-scoped)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.tables import AiModel

__all__ = ["AiModelRepo", "exact_price"]

_AI_MODEL = PREFIXES["ai_models"]


def exact_price(value: Decimal | int | str, *, field: str) -> Decimal:
    """``value`` as an exact, non-negative Decimal; InputError otherwise.

    Floats are refused on purpose: ``0.15`` as a float is not 0.15, and prices must add up to
    the cent over millions of calls.
    """
    if isinstance(value, (float, bool)):
        raise InputError(
            f"{field} must be a Decimal, an int or a string, not {value!r}", field=field
        )
    try:
        price = Decimal(value)
    except ArithmeticError:
        raise InputError(f"{field} {value!r} is not a number", field=field) from None
    if not price.is_finite() or price < 0:
        raise InputError(f"{field} must be a finite amount >= 0", field=field)
    return price


class AiModelRepo:
    """Models and their prices, for every user. Methods flush, never commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        *,
        provider: str,
        model: str,
        input_price_per_mtok: Decimal | int | str,
        output_price_per_mtok: Decimal | int | str,
        display_name: str | None = None,
        context_window: int | None = None,
        supports_images: bool = False,
        supports_json: bool = True,
        enabled: bool = True,
        currency: str = "usd",
        price_per_image: Decimal | int | str | None = None,
        new: bool = False,
    ) -> AiModel:
        """Create the (provider, model) entry, or replace every given field of the existing one.

        Prices are per million tokens, exact (see ``exact_price``). A new price applies to usage
        recorded from now on; usage already recorded keeps the cost it was given.

        ``new``: the caller knows there is no such entry (it fills an empty table): the entry is
        neither looked for nor flushed alone, and goes in with the others at the next flush.
        """
        prices = {
            "input_price_per_mtok": exact_price(input_price_per_mtok, field="input_price_per_mtok"),
            "output_price_per_mtok": exact_price(
                output_price_per_mtok, field="output_price_per_mtok"
            ),
        }
        row = None if new else await self._find(provider, model)
        if row is None:
            row = AiModel(id=new_id(_AI_MODEL), provider=provider, model=model)
            self.session.add(row)
        row.input_price_per_mtok = prices["input_price_per_mtok"]
        row.output_price_per_mtok = prices["output_price_per_mtok"]
        row.display_name = display_name
        row.context_window = context_window
        row.supports_images = supports_images
        row.supports_json = supports_json
        row.enabled = enabled
        row.currency = currency
        row.price_per_image = (
            None
            if price_per_image is None
            else exact_price(price_per_image, field="price_per_image")
        )
        if new:
            return row
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what="AI model") from None
        return row

    async def get(self, *, provider: str, model: str) -> AiModel:
        """The entry for (provider, model), or NotFound."""
        row = await self._find(provider, model)
        if row is None:
            raise NotFound("AI model", f"{provider}/{model}")
        return row

    async def get_by_id(self, *, model_id: str) -> AiModel:
        """The entry with this id, or NotFound."""
        row = await self.session.get(AiModel, model_id)
        if row is None:
            raise NotFound("AI model", model_id)
        return row

    async def list(self, *, enabled_only: bool = False) -> list[AiModel]:
        """Every entry, ordered by provider then model."""
        query = select(AiModel).order_by(AiModel.provider, AiModel.model)
        if enabled_only:
            query = query.where(AiModel.enabled.is_(True))
        return list(await self.session.scalars(query))

    async def _find(self, provider: str, model: str) -> AiModel | None:
        return await self.session.scalar(
            select(AiModel).where(AiModel.provider == provider, AiModel.model == model)
        )
