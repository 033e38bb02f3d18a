"""``GET /api/v1/models``: a new instance's model table starts from the catalog of common
models with their published prices (so usage is not costed at 0), every user reads it with
each model's kind, and which providers they can use; admins' edits are never overwritten."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from apikit import make_settings, sign_up
from sqlalchemy import select

from flowloom.api.routes.models import seed_model_table
from flowloom.providers.catalog import CATALOG
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.tables import AiModel


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("data"), openai_api_key="sk-instance-key")


async def test_a_new_instance_knows_the_common_models_and_their_prices(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client, "ann")
    listed = await client.get("/api/v1/models", headers=account.bearer)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    found = {(m["provider"], m["model"]): m for m in body["items"]}
    assert {(m.provider, m.model) for m in CATALOG} <= set(found)
    mini = found[("openai", "gpt-4o-mini")]
    assert mini["kind"] == "chat"
    assert (Decimal(mini["input_price_per_mtok"]), Decimal(mini["output_price_per_mtok"])) == (
        Decimal("0.15"),
        Decimal("0.60"),
    )
    assert found[("openai", "text-embedding-3-small")]["kind"] == "embedding"
    assert found[("gemini", "gemini-embedding-001")]["kind"] == "embedding"
    dalle = found[("openai", "dall-e-3")]
    assert (dalle["kind"], Decimal(dalle["price_per_image"])) == ("image", Decimal("0.04"))
    assert found[("openai", "gpt-4o")]["price_per_image"] is None
    assert all(Decimal(m["input_price_per_mtok"]) > 0 for m in body["items"] if m["kind"] == "chat")
    assert body["providers"] == [
        {"name": "anthropic", "configured": False, "via": None},
        {"name": "gemini", "configured": False, "via": None},
        {"name": "openai", "configured": True, "via": "instance"},
    ]


async def test_admins_edits_stay_and_disabled_models_are_not_offered(
    client: httpx.AsyncClient, db: Database
) -> None:
    account = await sign_up(client, "ben")
    async with db.write() as session:
        row = await session.scalar(
            select(AiModel).where(AiModel.provider == "openai", AiModel.model == "gpt-4o")
        )
        assert row is not None
        row.input_price_per_mtok = Decimal("9.99")
        other = await session.scalar(
            select(AiModel).where(AiModel.provider == "openai", AiModel.model == "o3")
        )
        assert other is not None
        other.enabled = False

    assert await seed_model_table(db) == 0  # a table with rows is the admins'
    listed = (await client.get("/api/v1/models", headers=account.bearer)).json()["items"]
    models = {m["model"]: m for m in listed if m["provider"] == "openai"}
    assert Decimal(models["gpt-4o"]["input_price_per_mtok"]) == Decimal("9.99")
    assert "o3" not in models


async def test_the_model_list_is_for_signed_in_users(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/models")).status_code == 401
