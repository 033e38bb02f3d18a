"""A change of an agent or a thread is checked and written in ONE transaction, on SQLite and
PostgreSQL.

``PATCH /agents/{id}`` reads the agent (and its sealed secrets, to keep a ``********`` sent back),
checks the result against what the owner holds, and writes it. Were the check and the write two
transactions, a second PATCH could land between them and be overwritten by the first one's
stale merge: its new secret silently replaced by the one the first PATCH had read. Here the
first PATCH is held inside its check while the second is sent; the second must wait for it, and
whichever order they take, the secret sent last stays.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from apikit import count_transactions, sign_up

from flowloom.nodes.agent import HttpTool
from flowloom.services.agents import AgentService
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.agents import AgentRepo
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import AiModel
from flowloom.storage.vault import Vault

FIRST = "first-SECRET-1101"
SECOND = "second-SECRET-2202"


def http_tool(url: str, key: str) -> dict[str, Any]:
    return {"kind": "http", "name": "lookup", "url": url, "headers": {"X-Api-Key": key}}


async def stored_tools(db: Database, settings: Settings, owner_id: str, agent_id: str) -> Any:
    async with db.write() as session:
        return await AgentRepo(
            session, owner_id=owner_id, vault=Vault.from_settings(settings)
        ).tools_with_secrets(agent_id=agent_id)


async def test_a_patch_landing_during_another_is_not_overwritten_by_it(
    client: httpx.AsyncClient, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await sign_up(client, "racer")
    created = await client.post(
        "/api/v1/agents",
        json={
            "name": "Racer",
            "model": "gpt-race",
            "tools": [http_tool("https://api.example.test/a", FIRST)],
        },
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]

    # Hold the first PATCH inside its check (the model look-up), once.
    held, release = asyncio.Event(), asyncio.Event()
    look_up = AiModelRepo.get

    async def held_once(self: AiModelRepo, *, provider: str, model: str) -> AiModel:
        if not held.is_set():
            held.set()
            await release.wait()
        return await look_up(self, provider=provider, model=model)

    monkeypatch.setattr(AiModelRepo, "get", held_once)
    keeps = asyncio.create_task(
        client.patch(
            f"/api/v1/agents/{agent_id}",
            json={"tools": [http_tool("https://api.example.test/b", "********")]},
            headers=account.bearer,
        )
    )
    await asyncio.wait_for(held.wait(), 10)
    replaces = asyncio.create_task(
        client.patch(
            f"/api/v1/agents/{agent_id}",
            json={"tools": [http_tool("https://api.example.test/c", SECOND)]},
            headers=account.bearer,
        )
    )
    await asyncio.sleep(0.3)
    landed_meanwhile = replaces.done()
    release.set()
    kept, replaced = await asyncio.wait_for(asyncio.gather(keeps, replaces), 20)

    assert kept.status_code == 200, kept.text
    assert replaced.status_code == 200, replaced.text
    assert not landed_meanwhile, "the second PATCH was written while the first was checking"
    tools = await stored_tools(db, settings, account.user_id, agent_id)
    assert [(tool["url"], tool["headers"]) for tool in tools] == [
        ("https://api.example.test/c", {"X-Api-Key": SECOND})
    ]
    assert SECOND not in replaced.text


async def _nothing(service: AgentService) -> str:
    return ""


async def _an_agent(service: AgentService) -> str:
    agent = await service.create_agent(
        name="Counted", instructions="", context=None, provider="openai", model="gpt-race", tools=[]
    )
    return agent.id


async def _a_thread(service: AgentService) -> str:
    thread = await service.create_thread(
        name="Own model", agent_id=None, provider=None, model="gpt-race", instructions=None
    )
    return thread.id


async def _create_agent(service: AgentService, _: str) -> object:
    return await service.create_agent(
        name="New",
        instructions="",
        context=None,
        provider="openai",
        model="gpt-race",
        tools=[HttpTool(kind="http", name="lookup", url="https://api.example.test/d")],
    )


async def _update_agent(service: AgentService, agent_id: str) -> object:
    return await service.update_agent(
        agent_id=agent_id,
        model="gpt-race-2",
        tools=[HttpTool(kind="http", name="lookup", url="https://api.example.test/e")],
    )


async def _create_thread(service: AgentService, agent_id: str) -> object:
    return await service.create_thread(
        name="Talk",
        agent_id=agent_id or None,
        provider=None,
        model=None if agent_id else "gpt-race",
        instructions=None,
    )


async def _update_thread(service: AgentService, thread_id: str) -> object:
    return await service.update_thread(thread_id=thread_id, provider="openai", model="gpt-race-2")


Prepare = Callable[[AgentService], Awaitable[str]]
Change = Callable[[AgentService, str], Awaitable[object]]


@pytest.mark.parametrize(
    ("prepare", "change"),
    [
        (_nothing, _create_agent),
        (_an_agent, _update_agent),
        (_nothing, _create_thread),
        (_an_agent, _create_thread),
        (_a_thread, _update_thread),
    ],
    ids=[
        "create agent",
        "update agent",
        "create thread",
        "create thread with agent",
        "update thread",
    ],
)
async def test_each_change_is_one_write_transaction_and_no_other(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    prepare: Prepare,
    change: Change,
) -> None:
    account = await sign_up(client, "counter")
    service = AgentService(db, owner_id=account.user_id, vault=Vault.from_settings(settings))
    target = await prepare(service)
    opened = count_transactions(db, monkeypatch)

    await change(service, target)

    assert opened == ["write"]
