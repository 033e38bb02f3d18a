"""Workflows over HTTP: create, read, update as versions, restore, delete, list, export and
import, validation (drafts flagged invalid, or 422 with strict), node types."""

from __future__ import annotations

import copy

import httpx
import pytest
from apikit import Account, create_workflow, example, sign_up

from flowloom.nodes.text import TextTemplate


async def _account(client: httpx.AsyncClient) -> Account:
    return await sign_up(client)


async def test_create_read_update_restore_and_delete(client: httpx.AsyncClient) -> None:
    account = await _account(client)
    auth = account.bearer
    hello = example("hello_template")
    created = await create_workflow(client, account, hello, name="Hello")
    assert created["version"] == 1
    assert created["valid"] is True
    assert created["problems"] == []
    workflow_id = created["id"]

    changed = copy.deepcopy(hello)
    changed["nodes"][1]["data"]["config"]["template"] = "Hi, {{ name }}! {{ topics | length }}:"
    updated = await client.patch(
        f"/api/v1/workflows/{workflow_id}",
        json={"definition": changed, "description": "greets", "expected_version": 1},
        headers=auth,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.json()["description"] == "greets"

    stale = await client.patch(
        f"/api/v1/workflows/{workflow_id}",
        json={"name": "late", "expected_version": 1},
        headers=auth,
    )
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"

    renamed = await client.patch(
        f"/api/v1/workflows/{workflow_id}", json={"name": "Hello again"}, headers=auth
    )
    assert renamed.json()["version"] == 2  # no definition change, no new version

    versions = await client.get(f"/api/v1/workflows/{workflow_id}/versions", headers=auth)
    assert [v["version"] for v in versions.json()["items"]] == [2, 1]
    first = await client.get(f"/api/v1/workflows/{workflow_id}/versions/1", headers=auth)
    assert first.json()["definition"] == hello

    restored = await client.post(
        f"/api/v1/workflows/{workflow_id}/versions/1/restore", headers=auth
    )
    assert restored.status_code == 200
    assert restored.json()["version"] == 3
    assert restored.json()["definition"] == hello

    logs = await client.get(f"/api/v1/workflows/{workflow_id}/validation-logs", headers=auth)
    assert [(log["version"], log["valid"]) for log in logs.json()["items"]] == [
        (3, True),
        (2, True),
        (1, True),
    ]

    deleted = await client.delete(f"/api/v1/workflows/{workflow_id}", headers=auth)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/workflows/{workflow_id}", headers=auth)
    assert gone.status_code == 404
    assert gone.json()["kind"] == "workflow"
    audit = await client.get("/api/v1/audit-log", headers=auth)
    assert audit.json()["items"][0]["action"] == "workflow.delete"
    assert audit.json()["items"][0]["object_id"] == workflow_id


async def test_an_invalid_definition_is_saved_as_a_flagged_draft(
    client: httpx.AsyncClient,
) -> None:
    account = await _account(client)
    broken = example("hello_template")
    broken["nodes"][1]["type"] = "text.tempalte"
    broken["edges"].append(
        {
            "id": "e9",
            "source": "ghost",
            "sourceHandle": "x",
            "target": "lines",
            "targetHandle": "items",
        }
    )

    draft = await create_workflow(client, account, broken, name="Draft")
    read = await client.get(f"/api/v1/workflows/{draft['id']}", headers=account.bearer)
    run = await client.post(
        f"/api/v1/workflows/{draft['id']}/runs", json={}, headers=account.bearer
    )

    assert draft["valid"] is False
    messages = " ".join(p["message"] for p in draft["problems"])
    assert "text.tempalte" in messages
    assert "text.template" in messages  # the suggestion
    assert any(p["node_id"] == "greet" for p in draft["problems"])
    assert read.json()["valid"] is False
    assert read.json()["problems"] == draft["problems"]
    assert run.status_code == 422
    assert run.json()["problems"]


async def test_strict_refuses_an_invalid_definition_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    account = await _account(client)
    broken = {"nodes": [{"id": "a", "type": "no.such"}], "edges": []}

    refused = await client.post(
        "/api/v1/workflows",
        params={"strict": "true"},
        json={"name": "strict", "definition": broken},
        headers=account.bearer,
    )
    listed = await client.get("/api/v1/workflows", headers=account.bearer)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["problems"][0]["node_id"] == "a"
    assert listed.json()["items"] == []


async def test_malformed_definitions_are_problems_not_errors(client: httpx.AsyncClient) -> None:
    account = await _account(client)
    not_a_graph = {"nodes": "many", "edges": [{"id": 3}]}

    checked = await client.post(
        "/api/v1/workflows/validate", json={"definition": not_a_graph}, headers=account.bearer
    )
    wrong_type = await client.post(
        "/api/v1/workflows", json={"name": "x", "definition": [1, 2]}, headers=account.bearer
    )

    assert checked.status_code == 200
    assert checked.json()["valid"] is False
    assert {p["field"] for p in checked.json()["problems"]} >= {"nodes"}
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["field"] == "definition"


async def test_too_many_nodes_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    account = await _account(client)
    nodes = [{"id": f"n{i}", "type": "text.value"} for i in range(501)]

    response = await client.post(
        "/api/v1/workflows",
        json={"name": "huge", "definition": {"nodes": nodes, "edges": []}},
        headers=account.bearer,
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "definition.nodes", "message": response.json()["detail"]}
    ]


async def test_list_searches_and_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    account = await _account(client)
    for i in range(5):
        await create_workflow(client, account, {"nodes": [], "edges": []}, name=f"alpha {i}")
    await create_workflow(client, account, {"nodes": [], "edges": []}, name="beta")

    first = await client.get(
        "/api/v1/workflows", params={"search": "ALPHA", "limit": 3}, headers=account.bearer
    )
    second = await client.get(
        "/api/v1/workflows",
        params={"search": "alpha", "limit": 3, "cursor": first.json()["next_cursor"]},
        headers=account.bearer,
    )
    bad_cursor = await client.get(
        "/api/v1/workflows", params={"cursor": "nonsense"}, headers=account.bearer
    )

    names = [w["name"] for w in first.json()["items"] + second.json()["items"]]
    assert names == [f"alpha {i}" for i in (4, 3, 2, 1, 0)]
    assert second.json()["next_cursor"] is None
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"


async def test_export_then_import_makes_an_equal_copy(client: httpx.AsyncClient) -> None:
    account = await _account(client)
    original = await create_workflow(client, account, example("sort_numbers"), name="Sorter")

    exported = await client.get(
        f"/api/v1/workflows/{original['id']}/export", headers=account.bearer
    )
    imported = await client.post(
        "/api/v1/workflows/import", json=exported.json(), headers=account.bearer
    )

    assert exported.status_code == 200
    assert exported.json()["format"] == "flowloom.workflow"
    assert "attachment" in exported.headers["content-disposition"]
    assert imported.status_code == 201
    assert imported.json()["id"] != original["id"]
    assert imported.json()["definition"] == original["definition"]
    assert imported.json()["name"] == "Sorter"


async def test_node_types_publish_their_schemas(client: httpx.AsyncClient) -> None:
    account = await _account(client)

    listed = await client.get("/api/v1/node-types", headers=account.bearer)
    one = await client.get("/api/v1/node-types/text.template", headers=account.bearer)
    missing = await client.get("/api/v1/node-types/no.such", headers=account.bearer)

    types = {t["type"]: t for t in listed.json()["items"]}
    assert "human.approval" in types
    assert types["text.template"]["config_schema"]["type"] == "object"
    assert one.json()["category"] == "ACTION"
    assert missing.status_code == 404


async def test_a_node_types_colour_that_is_no_hex_colour_is_its_categorys(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await _account(client)
    for written, shown in (("#0F766E", "#0F766E"), ("red", "#475569"), ("#12345", "#475569")):
        monkeypatch.setattr(TextTemplate, "color", written)
        one = await client.get("/api/v1/node-types/text.template", headers=account.bearer)
        assert one.json()["color"] == shown, written
