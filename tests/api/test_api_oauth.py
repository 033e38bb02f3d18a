"""OAuth 2 connections over HTTP, against a real local provider: register, authorize with PKCE
(the test follows the authorization URL itself, as a browser would), the callback, then
workflows whose http.request uses the connection, with refreshes on expiry and on a 401; bad,
reused and foreign states and a wrong verifier refused; stored credentials of each kind; and
scans of every answer, every stored row and every log line for the secrets."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from apikit import Account, create_workflow, make_settings, sign_up
from integrations.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeOAuthProvider, running_provider
from sqlalchemy import select

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.tables import Base

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

PASSWORD = "basic-pa55word-SECRET"
API_KEY = "x-api-key-9c1e77-SECRET"
BEARER = "bearer-cred-4d2f-SECRET"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOAuthProvider]:
    with running_provider() as fake:
        yield fake


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # The provider and the protected resource are on 127.0.0.1, over plain HTTP.
    return make_settings(tmp_path_factory.mktemp("data"), allow_private_http=True)


@pytest.fixture(autouse=True)
def fresh(provider: FakeOAuthProvider, caplog: pytest.LogCaptureFixture) -> None:
    provider.access_lifetime_s = 3600
    provider.refresh_delay_s = 0.0
    provider.deny = False
    # Everything flowloom logs, and what anything else logs at INFO: httpcore's DEBUG traces
    # print raw response headers (an echo of a secret among them) and are never on in serve.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flowloom")


class Answers:
    """Every answer the API gave in a test, for the secret scan."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def keep(self, response: httpx.Response) -> httpx.Response:
        self.texts.append(f"{response.status_code} {response.headers} {response.text}")
        return response


def register_body(provider: FakeOAuthProvider, name: str = "fake crm") -> dict[str, Any]:
    return {
        "name": name,
        "provider": "fakecrm",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_url": f"{provider.base_url}/authorize",
        "token_url": f"{provider.base_url}/token",
        "scopes": ["read", "write"],
        "extra_params": {"access_type": "offline"},
    }


async def register(
    client: httpx.AsyncClient, account: Account, provider: FakeOAuthProvider, answers: Answers
) -> dict[str, Any]:
    created = answers.keep(
        await client.post(
            "/api/v1/oauth/connections", json=register_body(provider), headers=account.bearer
        )
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def start(
    client: httpx.AsyncClient, account: Account, connection_id: str, answers: Answers
) -> dict[str, str]:
    """Authorize, follow the provider's URL as the browser would: the redirect's query."""
    started = answers.keep(
        await client.post(
            f"/api/v1/oauth/connections/{connection_id}/authorize", headers=account.bearer
        )
    )
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(started.json()["authorization_url"])
    assert consent.status_code == 302, consent.text
    location = consent.headers["location"]
    assert location.startswith("http://flowloom.test/api/v1/oauth/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def connect(
    client: httpx.AsyncClient, account: Account, provider: FakeOAuthProvider, answers: Answers
) -> str:
    connection = await register(client, account, provider, answers)
    back = await start(client, account, connection["id"], answers)
    done = answers.keep(
        await client.get("/api/v1/oauth/callback", params=back, headers=account.bearer)
    )
    assert done.status_code == 200, done.text
    assert done.json()["connected"] is True
    return str(connection["id"])


def http_node(node_id: str, url: str, auth: dict[str, str], **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "http.request",
        "data": {"config": {"url": url, "auth": auth, **config}},
    }


async def run(
    client: httpx.AsyncClient, account: Account, nodes: list[dict[str, Any]], answers: Answers
) -> dict[str, Any]:
    workflow = await create_workflow(
        client, account, {"schema_version": 1, "nodes": nodes, "edges": []}
    )
    ran = answers.keep(
        await client.post(
            f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
        )
    )
    assert ran.status_code in (200, 201), ran.text
    detail = answers.keep(
        await client.get(f"/api/v1/runs/{ran.json()['id']}", headers=account.bearer)
    )
    body: dict[str, Any] = detail.json()
    return body


def tokens(provider: FakeOAuthProvider, last: int | None = None) -> list[str]:
    """The access and refresh tokens the provider issued (the last ``last`` of them). Codes are
    left out: they travel in URLs by design, and are single use and bound to a verifier."""
    issued = [value for value in provider.issued if not value.startswith("code-")]
    return issued[-last:] if last else issued


def outputs_of(run_detail: dict[str, Any]) -> dict[str, Any]:
    return {node["node_id"]: node["outputs"] for node in run_detail["nodes"]}


async def scan(
    db: Database,
    answers: Answers,
    caplog: pytest.LogCaptureFixture,
    secrets: list[str],
) -> None:
    """No secret in any answer, in any stored row (run records, audit log, everything: the
    sealed columns are ciphertext), or in any log line."""
    assert secrets
    stored: list[str] = []
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                stored.append(repr(tuple(row)))
    logged = [f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    for secret in secrets:
        for where, texts in (("answer", answers.texts), ("row", stored), ("log", logged)):
            leaked = [text for text in texts if secret in text]
            assert not leaked, f"{secret!r} in {where}: {leaked[0][:300]}"


async def test_authorize_with_pkce_then_a_workflow_uses_the_connection(
    client: httpx.AsyncClient,
    db: Database,
    provider: FakeOAuthProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = Answers()
    account = await sign_up(client)
    connection = await register(client, account, provider, answers)
    assert connection["has_client_secret"] is True
    assert connection["connected"] is False
    assert connection["token"] is None
    assert connection["token_auth_method"] == "client_secret_basic"

    started = answers.keep(
        await client.post(
            f"/api/v1/oauth/connections/{connection['id']}/authorize", headers=account.bearer
        )
    )
    query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://flowloom.test/api/v1/oauth/callback"]
    assert query["scope"] == ["read write"]
    assert query["access_type"] == ["offline"]
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(started.json()["authorization_url"])
    back = parse_qs(urlsplit(consent.headers["location"]).query)
    assert back["state"] == query["state"]

    # A browser comes back with Accept: text/html and is sent on to the UI.
    done = answers.keep(
        await client.get(
            "/api/v1/oauth/callback",
            params={"code": back["code"][0], "state": back["state"][0]},
            headers={**account.bearer, "Accept": "text/html,application/xhtml+xml"},
        )
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/account?oauth=connected&connection={connection['id']}"
    exchange = provider.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert len(exchange["code_verifier"]) >= 43

    read = answers.keep(
        await client.get(f"/api/v1/oauth/connections/{connection['id']}", headers=account.bearer)
    )
    assert read.json()["connected"] is True
    assert read.json()["token"]["scopes"] == ["read", "write"]
    assert read.json()["token"]["expires_at"] is not None
    listed = answers.keep(await client.get("/api/v1/oauth/connections", headers=account.bearer))
    assert [item["id"] for item in listed.json()["items"]] == [connection["id"]]
    # Not an MCP server: the integrations API does not show it.
    mcp = answers.keep(await client.get("/api/v1/integrations", headers=account.bearer))
    assert mcp.json()["items"] == []
    assert (
        await client.get(f"/api/v1/integrations/{connection['id']}", headers=account.bearer)
    ).status_code == 404

    detail = await run(
        client,
        account,
        [http_node("call", f"{provider.base_url}/resource", {"oauth": connection["id"]})],
        answers,
    )
    assert detail["status"] == "COMPLETED", detail
    live = provider.live_access_tokens()
    assert provider.resource_calls[-1] in {f"Bearer {token}" for token in live}
    # The resource echoed the header; the output shows it redacted.
    assert outputs_of(detail)["call"]["body"] == {"ok": True, "seen_authorization": "********"}

    audit = answers.keep(await client.get("/api/v1/audit-log", headers=account.bearer))
    assert "oauth.connected" in audit.text
    await scan(db, answers, caplog, [CLIENT_SECRET, *tokens(provider, 2)])


async def test_an_expiring_token_is_refreshed_once_for_two_concurrent_nodes(
    client: httpx.AsyncClient,
    db: Database,
    provider: FakeOAuthProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = Answers()
    account = await sign_up(client)
    provider.access_lifetime_s = 20  # expires within a minute: refreshed before use
    connection = await connect(client, account, provider, answers)
    provider.refresh_delay_s = 0.3  # so the two nodes' refreshes would overlap
    before = provider.refreshes
    url = f"{provider.base_url}/resource"
    detail = await run(
        client,
        account,
        [
            http_node("left", url, {"oauth": connection}),
            http_node("right", url, {"oauth": connection}),
        ],
        answers,
    )
    assert detail["status"] == "COMPLETED", detail
    assert provider.refreshes == before + 1
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"
    left, right = provider.resource_calls[-2:]
    assert left == right
    read = answers.keep(
        await client.get(f"/api/v1/oauth/connections/{connection}", headers=account.bearer)
    )
    assert read.json()["connected"] is True
    await scan(db, answers, caplog, [CLIENT_SECRET, *tokens(provider)])


async def test_a_401_refreshes_and_retries_and_a_revoked_refresh_fails_clearly(
    client: httpx.AsyncClient,
    db: Database,
    provider: FakeOAuthProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = Answers()
    account = await sign_up(client)
    connection = await connect(client, account, provider, answers)
    provider.revoke_access()  # the stored token looks fine but the resource refuses it
    before = provider.refreshes
    calls = len(provider.resource_calls)
    detail = await run(
        client,
        account,
        [http_node("call", f"{provider.base_url}/resource", {"oauth": connection})],
        answers,
    )
    assert detail["status"] == "COMPLETED", detail
    assert provider.refreshes == before + 1
    first, second = provider.resource_calls[calls:]
    assert first != second

    provider.revoke_access()
    provider.revoke_refresh()
    failed = await run(
        client,
        account,
        [http_node("call", f"{provider.base_url}/resource", {"oauth": connection})],
        answers,
    )
    assert failed["status"] == "FAILED"
    error = str(failed["nodes"][0]["error"])
    assert connection in error
    assert "'fake crm'" in error
    assert "invalid_grant" in error
    assert "authorize the connection again" in error
    await scan(db, answers, caplog, [CLIENT_SECRET, *tokens(provider)])


async def test_bad_reused_foreign_states_and_a_wrong_verifier_are_refused(
    client: httpx.AsyncClient,
    new_client: ClientFactory,
    db: Database,
    provider: FakeOAuthProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = Answers()
    account = await sign_up(client)
    connection = await register(client, account, provider, answers)
    callback = "/api/v1/oauth/callback"

    unknown = answers.keep(
        await client.get(callback, params={"code": "c", "state": "nope"}, headers=account.bearer)
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "state"

    # Two authorizations in flight: the code of the first with the state of the second means
    # the second's verifier goes with the first's code, and the provider refuses it.
    first = await start(client, account, connection["id"], answers)
    second = await start(client, account, connection["id"], answers)
    crossed = answers.keep(
        await client.get(
            callback,
            params={"code": first["code"], "state": second["state"]},
            headers=account.bearer,
        )
    )
    assert crossed.status_code == 502, crossed.text
    assert "invalid_grant" in crossed.json()["detail"]
    assert connection["id"] in crossed.json()["detail"]
    assert first["code"] not in crossed.text

    # Somebody else cannot complete (or spend) this user's authorization.
    third = await start(client, account, connection["id"], answers)
    async with new_client() as other_client:
        other = await sign_up(other_client, "mallory")
        foreign = answers.keep(await other_client.get(callback, params=third, headers=other.bearer))
    assert foreign.status_code == 422
    done = answers.keep(await client.get(callback, params=third, headers=account.bearer))
    assert done.status_code == 200, done.text
    reused = answers.keep(await client.get(callback, params=third, headers=account.bearer))
    assert reused.status_code == 422

    # A user who declines at the provider: the state is spent, the connection unchanged.
    provider.deny = True
    declined = await start(client, account, connection["id"], answers)
    refused = answers.keep(await client.get(callback, params=declined, headers=account.bearer))
    assert refused.status_code == 400
    assert "access_denied" in refused.json()["detail"]
    assert (await client.get(callback, params=declined, headers=account.bearer)).status_code == 422

    provider.deny = False
    # The callback needs the user who started it signed in; the browser's session cookie
    # (SameSite=Lax) comes along on the provider's redirect, and this client keeps one.
    cookie_only = await start(client, account, connection["id"], answers)
    by_cookie = answers.keep(await client.get(callback, params=cookie_only))
    assert by_cookie.status_code == 200, by_cookie.text
    async with new_client() as nobody:
        anonymous = await nobody.get(callback, params=third)
    assert anonymous.status_code == 401
    await scan(db, answers, caplog, [CLIENT_SECRET, *tokens(provider, 2)])


async def test_registration_is_checked_and_deleting_forgets_the_tokens(
    client: httpx.AsyncClient, provider: FakeOAuthProvider
) -> None:
    answers = Answers()
    account = await sign_up(client)
    for change, field in (
        ({"token_url": "ftp://example.com/token"}, "token_url"),
        ({"authorization_url": "https://u:p@example.com/a"}, "authorization_url"),
        ({"extra_params": {"client_id": "other"}}, "extra_params"),
        ({"scopes": ["has space"]}, "scopes"),
        ({"client_secret": None, "token_auth_method": "client_secret_post"}, "client_secret"),
    ):
        bad = await client.post(
            "/api/v1/oauth/connections",
            json={**register_body(provider), **change},
            headers=account.bearer,
        )
        assert bad.status_code == 422, (change, bad.text)
        assert bad.json()["errors"][0]["field"] == field
    connection = await connect(client, account, provider, answers)
    taken = await client.post(
        "/api/v1/oauth/connections", json=register_body(provider), headers=account.bearer
    )
    assert taken.status_code == 409

    revocations_before = len(provider.revocations)
    deleted = await client.delete(f"/api/v1/oauth/connections/{connection}", headers=account.bearer)
    assert deleted.status_code == 200
    # No revocation endpoint registered: forgotten here, and the answer says the provider was
    # not asked.
    assert deleted.json() == {
        "id": connection,
        "revoked": False,
        "revocation": "not_supported",
        "detail": None,
    }
    assert len(provider.revocations) == revocations_before
    gone = await client.get(f"/api/v1/oauth/connections/{connection}", headers=account.bearer)
    assert gone.status_code == 404
    failed = await run(
        client,
        account,
        [http_node("call", f"{provider.base_url}/resource", {"oauth": connection})],
        answers,
    )
    assert failed["status"] == "FAILED"
    assert f"no OAuth connection {connection!r}" in str(failed["nodes"][0]["error"])
    again = await client.post(
        "/api/v1/oauth/connections", json=register_body(provider), headers=account.bearer
    )
    assert again.status_code == 201, "a deleted connection frees its name"


async def test_stored_credentials_of_each_kind_authenticate_http_requests(
    client: httpx.AsyncClient,
    db: Database,
    provider: FakeOAuthProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = Answers()
    account = await sign_up(client)
    for name, kind, value in (
        ("bearer", "bearer_token", BEARER),
        ("basic", "basic_auth", f"ada:{PASSWORD}"),
        ("key", "header", API_KEY),
    ):
        created = answers.keep(
            await client.post(
                "/api/v1/credentials",
                json={"name": name, "value": value, "kind": kind},
                headers=account.bearer,
            )
        )
        assert created.status_code == 201, created.text
    url = f"{provider.base_url}/echo"
    seen = len(provider.echoed)
    detail = await run(
        client,
        account,
        [
            http_node("bearer", url, {"credential": "bearer"}),
            http_node("basic", url, {"credential": "basic"}),
            http_node("key", url, {"credential": "key", "header": "X-Api-Key"}),
        ],
        answers,
    )
    assert detail["status"] == "COMPLETED", detail
    received = provider.echoed[seen:]
    assert {h.get("authorization") for h in received} >= {
        f"Bearer {BEARER}",
        "Basic " + base64.b64encode(f"ada:{PASSWORD}".encode()).decode(),
    }
    assert API_KEY in {h.get("x-api-key") for h in received}
    nodes = {node["node_id"]: node for node in detail["nodes"]}
    for name in ("bearer", "basic", "key"):
        assert nodes[name]["status"] == "SUCCEEDED"
    assert nodes["key"]["outputs"]["body"]["headers"]["x-api-key"] == "********"
    assert nodes["bearer"]["outputs"]["body"]["headers"]["authorization"] == "********"
    missing = await run(client, account, [http_node("m", url, {"credential": "nope"})], answers)
    assert "no stored credential named 'nope'" in str(missing["nodes"][0]["error"])
    encoded = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
    await scan(db, answers, caplog, [BEARER, PASSWORD, API_KEY, encoded])


async def test_disconnecting_revokes_the_tokens_at_the_provider(
    client: httpx.AsyncClient, provider: FakeOAuthProvider
) -> None:
    answers = Answers()
    account = await sign_up(client)
    body = {**register_body(provider), "revocation_url": f"{provider.base_url}/revoke"}
    created = await client.post("/api/v1/oauth/connections", json=body, headers=account.bearer)
    assert created.status_code == 201, created.text
    assert created.json()["revocation_url"] == body["revocation_url"]
    connection = created.json()["id"]
    back = await start(client, account, connection, answers)
    done = await client.get("/api/v1/oauth/callback", params=back, headers=account.bearer)
    assert done.json()["connected"] is True
    assert provider.live_access_tokens()
    revocations_before = len(provider.revocations)

    deleted = await client.delete(f"/api/v1/oauth/connections/{connection}", headers=account.bearer)

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["revoked"] is True
    assert deleted.json()["revocation"] == "revoked"
    hints = [form["token_type_hint"] for form in provider.revocations[revocations_before:]]
    assert hints == ["refresh_token", "access_token"]
    assert provider.live_access_tokens() == []
    assert all("SECRET" not in line for line in [*answers.texts, deleted.text])


async def test_a_provider_refusing_revocation_still_disconnects_and_says_so(
    client: httpx.AsyncClient, provider: FakeOAuthProvider
) -> None:
    answers = Answers()
    account = await sign_up(client)
    body = {**register_body(provider), "revocation_url": f"{provider.base_url}/revoke"}
    connection = (
        await client.post("/api/v1/oauth/connections", json=body, headers=account.bearer)
    ).json()["id"]
    back = await start(client, account, connection, answers)
    await client.get("/api/v1/oauth/callback", params=back, headers=account.bearer)
    provider.client_secret = "rotated at the provider"
    try:
        deleted = await client.delete(
            f"/api/v1/oauth/connections/{connection}", headers=account.bearer
        )
    finally:
        provider.client_secret = CLIENT_SECRET
    assert deleted.status_code == 200
    assert deleted.json()["revoked"] is False
    assert deleted.json()["revocation"] == "failed"
    assert "invalid_client" in deleted.json()["detail"]
    gone = await client.get(f"/api/v1/oauth/connections/{connection}", headers=account.bearer)
    assert gone.status_code == 404


async def test_a_browser_lands_back_on_the_account_page_with_the_outcome(
    client: httpx.AsyncClient, provider: FakeOAuthProvider
) -> None:
    answers = Answers()
    account = await sign_up(client)
    connection = await register(client, account, provider, answers)
    back = await start(client, account, connection["id"], answers)
    html = {**account.bearer, "Accept": "text/html"}
    landed = await client.get("/api/v1/oauth/callback", params=back, headers=html)
    assert landed.status_code == 303
    assert landed.headers["location"] == (f"/account?oauth=connected&connection={connection['id']}")
    # The same state again is refused, and the browser is told why on the same page.
    again = await client.get("/api/v1/oauth/callback", params=back, headers=html)
    assert again.status_code == 303
    query = parse_qs(urlsplit(again.headers["location"]).query)
    assert urlsplit(again.headers["location"]).path == "/account"
    assert query["oauth"] == ["error"]
    assert query["message"][0]
