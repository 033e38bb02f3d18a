"""http.request with ``auth``: stored credentials of each kind and OAuth tokens become the right
header, a 401 refreshes an OAuth token once, a redirect to another origin does not carry the
secret along, and the secret never shows in outputs or errors (against a real local server)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from integrations.fake_oauth import FakeOAuthProvider, running_provider

from flowloom.exceptions import NodeFailed, ValidationFailed
from flowloom.integrations.oauth_http import REDACTED, StaticHttpSecrets
from flowloom.nodes.base import RunContext
from flowloom.nodes.registry import default_registry
from flowloom.testing import make_context, run_node

TOKEN = "tok-7e1d0c55aa-SECRET"
PASSWORD = "pa55-word-SECRET"
API_KEY = "key-31f9c0de-SECRET"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOAuthProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def other() -> Iterator[FakeOAuthProvider]:
    with running_provider() as provider:
        yield provider


def context(secrets: StaticHttpSecrets | None) -> RunContext:
    return dataclasses.replace(
        make_context(allow_private_http=True), secrets=secrets, owner_id="usr_test"
    )


SECRETS = StaticHttpSecrets(
    credentials={
        "bearer": ("bearer_token", TOKEN),
        "basic": ("basic_auth", f"ada:{PASSWORD}"),
        "header": ("header", API_KEY),
        "provider-key": ("api_key", API_KEY),
        "other": ("secret", "s3cr3t-value"),
    }
)


def assert_hidden(value: Any, *secrets: str) -> None:
    text = repr(value)
    for secret in secrets:
        assert secret not in text


async def test_each_credential_kind_becomes_its_header_and_is_redacted(
    server: FakeOAuthProvider,
) -> None:
    url = f"{server.base_url}/echo"
    cases = [
        ({"credential": "bearer"}, "authorization", f"Bearer {TOKEN}"),
        (
            {"credential": "basic"},
            "authorization",
            "Basic " + base64.b64encode(f"ada:{PASSWORD}".encode()).decode(),
        ),
        ({"credential": "header", "header": "X-Api-Key"}, "x-api-key", API_KEY),
        ({"credential": "provider-key", "header": "X-Api-Key"}, "x-api-key", API_KEY),
    ]
    for auth, header, sent in cases:
        result = await run_node(
            "http.request",
            # The configured header of the same name is replaced, not sent twice.
            {"url": url, "auth": auth, "headers": {header: "from-config"}},
            ctx=context(SECRETS),
        )
        assert server.echoed[-1][header] == sent
        outputs = result.outputs
        assert outputs["status"] == 200
        assert outputs["body"]["headers"][header] == REDACTED
        assert_hidden(outputs, TOKEN, PASSWORD, API_KEY, sent)
        if header == "authorization":
            assert outputs["headers"]["x-echo-auth"] == REDACTED


async def test_a_4xx_error_does_not_show_the_secret(server: FakeOAuthProvider) -> None:
    secrets = StaticHttpSecrets(oauth={"conn": ["not-a-live-token-SECRET"]})
    with pytest.raises(NodeFailed) as failed:
        await run_node(
            "http.request",
            {"url": f"{server.base_url}/resource", "auth": {"oauth": "conn"}},
            ctx=context(secrets),
        )
    # The server echoed the token in its 401 body; the refresh was refused (no next token).
    assert "not-a-live-token" not in str(failed.value)
    assert "refused the refresh" in str(failed.value)

    credentials = StaticHttpSecrets(credentials={"bad": ("bearer_token", "bad-token-SECRET")})
    with pytest.raises(NodeFailed) as failed:
        await run_node(
            "http.request",
            {"url": f"{server.base_url}/resource", "auth": {"credential": "bad"}},
            ctx=context(credentials),
        )
    assert "answered 401" in str(failed.value)
    assert "bad-token-SECRET" not in str(failed.value)
    assert REDACTED in str(failed.value)


async def test_a_401_refreshes_an_oauth_token_once_and_retries(server: FakeOAuthProvider) -> None:
    live = server._tokens([])["access_token"]
    assert isinstance(live, str)
    secrets = StaticHttpSecrets(oauth={"conn": ["revoked-token-SECRET", live]})
    calls = len(server.resource_calls)
    result = await run_node(
        "http.request",
        {"url": f"{server.base_url}/resource", "auth": {"oauth": "conn"}},
        ctx=context(secrets),
    )
    assert result.outputs["status"] == 200
    assert result.outputs["body"] == {"ok": True, "seen_authorization": REDACTED}
    assert server.resource_calls[calls:] == ["Bearer revoked-token-SECRET", f"Bearer {live}"]
    assert secrets.refreshes == {"conn": 1}

    # A credential is not refreshed: a 401 is the answer (kept, as fail_on_status is off).
    bearer = StaticHttpSecrets(credentials={"b": ("bearer_token", "stale-SECRET")})
    answered = await run_node(
        "http.request",
        {
            "url": f"{server.base_url}/resource",
            "auth": {"credential": "b"},
            "fail_on_status": False,
        },
        ctx=context(bearer),
    )
    assert answered.outputs["status"] == 401
    assert answered.outputs["body"] == {"error": f"invalid token {REDACTED}"}


async def test_the_secret_stays_on_its_origin_across_redirects(
    server: FakeOAuthProvider, other: FakeOAuthProvider
) -> None:
    same = f"{server.base_url}/hop?to=/echo"
    await run_node(
        "http.request", {"url": same, "auth": {"credential": "bearer"}}, ctx=context(SECRETS)
    )
    assert server.echoed[-1]["authorization"] == f"Bearer {TOKEN}"

    away = f"{server.base_url}/hop?to={other.base_url}/echo"
    result = await run_node(
        "http.request",
        {"url": away, "auth": {"credential": "header", "header": "X-Api-Key"}},
        ctx=context(SECRETS),
    )
    assert result.outputs["status"] == 200
    assert "x-api-key" not in other.echoed[-1]


async def test_misuse_fails_with_a_clear_message() -> None:
    url = "http://127.0.0.1:9/echo"  # never reached: each case fails before sending
    cases = [
        ({"credential": "missing"}, SECRETS, "no stored credential named 'missing'"),
        ({"credential": "header"}, SECRETS, "say which header it goes in"),
        ({"credential": "bearer", "header": "X-Token"}, SECRETS, "takes no header name"),
        ({"credential": "other", "header": "X-Token"}, SECRETS, "is a secret"),
        ({"oauth": "conn"}, None, "stored credentials are not available here"),
    ]
    for auth, secrets, message in cases:
        with pytest.raises(NodeFailed) as failed:
            await run_node("http.request", {"url": url, "auth": auth}, ctx=context(secrets))
        assert message in str(failed.value)

    bad_configs = [
        {"credential": "a", "oauth": "b"},
        {},
        {"oauth": "b", "header": "X-Token"},
        {"credential": "a", "header": "Bad Header"},
        {"credential": "a", "header": "Content-Length"},
        {"credential": "a", "value": "inline secrets are not a thing"},
    ]
    for auth in bad_configs:
        with pytest.raises(ValidationFailed):
            await run_node("http.request", {"url": url, "auth": auth}, ctx=context(SECRETS))


def test_the_schema_only_gains_the_auth_field() -> None:
    node = default_registry().get("http.request")
    properties = node.Config.model_json_schema()["properties"]
    for name in (
        "method",
        "url",
        "headers",
        "body",
        "timeout_s",
        "follow_redirects",
        "fail_on_status",
        "send_idempotency_key",
        "auth",
    ):
        assert name in properties
    assert node.parse_config({"url": "https://example.com"}).auth is None
