"""ai.embed inside a real engine run, through the OpenAI and Gemini SDKs against the local
server that speaks their protocols: one vector per text in order, batched within the
provider's limit, one usage row of type ``embeddings`` per call, costed from the model table;
a 429 is waited out and retried; bad texts fail the node naming them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from enginekit import definition, edge, make_owner, node, save_workflow
from providers.fake_servers import API_KEY, EMBEDDING_DIMENSIONS, FakeServer, fake_vector
from providers.fake_servers import running_server as fake_provider
from sqlalchemy import select

from flowloom.engine import Engine
from flowloom.nodes import embed
from flowloom.providers import ProviderConfig, RetryPolicy, SettingsProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import NodeExecution, Usage


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with fake_provider() as running:
        yield running


def _engine(db: Database, server: FakeServer, *, attempts: int = 1) -> Engine:
    providers = SettingsProviderResolver(
        {
            "openai": ProviderConfig(API_KEY, server.openai_base_url),
            "gemini": ProviderConfig(API_KEY, server.base_url),
        },
        retry=RetryPolicy(attempts=attempts, base_delay_s=0.01),
    )
    return Engine(db, providers=providers)


def _graph(provider: str, model: str, texts: Any) -> dict[str, Any]:
    """A manual trigger whose ``texts`` field (by default ``texts``) feeds ai.embed."""
    field = {"name": "texts", "type": "string" if isinstance(texts, str) else "list"}
    return definition(
        [
            node("start", "trigger.manual", {"fields": [{**field, "default": texts}]}),
            node("embed", "ai.embed", {"provider": provider, "model": model}),
        ],
        [edge("start", "embed", "texts", "text")],
    )


async def _run(db: Database, server: FakeServer, graph: dict[str, Any]) -> Any:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    engine = _engine(db, server)
    try:
        return await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "text-embedding-3-small"), ("gemini", "gemini-embed-t")]
)
async def test_texts_become_vectors_in_batches_with_usage(
    db: Database, server: FakeServer, provider: str, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    monkeypatch.setitem(embed.BATCH, provider, 2)  # five texts: three calls
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider=provider, model=model, input_price_per_mtok="0.02", output_price_per_mtok="0"
        )
    texts = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota"]
    result = await _run(db, server, _graph(provider, model, texts))

    assert result.status is RunStatus.COMPLETED, result.error
    out = result.outputs["embed"]
    assert out["vectors"] == [fake_vector(text) for text in texts]
    assert out["dimensions"] == EMBEDDING_DIMENSIONS
    assert len([r for r in server.requests if r.provider == provider]) == 3
    async with db.read() as session:
        rows = list(await session.scalars(select(Usage).where(Usage.run_id == result.run_id)))
    assert [row.type for row in rows] == ["embeddings"] * 3
    tokens = sum(row.tokens_in for row in rows)
    assert out["usage"]["tokens_in"] == tokens > 0
    assert Decimal(out["usage"]["cost"]) == sum((row.cost for row in rows), Decimal(0)) > 0
    if provider == "openai":
        assert tokens == sum(len(text.split()) for text in texts)  # the provider's count
    else:
        assert all((row.meta or {})["tokens_estimated"] for row in rows)


async def test_openai_batches_keep_within_its_tokens_per_call(
    db: Database, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted in bytes, which bound tokens from above: 'é' is two bytes, '語' three."""
    server.reset()
    monkeypatch.setitem(embed.BATCH_TOKENS, "openai", 12)
    texts = ["abcd", "éééé", "abc", "語", "x" * 20, "last"]
    result = await _run(db, server, _graph("openai", "text-embedding-3-small", texts))

    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs["embed"]["vectors"] == [fake_vector(text) for text in texts]
    sent = [r.body["input"] for r in server.requests if r.provider == "openai"]
    # 4 + 8 bytes fill one call; 3 + 3; a text over the budget goes alone; then the rest.
    assert sent == [["abcd", "éééé"], ["abc", "語"], ["x" * 20], ["last"]]
    async with db.read() as session:
        rows = list(await session.scalars(select(Usage).where(Usage.run_id == result.run_id)))
    assert sorted((row.meta or {})["batch"] for row in rows) == [0, 1, 2, 3]
    assert sorted((row.meta or {})["texts"] for row in rows) == [1, 1, 2, 2]


def test_batches_keep_the_count_limit_and_gemini_has_no_byte_budget() -> None:
    texts = [f"{i:04d}" + "w" * 6996 for i in range(250)]  # 7,000 bytes each
    assert [len(b) for b in embed.batches(texts, "gemini")] == [100, 100, 50]
    assert [t for b in embed.batches(texts, "gemini") for t in b] == texts
    openai = list(embed.batches(texts, "openai"))
    assert all(sum(len(t.encode()) for t in b) <= embed.BATCH_TOKENS["openai"] for b in openai)
    assert [t for b in openai for t in b] == texts
    assert [len(b) for b in openai] == [42] * 5 + [40]  # 42 x 7,000 bytes fit in 300,000


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "text-embedding-3-small"), ("gemini", "gemini-embed-t")]
)
async def test_a_429_is_waited_out_and_the_batch_embedded(
    db: Database, server: FakeServer, provider: str, model: str
) -> None:
    server.reset()
    server.fail_next("429:0.3")
    texts = ["one", "two", "three"]
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, _graph(provider, model, texts))
    engine = _engine(db, server, attempts=2)
    try:
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs["embed"]["vectors"] == [fake_vector(text) for text in texts]
    first, second = [r for r in server.requests if r.provider == provider]
    assert 0.3 <= second.received_at - first.received_at < 2.0
    async with db.read() as session:
        rows = list(await session.scalars(select(Usage).where(Usage.run_id == result.run_id)))
    assert len(rows) == 1, "the refused call is not counted"


async def test_one_string_gives_one_vector(db: Database, server: FakeServer) -> None:
    server.reset()
    result = await _run(db, server, _graph("openai", "text-embedding-3-small", "just one"))
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs["embed"]["vectors"] == [fake_vector("just one")]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "text: the list is empty"),
        (["fine", "  "], "text[1]: empty text has no embedding"),
        (["fine", 3], "text: give a string or a list of strings"),
    ],
)
async def test_bad_texts_fail_the_node_naming_them(
    db: Database, server: FakeServer, texts: Any, message: str
) -> None:
    server.reset()
    result = await _run(db, server, _graph("openai", "text-embedding-3-small", texts))
    assert result.status is RunStatus.FAILED
    async with db.read() as session:
        row = await session.scalar(
            select(NodeExecution).where(
                NodeExecution.run_id == result.run_id, NodeExecution.node_id == "embed"
            )
        )
    assert row is not None
    assert row.error is not None
    assert message in row.error["message"]
    assert server.requests == []  # nothing was sent
