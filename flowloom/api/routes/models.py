"""The models a caller can pick, with their kind and prices: ``GET /api/v1/models``.

Every signed-in user reads it (the editor's model fields pick from it); admins edit the table
behind it (``/api/v1/admin/ai-models``). A new instance's table starts from the catalog of
common models and their published prices (``seed_model_table``), so usage is costed from the
first call. Each provider says whether the caller can use it: through the instance's key, or
a credential of their own for that provider.
"""

from fastapi import APIRouter
from sqlalchemy import func, select

from flowloom.api.deps import CurrentUser, DatabaseDep, SettingsDep
from flowloom.api.schemas.models import ModelList, ModelPublic, ProviderAvailability
from flowloom.providers import PROVIDER_NAMES
from flowloom.providers.catalog import CATALOG, kind_of
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import AiModel, Credential

__all__ = ["router", "seed_model_table"]

router = APIRouter(tags=["models"])


@router.get("/models")
async def list_models(caller: CurrentUser, db: DatabaseDep, settings: SettingsDep) -> ModelList:
    """Every enabled model with its kind and prices, and which providers the caller can use."""
    async with db.read() as session:
        rows = await AiModelRepo(session).list(enabled_only=True)
        own = set(
            await session.scalars(
                select(Credential.provider)
                .where(Credential.user_id == caller.user_id, Credential.provider.is_not(None))
                .distinct()
            )
        )
    instance = _instance_providers(settings)
    providers = [
        ProviderAvailability(
            name=name,
            configured=name in instance or name in own,
            via="instance" if name in instance else "credential" if name in own else None,
        )
        for name in sorted(PROVIDER_NAMES)
    ]
    items = [
        ModelPublic(
            provider=row.provider,
            model=row.model,
            display_name=row.display_name or row.model,
            kind=kind_of(row.provider, row.model),
            input_price_per_mtok=row.input_price_per_mtok,
            output_price_per_mtok=row.output_price_per_mtok,
            price_per_image=row.price_per_image,
            currency=row.currency,
            context_window=row.context_window,
            supports_images=row.supports_images,
        )
        for row in rows
    ]
    return ModelList(providers=providers, items=items)


def _instance_providers(settings: Settings) -> set[str]:
    keys = {
        "openai": settings.openai_api_key,
        "gemini": settings.gemini_api_key,
        "anthropic": settings.anthropic_api_key,
    }
    return {name for name, key in keys.items() if key is not None and key.get_secret_value()}


async def seed_model_table(db: Database) -> int:
    """Fill an empty model table from the catalog (one batch of inserts at the commit); how
    many models were added (0 when the table has any row: from then on it is the admins')."""
    async with db.write() as session:
        if await session.scalar(select(func.count()).select_from(AiModel)):
            return 0
        models = AiModelRepo(session)
        for entry in CATALOG:
            await models.upsert(
                provider=entry.provider,
                model=entry.model,
                display_name=entry.display_name,
                input_price_per_mtok=entry.input_price_per_mtok,
                output_price_per_mtok=entry.output_price_per_mtok,
                context_window=entry.context_window,
                supports_images=entry.supports_images,
                supports_json=entry.kind == "chat",
                price_per_image=entry.price_per_image,
                new=True,
            )
    return len(CATALOG)
