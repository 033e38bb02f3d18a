"""ai.llm through run_node against the real OpenAI, Gemini and Anthropic SDKs and a local
server speaking their protocols; usage recorded and priced exactly; secrets never shown."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from providers.fake_servers import API_KEY, UNKNOWN_MODEL, FakeServer, running_server

from flowloom.exceptions import NodeFailed, RetryNode, ValidationFailed
from flowloom.ids import new_id
from flowloom.integrations.credentials import DatabaseCredentials
from flowloom.integrations.usage import DatabaseUsageSink
from flowloom.nodes.base import RunContext
from flowloom.providers import (
    ProviderConfig,
    RetryPolicy,
    SettingsProviderResolver,
    UsageEvent,
)
from flowloom.storage.database import Database
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.credentials import CredentialRepo
from flowloom.storage.repos.usage import cost_of
from flowloom.storage.tables import Usage, User
from flowloom.storage.vault import Vault
from flowloom.testing import InMemoryBlobStore, make_context, run_node

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class PricedUsageSink:
    """A UsageSink in memory, priced from a table like the database sink."""

    def __init__(self, prices: dict[tuple[str, str], tuple[str, str]]) -> None:
        self.prices = prices
        self.events: list[UsageEvent] = []

    async def record(self, event: UsageEvent) -> Decimal:
        self.events.append(event)
        price_in, price_out = self.prices.get((event.provider, event.model), ("0", "0"))
        return cost_of(
            tokens_in=event.tokens_in,
            tokens_out=event.tokens_out,
            input_price_per_mtok=Decimal(price_in),
            output_price_per_mtok=Decimal(price_out),
        )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_script(server: FakeServer) -> None:
    server.reset()


def resolver(
    server: FakeServer, *, api_key: str | None = API_KEY, **kw: Any
) -> SettingsProviderResolver:
    urls = {
        "openai": server.openai_base_url,
        "gemini": server.base_url,
        "anthropic": server.base_url,
    }
    return SettingsProviderResolver(
        {name: ProviderConfig(api_key, url) for name, url in urls.items()},
        retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_retry_after_s=5),
        **kw,
    )


def context(server: FakeServer, **kw: Any) -> RunContext:
    fields = {"providers": resolver(server), **kw}
    return dataclasses.replace(make_context(node_id="ask"), **fields)


CONFIG = {
    "provider": "openai",
    "model": "mini",
    "system_prompt": "You are terse.",
    "user_message": "Summarise {{ topic }} for {{ reader.name }}.",
    "variables": ["topic", "reader"],
    "temperature": 0,
}


@pytest.mark.parametrize("provider", ["openai", "gemini", "anthropic"])
async def test_the_message_is_rendered_sent_and_its_usage_recorded_at_exact_cost(
    server: FakeServer, provider: str
) -> None:
    server.tokens_in, server.tokens_out = 1234, 567
    sink = PricedUsageSink({(provider, "mini"): ("0.15", "0.60")})
    ctx = context(server, usage=sink)

    result = await run_node(
        "ai.llm",
        {**CONFIG, "provider": provider},
        {"topic": "tides", "reader": {"name": "Ada"}},
        ctx=ctx,
    )

    assert result.outputs == {
        "text": "Hello from the fake model.",
        "usage": {
            "tokens_in": 1234,
            "tokens_out": 567,
            "tokens_total": 1801,
            "cost": "0.000525300",
        },
    }
    [seen] = server.requests
    assert "Summarise tides for Ada." in json.dumps(seen.body)
    assert "You are terse." in json.dumps(seen.body)
    assert seen.headers["idempotency-key"] == ctx.idempotency_key
    [event] = sink.events
    assert (event.provider, event.model, event.tokens_in, event.tokens_out) == (
        provider,
        "mini",
        1234,
        567,
    )
    assert (event.run_id, event.node_id, event.attempt) == (ctx.run_id, "ask", 1)
    assert event.metadata["finish_reason"] in {"stop", "STOP", "end_turn"}


async def test_structured_output_arrives_on_the_json_port(server: FakeServer) -> None:
    server.json_reply = {"title": "Tides", "tags": ["sea", "moon"]}
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "tags": {"type": "array"}},
        "required": ["title", "tags"],
    }

    result = await run_node(
        "ai.llm",
        {**CONFIG, "response_schema": schema},
        {"topic": "tides", "reader": {"name": "Ada"}},
        ctx=context(server),
    )

    assert result.outputs["json"] == {"title": "Tides", "tags": ["sea", "moon"]}
    assert result.outputs["usage"]["cost"] == "0"  # no usage sink: nothing recorded


STORY_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "tags": {"type": "array"}},
    "required": ["title", "tags"],
}


def _native_schema(provider: str, body: dict[str, Any]) -> Any:
    """The schema as the provider's own JSON mode carries it in the request."""
    if provider == "openai":
        assert body["response_format"]["type"] == "json_schema"
        return body["response_format"]["json_schema"]["schema"]
    if provider == "anthropic":
        assert body["output_config"]["format"]["type"] == "json_schema"
        return body["output_config"]["format"]["schema"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    return body["generationConfig"]["responseJsonSchema"]


@pytest.mark.parametrize("provider", ["openai", "gemini", "anthropic"])
async def test_structured_output_uses_each_providers_json_mode_and_refuses_a_mismatch(
    server: FakeServer, provider: str
) -> None:
    config = {
        "provider": provider,
        "model": "m",
        "user_message": "A story.",
        "response_schema": STORY_SCHEMA,
    }
    server.json_reply = {"title": "Tides", "tags": ["sea"]}
    pieces: list[str] = []
    sink = PricedUsageSink({(provider, "m"): ("1", "2")})
    ctx = context(
        server,
        usage=sink,
        progress=lambda kind, data: pieces.append(data["text"]) if kind == "delta" else None,
    )

    result = await run_node("ai.llm", config, ctx=ctx)

    assert result.outputs["json"] == {"title": "Tides", "tags": ["sea"]}
    assert json.loads(result.outputs["text"]) == result.outputs["json"]
    assert len(pieces) >= 2, "the JSON text streams as it comes"
    assert "".join(pieces) == result.outputs["text"]
    assert _native_schema(provider, server.requests[-1].body) == STORY_SCHEMA

    server.json_reply = {"title": "Tides", "tags": "sea"}
    with pytest.raises(NodeFailed) as caught:
        await run_node("ai.llm", config, ctx=ctx)
    assert len(sink.events) == 2, "the answer that did not match was paid for: recorded"
    message = str(caught.value)
    assert provider in message
    assert (
        "answered JSON that does not match the schema: at tags: 'sea' is not of type 'array'"
        in message
    )
    assert caught.value.retryable, "another attempt may answer well"

    server.json_reply = {"tags": []}
    with pytest.raises(NodeFailed, match="at \\(root\\): 'title' is a required property"):
        await run_node("ai.llm", config, ctx=context(server))


async def test_images_are_read_from_the_blob_store_and_sent(server: FakeServer) -> None:
    blobs = InMemoryBlobStore()
    sha = await blobs.put(PNG)
    image = {"sha256": sha, "content_type": "image/png", "width": 1, "height": 1, "size": len(PNG)}
    ctx = dataclasses.replace(context(server), blobs=blobs)

    result = await run_node(
        "ai.llm",
        {"provider": "anthropic", "model": "vision", "user_message": "What is this?"},
        {"images": [image]},
        ctx=ctx,
    )

    assert result.outputs["text"].endswith("I see 1 image(s).")
    assert server.requests[-1].images == [("image/png", PNG)]
    with pytest.raises(NodeFailed, match="image/bmp"):
        await run_node(
            "ai.llm",
            {"provider": "anthropic", "model": "vision", "user_message": "?"},
            {"images": [{**image, "content_type": "image/bmp"}]},
            ctx=ctx,
        )


async def test_clear_failures(server: FakeServer) -> None:
    no_keys = dataclasses.replace(context(server), providers=resolver(server, api_key=None))
    with pytest.raises(NodeFailed, match="FLOWLOOM_GEMINI_API_KEY"):
        await run_node("ai.llm", {"provider": "gemini", "model": "m"}, ctx=no_keys)

    with pytest.raises(NodeFailed, match=f"unknown model '{UNKNOWN_MODEL}'") as caught:
        await run_node("ai.llm", {"model": UNKNOWN_MODEL}, ctx=context(server))
    assert not caught.value.retryable

    server.fail_next("500", "500")
    with pytest.raises(NodeFailed, match="HTTP 500") as caught:
        await run_node("ai.llm", {"model": "m"}, ctx=context(server))
    assert caught.value.retryable

    server.fail_next("429:90")  # longer than the provider waits in place: park the node
    with pytest.raises(RetryNode) as retry:
        await run_node("ai.llm", {"model": "m"}, ctx=context(server))
    assert retry.value.after_s == 90

    with pytest.raises(NodeFailed, match="no LLM providers"):
        await run_node("ai.llm", {"model": "m"}, ctx=make_context())

    with pytest.raises(ValidationFailed, match="'topic', not declared"):
        await run_node("ai.llm", {"model": "m", "user_message": "{{ topic }}"}, ctx=context(server))
    with pytest.raises(ValidationFailed, match="not a valid JSON Schema"):
        await run_node(
            "ai.llm", {"model": "m", "response_schema": {"type": 7}}, ctx=context(server)
        )


async def test_the_node_is_registered_and_never_cached() -> None:
    from flowloom.nodes import default_registry

    schema = default_registry().schema("ai.llm")
    assert schema["category"] == "AI_AGENT"
    assert schema["deterministic"] is False
    assert set(schema["config_schema"]["properties"]) >= {
        "provider",
        "model",
        "system_prompt",
        "user_message",
        "variables",
        "temperature",
        "max_tokens",
        "response_schema",
        "credential",
    }


# ---- with the database: stored credentials and usage rows


async def make_user(db: Database) -> str:
    user_id = new_id("usr")
    async with db.write() as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com"))
    return user_id


async def test_usage_rows_are_written_and_priced_from_the_model_table(
    db: Database, server: FakeServer
) -> None:
    model = f"priced-{new_id('x')[-6:]}"
    async with db.write() as s:
        await AiModelRepo(s).upsert(
            provider="gemini",
            model=model,
            input_price_per_mtok="0.15",
            output_price_per_mtok="0.60",
        )
    owner = await make_user(db)
    server.tokens_in, server.tokens_out = 1234, 567
    ctx = context(server, usage=DatabaseUsageSink(db, owner_id=owner), owner_id=owner)

    result = await run_node("ai.llm", {"provider": "gemini", "model": model}, ctx=ctx)

    assert result.outputs["usage"]["cost"] == "0.000525300"
    from sqlalchemy import select

    async with db.read() as s:
        [row] = (await s.scalars(select(Usage).where(Usage.user_id == owner))).all()
    assert (row.provider, row.model, row.type) == ("gemini", model, "chat")
    assert (row.tokens_in, row.tokens_out, row.tokens_total) == (1234, 567, 1801)
    assert row.cost == Decimal("0.0005253")
    assert row.meta is not None
    assert row.meta["node_id"] == "ask"
    assert row.meta["attempt"] == 1


async def test_a_stored_credential_is_used_by_reference_and_never_shown(
    db: Database, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = Vault(b"v" * 32)
    owner = await make_user(db)
    stored_key = "sk-users-own-key-0123456789abcdef"
    async with db.write() as s:
        repo = CredentialRepo(s, owner_id=owner, vault=vault)
        await repo.create(name="my-openai", value=stored_key, provider="openai")
        await repo.create(name="stale", value="sk-stale-key-never-printed-000000")
        await repo.create(
            name="gem", value="AIzaSyGeminiKeyNeverPrinted0000000000", provider="gemini"
        )
    server.api_key = stored_key
    ctx = context(
        server,
        providers=resolver(server, api_key=None, credentials=DatabaseCredentials(db, vault)),
        owner_id=owner,
    )

    result = await run_node("ai.llm", {"model": "m", "credential": "my-openai"}, ctx=ctx)
    assert result.outputs["text"] == "Hello from the fake model."

    failures: list[str] = []
    for name, match in [
        ("stale", "Incorrect API key provided: \\*\\*\\*"),
        ("gem", "holds a key for gemini, not for openai"),
        ("missing", "no stored credential named 'missing'"),
    ]:
        with pytest.raises(NodeFailed, match=match) as caught:
            await run_node("ai.llm", {"model": "m", "credential": name}, ctx=ctx)
        failures.append(str(caught.value))
    other = dataclasses.replace(ctx, owner_id=await make_user(db))
    with pytest.raises(NodeFailed, match="no stored credential named 'my-openai'"):
        await run_node("ai.llm", {"model": "m", "credential": "my-openai"}, ctx=other)

    shown = [json.dumps(result.outputs), *failures, *(r.getMessage() for r in caplog.records)]
    for secret in (stored_key, "sk-stale-key-never-printed", "AIzaSyGeminiKeyNeverPrinted"):
        assert all(secret not in text for text in shown)
