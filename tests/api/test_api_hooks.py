"""Webhooks over HTTP: the token starts a run with the body as inputs; ``respond: output``
answers with the outputs; a missing or wrong token is refused like an unknown address and
audited; a switched-off hook or an inactive workflow starts nothing."""

from __future__ import annotations

from typing import Any

import httpx
from apikit import Account
from hookkit import make_hook

APPROVAL: dict[str, Any] = {
    "schema_version": 1,
    "nodes": [
        {"id": "ask", "type": "human.approval", "data": {"config": {"prompt": "Ship?"}}},
    ],
    "edges": [],
}


async def runs_of(client: httpx.AsyncClient, account: Account, workflow_id: str) -> list[Any]:
    page = await client.get(f"/api/v1/workflows/{workflow_id}/runs", headers=account.bearer)
    assert page.status_code == 200
    items: list[Any] = page.json()["items"]
    return items


async def audit_actions(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    page = await client.get("/api/v1/audit-log", params={"limit": 50}, headers=account.bearer)
    return [e for e in page.json()["items"] if e["action"] == "webhook.refused"]


async def test_a_webhook_starts_a_run_of_its_owner_with_the_body_as_inputs(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id, hook = await make_hook(client)
    called = await client.post(
        hook["url"], json={"name": "Ada"}, headers={"X-Flowloom-Token": hook["token"]}
    )
    assert called.status_code == 202, called.text
    run_id = called.json()["run_id"]
    assert called.headers["location"] == f"/api/v1/runs/{run_id}"

    run = await client.get(f"/api/v1/runs/{run_id}", headers=account.bearer)
    assert run.status_code == 200  # the owner's run
    assert run.json()["trigger_kind"] == "webhook"
    assert run.json()["inputs"] == {"name": "Ada"}
    (listed,) = await runs_of(client, account, workflow_id)
    assert listed["id"] == run_id


async def test_respond_output_answers_with_the_finished_runs_outputs(
    client: httpx.AsyncClient,
) -> None:
    _, _, hook = await make_hook(client, respond="output")
    called = await client.post(hook["url"], params={"token": hook["token"]}, json={"name": "Grace"})
    assert called.status_code == 200, called.text
    body = called.json()
    assert body["status"] == "COMPLETED"
    assert body["outputs"] == {"greet": {"text": "hello Grace"}}
    assert body["run_id"].startswith("run_")


async def test_respond_output_answers_a_waiting_run_with_its_status(
    client: httpx.AsyncClient,
) -> None:
    _, _, hook = await make_hook(client, APPROVAL, respond="output", timeout_s=5)
    called = await client.post(hook["url"], headers={"X-Flowloom-Token": hook["token"]})
    assert called.status_code == 200, called.text
    assert called.json()["status"] == "WAITING"


async def test_wrong_or_missing_tokens_look_like_no_hook_and_are_audited(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id, hook = await make_hook(client)
    wrong = await client.post(
        hook["url"], json={"name": "x"}, headers={"X-Flowloom-Token": "flh_" + "A" * 43}
    )
    missing = await client.post(hook["url"], json={"name": "x"})
    wrong_query = await client.post(hook["url"], params={"token": hook["token"] + "x"})
    nowhere = await client.post(
        "/api/v1/hooks/no-such-hook", headers={"X-Flowloom-Token": hook["token"]}
    )
    for refused in (wrong, missing, wrong_query, nowhere):
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    # Nothing tells an existing hook from a missing one, but the path it names.
    assert {
        r.json()["detail"].replace(hook["url"].rsplit("/", 1)[1], "P")
        for r in (wrong, missing, wrong_query)
    } == {nowhere.json()["detail"].replace("no-such-hook", "P")}
    assert await runs_of(client, account, workflow_id) == []

    entries = await audit_actions(client, account)
    assert sorted(e["details"]["reason"] for e in entries) == [
        "no token",
        "wrong token",
        "wrong token",
    ]
    assert all(e["object_id"] == hook["id"] for e in entries)
    assert hook["token"] not in str(entries)


async def test_a_switched_off_hook_or_inactive_workflow_starts_nothing(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id, hook = await make_hook(client)
    token = {"X-Flowloom-Token": hook["token"]}
    await client.patch(
        f"/api/v1/triggers/{hook['id']}", json={"enabled": False}, headers=account.bearer
    )
    off = await client.post(hook["url"], json={}, headers=token)
    assert off.status_code == 403, off.text
    assert "switched off" in off.json()["detail"]

    await client.patch(
        f"/api/v1/triggers/{hook['id']}", json={"enabled": True}, headers=account.bearer
    )
    await client.patch(
        f"/api/v1/workflows/{workflow_id}", json={"active": False}, headers=account.bearer
    )
    inactive = await client.post(hook["url"], json={}, headers=token)
    assert inactive.status_code == 403
    assert await runs_of(client, account, workflow_id) == []
    reasons = [e["details"]["reason"] for e in await audit_actions(client, account)]
    assert sorted(reasons) == ["switched off", "workflow inactive"]

    await client.patch(
        f"/api/v1/workflows/{workflow_id}", json={"active": True}, headers=account.bearer
    )
    assert (await client.post(hook["url"], json={}, headers=token)).status_code == 202


async def test_a_replaced_token_stops_working_at_once(client: httpx.AsyncClient) -> None:
    account, _, hook = await make_hook(client)
    replaced = await client.post(f"/api/v1/triggers/{hook['id']}/token", headers=account.bearer)
    new_token = replaced.json()["token"]
    old = await client.post(hook["url"], headers={"X-Flowloom-Token": hook["token"]})
    new = await client.post(hook["url"], headers={"X-Flowloom-Token": new_token})
    assert (old.status_code, new.status_code) == (404, 202)


async def test_bodies_that_are_not_inputs_are_422_naming_the_body(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id, hook = await make_hook(client)
    token = {"X-Flowloom-Token": hook["token"]}
    not_json = await client.post(
        hook["url"], content=b"{nope", headers={**token, "content-type": "application/json"}
    )
    a_list = await client.post(hook["url"], json=[1, 2], headers=token)
    for response in (not_json, a_list):
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body"]
    wrong_type = await client.post(
        hook["url"], json={"name": 5}, headers=token, params={"unused": "1"}
    )
    # The run starts and fails in its trigger node, as a run started through the API would.
    assert wrong_type.status_code == 202
    assert len(await runs_of(client, account, workflow_id)) == 1


async def test_an_idempotency_key_answers_with_the_first_run(client: httpx.AsyncClient) -> None:
    account, workflow_id, hook = await make_hook(client)
    headers = {"X-Flowloom-Token": hook["token"], "Idempotency-Key": "delivery-42"}
    first = await client.post(hook["url"], json={"name": "a"}, headers=headers)
    second = await client.post(hook["url"], json={"name": "a"}, headers=headers)
    assert first.json()["run_id"] == second.json()["run_id"]
    assert len(await runs_of(client, account, workflow_id)) == 1


async def test_a_repeated_delivery_answers_the_finished_runs_output(
    client: httpx.AsyncClient,
) -> None:
    _, _, hook = await make_hook(client, respond="output")
    headers = {"X-Flowloom-Token": hook["token"], "Idempotency-Key": "delivery-7"}
    first = await client.post(hook["url"], json={"name": "Lin"}, headers=headers)
    again = await client.post(hook["url"], json={"name": "Lin"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.json()["outputs"] == {"greet": {"text": "hello Lin"}}


async def test_respond_output_answers_202_when_the_run_outlasts_the_timeout(
    client: httpx.AsyncClient,
) -> None:
    slow = {
        "schema_version": 1,
        "nodes": [{"id": "nap", "type": "flow.delay", "data": {"config": {"seconds": 1.5}}}],
        "edges": [],
    }
    account, _, hook = await make_hook(client, slow, respond="output", timeout_s=0.2)
    called = await client.post(hook["url"], headers={"X-Flowloom-Token": hook["token"]})
    assert called.status_code == 202, called.text
    assert called.json()["status"] == "RUNNING"
    run = await client.get(
        f"/api/v1/runs/{called.json()['run_id']}", params={}, headers=account.bearer
    )
    assert run.json()["status"] in ("PENDING", "RUNNING")
