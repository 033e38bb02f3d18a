"""ai.llm streams: through each provider's SDK (against the local server that speaks their
protocols) the answer's pieces are published as ``node.delta`` events while the node runs; the
stored result and the usage are those of the whole answer, counted once; the deltas are never
written; a stream cut mid-way (ended early or its connection dropped) fails the attempt without
recording usage, and a node with retries streams again and records the usage once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from enginekit import definition, make_owner, node, save_workflow
from providers.fake_servers import API_KEY, FakeServer, running_server
from sqlalchemy import func, select

from flowloom.engine import Engine
from flowloom.engine.events import DELTA, Event
from flowloom.providers import ProviderConfig, RetryPolicy, SettingsProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.tables import NodeExecution, Usage


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


def _engine(db: Database, server: FakeServer) -> Engine:
    config = ProviderConfig(API_KEY, server.openai_base_url)
    native = ProviderConfig(API_KEY, server.base_url)
    providers = SettingsProviderResolver(
        {"openai": config, "anthropic": native, "gemini": native},
        retry=RetryPolicy(attempts=1, base_delay_s=0.01, max_retry_after_s=5),
    )
    return Engine(db, providers=providers)


def _ask(provider: str, **data: object) -> dict[str, object]:
    config = {"provider": provider, "model": "model-test", "user_message": "Say hello."}
    return definition([node("ask", "ai.llm", config, **data)], [])


async def _run_following(
    engine: Engine, owner: str, workflow_id: str
) -> tuple[RunStatus, dict[str, object] | None, list[Event]]:
    """The run's status and outputs, and every event as published (before any subscriber
    queue merged deltas); a subscriber follows too, and must read the same text."""
    seen: list[Event] = []
    read: list[Event] = []
    bus = engine.bus
    publish = bus.publish

    def recording(events: list[Event]) -> None:
        seen.extend(events)
        publish(events)

    bus.publish = recording  # type: ignore[method-assign]
    subscription = bus.subscribe()

    async def follow() -> None:
        async for event in subscription:
            read.append(event)

    follower = asyncio.create_task(follow())
    try:
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
        await asyncio.sleep(0)  # the follower reads what is queued
    finally:
        subscription.close()
        await follower
        bus.publish = publish  # type: ignore[method-assign]
    sent = "".join(e.data["text"] for e in seen if e.type == DELTA)
    assert "".join(e.data["text"] for e in read if e.type == DELTA) == sent
    return result.status, result.outputs, seen


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_an_llm_node_publishes_its_answer_as_it_streams(
    db: Database, server: FakeServer, provider: str
) -> None:
    server.reset()
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, _ask(provider))
    engine = _engine(db, server)
    try:
        status, outputs, seen = await _run_following(engine, owner, workflow_id)
    finally:
        await engine.close()

    assert status is RunStatus.COMPLETED
    assert outputs is not None
    text = outputs["ask"]["text"]  # type: ignore[index]
    assert text == server.reply_text
    deltas = [e for e in seen if e.type == DELTA]
    assert len(deltas) >= 2, [e.type for e in seen]  # pieces, not one answer at the end
    assert "".join(e.data["text"] for e in deltas) == text
    offsets = [e.data["offset"] for e in deltas]
    assert offsets == [sum(len(e.data["text"]) for e in deltas[:i]) for i in range(len(deltas))]
    assert {e.data["attempt"] for e in deltas} == {1}
    kinds = [e.type for e in seen if e.node_id == "ask"]
    assert kinds.index("node.started") < kinds.index(DELTA) < kinds.index("node.succeeded")
    usage = outputs["ask"]["usage"]  # type: ignore[index]
    assert (usage["tokens_in"], usage["tokens_out"]) == (server.tokens_in, server.tokens_out)
    async with db.read() as session:
        rows = await session.scalar(select(func.count()).select_from(Usage))
        row = await session.scalar(select(NodeExecution).where(NodeExecution.node_id == "ask"))
    assert rows is not None
    assert row is not None
    assert row.outputs == outputs["ask"]  # the deltas are not stored: the output is


@pytest.mark.parametrize("how", ["end", "drop"])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_stream_cut_mid_answer_fails_the_attempt_and_records_no_usage(
    db: Database, server: FakeServer, provider: str, how: str
) -> None:
    server.reset()
    server.cut_streams = 1
    server.cut_how = how  # type: ignore[assignment]
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, _ask(provider))
    engine = _engine(db, server)
    try:
        status, _, seen = await _run_following(engine, owner, workflow_id)
        result_id = next(e.run_id for e in seen)
        again = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()

    assert status is RunStatus.FAILED
    assert any(e.type == DELTA for e in seen)  # part of it was shown before the cut
    async with db.read() as session:
        cut_usage = await session.scalar(
            select(func.count()).select_from(Usage).where(Usage.run_id == result_id)
        )
        whole_usage = await session.scalar(
            select(func.count()).select_from(Usage).where(Usage.run_id == again.run_id)
        )
        failed = await session.scalar(
            select(NodeExecution).where(NodeExecution.run_id == result_id)
        )
    assert cut_usage == 0
    assert failed is not None
    assert failed.error is not None
    expected = "cut short" if how == "end" else "the connection was lost mid-answer"
    assert expected in failed.error["message"]
    assert provider in failed.error["message"]
    assert again.status is RunStatus.COMPLETED
    assert whole_usage == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_node_with_retries_streams_again_after_a_cut_and_counts_usage_once(
    db: Database, server: FakeServer, provider: str
) -> None:
    server.reset()
    server.cut_streams = 1
    server.cut_how = "drop"
    owner = await make_owner(db)
    retry = {"max_attempts": 2, "backoff_s": 0.01, "jitter": 0}
    workflow_id = await save_workflow(db, owner, _ask(provider, retry=retry))
    engine = _engine(db, server)
    try:
        status, outputs, seen = await _run_following(engine, owner, workflow_id)
    finally:
        await engine.close()

    assert status is RunStatus.COMPLETED
    assert outputs is not None
    assert outputs["ask"]["text"] == server.reply_text  # type: ignore[index]
    deltas = [e.data for e in seen if e.type == DELTA]
    first = [d for d in deltas if d["attempt"] == 1]
    second = [d for d in deltas if d["attempt"] == 2]
    assert len(first) == 1, "the first attempt showed its first piece, then was cut"
    assert second[0]["offset"] == 0, "the second attempt starts its text over"
    assert "".join(d["text"] for d in second) == server.reply_text
    assert [e.type for e in seen if e.node_id == "ask"].count("node.retrying") == 1
    run_id = seen[0].run_id
    async with db.read() as session:
        rows = (await session.scalars(select(Usage).where(Usage.run_id == run_id))).all()
    assert len(rows) == 1, "the cut attempt recorded nothing; the whole one recorded once"
    assert (rows[0].tokens_in, rows[0].tokens_out) == (server.tokens_in, server.tokens_out)
    assert rows[0].meta is not None
    assert rows[0].meta["attempt"] == 2
