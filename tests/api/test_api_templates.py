"""The example workflows as templates for every account: listed with what they show; using one
saves a copy of it (and of the workflow it calls by name) that runs at once; an unknown
template is 404."""

from __future__ import annotations

import httpx
from apikit import sign_up


async def test_every_new_account_sees_the_templates(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)

    answer = await client.get("/api/v1/workflows/templates", headers=account.bearer)

    assert answer.status_code == 200, answer.text
    templates = {t["id"]: t for t in answer.json()["items"]}
    assert {"sort_numbers", "hello_template", "approval_gate"} <= set(templates)
    sort = templates["sort_numbers"]
    assert sort["name"] == "Sort numbers"
    assert sort["summary"]
    assert sort["node_types"] == ["text.value", "text.split", "list.sort"]
    assert templates["shout_each_word"]["calls"] == ["shout_item"]


async def test_a_template_becomes_the_callers_workflow_and_runs(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)

    used = await client.post("/api/v1/workflows/templates/sort_numbers", headers=account.bearer)
    again = await client.post("/api/v1/workflows/templates/sort_numbers", headers=account.bearer)
    workflow = used.json()["workflow"]
    run = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    listed = await client.get("/api/v1/workflows", headers=account.bearer)

    assert used.status_code == 201, used.text
    assert used.headers["location"] == f"/api/v1/workflows/{workflow['id']}"
    assert workflow["name"] == "Sort numbers"
    assert workflow["valid"] is True
    assert used.json()["also_saved"] == []
    assert again.json()["workflow"]["id"] != workflow["id"]
    assert run.json()["status"] == "COMPLETED"
    assert run.json()["outputs"]["sort"]["items"][0] == "0"
    assert len(listed.json()["items"]) == 2


async def test_a_template_that_calls_another_brings_it_along_once(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)

    first = await client.post("/api/v1/workflows/templates/shout_each_word", headers=account.bearer)
    second = await client.post(
        "/api/v1/workflows/templates/shout_each_word", headers=account.bearer
    )
    run = await client.post(
        f"/api/v1/workflows/{first.json()['workflow']['id']}/runs?wait=true",
        json={"inputs": {"text": "hi there"}},
        headers=account.bearer,
    )

    assert [w["name"] for w in first.json()["also_saved"]] == ["Shout item"]
    assert second.json()["also_saved"] == []
    assert run.json()["status"] == "COMPLETED", run.text


async def test_an_unknown_template_is_404(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)

    unknown = await client.post("/api/v1/workflows/templates/no_such", headers=account.bearer)

    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["kind"] == "template"
