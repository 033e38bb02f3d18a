"""The instance's AI model table as administrators change it: entries, prices and flags.

Each change writes its ``admin.ai_model.*`` audit entry in the same transaction. A model's
provider and name are its identity: a PATCH merges the fields it sends over the stored entry
and never renames it. A disabled entry stays (usage history names it) and calls to the model are
refused from then on.
"""

from __future__ import annotations

from typing import Any, Final

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.services.actor import Actor
from flowloom.storage.database import Database
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import AiModel
from flowloom.storage.tables.base import utcnow

__all__ = ["NULLABLE_MODEL_FIELDS", "AiModelAdmin"]

NULLABLE_MODEL_FIELDS: Final = frozenset({"display_name", "context_window", "price_per_image"})
"""The fields a change may set to null; null for any other is refused."""

_FIELDS: Final = (
    "input_price_per_mtok",
    "output_price_per_mtok",
    "price_per_image",
    "display_name",
    "context_window",
    "supports_images",
    "supports_json",
    "enabled",
    "currency",
)
"""What a change may set (with ``provider`` and ``model``, what an entry holds)."""


class AiModelAdmin:
    """Creates, changes and disables entries, each with its audit entry, as ``actor``."""

    def __init__(self, db: Database, actor: Actor) -> None:
        self._db = db
        self._actor = actor

    async def create(self, *, provider: str, model: str, **values: Any) -> AiModel:
        """A new entry; Conflict if (provider, model) has one already (change that one)."""
        async with self._db.write() as session:
            models = AiModelRepo(session)
            try:
                await models.get(provider=provider, model=model)
            except NotFound:
                pass
            else:
                raise Conflict(f"the AI model {provider}/{model} already has an entry")
            row = await models.upsert(provider=provider, model=model, **_lowered(values))
            await self._actor.record(
                session, "admin.ai_model.create", "ai_model", row.id, _details(row)
            )
            return row

    async def update(self, *, model_id: str, changes: dict[str, Any]) -> AiModel:
        """Set the fields in ``changes`` over the stored ones. InputError naming the field for
        null where a value is required; new prices cost the usage recorded from now on."""
        for field, value in changes.items():
            if field not in _FIELDS:
                raise InputError(f"{field} cannot be changed", field=field)
            if value is None and field not in NULLABLE_MODEL_FIELDS:
                raise InputError(f"{field} cannot be null", field=field)
        async with self._db.write() as session:
            models = AiModelRepo(session)
            row = await models.get_by_id(model_id=model_id)
            stored = {field: getattr(row, field) for field in _FIELDS}
            row = await models.upsert(
                provider=row.provider, model=row.model, **_lowered({**stored, **changes})
            )
            await self._actor.record(
                session,
                "admin.ai_model.update",
                "ai_model",
                row.id,
                {"changed": sorted(changes), **_details(row)},
            )
            return row

    async def disable(self, *, model_id: str) -> AiModel:
        """Refuse calls to the model from now on; the entry and its prices stay."""
        async with self._db.write() as session:
            row = await AiModelRepo(session).get_by_id(model_id=model_id)
            row.enabled = False
            row.updated_at = utcnow()
            await session.flush()
            await self._actor.record(
                session, "admin.ai_model.disable", "ai_model", row.id, _details(row)
            )
            return row


def _lowered(values: dict[str, Any]) -> dict[str, Any]:
    """Currencies are stored lower-case (``usd``), whatever case they were sent in."""
    if "currency" in values:
        return {**values, "currency": str(values["currency"]).lower()}
    return values


def _details(row: AiModel) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "model": row.model,
        "input_price_per_mtok": str(row.input_price_per_mtok),
        "output_price_per_mtok": str(row.output_price_per_mtok),
        "enabled": row.enabled,
    }
