"""Errors as RFC 9457 problem+json: 401, 404, 409, 413, 422 (naming the field); never a 500
for bad input. Secrets never leave the server. Health, metrics, settings and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from apikit import Account, create_workflow, example, sign_up
from fastapi import FastAPI
from sqlalchemy import select

from flowloom.api.state import AppState
from flowloom.storage.tables import ApiKey, User
from flowloom.storage.tables.accounts import UserSession

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    return body


async def test_401_404_409_422_are_problems(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/api/v1/workflows")
    account = await sign_up(client)
    missing = await client.get(
        "/api/v1/runs/run_01jzzzzzzzzzzzzzzzzzzzzzzz", headers=account.bearer
    )
    duplicate = await client.post(
        "/api/v1/auth/register", json={"email": account.email, "password": "x" * 12}
    )
    bad_body = await client.post(
        "/api/v1/workflows",
        json={"name": "", "definition": {"nodes": []}, "extra": 1},
        headers=account.bearer,
    )
    bad_query = await client.get("/api/v1/runs", params={"limit": 0}, headers=account.bearer)
    bad_json = await client.post(
        "/api/v1/workflows",
        content=b"{not json",
        headers={**account.bearer, "content-type": "application/json"},
    )
    bad_scope = await client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["root"]}, headers=account.bearer
    )

    assert_problem(anonymous, 401)
    assert_problem(missing, 404)
    assert_problem(duplicate, 409)
    body = assert_problem(bad_body, 422)
    assert body["errors"][0]["field"] == "name"  # type: ignore[index]
    assert assert_problem(bad_query, 422)["errors"][0]["field"] == "limit"  # type: ignore[index]
    assert_problem(bad_json, 422)
    assert assert_problem(bad_scope, 422)["errors"][0]["field"] == "scopes.0"  # type: ignore[index]


async def test_a_body_over_the_limit_is_413_declared_or_streamed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    account = await sign_up(client)
    limit = app.state.flowloom.settings.max_request_body_bytes
    big = (
        b'{"name": "big", "definition": {"nodes": [], "edges": [], "pad": "' + b"x" * limit + b'"}}'
    )

    declared = await client.post(
        "/api/v1/workflows",
        content=big,
        headers={**account.bearer, "content-type": "application/json"},
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await client.post(
        "/api/v1/workflows",
        content=chunks(),
        headers={**account.bearer, "content-type": "application/json"},
    )
    listed = await client.get("/api/v1/workflows", headers=account.bearer)

    assert assert_problem(declared, 413)["limit_bytes"] == limit
    assert_problem(streamed, 413)
    assert listed.json()["items"] == []


async def test_secrets_never_appear_in_any_answer(client: httpx.AsyncClient, app: FastAPI) -> None:
    account = await sign_up(client)
    key = await client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=account.bearer
    )
    workflow = await create_workflow(client, account, example("sort_numbers"))
    await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    answers = [
        await client.get(path, headers=account.bearer)
        for path in (
            "/api/v1/auth/me",
            "/api/v1/api-keys",
            f"/api/v1/api-keys/{key.json()['id']}",
            "/api/v1/audit-log",
            "/api/v1/runs",
            f"/api/v1/workflows/{workflow['id']}",
        )
    ]
    answers.append(
        await client.delete(f"/api/v1/api-keys/{key.json()['id']}", headers=account.bearer)
    )

    state = app.state.flowloom
    assert isinstance(state, AppState)
    async with state.db.read() as session:
        user = await session.scalar(select(User).where(User.id == account.user_id))
        digests = list(
            await session.scalars(
                select(ApiKey.secret_sha256).where(ApiKey.user_id == account.user_id)
            )
        )
        digests += list(
            await session.scalars(
                select(UserSession.token_sha256).where(UserSession.user_id == account.user_id)
            )
        )
    assert user is not None
    assert user.password_hash
    secrets = [user.password_hash, *digests, key.json()["key"], account.token]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in secrets:
            assert secret not in answer.text
        assert "password_hash" not in answer.text
        assert "sha256" not in answer.text


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("sort_numbers"))
    await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )

    health = await client.get("/healthz")
    metrics = await client.get("/metrics")
    openapi = await client.get("/api/v1/openapi.json")

    assert health.json() == {"status": "ok"}
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'flowloom_runs_finished_total{status="COMPLETED"}' in text
    # Per node type and per workflow: p95 from the buckets, failure rate from the labels.
    assert 'flowloom_node_duration_seconds_count{node_type="list.sort",outcome="succeeded"}' in text
    assert (
        f'flowloom_run_duration_seconds_count{{status="COMPLETED",workflow_id="{workflow["id"]}"}}'
        in text
    )
    assert 'flowloom_runs_active{status="RUNNING"}' in text
    assert 'flowloom_node_queue_depth{status="READY"}' in text
    assert openapi.json()["info"]["title"] == "flowloom"
    assert "/api/v1/workflows/{workflow_id}/runs" in openapi.json()["paths"]


async def test_settings_merge_and_the_audit_log_records_keys(client: httpx.AsyncClient) -> None:
    account: Account = await sign_up(client)
    auth = account.bearer

    empty = await client.get("/api/v1/users/me/settings", headers=auth)
    await client.patch(
        "/api/v1/users/me/settings", json={"theme": "dark", "canvas": {"grid": True}}, headers=auth
    )
    merged = await client.patch(
        "/api/v1/users/me/settings", json={"canvas": {"snap": 10}, "theme": None}, headers=auth
    )
    key = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["runs:execute"]}, headers=auth
    )
    await client.delete(f"/api/v1/api-keys/{key.json()['id']}", headers=auth)
    audit = await client.get("/api/v1/audit-log", headers=auth)

    assert empty.json() == {}
    assert merged.json() == {"canvas": {"grid": True, "snap": 10}}
    actions = [(e["action"], e["object_id"]) for e in audit.json()["items"]]
    assert actions[:2] == [
        ("api_key.revoke", key.json()["id"]),
        ("api_key.create", key.json()["id"]),
    ]
    # The two settings changes, recorded by the audit trail; then the sign-in.
    assert actions[2:4] == [("api.update_settings", None)] * 2
    assert ("auth.login", actions[4][1]) == actions[4]
