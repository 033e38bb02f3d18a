"""An ai.llm node inside a real engine run: the provider is called through its SDK against a
local server, and the usage row names the user, the API key, the run and the node execution,
priced exactly from the model table."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from enginekit import definition, edge, make_owner, node, save_workflow
from providers.fake_servers import API_KEY, FakeServer, running_server
from sqlalchemy import select

from flowloom.engine import Engine
from flowloom.providers import ProviderConfig, RetryPolicy, SettingsProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.tables import NodeExecution, Usage


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


def greeting_graph() -> dict[str, object]:
    return definition(
        [
            node("topic", "text.value", {"text": "durable workflows"}),
            node(
                "ask",
                "ai.llm",
                {
                    "provider": "openai",
                    "model": "gpt-test",
                    "system_prompt": "Answer in one line.",
                    "user_message": "Say something about {{ topic }}.",
                    "variables": ["topic"],
                },
            ),
        ],
        [edge("topic", "ask", "text", "topic")],
    )


async def test_an_llm_run_records_usage_for_the_key_run_and_node(
    db: Database, server: FakeServer
) -> None:
    server.reset()
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, greeting_graph())
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider="openai",
            model="gpt-test",
            input_price_per_mtok="0.15",
            output_price_per_mtok="0.60",
        )
        key, _ = await ApiKeyRepo(session, owner_id=owner).create(
            name="ci", scopes=["runs:execute"]
        )
    providers = SettingsProviderResolver(
        {"openai": ProviderConfig(API_KEY, server.openai_base_url)},
        retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_retry_after_s=5),
    )
    engine = Engine(db, providers=providers)
    try:
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, api_key_id=key.id)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs is not None
    assert result.outputs["ask"]["text"] == server.reply_text
    async with db.read() as session:
        (usage,) = (await session.scalars(select(Usage).where(Usage.run_id == result.run_id))).all()
        ask = await session.scalar(
            select(NodeExecution).where(
                NodeExecution.run_id == result.run_id, NodeExecution.node_id == "ask"
            )
        )
    assert ask is not None
    assert (usage.user_id, usage.api_key_id, usage.node_execution_id) == (owner, key.id, ask.id)
    assert (usage.tokens_in, usage.tokens_out) == (server.tokens_in, server.tokens_out)
    expected = (
        Decimal(server.tokens_in) * Decimal("0.15") + Decimal(server.tokens_out) * Decimal("0.60")
    ) / Decimal(1_000_000)
    assert usage.cost == expected.quantize(Decimal("0.000000001"))
    assert "Say something about durable workflows." in str(server.requests[-1].body)
