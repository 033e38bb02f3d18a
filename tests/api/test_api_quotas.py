"""Plan limits over HTTP: a run over the limit answers 402 problem+json naming the limit, with
nothing written; a credit buys one more; an LLM call over the token limit is never sent to the
provider (a local OpenAI-compatible server counts what arrives)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apikit import Account, create_workflow, make_settings, sign_up
from providers.fake_servers import API_KEY, FakeServer, running_server
from sqlalchemy import func, select

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo, grant_credits
from flowloom.storage.tables import WorkflowRun

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, server: FakeServer) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("data")
    return make_settings(
        data_dir,
        openai_api_key=API_KEY,
        openai_base_url=server.openai_base_url,
        provider_max_attempts=1,
    )


def text_graph() -> dict[str, object]:
    return {
        "schema_version": 1,
        "nodes": [{"id": "hello", "type": "text.value", "data": {"config": {"text": "hi"}}}],
        "edges": [],
    }


def llm_graph(calls: int) -> dict[str, object]:
    """``calls`` ai.llm nodes in a chain: each asks after the previous one is recorded."""
    nodes = []
    edges = []
    for index in range(calls):
        config: dict[str, object] = {"provider": "openai", "model": "gpt-test"}
        if index == 0:
            config["user_message"] = "Say hi."
        else:
            config["user_message"] = "Go on: {{ before }}"
            config["variables"] = ["before"]
            edges.append(
                {
                    "id": f"e{index}",
                    "source": f"ask{index - 1}",
                    "sourceHandle": "text",
                    "target": f"ask{index}",
                    "targetHandle": "before",
                }
            )
        nodes.append({"id": f"ask{index}", "type": "ai.llm", "data": {"config": config}})
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


async def put_on_plan(db: Database, account: Account, **limits: int) -> None:
    async with db.write() as session:
        package = await PackageRepo(session).create(name=f"plan-{account.user_id}", **limits)
        await SubscriptionRepo(session).subscribe(user_id=account.user_id, package_id=package.id)


async def runs_of(db: Database, account: Account) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).where(WorkflowRun.user_id == account.user_id)
        )
    return int(count or 0)


async def start(client: httpx.AsyncClient, account: Account, workflow_id: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/workflows/{workflow_id}/runs?wait=true", json={}, headers=account.bearer
    )


async def test_a_run_over_the_limit_answers_402_naming_it(
    db: Database, client: httpx.AsyncClient
) -> None:
    user = await sign_up(client, "limited")
    workflow = await create_workflow(client, user, text_graph())
    await put_on_plan(db, user, max_runs_per_month=1)
    assert (await start(client, user, workflow["id"])).status_code == 200

    refused = await start(client, user, workflow["id"])

    assert refused.status_code == 402
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert (problem["limit"], problem["used"], problem["allowed"]) == ("max_runs_per_month", 1, 1)
    assert problem["package"] == f"plan-{user.user_id}"
    assert "resets_at" in problem
    assert await runs_of(db, user) == 1
    listed = await client.get("/api/v1/runs", headers=user.bearer)
    assert len(listed.json()["items"]) == 1

    async with db.write() as session:
        await grant_credits(session, user_id=user.user_id, amount=1)
    paid = await start(client, user, workflow["id"])
    assert paid.status_code == 200
    assert paid.json()["status"] == "COMPLETED"
    plan = (await client.get("/api/v1/billing/plan", headers=user.bearer)).json()
    assert plan["credits"] == 0
    summary = (await client.get("/api/v1/usage/summary", headers=user.bearer)).json()
    assert summary["runs"] == {"used": 2, "allowed": 1, "remaining": 0}
    assert (await start(client, user, workflow["id"])).status_code == 402


async def test_an_llm_call_over_the_token_limit_is_not_sent(
    db: Database, client: httpx.AsyncClient, server: FakeServer
) -> None:
    server.reset()
    user = await sign_up(client, "tokens")
    workflow = await create_workflow(client, user, llm_graph(3))
    # Each call uses 12 + 5 tokens; after the first, 17 >= 10 and the rest are refused.
    await put_on_plan(db, user, max_tokens_per_month=10)

    run = await start(client, user, workflow["id"])

    assert run.status_code == 200, run.text
    assert run.json()["status"] == "FAILED"
    assert len(server.requests) == 1
    nodes = {n["node_id"]: n for n in run.json()["nodes"]}
    assert nodes["ask0"]["status"] == "SUCCEEDED"
    assert nodes["ask1"]["status"] == "FAILED"
    assert "tokens per month" in nodes["ask1"]["error"]["message"]
    assert nodes["ask2"]["status"] != "SUCCEEDED"

    # The next run is refused at the door, before any node.
    refused = await start(client, user, workflow["id"])
    assert refused.status_code == 402
    assert (refused.json()["limit"], refused.json()["used"]) == ("max_tokens_per_month", 17)
    assert len(server.requests) == 1
    assert await runs_of(db, user) == 1
