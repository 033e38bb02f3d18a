"""Accounts end to end: register, sign in and out, cookies with CSRF, bearer tokens and keys,
the sign-in rate limit, and sign-in with an external identity provider's JWT."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import jwt
import pytest
from apikit import PASSWORD, sign_up, unique_email
from fastapi import FastAPI

from flowloom.api.state import AppState

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_register_answers_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    email = unique_email("Ada")
    response = await client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email.lower()
    assert body["id"].startswith("usr_")
    assert "password" not in response.text
    assert "argon2" not in response.text


async def test_registering_a_taken_email_is_a_conflict(client: httpx.AsyncClient) -> None:
    email = unique_email()
    first = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    again = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["status"] == 409


async def test_a_short_password_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": unique_email(), "password": "short"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "password"


async def test_login_sets_an_httponly_lax_cookie_and_logout_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})

    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"].startswith("fls_")
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("flowloom_session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("flowloom_csrf="))
    assert "HttpOnly" not in csrf_cookie

    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == email

    out = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status_code == 204
    # The old token no longer works, even presented as a bearer token.
    again = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert again.status_code == 401
    assert again.headers["www-authenticate"] == "Bearer"


async def test_a_wrong_password_is_401_and_names_nothing(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})

    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "nope"})
    nobody = await client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "nope"}
    )

    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"]


async def test_cookie_requests_that_change_things_need_the_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    definition = {"schema_version": 1, "nodes": [], "edges": []}

    refused = await client.post(
        "/api/v1/workflows", json={"name": "no token", "definition": definition}
    )
    forged = await client.post(
        "/api/v1/workflows",
        json={"name": "forged", "definition": definition},
        headers={"X-CSRF-Token": "0" * 64},
    )
    accepted = await client.post(
        "/api/v1/workflows",
        json={"name": "with token", "definition": definition},
        headers={"X-CSRF-Token": account.csrf},
    )
    reading = await client.get("/api/v1/workflows")

    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    assert forged.status_code == 403
    assert accepted.status_code == 201
    assert reading.status_code == 200
    names = [w["name"] for w in reading.json()["items"]]
    assert names == ["with token"]


async def test_bearer_session_tokens_need_no_csrf_token(new_client: ClientFactory) -> None:
    async with new_client() as browser:
        account = await sign_up(browser)
    async with new_client() as program:
        response = await program.post(
            "/api/v1/workflows",
            json={"name": "by program", "definition": {"nodes": [], "edges": []}},
            headers=account.bearer,
        )
        nothing = await program.get("/api/v1/workflows")

    assert response.status_code == 201
    assert nothing.status_code == 401


async def test_api_keys_sign_programs_in_within_their_scopes(new_client: ClientFactory) -> None:
    async with new_client() as browser:
        account = await sign_up(browser)
        created = await browser.post(
            "/api/v1/api-keys",
            json={"name": "reader", "scopes": ["workflows:read"]},
            headers={"X-CSRF-Token": account.csrf},
        )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith(f"flk_{created.json()['prefix']}_")

    async with new_client() as program:
        auth = {"Authorization": f"Bearer {key}"}
        listed = await program.get("/api/v1/workflows", headers=auth)
        writing = await program.post(
            "/api/v1/workflows",
            json={"name": "x", "definition": {"nodes": [], "edges": []}},
            headers=auth,
        )
        keys = await program.get("/api/v1/api-keys", headers=auth)
        bogus = await program.get(
            "/api/v1/workflows", headers={"Authorization": f"Bearer {key[:-2]}xx"}
        )

    assert listed.status_code == 200
    assert writing.status_code == 403
    assert "workflows:write" in writing.json()["detail"]
    assert keys.status_code == 403  # managing keys takes the admin scope
    assert bogus.status_code == 401


async def test_failed_logins_are_limited_per_account(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    state = app.state.flowloom
    assert isinstance(state, AppState)
    email = unique_email()
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})

    statuses = []
    for _ in range(state.settings.login_max_failures_per_account):
        wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "x"})
        statuses.append(wrong.status_code)
    blocked = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})

    assert set(statuses) == {401}
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["limit"] == "login_failures"
    # The audit log of the account shows the failed attempts.
    state.limiter.succeeded(account=email)
    async with state.db.read():
        pass
    ok = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    audit = await client.get("/api/v1/audit-log", headers={"X-CSRF-Token": ok.json()["csrf_token"]})
    actions = [entry["action"] for entry in audit.json()["items"]]
    assert actions.count("auth.login_failed") == state.settings.login_max_failures_per_account
    assert actions[0] == "auth.login"


async def test_failed_logins_are_limited_per_address(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    state = app.state.flowloom
    assert isinstance(state, AppState)
    limit = state.settings.login_max_failures_per_address
    for _ in range(limit):
        await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "x"})

    blocked = await client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "x"}
    )

    assert blocked.status_code == 429
    state.limiter._addresses.clear()


def _identity_token(app: FastAPI, **claims: object) -> str:
    settings = app.state.flowloom.settings
    now = int(time.time())
    payload = {
        "iss": settings.external_auth_issuer,
        "aud": settings.external_auth_audience,
        "sub": "user_2abc",
        "email": "clerk-user@example.com",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    key = settings.external_auth_shared_key.get_secret_value()
    return jwt.encode(payload, key, algorithm="HS256")


async def test_external_sign_in_creates_then_finds_the_same_user(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    subject = f"user_{time.time_ns()}"
    email = unique_email("clerk")
    token = _identity_token(app, sub=subject, email=email)

    first = await client.post("/api/v1/auth/external", json={"token": token})
    second = await client.post(
        "/api/v1/auth/external",
        json={"token": _identity_token(app, sub=subject, email="changed@example.com")},
    )

    assert first.status_code == 200, first.text
    assert second.status_code == 200
    assert first.json()["user"]["id"] == second.json()["user"]["id"]
    assert first.json()["user"]["email"] == email
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"}
    )
    assert me.json()["id"] == first.json()["user"]["id"]


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example.test"},
        {"exp": int(time.time()) - 3600},
    ],
    ids=["audience", "issuer", "expired"],
)
async def test_external_tokens_for_others_are_refused(
    client: httpx.AsyncClient, app: FastAPI, claims: dict[str, object]
) -> None:
    response = await client.post(
        "/api/v1/auth/external", json={"token": _identity_token(app, **claims)}
    )

    assert response.status_code == 401


async def test_an_external_token_signed_with_another_key_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    settings = app.state.flowloom.settings
    forged = jwt.encode(
        {
            "iss": settings.external_auth_issuer,
            "aud": settings.external_auth_audience,
            "sub": "user_x",
            "email": "x@example.com",
            "exp": int(time.time()) + 60,
        },
        "not-the-shared-key-" + "y" * 32,
        algorithm="HS256",
    )

    response = await client.post("/api/v1/auth/external", json={"token": forged})

    assert response.status_code == 401
