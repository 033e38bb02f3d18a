"""Node templates over HTTP: save a preset, list and search, use it as a node, rename, delete;
configs checked against their type; duplicate names refused."""

from __future__ import annotations

import httpx
from apikit import sign_up


async def test_a_preset_is_saved_listed_used_updated_and_deleted(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    created = await client.post(
        "/api/v1/node-templates",
        json={
            "name": "Shout",
            "node_type": "text.template",
            "config": {"template": "{{ x | upper }}!", "variables": ["x"]},
            "description": "Upper-cases x",
        },
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["id"].startswith("ntpl_")

    await client.post(
        "/api/v1/node-templates",
        json={"name": "Greeting", "node_type": "text.value", "config": {"text": "hi"}},
        headers=account.bearer,
    )
    listed = await client.get(
        "/api/v1/node-templates", params={"node_type": "text.template"}, headers=account.bearer
    )
    assert [t["name"] for t in listed.json()["items"]] == ["Shout"]
    searched = await client.get(
        "/api/v1/node-templates", params={"search": "greet"}, headers=account.bearer
    )
    assert [t["name"] for t in searched.json()["items"]] == ["Greeting"]

    node = await client.get(
        f"/api/v1/node-templates/{template['id']}/node",
        params={"x": 40, "y": 80},
        headers=account.bearer,
    )
    assert node.status_code == 200
    body = node.json()
    assert body["type"] == "text.template"
    assert body["data"]["config"] == {"template": "{{ x | upper }}!", "variables": ["x"]}
    assert body["position"] == {"x": 40, "y": 80}
    assert body["id"].startswith("template_")

    renamed = await client.patch(
        f"/api/v1/node-templates/{template['id']}",
        json={"name": "Shout louder"},
        headers=account.bearer,
    )
    assert renamed.json()["name"] == "Shout louder"
    assert renamed.json()["config"]["variables"] == ["x"]

    deleted = await client.delete(
        f"/api/v1/node-templates/{template['id']}", headers=account.bearer
    )
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/node-templates/{template['id']}", headers=account.bearer)
    assert gone.status_code == 404


async def test_bad_presets_are_refused_naming_the_problem(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    unknown = await client.post(
        "/api/v1/node-templates",
        json={"name": "x", "node_type": "text.tempalte", "config": {}},
        headers=account.bearer,
    )
    assert unknown.status_code == 422
    assert "did you mean 'text.template'" in unknown.text

    bad_config = await client.post(
        "/api/v1/node-templates",
        json={"name": "x", "node_type": "list.sort", "config": {"order": "sideways"}},
        headers=account.bearer,
    )
    assert bad_config.status_code == 422
    assert bad_config.json()["problems"][0]["field"] == "order"

    first = await client.post(
        "/api/v1/node-templates",
        json={"name": "Same", "node_type": "text.value", "config": {"text": "a"}},
        headers=account.bearer,
    )
    assert first.status_code == 201
    duplicate = await client.post(
        "/api/v1/node-templates",
        json={"name": "Same", "node_type": "text.value", "config": {"text": "b"}},
        headers=account.bearer,
    )
    assert duplicate.status_code == 409
    assert "Same" in duplicate.json()["detail"]

    bad_update = await client.patch(
        f"/api/v1/node-templates/{first.json()['id']}",
        json={"config": {"text": 5}},
        headers=account.bearer,
    )
    assert bad_update.status_code == 422
    still = await client.get(f"/api/v1/node-templates/{first.json()['id']}", headers=account.bearer)
    assert still.json()["config"] == {"text": "a"}, "a refused update changes nothing"
