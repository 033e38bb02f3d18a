"""Credentials over HTTP: a secret goes in once and never comes out (not in answers, not in
the audit log); replaced, deleted; an ai.llm node uses it by name; integrations' own secrets
stay out of reach."""

from __future__ import annotations

import httpx
import pytest
from apikit import create_workflow, make_settings, sign_up
from providers.fake_servers import API_KEY, FakeServer

from flowloom.settings import Settings

SECRET = API_KEY  # the fake provider accepts this key and nothing else


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Settings:
    # No instance key: the only way to the provider is the user's stored credential.
    return make_settings(tmp_path_factory.mktemp("data"), openai_base_url=fake.openai_base_url)


def llm_definition(credential: str) -> dict[str, object]:
    return {
        "schema_version": 1,
        "nodes": [
            {
                "id": "ask",
                "type": "ai.llm",
                "data": {
                    "config": {
                        "provider": "openai",
                        "model": "gpt-test",
                        "user_message": "Say hello",
                        "credential": credential,
                    }
                },
            }
        ],
        "edges": [],
    }


async def test_a_secret_goes_in_once_is_used_by_name_and_never_comes_out(
    client: httpx.AsyncClient, fake: FakeServer
) -> None:
    fake.reset()
    account = await sign_up(client)
    created = await client.post(
        "/api/v1/credentials",
        json={"name": "openai-work", "value": SECRET, "kind": "api_key", "provider": "openai"},
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    assert SECRET not in created.text
    assert created.json()["last_used_at"] is None

    workflow = await create_workflow(client, account, llm_definition("openai-work"))
    run = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    assert run.json()["status"] == "COMPLETED", run.text
    assert fake.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    # The run record carries the usage of its model calls, per node and in total.
    (ask,) = run.json()["nodes"]
    expected = {"calls": 1, "tokens_in": 12, "tokens_out": 5, "tokens_total": 17}
    assert {k: ask["usage"][k] for k in expected} == expected
    assert {k: run.json()["usage"][k] for k in expected} == expected
    again = await client.get(f"/api/v1/runs/{run.json()['id']}", headers=account.bearer)
    assert again.json()["usage"]["tokens_total"] == 17

    listed = await client.get("/api/v1/credentials", headers=account.bearer)
    (item,) = listed.json()["items"]
    assert item["name"] == "openai-work"
    assert item["last_used_at"] is not None
    read = await client.get("/api/v1/credentials/openai-work", headers=account.bearer)
    audit = await client.get("/api/v1/audit-log", headers=account.bearer)
    for answer in (listed, read, audit, run):
        assert SECRET not in answer.text

    replaced = await client.put(
        "/api/v1/credentials/openai-work/value",
        json={"value": "sk-wrong-0000000000000000"},
        headers=account.bearer,
    )
    assert replaced.status_code == 200
    refused = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    assert refused.json()["status"] == "FAILED", "the new value is the one used"

    deleted = await client.delete("/api/v1/credentials/openai-work", headers=account.bearer)
    assert deleted.status_code == 204
    gone = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    assert "no stored credential named 'openai-work'" in gone.text


async def test_bad_credentials_are_refused_and_reserved_names_out_of_reach(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    empty = await client.post(
        "/api/v1/credentials", json={"name": "x", "value": ""}, headers=account.bearer
    )
    assert empty.status_code == 422
    kind = await client.post(
        "/api/v1/credentials",
        json={"name": "x", "value": "v", "kind": "password"},
        headers=account.bearer,
    )
    assert kind.status_code == 422
    reserved = await client.post(
        "/api/v1/credentials",
        json={"name": "integration:intg_123", "value": "v"},
        headers=account.bearer,
    )
    assert reserved.status_code == 422
    assert reserved.json()["errors"][0]["field"] == "name"
    first = await client.post(
        "/api/v1/credentials", json={"name": "dup", "value": "v"}, headers=account.bearer
    )
    assert first.status_code == 201
    again = await client.post(
        "/api/v1/credentials", json={"name": "dup", "value": "w"}, headers=account.bearer
    )
    assert again.status_code == 409
    hidden = await client.get("/api/v1/credentials/integration:intg_123", headers=account.bearer)
    assert hidden.status_code == 404
