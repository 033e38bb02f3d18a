"""The account's own security: change the password (other sessions end), list the sessions
signed in, end one of them; wrong passwords and API keys refused."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from apikit import PASSWORD, sign_up

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
NEW_PASSWORD = "a new and longer passphrase"


async def test_changing_the_password_ends_the_other_sessions(new_client: ClientFactory) -> None:
    async with new_client() as laptop, new_client() as phone:
        account = await sign_up(laptop, "pw")
        on_phone = await phone.post(
            "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        phone_token = {"Authorization": f"Bearer {on_phone.json()['access_token']}"}

        listed = await laptop.get("/api/v1/auth/sessions", headers=account.bearer)
        sessions = listed.json()["items"]
        assert len(sessions) == 2
        assert [s["current"] for s in sessions] == [False, True], "newest (the phone) first"
        assert all(s["method"] == "password" for s in sessions)
        assert "token" not in listed.text

        changed = await laptop.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=account.bearer,
        )
        assert changed.status_code == 204, changed.text

        assert (await phone.get("/api/v1/auth/me", headers=phone_token)).status_code == 401
        assert (await laptop.get("/api/v1/auth/me", headers=account.bearer)).status_code == 200
        old = await phone.post(
            "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        assert old.status_code == 401
        new = await phone.post(
            "/api/v1/auth/login", json={"email": account.email, "password": NEW_PASSWORD}
        )
        assert new.status_code == 200
        audit = await laptop.get("/api/v1/audit-log", headers=account.bearer)
        changes = [e for e in audit.json()["items"] if e["action"] == "auth.password_changed"]
        assert changes[0]["details"] == {"sessions_ended": 1}


async def test_a_wrong_current_password_or_an_api_key_is_refused(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client, "pw-wrong")
    wrong = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=account.bearer,
    )
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    same = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=account.bearer,
    )
    assert same.status_code == 422
    assert same.json()["errors"][0]["field"] == "new_password"
    short = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=account.bearer,
    )
    assert short.status_code == 422

    key = await client.post(
        "/api/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=account.bearer
    )
    by_key = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {key.json()['key']}"},
    )
    assert by_key.status_code == 403
    still = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert still.status_code == 200, "nothing changed"


async def test_ending_one_session_signs_that_one_out(new_client: ClientFactory) -> None:
    async with new_client() as laptop, new_client() as phone:
        account = await sign_up(laptop, "end")
        on_phone = await phone.post(
            "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        phone_token = {"Authorization": f"Bearer {on_phone.json()['access_token']}"}
        sessions = (await laptop.get("/api/v1/auth/sessions", headers=account.bearer)).json()
        phone_session = next(s for s in sessions["items"] if not s["current"])

        ended = await laptop.delete(
            f"/api/v1/auth/sessions/{phone_session['id']}", headers=account.bearer
        )

        assert ended.status_code == 204
        assert (await phone.get("/api/v1/auth/me", headers=phone_token)).status_code == 401
        left = (await laptop.get("/api/v1/auth/sessions", headers=account.bearer)).json()
        assert [s["current"] for s in left["items"]] == [True]
