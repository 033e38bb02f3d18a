"""Numbers the database cannot hold never reach it, on both databases: a path id out of range
is 404 (no such version can exist), a body or query integer out of range is 422 naming the
field, and a number that is not finite (NaN, Infinity, 1e400) is 422 naming the field. So is
the last day a date can name, whose end cannot be computed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apikit import Account, create_workflow, sign_up
from greeting import GREETING

TOO_BIG = [2**31, 10**22]


def refused_field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    field: str = error["field"]
    return field


async def setup(client: httpx.AsyncClient) -> tuple[Account, dict[str, Any]]:
    account = await sign_up(client)
    return account, await create_workflow(client, account, GREETING)


async def run_count(client: httpx.AsyncClient, account: Account) -> int:
    page = await client.get("/api/v1/runs", params={"limit": 100}, headers=account.bearer)
    assert page.status_code == 200, page.text
    return len(page.json()["items"])


@pytest.mark.parametrize("version", ["10000000000000000000000", str(2**31), "0", "-1"])
async def test_a_version_number_out_of_range_in_the_path_is_404(
    client: httpx.AsyncClient, version: str
) -> None:
    account, workflow = await setup(client)
    base = f"/api/v1/workflows/{workflow['id']}/versions/{version}"
    read = await client.get(base, headers=account.bearer)
    restored = await client.post(f"{base}/restore", headers=account.bearer)
    for response in (read, restored):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
    current = await client.get(f"/api/v1/workflows/{workflow['id']}", headers=account.bearer)
    assert current.json()["version"] == workflow["version"]


@pytest.mark.parametrize("number", TOO_BIG)
async def test_a_run_or_debug_session_version_out_of_range_is_422(
    client: httpx.AsyncClient, number: int
) -> None:
    account, workflow = await setup(client)
    runs = f"/api/v1/workflows/{workflow['id']}/runs"
    run = await client.post(runs, json={"version": number}, headers=account.bearer)
    debug = await client.post(
        f"/api/v1/workflows/{workflow['id']}/debug-sessions",
        json={"version": number},
        headers=account.bearer,
    )
    assert refused_field(run) == "version"
    assert refused_field(debug) == "version"
    assert await run_count(client, account) == 0


@pytest.mark.parametrize("number", TOO_BIG)
async def test_expected_versions_out_of_range_are_422(
    client: httpx.AsyncClient, number: int
) -> None:
    account, workflow = await setup(client)
    url = f"/api/v1/workflows/{workflow['id']}"
    update = await client.patch(
        url, json={"name": "renamed", "expected_version": number}, headers=account.bearer
    )
    moved = await client.patch(
        f"{url}/positions",
        json={"positions": {"in": {"x": 1, "y": 2}}, "expected_version": number},
        headers=account.bearer,
    )
    restore = await client.post(
        f"{url}/versions/1/restore",
        params={"expected_version": number},
        headers=account.bearer,
    )
    logs = await client.get(
        f"{url}/validation-logs", params={"version": number}, headers=account.bearer
    )
    assert refused_field(update) == "expected_version"
    assert refused_field(moved) == "expected_version"
    assert refused_field(restore) == "expected_version"
    assert refused_field(logs) == "version"
    current = await client.get(url, headers=account.bearer)
    assert (current.json()["name"], current.json()["version"]) == ("flow", workflow["version"])


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_numbers_that_are_not_finite_are_422_naming_the_field(
    client: httpx.AsyncClient, number: bytes
) -> None:
    account, workflow = await setup(client)
    headers = {**account.bearer, "content-type": "application/json"}
    created = await client.post(
        "/api/v1/workflows",
        content=b'{"name": "n", "definition": {"nodes": [], "edges": [], "x": %s}}' % number,
        headers=headers,
    )
    run = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs",
        content=b'{"inputs": {"name": [1, %s]}}' % number,
        headers=headers,
    )
    assert refused_field(created) == "definition.x"
    assert refused_field(run) == "inputs.name.1"
    listed = await client.get("/api/v1/workflows", headers=account.bearer)
    assert [w["id"] for w in listed.json()["items"]] == [workflow["id"]]
    assert await run_count(client, account) == 0


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
async def test_a_query_number_that_is_not_finite_is_422(
    client: httpx.AsyncClient, value: str
) -> None:
    account = await sign_up(client)
    made = await client.post(
        "/api/v1/node-templates",
        json={"name": "t", "node_type": "text.value", "config": {"text": "x"}},
        headers=account.bearer,
    )
    assert made.status_code == 201, made.text
    placed = await client.get(
        f"/api/v1/node-templates/{made.json()['id']}/node",
        params={"x": value, "y": 1},
        headers=account.bearer,
    )
    assert refused_field(placed) == "x"


async def test_the_last_representable_day_is_422_not_500(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    response = await client.get(
        "/api/v1/usage", params={"to": "9999-12-31"}, headers=account.bearer
    )
    assert refused_field(response) == "to"
