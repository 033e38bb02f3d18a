"""A webhook that started a run before: on PostgreSQL its next call reads the hook inside the
run's own start (one statement, ``WebhookGuard``) instead of alone first. Whatever changed
about the hook meanwhile answers exactly as it would have at the first call: a replaced
token, a hook switched off, an inactive or deleted workflow, a new ``respond`` setting, a body
that is not inputs."""

from __future__ import annotations

import httpx
import pytest
from apikit import Account
from hookkit import make_hook

from flowloom.api.routes import hooks
from flowloom.storage.database import Database


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the route looked up alone (``lookup_webhook``)."""
    paths: list[str] = []
    alone = hooks.lookup_webhook

    async def counted(db: Database, *, path: str) -> object:
        paths.append(path)
        return await alone(db, path=path)

    monkeypatch.setattr(hooks, "lookup_webhook", counted)
    return paths


async def _runs(client: httpx.AsyncClient, account: Account, workflow_id: str) -> int:
    page = await client.get(f"/api/v1/workflows/{workflow_id}/runs", headers=account.bearer)
    assert page.status_code == 200
    return len(page.json()["items"])


async def _reasons(client: httpx.AsyncClient, account: Account) -> list[str]:
    page = await client.get("/api/v1/audit-log", params={"limit": 50}, headers=account.bearer)
    return sorted(
        e["details"]["reason"] for e in page.json()["items"] if e["action"] == "webhook.refused"
    )


async def test_a_hook_seen_before_starts_its_run_without_a_lookup_of_its_own(
    client: httpx.AsyncClient, db: Database, lookups: list[str]
) -> None:
    account, workflow_id, hook = await make_hook(client, respond="output")
    token = {"X-Flowloom-Token": hook["token"]}
    path = hook["url"].rsplit("/", 1)[1]
    for name in ("Ada", "Bo", "Cy"):
        called = await client.post(hook["url"], json={"name": name}, headers=token)
        assert called.status_code == 200, called.text
        assert called.json()["outputs"] == {"greet": {"text": f"hello {name}"}}
    # SQLite reads the hook inline on the writer, every time; PostgreSQL once.
    assert lookups == [path] * (3 if db.is_sqlite else 1)
    run = await client.get(f"/api/v1/runs/{called.json()['run_id']}", headers=account.bearer)
    assert run.json()["trigger_kind"] == "webhook"
    assert await _runs(client, account, workflow_id) == 3


async def test_changes_to_a_hook_seen_before_answer_as_at_a_first_call(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id, hook = await make_hook(client)
    token = {"X-Flowloom-Token": hook["token"]}
    trigger = f"/api/v1/triggers/{hook['id']}"
    assert (await client.post(hook["url"], json={}, headers=token)).status_code == 202

    await client.patch(trigger, json={"enabled": False}, headers=account.bearer)
    off = await client.post(hook["url"], json={}, headers=token)
    assert off.status_code == 403, off.text
    assert "switched off" in off.json()["detail"]
    await client.patch(trigger, json={"enabled": True}, headers=account.bearer)
    assert (await client.post(hook["url"], json={}, headers=token)).status_code == 202

    await client.patch(
        f"/api/v1/workflows/{workflow_id}", json={"active": False}, headers=account.bearer
    )
    inactive = await client.post(hook["url"], json={}, headers=token)
    assert inactive.status_code == 403
    assert "inactive" in inactive.json()["detail"]
    await client.patch(
        f"/api/v1/workflows/{workflow_id}", json={"active": True}, headers=account.bearer
    )
    assert (await client.post(hook["url"], json={}, headers=token)).status_code == 202

    # A new setting is the one answered by.
    await client.patch(trigger, json={"respond": "output"}, headers=account.bearer)
    output = await client.post(hook["url"], json={"name": "Di"}, headers=token)
    assert output.status_code == 200, output.text
    assert output.json()["outputs"] == {"greet": {"text": "hello Di"}}

    replaced = await client.post(f"{trigger}/token", headers=account.bearer)
    old = await client.post(hook["url"], json={}, headers=token)
    assert old.status_code == 404
    new_token = {"X-Flowloom-Token": replaced.json()["token"]}
    assert (await client.post(hook["url"], json={}, headers=new_token)).status_code == 200

    assert await _runs(client, account, workflow_id) == 5
    assert await _reasons(client, account) == ["switched off", "workflow inactive", "wrong token"]

    deleted = await client.delete(f"/api/v1/workflows/{workflow_id}", headers=account.bearer)
    assert deleted.status_code == 204
    gone = await client.post(hook["url"], json={}, headers=new_token)
    assert gone.status_code == 404


async def test_a_bad_body_to_a_hook_seen_before_is_checked_after_the_hook(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id, hook = await make_hook(client)
    token = {"X-Flowloom-Token": hook["token"]}
    assert (await client.post(hook["url"], json={}, headers=token)).status_code == 202
    listed = await client.post(hook["url"], json=[1], headers=token)
    assert listed.status_code == 422
    assert [e["field"] for e in listed.json()["errors"]] == ["body"]
    await client.patch(
        f"/api/v1/triggers/{hook['id']}", json={"enabled": False}, headers=account.bearer
    )
    # The hook's refusal comes first, as at a first call.
    assert (await client.post(hook["url"], json=[1], headers=token)).status_code == 403
    assert await _runs(client, account, workflow_id) == 1
