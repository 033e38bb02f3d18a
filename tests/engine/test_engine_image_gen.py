"""ai.image inside a real engine run, through the OpenAI and Gemini SDKs against the local
server that speaks their protocols: the images land in the blob store (so image nodes chain
after it: crop, then resize), an input image makes it an edit, a 429 is waited out and
retried, usage rows of type ``image`` are costed from the model table; options a model does
not take are refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from enginekit import definition, edge, make_owner, node, node_rows, save_workflow
from providers.fake_servers import API_KEY, FakeServer
from providers.fake_servers import running_server as fake_provider
from sqlalchemy import select

from flowloom.engine import Engine
from flowloom.nodes.image_gen import ImageGenerateConfig
from flowloom.providers import ProviderConfig, RetryPolicy, SettingsProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import Usage


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with fake_provider() as running:
        yield running


async def _run(
    db: Database, server: FakeServer, graph: dict[str, Any], *, attempts: int = 1
) -> Any:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    providers = SettingsProviderResolver(
        {
            "openai": ProviderConfig(API_KEY, server.openai_base_url),
            "gemini": ProviderConfig(API_KEY, server.base_url),
        },
        retry=RetryPolicy(attempts=attempts, base_delay_s=0.01),
    )
    engine = Engine(db, providers=providers)
    try:
        return await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()


@pytest.mark.parametrize(
    ("provider", "model", "extra"),
    [
        ("openai", "gpt-image-1", {"size": "1024x1536", "count": 2, "quality": "low"}),
        ("gemini", "gemini-image-t", {"count": 2}),
    ],
)
async def test_a_prompt_becomes_images_that_image_nodes_can_use(
    db: Database, server: FakeServer, provider: str, model: str, extra: dict[str, Any]
) -> None:
    server.reset()
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider=provider, model=model, input_price_per_mtok="5", output_price_per_mtok="40"
        )
    config = {"provider": provider, "model": model, "prompt": "a {{ animal }}", **extra}
    graph = definition(
        [
            node("animal", "text.value", {"text": "heron"}),
            node("draw", "ai.image", {**config, "variables": ["animal"]}),
            node("corner", "image.crop", {"x": 0, "y": 0, "width": 50, "height": 50}),
            node("small", "image.resize", {"width": 8, "height": 8}),
        ],
        [
            edge("animal", "draw", "text", "animal"),
            edge("draw", "corner", "image", "image"),
            edge("corner", "small", "image", "image"),
        ],
    )
    result = await _run(db, server, graph)

    assert result.status is RunStatus.COMPLETED, result.error
    drawn = (await node_rows(db, result.run_id))["draw"].outputs
    assert len(drawn["images"]) == 2
    assert drawn["image"] == drawn["images"][0]
    assert drawn["image"]["content_type"] == "image/png"
    corner = (await node_rows(db, result.run_id))["corner"].outputs["image"]
    assert (corner["width"], corner["height"]) == (
        drawn["image"]["width"] // 2,
        drawn["image"]["height"] // 2,
    )
    small = result.outputs["small"]["image"]
    assert max(small["width"], small["height"]) == 8  # resized, its aspect kept
    sent = [r for r in server.requests if r.provider == provider]
    assert "a heron" in str(sent[0].body)
    if provider == "openai":
        assert len(sent) == 1
        assert sent[0].body["size"] == "1024x1536"
        assert drawn["image"]["width"] == 1024 // 16
    else:
        assert len(sent) == 2  # one image per call
    async with db.read() as session:
        rows = list(await session.scalars(select(Usage).where(Usage.run_id == result.run_id)))
    assert [row.type for row in rows] == ["image"]
    assert rows[0].cost > 0
    assert Decimal(drawn["usage"]["cost"]) == rows[0].cost
    assert drawn["usage"]["images"] == 2


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-image-1"), ("gemini", "gem-img")])
async def test_a_429_is_waited_out_and_the_images_come(
    db: Database, server: FakeServer, provider: str, model: str
) -> None:
    server.reset()
    server.fail_next("429:0.3")
    graph = definition(
        [node("draw", "ai.image", {"provider": provider, "model": model, "prompt": "a fox"})], []
    )

    result = await _run(db, server, graph, attempts=2)

    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs["draw"]["image"]["content_type"] == "image/png"
    first, second = [r for r in server.requests if r.provider == provider]
    assert 0.3 <= second.received_at - first.received_at < 2.0


async def test_an_input_image_makes_it_an_edit(db: Database, server: FakeServer) -> None:
    server.reset()
    graph = definition(
        [
            node("seed", "ai.image", {"model": "gpt-image-1", "prompt": "a square"}),
            node("edit", "ai.image", {"model": "gpt-image-1", "prompt": "make it round"}),
        ],
        [edge("seed", "edit", "image", "image")],
    )
    result = await _run(db, server, graph)
    assert result.status is RunStatus.COMPLETED, result.error
    paths = [r.path for r in server.requests]
    assert paths == ["/v1/images/generations", "/v1/images/edits"]
    assert server.requests[1].body["image_bytes"] > 0


@pytest.mark.parametrize(
    ("model", "convert", "problem"),
    [
        ("dall-e-3", None, "image: dall-e-3 cannot edit an image (gpt-image-1 or dall-e-2 can)"),
        ("dall-e-2", "jpeg", "image: dall-e-2 edits image/png, not image/jpeg"),
    ],
)
async def test_an_edit_the_model_cannot_make_fails_before_it_is_sent(
    db: Database, server: FakeServer, model: str, convert: str | None, problem: str
) -> None:
    server.reset()
    nodes = [
        node("seed", "ai.image", {"model": "gpt-image-1", "prompt": "a square"}),
        node("edit", "ai.image", {"model": model, "prompt": "make it round"}),
    ]
    edges = [edge("seed", "edit", "image", "image")]
    if convert is not None:
        nodes.append(node("convert", "image.convert", {"format": convert}))
        edges = [
            edge("seed", "convert", "image", "image"),
            edge("convert", "edit", "image", "image"),
        ]
    result = await _run(db, server, definition(nodes, edges))

    assert result.status is RunStatus.FAILED
    edit = (await node_rows(db, result.run_id))["edit"]
    assert edit.error is not None
    assert problem in edit.error["message"]
    assert [r.path for r in server.requests] == ["/v1/images/generations"]  # the seed only


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"model": "dall-e-3", "count": 2}, "count: dall-e-3 makes at most 1"),
        ({"model": "gpt-image-1", "size": "640x480"}, "size: gpt-image-1 makes"),
        ({"model": "dall-e-3", "quality": "low"}, "quality: dall-e-3 takes hd, standard"),
        ({"provider": "gemini", "model": "g", "size": "1024x1024"}, "gemini takes neither"),
        ({"variables": ["image"]}, "clashes"),
    ],
)
def test_options_a_model_does_not_take_are_refused(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ImageGenerateConfig.model_validate(config)


async def test_a_model_priced_per_image_costs_its_images(db: Database, server: FakeServer) -> None:
    server.reset()
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider="openai",
            model="dall-e-3",
            input_price_per_mtok="0",
            output_price_per_mtok="0",
            price_per_image="0.04",
        )
    graph = definition(
        [node("draw", "ai.image", {"model": "dall-e-3", "prompt": "a lighthouse"})], []
    )
    result = await _run(db, server, graph)
    assert result.status is RunStatus.COMPLETED, result.error
    assert server.requests[-1].body["response_format"] == "b64_json"
    async with db.read() as session:
        (row,) = await session.scalars(select(Usage).where(Usage.run_id == result.run_id))
    assert row.type == "image"
    assert row.cost == Decimal("0.04")
