"""Text that cannot be stored (a lone surrogate; NUL) is refused at the boundary, on both
databases: 422 problem+json naming the field, nothing written, and the owner's history still
reads afterwards. Also JSON nested past the documented depth limit (422, nothing written)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from apikit import PASSWORD, Account, create_workflow, sign_up
from greeting import GREETING

from flowloom.api.input_guard import MAX_JSON_DEPTH

SURROGATE = "\ud800"
NUL = "\x00"
UNSTORABLE = pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])


def as_json(value: Any) -> bytes:
    """``value`` as JSON with ASCII escapes (``\\ud800``, ``\\u0000``), as a client sends it."""
    return json.dumps(value).encode()


async def send_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    value: Any,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return await client.request(
        method,
        url,
        content=value if isinstance(value, bytes) else as_json(value),
        headers={**(headers or {}), "content-type": "application/json"},
        **kwargs,
    )


def refused_field(response: httpx.Response) -> str:
    """The one field a 422 problem names."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    (error,) = body["errors"]
    assert error["message"]
    field: str = error["field"]
    return field


async def runs_of(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    page = await client.get("/api/v1/runs", params={"limit": 100}, headers=account.bearer)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def assert_history_reads(client: httpx.AsyncClient, account: Account) -> None:
    """GET /runs and GET /runs/{id} of every run still answer 200, and none is RUNNING."""
    runs = await runs_of(client, account)
    for run in runs:
        detail = await client.get(f"/api/v1/runs/{run['id']}", headers=account.bearer)
        assert detail.status_code == 200, detail.text
    assert all(run["status"] != "RUNNING" for run in runs), runs


async def make_hook(client: httpx.AsyncClient) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, GREETING, name="hooked")
    made = await client.post(
        f"/api/v1/workflows/{workflow['id']}/triggers",
        json={"kind": "webhook", "respond": "output"},
        headers=account.bearer,
    )
    assert made.status_code == 201, made.text
    good = await client.post(
        made.json()["url"], json={"name": "Ada"}, headers={"X-Flowloom-Token": made.json()["token"]}
    )
    assert good.status_code == 200, good.text
    return account, workflow, made.json()


@UNSTORABLE
async def test_a_webhook_body_with_unstorable_text_is_refused_and_starts_nothing(
    client: httpx.AsyncClient, bad: str
) -> None:
    account, _, hook = await make_hook(client)
    before = await runs_of(client, account)

    token = {"X-Flowloom-Token": hook["token"]}
    plain = await send_json(client, "POST", hook["url"], {"name": f"a{bad}b"}, token)
    nested = await send_json(client, "POST", hook["url"], {"name": {"deep": [1, bad]}}, token)
    as_key = await send_json(client, "POST", hook["url"], {f"n{bad}": "x"}, token)
    # Sent as text/plain: the webhook reads any body as JSON, so the guard does too.
    typed = await client.post(
        hook["url"],
        content=as_json({"name": bad}),
        headers={**token, "content-type": "text/plain"},
    )

    assert refused_field(plain) == "name"
    assert refused_field(nested) == "name.deep.1"
    assert refused_field(as_key).startswith("n")
    assert refused_field(typed) == "name"
    assert await runs_of(client, account) == before
    await assert_history_reads(client, account)


async def test_a_surrogate_sent_as_raw_bytes_is_refused_too(client: httpx.AsyncClient) -> None:
    # json.loads() decodes bytes with "surrogatepass": ED A0 80 arrives as "\ud800".
    account, _, hook = await make_hook(client)
    before = await runs_of(client, account)
    raw = await send_json(
        client,
        "POST",
        hook["url"],
        b'{"name": "\xed\xa0\x80"}',
        {"X-Flowloom-Token": hook["token"]},
    )
    assert refused_field(raw) == "name"
    assert await runs_of(client, account) == before
    await assert_history_reads(client, account)


@UNSTORABLE
async def test_workflow_bodies_with_unstorable_text_are_refused(
    client: httpx.AsyncClient, bad: str
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, GREETING)
    config_path = "definition.nodes.1.data.config.template"
    with_bad_config = json.loads(json.dumps(GREETING))
    with_bad_config["nodes"][1]["data"]["config"]["template"] = f"hello {bad}"

    created = [
        await send_json(client, "POST", "/api/v1/workflows", body, account.bearer)
        for body in (
            {"name": f"x{bad}", "definition": GREETING},
            {"name": "x", "description": bad, "definition": GREETING},
            {"name": "x", "definition": with_bad_config},
        )
    ]
    url = f"/api/v1/workflows/{workflow['id']}"
    updated = [
        await send_json(client, "PATCH", url, body, account.bearer)
        for body in ({"name": bad}, {"description": bad}, {"definition": with_bad_config})
    ]

    assert [refused_field(r) for r in created] == ["name", "description", config_path]
    assert [refused_field(r) for r in updated] == ["name", "description", config_path]
    listed = await client.get("/api/v1/workflows", headers=account.bearer)
    assert [w["id"] for w in listed.json()["items"]] == [workflow["id"]]
    current = await client.get(url, headers=account.bearer)
    assert current.status_code == 200
    assert current.json()["version"] == workflow["version"]
    assert current.json()["name"] == workflow["name"]


@UNSTORABLE
async def test_run_inputs_with_unstorable_text_start_no_run(
    client: httpx.AsyncClient, bad: str
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, GREETING)
    url = f"/api/v1/workflows/{workflow['id']}/runs"
    done = await client.post(
        f"{url}?wait=true", json={"inputs": {"name": "Ada"}}, headers=account.bearer
    )
    assert done.status_code == 200, done.text

    refused = await send_json(client, "POST", url, {"inputs": {"name": bad}}, account.bearer)
    debug = await send_json(
        client,
        "POST",
        f"/api/v1/workflows/{workflow['id']}/debug-sessions",
        {"inputs": {"name": bad}},
        account.bearer,
    )

    assert refused_field(refused) == "inputs.name"
    assert refused_field(debug) == "inputs.name"
    assert [r["id"] for r in await runs_of(client, account)] == [done.json()["id"]]
    await assert_history_reads(client, account)


@UNSTORABLE
async def test_a_credential_name_with_unstorable_text_is_refused(
    client: httpx.AsyncClient, bad: str
) -> None:
    account = await sign_up(client)
    refused = await send_json(
        client, "POST", "/api/v1/credentials", {"name": f"key{bad}", "value": "v"}, account.bearer
    )
    assert refused_field(refused) == "name"
    listed = await client.get("/api/v1/credentials", headers=account.bearer)
    assert listed.status_code == 200
    assert listed.json()["items"] == []


@UNSTORABLE
async def test_login_with_unstorable_text_is_422_never_503(
    client: httpx.AsyncClient, bad: str
) -> None:
    account = await sign_up(client)
    email = await send_json(
        client, "POST", "/api/v1/auth/login", {"email": f"{bad}{account.email}", "password": "x"}
    )
    password = await send_json(
        client, "POST", "/api/v1/auth/login", {"email": account.email, "password": f"p{bad}"}
    )
    register = await send_json(
        client,
        "POST",
        "/api/v1/auth/register",
        {"email": f"new{bad}@example.com", "password": "long enough password"},
    )
    assert refused_field(email) == "email"
    assert refused_field(password) == "password"
    assert refused_field(register) == "email"
    # The refusals were not failed sign-ins: the owner still signs in.
    signed_in = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text


async def test_a_form_body_with_nul_is_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b"email=a%00b%40example.com&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert refused_field(response) == "email"


async def test_query_and_path_parameters_with_nul_are_refused_naming_them(
    client: httpx.AsyncClient,
) -> None:
    account, _, _ = await make_hook(client)
    by_workflow = await client.get(
        "/api/v1/runs?workflow_id=wf_%00&limit=5", headers=account.bearer
    )
    search = await client.get("/api/v1/node-templates?search=a%00", headers=account.bearer)
    run_path = await client.get("/api/v1/runs/run_%00x", headers=account.bearer)
    workflow_path = await client.patch(
        "/api/v1/workflows/wf_%00x", json={"name": "y"}, headers=account.bearer
    )
    assert refused_field(by_workflow) == "workflow_id"
    assert refused_field(search) == "search"
    assert refused_field(run_path) == "run_id"
    assert refused_field(workflow_path) == "workflow_id"
    await assert_history_reads(client, account)


async def test_a_surrogate_cannot_arrive_through_a_query(client: httpx.AsyncClient) -> None:
    # Percent-decoding is UTF-8 with replacement: %ED%A0%80 is three U+FFFD, storable.
    account, _, _ = await make_hook(client)
    response = await client.get("/api/v1/node-templates?search=%ED%A0%80", headers=account.bearer)
    assert response.status_code == 200, response.text


async def test_a_stored_header_with_nul_is_refused(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, GREETING)
    # The user agent goes into the audit log with the deletion.
    deleted = await client.delete(
        f"/api/v1/workflows/{workflow['id']}",
        headers={**account.bearer, "user-agent": "agent\x00"},
    )
    assert refused_field(deleted) == "user-agent"
    still = await client.get(f"/api/v1/workflows/{workflow['id']}", headers=account.bearer)
    assert still.status_code == 200


def nested(depth: int) -> bytes:
    """A JSON text ``depth`` arrays deep."""
    return b"[" * depth + b'"x"' + b"]" * depth


async def test_json_nested_past_the_limit_is_refused_and_starts_nothing(
    client: httpx.AsyncClient,
) -> None:
    account, _, hook = await make_hook(client)
    before = await runs_of(client, account)
    token = {"X-Flowloom-Token": hook["token"]}

    # The whole body is one object deep: the value may nest MAX_JSON_DEPTH - 1 more.
    at_limit = b'{"name": ' + nested(MAX_JSON_DEPTH - 1) + b"}"
    over = b'{"name": ' + nested(MAX_JSON_DEPTH) + b"}"
    thousand = b'{"name": ' + nested(1000) + b"}"
    # Brackets inside strings are text, not nesting.
    in_text = as_json({"name": "[" * 5000})

    refused = [await send_json(client, "POST", hook["url"], b, token) for b in (over, thousand)]
    accepted = [await send_json(client, "POST", hook["url"], b, token) for b in (at_limit, in_text)]

    assert [refused_field(r) for r in refused] == ["body", "body"]
    assert [r.status_code for r in accepted] == [200, 200], [r.text for r in accepted]
    assert len(await runs_of(client, account)) == len(before) + 2
    await assert_history_reads(client, account)


async def test_a_workflow_nested_past_the_limit_is_422_not_500(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    definition = {**GREETING, "extra": "PLACEHOLDER"}
    body = as_json({"name": "deep", "definition": definition}).replace(
        b'"PLACEHOLDER"', nested(300)
    )
    response = await send_json(client, "POST", "/api/v1/workflows", body, account.bearer)
    assert refused_field(response) == "body"
    listed = await client.get("/api/v1/workflows", headers=account.bearer)
    assert listed.json()["items"] == []


async def test_a_body_streamed_in_pieces_is_checked_whole(client: httpx.AsyncClient) -> None:
    account, _, hook = await make_hook(client)
    before = await runs_of(client, account)
    body = as_json({"name": NUL})
    cut = body.index(b"\\u") + 3  # the escape split across two chunks

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:cut]
        yield body[cut:]

    streamed = await client.post(
        hook["url"],
        content=pieces(),
        headers={"X-Flowloom-Token": hook["token"], "content-type": "application/json"},
    )
    assert refused_field(streamed) == "name"
    assert await runs_of(client, account) == before
