"""Workflows from plain language over HTTP, against the real OpenAI SDK and a local server
speaking its protocol: a draft that needs one repair is saved once valid; one that stays
invalid saves nothing; every attempt is in the history; usage is recorded per call."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from apikit import make_settings, sign_up
from providers.fake_servers import API_KEY, FakeServer
from sqlalchemy import select

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.tables import Usage


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        openai_api_key=API_KEY,
        openai_base_url=fake.openai_base_url,
    )


def draft(*, broken: bool) -> dict[str, Any]:
    """start(name) -> greet(template over name); broken: the edge leaves a port that is not
    there and the template declares no variable."""
    return {
        "name": "Greeter",
        "description": "Greets whoever is named.",
        "nodes": [
            {
                "id": "start",
                "type": "trigger.manual",
                "position": {"x": 0, "y": 0},
                "data": {"config": {"fields": [{"name": "name", "type": "string"}]}},
            },
            {
                "id": "greet",
                "type": "text.template",
                "position": {"x": 300, "y": 0},
                "data": {
                    "config": {
                        "template": "Hello, {{ name }}!",
                        "variables": [] if broken else ["name"],
                    }
                },
            },
        ],
        "edges": [
            {
                "id": "e1",
                "source": "start",
                "sourceHandle": "who" if broken else "name",
                "target": "greet",
                "targetHandle": "name",
            }
        ],
    }


def reply(answer: dict[str, Any], tokens_in: int = 900, tokens_out: int = 150) -> dict[str, Any]:
    return {"text": json.dumps(answer), "tokens_in": tokens_in, "tokens_out": tokens_out}


async def test_a_draft_needing_one_repair_is_saved_once_valid(
    client: httpx.AsyncClient, fake: FakeServer, db: Database
) -> None:
    fake.reset()
    fake.script_replies(reply(draft(broken=True)), reply(draft(broken=False), 1100, 160))
    account = await sign_up(client)

    response = await client.post(
        "/api/v1/workflows/generate",
        json={"prompt": "Greet a person by name", "provider": "openai", "model": "gpt-test"},
        headers=account.bearer,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert [a["outcome"] for a in body["attempts"]] == ["invalid", "valid"]
    assert any(p["node_id"] == "start" for p in body["attempts"][0]["problems"])
    assert body["name"] == "Greeter"

    # The model saw the catalog, the schema, and then the problems of its first draft.
    first, second = fake.requests[-2].body, fake.requests[-1].body
    assert "text.template" in first["messages"][0]["content"]
    assert first["response_format"]["type"] == "json_schema"
    repair = second["messages"][-1]["content"]
    assert "not valid" in repair
    assert "start" in repair

    saved = await client.get(f"/api/v1/workflows/{body['workflow_id']}", headers=account.bearer)
    assert saved.status_code == 200
    assert saved.json()["definition"]["nodes"][1]["data"]["config"]["variables"] == ["name"]
    run = await client.post(
        f"/api/v1/workflows/{body['workflow_id']}/runs?wait=true",
        json={"inputs": {"name": "Ada"}},
        headers=account.bearer,
    )
    assert run.json()["outputs"]["greet"]["text"] == "Hello, Ada!"

    history = await client.get("/api/v1/generations", headers=account.bearer)
    items = history.json()["items"]
    assert [(i["attempt"], i["outcome"]) for i in items] == [(2, "valid"), (1, "invalid")]
    assert {i["workflow_id"] for i in items} == {body["workflow_id"]}
    assert items[0]["tokens_in"] == 1100

    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(Usage).where(Usage.user_id == account.user_id).order_by(Usage.id)
            )
        )
    assert [(u.type, u.tokens_in, u.tokens_out) for u in rows] == [
        ("generation", 900, 150),
        ("generation", 1100, 160),
    ]


async def test_a_draft_still_invalid_after_the_repairs_saves_nothing(
    client: httpx.AsyncClient, fake: FakeServer
) -> None:
    fake.reset()
    fake.script_replies(reply(draft(broken=True)), {"text": "not json at all"})
    account = await sign_up(client)

    response = await client.post(
        "/api/v1/workflows/generate",
        json={
            "prompt": "Greet a person by name",
            "provider": "openai",
            "model": "gpt-test",
            "max_repairs": 1,
        },
        headers=account.bearer,
    )

    assert response.status_code == 422, response.text
    problem = response.json()
    assert "nothing was saved" in problem["detail"]
    assert [a["outcome"] for a in problem["attempts"]] == ["invalid", "invalid"]
    assert "not a JSON object" in problem["problems"][0]["message"]
    listed = await client.get("/api/v1/workflows", headers=account.bearer)
    assert listed.json()["items"] == []
    history = await client.get("/api/v1/generations", headers=account.bearer)
    assert len(history.json()["items"]) == 2


async def test_provider_failures_and_bad_requests_are_clear(
    client: httpx.AsyncClient, fake: FakeServer
) -> None:
    fake.reset()
    account = await sign_up(client)
    unknown = await client.post(
        "/api/v1/workflows/generate",
        json={"prompt": "x", "provider": "openai", "model": "no-such-model"},
        headers=account.bearer,
    )
    assert unknown.status_code == 502
    assert unknown.json()["provider"] == "openai"
    assert API_KEY not in unknown.text

    no_key = await client.post(
        "/api/v1/workflows/generate",
        json={"prompt": "x", "provider": "anthropic", "model": "claude-test"},
        headers=account.bearer,
    )
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["field"] == "provider"

    bad = await client.post(
        "/api/v1/workflows/generate",
        json={"prompt": "", "provider": "skynet", "model": "x", "max_repairs": 9},
        headers=account.bearer,
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"prompt", "provider", "max_repairs"} <= fields
