"""Pinned outputs (test data): a node's pinned outputs stand in for running it when a run asks
to use them; what follows gets exactly the pinned values; the run says it used pinned data;
bad pins and a pinned run with nothing pinned are named."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from apikit import create_workflow, example, sign_up


def _pinned(pins: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """hello_template (start -> greet -> lines) with ``pins`` on its nodes."""
    definition = copy.deepcopy(example("hello_template"))
    for node in definition["nodes"]:
        if node["id"] in pins:
            node["data"]["pinned"] = pins[node["id"]]
    return definition


async def test_a_pinned_run_uses_the_pins_and_runs_what_follows(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    pins = {"start": {"name": "pinned world", "topics": ["a", "b"]}}
    workflow = await create_workflow(client, account, _pinned(pins))
    runs = f"/api/v1/workflows/{workflow['id']}/runs?wait=true"

    pinned = await client.post(runs, json={"use_pinned": True}, headers=account.bearer)
    assert pinned.status_code == 200, pinned.text
    body = pinned.json()
    assert body["status"] == "COMPLETED"
    assert body["used_pinned"] is True
    ran = {n["node_id"]: n for n in body["nodes"]}
    assert set(ran) == {"greet", "lines"}
    assert ran["greet"]["inputs"] == {"name": "pinned world", "topics": ["a", "b"]}
    assert ran["greet"]["outputs"]["text"].startswith("Hello, pinned world! Today's 2 topics")

    # Without use_pinned the pins change nothing; the history says which run used them.
    plain = await client.post(runs, json={}, headers=account.bearer)
    assert plain.json()["used_pinned"] is False
    assert {n["node_id"] for n in plain.json()["nodes"]} == {"start", "greet", "lines"}
    history = await client.get(f"/api/v1/workflows/{workflow['id']}/runs", headers=account.bearer)
    assert [r["used_pinned"] for r in history.json()["items"]] == [False, True]


async def test_up_to_a_node_stops_at_pinned_ancestors(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    pins = {"greet": {"text": "Pinned greeting"}}
    workflow = await create_workflow(client, account, _pinned(pins))
    run = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true",
        json={"use_pinned": True, "scope": "UPSTREAM", "target_node_id": "lines"},
        headers=account.bearer,
    )
    assert run.status_code == 200, run.text
    ran = {n["node_id"]: n for n in run.json()["nodes"]}
    # lines also reads start's topics: start runs, greet does not.
    assert set(ran) == {"start", "lines"}
    assert ran["lines"]["inputs"]["items"][0] == "Pinned greeting"


async def test_pinned_runs_refuse_what_cannot_be(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    plain = await create_workflow(client, account, example("hello_template"))
    refused = await client.post(
        f"/api/v1/workflows/{plain['id']}/runs", json={"use_pinned": True}, headers=account.bearer
    )
    assert refused.status_code == 422, refused.text
    assert "no node of this version has pinned outputs" in refused.text

    bad = await client.post(
        "/api/v1/workflows/validate",
        json={"definition": _pinned({"greet": {"text": "x", "nonsense": 1}})},
        headers=account.bearer,
    )
    assert bad.status_code == 200, bad.text
    problems = bad.json()["problems"]
    assert [(p["node_id"], p["message"]) for p in problems] == [
        ("greet", "pinned output 'nonsense' is not an output of this node")
    ]
